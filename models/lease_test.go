package models

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func hookFor(t *testing.T, b testBundle, reg *Registry, name string) *Webhook {
	t.Helper()
	in := validInput(name)
	in.Scope = ""
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := b.store.CreateWebhook(b.ctx, reg, in, "t")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// A result recorded for a lease that expired and was claimed again cannot
// overwrite what the newer claim records: it is kept as history, marked
// superseded, and the delivery is left to the newer lease.
func TestStaleResultCannotOverwriteNewer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := hookFor(t, b, b.reg, "fence1")
	if _, err := b.store.IngestEvents(b.ctx, []*Event{{ID: "fenced", RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	now := b.store.Now()
	first, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now, Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(first) != 1 {
		t.Fatalf("first claim: %v, %v", first, err)
	}
	// The first holder stalls past its lease; another claim takes the row.
	later := now.Add(2 * time.Minute)
	second, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: later, Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(second) != 1 || second[0].ID != first[0].ID {
		t.Fatalf("second claim: %v, %v", second, err)
	}
	if second[0].Token <= first[0].Token || second[0].Attempt != 2 {
		t.Fatalf("tokens %d then %d, attempt %d", first[0].Token, second[0].Token, second[0].Attempt)
	}
	result := func(c ClaimedDelivery, code, state int, at time.Time) AttemptResult {
		return AttemptResult{Attempt: Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: c.Attempt,
			RequestURI: "http://h/", StatusCode: code, StartedAt: at.UnixNano()}, Token: c.Token, State: state, AvailableAt: at, UpdatedAt: at}
	}
	// The newer holder succeeds first; then the stale 500 arrives.
	newer := []AttemptResult{result(second[0], 200, DeliverySucceeded, later)}
	if err := b.store.RecordAttempts(b.ctx, newer); err != nil {
		t.Fatal(err)
	}
	stale := []AttemptResult{result(first[0], 500, DeliveryPending, later.Add(time.Second))}
	if err := b.store.RecordAttempts(b.ctx, stale); err != nil {
		t.Fatal(err)
	}
	if newer[0].Attempt.Superseded || !stale[0].Attempt.Superseded {
		t.Fatalf("superseded: newer %v, stale %v", newer[0].Attempt.Superseded, stale[0].Attempt.Superseded)
	}
	d, err := b.store.GetDelivery(b.ctx, w.ID, first[0].ID)
	if err != nil || d.State != DeliverySucceeded || d.LastStatusCode != 200 {
		t.Fatalf("delivery after the stale result: %+v, %v", d, err)
	}
	as, err := b.store.ListAttempts(b.ctx, d.ID)
	if err != nil || len(as) != 2 {
		t.Fatalf("attempts %+v, %v", as, err)
	}
	for _, a := range as {
		if a.Superseded != (a.StatusCode == 500) {
			t.Errorf("attempt %d (status %d) superseded=%v", a.Number, a.StatusCode, a.Superseded)
		}
	}
	// A stale release is fenced too: the row stays succeeded.
	if err := b.store.ReleaseDeliveries(b.ctx, first, later); err != nil {
		t.Fatal(err)
	}
	if d, _ := b.store.GetDelivery(b.ctx, w.ID, first[0].ID); d.State != DeliverySucceeded {
		t.Fatalf("a stale release changed the delivery: %+v", d)
	}
}

// The heartbeat extends only this instance's live leases.
func TestExtendLeases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hookFor(t, b, b.reg, "beat1")
	var evs []*Event
	for i := range 3 {
		evs = append(evs, &Event{ID: fmt.Sprintf("hb%d", i), RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	now := b.store.Now()
	got, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now, Lease: time.Minute, Limit: 2, PerWebhook: 10})
	if err != nil || len(got) != 2 {
		t.Fatalf("claim %v, %v", got, err)
	}
	// The heartbeat extends only the rows it still holds: got[1] stands
	// for one whose result could not be written (the database was away).
	n, err := b.store.ExtendLeases(b.ctx, now.Add(time.Hour), []uint{got[0].ID})
	if err != nil || n != 1 {
		t.Fatalf("extended %d, %v; want the 1 still held", n, err)
	}
	// Past the claim's own expiry the extended row is still held; the
	// other comes back with the unleased one.
	again, _ := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now.Add(2 * time.Minute), Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if len(again) != 2 {
		t.Fatalf("claimed %d past the first expiry, want the unleased one and the one not extended", len(again))
	}
	for _, c := range again {
		if c.ID == got[0].ID {
			t.Fatalf("claimed delivery %d, whose lease was extended", c.ID)
		}
	}
}

// The same event id posted to two registries is two events, each
// delivered to its own registry's webhooks; within one registry it is a
// duplicate.
func TestEventIDUniquePerRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other, err := b.store.CreateRegistry(b.ctx, RegistryInput{Name: "otherreg", SKU: SKUPremium, Location: DefaultLocation})
	if err != nil {
		t.Fatal(err)
	}
	wa := hookFor(t, b, b.reg, "sameidA")
	wb := hookFor(t, b, other, "sameidB")
	ev := func(reg *Registry) *Event {
		return &Event{ID: "4d4b5a2c-0000-4000-8000-000000000001", RegistryID: reg.ID, Action: "push", Repository: "team/app", Tag: "v1",
			Source: "api", Payload: []byte(fmt.Sprintf(`{"id":"4d4b5a2c-0000-4000-8000-000000000001","registry":%d}`, reg.ID))}
	}
	// Both in one batch (one group commit), then again one by one.
	res, err := b.store.IngestEvents(b.ctx, []*Event{ev(b.reg), ev(other)})
	if err != nil || res[0].Duplicate || res[1].Duplicate || res[0].Deliveries != 1 || res[1].Deliveries != 1 {
		t.Fatalf("ingest %+v, %v", res, err)
	}
	res, err = b.store.IngestEvents(b.ctx, []*Event{ev(other)})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("second ingest on the same registry: %+v, %v", res, err)
	}
	claimed, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: b.store.Now(), Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %v, %v", claimed, err)
	}
	seqs := []int64{claimed[0].EventSeq, claimed[1].EventSeq}
	payloads, err := b.store.EventPayloads(b.ctx, seqs)
	if err != nil || len(payloads) != 2 {
		t.Fatalf("payloads %v, %v", payloads, err)
	}
	for _, c := range claimed {
		want := b.reg.ID
		if c.WebhookID == wb.ID {
			want = other.ID
		} else if c.WebhookID != wa.ID {
			t.Fatalf("claimed a delivery of webhook %d", c.WebhookID)
		}
		if got := string(payloads[c.EventSeq].Payload); got != fmt.Sprintf(`{"id":"4d4b5a2c-0000-4000-8000-000000000001","registry":%d}`, want) {
			t.Errorf("webhook %d gets payload %s", c.WebhookID, got)
		}
		if c.EventID != "4d4b5a2c-0000-4000-8000-000000000001" {
			t.Errorf("public event id %q", c.EventID)
		}
	}
}

// One process per SQLite file: a second Open fails with ErrLocked until
// the first closes.
func TestSQLiteFileLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "one.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = s2.Close()
}
