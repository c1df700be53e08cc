package handlers

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// An auto-disabled webhook is plainly "disabled" to the ARM API (ACR has
// no field for why; the shape stays), and PATCH status=enabled, as the CLI
// sends it, clears the marks and wakes the dispatcher.
func TestARMAutoDisabledWebhook(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	hook := regPath + "/webhooks/deadHook"
	r := b.call("PUT", hook, webhookBody("http://127.0.0.1:9/hook", "push"))
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	keys := func(r armResp) []string {
		var out []string
		for k := range r.body["properties"].(map[string]any) {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	before := keys(b.call("GET", hook, nil))

	// Three deliveries fail for good an hour later; the check runs just
	// after, with a one-hour window.
	w, err := b.store.GetWebhook(b.ctx, b.reg, "deadHook")
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	var evs []*models.Event
	for i := range 3 {
		evs = append(evs, &models.Event{ID: fmt.Sprintf("dead-%d", i), RegistryID: b.reg.ID, Action: "push", Repository: "app",
			Tag: "v1", Source: "api", Payload: []byte(`{}`)})
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
	claimed, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: later, Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	var results []models.AttemptResult
	for _, c := range claimed {
		results = append(results, models.AttemptResult{Token: c.Token, State: models.DeliveryFailed, AvailableAt: later, UpdatedAt: later,
			Attempt: models.Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: 1, RequestURI: "x",
				StatusCode: 502, ReasonPhrase: "Bad Gateway", StartedAt: later.UnixNano()}})
	}
	if err := b.store.RecordAttempts(b.ctx, results); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.store.AutoDisableWebhook(b.ctx, w.ID, later.Add(time.Second), time.Hour); err != nil || !ok {
		t.Fatalf("AutoDisableWebhook = %v, %v", ok, err)
	}

	r = b.call("GET", hook, nil)
	if r.status != 200 || r.body["properties"].(map[string]any)["status"] != "disabled" {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	if got := keys(r); !slices.Equal(got, before) {
		t.Errorf("properties of an auto-disabled webhook %v, want the same as before %v", got, before)
	}

	kicks := b.kick.n.Load()
	r = b.call("PATCH", hook, map[string]any{"properties": map[string]any{"status": "enabled"}})
	if r.status != 200 || r.body["properties"].(map[string]any)["status"] != "enabled" {
		t.Fatalf("patch: %d %s", r.status, r.raw)
	}
	if b.kick.n.Load() == kicks {
		t.Error("enabling did not wake the dispatcher")
	}
	w, err = b.store.GetWebhook(b.ctx, b.reg, "deadHook")
	if err != nil {
		t.Fatal(err)
	}
	if _, auto := w.AutoDisabled(); auto || w.AutoDisabledReason != "" {
		t.Errorf("after PATCH status=enabled the webhook is still marked: %+v", w)
	}
}
