package web

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/web/dispatch"
)

// Config is every setting of the server. Each field is filled from a flag or
// the environment variable of the same meaning (the flag wins) by Load.
type Config struct {
	// Addr is the listen address. Default 127.0.0.1:8080 (REGISTRYHOOKS_ADDR).
	Addr string
	// DB is the SQLite file path, or a postgres:// or postgresql:// URL
	// (PostgreSQL 13+, any number of instances on one database). Default
	// registryhooks.db (REGISTRYHOOKS_DB).
	DB string
	// DBMaxConns bounds this instance's PostgreSQL connection pool. Default
	// 8 (plus one connection that listens), so ten instances fit in
	// PostgreSQL's default of 100 connections (REGISTRYHOOKS_DB_MAX_CONNS).
	DBMaxConns int
	// AdminPassword is the first admin's password, used only when no user
	// exists yet. Empty: one is generated and logged once
	// (REGISTRYHOOKS_ADMIN_PASSWORD).
	AdminPassword string
	// IngestToken is accepted on the ingest endpoints of every registry, in
	// addition to each registry's own token (REGISTRYHOOKS_INGEST_TOKEN).
	IngestToken string
	// APIToken is accepted on the ARM API in addition to tokens created in
	// the portal (REGISTRYHOOKS_API_TOKEN).
	APIToken string
	// AllowPrivateTargets lets webhooks target loopback and private
	// addresses. Default false (REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS=true).
	AllowPrivateTargets bool
	// SecretKey seals secrets at rest (64 hex characters or a passphrase).
	// Empty: the key in KeyFile is used, created on first start
	// (REGISTRYHOOKS_SECRET_KEY).
	SecretKey string
	// KeyFile holds the generated key. Default: the DB path plus ".key"
	// (REGISTRYHOOKS_KEY_FILE). On PostgreSQL there is no default: every
	// instance must open the others' secrets, so SecretKey or an existing
	// KeyFile shared by all of them is required.
	KeyFile string
	// TLSCert and TLSKey, both set, make the server speak HTTPS
	// (REGISTRYHOOKS_TLS_CERT, REGISTRYHOOKS_TLS_KEY).
	TLSCert, TLSKey string
	// SessionTTL is how long a sign-in lasts. Default 12h.
	SessionTTL time.Duration
	// MaxIngestBody caps ingest request bodies. Default 1 MiB.
	MaxIngestBody int64
	// LogFormat is text or json. Default text (REGISTRYHOOKS_LOG_FORMAT).
	LogFormat string
	// LoginServer is the default registry's login server, set when it is
	// created at first start; it is request.host in every payload. Default
	// localhost:5000 (REGISTRYHOOKS_LOGIN_SERVER).
	LoginServer string
	// RetrySchedule is --retry-schedule as given: the waits before each
	// retry, comma-separated. Default 5s,5m,30m,2h,5h,10h,10h
	// (REGISTRYHOOKS_RETRY_SCHEDULE); parsed into Dispatch.RetrySchedule.
	RetrySchedule string
	// MetricsToken, when set, is the bearer token GET /metrics requires.
	// Empty: the endpoint is open (REGISTRYHOOKS_METRICS_TOKEN).
	MetricsToken string
	// Dispatch configures the delivery dispatcher (timeout, attempts, ...).
	Dispatch dispatch.Config
	// AutoDisableAfter disables a webhook whose deliveries have all failed
	// this long, at least 3 of them (see dispatch.AutoDisableConfig). Default
	// 72h; 0 = never (REGISTRYHOOKS_AUTO_DISABLE_AFTER).
	AutoDisableAfter time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For and
	// X-Forwarded-Proto are believed (CIDRs or addresses, comma-separated).
	// Default none: the client is the peer (REGISTRYHOOKS_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// PublicURL is the scheme and host (optionally a path prefix) links are
	// built on (nextLink, ingest URLs). Default: from the request
	// (REGISTRYHOOKS_PUBLIC_URL).
	PublicURL string
}

// Load fills a Config from args (without the program and subcommand
// names) and the environment given by getenv, then validates it.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Config{}
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	// A set but unreadable variable is an error naming it, never a quiet
	// fall back to the default (even when a flag overrides it).
	var envErrs []error
	envBool := func(name string) bool {
		v := getenv(name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q is not a boolean (use true or false)", name, v))
		}
		return b
	}
	envDur := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q is not a duration (write it with a unit, such as 5s, 10m or 72h)", name, v))
			return def
		}
		return d
	}
	envInt := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s=%q is not a whole number", name, v))
			return def
		}
		return n
	}
	fs := flag.NewFlagSet("registryhooks serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", env("REGISTRYHOOKS_ADDR", "127.0.0.1:8080"), "listen address (REGISTRYHOOKS_ADDR)")
	fs.StringVar(&c.DB, "db", env("REGISTRYHOOKS_DB", "registryhooks.db"), "SQLite database file, or a postgres:// URL (REGISTRYHOOKS_DB)")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", envInt("REGISTRYHOOKS_DB_MAX_CONNS", 8), "PostgreSQL connections of this instance (REGISTRYHOOKS_DB_MAX_CONNS)")
	fs.DurationVar(&c.Dispatch.Lease, "lease-ttl", envDur("REGISTRYHOOKS_LEASE_TTL", 0), "how long a claimed delivery stays leased without a heartbeat; a killed instance's deliveries are taken over after this; default 25s, or --delivery-timeout plus 5s when longer (REGISTRYHOOKS_LEASE_TTL)")
	fs.DurationVar(&c.Dispatch.HeartbeatInterval, "lease-heartbeat", envDur("REGISTRYHOOKS_LEASE_HEARTBEAT", 0), "how often an instance renews its leases; default a third of --lease-ttl (REGISTRYHOOKS_LEASE_HEARTBEAT)")
	fs.BoolVar(&c.AllowPrivateTargets, "allow-private-targets", envBool("REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS"), "allow webhook targets on loopback and private networks (REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS)")
	fs.StringVar(&c.KeyFile, "key-file", env("REGISTRYHOOKS_KEY_FILE", ""), "file holding the key that seals secrets at rest; default: <db>.key (REGISTRYHOOKS_KEY_FILE)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("REGISTRYHOOKS_TLS_CERT", ""), "TLS certificate file; with --tls-key serves HTTPS (REGISTRYHOOKS_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("REGISTRYHOOKS_TLS_KEY", ""), "TLS key file (REGISTRYHOOKS_TLS_KEY)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", envDur("REGISTRYHOOKS_SESSION_TTL", 12*time.Hour), "how long a sign-in lasts (REGISTRYHOOKS_SESSION_TTL)")
	fs.StringVar(&c.LogFormat, "log-format", env("REGISTRYHOOKS_LOG_FORMAT", "text"), "log format: text or json (REGISTRYHOOKS_LOG_FORMAT)")
	fs.DurationVar(&c.Dispatch.Timeout, "delivery-timeout", envDur("REGISTRYHOOKS_DELIVERY_TIMEOUT", 5*time.Second), "timeout of one delivery attempt (REGISTRYHOOKS_DELIVERY_TIMEOUT)")
	fs.IntVar(&c.Dispatch.MaxAttempts, "max-attempts", envInt("REGISTRYHOOKS_MAX_ATTEMPTS", 0), "attempts per delivery before it is marked failed; 0: one more than --retry-schedule has waits, 8 by default (REGISTRYHOOKS_MAX_ATTEMPTS)")
	fs.StringVar(&c.RetrySchedule, "retry-schedule", env("REGISTRYHOOKS_RETRY_SCHEDULE", dispatch.FormatRetrySchedule(dispatch.DefaultRetrySchedule)), "waits before each retry, comma-separated; the last repeats when --max-attempts asks for more (REGISTRYHOOKS_RETRY_SCHEDULE)")
	fs.BoolVar(&c.Dispatch.Retry4xx, "retry-4xx", envBool("REGISTRYHOOKS_RETRY_4XX"), "retry every non-2xx, not only timeouts, connection errors, 408, 425, 429 and 5xx (REGISTRYHOOKS_RETRY_4XX)")
	fs.StringVar(&c.Dispatch.UserAgent, "user-agent", env("REGISTRYHOOKS_USER_AGENT", dispatch.DefaultUserAgent), "User-Agent of every delivery (REGISTRYHOOKS_USER_AGENT)")
	fs.StringVar(&c.LoginServer, "login-server", env("REGISTRYHOOKS_LOGIN_SERVER", models.DefaultLoginServer), "the default registry's login server, set when it is created at first start (REGISTRYHOOKS_LOGIN_SERVER)")
	fs.IntVar(&c.Dispatch.Workers, "workers", envInt("REGISTRYHOOKS_WORKERS", 32), "concurrent deliveries in all (REGISTRYHOOKS_WORKERS)")
	fs.IntVar(&c.Dispatch.PerEndpoint, "per-endpoint", envInt("REGISTRYHOOKS_PER_ENDPOINT", 4), "concurrent deliveries to one webhook (REGISTRYHOOKS_PER_ENDPOINT)")
	fs.DurationVar(&c.Dispatch.Retention, "retention", envDur("REGISTRYHOOKS_RETENTION", 7*24*time.Hour), "how long finished events are kept (REGISTRYHOOKS_RETENTION)")
	fs.DurationVar(&c.AutoDisableAfter, "auto-disable-after", envDur("REGISTRYHOOKS_AUTO_DISABLE_AFTER", 72*time.Hour), "disable a webhook whose deliveries have all failed this long, at least 3 of them; 0 = never (REGISTRYHOOKS_AUTO_DISABLE_AFTER)")
	trusted := fs.String("trusted-proxies", env("REGISTRYHOOKS_TRUSTED_PROXIES", ""), "proxies whose X-Forwarded-For/-Proto are believed, CIDRs comma-separated (REGISTRYHOOKS_TRUSTED_PROXIES)")
	fs.StringVar(&c.PublicURL, "public-url", env("REGISTRYHOOKS_PUBLIC_URL", ""), "public URL used in links the server builds; default: from the request (REGISTRYHOOKS_PUBLIC_URL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if len(envErrs) > 0 {
		return c, fmt.Errorf("config: %w", errors.Join(envErrs...))
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	c.AdminPassword = getenv("REGISTRYHOOKS_ADMIN_PASSWORD")
	c.IngestToken = getenv("REGISTRYHOOKS_INGEST_TOKEN")
	c.APIToken = getenv("REGISTRYHOOKS_API_TOKEN")
	c.SecretKey = getenv("REGISTRYHOOKS_SECRET_KEY")
	c.MetricsToken = getenv("REGISTRYHOOKS_METRICS_TOKEN")
	c.MaxIngestBody = 1 << 20
	c.Dispatch.AllowPrivateTargets = c.AllowPrivateTargets
	if err := checkTokenLengths(getenv); err != nil {
		return c, err
	}
	var err error
	if c.TrustedProxies, err = parsePrefixes(*trusted); err != nil {
		return c, fmt.Errorf("config: --trusted-proxies: %w", err)
	}
	if c.PublicURL, err = parsePublicURL(c.PublicURL); err != nil {
		return c, fmt.Errorf("config: --public-url: %w", err)
	}
	return c, c.validate()
}

// parsePrefixes reads comma-separated CIDRs; a bare address is its own
// /32 or /128.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR or an IP address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8)", f)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// parsePublicURL accepts an absolute http or https URL with a host and no
// query, fragment or user info, and returns it without a trailing slash.
func parsePublicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q must be an absolute http or https URL like https://hooks.example.com", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// MinTokenLength is the shortest bearer token the server accepts from the
// environment: failures are throttled per address, but a short token is
// still guessable from many addresses.
const MinTokenLength = 16

// checkTokenLengths refuses tokens from the environment that are set but
// too short, naming each, so the server never starts with a weak one.
func checkTokenLengths(getenv func(string) string) error {
	var errs []error
	for _, name := range []string{"REGISTRYHOOKS_API_TOKEN", "REGISTRYHOOKS_INGEST_TOKEN", "REGISTRYHOOKS_METRICS_TOKEN"} {
		if v := getenv(name); v != "" && len(v) < MinTokenLength {
			errs = append(errs, fmt.Errorf("%s is %d characters long; use at least %d (for example: openssl rand -hex 24)", name, len(v), MinTokenLength))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func (c *Config) validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("--addr must not be empty"))
	}
	if c.DB == "" {
		errs = append(errs, errors.New("--db must not be empty"))
	}
	if c.KeyFile == "" && !c.Postgres() {
		c.KeyFile = c.DB + ".key"
	}
	if c.Postgres() && c.SecretKey == "" && c.KeyFile == "" {
		errs = append(errs, errors.New("--db is PostgreSQL: set REGISTRYHOOKS_SECRET_KEY or --key-file, the same for every instance (a key generated per instance could not open the others' secrets)"))
	}
	if c.DBMaxConns < 2 {
		errs = append(errs, errors.New("--db-max-conns must be at least 2"))
	}
	if c.Dispatch.Lease == 0 {
		c.Dispatch.Lease = max(25*time.Second, c.Dispatch.Timeout+5*time.Second)
	}
	if c.Dispatch.HeartbeatInterval == 0 {
		c.Dispatch.HeartbeatInterval = c.Dispatch.Lease / 3
	}
	if c.Dispatch.Lease < c.Dispatch.Timeout+2*time.Second {
		errs = append(errs, errors.New("--lease-ttl must be at least --delivery-timeout plus 2s"))
	}
	if c.Dispatch.HeartbeatInterval <= 0 || 2*c.Dispatch.HeartbeatInterval > c.Dispatch.Lease {
		errs = append(errs, errors.New("--lease-heartbeat must be positive and at most half of --lease-ttl"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key must be given together"))
	}
	if c.SessionTTL < time.Minute {
		errs = append(errs, errors.New("--session-ttl (REGISTRYHOOKS_SESSION_TTL) must be at least 1m"))
	}
	if c.Dispatch.Timeout <= 0 || c.Dispatch.Timeout > 5*time.Minute {
		errs = append(errs, errors.New("--delivery-timeout (REGISTRYHOOKS_DELIVERY_TIMEOUT) must be between 1ms and 5m"))
	}
	if c.Dispatch.MaxAttempts < 0 || c.Dispatch.MaxAttempts > 100 {
		errs = append(errs, errors.New("--max-attempts (REGISTRYHOOKS_MAX_ATTEMPTS) must be between 1 and 100 (0: one more than --retry-schedule has waits)"))
	}
	if sched, err := dispatch.ParseRetrySchedule(c.RetrySchedule); err != nil {
		errs = append(errs, fmt.Errorf("--retry-schedule: %w", err))
	} else {
		c.Dispatch.RetrySchedule = sched
	}
	if ua := c.Dispatch.UserAgent; ua == "" || len(ua) > 256 || strings.ContainsFunc(ua, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		errs = append(errs, errors.New("--user-agent must be 1-256 characters without control characters"))
	}
	if ls, err := models.ValidateLoginServer(c.LoginServer); err != nil {
		errs = append(errs, fmt.Errorf("--login-server: %w", err))
	} else {
		c.LoginServer = ls
	}
	if c.Dispatch.Workers < 1 || c.Dispatch.PerEndpoint < 1 {
		errs = append(errs, errors.New("--workers (REGISTRYHOOKS_WORKERS) and --per-endpoint (REGISTRYHOOKS_PER_ENDPOINT) must be at least 1"))
	}
	if c.AutoDisableAfter < 0 {
		errs = append(errs, errors.New("--auto-disable-after must be 0 (never) or positive"))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, errors.New("--log-format (REGISTRYHOOKS_LOG_FORMAT) must be text or json"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Postgres reports whether DB names a PostgreSQL database.
func (c *Config) Postgres() bool {
	return strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://")
}

// TLS reports whether the server serves HTTPS.
func (c *Config) TLS() bool { return c.TLSCert != "" }
