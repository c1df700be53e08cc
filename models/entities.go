package models

import (
	"encoding/json"
	"strings"
	"time"
)

// Registry is a container registry whose events Registry Hooks receives. It
// mirrors the ARM resource Microsoft.ContainerRegistry/registries.
type Registry struct {
	ID             uint   `gorm:"primaryKey"`
	Name           string `gorm:"size:50;not null;uniqueIndex:idx_registry_name,collate:nocase"`
	SubscriptionID string `gorm:"size:36;not null"`
	ResourceGroup  string `gorm:"size:90;not null"`
	Location       string `gorm:"size:64;not null"`
	SKU            string `gorm:"column:sku;size:16;not null"`
	LoginServer    string `gorm:"size:255;not null"`
	// TagsJSON holds the ARM tags as a JSON object.
	TagsJSON string `gorm:"column:tags;not null;default:'{}'"`
	// IngestToken is the per-registry bearer token a Distribution registry or
	// a script uses on the ingest endpoints. Sealed at rest.
	IngestToken string `gorm:"not null;default:''"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Tags decodes TagsJSON; a malformed value yields an empty map.
func (r *Registry) Tags() map[string]string { return decodeTags(r.TagsJSON) }

// Webhook is one webhook of a registry. ServiceURI and CustomHeaders are
// secrets: the store seals them at rest and callers get them decrypted.
type Webhook struct {
	ID         uint   `gorm:"primaryKey"`
	RegistryID uint   `gorm:"not null;uniqueIndex:idx_webhook_name,priority:1"`
	Name       string `gorm:"size:50;not null;uniqueIndex:idx_webhook_name,priority:2,collate:nocase"`
	ServiceURI string `gorm:"column:service_uri;not null"`
	// Headers are the custom headers, decrypted. Not a column: the store
	// keeps them sealed in HeadersSealed.
	Headers       map[string]string `gorm:"-"`
	HeadersSealed string            `gorm:"column:custom_headers;not null;default:''"`
	// ActionsCSV is the comma-separated list of trigger actions.
	ActionsCSV string `gorm:"column:actions;not null"`
	Status     string `gorm:"size:16;not null"`
	Scope      string `gorm:"size:512;not null;default:''"`
	Location   string `gorm:"size:64;not null"`
	TagsJSON   string `gorm:"column:tags;not null;default:'{}'"`
	CreatedBy  string `gorm:"size:64;not null;default:''"`
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// EnabledAt (unix ns) is when the webhook was created or last went from
	// disabled to enabled. The auto-disable window never reaches back past
	// it, so a webhook just enabled again gets a whole window to recover.
	EnabledAt int64 `gorm:"not null;default:0"`
	// AutoDisabledAt (unix ns) is when the system disabled the webhook
	// because its deliveries kept failing (see AutoDisableRule); 0 when it
	// did not. Enabling the webhook clears it and AutoDisabledReason.
	AutoDisabledAt     int64  `gorm:"not null;default:0"`
	AutoDisabledReason string `gorm:"not null;default:''"`
	// SigningSecret is the Standard Webhooks signing secret
	// ("whsec_<base64>"), empty when the webhook does not sign; sealed at
	// rest, decrypted by the store. PreviousSigningSecret is the one it
	// replaced at SigningRotatedAt (unix ns): deliveries carry its signature
	// too for SigningOverlap after a rotation.
	SigningSecret         string `gorm:"column:signing_secret;not null;default:''"`
	PreviousSigningSecret string `gorm:"column:previous_signing_secret;not null;default:''"`
	SigningRotatedAt      int64  `gorm:"column:signing_rotated_at;not null;default:0"`
	// Unreadable is set by the list queries on a webhook whose sealed
	// secrets the key cannot open (ServiceURI and Headers are then empty),
	// so one damaged row does not hide the others. Not a column.
	Unreadable bool `gorm:"-"`

	Registry *Registry `gorm:"constraint:OnDelete:CASCADE"`
}

// AutoDisabled reports whether the system disabled the webhook, and since
// when.
func (w *Webhook) AutoDisabled() (time.Time, bool) {
	if w.AutoDisabledAt == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, w.AutoDisabledAt), true
}

// Actions returns the trigger actions.
func (w *Webhook) Actions() []string {
	if w.ActionsCSV == "" {
		return nil
	}
	return strings.Split(w.ActionsCSV, ",")
}

// HasAction reports whether the webhook triggers on action.
func (w *Webhook) HasAction(action string) bool {
	for _, a := range w.Actions() {
		if a == action {
			return true
		}
	}
	return false
}

// Tags decodes TagsJSON.
func (w *Webhook) Tags() map[string]string { return decodeTags(w.TagsJSON) }

// Enabled reports whether the webhook delivers events.
func (w *Webhook) Enabled() bool { return w.Status == StatusEnabled }

// ParsedScope returns the parsed scope; a stored scope is always valid, so an
// error (from a hand-edited database) degrades to matching nothing.
func (w *Webhook) ParsedScope() (Scope, bool) {
	s, err := ParseScope(w.Scope)
	return s, err == nil
}

// Event is one registry event (or a ping), stored once and shared by all of
// its deliveries. Payload is the exact JSON body every delivery sends.
//
// ID is the public event id (the payload's "id", shown on pages) and is
// unique per registry only: two registries may send the same id, and each
// is delivered. Seq is the row's key, which deliveries reference.
type Event struct {
	Seq        int64  `gorm:"column:seq;primaryKey"`
	ID         string `gorm:"column:id;size:64;not null"`
	RegistryID uint   `gorm:"not null"`
	Action     string `gorm:"size:16;not null"`
	Repository string `gorm:"size:255;not null;default:''"`
	Tag        string `gorm:"size:128;not null;default:''"`
	Digest     string `gorm:"size:128;not null;default:''"`
	// Source says where the event came from: distribution, api, ping.
	Source    string `gorm:"size:16;not null"`
	Payload   []byte `gorm:"not null"`
	CreatedAt int64  `gorm:"not null;index;autoCreateTime:false"` // unix nanoseconds
}

// Image returns "repository:tag", "repository@digest" or "" for a ping.
func (e *Event) Image() string {
	switch {
	case e.Repository == "":
		return ""
	case e.Tag != "":
		return e.Repository + ":" + e.Tag
	case e.Digest != "":
		return e.Repository + "@" + e.Digest
	}
	return e.Repository
}

// Delivery states. Pending and InFlight are "open": the dispatcher works them.
const (
	DeliveryPending   = 0
	DeliveryInFlight  = 1
	DeliverySucceeded = 2
	DeliveryFailed    = 3
)

// Delivery is the outbox row: one event to one webhook. It is written in the
// same transaction as its event and worked by the dispatcher until it
// succeeds or runs out of attempts.
type Delivery struct {
	ID uint `gorm:"primaryKey"`
	// EventSeq is the event's key; EventID its public id, kept here too so
	// lists need no join.
	EventSeq int64  `gorm:"column:event_seq;not null"`
	EventID  string `gorm:"size:64;not null"`
	// WebhookID is indexed with CreatedAt (idx_delivery_webhook: the events
	// table) and with State and CreatedAt (idx_delivery_health, migration
	// 00011: the health charts and the result filter).
	WebhookID uint `gorm:"not null;index:idx_delivery_webhook,priority:1"`
	State     int  `gorm:"not null;default:0;index:idx_delivery_due,priority:1"`
	Attempts  int  `gorm:"not null;default:0"`
	// AvailableAt (unix ns) is when the dispatcher may claim the row next:
	// the retry time while pending, the lease expiry while in flight.
	//
	// Indexed with State, not by a partial index on open rows: SQLite with
	// foreign keys on makes every change of a column in a partial index's
	// WHERE clause about ten times dearer, and claims and results change
	// State on every delivery.
	AvailableAt int64 `gorm:"not null;index:idx_delivery_due,priority:2"`
	// LeaseOwner is the instance that last claimed the row (random per
	// process start) and LeaseToken counts claims: a result is written only
	// while the token it was claimed with is still the row's.
	LeaseOwner string `gorm:"column:lease_owner;not null;default:''"`
	LeaseToken int64  `gorm:"column:lease_token;not null;default:0"`
	// Last* summarise the latest attempt for tables that list deliveries.
	LastStatusCode int    `gorm:"not null;default:0"`
	LastReason     string `gorm:"size:128;not null;default:''"`
	LastError      string `gorm:"not null;default:''"`
	LastDurationMS int64  `gorm:"column:last_duration_ms;not null;default:0"`
	CreatedAt      int64  `gorm:"not null;index:idx_delivery_webhook,priority:2;autoCreateTime:false"`
	UpdatedAt      int64  `gorm:"not null;autoUpdateTime:false"`

	Event   *Event   `gorm:"foreignKey:EventSeq;references:Seq;constraint:OnDelete:CASCADE"`
	Webhook *Webhook `gorm:"constraint:OnDelete:CASCADE"`
}

// Open reports whether the delivery still awaits an attempt.
func (d *Delivery) Open() bool { return d.State < DeliverySucceeded }

// Attempt records one HTTP request made for a delivery and what came back.
// Header values of custom headers are stored masked; the body sent is the
// event's payload and is not copied.
type Attempt struct {
	ID              uint   `gorm:"primaryKey"`
	DeliveryID      uint   `gorm:"not null;index"`
	WebhookID       uint   `gorm:"not null;index:idx_attempt_webhook,priority:1"`
	EventID         string `gorm:"size:64;not null"`
	Number          int    `gorm:"not null"`
	RequestURI      string `gorm:"column:request_uri;not null"`
	RequestHeaders  string `gorm:"not null;default:'{}'"` // JSON object, secrets masked
	StatusCode      int    `gorm:"not null;default:0"`    // 0: no HTTP response
	ReasonPhrase    string `gorm:"size:128;not null;default:''"`
	ResponseHeaders string `gorm:"not null;default:'{}'"`
	ResponseBody    string `gorm:"not null;default:''"`
	Truncated       bool   `gorm:"not null;default:false"`
	Error           string `gorm:"not null;default:''"`
	DurationMS      int64  `gorm:"column:duration_ms;not null;default:0"`
	StartedAt       int64  `gorm:"not null;index:idx_attempt_webhook,priority:2"`
	// Superseded marks a result that came back after its lease was lost
	// (expired and claimed again): kept as history, it changed nothing.
	Superseded bool `gorm:"not null;default:false"`

	Delivery *Delivery `gorm:"constraint:OnDelete:CASCADE"`
}

// User is a portal account.
type User struct {
	ID           uint   `gorm:"primaryKey"`
	Username     string `gorm:"size:64;not null;uniqueIndex:idx_username,collate:nocase"`
	PasswordHash string `gorm:"not null"`
	Role         string `gorm:"size:16;not null"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Roles, from least to most privileged.
const (
	RoleReader      = "Reader"
	RoleContributor = "Contributor"
	RoleAdmin       = "Admin"
)

// RoleRank orders roles so a check can ask for "at least Contributor".
func RoleRank(role string) int {
	switch role {
	case RoleReader:
		return 1
	case RoleContributor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Session is a signed-in browser. ID is the SHA-256 of the cookie value, so a
// leaked database does not leak live sessions.
type Session struct {
	ID        string `gorm:"primaryKey;size:64"`
	UserID    uint   `gorm:"not null;index"`
	CSRFToken string `gorm:"size:64;not null"`
	ExpiresAt time.Time
	CreatedAt time.Time

	User *User `gorm:"constraint:OnDelete:CASCADE"`
}

// APIToken is a bearer token for the ARM-compatible API. Only its SHA-256 is
// stored; the value is shown once, when it is created.
type APIToken struct {
	ID         uint   `gorm:"primaryKey"`
	Name       string `gorm:"size:64;not null"`
	Hash       string `gorm:"size:64;not null;uniqueIndex"`
	Prefix     string `gorm:"size:16;not null"`
	Role       string `gorm:"size:16;not null;default:'Contributor'"`
	CreatedBy  string `gorm:"size:64;not null;default:''"`
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// AuditEntry records who did what to which resource.
type AuditEntry struct {
	ID     uint      `gorm:"primaryKey"`
	At     time.Time `gorm:"index"`
	Actor  string    `gorm:"size:64;not null"`
	Action string    `gorm:"size:64;not null"`
	Target string    `gorm:"not null"`
	Detail string    `gorm:"not null;default:''"`
}

// DecodeHeaders reads a header object as Attempt stores it (JSON, one
// string per name). Lists, as an http.Header would hold them, are joined
// with ", "; anything unreadable yields an empty map.
func DecodeHeaders(s string) map[string]string {
	out := map[string]string{}
	var raw map[string]json.RawMessage
	if s == "" || json.Unmarshal([]byte(s), &raw) != nil {
		return out
	}
	for k, v := range raw {
		var one string
		if json.Unmarshal(v, &one) == nil {
			out[k] = one
			continue
		}
		var many []string
		if json.Unmarshal(v, &many) == nil {
			out[k] = strings.Join(many, ", ")
		}
	}
	return out
}

func decodeTags(s string) map[string]string {
	m := map[string]string{}
	if s != "" {
		_ = json.Unmarshal([]byte(s), &m)
	}
	return m
}

func encodeTags(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}
