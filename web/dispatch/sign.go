package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// signing is what signing a webhook's deliveries needs, per the Standard
// Webhooks specification: the current secret and, for SigningOverlap after
// a rotation, the replaced one. The zero value signs nothing.
type signing struct {
	current, previous string
	rotatedAt         time.Time
}

func signingOf(w *models.Webhook) signing {
	return signing{current: w.SigningSecret, previous: w.PreviousSigningSecret, rotatedAt: time.Unix(0, w.SigningRotatedAt)}
}

// sign sets webhook-id (the event id, as in the payload), webhook-timestamp
// (Unix seconds at sent) and webhook-signature ("v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", the previous secret's after the current one's,
// space-separated, while the rotation is younger than SigningOverlap) on
// req, and records them in shown: signatures are not secrets.
func (s signing) sign(req *http.Request, shown map[string]string, eventID string, body []byte, sent time.Time) {
	if s.current == "" {
		return
	}
	ts := strconv.FormatInt(sent.Unix(), 10)
	sigs := []string{signature(s.current, eventID, ts, body)}
	if s.previous != "" && sent.Sub(s.rotatedAt) < models.SigningOverlap {
		sigs = append(sigs, signature(s.previous, eventID, ts, body))
	}
	h := map[string]string{"webhook-id": eventID, "webhook-timestamp": ts, "webhook-signature": strings.Join(sigs, " ")}
	for k, v := range h {
		req.Header.Set(k, v)
		shown[http.CanonicalHeaderKey(k)] = v
	}
}

// signature is "v1," and the base64 HMAC-SHA256, keyed with the secret's
// base64-decoded bytes (after "whsec_"), of "{id}.{timestamp}.{body}".
func signature(secret, id, ts string, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, models.SigningSecretPrefix))
	if err != nil {
		key = []byte(secret) // not one of ours; still sign rather than send unsigned
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
