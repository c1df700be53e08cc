package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
)

// statsFixture is a store with two webhooks and a seeded history: 300
// events over the last 48 hours, pushes and deletes of two repositories;
// hook "allhook1" takes both actions, "pushhook1" pushes only; one
// delivery in three fails, one in seven stays pending.
type statsFixture struct {
	store *models.Store
	clock *modelstest.Clock
	now   time.Time
	all   *models.Webhook
	push  *models.Webhook
}

func outcome(id uint) int {
	switch {
	case id%7 == 0:
		return models.DeliveryPending
	case id%3 == 0:
		return models.DeliveryFailed
	}
	return models.DeliverySucceeded
}

func newStatsFixture(t *testing.T) statsFixture {
	t.Helper()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := modelstest.NewClock(now)
	s, reg := modelstest.Open(t, models.Options{Now: clock.Now})
	ctx := context.Background()
	mk := func(name string, actions ...string) *models.Webhook {
		in := models.WebhookInput{Name: name, ServiceURI: "https://receiver.example/hook", Actions: actions, Status: "enabled"}
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		w, err := s.CreateWebhook(ctx, reg, in, "test")
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	f := statsFixture{store: s, clock: clock, now: now, all: mk("allhook1", "push", "delete"), push: mk("pushhook1", "push")}
	modelstest.Seed(t, s, reg, clock, modelstest.History{
		Events: 300, From: now.Add(-48 * time.Hour), To: now,
		Event: func(i int) (string, string, string) {
			repo := []string{"team/a", "team/b"}[i%2]
			if i%3 == 0 {
				return "delete", repo, ""
			}
			return "push", repo, fmt.Sprintf("v%d", i)
		},
		Outcome: outcome,
	})
	return f
}

// everything lists all deliveries of a webhook by walking the pages.
func everything(t *testing.T, s *models.Store, id uint, f models.DeliveryFilter) []models.DeliveryRow {
	t.Helper()
	var out []models.DeliveryRow
	var older *models.Cursor
	for {
		p, err := s.PageDeliveries(context.Background(), id, f, older, nil, 20)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Rows...)
		if p.Older == nil {
			return out
		}
		older = p.Older
	}
}

func TestPageDeliveriesKeysetWalksBothWays(t *testing.T) {
	t.Parallel()
	fx := newStatsFixture(t)
	ctx := context.Background()
	all := everything(t, fx.store, fx.all.ID, models.DeliveryFilter{})
	if len(all) != 300 {
		t.Fatalf("allhook1 has %d deliveries listed, want 300 (one per event)", len(all))
	}
	seen := map[uint]bool{}
	for i, r := range all {
		if seen[r.ID] {
			t.Fatalf("delivery %d listed twice", r.ID)
		}
		seen[r.ID] = true
		if i > 0 {
			p := all[i-1]
			if r.CreatedAt > p.CreatedAt || r.CreatedAt == p.CreatedAt && r.ID > p.ID {
				t.Fatalf("row %d (%d,%d) is newer than row %d (%d,%d)", i, r.CreatedAt, r.ID, i-1, p.CreatedAt, p.ID)
			}
		}
	}

	// Walk down to the last page, then back up with Newer: the same pages.
	var pages [][]models.DeliveryRow
	var older *models.Cursor
	for {
		p, err := fx.store.PageDeliveries(ctx, fx.all.ID, models.DeliveryFilter{}, older, nil, 20)
		if err != nil {
			t.Fatal(err)
		}
		if older == nil && p.Newer != nil {
			t.Error("the first page has a Newer link")
		}
		pages = append(pages, p.Rows)
		if p.Older == nil {
			break
		}
		older = p.Older
	}
	if len(pages) != 15 {
		t.Fatalf("%d pages of 20, want 15", len(pages))
	}
	last := pages[len(pages)-1]
	newer := &models.Cursor{CreatedAt: last[0].CreatedAt, ID: last[0].ID}
	for i := len(pages) - 2; i >= 0; i-- {
		p, err := fx.store.PageDeliveries(ctx, fx.all.ID, models.DeliveryFilter{}, nil, newer, 20)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Rows) != len(pages[i]) {
			t.Fatalf("page %d going up has %d rows, going down %d", i, len(p.Rows), len(pages[i]))
		}
		for j := range p.Rows {
			if p.Rows[j].ID != pages[i][j].ID {
				t.Fatalf("page %d row %d: %d going up, %d going down", i, j, p.Rows[j].ID, pages[i][j].ID)
			}
		}
		if (p.Newer == nil) != (i == 0) {
			t.Errorf("page %d: Newer = %v", i, p.Newer)
		}
		if p.Older == nil {
			t.Errorf("page %d going up has no Older link", i)
		}
		if p.Newer != nil {
			newer = p.Newer
		}
	}
}

func TestPageDeliveriesFilters(t *testing.T) {
	t.Parallel()
	fx := newStatsFixture(t)
	all := everything(t, fx.store, fx.all.ID, models.DeliveryFilter{})
	cases := []models.DeliveryFilter{
		{Result: models.ResultSucceeded},
		{Result: models.ResultFailed},
		{Result: models.ResultPending},
		{Action: "delete"},
		{Repository: "team/b"},
		{Result: models.ResultFailed, Action: "push", Repository: "team/a"},
		{Repository: "team/none"},
	}
	for _, f := range cases {
		t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
			var want []uint
			for _, r := range all {
				res := map[int]string{models.DeliveryPending: models.ResultPending, models.DeliveryInFlight: models.ResultPending,
					models.DeliverySucceeded: models.ResultSucceeded, models.DeliveryFailed: models.ResultFailed}[r.State]
				if (f.Result == "" || f.Result == res) && (f.Action == "" || f.Action == r.Action) &&
					(f.Repository == "" || f.Repository == r.Repository) {
					want = append(want, r.ID)
				}
			}
			got := everything(t, fx.store, fx.all.ID, f)
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].ID != want[i] {
					t.Fatalf("row %d: delivery %d, want %d", i, got[i].ID, want[i])
				}
			}
			if f.Repository != "team/none" && len(got) == 0 {
				t.Fatal("the fixture should match something")
			}
		})
	}
}

func TestWebhookHealthMatchesTheRows(t *testing.T) {
	t.Parallel()
	fx := newStatsFixture(t)
	ctx := context.Background()
	ids := []uint{fx.all.ID, fx.push.ID, 999999}
	for _, win := range []struct {
		n     int
		width time.Duration
	}{{24, time.Hour}, {28, 6 * time.Hour}} {
		health, err := fx.store.WebhookHealth(ctx, ids, fx.now, win.n, win.width)
		if err != nil {
			t.Fatal(err)
		}
		start := fx.now.Add(-time.Duration(win.n) * win.width)
		for _, id := range ids[:2] {
			h := health[id]
			if len(h.Buckets) != win.n {
				t.Fatalf("%d buckets, want %d", len(h.Buckets), win.n)
			}
			// The same counts, bucketed here from the listed rows.
			want := make([][3]int64, win.n)
			var sum [3]int64
			for _, r := range everything(t, fx.store, id, models.DeliveryFilter{}) {
				if r.CreatedAt < start.UnixNano() {
					continue
				}
				b := min(int((r.CreatedAt-start.UnixNano())/int64(win.width)), win.n-1)
				k := map[int]int{models.DeliverySucceeded: 0, models.DeliveryFailed: 1}[r.State]
				if r.State < models.DeliverySucceeded {
					k = 2
				}
				want[b][k]++
				sum[k]++
			}
			if got := [3]int64{h.Succeeded, h.Failed, h.Open}; got != sum {
				t.Errorf("webhook %d over %s: %v, want %v", id, time.Duration(win.n)*win.width, got, sum)
			}
			if sum[0] == 0 || sum[1] == 0 || sum[2] == 0 {
				t.Errorf("the fixture should have every state in the window: %v", sum)
			}
			for i, b := range h.Buckets {
				if got := [3]int64{b.Succeeded, b.Failed, b.Open}; got != want[i] {
					t.Errorf("webhook %d bucket %d: %v, want %v", id, i, got, want[i])
				}
				if !b.Start.Equal(start.Add(time.Duration(i) * win.width)) {
					t.Errorf("bucket %d starts at %s", i, b.Start)
				}
			}
			rate, ok := h.SuccessRate()
			if !ok || rate != float64(sum[0])/float64(sum[0]+sum[1]) {
				t.Errorf("success rate %v %v", rate, ok)
			}
		}
		if h := health[999999]; h == nil || h.Total() != 0 {
			t.Errorf("a webhook without deliveries: %+v", h)
		}
	}
	// pushhook1 gets only the pushes: two thirds of the events.
	h, _ := fx.store.WebhookHealth(ctx, []uint{fx.push.ID}, fx.now, 28, 6*time.Hour)
	if h[fx.push.ID].Total() != 200 {
		t.Errorf("pushhook1 has %d deliveries in 7 days, want 200", h[fx.push.ID].Total())
	}
}

func TestOutboxBacklogAndNewestDeliveries(t *testing.T) {
	t.Parallel()
	fx := newStatsFixture(t)
	ctx := context.Background()
	var open int64
	var oldest int64
	newest := map[uint]models.DeliveryRow{}
	for _, id := range []uint{fx.all.ID, fx.push.ID} {
		rows := everything(t, fx.store, id, models.DeliveryFilter{})
		newest[id] = rows[0]
		for _, r := range rows {
			if r.State < models.DeliverySucceeded {
				open++
				if oldest == 0 || r.CreatedAt < oldest {
					oldest = r.CreatedAt
				}
			}
		}
	}
	n, at, ok, err := fx.store.OutboxBacklog(ctx)
	if err != nil || !ok {
		t.Fatal(err, ok)
	}
	if n != open || at.UnixNano() != oldest {
		t.Errorf("backlog %d, oldest %s; want %d, %s", n, at, open, time.Unix(0, oldest))
	}
	last, err := fx.store.NewestDeliveries(ctx, []uint{fx.all.ID, fx.push.ID})
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range newest {
		if last[id].State != r.State || last[id].LastStatusCode != r.LastStatusCode {
			t.Errorf("webhook %d: newest %+v, want state %d code %d", id, last[id], r.State, r.LastStatusCode)
		}
	}
	sums, err := fx.store.ListWebhookSummaries(ctx, fx.all.RegistryID, 0, 0)
	if err != nil || len(sums) != 2 || sums[0].Name != "allhook1" || sums[1].Actions()[0] != "push" {
		t.Errorf("summaries %+v, %v", sums, err)
	}
}

func TestPageDeliveriesRareFilterSearchesInWindows(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := modelstest.NewClock(now)
	s, reg := modelstest.Open(t, models.Options{Now: clock.Now})
	ctx := context.Background()
	in := models.WebhookInput{Name: "rarehook1", ServiceURI: "https://receiver.example/hook", Actions: []string{"push"}, Status: "enabled"}
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := s.CreateWebhook(ctx, reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	const events = 2*models.FilterScan + 500
	rare := func(i int) bool { return i%900 == 17 }
	modelstest.Seed(t, s, reg, clock, modelstest.History{
		Events: events, From: now.Add(-24 * time.Hour), To: now, Outcome: outcome,
		Event: func(i int) (string, string, string) {
			if rare(i) {
				return "push", "team/rare", fmt.Sprintf("v%d", i)
			}
			return "push", "team/common", fmt.Sprintf("v%d", i)
		},
	})
	want := 0
	for i := 0; i < events; i++ {
		if rare(i) {
			want++
		}
	}
	f := models.DeliveryFilter{Repository: "team/rare"}
	var got []models.DeliveryRow
	var older *models.Cursor
	partial, pages := 0, 0
	for {
		p, err := s.PageDeliveries(ctx, w.ID, f, older, nil, 20)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if p.Partial {
			partial++
		}
		for _, r := range p.Rows {
			if r.Repository != "team/rare" {
				t.Fatalf("row of %s", r.Repository)
			}
		}
		got = append(got, p.Rows...)
		if p.Older == nil {
			break
		}
		if pages > 10 {
			t.Fatal("the walk does not end")
		}
		older = p.Older
	}
	if len(got) != want {
		t.Errorf("found %d rare deliveries, want %d", len(got), want)
	}
	if partial < 2 {
		t.Errorf("%d partial pages over %d deliveries, want at least 2", partial, events)
	}
	// Newer from the last (empty or partial) page leads back up.
	p, err := s.PageDeliveries(ctx, w.ID, f, nil, &models.Cursor{CreatedAt: got[len(got)-1].CreatedAt, ID: got[len(got)-1].ID - 1}, 20)
	if err != nil || len(p.Rows) == 0 || p.Rows[len(p.Rows)-1].ID != got[len(got)-1].ID {
		t.Errorf("going newer from the oldest match: %+v, %v", p.Rows, err)
	}
}

// DeliveriesMoving is what the webhook page polls on: an open delivery
// that will change by itself. One held while the webhook is auto-disabled
// does not count; OpenDeliveries (the health cache's check) counts it.
func TestDeliveriesMovingSkipsHeld(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := modelstest.NewClock(now)
	s, reg := modelstest.Open(t, models.Options{Now: clock.Now})
	ctx := context.Background()
	in := models.WebhookInput{Name: "movinghook1", ServiceURI: "https://receiver.example/hook", Actions: []string{"push"}, Status: "enabled"}
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := s.CreateWebhook(ctx, reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	moving := func() bool {
		t.Helper()
		m, err := s.DeliveriesMoving(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if moving() {
		t.Fatal("moving with no deliveries")
	}
	ingest := func(id string) {
		t.Helper()
		if _, err := s.IngestEvents(ctx, []*models.Event{{ID: id, RegistryID: reg.ID, Action: "push", Repository: "app",
			Tag: "v1", Source: "api", Payload: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	// An hour after it was enabled, three deliveries fail for good.
	now = now.Add(time.Hour)
	clock.Set(now)
	for i := range 3 {
		ingest(fmt.Sprintf("gone-%d", i))
	}
	if !moving() {
		t.Fatal("three pending deliveries, not moving")
	}
	claimed, err := s.ClaimDeliveries(ctx, models.ClaimOptions{Now: now, Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	if !moving() {
		t.Fatal("three deliveries in flight, not moving")
	}
	var res []models.AttemptResult
	for _, c := range claimed {
		res = append(res, models.AttemptResult{Token: c.Token, State: models.DeliveryFailed, AvailableAt: now, UpdatedAt: now,
			Attempt: models.Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: 1, RequestURI: "x",
				StatusCode: 502, ReasonPhrase: "Bad Gateway", StartedAt: now.UnixNano()}})
	}
	if err := s.RecordAttempts(ctx, res); err != nil {
		t.Fatal(err)
	}
	if moving() {
		t.Fatal("moving with every delivery finished")
	}
	// A fourth is queued, then the webhook is auto-disabled: it is held.
	ingest("held-1")
	if !moving() {
		t.Fatal("a pending delivery, not moving")
	}
	if _, ok, err := s.AutoDisableWebhook(ctx, w.ID, now.Add(time.Second), time.Hour); err != nil || !ok {
		t.Fatalf("AutoDisableWebhook = %v, %v", ok, err)
	}
	if moving() {
		t.Error("a held delivery counts as moving")
	}
	open, err := s.OpenDeliveries(ctx, []uint{w.ID}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil || open[w.ID] != 1 {
		t.Errorf("OpenDeliveries = %v, %v; want the held one", open, err)
	}
	if open, err := s.OpenDeliveries(ctx, []uint{w.ID}, now.Add(time.Minute), now.Add(time.Hour)); err != nil || len(open) != 0 {
		t.Errorf("OpenDeliveries after it was queued = %v, %v; want none", open, err)
	}
}
