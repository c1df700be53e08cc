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
	inFlight := 8
	if testEngine() == enginePostgres {
		// PostgreSQL counts the live leases in the database (every
		// instance's), not this caller's Busy, which only skips webhooks
		// it has full: A had none leased, so it gets 3.
		tests[0].want[hooks[0].ID] = 3
		inFlight = 9
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
	if err != nil || int(st.InFlight) != inFlight || int(st.Pending) != 30-inFlight {
		t.Fatalf("outbox %+v %v; want %d in flight", st, err, inFlight)
	}
	// Leased rows are not due again until the lease ends.
	if got, _ := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now.Add(59 * time.Second), Lease: time.Minute, Limit: 100, PerWebhook: 100}); len(got) != 30-inFlight {
		t.Fatalf("claimed %d under live leases, want the %d pending", len(got), 30-inFlight)
	}
	if got, _ := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now.Add(61 * time.Second), Lease: time.Minute, Limit: 100, PerWebhook: 100}); len(got) != inFlight {
		t.Fatalf("claimed %d after the first leases expired, want %d", len(got), inFlight)
	}
}

// IngestEventsLeased writes new deliveries already leased up to the
// limits (total, and per webhook counting Busy) and the rest pending; a
// claim then takes only the pending ones.
func TestIngestEventsLeasedLimits(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var hooks []*Webhook
	for _, n := range []string{"leaseA1", "leaseB1"} {
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
	for i := range 5 {
		evs = append(evs, &Event{ID: fmt.Sprintf("le%d", i), RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")})
	}
	until := b.store.Now().Add(time.Hour)
	lease := &DirectLease{Until: until, Limit: 4, PerWebhook: 3, Busy: map[uint]int{hooks[0].ID: 2}}
	res, leased, err := b.store.IngestEventsLeased(b.ctx, evs, lease)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 || res[0].Deliveries != 2 {
		t.Fatalf("results %+v", res)
	}
	per := map[uint]int{}
	for _, c := range leased {
		per[c.WebhookID]++
		if c.Attempt != 1 || c.ID == 0 || c.EventID == "" {
			t.Fatalf("leased row %+v", c)
		}
	}
	// A had 2 busy of 3: one more; B gets the remaining 3 of the limit 4.
	if per[hooks[0].ID] != 1 || per[hooks[1].ID] != 3 || len(leased) != 4 {
		t.Fatalf("leased per webhook %v (%d in all)", per, len(leased))
	}
	if lease.Busy[hooks[0].ID] != 2 {
		t.Fatal("the caller's Busy map was changed")
	}
	var rows []Delivery
	b.store.db.Where("id IN ?", []uint{leased[0].ID, leased[3].ID}).Find(&rows)
	for _, d := range rows {
		if d.State != DeliveryInFlight || d.Attempts != 1 || d.AvailableAt != until.UnixNano() {
			t.Fatalf("leased row stored as %+v", d)
		}
	}
	st, err := b.store.OutboxStats(b.ctx)
	if err != nil || st.InFlight != 4 || st.Pending != 6 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	got, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: b.store.Now(), Lease: time.Minute, Limit: 100, PerWebhook: 100})
	if err != nil || len(got) != 6 {
		t.Fatalf("claim after direct lease: %d rows, %v (want the 6 pending)", len(got), err)
	}
	// A duplicate event is skipped and leases nothing.
	res, leased, err = b.store.IngestEventsLeased(b.ctx, evs[:1], &DirectLease{Until: until, Limit: 10, PerWebhook: 10})
	if err != nil || !res[0].Duplicate || len(leased) != 0 {
		t.Fatalf("duplicate: %+v, %d leased, %v", res, len(leased), err)
	}
}

// RecordAttempts writes every attempt and delivery update of a batch, and
// skips (without failing the batch) a delivery deleted meanwhile.
func TestRecordAttemptsBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := validInput("recordA1")
	in.Scope = ""
	in.Validate()
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "t")
	if err != nil {
		t.Fatal(err)
	}
	var evs []*Event
	for i := range 250 { // more than one chunk
		evs = append(evs, &Event{ID: fmt.Sprintf("rec%d", i), RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	now := b.store.Now()
	claimed, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now, Lease: time.Minute, Limit: 1000, PerWebhook: 1000})
	if err != nil || len(claimed) != 250 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	var results []AttemptResult
	for i, c := range claimed {
		r := AttemptResult{Attempt: Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: 1,
			RequestURI: "http://h/******", RequestHeaders: `{"A":"\"q\""}`, StatusCode: 200, ReasonPhrase: "OK", ResponseBody: "ok", StartedAt: 7},
			Token: c.Token, State: DeliverySucceeded, AvailableAt: now, UpdatedAt: now}
		if i%2 == 1 {
			r.Attempt.StatusCode, r.Attempt.ReasonPhrase, r.Attempt.Error = 500, "Internal Server Error", "boom"
			r.State, r.AvailableAt = DeliveryPending, now.Add(time.Minute)
		}
		results = append(results, r)
	}
	// One more result for a delivery that no longer exists.
	results = append(results, AttemptResult{Attempt: Attempt{DeliveryID: 999999, WebhookID: w.ID, EventID: "gone", Number: 1, StartedAt: 7},
		State: DeliverySucceeded, AvailableAt: now, UpdatedAt: now})
	if err := b.store.RecordAttempts(b.ctx, results); err != nil {
		t.Fatal(err)
	}
	st, err := b.store.OutboxStats(b.ctx)
	if err != nil || st.Succeeded != 125 || st.Pending != 125 || st.InFlight != 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	var n int64
	b.store.db.Model(&Attempt{}).Count(&n)
	if n != 250 {
		t.Fatalf("%d attempts stored, want 250 (none for the deleted delivery)", n)
	}
	as, err := b.store.ListAttempts(b.ctx, claimed[1].ID)
	if err != nil || len(as) != 1 || as[0].StatusCode != 500 || as[0].Error != "boom" || as[0].RequestHeaders != `{"A":"\"q\""}` {
		t.Fatalf("attempt of delivery %d: %+v, %v", claimed[1].ID, as, err)
	}
	d, err := b.store.GetDelivery(b.ctx, w.ID, claimed[1].ID)
	if err != nil || d.State != DeliveryPending || d.LastStatusCode != 500 || d.LastError != "boom" || d.AvailableAt != now.Add(time.Minute).UnixNano() {
		t.Fatalf("delivery after a 500: %+v, %v", d, err)
	}
}

func TestVacuumOutbox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.store.Engine() != enginePostgres {
		if ran, err := b.store.VacuumOutbox(b.ctx); ran || err != nil {
			t.Fatalf("VacuumOutbox on SQLite = %v, %v; want nothing done", ran, err)
		}
		return
	}
	in := validInput("vacuumA1")
	in.Scope = ""
	in.Validate()
	if _, err := b.store.CreateWebhook(b.ctx, b.reg, in, "t"); err != nil {
		t.Fatal(err)
	}
	var evs []*Event
	for i := range 300 {
		evs = append(evs, &Event{ID: fmt.Sprintf("vac%d", i), RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	now := b.store.Now()
	claimed, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now, Lease: time.Minute, Limit: 1000, PerWebhook: 1000})
	if err != nil || len(claimed) != 300 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	var results []AttemptResult
	for _, c := range claimed {
		results = append(results, AttemptResult{Attempt: Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: 1, StatusCode: 200, StartedAt: 7},
			Token: c.Token, State: DeliverySucceeded, AvailableAt: now, UpdatedAt: now})
	}
	if err := b.store.RecordAttempts(b.ctx, results); err != nil {
		t.Fatal(err)
	}
	vacuums := func() (n int64) {
		t.Helper()
		if err := b.store.wsql.QueryRowContext(b.ctx, "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'deliveries'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Another instance vacuuming (holding the lock): this one leaves it.
	other, err := b.store.wsql.Conn(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(b.ctx, "SELECT pg_advisory_lock($1)", vacuumLockID); err != nil {
		t.Fatal(err)
	}
	if ran, err := b.store.VacuumOutbox(b.ctx); ran || err != nil {
		t.Fatalf("VacuumOutbox while another holds the lock = %v, %v; want not run", ran, err)
	}
	if _, err := other.ExecContext(b.ctx, "SELECT pg_advisory_unlock($1)", vacuumLockID); err != nil {
		t.Fatal(err)
	}
	_ = other.Close()
	before := vacuums()
	if ran, err := b.store.VacuumOutbox(b.ctx); !ran || err != nil {
		t.Fatalf("VacuumOutbox = %v, %v; want run", ran, err)
	}
	if after := vacuums(); after != before+1 {
		t.Fatalf("vacuum_count of deliveries went from %d to %d, want one more", before, after)
	}
	var dead int64
	if err := b.store.wsql.QueryRowContext(b.ctx, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'deliveries'").Scan(&dead); err != nil || dead != 0 {
		t.Fatalf("dead row versions in deliveries after the vacuum: %d, %v", dead, err)
	}
}

// The heartbeat (ExtendLeases) and the writer (RecordAttempts) of one
// instance touch the same leased rows from two connections; on PostgreSQL
// they must not deadlock (which PostgreSQL breaks only after a second, by
// failing one of them).
func TestHeartbeatAndResultsDoNotDeadlock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := validInput("deadlockA1")
	in.Scope = ""
	in.Validate()
	if _, err := b.store.CreateWebhook(b.ctx, b.reg, in, "t"); err != nil {
		t.Fatal(err)
	}
	for round := range 4 {
		var evs []*Event
		for i := range 400 {
			evs = append(evs, &Event{ID: fmt.Sprintf("dl%d-%d", round, i), RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")})
		}
		if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
			t.Fatal(err)
		}
		now := b.store.Now()
		claimed, err := b.store.ClaimDeliveries(b.ctx, ClaimOptions{Now: now, Lease: time.Minute, Limit: 1000, PerWebhook: 1000})
		if err != nil || len(claimed) != 400 {
			t.Fatalf("claimed %d, %v", len(claimed), err)
		}
		ids := make([]uint, 0, len(claimed))
		var results []AttemptResult
		for i := len(claimed) - 1; i >= 0; i-- { // the writer goes down, the heartbeat up
			c := claimed[i]
			ids = append([]uint{c.ID}, ids...)
			results = append(results, AttemptResult{Attempt: Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: 1, StatusCode: 200, StartedAt: 7},
				Token: c.Token, State: DeliverySucceeded, AvailableAt: now, UpdatedAt: now})
		}
		errc := make(chan error, 2)
		start := make(chan struct{})
		go func() { <-start; errc <- b.store.RecordAttempts(b.ctx, results) }()
		go func() {
			<-start
			for range 5 {
				if _, err := b.store.ExtendLeases(b.ctx, now.Add(time.Minute), ids); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		close(start)
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

// On PostgreSQL an ingest leases a webhook's new deliveries to this
// instance only if no other instance serves the webhook (a live lease),
// nothing of it is due before them, and its row is not locked just then (by
// a claim or another instance's ingest: it does not wait for them).
func TestIngestLeasesOnlyWebhooksThisInstanceMayServe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.store.Engine() != enginePostgres {
		t.Skip("SQLite: one process per file, every webhook is this instance's (TestIngestEventsLeasedLimits)")
	}
	hooks := map[string]*Webhook{}
	for _, n := range []string{"free", "served", "backlog", "locked"} {
		in := validInput("mayServe" + n)
		in.Scope = ""
		in.Validate()
		w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "t")
		if err != nil {
			t.Fatal(err)
		}
		hooks[n] = w
	}
	ingest := func(id string) (map[uint]int, map[uint]int) {
		t.Helper()
		ev := &Event{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: "r", Tag: "t", Source: "api", Payload: []byte("{}")}
		_, leased, err := b.store.IngestEventsLeased(b.ctx, []*Event{ev}, &DirectLease{Until: b.store.Now().Add(time.Minute), Limit: 100, PerWebhook: 100})
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint]int{}
		for _, c := range leased {
			got[c.WebhookID]++
		}
		var rows []Delivery
		b.store.db.Where("event_id = ?", id).Find(&rows)
		pending := map[uint]int{}
		for _, d := range rows {
			if d.State == DeliveryPending {
				pending[d.WebhookID]++
			}
		}
		return got, pending
	}
	// A first event: every webhook is free.
	if got, _ := ingest("first"); len(got) != 4 {
		t.Fatalf("first event leased on %d webhooks, want 4", len(got))
	}
	now := b.store.Now().UnixNano()
	// "served": another instance holds a live lease. "backlog": a delivery
	// of it is due (pending).
	if err := b.store.db.Exec(`UPDATE deliveries SET lease_owner = 'other-instance' WHERE webhook_id = ?`, hooks["served"].ID).Error; err != nil {
		t.Fatal(err)
	}
	if err := b.store.db.Exec(`UPDATE deliveries SET state = 0, available_at = ?, lease_owner = '' WHERE webhook_id = ?`, now-1, hooks["backlog"].ID).Error; err != nil {
		t.Fatal(err)
	}
	// "locked": a claim elsewhere holds its row.
	other, err := b.store.wsql.BeginTx(b.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback() }()
	if _, err := other.ExecContext(b.ctx, `SELECT id FROM webhooks WHERE id = $1 FOR NO KEY UPDATE`, hooks["locked"].ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, pending := ingest("second")
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the ingest waited %s for a locked webhook row", took)
	}
	if got[hooks["free"].ID] != 1 || len(got) != 1 {
		t.Fatalf("second event leased %v; want only webhook %d (free)", got, hooks["free"].ID)
	}
	for _, n := range []string{"served", "backlog", "locked"} {
		if pending[hooks[n].ID] != 1 {
			t.Errorf("webhook %s: the new delivery is not pending (%v)", n, pending)
		}
	}
}
