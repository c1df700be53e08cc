package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Defaults of the registry created on first start (interfaces.md).
const (
	DefaultRegistryName  = "myregistry"
	DefaultSubscription  = "00000000-0000-0000-0000-000000000000"
	DefaultResourceGroup = "registryhooks"
	DefaultLocation      = "local"
	// DefaultLoginServer is the default registry's login server: where a
	// registry:2 container listens, so a receiver watching
	// localhost:5000/team/app matches a push of team/app out of the box.
	DefaultLoginServer = "localhost:5000"
)

// ErrInvalidInput marks a value a store method refused; the wrapped
// message says why.
var ErrInvalidInput = errors.New("invalid input")

// ValidateLoginServer checks a registry's login server, the host[:port]
// clients push to and pull from, and returns it in canonical form (trimmed,
// lower case: host names ignore case, and receivers compare image
// references as strings). The host is a DNS name, an IPv4 address or a
// bracketed IPv6 address; the port 1-65535. A scheme, path or spaces are
// refused: receivers prefix it to the repository as it is.
func ValidateLoginServer(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	bad := fmt.Errorf("Login server must be a host name with an optional port, such as registry.example.com or localhost:5000 (no scheme, path or spaces); got %q", s)
	if s == "" {
		return "", errors.New("Login server is required: a host name with an optional port, such as localhost:5000")
	}
	if len(s) > 255 {
		return "", errors.New("Login server must be at most 255 characters")
	}
	if strings.ContainsAny(s, "/ \t\r\n@?#") {
		return "", bad
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", bad
		}
		host, port = s[1:end], strings.TrimPrefix(s[end+1:], ":")
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || (s[end+1:] != "" && !strings.HasPrefix(s[end+1:], ":")) {
			return "", bad
		}
	} else if h, p, ok := strings.Cut(s, ":"); ok {
		host, port = h, p
		if port == "" {
			return "", bad
		}
	}
	if port != "" || strings.HasSuffix(s, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", fmt.Errorf("Login server's port must be a number from 1 to 65535; got %q", port)
		}
	}
	if strings.HasPrefix(s, "[") {
		return s, nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return s, nil
	}
	if !loginHostRE.MatchString(host) {
		return "", bad
	}
	return s, nil
}

// loginHostRE is a DNS name: dot-separated labels of letters, digits and
// inner hyphens, at most 63 characters each.
var loginHostRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$`)

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

// MaxTags is how many tags a registry or a webhook may carry, as Azure
// allows.
const MaxTags = 50

// Validate checks the input and fills defaults; it returns per-field
// messages keyed by field name (name, sku, login_server, location,
// resource_group, tags).
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
	if in.LoginServer != "" {
		if ls, err := ValidateLoginServer(in.LoginServer); err != nil {
			errs["login_server"] = err.Error()
		} else {
			in.LoginServer = ls
		}
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
	if len(in.Tags) > MaxTags {
		errs["tags"] = fmt.Sprintf("at most %d tags are allowed", MaxTags)
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
	defer s.registriesChanged(ctx)
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
	defer s.registriesChanged(ctx)
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
	gen := s.regGen.Load()
	var r Registry
	if err := s.rdb.WithContext(ctx).Where("name = ? COLLATE NOCASE", name).Take(&r).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get registry %q", name))
	}
	// A read that raced with a write (here or, announced, on another
	// instance) is not cached: it may have seen the old row.
	if s.regGen.Load() == gen {
		cached := r
		s.registries.Store(key, &cached)
	}
	return &r, nil
}

// forgetRegistries clears the registry cache after a write.
func (s *Store) forgetRegistries() {
	s.regGen.Add(1)
	s.registries.Clear()
}

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
	defer s.registriesChanged(ctx)
	defer s.webhooksChanged(ctx) // its webhooks go with it
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
	defer s.registriesChanged(ctx)
	if err := s.db.WithContext(ctx).Model(r).Update("ingest_token", s.cipher.Seal(tok)).Error; err != nil {
		return "", fmt.Errorf("store: rotate ingest token of %q: %w", r.Name, err)
	}
	return tok, nil
}

// SetLoginServer changes a registry's login server (validated by
// ValidateLoginServer) and returns the one it had. Events ingested from
// then on name the new one as request.host; queued deliveries keep the
// payload they were rendered with.
func (s *Store) SetLoginServer(ctx context.Context, r *Registry, loginServer string) (string, error) {
	ls, err := ValidateLoginServer(loginServer)
	if err != nil {
		return "", fmt.Errorf("store: set login server of %q: %w: %w", r.Name, ErrInvalidInput, err)
	}
	old := r.LoginServer
	defer s.registriesChanged(ctx)
	if err := s.db.WithContext(ctx).Model(r).Update("login_server", ls).Error; err != nil {
		return "", fmt.Errorf("store: set login server of %q: %w", r.Name, err)
	}
	r.LoginServer = ls
	return old, nil
}

// EnsureDefaultRegistry creates the default registry, with login server
// DefaultLoginServer, when there is none at all.
func (s *Store) EnsureDefaultRegistry(ctx context.Context) error {
	return s.EnsureDefaultRegistryWith(ctx, DefaultLoginServer)
}

// EnsureDefaultRegistryWith creates the default registry with the given
// login server (--login-server) when there is none at all. Later starts
// leave it alone: admins change it on the Registries page.
func (s *Store) EnsureDefaultRegistryWith(ctx context.Context, loginServer string) error {
	var n int64
	if err := s.db.WithContext(ctx).Model(&Registry{}).Count(&n).Error; err != nil {
		return fmt.Errorf("store: count registries: %w", err)
	}
	if n > 0 {
		return nil
	}
	if loginServer == "" {
		loginServer = DefaultLoginServer
	}
	in := RegistryInput{Name: DefaultRegistryName, SKU: SKUPremium, LoginServer: loginServer}
	if errs := in.Validate(); len(errs) > 0 {
		return fmt.Errorf("store: create the default registry: %w: %s", ErrInvalidInput, errs["login_server"])
	}
	if _, err := s.CreateRegistry(ctx, in); err != nil && !errors.Is(err, ErrAlreadyExists) {
		return err // ErrAlreadyExists: another instance starting at the same time made it
	}
	return nil
}
