// Package metrics is the server's Prometheus instrumentation: the counters
// the ingest handlers and the dispatcher report to, gauges of the outbox
// read from the database at scrape time, Go runtime and process metrics,
// and HTTP server metrics labelled by route template (never by path, so
// the label set stays bounded whatever URLs clients send).
//
// Nothing here is global: main builds one Metrics per server and passes it
// to whoever reports (handlers.Deps.Metrics, Dispatcher.Observe). Labels
// never carry secrets: no URIs, header values, tokens or webhook names.
package metrics

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Backlog is what the outbox gauges read at scrape time.
type Backlog interface {
	// OutboxBacklog returns the number of open deliveries (pending or in
	// flight) and when the oldest of them was queued (ok false when none).
	OutboxBacklog(ctx context.Context) (open int64, oldest time.Time, ok bool, err error)
}

// Metrics holds every collector of one server. The zero value is not
// usable; build it with New. All methods are safe for concurrent use, and
// a nil *Metrics ignores every report, so callers need no checks.
type Metrics struct {
	reg          *prometheus.Registry
	ingested     *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	finished     *prometheus.CounterVec
	duration     prometheus.Histogram
	autoDisabled prometheus.Counter
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	log          *slog.Logger
}

// Sources of ingested events, the values of the source label.
const (
	SourceDistribution = "distribution"
	SourceEvents       = "events"
)

// New registers the collectors. backlog (may be nil in tests) feeds the
// outbox gauges; now is the clock their age is measured against (nil:
// time.Now).
func New(backlog Backlog, now func() time.Time, log *slog.Logger) *Metrics {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registryhooks_events_ingested_total",
			Help: "Registry events stored by the ingest endpoints, by source (distribution or events); retried duplicates are not counted.",
		}, []string{"source"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registryhooks_delivery_attempts_total",
			Help: "HTTP delivery attempts made, by outcome: success (2xx) or failure (any other status, timeout or connection error).",
		}, []string{"outcome"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registryhooks_deliveries_finished_total",
			Help: "Deliveries that reached a final state: succeeded, or failed after their last attempt.",
		}, []string{"state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "registryhooks_delivery_attempt_duration_seconds",
			Help:    "Duration of one delivery attempt, from dialling to the end of the response body.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		autoDisabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registryhooks_webhooks_auto_disabled_total",
			Help: "Webhooks disabled by the system because all their deliveries failed for --auto-disable-after.",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registryhooks_http_requests_total",
			Help: "HTTP requests served, by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "registryhooks_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method and route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		log: log,
	}
	// Both outcomes and states exist from the start, so rate() and alert
	// expressions see 0 rather than no series.
	for _, o := range []string{"success", "failure"} {
		m.attempts.WithLabelValues(o)
	}
	for _, s := range []string{"succeeded", "failed"} {
		m.finished.WithLabelValues(s)
	}
	for _, s := range []string{SourceDistribution, SourceEvents} {
		m.ingested.WithLabelValues(s)
	}
	m.reg.MustRegister(m.ingested, m.attempts, m.finished, m.duration, m.autoDisabled, m.httpRequests, m.httpDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if backlog != nil {
		m.reg.MustRegister(&outboxCollector{backlog: backlog, now: now, log: log})
	}
	return m
}

// Registry returns the registry the collectors are in (for tests and for
// callers that add their own).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// EventsIngested counts n events stored from source (SourceDistribution or
// SourceEvents; anything else is counted as events).
func (m *Metrics) EventsIngested(source string, n int) {
	if m == nil || n <= 0 {
		return
	}
	if source != SourceDistribution {
		source = SourceEvents
	}
	m.ingested.WithLabelValues(source).Add(float64(n))
}

// AttemptDone counts one delivery attempt and observes its duration.
func (m *Metrics) AttemptDone(elapsed time.Duration, success bool) {
	if m == nil {
		return
	}
	outcome := "failure"
	if success {
		outcome = "success"
	}
	m.attempts.WithLabelValues(outcome).Inc()
	m.duration.Observe(elapsed.Seconds())
}

// DeliveryFinished counts a delivery that reached its final state.
func (m *Metrics) DeliveryFinished(succeeded bool) {
	if m == nil {
		return
	}
	state := "failed"
	if succeeded {
		state = "succeeded"
	}
	m.finished.WithLabelValues(state).Inc()
}

// WebhooksAutoDisabled counts n webhooks the system disabled.
func (m *Metrics) WebhooksAutoDisabled(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.autoDisabled.Add(float64(n))
}

// Handler serves the metrics in the Prometheus text format. A non-empty
// token must come as "Authorization: Bearer <token>" (compared in constant
// time; 401 otherwise); empty leaves the endpoint open.
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)})
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="registryhooks-metrics"`)
			http.Error(w, "a valid 'Authorization: Bearer <metrics token>' header is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Middleware records every request's count and duration under its route
// template (c.Path(): "/registries/:registry/webhooks", not the path
// itself). Requests that match no route share the route "unmatched".
func (m *Metrics) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				// Let the error handler write the answer first, so the
				// status recorded is the one sent.
				c.Error(err)
			}
			route := c.Path()
			if route == "" || route == "/*" {
				route = "unmatched"
			}
			method := c.Request().Method
			switch method {
			case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
			default:
				method = "other"
			}
			m.httpRequests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
			m.httpDuration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// outboxCollector reads the outbox gauges from the database at each
// scrape: one index-only count and one primary-key lookup.
type outboxCollector struct {
	backlog Backlog
	now     func() time.Time
	log     *slog.Logger
}

var (
	pendingDesc = prometheus.NewDesc("registryhooks_outbox_pending",
		"Deliveries waiting to be sent or being sent (pending or in flight), read from the database at scrape time.", nil, nil)
	oldestDesc = prometheus.NewDesc("registryhooks_outbox_oldest_pending_age_seconds",
		"Age of the oldest delivery still waiting (pending or in flight); 0 when none waits.", nil, nil)
)

func (o *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- oldestDesc
}

func (o *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, oldest, ok, err := o.backlog.OutboxBacklog(ctx)
	if err != nil {
		o.log.Warn("metrics: read the outbox backlog", "err", err)
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		ch <- prometheus.NewInvalidMetric(oldestDesc, err)
		return
	}
	age := 0.0
	if ok {
		age = max(o.now().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
