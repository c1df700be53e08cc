package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/web"
	"github.com/registryhooks/registryhooks/web/dispatch"
)

// ingestToken is myregistry's ingest token.
func (b testBundle) ingestToken(t *testing.T) string {
	t.Helper()
	tok, err := b.store.IngestToken(b.reg)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// catchAll returns an enabled webhook of myregistry that every push and
// delete is queued for, creating it on first use.
func (b testBundle) catchAll(t *testing.T) *models.Webhook {
	t.Helper()
	if w, err := b.store.GetWebhook(b.ctx, b.reg, "catchall1"); err == nil {
		return w
	}
	w, err := b.store.CreateWebhook(b.ctx, b.reg, models.WebhookInput{Name: "catchall1", ServiceURI: "http://127.0.0.1:9/hook",
		Actions: []string{"push", "delete"}, Status: models.StatusEnabled}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// ingestAPIEvent posts one event to /ingest/events/myregistry with the
// registry's ingest token and returns the stored payload's request object.
func (b testBundle) ingestAPIEvent(t *testing.T, body string) map[string]any {
	t.Helper()
	w := b.catchAll(t)
	req, _ := http.NewRequest(http.MethodPost, b.url+"/ingest/events/myregistry", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+b.ingestToken(t))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ci-script/1.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("ingest: %d %s", res.StatusCode, raw)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	// The payload as stored, read through the delivery of a catch-all
	// webhook (event ids are per registry; the event row has its own key).
	rows, _, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var payload []byte
	for _, r := range rows {
		if r.EventID == out.ID {
			d, err := b.store.GetDelivery(b.ctx, w.ID, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			payload = d.Event.Payload
		}
	}
	var p struct {
		Request map[string]any `json:"request"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatalf("payload of %s: %v (%s)", out.ID, err, payload)
	}
	return p.Request
}

// The default registry's login server is localhost:5000 unless
// --login-server says otherwise at first start; every payload names it as
// request.host, and request carries id, method and useragent too.
func TestLoginServerAtFirstStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.reg.LoginServer != "localhost:5000" {
		t.Fatalf("default login server %q", b.reg.LoginServer)
	}
	req := b.ingestAPIEvent(t, `{"action":"push","target":{"repository":"team/app","tag":"v1","digest":"sha256:abc","size":5}}`)
	if req["host"] != "localhost:5000" || req["method"] != "PUT" || req["useragent"] != "ci-script/1.0" || len(req["id"].(string)) != 36 {
		t.Fatalf("request = %v", req)
	}
	// The event's own host is replaced: receivers need the login server.
	req = b.ingestAPIEvent(t, `{"action":"delete","target":{"repository":"team/app","digest":"sha256:abc"},"request":{"id":"r-1","host":"10.0.0.7:5000","useragent":"docker/27"}}`)
	if req["host"] != "localhost:5000" || req["method"] != "DELETE" || req["useragent"] != "docker/27" || req["id"] != "r-1" {
		t.Fatalf("request = %v", req)
	}

	b2 := setupWith(t, "--allow-private-targets", "--login-server", " Registry.Example.com:5000 ")
	if b2.reg.LoginServer != "registry.example.com:5000" {
		t.Fatalf("--login-server gave %q", b2.reg.LoginServer)
	}
	if req := b2.ingestAPIEvent(t, `{"action":"push","target":{"repository":"team/app","tag":"v1"}}`); req["host"] != "registry.example.com:5000" {
		t.Fatalf("request = %v", req)
	}
	// The size ACR's Int32 cannot hold is refused with a clear 400.
	res, err := http.Post(b.url+"/ingest/events/myregistry", "application/json", strings.NewReader(`{"action":"push","target":{"repository":"a","tag":"v","size":2147483648}}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized { // no token: auth comes first
		t.Fatalf("unauthenticated ingest: %d", res.StatusCode)
	}
	req2, _ := http.NewRequest(http.MethodPost, b.url+"/ingest/events/myregistry", strings.NewReader(`{"action":"push","target":{"repository":"a","tag":"v","size":2147483648}}`))
	req2.Header.Set("Authorization", "Bearer "+b.ingestToken(t))
	req2.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), `"code":"InvalidRequest"`) ||
		!strings.Contains(string(raw), "target.size 2147483648 is larger than 2147483647") {
		t.Fatalf("size past Int32: %d %s", res.StatusCode, raw)
	}
}

// Admins change a registry's login server on the Registries page: the
// value is validated (422 with the message, nothing changed), the change
// audited, and events from then on carry it.
func TestRegistryLoginServerForm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.admin()
	page := c.get("/registries")
	wantCode(t, page, http.StatusOK)
	wantBody(t, page, `action="/registries/myregistry/login-server"`)
	wantBody(t, page, `value="localhost:5000"`)

	for _, bad := range []string{"http://registry.example.com", "registry.example.com/team", "reg istry", "registry:99999", "", "-bad-.example"} {
		r := c.post("/registries/myregistry/login-server", url.Values{"login_server": {bad}}, true)
		wantCode(t, r, http.StatusUnprocessableEntity)
		wantBody(t, r, `aria-invalid="true"`)
		wantBody(t, r, "Login server")
		if reg, _ := b.store.GetRegistry(b.ctx, "myregistry"); reg.LoginServer != "localhost:5000" {
			t.Fatalf("%q changed the login server to %q", bad, reg.LoginServer)
		}
	}

	r := c.post("/registries/myregistry/login-server", url.Values{"login_server": {"Registry.Example.com:443"}}, true)
	wantCode(t, r, http.StatusSeeOther)
	if got := r.header.Get("Location"); got != "/registries?registry=myregistry" {
		t.Fatalf("Location %q", got)
	}
	reg, err := b.store.GetRegistry(b.ctx, "myregistry")
	if err != nil || reg.LoginServer != "registry.example.com:443" {
		t.Fatalf("login server %q, %v", reg.LoginServer, err)
	}
	entries, _, _ := b.store.ListAudit(b.ctx, 0, 5)
	if len(entries) == 0 || entries[0].Action != "registry.login_server" || entries[0].Detail != "localhost:5000 -> registry.example.com:443" {
		t.Fatalf("audit %+v", entries)
	}
	if req := b.ingestAPIEvent(t, `{"action":"push","target":{"repository":"team/app","tag":"v2"}}`); req["host"] != "registry.example.com:443" {
		t.Fatalf("request after the change = %v", req)
	}

	// Contributors and Readers see the value but cannot change it.
	contrib := b.as(models.RoleContributor)
	wantCode(t, contrib.post("/registries/myregistry/login-server", url.Values{"login_server": {"evil.example"}}, true), http.StatusForbidden)
	if p := contrib.get("/registries"); strings.Contains(p.body, `action="/registries/myregistry/login-server"`) || !strings.Contains(p.body, "registry.example.com:443") {
		t.Fatal("a Contributor is offered the login server form, or does not see the value")
	}
}

// The event detail says when the next attempt goes out, and why a
// delivery ended.
func TestEventDetailShowsRetryOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, err := b.store.CreateWebhook(b.ctx, b.reg, models.WebhookInput{Name: "outcome1", ServiceURI: "http://127.0.0.1:9/hook",
		Actions: []string{"push"}, Status: models.StatusEnabled}, "test")
	if err != nil {
		t.Fatal(err)
	}
	c := b.admin()
	hdr := map[string]string{"X-CSRF-Token": c.csrf()}
	wantCode(t, c.do("POST", "/registries/myregistry/webhooks/outcome1/ping", url.Values{}, hdr), http.StatusSeeOther)
	b.ingestAPIEvent(t, `{"action":"push","target":{"repository":"team/app","tag":"v1"}}`)
	rows, _, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10)
	if err != nil || len(rows) != 2 {
		t.Fatalf("deliveries %d %+v, %v", len(rows), rows, err)
	}
	push, ping := rows[0], rows[1]
	now := b.store.Now()
	// Leased as the dispatcher does (the attempt count goes up), then the
	// results recorded.
	token := map[uint]int64{} // lease tokens: results are fenced by them
	claim := func(at time.Time) {
		claimed, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: at, Lease: time.Minute, Limit: 10, PerWebhook: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range claimed {
			token[c.ID] = c.Token
		}
	}
	claim(now)
	next := now.Add(5 * time.Minute)
	if err := b.store.RecordAttempts(b.ctx, []models.AttemptResult{
		{Attempt: models.Attempt{DeliveryID: push.ID, WebhookID: w.ID, EventID: push.EventID, Number: 1, StatusCode: 503, ReasonPhrase: "Service Unavailable"},
			Token: token[push.ID], State: models.DeliveryPending, AvailableAt: next, UpdatedAt: now},
		{Attempt: models.Attempt{DeliveryID: ping.ID, WebhookID: w.ID, EventID: ping.EventID, Number: 1, StatusCode: 400, ReasonPhrase: "Bad Request"},
			Token: token[ping.ID], State: models.DeliveryFailed, AvailableAt: now, UpdatedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	htmx := map[string]string{"HX-Request": "true"}
	base := "/registries/myregistry/webhooks/outcome1/events/"
	r := c.do("GET", base+itoa(push.ID), nil, htmx)
	wantCode(t, r, http.StatusOK)
	wantBody(t, r, "Attempt 1 failed; next attempt at "+time.Unix(0, next.UnixNano()).UTC().Format("2006-01-02 15:04:05.000 UTC"))
	r = c.do("GET", base+itoa(ping.ID), nil, htmx)
	wantBody(t, r, "a ping is sent once")

	// A refused event, as the dispatcher records it.
	claim(next)
	if err := b.store.RecordAttempts(b.ctx, []models.AttemptResult{
		{Attempt: models.Attempt{DeliveryID: push.ID, WebhookID: w.ID, EventID: push.EventID, Number: 2, StatusCode: 400, ReasonPhrase: "Bad Request",
			Error: "refused by the receiver: 400 Bad Request"}, Token: token[push.ID], State: models.DeliveryFailed, AvailableAt: now, UpdatedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	r = c.do("GET", base+itoa(push.ID), nil, htmx)
	wantBody(t, r, "Failed: refused by the receiver: 400 Bad Request.")
}

// The retry and receiver settings are read from flags and the environment
// and refused with a message naming the setting.
func TestRetryAndReceiverSettings(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string, args ...string) (web.Config, error) {
		return web.Load(append([]string{"--db", filepath.Join(t.TempDir(), "x.db")}, args...), func(k string) string { return env[k] }, io.Discard)
	}
	cfg, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cfg.Dispatch.WithDefaults()
	if cfg.Dispatch.UserAgent != "AzureContainerRegistry/1.0 (Registry Hooks)" || cfg.LoginServer != "localhost:5000" || cfg.Dispatch.Retry4xx ||
		dispatch.FormatRetrySchedule(d.RetrySchedule) != "5s,5m,30m,2h,5h,10h,10h" || d.MaxAttempts != 8 {
		t.Fatalf("defaults: %+v, schedule %v, attempts %d", cfg, d.RetrySchedule, d.MaxAttempts)
	}
	cfg, err = load(map[string]string{"REGISTRYHOOKS_RETRY_4XX": "true", "REGISTRYHOOKS_USER_AGENT": "AzureContainerRegistry/1.0 (ci)",
		"REGISTRYHOOKS_RETRY_SCHEDULE": "1s,1m", "REGISTRYHOOKS_LOGIN_SERVER": "reg.internal:5000"})
	if err != nil {
		t.Fatal(err)
	}
	d, _ = cfg.Dispatch.WithDefaults()
	if !d.Retry4xx || d.UserAgent != "AzureContainerRegistry/1.0 (ci)" || d.MaxAttempts != 3 || cfg.LoginServer != "reg.internal:5000" {
		t.Fatalf("from the environment: %+v", d)
	}
	cfg, err = load(nil, "--retry-schedule", "10s", "--max-attempts", "4")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ = cfg.Dispatch.WithDefaults(); d.MaxAttempts != 4 || len(d.RetrySchedule) != 1 {
		t.Fatalf("flags: %+v", d)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--retry-schedule", "5s,soon"}, "--retry-schedule"},
		{[]string{"--retry-schedule", "0s"}, "--retry-schedule"},
		{[]string{"--user-agent", "bad\x01agent"}, "--user-agent"},
		{[]string{"--login-server", "http://x.example"}, "--login-server"},
		{[]string{"--max-attempts", "101"}, "--max-attempts"},
	} {
		if _, err := load(nil, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want one naming %s", tt.args, err, tt.want)
		}
	}
}
