// Package handlers holds the echo handlers of the portal, the ingest
// endpoints and the ARM-compatible API: bind, validate, store, render.
package handlers

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/registryhooks/registryhooks/models"
)

// Kicker wakes the dispatcher when new deliveries are committed, so they go
// out at once instead of at the next poll.
type Kicker interface{ Kick() }

// Deps are what the handlers need, passed in by the composition root.
type Deps struct {
	Store *models.Store
	// Dispatcher is woken after every commit that queues deliveries.
	Dispatcher Kicker
	Log        *slog.Logger
	// IngestToken, when set, is accepted on the ingest endpoints of every
	// registry in addition to each registry's own token.
	IngestToken string
	// APIToken, when set, is accepted on the ARM API in addition to the
	// tokens created in the portal.
	APIToken string
	// MaxIngestBody caps ingest request bodies (413 past it). Default 1 MiB.
	MaxIngestBody int64
	// AllowPrivateTargets lets webhooks target loopback and private networks.
	AllowPrivateTargets bool
	// SecureCookies marks cookies Secure (set when serving TLS).
	SecureCookies bool
	// CheckTarget, when set, tells whether the dispatcher would refuse to
	// connect to a service URI (SSRF guard), so the form can say so at once.
	// It returns nil when the target is allowed or cannot be checked now.
	CheckTarget func(ctx context.Context, uri string) error
	// SessionTTL is how long a sign-in lasts. Default 12h.
	SessionTTL time.Duration
	// SignInThrottle limits password guessing. Default: a
	// StoreSignInThrottle on Store, shared by every instance on the database.
	SignInThrottle SignInThrottle
	// PublicURL, when set, is the scheme and host (no trailing slash) of
	// every link the server builds; otherwise links use the request's Host.
	PublicURL string
	// TrustedProxies are the peers whose X-Forwarded-Proto is believed.
	// Empty: nobody's.
	TrustedProxies []netip.Prefix
	// Metrics, when set, counts the events ingest stores.
	Metrics IngestMetrics
}

// IngestMetrics counts stored events by source ("distribution" for the
// Distribution endpoint, "events" for the ACR-shaped one).
type IngestMetrics interface {
	EventsIngested(source string, n int)
}

// Handler carries Deps to every handler method.
type Handler struct {
	Deps
	// tokenFails counts bearer-token failures (API, ingest) per client
	// address, in this process's memory (see tokenFailBurst).
	tokenFails *limiterSet
	// healthCache keeps the settled buckets of the health charts.
	healthCache *healthCache
}

// New returns a Handler; zero-valued limits get their defaults.
func New(d Deps) *Handler {
	if d.MaxIngestBody <= 0 {
		d.MaxIngestBody = 1 << 20
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = 12 * time.Hour
	}
	if d.SignInThrottle == nil {
		d.SignInThrottle = NewStoreSignInThrottle(d.Store, nil)
	}
	return &Handler{Deps: d, tokenFails: newLimiterSet(rate.Every(tokenFailEvery), tokenFailBurst, nil), healthCache: newHealthCache()}
}
