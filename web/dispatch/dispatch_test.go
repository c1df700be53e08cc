package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

// clock is a fake clock shared by the store and the dispatcher.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testBundle struct {
	ctx   context.Context
	store *models.Store
	reg   *models.Registry
	clk   *clock
	d     *Dispatcher
}

// setup opens a real SQLite store in a temp dir and a dispatcher on a fake
// clock whose workers and writer run, but whose claim loop does not: the
// test calls runOnce.
func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, reg := modelstest.Open(t, models.Options{Now: clk.Now})
	ctx := context.Background()
	if cfg.RetrySchedule == nil { // short waits, doubling, so tests step through retries
		cfg.RetrySchedule = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
			16 * time.Second, 32 * time.Second, 64 * time.Second}
	}
	d := New(s, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.now = clk.Now
	d.jitter = func() float64 { return 0 }
	d.startWorkers()
	t.Cleanup(func() {
		d.cancelWork()
		d.stopWorkers()
	})
	return &testBundle{ctx: ctx, store: s, reg: reg, clk: clk, d: d}
}

func (b *testBundle) webhook(t *testing.T, name, uri string, headers map[string]string) *models.Webhook {
	t.Helper()
	in := models.WebhookInput{Name: name, ServiceURI: uri, Headers: headers, Actions: []string{"push", "delete"}}
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (b *testBundle) ingest(t *testing.T, n int) []string {
	t.Helper()
	var evs []*models.Event
	var ids []string
	for i := range n {
		id := fmt.Sprintf("ev-%d-%d", time.Now().UnixNano(), i)
		ids = append(ids, id)
		evs = append(evs, &models.Event{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: "team/app", Tag: "v1",
			Source: "api", Payload: []byte(`{"id":"` + id + `","action":"push"}`)})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	return ids
}

// round claims once and waits until every claimed delivery is recorded.
func (b *testBundle) round(t *testing.T) int {
	t.Helper()
	n, err := b.d.runOnce(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := b.d.waitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *testBundle) deliveries(t *testing.T, w *models.Webhook) []models.DeliveryRow {
	t.Helper()
	rows, _, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (b *testBundle) attempts(t *testing.T, deliveryID uint) []models.Attempt {
	t.Helper()
	as, err := b.store.ListAttempts(b.ctx, deliveryID)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

type captured struct {
	body    string
	headers http.Header
}

func receiver(t *testing.T, status int) (*httptest.Server, chan captured) {
	t.Helper()
	ch := make(chan captured, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- captured{body: string(body), headers: r.Header.Clone()}
		w.Header().Set("X-Receiver", "yes")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "thanks")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestDeliverySucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, got := receiver(t, http.StatusOK)
	w := b.webhook(t, "hookOk", srv.URL+"/hook", map[string]string{"Authorization": "Basic c2VjcmV0"})
	ids := b.ingest(t, 1)

	if n := b.round(t); n != 1 {
		t.Fatalf("claimed %d, want 1", n)
	}
	c := <-got
	if want := `{"id":"` + ids[0] + `","action":"push"}`; c.body != want {
		t.Errorf("body = %s, want %s", c.body, want)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": DefaultUserAgent, "Authorization": "Basic c2VjcmV0"} {
		if c.headers.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, c.headers.Get(k), want)
		}
	}
	rows := b.deliveries(t, w)
	if len(rows) != 1 || rows[0].State != models.DeliverySucceeded || rows[0].Attempts != 1 || rows[0].LastStatusCode != 200 || rows[0].LastReason != "OK" {
		t.Fatalf("delivery = %+v", rows)
	}
	as := b.attempts(t, rows[0].ID)
	if len(as) != 1 {
		t.Fatalf("attempts = %d", len(as))
	}
	a := as[0]
	var reqH, respH map[string]string
	_ = json.Unmarshal([]byte(a.RequestHeaders), &reqH)
	_ = json.Unmarshal([]byte(a.ResponseHeaders), &respH)
	if a.StatusCode != 200 || a.ReasonPhrase != "OK" || a.ResponseBody != "thanks" || a.Number != 1 || a.Error != "" ||
		a.RequestURI != srv.URL[:len("http://")]+srv.Listener.Addr().String()+"/"+models.Mask || a.EventID != ids[0] || a.StartedAt != b.clk.Now().UnixNano() {
		t.Errorf("attempt = %+v", a)
	}
	if reqH["Authorization"] != models.Mask || reqH["Content-Type"] != "application/json" || reqH["User-Agent"] != DefaultUserAgent {
		t.Errorf("recorded request headers = %v", reqH)
	}
	if respH["X-Receiver"] != "yes" {
		t.Errorf("recorded response headers = %v", respH)
	}
	// Nothing left to claim.
	if n := b.round(t); n != 0 {
		t.Fatalf("second round claimed %d", n)
	}
}

func TestCustomContentTypeWins(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, got := receiver(t, http.StatusNoContent)
	w := b.webhook(t, "hookCt", srv.URL, map[string]string{"content-type": "application/cloudevents+json"})
	b.ingest(t, 1)
	b.round(t)
	if ct := (<-got).headers.Get("Content-Type"); ct != "application/cloudevents+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	rows := b.deliveries(t, w)
	a := b.attempts(t, rows[0].ID)[0]
	if !strings.Contains(a.RequestHeaders, `"Content-Type":"application/cloudevents+json"`) || rows[0].State != models.DeliverySucceeded {
		t.Fatalf("headers %s state %d", a.RequestHeaders, rows[0].State)
	}
}

func TestRetryWithBackoffThenFail(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, MaxAttempts: 3})
	srv, _ := receiver(t, http.StatusInternalServerError)
	w := b.webhook(t, "hookRetry", srv.URL, nil)
	b.ingest(t, 1)

	steps := []struct {
		advance   time.Duration
		claimed   int
		state     int
		attempts  int
		nextAfter time.Duration
	}{
		{0, 1, models.DeliveryPending, 1, time.Second},
		{500 * time.Millisecond, 0, models.DeliveryPending, 1, 500 * time.Millisecond},
		{500 * time.Millisecond, 1, models.DeliveryPending, 2, 2 * time.Second},
		{2 * time.Second, 1, models.DeliveryFailed, 3, 0},
		{time.Hour, 0, models.DeliveryFailed, 3, 0},
	}
	for i, st := range steps {
		b.clk.Advance(st.advance)
		if n := b.round(t); n != st.claimed {
			t.Fatalf("step %d: claimed %d, want %d", i, n, st.claimed)
		}
		d := b.deliveries(t, w)[0]
		if d.State != st.state || d.Attempts != st.attempts || d.LastStatusCode != 500 || d.LastReason != "Internal Server Error" {
			t.Fatalf("step %d: delivery = %+v", i, d.Delivery)
		}
		if st.state == models.DeliveryPending {
			if got := time.Unix(0, d.AvailableAt).Sub(b.clk.Now()); got != st.nextAfter {
				t.Fatalf("step %d: next attempt in %s, want %s", i, got, st.nextAfter)
			}
		}
	}
	if as := b.attempts(t, b.deliveries(t, w)[0].ID); len(as) != 3 || as[2].Number != 3 {
		t.Fatalf("attempts = %+v", as)
	}
}

func TestPingIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, _ := receiver(t, http.StatusBadGateway)
	w := b.webhook(t, "hookPing", srv.URL, nil)
	if _, err := b.store.QueuePing(b.ctx, w, &models.Event{ID: "ping-1", RegistryID: b.reg.ID, Action: "ping", Source: "ping",
		Payload: []byte(`{"id":"ping-1","action":"ping"}`)}); err != nil {
		t.Fatal(err)
	}
	b.round(t)
	b.clk.Advance(time.Hour)
	if n := b.round(t); n != 0 {
		t.Fatalf("ping retried: claimed %d", n)
	}
	d := b.deliveries(t, w)[0]
	if d.State != models.DeliveryFailed || d.Attempts != 1 || d.LastStatusCode != 502 {
		t.Fatalf("ping delivery = %+v", d.Delivery)
	}
}

func TestTimeoutIs504(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, Timeout: 100 * time.Millisecond})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	w := b.webhook(t, "hookSlow", srv.URL, nil)
	b.ingest(t, 1)
	b.round(t)
	d := b.deliveries(t, w)[0]
	a := b.attempts(t, d.ID)[0]
	if a.StatusCode != 504 || a.ReasonPhrase != "Gateway Timeout" || a.Error != "timed out after 100ms" || d.LastStatusCode != 504 || d.State != models.DeliveryPending {
		t.Fatalf("attempt = %+v delivery = %+v", a, d.Delivery)
	}
}

func TestConnectionErrors(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: bind, note, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	tests := []struct {
		name         string
		allowPrivate bool
		uri          string
		wantErr      string
	}{
		{"hookRefused", true, "http://" + dead + "/x", "connection refused: nothing listens at " + dead},
		{"hookLoopback", false, "http://" + dead + "/x", "refused: 127.0.0.1 is a loopback address; start with --allow-private-targets to allow it"},
		{"hookPrivate", false, "http://10.0.0.5:8080/x", "refused: 10.0.0.5 is a private address; start with --allow-private-targets to allow it"},
		{"hookMetadata", true, "http://169.254.169.254/latest/meta-data", "refused: 169.254.169.254 is a link-local address, which webhooks may never target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{AllowPrivateTargets: tt.allowPrivate})
			w := b.webhook(t, tt.name, tt.uri, nil)
			b.ingest(t, 1)
			b.round(t)
			d := b.deliveries(t, w)[0]
			a := b.attempts(t, d.ID)[0]
			if a.StatusCode != 0 || a.Error != tt.wantErr || d.LastError != tt.wantErr || d.State != models.DeliveryPending {
				t.Fatalf("attempt status %d error %q; want 0 %q", a.StatusCode, a.Error, tt.wantErr)
			}
		})
	}
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip           string
		allowPrivate bool
		ok           bool
	}{
		{"93.184.216.34", false, true},
		{"2606:4700::1111", false, true},
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"::1", false, false},
		{"10.0.0.5", false, false},
		{"10.0.0.5", true, true},
		{"172.16.3.4", false, false},
		{"192.168.1.1", false, false},
		{"fc00::1", false, false},
		{"0.0.0.0", false, false},
		{"::ffff:10.0.0.1", false, false},
		{"169.254.169.254", true, false},
		{"fe80::1", true, false},
		{"fd00:ec2::254", true, false},
		{"100.100.100.200", true, false},
		{"::ffff:169.254.169.254", true, false},
	}
	for _, tt := range tests {
		err := checkAddr(netipMust(tt.ip), tt.allowPrivate)
		if (err == nil) != tt.ok {
			t.Errorf("checkAddr(%s, allowPrivate=%v) = %v, want ok=%v", tt.ip, tt.allowPrivate, err, tt.ok)
		}
	}
	if err := CheckTarget(context.Background(), "http://127.0.0.1:8080/x", false); err == nil {
		t.Error("CheckTarget let loopback through")
	}
	if err := CheckTarget(context.Background(), "ftp://example.com/", true); err == nil {
		t.Error("CheckTarget accepted ftp")
	}
	if err := CheckTarget(context.Background(), "http://127.0.0.1:8080/x", true); err != nil {
		t.Errorf("CheckTarget with allowPrivate: %v", err)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "http://169.254.169.254/", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "hookRedir", srv.URL, nil)
	b.ingest(t, 1)
	b.round(t)
	d := b.deliveries(t, w)[0]
	if d.LastStatusCode != 302 || d.State != models.DeliveryPending || hits.Load() != 1 {
		t.Fatalf("delivery = %+v, hits %d", d.Delivery, hits.Load())
	}
}

func TestLargeResponseTruncated(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", 100<<10)))
	}))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "hookBig", srv.URL, nil)
	b.ingest(t, 1)
	b.round(t)
	a := b.attempts(t, b.deliveries(t, w)[0].ID)[0]
	if !a.Truncated || len(a.ResponseHeaders)+len(a.ResponseBody) != recordBudget || a.StatusCode != 200 {
		t.Fatalf("truncated=%v len=%d+%d status=%d", a.Truncated, len(a.ResponseHeaders), len(a.ResponseBody), a.StatusCode)
	}
}

// A hanging endpoint holds at most PerEndpoint workers; the others' deliveries
// go out meanwhile.
func TestPerEndpointIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, Workers: 6, PerEndpoint: 2, Prefetch: 2, Timeout: 10 * time.Second, Lease: time.Minute})
	release := make(chan struct{})
	var hung atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast, _ := receiver(t, http.StatusOK)
	b.webhook(t, "hookHang", slow.URL, nil) // created first: its rows come first in due order
	wf := b.webhook(t, "hookFast", fast.URL, nil)
	b.ingest(t, 20)

	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := b.d.runOnce(b.ctx); err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, d := range b.deliveries(t, wf) {
			if d.State == models.DeliverySucceeded {
				ok++
			}
		}
		if ok == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fast webhook: %d of 20 delivered while the other hangs", ok)
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.d.mu.Lock()
	leased, busyHang := b.d.leased, b.d.busy[1]
	b.d.mu.Unlock()
	// Leased ahead: PerEndpoint*Prefetch, on both engines.
	wantLeased := 4
	if hung.Load() != 2 || leased != wantLeased || busyHang != wantLeased {
		t.Fatalf("hanging webhook holds %d requests (limit 2), %d leased (want %d)", hung.Load(), leased, wantLeased)
	}
	st, err := b.store.OutboxStats(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(st.InFlight) != wantLeased || int(st.Pending) != 20-wantLeased || st.Succeeded != 20 {
		t.Fatalf("outbox = %+v", st)
	}
}

// Rows leased by a dispatcher that died come back once the lease expires.
func TestExpiredLeaseIsReclaimed(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, Lease: 30 * time.Second})
	srv, _ := receiver(t, http.StatusOK)
	w := b.webhook(t, "hookLease", srv.URL, nil)
	b.ingest(t, 3)
	// Another dispatcher claims and vanishes.
	gone, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: b.clk.Now(), Lease: 30 * time.Second, Limit: 10, PerWebhook: 10})
	if err != nil || len(gone) != 3 {
		t.Fatalf("claimed %d, %v", len(gone), err)
	}
	b.clk.Advance(29 * time.Second)
	if n := b.round(t); n != 0 {
		t.Fatalf("claimed %d rows under a live lease", n)
	}
	b.clk.Advance(time.Second)
	if n := b.round(t); n != 3 {
		t.Fatalf("claimed %d expired rows, want 3", n)
	}
	for _, d := range b.deliveries(t, w) {
		if d.State != models.DeliverySucceeded || d.Attempts != 2 {
			t.Fatalf("delivery = %+v", d.Delivery)
		}
	}
}

func TestDeletedWebhookIsSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, got := receiver(t, http.StatusOK)
	w := b.webhook(t, "hookGone", srv.URL, nil)
	b.ingest(t, 2)
	if err := b.store.DeleteWebhook(b.ctx, w); err != nil {
		t.Fatal(err)
	}
	if n := b.round(t); n != 0 {
		t.Fatalf("claimed %d deliveries of a deleted webhook", n)
	}
	if len(got) != 0 {
		t.Fatal("a deleted webhook got a delivery")
	}
}

// A changed webhook is re-read: the next attempt uses the new URI.
func TestWebhookChangeSeen(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv1, got1 := receiver(t, http.StatusOK)
	srv2, got2 := receiver(t, http.StatusOK)
	w := b.webhook(t, "hookMoved", srv1.URL, nil)
	b.ingest(t, 1)
	b.round(t)
	in := models.InputFrom(w)
	in.ServiceURI = srv2.URL
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	b.clk.Advance(time.Second) // a new UpdatedAt
	if _, err := b.store.UpdateWebhook(b.ctx, w, in); err != nil {
		t.Fatal(err)
	}
	b.ingest(t, 1)
	b.round(t)
	if len(got1) != 1 || len(got2) != 1 {
		t.Fatalf("old URI got %d, new URI got %d; want 1 and 1", len(got1), len(got2))
	}
}

func TestStopFinishesInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	var started atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		time.Sleep(300 * time.Millisecond)
	}))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "hookStop", srv.URL, nil)
	d := New(b.store, Config{AllowPrivateTargets: true}, nil)
	d.now = b.clk.Now
	if err := d.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.ingest(t, 1)
	d.Kick()
	waitFor(t, func() bool { return started.Load() == 1 })
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if del := b.deliveries(t, w)[0]; del.State != models.DeliverySucceeded {
		t.Fatalf("after graceful stop: %+v", del.Delivery)
	}
}

func TestStopReleasesWhenOutOfTime(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	var started atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		started.Add(1)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "hookHard", srv.URL, nil)
	d := New(b.store, Config{AllowPrivateTargets: true, Timeout: 30 * time.Second}, nil)
	d.now = b.clk.Now
	if err := d.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.ingest(t, 1)
	waitFor(t, func() bool { return started.Load() == 1 })
	ctx, cancel := context.WithTimeout(b.ctx, 100*time.Millisecond)
	defer cancel()
	if err := d.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want deadline exceeded", err)
	}
	del := b.deliveries(t, w)[0]
	if del.State != models.DeliveryPending || del.Attempts != 0 || del.AvailableAt > b.clk.Now().UnixNano() {
		t.Fatalf("after hard stop: %+v", del.Delivery)
	}
	if as := b.attempts(t, del.ID); len(as) != 0 {
		t.Fatalf("a cancelled attempt was recorded: %+v", as)
	}
}

func TestStartReleasesStaleLeases(t *testing.T) {
	t.Parallel()
	if pgtestdb.Postgres() {
		t.Skip("on PostgreSQL other instances may hold live leases: only expired ones are taken over (TestExpiredLeaseIsReclaimed)")
	}
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, got := receiver(t, http.StatusOK)
	b.webhook(t, "hookCrash", srv.URL, nil)
	b.ingest(t, 2)
	if c, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: b.clk.Now(), Lease: time.Hour, Limit: 10, PerWebhook: 10}); err != nil || len(c) != 2 {
		t.Fatalf("claim %d %v", len(c), err)
	}
	d := New(b.store, Config{AllowPrivateTargets: true}, nil)
	d.now = b.clk.Now
	if err := d.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	waitFor(t, func() bool { return len(got) == 2 })
}

func TestPruneKeepsOpenAndRecent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, Retention: 24 * time.Hour})
	ok, _ := receiver(t, http.StatusOK)
	bad, _ := receiver(t, http.StatusInternalServerError)
	wOK := b.webhook(t, "hookOldOk", ok.URL, nil)
	wBad := b.webhook(t, "hookOldBad", bad.URL, nil)
	b.ingest(t, 2) // each to both webhooks
	b.round(t)
	b.clk.Advance(25 * time.Hour)
	b.ingest(t, 1)
	// The old events still have an open (retrying) delivery to hookOldBad,
	// so they stay; nothing is old enough among the new.
	if n, err := b.d.prune(b.ctx); err != nil || n != 0 {
		t.Fatalf("pruned %d, %v; want 0", n, err)
	}
	// Fail them for good.
	for i := 0; i < 10; i++ {
		b.clk.Advance(2 * time.Hour)
		b.round(t)
	}
	b.clk.Advance(-20 * time.Hour) // the newest event is 1h old again
	if n, err := b.d.prune(b.ctx); err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2", n, err)
	}
	if got := len(b.deliveries(t, wOK)); got != 1 {
		t.Fatalf("hookOldOk keeps %d deliveries, want 1", got)
	}
	if got := len(b.deliveries(t, wBad)); got != 1 {
		t.Fatalf("hookOldBad keeps %d deliveries, want 1", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

// Concurrent Ingest calls are committed (together) and each gets its own
// results; after Stop, Ingest still works, straight through the store.
func TestIngestGroupCommit(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, got := receiver(t, http.StatusOK)
	b.webhook(t, "hookGroup", srv.URL, nil)
	d := New(b.store, Config{AllowPrivateTargets: true}, nil)
	if err := d.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("group-%d", i)
			evs := []*models.Event{{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api", Payload: []byte(`{"id":"` + id + `"}`)},
				{ID: "shared", RegistryID: b.reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api", Payload: []byte(`{"id":"shared"}`)}}
			res, err := d.Ingest(b.ctx, evs)
			if err != nil || len(res) != 2 || res[0].EventID != id || res[0].Duplicate || res[0].Deliveries != 1 || res[1].EventID != "shared" {
				errs <- fmt.Errorf("ingest %d: %+v %v", i, res, err)
			}
			if !res[1].Duplicate {
				errs <- nil // exactly one call stores "shared"
			}
		}()
	}
	wg.Wait()
	close(errs)
	firsts := 0
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		firsts++
	}
	if firsts != 1 {
		t.Fatalf("%d calls stored the shared event, want 1", firsts)
	}
	waitFor(t, func() bool { return len(got) == 51 })
	if err := d.Stop(b.ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := d.Ingest(b.ctx, []*models.Event{{ID: "after-stop", RegistryID: b.reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api", Payload: []byte(`{}`)}}); err != nil || res[0].Deliveries != 1 {
		t.Fatalf("ingest after stop: %+v %v", res, err)
	}
}

// While nothing else is due, ingest leases new deliveries to the running
// dispatcher in its own transaction and starts them at once; once capacity
// runs out, the rest queue as pending and claims take them. Every event is
// delivered exactly once, each with one attempt numbered 1.
func TestIngestLeasesDirectlyThenQueues(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	gate := make(chan struct{})
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		<-gate
		mu.Lock()
		seen[string(body)]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "hookDirect", srv.URL, nil)
	// Capacity 1: one delivery leased at a time.
	d := New(b.store, Config{AllowPrivateTargets: true, Workers: 1, Prefetch: 1, PerEndpoint: 1}, nil)
	if err := d.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	waitFor(t, func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.drained })
	for i := range 3 {
		id := fmt.Sprintf("direct-%d", i)
		if _, err := d.Ingest(b.ctx, []*models.Event{{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api", Payload: []byte(id)}}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.store.OutboxStats(b.ctx)
	if err != nil || st.InFlight != 1 || st.Pending != 2 {
		t.Fatalf("with the receiver blocked: %+v, %v (want 1 leased at ingest, 2 pending)", st, err)
	}
	d.mu.Lock()
	drained := d.drained
	d.mu.Unlock()
	if drained {
		t.Fatal("still drained with deliveries pending")
	}
	close(gate)
	waitFor(t, func() bool {
		st, _ := b.store.OutboxStats(b.ctx)
		return st.Succeeded == 3
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen["direct-0"] != 1 || seen["direct-1"] != 1 || seen["direct-2"] != 1 {
		t.Fatalf("received %v, want each event once", seen)
	}
	for _, row := range b.deliveries(t, w) {
		as := b.attempts(t, row.ID)
		if len(as) != 1 || as[0].Number != 1 || as[0].StatusCode != http.StatusOK {
			t.Fatalf("delivery %d attempts %+v", row.ID, as)
		}
	}
}

// A claim can commit in the database without this process learning of it
// (its commit answered too late, or Stop cancelled it); Stop gives such
// leases back, so other instances need not wait for them to expire.
func TestStopReleasesLeasesItNeverLearntOf(t *testing.T) {
	t.Parallel()
	if !pgtestdb.Postgres() {
		t.Skip("on SQLite Start already releases every lease (one process per file): TestStartReleasesStaleLeases")
	}
	b := setup(t, Config{AllowPrivateTargets: true})
	srv, _ := receiver(t, http.StatusOK)
	w := b.webhook(t, "hookOrphan", srv.URL, nil)
	b.ingest(t, 3)
	// Leased in this instance's name behind the dispatcher's back.
	if c, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: b.clk.Now(), Lease: time.Hour, Limit: 10, PerWebhook: 10}); err != nil || len(c) != 3 {
		t.Fatalf("claim %d %v", len(c), err)
	}
	d := New(b.store, Config{AllowPrivateTargets: true}, nil)
	d.now = b.clk.Now
	if err := d.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(b.ctx); err != nil {
		t.Fatal(err)
	}
	for _, del := range b.deliveries(t, w) {
		if del.State != models.DeliveryPending || del.Attempts != 0 || del.LeaseOwner != "" || del.AvailableAt > b.clk.Now().UnixNano() {
			t.Errorf("after Stop, a delivery leased in this instance's name is still held: %+v", del.Delivery)
		}
	}
}

// A claim waits ClaimInterval after the previous one only under load: with
// one delivery in flight, a new event goes out at once, not after the
// interval.
func TestTrickleGoesOutWhileOthersAreInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	arrived := make(chan time.Time, 4)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- time.Now()
	}))
	t.Cleanup(fast.Close)
	for _, h := range []struct{ name, uri, scope string }{{"hookSlow", slow.URL, "slow:*"}, {"hookFast", fast.URL, "fast:*"}} {
		in := models.WebhookInput{Name: h.name, ServiceURI: h.uri, Actions: []string{"push"}, Scope: h.scope}
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		if _, err := b.store.CreateWebhook(b.ctx, b.reg, in, "test"); err != nil {
			t.Fatal(err)
		}
	}
	const interval = 3 * time.Second
	d := New(b.store, Config{AllowPrivateTargets: true, ClaimInterval: interval, PollInterval: time.Minute, Timeout: 20 * time.Second}, nil)
	d.now = b.clk.Now
	if err := d.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = d.Stop(ctx)
	})
	event := func(id, repo string) []*models.Event {
		return []*models.Event{{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: repo, Tag: "v1", Source: "api",
			Payload: []byte(`{"id":"` + id + `","action":"push"}`)}}
	}
	if _, err := d.Ingest(b.ctx, event("ev-slow", "slow")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.free() < d.capacity }) // the slow delivery is leased
	time.Sleep(50 * time.Millisecond)                        // the slow delivery's claim is behind us
	sent := time.Now()
	if _, err := d.Ingest(b.ctx, event("ev-fast", "fast")); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-arrived:
		if took := at.Sub(sent); took > interval/3 {
			t.Fatalf("with one delivery in flight, a new event went out after %s (ClaimInterval %s)", took, interval)
		}
	case <-time.After(2 * interval):
		t.Fatal("the new event was not delivered")
	}
}

// On PostgreSQL the dispatcher vacuums the outbox when it falls idle after
// writing VacuumAfter rows (models.TestVacuumOutbox checks the vacuum).
func TestOutboxVacuumedWhenIdle(t *testing.T) {
	t.Parallel()
	if !pgtestdb.Postgres() {
		t.Skip("SQLite keeps no dead row versions: nothing to vacuum")
	}
	b := setup(t, Config{AllowPrivateTargets: true, VacuumAfter: 20})
	srv, _ := receiver(t, http.StatusOK)
	b.webhook(t, "hookVacuum", srv.URL, nil)
	vacuumed := func() bool {
		b.d.mu.Lock()
		defer b.d.mu.Unlock()
		return !b.d.vac.last.IsZero() && !b.d.vac.running
	}
	b.ingest(t, 10)
	b.round(t)
	if vacuumed() {
		t.Fatal("vacuumed after 10 deliveries; VacuumAfter is 20")
	}
	b.ingest(t, 10)
	b.round(t)
	waitFor(t, vacuumed)
}
