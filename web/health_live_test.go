package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// The webhook page's Health section is a fragment of its own: after a
// Ping (its answer triggers rh:queued, which reloads the section once) it
// shows the delivery pending and polls; once the result is recorded the
// next poll shows it and no longer polls. The events table's newest page
// follows open deliveries of the webhook too; a filtered page does not.
func TestWebhookHealthFragmentFollowsDeliveries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := models.WebhookInput{Name: "livehook1", ServiceURI: "http://127.0.0.1:9/hook?code=s3cr3t-query",
		Headers: map[string]string{"Authorization": "Bearer s3cr3t-header"}, Actions: []string{"push"}}
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	c := b.admin()
	page := "/registries/myregistry/webhooks/livehook1"
	htmx := map[string]string{"HX-Request": "true"}
	const polls = `hx-trigger="every 2s, rh:queued from:body"`
	const idle = `hx-trigger="rh:queued from:body"`
	fragment := func() string {
		t.Helper()
		r := c.do(http.MethodGet, page+"/health", nil, htmx)
		wantCode(t, r, http.StatusOK)
		if strings.Contains(r.body, "<html") || !strings.Contains(r.body, `id="health"`) {
			t.Fatalf("not the health fragment: %.300s", r.body)
		}
		for _, secret := range []string{"s3cr3t-query", "s3cr3t-header", "Authorization"} {
			if strings.Contains(r.body, secret) {
				t.Fatalf("the fragment shows %q", secret)
			}
		}
		return r.body
	}

	// Nothing sent yet: no polling, but it listens for a queued delivery.
	if f := fragment(); !strings.Contains(f, idle) || strings.Contains(f, "every 2s") || !strings.Contains(f, `hx-get="`+page+`/health"`) {
		t.Fatalf("idle fragment: %s", f)
	}
	r := c.get(page)
	if !strings.Contains(r.body, `id="health"`) || !strings.Contains(r.body, idle) || strings.Contains(r.body, "every 1s") {
		t.Error("the idle webhook page polls, or its Health section is not the fragment")
	}

	// Ping (htmx): the answer tells the page to reload the section.
	hdr := map[string]string{"X-CSRF-Token": c.csrf(), "HX-Request": "true"}
	r = c.do(http.MethodPost, page+"/ping", url.Values{}, hdr)
	wantCode(t, r, http.StatusOK)
	if !strings.Contains(r.header.Get("HX-Trigger"), `"rh:queued"`) {
		t.Fatalf("the Ping answer does not trigger rh:queued: %q", r.header.Get("HX-Trigger"))
	}
	f := fragment()
	for _, want := range []string{polls, "1 deliveries: 0 succeeded, 0 failed, 1 pending", `data-testid="health-24 hours"`, `data-testid="health-7 days"`} {
		if !strings.Contains(f, want) {
			t.Errorf("fragment with the ping in flight lacks %q", want)
		}
	}
	if strings.Contains(f, "aria-live") {
		t.Error("the polling fragment is a live region")
	}
	// The page itself, loaded now, polls too.
	if r := c.get(page); !strings.Contains(r.body, polls) {
		t.Error("the webhook page with a delivery in flight does not poll its Health section")
	}

	// The receiver answers 200: the next poll shows it and stops.
	finish(t, b, func(uint) bool { return true })
	f = fragment()
	if !strings.Contains(f, "1 deliveries: 1 succeeded, 0 failed, 0 pending") || !strings.Contains(f, "100%") {
		t.Errorf("fragment after the result: %s", f)
	}
	if strings.Contains(f, "every 2s") || !strings.Contains(f, idle) {
		t.Error("the fragment still polls with nothing in flight")
	}

	// A push whose first attempt is still running (claimed, no result)
	// and then 20 newer pushes, all answered: the newest events page shows
	// only finished rows, the open one is on the next page. The newest
	// page polls all the same (new rows may come), a filtered one does
	// not, and the Health section polls.
	ingest(t, b, 1, "push", "team/app")
	claimed, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: b.store.Now(), Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	ingest(t, b, 20, "push", "team/app")
	finish(t, b, func(uint) bool { return true })
	events := func(q string) string {
		t.Helper()
		r := c.do(http.MethodGet, page+"/events"+q, nil, htmx)
		wantCode(t, r, http.StatusOK)
		return r.body
	}
	if e := events(""); !strings.Contains(e, `hx-trigger="every 1s"`) || strings.Contains(e, "Pending") {
		t.Error("the newest events page (all rows finished) does not poll while a delivery of the webhook is open")
	}
	if e := events("?result=failed"); strings.Contains(e, "every 1s") {
		t.Error("a filtered events page with no open row polls")
	}
	if f := fragment(); !strings.Contains(f, polls) || !strings.Contains(f, "22 deliveries: 21 succeeded, 0 failed, 1 pending") {
		t.Errorf("fragment with a push in flight: %s", f)
	}
	// Its attempt fails for good: everything stops polling.
	now := b.store.Now()
	cl := claimed[0]
	if err := b.store.RecordAttempts(b.ctx, []models.AttemptResult{{State: models.DeliveryFailed, Token: cl.Token, UpdatedAt: now, AvailableAt: now,
		Attempt: models.Attempt{DeliveryID: cl.ID, WebhookID: cl.WebhookID, EventID: cl.EventID, Number: cl.Attempt, RequestURI: "http://127.0.0.1:9/******",
			StatusCode: 500, ReasonPhrase: "Internal Server Error", StartedAt: now.UnixNano()}}}); err != nil {
		t.Fatal(err)
	}
	if e := events(""); strings.Contains(e, "every 1s") {
		t.Error("the newest events page still polls once idle")
	}
	if f := fragment(); strings.Contains(f, "every 2s") || !strings.Contains(f, "22 deliveries: 21 succeeded, 1 failed, 0 pending") {
		t.Errorf("fragment once idle: %s", f)
	}

	// A plain request for the fragment goes to the page; a deleted
	// webhook's fragment tells htmx to leave.
	r = c.get(page + "/health")
	if r.code != http.StatusSeeOther || r.header.Get("Location") != page {
		t.Errorf("plain GET of the fragment: %d %q", r.code, r.header.Get("Location"))
	}
	if err := b.store.DeleteWebhook(b.ctx, w); err != nil {
		t.Fatal(err)
	}
	r = c.do(http.MethodGet, page+"/health", nil, htmx)
	if r.code != http.StatusOK || r.header.Get("HX-Redirect") != "/registries/myregistry/webhooks" {
		t.Errorf("fragment of a deleted webhook: %d, HX-Redirect %q", r.code, r.header.Get("HX-Redirect"))
	}
}
