package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// The webhook page's bulk redeliver sends again every event whose latest
// delivery failed since the time given; only Contributors see and may use
// it; it is audited; a malformed time is refused with a message.
func TestWebhookRedeliverFailedSince(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.webhook("bulkhook1")
	if err := b.store.SetWebhookStatus(b.ctx, w, models.StatusEnabled); err != nil {
		t.Fatal(err)
	}
	var evs []*models.Event
	for _, id := range []string{"old-failure", "new-failure", "success"} {
		evs = append(evs, &models.Event{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: "app", Tag: "v1", Source: "api", Payload: []byte(`{"id":"` + id + `"}`)})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: time.Now(), Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim %v, %v", claimed, err)
	}
	at := map[string]time.Time{"old-failure": time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), "new-failure": time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC),
		"success": time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)}
	var results []models.AttemptResult
	for _, c := range claimed {
		st := models.DeliveryFailed
		if c.EventID == "success" {
			st = models.DeliverySucceeded
		}
		results = append(results, models.AttemptResult{Attempt: models.Attempt{DeliveryID: c.ID, WebhookID: w.ID, EventID: c.EventID, Number: 1, StatusCode: 500}, Token: c.Token,
			State: st, AvailableAt: at[c.EventID], UpdatedAt: at[c.EventID]})
	}
	if err := b.store.RecordAttempts(b.ctx, results); err != nil {
		t.Fatal(err)
	}
	page := "/registries/myregistry/webhooks/bulkhook1"
	c := b.admin()
	r := c.get(page)
	wantCode(t, r, http.StatusOK)
	wantBody(t, r, "Redeliver failed")
	wantBody(t, r, `name="failed_since"`)
	reader := b.as(models.RoleReader)
	if r := reader.get(page); strings.Contains(r.body, "Redeliver failed") {
		t.Fatal("a Reader is offered bulk redeliver")
	}
	wantCode(t, reader.do("POST", page+"/redeliver", url.Values{"failed_since": {"2026-05-01T00:00"}},
		map[string]string{"HX-Request": "true", "X-CSRF-Token": reader.csrf()}), http.StatusForbidden)

	htmx := map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf()}
	r = c.do("POST", page+"/redeliver", url.Values{"failed_since": {"first of May"}}, htmx)
	wantCode(t, r, http.StatusUnprocessableEntity)
	wantBody(t, r, "is not a date and time")

	r = c.do("POST", page+"/redeliver", url.Values{"failed_since": {"2026-05-01T00:00"}}, htmx)
	wantCode(t, r, http.StatusOK)
	if !strings.Contains(r.header.Get("HX-Trigger"), "1 failed event since 2026-05-01 00:00:00 UTC queued again") {
		t.Fatalf("HX-Trigger %q", r.header.Get("HX-Trigger"))
	}
	rows, total, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10)
	if err != nil || total != 4 || rows[0].EventID != "new-failure" || rows[0].State != models.DeliveryPending {
		t.Fatalf("deliveries %+v (%d), %v", rows, total, err)
	}
	entries, _, _ := b.store.ListAudit(b.ctx, 0, 5)
	if len(entries) == 0 || entries[0].Action != "webhook.redeliver" || entries[0].Detail != "1 failed since 2026-05-01T00:00:00Z" {
		t.Fatalf("audit %+v", entries)
	}
	// Without htmx: a redirect to the page with the message.
	r = c.post(page+"/redeliver", url.Values{"failed_since": {"2026-03-01T00:00:00Z"}}, true)
	wantCode(t, r, http.StatusSeeOther)
	if _, total, _ := b.store.ListDeliveries(b.ctx, w.ID, 0, 10); total != 5 {
		t.Fatalf("after the second bulk redeliver: %d deliveries, want 5 (old-failure again)", total)
	}
}
