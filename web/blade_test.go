package web_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// finish claims every due delivery and records outcome(i) for the i-th
// claimed one: a 200 (true) or a 500 (false), as the dispatcher would.
func finish(t *testing.T, b testBundle, outcome func(webhookID uint) bool) {
	t.Helper()
	now := b.store.Now()
	claimed, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: now, Lease: time.Minute, Limit: 10000, PerWebhook: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var res []models.AttemptResult
	for _, c := range claimed {
		st, code := models.DeliverySucceeded, 200
		if !outcome(c.WebhookID) {
			st, code = models.DeliveryFailed, 500
		}
		res = append(res, models.AttemptResult{State: st, Token: c.Token, UpdatedAt: now, AvailableAt: now, Attempt: models.Attempt{
			DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: c.Attempt, RequestURI: "http://127.0.0.1:9/******",
			StatusCode: code, ReasonPhrase: http.StatusText(code), StartedAt: now.UnixNano()}})
	}
	if err := b.store.RecordAttempts(b.ctx, res); err != nil {
		t.Fatal(err)
	}
}

func ingest(t *testing.T, b testBundle, n int, action, repo string) {
	t.Helper()
	evs := make([]*models.Event, n)
	for i := range evs {
		evs[i] = &models.Event{ID: fmt.Sprintf("%s-%s-%d-%d", action, strings.ReplaceAll(repo, "/", "_"), i, time.Now().UnixNano()),
			RegistryID: b.reg.ID, Action: action, Repository: repo, Tag: "v1", Digest: "sha256:" + strings.Repeat("1", 64),
			Source: "api", Payload: []byte(`{}`)}
	}
	if _, err := b.store.IngestEvents(b.ctx, evs); err != nil {
		t.Fatal(err)
	}
}

// enabledHook creates an enabled webhook taking pushes.
func enabledHook(t *testing.T, b testBundle, name string) *models.Webhook {
	t.Helper()
	in := models.WebhookInput{Name: name, ServiceURI: "http://127.0.0.1:9/hook", Actions: []string{"push"}}
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var bladeRow = regexp.MustCompile(`<a href="/registries/myregistry/webhooks/(hook\d+)"`)

func TestBladePagesHealthAndLiveStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids = map[string]uint{}
	for i := 0; i < 60; i++ {
		w := enabledHook(t, b, fmt.Sprintf("hook%03d", i))
		ids[w.Name] = w.ID
	}
	c := b.admin()

	// 60 webhooks: two pages of 50 and 10, in name order.
	r := c.get("/registries/myregistry/webhooks")
	if r.code != http.StatusOK {
		t.Fatalf("blade: %d", r.code)
	}
	rows := bladeRow.FindAllStringSubmatch(r.body, -1)
	if len(rows) != 50 || rows[0][1] != "hook000" || rows[49][1] != "hook049" {
		t.Fatalf("page 1 has %d rows (%v … %v)", len(rows), rows[0], rows[len(rows)-1])
	}
	for _, want := range []string{">Health</th>", "Page 1 of 2", `href="/registries/myregistry/webhooks?page=2"`, "60 of 500 webhooks used", "no deliveries"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page 1 lacks %q", want)
		}
	}
	if strings.Contains(r.body, `hx-trigger="every 2s"`) {
		t.Error("the blade polls with nothing in flight")
	}
	r = c.get("/registries/myregistry/webhooks?page=2")
	if rows := bladeRow.FindAllStringSubmatch(r.body, -1); len(rows) != 10 || rows[0][1] != "hook050" {
		t.Fatalf("page 2 has %d rows", len(rows))
	}

	// Two pushes to every webhook, not yet sent: the table polls itself.
	ingest(t, b, 2, "push", "team/app")
	r = c.get("/registries/myregistry/webhooks")
	if !strings.Contains(r.body, `hx-trigger="every 2s"`) || !strings.Contains(r.body, "Pending") {
		t.Fatal("an open delivery on the page, but the table does not poll or show it")
	}
	if !strings.Contains(r.body, "2 pending") {
		t.Error("the Health column does not count the pending deliveries")
	}
	// hook000 and hook001 fail everything, the rest succeed.
	finish(t, b, func(id uint) bool { return id != ids["hook000"] && id != ids["hook001"] })

	// The poll (htmx, aimed at the table) gets the table alone, now final.
	r = c.do(http.MethodGet, "/registries/myregistry/webhooks", nil, map[string]string{"HX-Request": "true", "HX-Target": "blade-table"})
	if r.code != http.StatusOK || strings.Contains(r.body, "<html") || !strings.Contains(r.body, `id="blade-table"`) {
		t.Fatalf("table fragment: %d, full page: %v", r.code, strings.Contains(r.body, "<html"))
	}
	if strings.Contains(r.body, `hx-trigger="every 2s"`) {
		t.Error("still polling after every delivery finished")
	}
	row := func(name string) string {
		i := strings.Index(r.body, `/webhooks/`+name+`"`)
		j := strings.Index(r.body[i:], "</tr>")
		return r.body[i : i+j]
	}
	for name, want := range map[string][]string{
		"hook000": {"500 Internal Server Error", "0% of 2", ">failing<", "2 failed"},
		"hook002": {"200 OK", "100% of 2", "2 succeeded, 0 failed"},
	} {
		got := row(name)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s row lacks %q: %s", name, w, got)
			}
		}
		if name == "hook002" && strings.Contains(got, "failing") {
			t.Errorf("a healthy webhook is marked failing")
		}
		if !strings.Contains(got, `<svg`) || !strings.Contains(got, `role="img"`) {
			t.Errorf("%s has no chart", name)
		}
	}

	// Its page shows 24 hours and 7 days.
	r = c.get("/registries/myregistry/webhooks/hook000")
	for _, want := range []string{"Last 24 hours", "Last 7 days", "2 deliveries: 0 succeeded, 2 failed, 0 pending", ">failing<"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("webhook page lacks %q", want)
		}
	}
}

var olderLink = regexp.MustCompile(`href="(/registries/myregistry/webhooks/hook001\?[^"]*before=[^"]+)"`)

func TestEventsFilterAndKeysetPagingInTheURL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := enabledHook(t, b, "hook001")
	ingest(t, b, 30, "push", "team/app")
	ingest(t, b, 15, "push", "team/other")
	// Every third delivery fails.
	n := 0
	finish(t, b, func(uint) bool { n++; return n%3 != 0 })
	c := b.admin()
	page := "/registries/myregistry/webhooks/hook001"

	r := c.get(page)
	if got := strings.Count(r.body, "data-event-id="); got != 20 {
		t.Fatalf("page 1 has %d events, want 20", got)
	}
	m := olderLink.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatal("no Older link on page 1")
	}
	// Page 2 through its address, as a reload or a shared link would.
	r2 := c.get(htmlUnescape(m[1]))
	if got := strings.Count(r2.body, "data-event-id="); got != 20 {
		t.Fatalf("page 2 has %d events", got)
	}
	if strings.Contains(r2.body, firstEventID(r.body)) {
		t.Error("page 2 repeats page 1's first event")
	}

	// Filtered: failed ones of team/other only, kept in every link.
	r = c.get(page + "?result=failed&repository=team%2Fother")
	rows := strings.Count(r.body, "data-event-id=")
	if rows != 5 {
		t.Errorf("failed deliveries of team/other: %d rows, want 5", rows)
	}
	if strings.Contains(r.body, "200 OK") || strings.Contains(r.body, ">team/app:") {
		t.Error("the filter let other rows through")
	}
	for _, want := range []string{`<option value="failed" selected>`, `value="team/other"`, "Clear filters"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the filtered page lacks %q", want)
		}
	}
	all := deliveryCount(t, b, w.ID, models.DeliveryFilter{Result: models.ResultFailed})
	if all != 15 {
		t.Errorf("%d failed deliveries in the store, want 15", all)
	}
	r = c.get(page + "?result=failed")
	if got := strings.Count(r.body, "data-event-id="); got != 15 {
		t.Errorf("failed filter shows %d, want 15", got)
	}

	// The fragment URL without htmx goes to the page with the same query.
	r = c.get(page + "/events?result=failed&action=push")
	if r.code != http.StatusSeeOther || r.header.Get("Location") != page+"?action=push&result=failed" {
		t.Errorf("fragment without htmx: %d → %q", r.code, r.header.Get("Location"))
	}
	// Unknown filter values are ignored, not an error.
	if r := c.get(page + "?result=bogus&action=nope&before=junk"); r.code != http.StatusOK || strings.Count(r.body, "data-event-id=") != 20 {
		t.Errorf("bad query values: %d", r.code)
	}
}

func deliveryCount(t *testing.T, b testBundle, id uint, f models.DeliveryFilter) int {
	t.Helper()
	p, err := b.store.PageDeliveries(b.ctx, id, f, nil, nil, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Rows)
}

var eventIDAttr = regexp.MustCompile(`data-event-id="([^"]+)"`)

func firstEventID(body string) string {
	m := eventIDAttr.FindStringSubmatch(body)
	if m == nil {
		return "\x00none"
	}
	return `data-event-id="` + m[1] + `"`
}

func htmlUnescape(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }
