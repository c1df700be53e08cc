package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// APITokenPrefix starts every API token, so a leaked one is recognisable in
// logs and by secret scanners.
const APITokenPrefix = "rha_"

// ErrTokenRevoked is returned by AuthenticateAPIToken for a token that
// exists but was revoked; callers treat it like an unknown token.
var ErrTokenRevoked = errors.New("token revoked")

// CreateAPIToken stores a new API token and returns its clear value, which
// is never stored and so can be shown only now. role defaults to
// Contributor; an unknown role is refused.
func (s *Store) CreateAPIToken(ctx context.Context, name, role, createdBy string) (string, *APIToken, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return "", nil, fmt.Errorf("store: create api token: name must be 1-64 characters")
	}
	if role == "" {
		role = RoleContributor
	}
	if RoleRank(role) == 0 {
		return "", nil, fmt.Errorf("store: create api token %q: unknown role %q", name, role)
	}
	value := newToken(APITokenPrefix)
	t := &APIToken{Name: name, Hash: HashToken(value), Prefix: value[:12], Role: role, CreatedBy: createdBy}
	if err := s.db.WithContext(ctx).Create(t).Error; err != nil {
		return "", nil, fmt.Errorf("store: create api token %q: %w", name, err)
	}
	return value, t, nil
}

// ListAPITokens returns every token, revoked ones included, newest first.
func (s *Store) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	var out []APIToken
	if err := s.rdb.WithContext(ctx).Order("created_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list api tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken marks a token revoked; it stops authenticating at once.
// Revoking an already revoked token is a no-op; an unknown id is ErrNotFound.
func (s *Store) RevokeAPIToken(ctx context.Context, id uint) error {
	var t APIToken
	if err := s.db.WithContext(ctx).Take(&t, id).Error; err != nil {
		return notFound(err, fmt.Sprintf("revoke api token %d", id))
	}
	if t.RevokedAt != nil {
		return nil
	}
	now := s.now()
	if err := s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ?", id).Update("revoked_at", now).Error; err != nil {
		return fmt.Errorf("store: revoke api token %d: %w", id, err)
	}
	return nil
}

// AuthenticateAPIToken finds the live token with this clear value and
// records its use. Unknown values are ErrNotFound, revoked ones
// ErrTokenRevoked. The lookup is by hash, so timing reveals nothing useful.
func (s *Store) AuthenticateAPIToken(ctx context.Context, value string) (*APIToken, error) {
	if !strings.HasPrefix(value, APITokenPrefix) {
		return nil, fmt.Errorf("store: authenticate api token: %w", ErrNotFound)
	}
	var t APIToken
	if err := s.db.WithContext(ctx).Where("hash = ?", HashToken(value)).Take(&t).Error; err != nil {
		return nil, notFound(err, "authenticate api token")
	}
	if t.RevokedAt != nil {
		return nil, fmt.Errorf("store: authenticate api token %q: %w", t.Prefix, ErrTokenRevoked)
	}
	now := s.now()
	// A failed bookkeeping write must not lock the caller out.
	_ = s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ?", t.ID).Update("last_used_at", now).Error
	t.LastUsedAt = &now
	return &t, nil
}

// ListWebhooksAfter returns up to limit webhooks of a registry whose names
// sort after after (case-insensitively; "" starts at the beginning), secrets
// decrypted. It is the keyset page the ARM list's skip token points at, so
// pages stay stable while webhooks are added or removed.
func (s *Store) ListWebhooksAfter(ctx context.Context, reg *Registry, after string, limit int) ([]Webhook, error) {
	q := s.db.WithContext(ctx).Where("registry_id = ?", reg.ID)
	if after != "" {
		q = q.Where("name > ? COLLATE NOCASE", after)
	}
	var out []Webhook
	if err := q.Order("name COLLATE NOCASE").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list webhooks of %q after %q: %w", reg.Name, after, err)
	}
	for i := range out {
		if err := s.openListed(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AttemptCursor marks a position in a webhook's attempts, newest first. The
// zero value is the start.
type AttemptCursor struct {
	StartedAt int64
	ID        uint
}

// ListWebhookAttemptsBefore returns up to limit attempts of a webhook that
// come after cur in newest-first order, each with its event's payload. New
// attempts arriving between pages do not shift or repeat later pages.
func (s *Store) ListWebhookAttemptsBefore(ctx context.Context, webhookID uint, cur AttemptCursor, limit int) ([]AttemptWithEvent, error) {
	q := s.db.WithContext(ctx).Table("attempts a").Select("a.*, e.payload").
		Joins("JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.seq = d.event_seq").Where("a.webhook_id = ?", webhookID)
	if cur != (AttemptCursor{}) {
		q = q.Where("(a.started_at < ? OR (a.started_at = ? AND a.id < ?))", cur.StartedAt, cur.StartedAt, cur.ID)
	}
	var rows []AttemptWithEvent
	if err := q.Order("a.started_at DESC, a.id DESC").Limit(limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: list attempts of webhook %d: %w", webhookID, err)
	}
	return rows, nil
}
