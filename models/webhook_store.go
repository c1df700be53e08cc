package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// FieldErrors maps a field (the portal's form field names: name,
// service_uri, custom_headers, actions, status, scope, location) to a message
// that states the rule broken.
type FieldErrors map[string]string

// Error joins the messages in a stable order, for API errors and logs.
func (fe FieldErrors) Error() string {
	var parts []string
	for _, k := range []string{"name", "service_uri", "custom_headers", "actions", "status", "scope", "location", "tags"} {
		if m, ok := fe[k]; ok {
			parts = append(parts, m)
		}
	}
	return strings.Join(parts, "; ")
}

// WebhookInput is the one description of a webhook that the portal form, the
// ARM API and the CLI all validate the same way.
type WebhookInput struct {
	Name       string
	ServiceURI string
	Headers    map[string]string
	Actions    []string
	Status     string
	Scope      string
	Location   string
	Tags       map[string]string
}

// Validate checks every field and normalises the values (trimmed URI,
// canonical action order, status default enabled, canonical scope). It
// returns nil when the input is valid.
func (in *WebhookInput) Validate() FieldErrors {
	fe := FieldErrors{}
	in.Name = strings.TrimSpace(in.Name)
	if err := ValidateName("Webhook name", in.Name); err != nil {
		fe["name"] = err.Error()
	}
	if u, err := ValidateServiceURI(in.ServiceURI); err != nil {
		fe["service_uri"] = err.Error()
	} else {
		in.ServiceURI = u
	}
	if err := ValidateHeaders(in.Headers); err != nil {
		fe["custom_headers"] = err.Error()
	}
	if a, err := ValidateActions(in.Actions); err != nil {
		fe["actions"] = err.Error()
	} else {
		in.Actions = a
	}
	if st, err := NormalizeStatus(in.Status); err != nil {
		fe["status"] = err.Error()
	} else {
		in.Status = st
	}
	if _, err := ParseScope(in.Scope); err != nil {
		fe["scope"] = err.Error()
	} else {
		// Kept as given (trimmed): ACR returns "myRepository", not "myRepository:latest".
		in.Scope = strings.TrimSpace(in.Scope)
	}
	if len(in.Location) > 64 {
		fe["location"] = "location must be at most 64 characters"
	}
	if len(in.Tags) > MaxTags {
		fe["tags"] = fmt.Sprintf("at most %d tags are allowed", MaxTags)
	}
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// InputFrom returns the input that describes an existing webhook, the base
// a partial update (PATCH, the Edit form) is applied to.
func InputFrom(w *Webhook) WebhookInput {
	h := map[string]string{}
	for k, v := range w.Headers {
		h[k] = v
	}
	return WebhookInput{Name: w.Name, ServiceURI: w.ServiceURI, Headers: h, Actions: w.Actions(),
		Status: w.Status, Scope: w.Scope, Location: w.Location, Tags: w.Tags()}
}

func (s *Store) sealHeaders(h map[string]string) string {
	if len(h) == 0 {
		return ""
	}
	b, _ := json.Marshal(h)
	return s.cipher.Seal(string(b))
}

// open decrypts the secrets of w in place.
func (s *Store) open(w *Webhook) error {
	uri, err := s.cipher.Open(w.ServiceURI)
	if err != nil {
		return fmt.Errorf("store: webhook %q service URI: %w", w.Name, err)
	}
	w.ServiceURI = uri
	for _, f := range []*string{&w.SigningSecret, &w.PreviousSigningSecret} {
		if *f, err = s.cipher.Open(*f); err != nil {
			return fmt.Errorf("store: webhook %q signing secret: %w", w.Name, err)
		}
	}
	w.Headers = map[string]string{}
	if w.HeadersSealed != "" {
		plain, err := s.cipher.Open(w.HeadersSealed)
		if err != nil {
			return fmt.Errorf("store: webhook %q headers: %w", w.Name, err)
		}
		if err := json.Unmarshal([]byte(plain), &w.Headers); err != nil {
			return fmt.Errorf("store: webhook %q headers: %w", w.Name, err)
		}
	}
	return nil
}

// openListed is open for list queries: a webhook whose secrets cannot be
// opened is kept, marked Unreadable, with its secrets left empty.
func (s *Store) openListed(w *Webhook) error {
	err := s.open(w)
	if errors.Is(err, ErrSealed) {
		w.ServiceURI, w.Headers, w.Unreadable = "", map[string]string{}, true
		w.SigningSecret, w.PreviousSigningSecret = "", ""
		return nil
	}
	return err
}

// CreateWebhook stores a webhook whose input has passed Validate. The name's
// uniqueness and the SKU quota are checked in the same transaction as the
// insert, so two concurrent creates cannot both squeeze past the quota.
func (s *Store) CreateWebhook(ctx context.Context, reg *Registry, in WebhookInput, createdBy string) (*Webhook, error) {
	defer s.webhooksChanged(ctx)
	if in.Location == "" {
		in.Location = reg.Location
	}
	w := &Webhook{
		RegistryID: reg.ID, Name: in.Name, ServiceURI: s.cipher.Seal(in.ServiceURI),
		HeadersSealed: s.sealHeaders(in.Headers), ActionsCSV: strings.Join(in.Actions, ","),
		Status: in.Status, Scope: in.Scope, Location: in.Location, TagsJSON: encodeTags(in.Tags), CreatedBy: createdBy,
		EnabledAt: s.now().UnixNano(),
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var r Registry
		if err := tx.Take(&r, reg.ID).Error; err != nil {
			return notFound(err, "get registry")
		}
		var n int64
		if err := tx.Model(&Webhook{}).Where("registry_id = ? AND name = ? COLLATE NOCASE", reg.ID, in.Name).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return ErrAlreadyExists
		}
		if err := tx.Model(&Webhook{}).Where("registry_id = ?", reg.ID).Count(&n).Error; err != nil {
			return err
		}
		if q := WebhookQuota(r.SKU); int(n) >= q {
			return &QuotaError{SKU: r.SKU, Limit: q}
		}
		return tx.Create(w).Error
	})
	if err != nil {
		if isUnique(err) {
			err = ErrAlreadyExists
		}
		return nil, fmt.Errorf("store: create webhook %q: %w", in.Name, err)
	}
	w.ServiceURI, w.Headers = in.ServiceURI, in.Headers
	if w.Headers == nil {
		w.Headers = map[string]string{}
	}
	return w, nil
}

// UpdateWebhook replaces the settable fields of webhook w (found by its id)
// with in, which has passed Validate. The name and location do not change.
func (s *Store) UpdateWebhook(ctx context.Context, w *Webhook, in WebhookInput) (*Webhook, error) {
	defer s.webhooksChanged(ctx)
	now := s.now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if in.Status == StatusEnabled {
			if err := enableTx(tx, w.ID, now); err != nil {
				return err
			}
		}
		res := tx.Model(&Webhook{}).Where("id = ?", w.ID).Updates(map[string]any{
			"service_uri":    s.cipher.Seal(in.ServiceURI),
			"custom_headers": s.sealHeaders(in.Headers),
			"actions":        strings.Join(in.Actions, ","),
			"status":         in.Status,
			"scope":          in.Scope,
			"tags":           encodeTags(in.Tags),
			"updated_at":     now,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: update webhook %q: %w", w.Name, err)
	}
	return s.GetWebhookByID(ctx, w.ID)
}

// SetWebhookStatus enables or disables a webhook. Enabling one that was
// disabled starts its auto-disable window afresh, clears the marks of an
// auto-disable and makes its held deliveries due at once (see enableTx);
// UpdateWebhook does the same when it enables.
func (s *Store) SetWebhookStatus(ctx context.Context, w *Webhook, status string) error {
	defer s.webhooksChanged(ctx)
	now := s.now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if status == StatusEnabled {
			if err := enableTx(tx, w.ID, now); err != nil {
				return err
			}
		}
		res := tx.Model(&Webhook{}).Where("id = ?", w.ID).Updates(map[string]any{"status": status, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: set status of webhook %q: %w", w.Name, err)
	}
	return nil
}

// GetWebhook finds a webhook of a registry by name (ignoring case), with its
// secrets decrypted.
// When they cannot be opened, the error wraps ErrSealed and the webhook
// is returned as well, marked Unreadable, so it can still be deleted.
func (s *Store) GetWebhook(ctx context.Context, reg *Registry, name string) (*Webhook, error) {
	var w Webhook
	if err := s.db.WithContext(ctx).Where("registry_id = ? AND name = ? COLLATE NOCASE", reg.ID, name).Take(&w).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get webhook %q", name))
	}
	if err := s.open(&w); err != nil {
		if errors.Is(err, ErrSealed) {
			w.ServiceURI, w.Headers, w.Unreadable = "", map[string]string{}, true
			w.SigningSecret, w.PreviousSigningSecret = "", ""
			return &w, err
		}
		return nil, err
	}
	return &w, nil
}

// GetWebhookByID finds a webhook by id, with its secrets decrypted.
// When they cannot be opened, the error wraps ErrSealed and the webhook
// is returned as well, marked Unreadable, so it can still be deleted.
func (s *Store) GetWebhookByID(ctx context.Context, id uint) (*Webhook, error) {
	var w Webhook
	if err := s.db.WithContext(ctx).Take(&w, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get webhook %d", id))
	}
	if err := s.open(&w); err != nil {
		if errors.Is(err, ErrSealed) {
			w.ServiceURI, w.Headers, w.Unreadable = "", map[string]string{}, true
			w.SigningSecret, w.PreviousSigningSecret = "", ""
			return &w, err
		}
		return nil, err
	}
	return &w, nil
}

// ListWebhooks returns a registry's webhooks sorted by name, secrets
// decrypted. offset/limit page the result; limit <= 0 means all.
func (s *Store) ListWebhooks(ctx context.Context, reg *Registry, offset, limit int) ([]Webhook, error) {
	q := s.db.WithContext(ctx).Where("registry_id = ?", reg.ID).Order("name COLLATE NOCASE").Offset(offset)
	if limit > 0 {
		q = q.Limit(limit)
	}
	var out []Webhook
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list webhooks of %q: %w", reg.Name, err)
	}
	for i := range out {
		if err := s.openListed(&out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CountWebhooks counts a registry's webhooks (the quota's current value).
func (s *Store) CountWebhooks(ctx context.Context, registryID uint) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&Webhook{}).Where("registry_id = ?", registryID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("store: count webhooks: %w", err)
	}
	return n, nil
}

// DeleteWebhook removes a webhook and, through the foreign keys, its
// deliveries and attempts. It returns ErrNotFound when there was none.
func (s *Store) DeleteWebhook(ctx context.Context, w *Webhook) error {
	defer s.webhooksChanged(ctx)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("webhook_id = ?", w.ID).Delete(&Attempt{}).Error; err != nil {
			return err
		}
		if err := tx.Where("webhook_id = ?", w.ID).Delete(&Delivery{}).Error; err != nil {
			return err
		}
		res := tx.Delete(&Webhook{}, w.ID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete webhook %q: %w", w.Name, err)
	}
	_ = s.reclaimSpace(ctx) // best effort; the delete has happened
	return nil
}

// LastDelivery summarises the newest delivery of a webhook for the blade.
type LastDelivery struct {
	WebhookID      uint
	State          int
	LastStatusCode int
	LastReason     string
	LastError      string
}

// LastDeliveries returns the newest delivery of each given webhook, keyed by
// webhook id. Webhooks that never delivered are absent.
func (s *Store) LastDeliveries(ctx context.Context, ids []uint) (map[uint]LastDelivery, error) {
	out := map[uint]LastDelivery{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []LastDelivery
	err := s.db.WithContext(ctx).Raw(`SELECT webhook_id, state, last_status_code, last_reason, last_error FROM deliveries
		WHERE id IN (SELECT MAX(id) FROM deliveries WHERE webhook_id IN ? GROUP BY webhook_id)`, ids).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: last deliveries: %w", err)
	}
	for _, r := range rows {
		out[r.WebhookID] = r
	}
	return out, nil
}

// IsNotFound is a convenience for errors.Is(err, ErrNotFound).
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
