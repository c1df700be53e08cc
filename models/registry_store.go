package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Defaults of the registry created on first start (interfaces.md).
const (
	DefaultRegistryName  = "myregistry"
	DefaultSubscription  = "00000000-0000-0000-0000-000000000000"
	DefaultResourceGroup = "registryhooks"
	DefaultLocation      = "local"
)

// RegistryInput is what a person or an API client gives to create or update
// a registry.
type RegistryInput struct {
	Name           string
	SKU            string
	LoginServer    string
	Location       string
	SubscriptionID string
	ResourceGroup  string
	Tags           map[string]string
}

// Validate checks the input and fills defaults; it returns per-field
// messages keyed by field name (name, sku, login_server, location).
func (in *RegistryInput) Validate() map[string]string {
	errs := map[string]string{}
	in.Name = strings.TrimSpace(in.Name)
	if err := ValidateName("Registry name", in.Name); err != nil {
		errs["name"] = err.Error()
	}
	if sku, ok := NormalizeSKU(in.SKU); ok {
		in.SKU = sku
	} else {
		errs["sku"] = "SKU must be Basic, Standard or Premium"
	}
	in.LoginServer = strings.TrimSpace(in.LoginServer)
	if in.LoginServer == "" && in.Name != "" {
		in.LoginServer = strings.ToLower(in.Name) + ".localhost"
	}
	if len(in.LoginServer) > 255 || strings.ContainsAny(in.LoginServer, " /\t\r\n") {
		errs["login_server"] = "Login server must be a host name (and optional :port), without spaces or slashes"
	}
	in.Location = strings.TrimSpace(in.Location)
	if in.Location == "" {
		in.Location = DefaultLocation
	}
	if len(in.Location) > 64 {
		errs["location"] = "Location must be at most 64 characters"
	}
	if in.SubscriptionID == "" {
		in.SubscriptionID = DefaultSubscription
	}
	if in.ResourceGroup == "" {
		in.ResourceGroup = DefaultResourceGroup
	}
	if len(in.ResourceGroup) > 90 {
		errs["resource_group"] = "Resource group must be 1-90 characters"
	}
	return errs
}

func newToken(prefix string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// CreateRegistry stores a validated registry with a fresh ingest token.
func (s *Store) CreateRegistry(ctx context.Context, in RegistryInput) (*Registry, error) {
	r := &Registry{
		Name: in.Name, SKU: in.SKU, LoginServer: in.LoginServer, Location: in.Location,
		SubscriptionID: in.SubscriptionID, ResourceGroup: in.ResourceGroup, TagsJSON: encodeTags(in.Tags),
		IngestToken: s.cipher.Seal(newToken("rhi_")),
	}
	defer s.forgetRegistries()
	if err := s.db.WithContext(ctx).Create(r).Error; err != nil {
		if isUnique(err) {
			return nil, fmt.Errorf("store: create registry %q: %w", in.Name, ErrAlreadyExists)
		}
		return nil, fmt.Errorf("store: create registry %q: %w", in.Name, err)
	}
	return r, nil
}

// UpdateRegistry changes SKU, login server, location and tags of a registry.
// Moving to a SKU whose quota is below the current webhook count is refused.
func (s *Store) UpdateRegistry(ctx context.Context, name string, in RegistryInput) (*Registry, error) {
	r, err := s.GetRegistry(ctx, name)
	if err != nil {
		return nil, err
	}
	n, err := s.CountWebhooks(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if q := WebhookQuota(in.SKU); int(n) > q {
		return nil, fmt.Errorf("store: update registry %q: %w", name, &QuotaError{SKU: in.SKU, Limit: q})
	}
	defer s.forgetRegistries()
	r.SKU, r.LoginServer, r.Location, r.TagsJSON = in.SKU, in.LoginServer, in.Location, encodeTags(in.Tags)
	if err := s.db.WithContext(ctx).Save(r).Error; err != nil {
		return nil, fmt.Errorf("store: update registry %q: %w", name, err)
	}
	return r, nil
}

// GetRegistry finds a registry by name, ignoring case. Every ingest request
// asks, so found registries are cached until a write to registries in this
// store (the only writer) clears the cache. The caller gets its own copy.
func (s *Store) GetRegistry(ctx context.Context, name string) (*Registry, error) {
	key := strings.ToLower(name)
	if v, ok := s.registries.Load(key); ok {
		r := *v.(*Registry)
		return &r, nil
	}
	var r Registry
	if err := s.rdb.WithContext(ctx).Where("name = ? COLLATE NOCASE", name).Take(&r).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get registry %q", name))
	}
	cached := r
	s.registries.Store(key, &cached)
	return &r, nil
}

// forgetRegistries clears the registry cache after a write.
func (s *Store) forgetRegistries() { s.registries.Clear() }

// GetRegistryByID finds a registry by its id.
func (s *Store) GetRegistryByID(ctx context.Context, id uint) (*Registry, error) {
	var r Registry
	if err := s.rdb.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get registry %d", id))
	}
	return &r, nil
}

// ListRegistries returns all registries sorted by name. Empty subscription or
// resourceGroup means any.
func (s *Store) ListRegistries(ctx context.Context, subscription, resourceGroup string) ([]Registry, error) {
	q := s.rdb.WithContext(ctx).Order("name COLLATE NOCASE")
	if subscription != "" {
		q = q.Where("subscription_id = ? COLLATE NOCASE", subscription)
	}
	if resourceGroup != "" {
		q = q.Where("resource_group = ? COLLATE NOCASE", resourceGroup)
	}
	var out []Registry
	if err := q.Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list registries: %w", err)
	}
	return out, nil
}

// DeleteRegistry removes a registry with its webhooks and their history.
func (s *Store) DeleteRegistry(ctx context.Context, name string) error {
	r, err := s.GetRegistry(ctx, name)
	if err != nil {
		return err
	}
	defer s.forgetRegistries()
	defer s.hookGen.Add(1) // its webhooks go with it
	if err := s.db.WithContext(ctx).Delete(&Registry{}, r.ID).Error; err != nil {
		return fmt.Errorf("store: delete registry %q: %w", name, err)
	}
	// Events are not linked by a foreign key (they outlive webhooks until
	// pruned), so remove the registry's explicitly.
	if err := s.db.WithContext(ctx).Where("registry_id = ?", r.ID).Delete(&Event{}).Error; err != nil {
		return fmt.Errorf("store: delete registry %q events: %w", name, err)
	}
	return nil
}

// IngestToken returns the registry's ingest token in clear.
func (s *Store) IngestToken(r *Registry) (string, error) {
	return s.cipher.Open(r.IngestToken)
}

// RotateIngestToken gives the registry a new ingest token and returns it.
func (s *Store) RotateIngestToken(ctx context.Context, r *Registry) (string, error) {
	tok := newToken("rhi_")
	defer s.forgetRegistries()
	if err := s.db.WithContext(ctx).Model(r).Update("ingest_token", s.cipher.Seal(tok)).Error; err != nil {
		return "", fmt.Errorf("store: rotate ingest token of %q: %w", r.Name, err)
	}
	return tok, nil
}

// EnsureDefaultRegistry creates the default registry when there is none at all.
func (s *Store) EnsureDefaultRegistry(ctx context.Context) error {
	var n int64
	if err := s.db.WithContext(ctx).Model(&Registry{}).Count(&n).Error; err != nil {
		return fmt.Errorf("store: count registries: %w", err)
	}
	if n > 0 {
		return nil
	}
	in := RegistryInput{Name: DefaultRegistryName, SKU: SKUPremium}
	in.Validate()
	_, err := s.CreateRegistry(ctx, in)
	return err
}
