// Package web is the server: configuration, the route table, middleware
// and the central error handler. The dispatcher and the ACR payload format
// live in the subpackages dispatch and acr.
package web

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/registryhooks/registryhooks/handlers"
	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/static"
	"github.com/registryhooks/registryhooks/web/dispatch"
	"github.com/registryhooks/registryhooks/web/metrics"
)

// Server is the running portal: HTTP server, store and dispatcher.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *models.Store
	disp  *dispatch.Dispatcher
	echo  *echo.Echo
	// autoDisable disables webhooks whose deliveries keep failing.
	autoDisable *dispatch.AutoDisabler
}

// New opens the database (creating and migrating it), makes sure the admin
// account and the default registry exist, and builds the HTTP handler.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Postgres() && cfg.SecretKey == "" {
		// Never generate a key per instance: the others could not open it.
		if _, err := os.Stat(cfg.KeyFile); err != nil {
			return nil, fmt.Errorf("web: --db is PostgreSQL and the key file %s cannot be read (%w); create it once (64 hex characters) and give the same file to every instance, or set REGISTRYHOOKS_SECRET_KEY", cfg.KeyFile, err)
		}
	}
	store, err := models.Open(cfg.DB, models.Options{Log: log, MaxConns: cfg.DBMaxConns})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	rep, err := store.UnlockSecrets(ctx, models.KeySource{Setting: cfg.SecretKey, File: cfg.KeyFile})
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("web: %w", err)
	}
	logUnlock(log, rep, cfg.KeyFile)
	if err := store.EnsureDefaultRegistryWith(ctx, cfg.LoginServer); err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("web: %w", err)
	}
	generated, err := store.EnsureAdmin(ctx, cfg.AdminPassword)
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("web: %w", err)
	}
	if generated != "" {
		// Printed once, on the first start only, so the first person can
		// sign in. It is the one secret the log ever carries.
		log.Warn("created the admin account with a generated password; sign in and keep it safe",
			"username", models.AdminUsername, "password", generated)
	}
	disp := dispatch.New(store, cfg.Dispatch, log)
	m := metrics.New(store, store.Now, log)
	disp.Observe(m)
	h := handlers.New(handlers.Deps{
		Store: store, Dispatcher: disp, Log: log, IngestToken: cfg.IngestToken, APIToken: cfg.APIToken,
		MaxIngestBody: cfg.MaxIngestBody, AllowPrivateTargets: cfg.AllowPrivateTargets,
		SecureCookies: cfg.TLS(), SessionTTL: cfg.SessionTTL,
		PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies, Metrics: m,
		CheckTarget: func(ctx context.Context, uri string) error {
			// Only a refusal counts; a name that does not resolve now may
			// resolve later, and every delivery is checked again at dial time.
			var te *dispatch.TargetError
			if err := dispatch.CheckTarget(ctx, uri, cfg.AllowPrivateTargets); errors.As(err, &te) {
				return te
			}
			return nil
		},
	})
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Use(saneRequestID(), requestID(), middleware.Recover(), requestLogger(log), m.Middleware(), securityHeaders(cfg.TLS()))
	routes(e, h, m.Handler(cfg.MetricsToken))
	ad := dispatch.NewAutoDisabler(store, dispatch.AutoDisableConfig{After: cfg.AutoDisableAfter,
		OnAutoDisabled: func(uint) { m.WebhooksAutoDisabled(1) }}, log)
	return &Server{cfg: cfg, log: log, store: store, disp: disp, echo: e, autoDisable: ad}, nil
}

// Migrate applies the schema migrations of the database at db and closes
// it; serve applies them too, at start.
func Migrate(db string, log *slog.Logger) error {
	s, err := models.Open(db, models.Options{Log: log})
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	return s.Close()
}

// logUnlock reports what checking the key against the database found.
func logUnlock(log *slog.Logger, rep models.UnlockReport, keyFile string) {
	if rep.CreatedKeyFile {
		log.Info("created a new key for secrets at rest; back it up with the database", "key_file", keyFile)
	}
	if rep.Resealed > 0 {
		log.Info("sealed secrets again with the key derived by scrypt", "secrets", rep.Resealed)
	}
	for _, what := range rep.Unreadable {
		log.Error("a sealed secret cannot be opened with this key; its webhook fails until it is saved again", "secret", what)
	}
}

// Handler returns the HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.echo }

// Store returns the server's store (for tests and commands).
func (s *Server) Store() *models.Store { return s.store }

// Run starts the dispatcher and serves until ctx is cancelled, then shuts
// down gracefully: the listener stops, requests in flight finish, the
// dispatcher finishes or releases its deliveries, the database closes.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if err := s.disp.Start(ctx); err != nil {
		_ = ln.Close()
		return fmt.Errorf("web: start dispatcher: %w", err)
	}
	if err := s.autoDisable.Start(ctx); err != nil {
		_ = ln.Close()
		_ = s.disp.Stop(ctx)
		return fmt.Errorf("web: start auto-disable: %w", err)
	}
	srv := &http.Server{
		Handler: s.echo,
		// Timeouts keep slow clients (slowloris) from holding connections.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if s.cfg.TLS() {
		scheme = "https"
	}
	s.log.Info("Registry Hooks is listening", "url", scheme+"://"+ln.Addr().String(), "db", redactDB(s.cfg.DB), "instance", s.store.InstanceID())
	go s.housekeeping(ctx)
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS() {
			errc <- srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	errs := []error{}
	if err := srv.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("web: shutdown: %w", err))
	}
	if err := s.autoDisable.Stop(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("web: stop auto-disable: %w", err))
	}
	if err := s.disp.Stop(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("web: stop dispatcher: %w", err))
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, err)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, serveErr)
	}
	return errors.Join(errs...)
}

// housekeeping removes expired sessions every hour until ctx ends.
func (s *Server) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := s.store.PruneSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning sessions failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ipExtractor finds the client's address: the peer's, or, when the peer is
// a trusted proxy, the nearest untrusted address in X-Forwarded-For. echo's
// extractor trusts loopback, link-local and private peers by default; here
// only the configured proxies are.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// saneRequestID drops an X-Request-Id a client sent that is longer than 64
// bytes or has characters other than letters, digits, '-', '_' and '.', so echo's RequestID (which keeps any
// incoming id) makes a new one instead of copying junk into every log line.
func saneRequestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Request().Header
			if id := h.Get(echo.HeaderXRequestID); id != "" && (len(id) > 64 || strings.ContainsFunc(id, notIDChar)) {
				h.Del(echo.HeaderXRequestID)
			}
			return next(c)
		}
	}
}

func notIDChar(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
}

// requestID is echo's RequestID: an id per request (the proxy's, when it
// sent a sane one) in the response's X-Request-Id and in the context as
// request_id, for the error handler's log lines.
func requestID() echo.MiddlewareFunc {
	return middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) { c.Set("request_id", id) },
	})
}

// requestLogger logs each request once through echo's request logger, with
// no query string (it may carry tokens) and no headers. Errors are handed
// to the error handler first, so the status logged is the one sent.
func requestLogger(log *slog.Logger) echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		Skipper: func(c echo.Context) bool {
			path := c.Request().URL.Path
			return strings.HasPrefix(path, "/static/") || path == "/healthz" || path == "/readyz" || path == "/metrics"
		},
		HandleError: true,
		LogMethod:   true, LogURIPath: true, LogStatus: true, LogLatency: true, LogRemoteIP: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			log.LogAttrs(c.Request().Context(), level, "request",
				slog.Any("request_id", c.Get("request_id")), slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status_code", v.Status), slog.Int64("duration_ms", v.Latency.Milliseconds()), slog.String("remote_addr", v.RemoteIP))
			return nil
		},
	})
}

// securityHeaders is echo's Secure middleware with the CSP (no inline
// script or style), framing and sniffing protections, the referrer policy
// and, over TLS, HSTS; plus Cross-Origin-Opener-Policy, which Secure does
// not set.
func securityHeaders(tls bool) echo.MiddlewareFunc {
	const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	cfg := middleware.SecureConfig{
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		ContentSecurityPolicy: csp,
		ReferrerPolicy:        "same-origin",
		HSTSExcludeSubdomains: true,
	}
	if tls {
		cfg.HSTSMaxAge = 31536000
	}
	secure := middleware.SecureWithConfig(cfg)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		withSecure := secure(next)
		return func(c echo.Context) error {
			c.Response().Header().Set("Cross-Origin-Opener-Policy", "same-origin")
			return withSecure(c)
		}
	}
}

// errorHandler is the one place errors become responses and are logged:
// JSON in ARM's shape for the API and ingest, a page for the portal.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		code := http.StatusInternalServerError
		msg := "Something went wrong on our side. The error was logged; please try again."
		var he *echo.HTTPError
		if errors.As(err, &he) {
			code = he.Code
			if m, ok := he.Message.(string); ok {
				msg = m
			} else {
				msg = http.StatusText(code)
			}
		}
		if he == nil && strings.HasPrefix(c.Request().URL.Path, "/ingest") {
			// Ingest could not reach or write the database (PostgreSQL
			// restarting, a failover): nothing was accepted, and a 503
			// makes Distribution and scripts retry.
			code = http.StatusServiceUnavailable
			msg = "The event store is not available right now; nothing was accepted. Retry later."
			c.Response().Header().Set("Retry-After", "5")
		}
		if code >= 500 {
			log.Error("request failed", "request_id", c.Get("request_id"), "method", c.Request().Method,
				"path", c.Request().URL.Path, "err", err)
		}
		path := c.Request().URL.Path
		if strings.HasPrefix(path, "/subscriptions") || strings.HasPrefix(path, "/ingest") {
			armCode := map[int]string{400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 429: "TooManyRequests",
				404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType"}[code]
			if armCode == "" {
				armCode = "InternalServerError"
			}
			c.Response().Header().Set("x-ms-error-code", armCode)
			_ = c.JSON(code, map[string]any{"error": map[string]string{"code": armCode, "message": msg}})
			return
		}
		if c.Request().Header.Get("HX-Request") == "true" {
			c.Response().Header().Set("HX-Reswap", "none")
			_ = c.String(code, msg)
			return
		}
		_ = c.HTML(code, fmt.Sprintf(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%d · Registry Hooks</title>`+
			`<link rel="stylesheet" href="/static/app.css"></head><body class="bg-slate-50 p-10 text-slate-800">`+
			`<main class="mx-auto max-w-lg rounded-lg border border-slate-200 bg-white p-8 text-center">`+
			`<p class="text-sm font-semibold text-rose-600">%d</p><h1 class="mt-2 text-xl font-semibold">%s</h1>`+
			`<p class="mt-4"><a class="text-sky-700 underline" href="/">Back to the portal</a></p></main></body></html>`,
			code, code, html.EscapeString(msg)))
	}
}

// staticHandler serves the embedded assets with a short cache lifetime.
func staticHandler() echo.HandlerFunc {
	sub, _ := fs.Sub(static.FS, ".")
	fileServer := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return func(c echo.Context) error {
		if strings.HasSuffix(c.Request().URL.Path, "/") || strings.HasSuffix(c.Request().URL.Path, ".go") {
			return echo.NewHTTPError(http.StatusNotFound, "Not found")
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		fileServer.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

// redactDB hides a PostgreSQL URL's password for the log.
func redactDB(db string) string {
	u, err := url.Parse(db)
	if err != nil || u.User == nil {
		return db
	}
	return u.Redacted()
}
