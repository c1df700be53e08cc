package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// wantSig computes a Standard Webhooks v1 signature from its definition.
func wantSig(t *testing.T, secret, id, ts, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) < 24 || len(key) > 64 {
		t.Fatalf("secret %q: %d bytes, %v", secret, len(key), err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// A webhook with a signing secret gets webhook-id, webhook-timestamp and
// webhook-signature on every delivery; after a rotation the old secret's
// signature follows the new one until 24 hours have passed.
func TestSignedDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, got := receiver(t, http.StatusOK)
	w := b.webhook(t, "signedhook", srv.URL, nil)

	b.ingest(t, 1)
	b.round(t)
	if c := <-got; c.headers.Get("webhook-signature") != "" || c.headers.Get("webhook-id") != "" {
		t.Fatalf("unsigned webhook sent %v", c.headers)
	}

	first, err := b.store.RotateSigningSecret(b.ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	ids := b.ingest(t, 1)
	b.round(t)
	c := <-got
	ts := strconv.FormatInt(b.clk.Now().Unix(), 10)
	if c.headers.Get("webhook-id") != ids[0] || c.headers.Get("webhook-timestamp") != ts ||
		c.headers.Get("webhook-signature") != wantSig(t, first, ids[0], ts, c.body) {
		t.Fatalf("signed headers %v for body %s", c.headers, c.body)
	}
	rows := b.deliveries(t, w)
	if a := b.attempts(t, rows[0].ID)[0]; !strings.Contains(a.RequestHeaders, `"Webhook-Signature":"v1,`) || strings.Contains(a.RequestHeaders, first) {
		t.Fatalf("recorded headers %s", a.RequestHeaders)
	}

	// The dispatcher notices a changed webhook by its updated_at; on the
	// fake clock the rotation must come at a later reading to be seen.
	b.clk.Advance(time.Minute)
	second, err := b.store.RotateSigningSecret(b.ctx, w)
	if err != nil || second == first {
		t.Fatalf("rotate: %q, %v", second, err)
	}
	for _, tc := range []struct {
		after time.Duration
		sigs  []string
	}{
		{time.Hour, []string{second, first}},      // 1 h after the rotation
		{22 * time.Hour, []string{second, first}}, // 23 h
		{2 * time.Hour, []string{second}},         // 25 h
	} {
		b.clk.Advance(tc.after)
		ids := b.ingest(t, 1)
		b.round(t)
		c := <-got
		ts := strconv.FormatInt(b.clk.Now().Unix(), 10)
		var want []string
		for _, s := range tc.sigs {
			want = append(want, wantSig(t, s, ids[0], ts, c.body))
		}
		if got := c.headers.Get("webhook-signature"); got != strings.Join(want, " ") {
			t.Fatalf("+%s: signature %q, want %q", tc.after, got, strings.Join(want, " "))
		}
	}
	// The secrets are sealed at rest.
	stored, err := b.store.GetWebhookByID(b.ctx, w.ID)
	if err != nil || stored.SigningSecret != second || stored.PreviousSigningSecret != first {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if models.SigningOverlap != 24*time.Hour {
		t.Fatalf("SigningOverlap = %s", models.SigningOverlap)
	}
}
