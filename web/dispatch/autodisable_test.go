package dispatch

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// switchable is a loopback receiver that answers with whatever status the
// test set last, and records the bodies it got.
type switchable struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	bodies []string
}

func newSwitchable(t *testing.T, status int) *switchable {
	t.Helper()
	s := &switchable{}
	s.status.Store(int32(status))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switchable) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// autoDisabler returns the service on the bundle's store and clock, with
// its log and the webhooks it reported.
func (b *testBundle) autoDisabler(after time.Duration) (*AutoDisabler, *bytes.Buffer, *[]uint) {
	var logged bytes.Buffer
	var reported []uint
	a := NewAutoDisabler(b.store, AutoDisableConfig{After: after, OnAutoDisabled: func(id uint) { reported = append(reported, id) }},
		slog.New(slog.NewTextHandler(&logged, nil)))
	a.now = b.clk.Now
	return a, &logged, &reported
}

// deliver ingests one event and works it to the end with the receiver
// answering status (one attempt per delivery: MaxAttempts 1).
func (b *testBundle) deliver(t *testing.T, rcv *switchable, status int) {
	t.Helper()
	rcv.status.Store(int32(status))
	b.ingest(t, 1)
	if n := b.round(t); n != 1 {
		t.Fatalf("claimed %d, want 1", n)
	}
}

// The threshold, through real deliveries to a loopback receiver: the
// webhook is created at t0, its deliveries finish 71 h later, the check runs
// at 73 h with a 72 h window.
func TestAutoDisableThreshold(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		after    time.Duration
		statuses []int
		want     bool
	}{
		{"two failures stay enabled", 72 * time.Hour, []int{503, 503}, false},
		{"three failures over the window disable", 72 * time.Hour, []int{503, 500, 503}, true},
		{"a success in the window keeps it", 72 * time.Hour, []int{503, 200, 503, 503, 503}, false},
		{"zero never disables", 0, []int{503, 503, 503, 503}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{AllowPrivateTargets: true, MaxAttempts: 1})
			rcv := newSwitchable(t, 503)
			w := b.webhook(t, "thresholdHook", rcv.srv.URL, nil)
			b.clk.Advance(71 * time.Hour)
			for _, st := range c.statuses {
				b.deliver(t, rcv, st)
			}
			if len(rcv.got()) != len(c.statuses) {
				t.Fatalf("receiver got %d requests, want %d", len(rcv.got()), len(c.statuses))
			}
			b.clk.Advance(2 * time.Hour)
			a, logged, reported := b.autoDisabler(c.after)
			n, err := a.runOnce(b.ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.store.GetWebhookByID(b.ctx, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, auto := got.AutoDisabled()
			if (n == 1) != c.want || auto != c.want || (got.Status == models.StatusDisabled) != c.want || (len(*reported) == 1) != c.want {
				t.Fatalf("disabled %d, status %s, auto %v, reported %v; want disabled: %v", n, got.Status, auto, *reported, c.want)
			}
			if c.want != strings.Contains(logged.String(), "auto-disabled") {
				t.Errorf("log:\n%s", logged.String())
			}
		})
	}
}

// An auto-disabled webhook's pending deliveries are held (not attempted
// however long one waits), and go out to the receiver once the webhook is
// enabled again. The system's action is logged and reported once.
func TestAutoDisableHoldsThenReleases(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, MaxAttempts: 2})
	rcv := newSwitchable(t, 503)
	w := b.webhook(t, "heldHook", rcv.srv.URL, nil)
	b.clk.Advance(71 * time.Hour)
	// Three deliveries fail for good: two attempts each.
	b.ingest(t, 3)
	b.round(t)
	b.clk.Advance(2 * time.Second)
	b.round(t)
	// Two more have failed once and wait for their retry.
	waiting := b.ingest(t, 2)
	b.round(t)
	if st, _ := b.store.OutboxStats(b.ctx); st.Failed != 3 || st.Pending != 2 {
		t.Fatalf("outbox %+v, want 3 failed and 2 pending", st)
	}
	before := len(rcv.got())

	b.clk.Advance(2 * time.Hour)
	a, logged, reported := b.autoDisabler(72 * time.Hour)
	if n, err := a.runOnce(b.ctx); err != nil || n != 1 {
		t.Fatalf("runOnce = %d, %v; want 1 webhook disabled", n, err)
	}
	if n, err := a.runOnce(b.ctx); err != nil || n != 0 {
		t.Fatalf("second runOnce = %d, %v; want nothing more", n, err)
	}
	if len(*reported) != 1 || (*reported)[0] != w.ID || strings.Count(logged.String(), "auto-disabled") != 1 {
		t.Fatalf("reported %v; log:\n%s", *reported, logged.String())
	}
	for _, secret := range []string{rcv.srv.URL} {
		if strings.Contains(logged.String(), secret) {
			t.Errorf("the log names the service URI:\n%s", logged.String())
		}
	}
	audit, _, err := b.store.ListAudit(b.ctx, 0, 10)
	if err != nil || len(audit) != 1 || audit[0].Actor != "system" || audit[0].Action != models.AutoDisableAudit ||
		audit[0].Target != b.reg.Name+"/heldHook" {
		t.Fatalf("audit = %+v, %v", audit, err)
	}

	// Held: nothing is claimed, however long it waits.
	b.clk.Advance(24 * time.Hour)
	if n := b.round(t); n != 0 {
		t.Fatalf("claimed %d deliveries of an auto-disabled webhook", n)
	}
	if len(rcv.got()) != before {
		t.Fatalf("the receiver got %d requests while the webhook was auto-disabled", len(rcv.got())-before)
	}
	if st, _ := b.store.OutboxStats(b.ctx); st.Pending != 2 {
		t.Fatalf("outbox %+v, want the 2 pending kept", st)
	}

	// Enabled again (the receiver is fixed): the held deliveries go out.
	rcv.status.Store(200)
	if err := b.store.SetWebhookStatus(b.ctx, w, models.StatusEnabled); err != nil {
		t.Fatal(err)
	}
	if n := b.round(t); n != 2 {
		t.Fatalf("claimed %d after enabling, want the 2 held", n)
	}
	got := rcv.got()[before:]
	if len(got) != 2 {
		t.Fatalf("receiver got %d after enabling, want 2", len(got))
	}
	for _, id := range waiting {
		if !strings.Contains(strings.Join(got, "\n"), `"id":"`+id+`"`) {
			t.Errorf("event %s did not arrive after enabling: %v", id, got)
		}
	}
	if st, _ := b.store.OutboxStats(b.ctx); st.Pending != 0 || st.Succeeded != 2 {
		t.Fatalf("outbox %+v, want the 2 succeeded", st)
	}
	// The window starts again at the enable.
	if n, err := a.runOnce(b.ctx); err != nil || n != 0 {
		t.Fatalf("runOnce after enabling = %d, %v", n, err)
	}
}

// A delivery in flight when its webhook is auto-disabled loses its lease:
// the attempt's result is kept as history (superseded) and schedules no
// retry; the delivery stays held until the webhook is enabled.
func TestAutoDisableTakesBackInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, MaxAttempts: 2})
	release := make(chan struct{})
	var hits atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if hits.Add(1) > 6 {
			<-release
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	w := b.webhook(t, "inflightHook", slow.URL, nil)
	b.clk.Advance(71 * time.Hour)
	b.ingest(t, 3)
	b.round(t)
	b.clk.Advance(2 * time.Second)
	b.round(t) // 6 attempts: 3 failed deliveries
	b.ingest(t, 1)
	if n, err := b.d.runOnce(b.ctx); err != nil || n != 1 {
		t.Fatalf("runOnce = %d, %v", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() < 7 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.clk.Advance(2 * time.Hour)
	a, _, _ := b.autoDisabler(72 * time.Hour)
	if n, err := a.runOnce(b.ctx); err != nil || n != 1 {
		t.Fatalf("auto-disable runOnce = %d, %v", n, err)
	}
	close(release)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := b.d.waitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.store.HeldDeliveries(b.ctx, w.ID); n != 1 {
		t.Fatalf("held = %d, want the in-flight delivery held", n)
	}
	rows := b.deliveries(t, w)
	as := b.attempts(t, rows[0].ID) // newest first: the one that was in flight
	if len(as) != 1 || !as[0].Superseded {
		t.Fatalf("attempts of the in-flight delivery: %+v", as)
	}
}
