// Package views holds the templ components and the view models they render.
// It knows nothing of echo or GORM: handlers fill the view models.
package views

// Page carries what every page of the portal shows around its content.
type Page struct {
	Title string
	// User and Role of the signed-in person; empty on the sign-in page.
	User string
	Role string
	// CSRF is sent back by every form (field _csrf) and by htmx requests
	// (header X-CSRF-Token, set once on <body>).
	CSRF string
	// Registry is the current registry's name; Registries all names, for the
	// switcher.
	Registry   string
	Registries []string
	// Nav names the active navigation entry: webhooks, registries, tokens,
	// users, audit.
	Nav string
	// Flash is a one-time confirmation shown as a toast.
	Flash string
	// FlashError marks Flash as an error.
	FlashError bool
}

// CanEdit reports whether the user may change webhooks (Contributor+).
func (p Page) CanEdit() bool { return p.Role == "Contributor" || p.Role == "Admin" }

// IsAdmin reports whether the user administers users, registries, tokens.
func (p Page) IsAdmin() bool { return p.Role == "Admin" }

// LoginVM is the sign-in form.
type LoginVM struct {
	Page
	Username string
	Next     string
	Error    string
}

// WebhookRow is one line of the webhooks blade.
type WebhookRow struct {
	Name       string
	URL        string
	Status     string
	Scope      string
	Actions    string
	HTTPStatus string
	// Tone colours the HTTP status: ok, error, pending, none.
	Tone string
	// AutoDisabled is set when the system disabled the webhook.
	AutoDisabled AutoDisabledVM
	// Health is the last 24 hours of its deliveries.
	Health HealthVM
}

// BladeVM is the Webhooks blade of a registry.
type BladeVM struct {
	Page
	Rows  []WebhookRow
	SKU   string
	Quota int
	Count int
	// AddURL opens the create form; empty when the quota is reached.
	AddURL string
	// TableURL reloads this page of the table alone (Refresh, polling).
	TableURL string
	// Polling makes the table refresh itself while a delivery shown on it
	// is open, so its HTTP status changes without a reload.
	Polling bool
	// PageN of Pages (1-based); PrevURL and NextURL are empty at the ends.
	PageN, Pages     int
	PrevURL, NextURL string
}

// HealthVM is a webhook's deliveries over a window: counts, success rate
// and one bar per time bucket for a small SVG chart.
type HealthVM struct {
	// Window names the span: "24 hours", "7 days".
	Window    string
	Succeeded int64
	Failed    int64
	Open      int64
	// Rate is the success rate of finished deliveries ("97%"), empty when
	// none finished.
	Rate string
	// Failing is set when under 80% of the finished deliveries succeeded.
	Failing bool
	Bars    []HealthBar
	// BucketLabel says how long one bar is ("1 hour").
	BucketLabel string
}

// Total is every delivery of the window.
func (h HealthVM) Total() int64 { return h.Succeeded + h.Failed + h.Open }

// HealthBar is one time bucket of a health chart.
type HealthBar struct {
	Succeeded, Failed, Open int64
}

// FormVM is the create or edit form of a webhook, re-rendered with the
// submitted values and per-field errors when validation fails.
type FormVM struct {
	Page
	Editing     bool
	Action      string // form POST target
	ValidateURL string // inline validation endpoint (…/validate)
	CancelURL   string
	Name        string
	ServiceURI  string
	Headers     string
	Scope       string
	Status      string
	Actions     map[string]bool
	Errors      map[string]string
	// General is an error not tied to one field (quota, storage).
	General string
}

// AllActions is the order the Actions checkboxes are shown in.
var AllActions = []string{"push", "delete", "quarantine", "chart_push", "chart_delete"}

// KV is one header line.
type KV struct{ Key, Value string }

// WebhookVM is a webhook's own page.
type WebhookVM struct {
	Page
	Name       string
	BaseURL    string // /registries/{r}/webhooks/{w}
	Status     string
	Scope      string
	Actions    string
	Location   string
	ServiceURI string // masked unless revealed
	Headers    []KV   // values masked
	CreatedAt  string
	CreatedBy  string
	Events     EventsVM
	// AutoDisabled is set when the system disabled the webhook.
	AutoDisabled AutoDisabledVM
	// FailedSince pre-fills the bulk redeliver form (UTC, datetime-local).
	FailedSince string
	// Signing is the signing secret property.
	Signing SigningSecretVM
	// Health is its deliveries of the last 24 hours and 7 days.
	Health HealthSectionVM
}

// HealthSectionVM is the webhook page's Health section: two windows, the
// fragment's URL, and whether it polls (a delivery of the webhook is
// pending or in flight).
type HealthSectionVM struct {
	URL                 string
	Polling             bool
	Health24h, Health7d HealthVM
}

// EventsVM is the webhook's events table, one page of deliveries, newest
// first, paged by cursor (keyset), filtered by the fields of Filter.
type EventsVM struct {
	BaseURL string // the events fragment URL, without the query
	PageURL string // the webhook page, where the filter form goes
	Rows    []EventRow
	Filter  EventFilter
	// SelfQuery, NewerQuery and OlderQuery are the query strings (with
	// the filter) of this page and its neighbours; the last two are empty
	// at the ends.
	SelfQuery, NewerQuery, OlderQuery string
	// Polling makes the fragment refresh itself while a delivery is open.
	Polling bool
	// Partial says the filter searched its window of deliveries without
	// filling the page; Older searches on.
	Partial bool
	// Scan is how many deliveries such a window holds.
	Scan int
}

// EventFilter is what the events table is narrowed to; empty fields match all.
type EventFilter struct {
	Result     string // succeeded, failed, pending
	Action     string
	Repository string
}

// Active reports whether any filter is set.
func (f EventFilter) Active() bool { return f.Result != "" || f.Action != "" || f.Repository != "" }

// EventResults and EventActions are the choices of the filter form.
var (
	EventResults = []string{"succeeded", "failed", "pending"}
	EventActions = []string{"push", "delete", "quarantine", "chart_push", "chart_delete", "ping"}
)

// EventRow is one delivery in the events table.
type EventRow struct {
	DeliveryID uint
	EventID    string
	Action     string
	Image      string
	Timestamp  string
	HTTPStatus string
	Tone       string
	Duration   string
	Attempts   int
	DetailURL  string
}

// EventDetailVM shows one attempt of a delivery: Request and Response tabs.
type EventDetailVM struct {
	EventID  string
	Action   string
	Attempts []AttemptTab
	Selected int // index into Attempts
	State    string
	// Outcome says when the next attempt goes out, or why the delivery
	// ended ("refused by the receiver: 400 Bad Request").
	Outcome         string
	RequestMethod   string
	RequestURI      string
	RequestHeaders  []KV
	RequestBody     string
	ResponseStatus  string
	ResponseHeaders []KV
	ResponseBody    string
	Truncated       bool
	Error           string
	Duration        string
	StartedAt       string
	CloseURL        string
	// RedeliverURL queues the event again; empty for users who may not.
	RedeliverURL string
}

// AttemptTab links to one attempt of a delivery.
type AttemptTab struct {
	Number int
	URL    string
	Label  string
}

// RegistryRow is one registry in the registries list.
type RegistryRow struct {
	Name          string
	SKU           string
	LoginServer   string
	Location      string
	ResourceGroup string
	Webhooks      int64
	Quota         int
	URL           string
}

// RegistriesVM is the registries page with its Add form.
type RegistriesVM struct {
	Page
	Rows   []RegistryRow
	Form   RegistryFormVM
	Ingest *IngestVM
}

// RegistryFormVM is the Add registry form.
type RegistryFormVM struct {
	Name        string
	SKU         string
	LoginServer string
	Location    string
	Errors      map[string]string
}

// IngestVM tells how to point a registry at the ingest endpoints.
type IngestVM struct {
	Registry        string
	Token           string
	DistributionURL string
	EventsURL       string
	RotateURL       string
	// LoginServer is the registry's login server (or the value an admin
	// just gave, with LoginServerError); LoginServerURL its form's action.
	LoginServer      string
	LoginServerURL   string
	LoginServerError string
}

// TokenRow is one API token.
type TokenRow struct {
	ID        uint
	Name      string
	Prefix    string
	Role      string
	CreatedBy string
	CreatedAt string
	LastUsed  string
	Revoked   bool
	RevokeURL string
}

// TokensVM is the API tokens page.
type TokensVM struct {
	Page
	Rows    []TokenRow
	NewName string
	NewRole string
	Error   string
	Created string // the new token's value, shown once
	APIBase string
}

// UserRow is one account.
type UserRow struct {
	ID       uint
	Username string
	Role     string
	Self     bool
}

// UsersVM is the users page.
type UsersVM struct {
	Page
	Rows    []UserRow
	NewName string
	NewRole string
	Error   string
}

// AuditRow is one audit entry.
type AuditRow struct {
	At, Actor, Action, Target, Detail string
}

// AuditVM is the audit trail page.
type AuditVM struct {
	Page
	Rows  []AuditRow
	PageN int
	Pages int
}

// ErrorVM is a full-page error (403, 404, 500).
type ErrorVM struct {
	Page
	Code    int
	Message string
}
