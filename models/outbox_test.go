package models

import (
	"fmt"
	"testing"
	"time"
)

// The claim takes due rows in order, at most PerWebhook per webhook
// counting Busy, skips full webhooks, and leases what it takes.
func TestClaimDeliveriesPerWebhook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var hooks []*Webhook
	for _, n := range []string{"hookA1", "hookB1", "hookC1"} {
		in := validInput(n)
		in.Scope = ""
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "t")
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, w)
	}
	var evs []*Event
	for i := range 10 {
		evs = append(evs, &Event{ID: fmt.Sprintf("e%d", i), RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	now := b.store.Now()
	tests := []struct {
		name string
		busy map[uint]int
		want map[uint]int
	}{
		{"A busy with 1, C full", map[uint]int{hooks[0].ID: 1, hooks[2].ID: 3}, map[uint]int{hooks[0].ID: 2, hooks[1].ID: 3}},
		{"the rest of C is still due", map[uint]int{hooks[0].ID: 3, hooks[1].ID: 3}, map[uint]int{hooks[2].ID: 3}},
	}
	for _, tt := range tests {
		got, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now, Lease: time.Minute, Limit: 100, PerWebhook: 3, Busy: tt.busy})
		if err != nil {
			t.Fatal(err)
		}
		per := map[uint]int{}
		for _, c := range got {
			per[c.WebhookID]++
			if c.Attempt != 1 {
				t.Fatalf("%s: attempt %d", tt.name, c.Attempt)
			}
		}
		if fmt.Sprint(per) != fmt.Sprint(tt.want) {
			t.Fatalf("%s: claimed per webhook %v, want %v", tt.name, per, tt.want)
		}
	}
	st, err := b.store.OutboxStats(b.ctx)
	if err != nil || st.InFlight != 8 || st.Pending != 22 {
		t.Fatalf("outbox %+v %v; want 8 in flight, 22 pending", st, err)
	}
	// Leased rows are not due again until the lease ends.
	if got, _ := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now.Add(59 * time.Second), Lease: time.Minute, Limit: 100, PerWebhook: 100}); len(got) != 22 {
		t.Fatalf("claimed %d under live leases, want the 22 pending", len(got))
	}
	if got, _ := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now.Add(61 * time.Second), Lease: time.Minute, Limit: 100, PerWebhook: 100}); len(got) != 8 {
		t.Fatalf("claimed %d after the first leases expired, want 8", len(got))
	}
}
