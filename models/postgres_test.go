package models

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

// openInstances opens n stores on one fresh PostgreSQL database, as n
// registryhooks processes would, with the default registry.
func openInstances(t *testing.T, n int) ([]*Store, *Registry) {
	t.Helper()
	dsn := pgtestdb.PostgresDB(t)
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var out []*Store
	for range n {
		s, err := Open(dsn, Options{Cipher: c, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		out = append(out, s)
	}
	ctx := context.Background()
	if err := out[0].EnsureDefaultRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := out[0].GetRegistry(ctx, DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	return out, reg
}

// Claims from several instances at once never lease more of one webhook
// than the limit, never the same row twice, never one webhook to two
// instances at once, and take over only expired leases.
func TestPostgresClaimsAcrossInstances(t *testing.T) {
	t.Parallel()
	stores, reg := openInstances(t, 3)
	ctx := context.Background()
	b := testBundle{store: stores[0], reg: reg, ctx: ctx}
	w1 := hookFor(t, b, reg, "multiA")
	w2 := hookFor(t, b, reg, "multiB")
	var evs []*Event
	for i := range 40 {
		evs = append(evs, &Event{ID: fmt.Sprintf("m%d", i), RegistryID: reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")})
	}
	if _, err := stores[1].IngestEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const limit = 4
	var mu sync.Mutex
	byOwner := map[int][]ClaimedDelivery{}
	var wg sync.WaitGroup
	for round := range 5 {
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.ClaimDeliveries(ctx, ClaimOptions{Now: now.Add(time.Duration(round) * time.Millisecond), Lease: time.Minute, Limit: 100, PerWebhook: limit})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				byOwner[i] = append(byOwner[i], got...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	seen := map[uint]bool{}
	per := map[uint]int{}
	owner := map[uint]int{}
	for i, cs := range byOwner {
		for _, c := range cs {
			if seen[c.ID] {
				t.Fatalf("delivery %d leased twice", c.ID)
			}
			seen[c.ID] = true
			per[c.WebhookID]++
			if o, ok := owner[c.WebhookID]; ok && o != i {
				t.Fatalf("webhook %d leased to instances %d and %d at once", c.WebhookID, o, i)
			}
			owner[c.WebhookID] = i
		}
	}
	if per[w1.ID] != limit || per[w2.ID] != limit {
		t.Fatalf("leased per webhook %v, want %d each across all instances", per, limit)
	}
	// Instance 0 dies: its leases expire; live ones of the others stay.
	var dead []ClaimedDelivery
	for i := range stores {
		if len(byOwner[i]) > 0 {
			dead = byOwner[i]
			if _, err := stores[i].wsql.Exec("UPDATE deliveries SET available_at = $1 WHERE lease_owner = $2", now.Add(-time.Second).UnixNano(), stores[i].InstanceID()); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	taken, err := stores[2].ClaimDeliveries(ctx, ClaimOptions{Now: now.Add(time.Second), Lease: time.Minute, Limit: 100, PerWebhook: limit})
	if err != nil {
		t.Fatal(err)
	}
	if len(taken) != len(dead) {
		t.Fatalf("took over %d deliveries, want the %d of the dead instance", len(taken), len(dead))
	}
	deadIDs := map[uint]bool{}
	for _, c := range dead {
		deadIDs[c.ID] = true
	}
	for _, c := range taken {
		if !deadIDs[c.ID] || c.Token < 2 {
			t.Fatalf("took over delivery %d (token %d) which was not the dead instance's", c.ID, c.Token)
		}
	}
}

// What one instance writes, the others see at once: a notification wakes
// their dispatchers, and webhook and registry changes drop their caches.
func TestPostgresNotificationsReachOtherInstances(t *testing.T) {
	t.Parallel()
	stores, reg := openInstances(t, 2)
	a, bStore := stores[0], stores[1]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var woken atomic.Int32
	done := make(chan struct{})
	go func() { defer close(done); bStore.Listen(ctx, func() { woken.Add(1) }) }()
	defer func() { cancel(); <-done }()
	b := testBundle{store: a, reg: reg, ctx: context.Background()}
	w := hookFor(t, b, reg, "notified")
	// The listener is up once a change reaches it.
	gen0 := bStore.WebhookGeneration()
	waitUntil(t, func() bool {
		_ = a.SetWebhookStatus(b.ctx, w, StatusEnabled)
		return bStore.WebhookGeneration() != gen0
	})
	// Ingest on A wakes B.
	before := woken.Load()
	if _, err := a.IngestEvents(b.ctx, []*Event{{ID: "wake", RegistryID: reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return woken.Load() > before })
	// An ingest token rotated on A is refused by B at once.
	cached, err := bStore.GetRegistry(b.ctx, reg.Name)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := bStore.IngestToken(cached)
	tok, err := a.RotateIngestToken(b.ctx, reg)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		r, err := bStore.GetRegistry(b.ctx, reg.Name)
		if err != nil {
			return false
		}
		got, _ := bStore.IngestToken(r)
		return got == tok && got != old
	})
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("not seen within 2s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Instances starting together on one new database all succeed: the one
// that loses the race for the default registry or the admin account finds
// it made by the other (ErrAlreadyExists is success there).
func TestPostgresInstancesStartTogether(t *testing.T) {
	t.Parallel()
	dsn := pgtestdb.PostgresDB(t)
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	stores := make([]*Store, n)
	for i := range stores {
		s, err := Open(dsn, Options{Cipher: c, MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	ctx := context.Background()
	// Both steps count first and create only when none exists, so the
	// instances must get past the count together: a barrier before each.
	for _, step := range []struct {
		name string
		run  func(*Store) error
	}{
		{"default registry", func(s *Store) error { return s.EnsureDefaultRegistry(ctx) }},
		{"admin account", func(s *Store) error { _, err := s.EnsureAdmin(ctx, "a-long-admin-password"); return err }},
	} {
		var start, done sync.WaitGroup
		start.Add(1)
		errs := make([]error, n)
		for i, s := range stores {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				errs[i] = step.run(s)
			}()
		}
		start.Done()
		done.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s on instance %d: %v", step.name, i, err)
			}
		}
	}
	if _, err := stores[1].GetRegistry(ctx, DefaultRegistryName); err != nil {
		t.Fatal(err)
	}
}

// An expired lease (its instance died) is claimed before the backlog
// queued meanwhile: its available_at is the lease's end, later than those
// events, and in due order it would wait for all of them.
func TestPostgresExpiredLeaseBeforeBacklog(t *testing.T) {
	t.Parallel()
	stores, reg := openInstances(t, 2)
	ctx := context.Background()
	b := testBundle{store: stores[0], reg: reg, ctx: ctx}
	hookFor(t, b, reg, "takeover")
	ev := func(id string) []*Event {
		return []*Event{{ID: id, RegistryID: reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")}}
	}
	if _, err := stores[0].IngestEvents(ctx, ev("leased")); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	lost, err := stores[0].ClaimDeliveries(ctx, ClaimOptions{Now: now, Lease: time.Minute, Limit: 1, PerWebhook: 1})
	if err != nil || len(lost) != 1 {
		t.Fatalf("first claim: %v, %v", lost, err)
	}
	// Instance 0 dies holding the lease; a backlog builds up meanwhile.
	for i := range 5 {
		if _, err := stores[1].IngestEvents(ctx, ev(fmt.Sprintf("backlog%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(2 * time.Minute)
	got, err := stores[1].ClaimDeliveries(ctx, ClaimOptions{Now: later, Lease: time.Minute, Limit: 1, PerWebhook: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim after the lease expired: %v, %v", got, err)
	}
	if got[0].ID != lost[0].ID {
		t.Errorf("the claim after the lease expired took delivery %d (event %q), want the expired one %d first", got[0].ID, got[0].EventID, lost[0].ID)
	}
}
