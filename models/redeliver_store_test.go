package models

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// finish records one attempt that ends delivery d in state at time at.
func (b testBundle) finish(t *testing.T, d ClaimedDelivery, state int, at time.Time) {
	t.Helper()
	if err := b.store.RecordAttempts(b.ctx, []AttemptResult{{Attempt: Attempt{DeliveryID: d.ID, WebhookID: d.WebhookID,
		EventID: d.EventID, Number: 1, StatusCode: 500}, Token: d.Token, State: state, AvailableAt: at, UpdatedAt: at}}); err != nil {
		t.Fatal(err)
	}
}

// ingestOne ingests an event (action push unless ping) matching w and
// returns its delivery, leased as a claim would leave it.
func (b testBundle) ingestOne(t *testing.T, id, action string) ClaimedDelivery {
	t.Helper()
	ev := &Event{ID: id, RegistryID: b.reg.ID, Action: action, Repository: "team/app", Tag: "v1", Source: "api", Payload: []byte(`{"id":"` + id + `"}`)}
	_, leased, err := b.store.IngestEventsLeased(b.ctx, []*Event{ev}, &DirectLease{Until: time.Now().Add(time.Minute), Limit: 10, PerWebhook: 10})
	if err != nil || len(leased) != 1 {
		t.Fatalf("ingest %s: %v, %v", id, leased, err)
	}
	return leased[0]
}

func (b testBundle) openCount(t *testing.T, webhookID uint, eventID string) (open, all int) {
	t.Helper()
	rows, _, err := b.store.ListDeliveries(b.ctx, webhookID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.EventID == eventID {
			all++
			if r.Open() {
				open++
			}
		}
	}
	return open, all
}

func TestRedeliverEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := validInput("redeliv1")
	in.Validate()
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	done := b.ingestOne(t, "ev-done", "push")
	b.finish(t, done, DeliveryFailed, time.Now())
	open := b.ingestOne(t, "ev-open", "push")

	// An event still in flight is refused, and nothing is queued for the
	// others in the same call.
	_, err = b.store.RedeliverEvents(b.ctx, w.ID, []string{"ev-done", "ev-open"})
	var oe *OpenDeliveryError
	if !errors.Is(err, ErrDeliveryOpen) || !errors.As(err, &oe) || len(oe.EventIDs) != 1 || oe.EventIDs[0] != "ev-open" {
		t.Fatalf("open: %v", err)
	}
	if o, all := b.openCount(t, w.ID, "ev-done"); o != 0 || all != 1 {
		t.Fatalf("ev-done after a refused call: %d open of %d", o, all)
	}
	// The single redeliver refuses too.
	if _, err := b.store.Redeliver(b.ctx, w.ID, open.ID); !errors.Is(err, ErrDeliveryOpen) {
		t.Fatalf("single redeliver of an open delivery: %v", err)
	}
	// An id never delivered to this webhook.
	if _, err := b.store.RedeliverEvents(b.ctx, w.ID, []string{"ev-done", "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	// A finished one goes again, once however often it is named.
	n, err := b.store.RedeliverEvents(b.ctx, w.ID, []string{"ev-done", " ev-done ", "ev-done"})
	if err != nil || n != 1 {
		t.Fatalf("redeliver = %d, %v", n, err)
	}
	if o, all := b.openCount(t, w.ID, "ev-done"); o != 1 || all != 2 {
		t.Fatalf("ev-done: %d open of %d, want 1 of 2", o, all)
	}
	// Now that it is pending again, a second redeliver is refused.
	if _, err := b.store.Redeliver(b.ctx, w.ID, done.ID); !errors.Is(err, ErrDeliveryOpen) {
		t.Fatalf("redeliver while the redelivery is pending: %v", err)
	}
	if _, err := b.store.RedeliverEvents(b.ctx, w.ID, make([]string, MaxRedeliverIDs+1)); err != nil {
		t.Fatalf("blank ids are dropped: %v", err)
	}
	many := make([]string, MaxRedeliverIDs+1)
	for i := range many {
		many[i] = fmt.Sprint("id-", i)
	}
	if _, err := b.store.RedeliverEvents(b.ctx, w.ID, many); err == nil {
		t.Fatal("more than MaxRedeliverIDs accepted")
	}
}

func TestRedeliverFailedSince(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := validInput("redeliv2")
	in.Validate()
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b.finish(t, b.ingestOne(t, "failed-after", "push"), DeliveryFailed, since.Add(time.Minute))
	b.finish(t, b.ingestOne(t, "failed-at", "push"), DeliveryFailed, since)
	b.finish(t, b.ingestOne(t, "failed-before", "push"), DeliveryFailed, since.Add(-time.Minute))
	b.finish(t, b.ingestOne(t, "succeeded", "push"), DeliverySucceeded, since.Add(time.Minute))
	b.ingestOne(t, "still-open", "push")
	ping, err := b.store.QueuePing(b.ctx, w, &Event{ID: "ping-failed", RegistryID: b.reg.ID, Action: ActionPing, Source: "ping", Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	b.finish(t, ClaimedDelivery{ID: ping.ID, WebhookID: w.ID, EventID: "ping-failed"}, DeliveryFailed, since.Add(time.Minute))
	// Failed, then redelivered with success: its latest delivery succeeded.
	b.finish(t, b.ingestOne(t, "fixed", "push"), DeliveryFailed, since.Add(time.Minute))
	if _, err := b.store.RedeliverEvents(b.ctx, w.ID, []string{"fixed"}); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: time.Now(), Lease: time.Minute, Limit: 100, PerWebhook: 100})
	if err != nil || len(claimed) != 1 || claimed[0].EventID != "fixed" {
		t.Fatalf("claim = %+v, %v", claimed, err)
	}
	b.finish(t, claimed[0], DeliverySucceeded, since.Add(2*time.Minute))

	n, err := b.store.RedeliverFailedSince(b.ctx, w.ID, since)
	if err != nil || n != 2 {
		t.Fatalf("queued %d, %v; want 2", n, err)
	}
	for id, want := range map[string]int{"failed-after": 1, "failed-at": 1, "failed-before": 0, "succeeded": 0, "fixed": 0, "still-open": 1, "ping-failed": 0} {
		if o, _ := b.openCount(t, w.ID, id); o != want {
			t.Errorf("%s: %d open, want %d", id, o, want)
		}
	}
	// Run again at once: the two are pending now, nothing more is queued.
	if n, err := b.store.RedeliverFailedSince(b.ctx, w.ID, since); err != nil || n != 0 {
		t.Fatalf("second run queued %d, %v", n, err)
	}
}
