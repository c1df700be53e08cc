package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// TestARMRedeliver drives the bulk redeliver extension action: by event
// ids (all or none; 409 while one is still being delivered), by failure
// time, the request's validation, Reader tokens refused, audited.
func TestARMRedeliver(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	hook := regPath + "/webhooks/replayed"
	if r := b.call("PUT", hook, webhookBody("http://127.0.0.1:9/h", "push")); r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	w, err := b.store.GetWebhook(b.ctx, b.reg, "replayed")
	if err != nil {
		t.Fatal(err)
	}
	failedAt := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var evs []*models.Event
	for _, id := range []string{"ev-a", "ev-b", "ev-c"} {
		evs = append(evs, &models.Event{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: "app", Tag: "v1", Source: "api", Payload: []byte(`{"id":"` + id + `"}`)})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: time.Now(), Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim %v, %v", claimed, err)
	}
	var results []models.AttemptResult
	for _, c := range claimed {
		if c.EventID == "ev-c" {
			continue // stays in flight
		}
		results = append(results, models.AttemptResult{Attempt: models.Attempt{DeliveryID: c.ID, WebhookID: w.ID, EventID: c.EventID, Number: 1, StatusCode: 503}, Token: c.Token,
			State: models.DeliveryFailed, AvailableAt: failedAt, UpdatedAt: failedAt})
	}
	if err := b.store.RecordAttempts(b.ctx, results); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		st, err := b.store.OutboxStats(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int(st.Pending)
	}

	// Validation.
	for _, body := range []any{
		map[string]any{},
		map[string]any{"eventIds": []string{}},
		map[string]any{"eventIds": []string{"ev-a"}, "failedSince": "2026-05-01T00:00:00Z"},
		map[string]any{"failedSince": "yesterday"},
		map[string]any{"eventIds": "ev-a"},
		map[string]any{"eventIds": []string{"unknown"}},
	} {
		expectError(t, b.call("POST", hook+"/redeliver", body), http.StatusBadRequest, ARMCodeInvalidContent)
	}
	// Reader tokens may not.
	readerTok, _, err := b.store.CreateAPIToken(b.ctx, "viewer", models.RoleReader, "admin")
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, b.callAs(readerTok, "POST", hook+"/redeliver", map[string]any{"eventIds": []string{"ev-a"}}), http.StatusForbidden, ARMCodeAuthorization)
	expectError(t, b.call("POST", regPath+"/webhooks/nosuchhook/redeliver", map[string]any{"eventIds": []string{"ev-a"}}), http.StatusNotFound, ARMCodeNotFound)
	if n := pending(); n != 0 {
		t.Fatalf("refused requests queued %d deliveries", n)
	}

	// One still in flight: 409, nothing queued.
	r := b.call("POST", hook+"/redeliver", map[string]any{"eventIds": []string{"ev-a", "ev-c"}})
	expectError(t, r, http.StatusConflict, ARMCodeConflict)
	if !strings.Contains(r.message(), "ev-c") || pending() != 0 {
		t.Fatalf("409 message %q, pending %d", r.message(), pending())
	}

	// By id.
	kicks := b.kick.n.Load()
	r = b.call("POST", hook+"/redeliver", map[string]any{"eventIds": []string{"ev-a"}})
	if r.status != 200 || r.body["queued"] != float64(1) || pending() != 1 || b.kick.n.Load() != kicks+1 {
		t.Fatalf("by id: %d %s, pending %d", r.status, r.raw, pending())
	}
	// By time: ev-b only (ev-a is pending again, ev-c in flight); a later
	// time matches nothing.
	r = b.call("POST", hook+"/redeliver", map[string]any{"failedSince": failedAt.Add(time.Second).Format(time.RFC3339)})
	if r.status != 200 || r.body["queued"] != float64(0) {
		t.Fatalf("failedSince later: %d %s", r.status, r.raw)
	}
	r = b.call("POST", hook+"/redeliver?api-version=2023-07-01", map[string]any{"failedSince": "2026-05-01T13:00:00+01:00"})
	if r.status != 200 || r.body["queued"] != float64(1) || pending() != 2 {
		t.Fatalf("failedSince: %d %s, pending %d", r.status, r.raw, pending())
	}
	rows, _, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10)
	if err != nil || len(rows) != 5 || rows[0].EventID != "ev-b" || rows[0].State != models.DeliveryPending {
		t.Fatalf("deliveries %+v, %v", rows, err)
	}
	entries, _, err := b.store.ListAudit(b.ctx, 0, 10)
	if err != nil || len(entries) < 3 || entries[0].Action != "webhook.redeliver" || entries[0].Actor != "token:bootstrap" ||
		!strings.Contains(entries[0].Detail, "1 failed since 2026-05-01T12:00:00Z") || !strings.Contains(entries[2].Detail, "events ev-a") {
		t.Fatalf("audit %+v, %v", entries, err)
	}
}
