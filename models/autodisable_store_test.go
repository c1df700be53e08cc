package models

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

// adClock is a settable clock for the auto-disable store tests.
type adClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *adClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *adClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// autoDisableStores opens the store on each engine: a SQLite file in the
// test's directory, and a fresh database on the PostgreSQL server of
// REGISTRYHOOKS_TEST_POSTGRES with the migrations applied (the store's
// queries of this file run through GORM, which speaks both).
func autoDisableStores(t *testing.T, clk *adClock) map[string]*Store {
	t.Helper()
	lite, err := Open(filepath.Join(t.TempDir(), "ad.db"), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })

	pg, err := Open(pgtestdb.PostgresDB(t), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	return map[string]*Store{engineSQLite: lite, enginePostgres: pg}
}

// finish adds a delivery of webhook w to a new event that finished in
// state at the clock's time.
func finish(t *testing.T, s *Store, reg *Registry, w *Webhook, state int, at time.Time) *Delivery {
	t.Helper()
	ctx := context.Background()
	ev := &Event{ID: RandomToken(8), RegistryID: reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api",
		Payload: []byte(`{}`), CreatedAt: at.UnixNano()}
	if err := s.db.WithContext(ctx).Create(ev).Error; err != nil {
		t.Fatal(err)
	}
	d := &Delivery{EventSeq: ev.Seq, EventID: ev.ID, WebhookID: w.ID, State: state, Attempts: 1, AvailableAt: at.UnixNano(),
		LastStatusCode: 503, LastReason: "Service Unavailable", CreatedAt: at.UnixNano(), UpdatedAt: at.UnixNano()}
	if state == DeliverySucceeded {
		d.LastStatusCode, d.LastReason = 200, "OK"
	}
	if err := s.db.WithContext(ctx).Create(d).Error; err != nil {
		t.Fatal(err)
	}
	return d
}

// The rule, on both engines: enabled for the whole window, no success and
// at least three failures within it.
func TestAutoDisableRule(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const window = 72 * time.Hour
	type step struct {
		after time.Duration // since t0
		state int
	}
	cases := []struct {
		name  string
		steps []step
		now   time.Duration
		want  bool
	}{
		{"two failures stay", []step{{71 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryFailed}}, 73 * time.Hour, false},
		{"three failures within the window", []step{{71 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryFailed}, {73 * time.Hour, DeliveryFailed}}, 74 * time.Hour, true},
		{"a success within the window", []step{{70 * time.Hour, DeliverySucceeded}, {71 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryFailed}}, 73 * time.Hour, false},
		{"a success before the window", []step{{time.Hour, DeliverySucceeded}, {71 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryFailed}}, 74 * time.Hour, true},
		{"failures before the window", []step{{time.Hour, DeliveryFailed}, {2 * time.Hour, DeliveryFailed}, {3 * time.Hour, DeliveryFailed}}, 100 * time.Hour, false},
		{"enabled for less than the window", []step{{time.Hour, DeliveryFailed}, {2 * time.Hour, DeliveryFailed}, {3 * time.Hour, DeliveryFailed}}, 4 * time.Hour, false},
		{"pending retries count for nothing", []step{{71 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryFailed}, {72 * time.Hour, DeliveryPending}, {72 * time.Hour, DeliveryInFlight}}, 73 * time.Hour, false},
	}
	clk := &adClock{t: t0}
	stores := autoDisableStores(t, clk)
	for engine, s := range stores {
		ctx := context.Background()
		if err := s.EnsureDefaultRegistry(ctx); err != nil {
			t.Fatal(err)
		}
		reg, err := s.GetRegistry(ctx, DefaultRegistryName)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cases {
			t.Run(engine+"/"+c.name, func(t *testing.T) {
				clk.Set(t0)
				in := WebhookInput{Name: fmt.Sprintf("rule%d", i), ServiceURI: "http://127.0.0.1:9/", Actions: []string{"push"}}
				in.Validate()
				w, err := s.CreateWebhook(ctx, reg, in, "t")
				if err != nil {
					t.Fatal(err)
				}
				for _, st := range c.steps {
					finish(t, s, reg, w, st.state, t0.Add(st.after))
				}
				now := t0.Add(c.now)
				failing, err := s.FailingWebhooks(ctx, now, window)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, f := range failing {
					found = found || f.ID == w.ID
				}
				if found != c.want {
					t.Fatalf("FailingWebhooks lists it: %v, want %v", found, c.want)
				}
				got, ok, err := s.AutoDisableWebhook(ctx, w.ID, now, window)
				if err != nil || ok != c.want {
					t.Fatalf("AutoDisableWebhook = %v, %v, want %v", ok, err, c.want)
				}
				after, err := s.GetWebhookByID(ctx, w.ID)
				if err != nil {
					t.Fatal(err)
				}
				since, auto := after.AutoDisabled()
				if auto != c.want || (after.Status == StatusDisabled) != c.want {
					t.Fatalf("status %s, auto-disabled %v, want %v", after.Status, auto, c.want)
				}
				if c.want {
					if !since.Equal(now) || !strings.Contains(after.AutoDisabledReason, "72h") ||
						!strings.Contains(after.AutoDisabledReason, "503 Service Unavailable") || got.Failed < 3 {
						t.Errorf("since %v, reason %q, failed %d", since, after.AutoDisabledReason, got.Failed)
					}
					// The rule no longer holds for a disabled webhook.
					if _, again, _ := s.AutoDisableWebhook(ctx, w.ID, now.Add(time.Hour), window); again {
						t.Error("disabled twice")
					}
				}
			})
		}
	}
}

// Held deliveries stay pending and out of reach of claims, survive
// retention, and come back due when the webhook is enabled, on both
// engines and through both ways of enabling.
func TestAutoDisableHoldAndRelease(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clk := &adClock{t: t0}
	for engine, s := range autoDisableStores(t, clk) {
		for _, via := range []string{"SetWebhookStatus", "UpdateWebhook"} {
			t.Run(engine+"/"+via, func(t *testing.T) {
				ctx := context.Background()
				clk.Set(t0)
				if err := s.EnsureDefaultRegistry(ctx); err != nil {
					t.Fatal(err)
				}
				reg, _ := s.GetRegistry(ctx, DefaultRegistryName)
				in := WebhookInput{Name: "hold" + via, ServiceURI: "http://127.0.0.1:9/", Actions: []string{"push"}}
				in.Validate()
				w, err := s.CreateWebhook(ctx, reg, in, "t")
				if err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					finish(t, s, reg, w, DeliveryFailed, t0.Add(71*time.Hour+time.Duration(i)*time.Minute))
				}
				pending := finish(t, s, reg, w, DeliveryPending, t0.Add(72*time.Hour))
				inflight := finish(t, s, reg, w, DeliveryInFlight, t0.Add(72*time.Hour))
				now := t0.Add(73 * time.Hour)
				got, ok, err := s.AutoDisableWebhook(ctx, w.ID, now, 72*time.Hour)
				if err != nil || !ok || got.Held != 2 {
					t.Fatalf("AutoDisableWebhook = %+v, %v, %v; want 2 held", got, ok, err)
				}
				var rows []Delivery
				s.db.Where("id IN ?", []uint{pending.ID, inflight.ID}).Find(&rows)
				for _, d := range rows {
					if d.State != DeliveryPending || d.AvailableAt != HeldAvailableAt {
						t.Errorf("delivery %d: state %d available_at %d, want pending and held", d.ID, d.State, d.AvailableAt)
					}
				}
				if n, _ := s.HeldDeliveries(ctx, w.ID); n != 2 {
					t.Errorf("HeldDeliveries = %d, want 2", n)
				}
				// Retention keeps events with held deliveries.
				if _, err := s.PruneEvents(ctx, now.Add(1000*time.Hour), 100); err != nil {
					t.Fatal(err)
				}
				if n, _ := s.HeldDeliveries(ctx, w.ID); n != 2 {
					t.Errorf("after pruning, HeldDeliveries = %d, want 2", n)
				}
				var audit []AuditEntry
				s.db.Where("actor = ? AND action = ? AND target = ?", AutoDisableActor, AutoDisableAudit, reg.Name+"/"+w.Name).Find(&audit)
				if len(audit) != 1 || !strings.Contains(audit[0].Detail, "failed") {
					t.Errorf("audit entries %+v, want one by system", audit)
				}

				enabledAt := now.Add(time.Hour)
				clk.Set(enabledAt)
				if via == "SetWebhookStatus" {
					err = s.SetWebhookStatus(ctx, w, StatusEnabled)
				} else {
					cur, _ := s.GetWebhookByID(ctx, w.ID)
					in := InputFrom(cur)
					in.Status = StatusEnabled
					_, err = s.UpdateWebhook(ctx, cur, in)
				}
				if err != nil {
					t.Fatal(err)
				}
				after, _ := s.GetWebhookByID(ctx, w.ID)
				if _, auto := after.AutoDisabled(); auto || after.AutoDisabledReason != "" || after.Status != StatusEnabled ||
					after.EnabledAt != enabledAt.UnixNano() {
					t.Errorf("after enable: %+v", after)
				}
				if n, _ := s.HeldDeliveries(ctx, w.ID); n != 0 {
					t.Errorf("after enable, HeldDeliveries = %d", n)
				}
				rows = nil
				s.db.Where("id IN ?", []uint{pending.ID, inflight.ID}).Find(&rows)
				for _, d := range rows {
					if d.State != DeliveryPending || d.AvailableAt != enabledAt.UnixNano() {
						t.Errorf("delivery %d: state %d available_at %d, want pending and due at the enable", d.ID, d.State, d.AvailableAt)
					}
				}
				// The window starts again at the enable: the old failures
				// do not disable it a second time.
				if failing, _ := s.FailingWebhooks(ctx, enabledAt.Add(time.Hour), 72*time.Hour); len(failing) != 0 {
					t.Errorf("failing right after enable: %+v", failing)
				}
			})
		}
	}
}

// Migration 00012 counts an existing webhook as enabled since its creation.
func TestAutoDisableMigrationEnabledAtFromCreatedAt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "registryhooks.db")
	copyFile(t, legacyFixture, path)
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	reg, err := s.GetRegistry(ctx, DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.GetWebhook(ctx, reg, "legacyhook")
	if err != nil {
		t.Fatal(err)
	}
	// julianday keeps about a millisecond.
	if d := time.Duration(w.EnabledAt - w.CreatedAt.UnixNano()); d < -time.Millisecond || d > time.Millisecond || w.CreatedAt.IsZero() {
		t.Errorf("enabled_at %d, created_at %v (%d)", w.EnabledAt, w.CreatedAt, w.CreatedAt.UnixNano())
	}
	if _, auto := w.AutoDisabled(); auto {
		t.Error("an existing webhook came out auto-disabled")
	}
}

// The rule's query walks idx_delivery_webhook_state on both engines, so
// its cost does not grow with the deliveries of a webhook. (PostgreSQL is
// told to avoid sequential scans: on a few test rows it would rightly
// prefer one.)
func TestAutoDisableQueryUsesIndex(t *testing.T) {
	t.Parallel()
	clk := &adClock{t: time.Now()}
	for engine, s := range autoDisableStores(t, clk) {
		var plan []string
		err := s.db.Transaction(func(tx *gorm.DB) error {
			prefix := "EXPLAIN QUERY PLAN "
			if engine == enginePostgres {
				prefix = "EXPLAIN "
				if err := tx.Exec("SET LOCAL enable_seqscan = off").Error; err != nil {
					return err
				}
			}
			rows, err := tx.Raw(prefix+failingWebhooksSQL, StatusEnabled, int64(1), int64(1), int64(1)).Rows()
			if err != nil {
				return err
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				plan = append(plan, fmt.Sprint(vals...))
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatalf("%s: %v", engine, err)
		}
		if n := strings.Count(strings.Join(plan, "\n"), "idx_delivery_webhook_state"); n < 2 {
			t.Errorf("%s: the plan uses idx_delivery_webhook_state %d times, want both subqueries:\n%s", engine, n, strings.Join(plan, "\n"))
		}
	}
}
