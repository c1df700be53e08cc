package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// SigningOverlap is how long after a rotation deliveries still carry the
// replaced secret's signature beside the new one, so receivers can switch
// secrets without losing a delivery.
const SigningOverlap = 24 * time.Hour

// SigningSecretPrefix starts every signing secret, as Standard Webhooks
// writes them; the rest is the base64 of the key bytes.
const SigningSecretPrefix = "whsec_"

// signingKeyBytes is the length of a new signing key (the specification
// allows 24 to 64).
const signingKeyBytes = 32

// NewSigningSecret returns a fresh "whsec_<base64 of 32 random bytes>".
func NewSigningSecret() string {
	b := make([]byte, signingKeyBytes)
	_, _ = rand.Read(b)
	return SigningSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// RotateSigningSecret gives webhook w a new signing secret, sealed at rest,
// and returns it in clear. The secret it replaces, if any, is kept as the
// previous one, whose signature deliveries carry for SigningOverlap. The
// webhook's updated_at moves, so the dispatcher reloads it.
func (s *Store) RotateSigningSecret(ctx context.Context, w *Webhook) (string, error) {
	defer s.webhooksChanged(ctx)
	secret := NewSigningSecret()
	now := s.now()
	res := s.db.WithContext(ctx).Model(&Webhook{}).Where("id = ?", w.ID).Updates(map[string]any{
		"signing_secret":          s.cipher.Seal(secret),
		"previous_signing_secret": s.cipher.Seal(w.SigningSecret),
		"signing_rotated_at":      now.UnixNano(),
		"updated_at":              now,
	})
	if res.Error != nil {
		return "", fmt.Errorf("store: rotate signing secret of webhook %q: %w", w.Name, res.Error)
	}
	if res.RowsAffected == 0 {
		return "", fmt.Errorf("store: rotate signing secret of webhook %q: %w", w.Name, ErrNotFound)
	}
	w.PreviousSigningSecret, w.SigningSecret, w.SigningRotatedAt = w.SigningSecret, secret, now.UnixNano()
	return secret, nil
}

// SigningSecrets returns the secrets a delivery sent at now is signed with:
// the current one, then the previous one while within SigningOverlap of the
// rotation. None when the webhook does not sign.
func (w *Webhook) SigningSecrets(now time.Time) []string {
	if w.SigningSecret == "" {
		return nil
	}
	out := []string{w.SigningSecret}
	if w.PreviousSigningSecret != "" && now.Sub(time.Unix(0, w.SigningRotatedAt)) < SigningOverlap {
		out = append(out, w.PreviousSigningSecret)
	}
	return out
}
