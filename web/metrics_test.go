package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/web"
)

const (
	metricsToken  = "test-metrics-token"
	ingestToken   = "test-ingest-token"
	secretHeader  = "Bearer receiver-secret-value"
	secretURIPath = "/hook/sekrit-path-token"
)

// running is a server with its dispatcher started, on a loopback port.
type running struct {
	url   string
	store *models.Store
	reg   *models.Registry
}

func startServer(t *testing.T, flags ...string) running {
	t.Helper()
	env := map[string]string{"REGISTRYHOOKS_ADMIN_PASSWORD": adminPassword, "REGISTRYHOOKS_INGEST_TOKEN": ingestToken,
		"REGISTRYHOOKS_METRICS_TOKEN": metricsToken}
	cfg, err := web.Load(append([]string{"--db", filepath.Join(t.TempDir(), "m.db"), "--allow-private-targets"}, flags...),
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	reg, err := srv.Store().GetRegistry(context.Background(), "myregistry")
	if err != nil {
		t.Fatal(err)
	}
	return running{url: "http://" + ln.Addr().String(), store: srv.Store(), reg: reg}
}

// scrape reads /metrics with the token and parses the text format.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+metricsToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams, string(body)
}

// value returns the value of the series of family name whose labels
// include want; -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func post(t *testing.T, url, contentType, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ingestToken)
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, b)
	}
	return res.StatusCode
}

func pushEvent(id, tag string) string {
	return fmt.Sprintf(`{"id":%q,"action":"push","target":{"repository":"team/app","tag":%q,"digest":"sha256:%064x","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1234}}`, id, tag, 7)
}

func TestMetricsAfterKnownTraffic(t *testing.T) {
	t.Parallel()
	var okHits, badHits atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		okHits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer bad.Close()
	release := make(chan struct{})
	var releaseOnce atomic.Bool
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer func() {
		if releaseOnce.CompareAndSwap(false, true) {
			close(release)
		}
	}()

	// One attempt per delivery, so a 500 ends a delivery as failed at once.
	s := startServer(t, "--max-attempts", "1", "--delivery-timeout", "30s")
	ctx := context.Background()
	mk := func(name, uri string, actions ...string) {
		in := models.WebhookInput{Name: name, ServiceURI: uri, Actions: actions, Status: "enabled",
			Headers: map[string]string{"Authorization": secretHeader}}
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		if _, err := s.store.CreateWebhook(ctx, s.reg, in, "test"); err != nil {
			t.Fatal(err)
		}
	}
	mk("okhook1", ok.URL+secretURIPath, "push")
	mk("badhook1", bad.URL+secretURIPath, "push")

	// Unauthenticated scrapes are refused.
	res, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("GET /metrics without token: %d, WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}

	// Three events posted as scripts do (one of them twice: a duplicate)
	// and one Distribution push: 4 stored events, each to 2 webhooks.
	for i, id := range []string{"ev-1", "ev-2", "ev-3", "ev-3"} {
		post(t, s.url+"/ingest/events/myregistry", "application/json", pushEvent(id, fmt.Sprintf("v%d", i)))
	}
	envelope := `{"events":[{"id":"dist-1","timestamp":"2026-11-24T20:05:00Z","action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:` +
		strings.Repeat("ab", 32) + `","size":500,"length":500,"repository":"team/app","tag":"v9"},"request":{"id":"r1","host":"localhost:5000","method":"PUT","useragent":"docker"}}]}`
	post(t, s.url+"/ingest/distribution/myregistry", "application/vnd.docker.distribution.events.v1+json", envelope)

	// Wait until the dispatcher recorded all 8 results.
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(20 * time.Second)
	for {
		fams, _ = scrape(t, s.url)
		if value(fams, "registryhooks_deliveries_finished_total", map[string]string{"state": "succeeded"})+
			value(fams, "registryhooks_deliveries_finished_total", map[string]string{"state": "failed"}) >= 8 &&
			value(fams, "registryhooks_outbox_pending", nil) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the 8 deliveries did not finish in time")
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := []struct {
		name   string
		labels map[string]string
		v      float64
	}{
		{"registryhooks_events_ingested_total", map[string]string{"source": "events"}, 3},
		{"registryhooks_events_ingested_total", map[string]string{"source": "distribution"}, 1},
		{"registryhooks_delivery_attempts_total", map[string]string{"outcome": "success"}, float64(okHits.Load())},
		{"registryhooks_delivery_attempts_total", map[string]string{"outcome": "failure"}, float64(badHits.Load())},
		{"registryhooks_delivery_attempts_total", map[string]string{"outcome": "success"}, 4},
		{"registryhooks_delivery_attempts_total", map[string]string{"outcome": "failure"}, 4},
		{"registryhooks_deliveries_finished_total", map[string]string{"state": "succeeded"}, 4},
		{"registryhooks_deliveries_finished_total", map[string]string{"state": "failed"}, 4},
		{"registryhooks_delivery_attempt_duration_seconds", nil, 8},
		{"registryhooks_outbox_pending", nil, 0},
		{"registryhooks_outbox_oldest_pending_age_seconds", nil, 0},
		{"registryhooks_webhooks_auto_disabled_total", nil, 0},
		{"registryhooks_http_requests_total", map[string]string{"method": "POST", "route": "/ingest/events/:registry", "code": "202"}, 4},
		{"registryhooks_http_requests_total", map[string]string{"method": "POST", "route": "/ingest/distribution/:registry", "code": "202"}, 1},
	}
	for _, w := range want {
		if got := value(fams, w.name, w.labels); got != w.v {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "registryhooks_http_request_duration_seconds"} {
		if fams[name] == nil {
			t.Errorf("%s is missing", name)
		}
	}

	// A receiver that hangs keeps two deliveries open: the gauges see them.
	mk("hanghook1", hang.URL+secretURIPath, "delete")
	for _, id := range []string{"del-1", "del-2"} {
		post(t, s.url+"/ingest/events/myregistry", "application/json",
			fmt.Sprintf(`{"id":%q,"action":"delete","target":{"repository":"team/app","digest":"sha256:%064x"}}`, id, 9))
	}
	time.Sleep(1100 * time.Millisecond)
	fams, body := scrape(t, s.url)
	if got := value(fams, "registryhooks_outbox_pending", nil); got != 2 {
		t.Errorf("registryhooks_outbox_pending = %v, want 2", got)
	}
	if got := value(fams, "registryhooks_outbox_oldest_pending_age_seconds", nil); got < 1 || got > 60 {
		t.Errorf("registryhooks_outbox_oldest_pending_age_seconds = %v, want about 1", got)
	}
	// Bounded labels and no secrets: no registry or webhook name, no URI
	// path, no header value.
	for _, leak := range []string{"myregistry", "okhook1", secretURIPath, secretHeader, "sekrit", ingestToken, metricsToken} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics contains %q", leak)
		}
	}
	if releaseOnce.CompareAndSwap(false, true) {
		close(release)
	}
}

func TestMetricsUnmatchedRoutesShareOneLabel(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, p := range []string{"/no/such/page-1", "/no/such/page-2", "/registries/x/y/z/w"} {
		res, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %d", p, res.StatusCode)
		}
	}
	fams, body := scrape(t, s.url)
	if got := value(fams, "registryhooks_http_requests_total", map[string]string{"route": "unmatched", "code": "404"}); got != 3 {
		t.Errorf("unmatched 404s = %v, want 3\n%s", got, grep(body, "http_requests_total"))
	}
	if strings.Contains(body, "page-1") {
		t.Error("a path became a label value")
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
