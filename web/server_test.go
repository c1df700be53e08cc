package web_test

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/pgtestdb"
	"github.com/registryhooks/registryhooks/web"
)

// These tests drive the portal through the real server (route table,
// middleware, handlers, views) over HTTP on loopback, against a real SQLite
// file per test. The dispatcher is built but not started, so a Ping's
// delivery stays queued where the test can see it.

const (
	adminPassword = "correct horse battery"
	apiToken      = "test-api-token-0123456789"
)

type testBundle struct {
	t     *testing.T
	url   string
	store *models.Store
	ctx   context.Context
	reg   *models.Registry // the default registry, myregistry (Premium)
}

func setup(t *testing.T) testBundle {
	t.Helper()
	return setupWith(t, "--allow-private-targets")
}

// setupWith starts a server with extra flags.
func setupWith(t *testing.T, flags ...string) testBundle {
	t.Helper()
	env := map[string]string{"REGISTRYHOOKS_ADMIN_PASSWORD": adminPassword, "REGISTRYHOOKS_API_TOKEN": apiToken}
	if pgtestdb.Postgres() {
		env["REGISTRYHOOKS_SECRET_KEY"] = strings.Repeat("ab", 32)
	}
	cfg, err := web.Load(append([]string{"--db", pgtestdb.DB(t)}, flags...),
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv, err := web.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		_ = srv.Store().Close()
	})
	reg, err := srv.Store().GetRegistry(ctx, "myregistry")
	if err != nil {
		t.Fatal(err)
	}
	return testBundle{t: t, url: ts.URL, store: srv.Store(), ctx: ctx, reg: reg}
}

// client is one browser: its own cookie jar, redirects not followed so the
// tests see the status codes the handlers answer.
type client struct {
	b    testBundle
	http *http.Client
}

func (b testBundle) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{b: b, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// resp is a finished response with its body read.
type resp struct {
	code   int
	header http.Header
	body   string
}

func (c *client) do(method, path string, form url.Values, header map[string]string) resp {
	c.b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.b.url+path, body)
	if err != nil {
		c.b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.b.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.b.t.Fatal(err)
	}
	return resp{code: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) get(path string) resp { return c.do(http.MethodGet, path, nil, nil) }

// post sends a form; with csrf true it adds the token of the session (or
// of the sign-in form) the way the portal's forms do.
func (c *client) post(path string, form url.Values, csrf bool) resp {
	c.b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if csrf {
		form.Set("_csrf", c.csrf())
	}
	return c.do(http.MethodPost, path, form, nil)
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrf reads the token from a page's hidden _csrf input: the sign-in form's
// before signing in, the session's after.
func (c *client) csrf() string {
	c.b.t.Helper()
	path := "/registries"
	if !c.signedIn() {
		path = "/login"
	}
	r := c.get(path)
	m := csrfInput.FindStringSubmatch(r.body)
	if m == nil {
		c.b.t.Fatalf("GET %s (%d): no _csrf input in the page", path, r.code)
	}
	return html.UnescapeString(m[1])
}

func (c *client) signedIn() bool {
	u, _ := url.Parse(c.b.url)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "rh_session" && ck.Value != "" {
			return true
		}
	}
	return false
}

func (c *client) login(user, password string) resp {
	c.b.t.Helper()
	return c.post("/login", url.Values{"username": {user}, "password": {password}}, true)
}

// admin returns a client signed in as admin.
func (b testBundle) admin() *client {
	b.t.Helper()
	c := b.client()
	if r := c.login(models.AdminUsername, adminPassword); r.code != http.StatusSeeOther {
		b.t.Fatalf("admin sign-in: %d %s", r.code, r.body)
	}
	return c
}

// as returns a client signed in as a new user with the given role.
func (b testBundle) as(role string) *client {
	b.t.Helper()
	name := strings.ToLower(role) + "1"
	if _, err := b.store.CreateUser(b.ctx, name, "password-"+name, role); err != nil {
		b.t.Fatal(err)
	}
	c := b.client()
	if r := c.login(name, "password-"+name); r.code != http.StatusSeeOther {
		b.t.Fatalf("%s sign-in: %d", role, r.code)
	}
	return c
}

func (b testBundle) webhook(name string) *models.Webhook {
	b.t.Helper()
	w, err := b.store.CreateWebhook(b.ctx, b.reg, models.WebhookInput{Name: name, ServiceURI: "http://127.0.0.1:9/hook",
		Headers: map[string]string{"X-Secret": "s3cret"}, Actions: []string{"push"}}, "test")
	if err != nil {
		b.t.Fatal(err)
	}
	return w
}

func (b testBundle) countWebhooks(reg *models.Registry) int {
	b.t.Helper()
	hooks, err := b.store.ListWebhooks(b.ctx, reg, 0, 0)
	if err != nil {
		b.t.Fatal(err)
	}
	return len(hooks)
}

func wantCode(t *testing.T, r resp, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body: %.400s", r.code, code, r.body)
	}
}

func wantBody(t *testing.T, r resp, substr string) {
	t.Helper()
	if !strings.Contains(r.body, substr) {
		t.Fatalf("body does not contain %q: %.2000s", substr, r.body)
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, password string
		csrf                 bool
		code                 int
		location, body       string
	}{
		{"right password", "admin", adminPassword, true, http.StatusSeeOther, "/", ""},
		{"username ignores case and spaces", " Admin ", adminPassword, true, http.StatusSeeOther, "/", ""},
		{"wrong password", "admin", "nope", true, http.StatusUnauthorized, "", "Invalid username or password."},
		{"unknown user", "mallory", adminPassword, true, http.StatusUnauthorized, "", "Invalid username or password."},
		{"empty password", "admin", "", true, http.StatusUnprocessableEntity, "", "Enter your username and password."},
		{"no CSRF token", "admin", adminPassword, false, http.StatusForbidden, "", "The sign-in form expired."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := b.client()
			c.get("/login") // the form sets its CSRF cookie
			r := c.post("/login", url.Values{"username": {tt.user}, "password": {tt.password}}, tt.csrf)
			wantCode(t, r, tt.code)
			if got := r.header.Get("Location"); got != tt.location {
				t.Fatalf("Location %q, want %q", got, tt.location)
			}
			wantBody(t, r, tt.body)
			if c.signedIn() != (tt.code == http.StatusSeeOther) {
				t.Fatalf("signed in = %v after %d", c.signedIn(), tt.code)
			}
		})
	}
}

func TestSessionCookieFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client()
	r := c.login("admin", adminPassword)
	wantCode(t, r, http.StatusSeeOther)
	var found bool
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "rh_session=") {
			found = true
			if !strings.Contains(line, "HttpOnly") || !strings.Contains(line, "SameSite=Lax") {
				t.Fatalf("session cookie lacks HttpOnly or SameSite: %s", line)
			}
		}
	}
	if !found {
		t.Fatal("no rh_session cookie set")
	}
}

func TestSignInNextStaysOnSite(t *testing.T) {
	t.Parallel()
	tests := []struct{ next, want string }{
		{"/registries", "/registries"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{`/\evil.example`, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.next, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := b.client()
			r := c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {tt.next}}, true)
			wantCode(t, r, http.StatusSeeOther)
			if got := r.header.Get("Location"); got != tt.want {
				t.Fatalf("Location %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client()
	for i := range 5 {
		r := c.login("admin", "wrong")
		if r.code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i+1, r.code)
		}
	}
	// Locked out now, even with the right password.
	r := c.login("admin", adminPassword)
	wantCode(t, r, http.StatusTooManyRequests)
	wantBody(t, r, "Too many failed sign-ins")
	if c.signedIn() {
		t.Fatal("signed in while locked out")
	}
	// Another user from the same address is not locked out yet.
	if _, err := b.store.CreateUser(b.ctx, "reader1", "password-reader1", models.RoleReader); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.login("reader1", "password-reader1"), http.StatusSeeOther)
}

func TestPagesRequireLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("hook1")
	tests := []struct {
		method, path, location string
	}{
		{"GET", "/", "/login"},
		{"GET", "/registries", "/login?next=/registries"},
		{"GET", "/registries/myregistry/webhooks", "/login?next=/registries/myregistry/webhooks"},
		{"GET", "/registries/myregistry/webhooks/new", "/login?next=/registries/myregistry/webhooks/new"},
		{"GET", "/registries/myregistry/webhooks/hook1", "/login?next=/registries/myregistry/webhooks/hook1"},
		{"GET", "/users", "/login?next=/users"},
		{"POST", "/registries/myregistry/webhooks", "/login"},
		{"POST", "/registries/myregistry/webhooks/hook1/ping", "/login"},
		{"POST", "/registries/myregistry/webhooks/hook1/delete", "/login"},
		{"POST", "/users", "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			c := b.client()
			r := c.do(tt.method, tt.path, url.Values{"name": {"hook2"}}, nil)
			wantCode(t, r, http.StatusSeeOther)
			if got := r.header.Get("Location"); got != tt.location {
				t.Fatalf("Location %q, want %q", got, tt.location)
			}
		})
	}
	t.Run("htmx gets HX-Redirect", func(t *testing.T) {
		t.Parallel()
		r := b.client().do("GET", "/registries/myregistry/webhooks/hook1/events", nil, map[string]string{"HX-Request": "true"})
		wantCode(t, r, http.StatusUnauthorized)
		if got := r.header.Get("HX-Redirect"); !strings.HasPrefix(got, "/login") {
			t.Fatalf("HX-Redirect %q", got)
		}
	})
	t.Run("nothing changed", func(t *testing.T) {
		t.Parallel()
		if n := b.countWebhooks(b.reg); n != 1 {
			t.Fatalf("%d webhooks, want 1", n)
		}
	})
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	valid := url.Values{"name": {"hook1"}, "service_uri": {"https://example.com/h"}, "actions": {"push"}}
	tests := []struct {
		name   string
		field  string // _csrf form value; "session" = the right one
		header string // X-CSRF-Token; "session" = the right one
		code   int
	}{
		{"missing", "", "", http.StatusForbidden},
		{"wrong field", "not-the-token", "", http.StatusForbidden},
		{"wrong header", "", "not-the-token", http.StatusForbidden},
		{"right field", "session", "", http.StatusSeeOther},
		{"right header (htmx)", "", "session", http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := b.admin()
			tok := c.csrf()
			form := url.Values{}
			for k, v := range valid {
				form[k] = v
			}
			hdr := map[string]string{}
			switch tt.field {
			case "session":
				form.Set("_csrf", tok)
			case "":
			default:
				form.Set("_csrf", tt.field)
			}
			switch tt.header {
			case "session":
				hdr["X-CSRF-Token"] = tok
			case "":
			default:
				hdr["X-CSRF-Token"] = tt.header
			}
			r := c.do("POST", "/registries/myregistry/webhooks", form, hdr)
			wantCode(t, r, tt.code)
			want := 0
			if tt.code == http.StatusSeeOther {
				want = 1
			} else {
				wantBody(t, r, "security token did not match")
			}
			if n := b.countWebhooks(b.reg); n != want {
				t.Fatalf("%d webhooks stored, want %d", n, want)
			}
		})
	}
}

func TestWebhookCreate(t *testing.T) {
	t.Parallel()
	good := func() url.Values {
		return url.Values{"name": {"hookOne1"}, "service_uri": {"https://example.com/hook"},
			"custom_headers": {"Authorization: Basic 000000\nX-Id: 7"}, "actions": {"push", "delete"},
			"status": {"enabled"}, "scope": {"team/app:*"}}
	}
	tests := []struct {
		name string
		edit func(url.Values)
		msgs []string // empty: must succeed
	}{
		{"valid", func(url.Values) {}, nil},
		{"valid minimal", func(v url.Values) { v.Del("custom_headers"); v.Del("status"); v.Del("scope") }, nil},
		{"name too short", func(v url.Values) { v.Set("name", "ab") }, []string{"Webhook name must be 5-50 characters long (got 2)"}},
		{"name not alphanumeric", func(v url.Values) { v.Set("name", "my-hook") }, []string{"may contain only letters and digits"}},
		{"name empty", func(v url.Values) { v.Set("name", "") }, []string{"Webhook name is required"}},
		{"relative URI", func(v url.Values) { v.Set("service_uri", "/hook") }, []string{"must be an absolute http:// or https:// URI"}},
		{"ftp URI", func(v url.Values) { v.Set("service_uri", "ftp://example.com/") }, []string{"must use http or https"}},
		{"header without colon", func(v url.Values) { v.Set("custom_headers", "Authorization Basic") }, []string{"line 1: expected"}},
		{"duplicate header", func(v url.Values) { v.Set("custom_headers", "X-A: 1\nx-a: 2") }, []string{"is already given on line 1"}},
		{"reserved header", func(v url.Values) { v.Set("custom_headers", "Host: x") }, []string{"cannot be a custom header"}},
		{"no actions", func(v url.Values) { v.Del("actions") }, []string{"select at least one action"}},
		{"unknown action", func(v url.Values) { v.Add("actions", "pull") }, []string{"unknown action"}},
		{"bad status", func(v url.Values) { v.Set("status", "paused") }, []string{"status must be enabled or disabled"}},
		{"bad scope", func(v url.Values) { v.Set("scope", "foo:") }, []string{"has an empty tag"}},
		{"uppercase scope", func(v url.Values) { v.Set("scope", "Foo:bar") }, []string{"is not a valid name"}},
		{"all wrong at once", func(v url.Values) {
			v.Set("name", "ab")
			v.Set("service_uri", "nope")
			v.Set("scope", "*")
			v.Del("actions")
		}, []string{"5-50 characters", "must be an absolute", "wildcard", "select at least one action"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c := b.admin()
			form := good()
			tt.edit(form)
			r := c.post("/registries/myregistry/webhooks", form, true)
			if len(tt.msgs) == 0 {
				wantCode(t, r, http.StatusSeeOther)
				if got := r.header.Get("Location"); got != "/registries/myregistry/webhooks" {
					t.Fatalf("Location %q", got)
				}
				w, err := b.store.GetWebhook(b.ctx, b.reg, form.Get("name"))
				if err != nil {
					t.Fatalf("webhook not stored: %v", err)
				}
				if w.ServiceURI != form.Get("service_uri") || w.Scope != form.Get("scope") || w.Status != models.StatusEnabled {
					t.Fatalf("stored %+v", w)
				}
				if form.Get("custom_headers") != "" && w.Headers["X-Id"] != "7" {
					t.Fatalf("headers stored as %v", w.Headers)
				}
				// The blade lists it as a link to its page.
				blade := c.get("/registries/myregistry/webhooks")
				wantBody(t, blade, `href="/registries/myregistry/webhooks/`+form.Get("name")+`"`)
				return
			}
			wantCode(t, r, http.StatusUnprocessableEntity)
			for _, m := range tt.msgs {
				wantBody(t, r, html.EscapeString(m))
			}
			wantBody(t, r, `aria-invalid="true"`)
			// The form comes back with the values typed.
			if form.Get("service_uri") != "" {
				wantBody(t, r, `value="`+html.EscapeString(form.Get("service_uri"))+`"`)
			}
			if n := b.countWebhooks(b.reg); n != 0 {
				t.Fatalf("%d webhooks stored after an invalid submit", n)
			}
		})
	}
}

func TestWebhookCreateDuplicateName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("hookOne1")
	c := b.admin()
	r := c.post("/registries/myregistry/webhooks", url.Values{"name": {"HOOKONE1"},
		"service_uri": {"https://example.com/"}, "actions": {"push"}}, true)
	wantCode(t, r, http.StatusUnprocessableEntity)
	wantBody(t, r, "already exists in registry myregistry")
	if n := b.countWebhooks(b.reg); n != 1 {
		t.Fatalf("%d webhooks, want 1", n)
	}
}

func TestWebhookCreateQuota(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.admin()
	r := c.post("/registries", url.Values{"name": {"basicreg"}, "sku": {"Basic"}}, true)
	wantCode(t, r, http.StatusSeeOther)
	reg, err := b.store.GetRegistry(b.ctx, "basicreg")
	if err != nil {
		t.Fatal(err)
	}
	if reg.SKU != models.SKUBasic {
		t.Fatalf("SKU %q", reg.SKU)
	}
	for i, name := range []string{"hookA1", "hookB2", "hookC3"} {
		r := c.post("/registries/basicreg/webhooks", url.Values{"name": {name},
			"service_uri": {"https://example.com/"}, "actions": {"push"}}, true)
		if i < 2 {
			wantCode(t, r, http.StatusSeeOther)
			continue
		}
		wantCode(t, r, http.StatusUnprocessableEntity)
		wantBody(t, r, "Quota exceeded for resource type webhooks for the registry SKU Basic (limit 2)")
	}
	if n := b.countWebhooks(reg); n != 2 {
		t.Fatalf("%d webhooks in basicreg, want 2", n)
	}
	// The blade says so and offers no Add link.
	blade := c.get("/registries/basicreg/webhooks")
	wantBody(t, blade, "2 of 2 webhooks used (Basic SKU).")
	if strings.Contains(blade.body, `href="/registries/basicreg/webhooks/new"`) {
		t.Fatal("the blade still links to the Add form at the quota")
	}
}

func TestWebhookValidateInline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("taken1")
	c := b.admin()
	tok := c.csrf()
	tests := []struct {
		field string
		form  url.Values
		code  int
		msg   string // "" = the slot must be empty
	}{
		{"name", url.Values{"name": {"ab"}}, 200, "Webhook name must be 5-50 characters long (got 2)"},
		{"name", url.Values{"name": {"bad-name"}}, 200, "may contain only letters and digits"},
		{"name", url.Values{"name": {"TAKEN1"}}, 200, "already exists in registry myregistry"},
		{"name", url.Values{"name": {"goodname1"}}, 200, ""},
		// Only the asked field's message comes back.
		{"name", url.Values{"name": {"goodname1"}, "service_uri": {"ftp://x"}}, 200, ""},
		{"service_uri", url.Values{"service_uri": {"ftp://x"}}, 200, "must use http or https"},
		{"service_uri", url.Values{"service_uri": {"https://example.com/"}}, 200, ""},
		{"custom_headers", url.Values{"custom_headers": {"no colon here"}}, 200, "a colon is missing"},
		{"custom_headers", url.Values{"custom_headers": {"X-A: 1\n\nX-B: 2"}}, 200, ""},
		{"scope", url.Values{"scope": {":bar"}}, 200, "has no repository"},
		{"scope", url.Values{"scope": {"foo:*"}}, 200, ""},
		{"actions", url.Values{}, 200, "select at least one action"},
		{"bogus", url.Values{}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+tt.form.Encode(), func(t *testing.T) {
			t.Parallel()
			r := c.do("POST", "/registries/myregistry/validate-webhook?field="+tt.field, tt.form,
				map[string]string{"HX-Request": "true", "X-CSRF-Token": tok})
			wantCode(t, r, tt.code)
			if tt.code != 200 {
				return
			}
			slot := regexp.MustCompile(`<p id="err-` + tt.field + `"[^>]*>([^<]*)</p>`).FindStringSubmatch(r.body)
			if slot == nil {
				t.Fatalf("no message slot err-%s in %q", tt.field, r.body)
			}
			got := html.UnescapeString(slot[1])
			if (tt.msg == "") != (got == "") || !strings.Contains(got, tt.msg) {
				t.Fatalf("message %q, want %q", got, tt.msg)
			}
		})
	}
}

func TestWebhookPingQueuesDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		htmx bool
		code int
	}{
		{"form post", false, http.StatusSeeOther},
		{"htmx", true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			w := b.webhook("pinged1")
			c := b.admin()
			hdr := map[string]string{"X-CSRF-Token": c.csrf()}
			if tt.htmx {
				hdr["HX-Request"] = "true"
			}
			r := c.do("POST", "/registries/myregistry/webhooks/pinged1/ping", url.Values{}, hdr)
			wantCode(t, r, tt.code)
			rows, total, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if total != 1 || len(rows) != 1 {
				t.Fatalf("%d deliveries, want 1", total)
			}
			d := rows[0]
			if d.Action != models.ActionPing || d.State != models.DeliveryPending || d.EventID == "" {
				t.Fatalf("delivery %+v, want a pending ping", d)
			}
			if tt.htmx {
				// The refreshed events table shows the new row, polling
				// until the answer is in.
				wantBody(t, r, `data-event-id="`+d.EventID+`"`)
				wantBody(t, r, "Pending")
				wantBody(t, r, `hx-trigger="every 1s"`)
				if !strings.Contains(r.header.Get("HX-Trigger"), "Ping sent") {
					t.Fatalf("HX-Trigger %q", r.header.Get("HX-Trigger"))
				}
			} else if got := r.header.Get("Location"); got != "/registries/myregistry/webhooks/pinged1" {
				t.Fatalf("Location %q", got)
			}
			// The queued event's detail says it is not attempted yet.
			det := c.do("GET", "/registries/myregistry/webhooks/pinged1/events/"+strconv.FormatUint(uint64(d.ID), 10), nil, map[string]string{"HX-Request": "true"})
			wantCode(t, det, http.StatusOK)
			wantBody(t, det, d.EventID)
			wantBody(t, det, "Not attempted yet")
		})
	}
}

func TestWebhookDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.webhook("doomed1")
	b.webhook("kept1")
	c := b.admin()
	// History goes with it.
	wantCode(t, c.post("/registries/myregistry/webhooks/doomed1/ping", nil, true), http.StatusSeeOther)
	r := c.post("/registries/myregistry/webhooks/doomed1/delete", nil, true)
	wantCode(t, r, http.StatusSeeOther)
	if got := r.header.Get("Location"); got != "/registries/myregistry/webhooks" {
		t.Fatalf("Location %q", got)
	}
	if _, err := b.store.GetWebhook(b.ctx, b.reg, "doomed1"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("GetWebhook after delete: %v, want ErrNotFound", err)
	}
	if _, total, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10); err != nil || total != 0 {
		t.Fatalf("%d deliveries left (%v), want 0", total, err)
	}
	blade := c.get("/registries/myregistry/webhooks")
	if strings.Contains(blade.body, "doomed1\"") || strings.Contains(blade.body, ">doomed1<") {
		t.Fatal("the blade still lists the deleted webhook")
	}
	wantBody(t, blade, ">kept1<")
	// Deleting again, or showing it, is a 404.
	wantCode(t, c.post("/registries/myregistry/webhooks/doomed1/delete", nil, true), http.StatusNotFound)
	wantCode(t, c.get("/registries/myregistry/webhooks/doomed1"), http.StatusNotFound)
}

func TestReaderCannotChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.webhook("hook1")
	reader := b.as(models.RoleReader)
	tests := []struct {
		method, path string
		form         url.Values
		code         int
	}{
		{"GET", "/registries/myregistry/webhooks", nil, http.StatusOK},
		{"GET", "/registries/myregistry/webhooks/hook1", nil, http.StatusOK},
		{"GET", "/registries/myregistry/webhooks/new", nil, http.StatusForbidden},
		{"POST", "/registries/myregistry/webhooks", url.Values{"name": {"hook2"}, "service_uri": {"https://example.com/"}, "actions": {"push"}}, http.StatusForbidden},
		{"POST", "/registries/myregistry/webhooks/hook1/ping", url.Values{}, http.StatusForbidden},
		{"POST", "/registries/myregistry/webhooks/hook1/delete", url.Values{}, http.StatusForbidden},
		{"POST", "/registries/myregistry/webhooks/hook1/status", url.Values{"status": {"disabled"}}, http.StatusForbidden},
		{"GET", "/registries/myregistry/webhooks/hook1/callback", nil, http.StatusForbidden},
		{"GET", "/users", nil, http.StatusForbidden},
	}
	tok := reader.csrf()
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			if tt.form != nil {
				tt.form.Set("_csrf", tok)
			}
			r := reader.do(tt.method, tt.path, tt.form, nil)
			wantCode(t, r, tt.code)
			if tt.code == http.StatusForbidden {
				wantBody(t, r, "This needs the")
			}
		})
	}
	t.Run("pages show no Add or Ping", func(t *testing.T) {
		t.Parallel()
		blade := reader.get("/registries/myregistry/webhooks")
		if strings.Contains(blade.body, "/webhooks/new") || strings.Contains(blade.body, "> Add") {
			t.Fatal("a Reader's blade offers Add")
		}
		page := reader.get("/registries/myregistry/webhooks/hook1")
		if strings.Contains(page.body, "/ping") || strings.Contains(page.body, "delete-dialog") {
			t.Fatal("a Reader's webhook page offers Ping or Delete")
		}
	})
	t.Cleanup(func() {
		// Nothing was changed by the Reader.
		if n := b.countWebhooks(b.reg); n != 1 {
			t.Errorf("%d webhooks, want 1", n)
		}
		if _, total, _ := b.store.ListDeliveries(b.ctx, w.ID, 0, 10); total != 0 {
			t.Errorf("%d deliveries, want 0", total)
		}
	})
}

func TestContributorCanChangeWebhooksNotUsers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("hook1")
	c := b.as(models.RoleContributor)
	wantCode(t, c.post("/registries/myregistry/webhooks/hook1/ping", nil, true), http.StatusSeeOther)
	wantCode(t, c.post("/users", url.Values{"username": {"eve12"}, "password": {"password12345"}, "role": {"Admin"}}, true), http.StatusForbidden)
	users, err := b.store.ListUsers(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Username == "eve12" {
			t.Fatal("a Contributor created a user")
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.admin()
	for _, path := range []string{"/login", "/registries/myregistry/webhooks", "/healthz", "/static/app.js", "/no/such/page"} {
		t.Run(path, func(t *testing.T) {
			r := c.get(path)
			csp := r.header.Get("Content-Security-Policy")
			if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Fatalf("CSP %q", csp)
			}
			for _, d := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
				if !strings.Contains(csp, d) {
					t.Fatalf("CSP %q lacks %q", csp, d)
				}
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Fatalf("X-Content-Type-Options %q", got)
			}
			if got := r.header.Get("X-Frame-Options"); got != "DENY" {
				t.Fatalf("X-Frame-Options %q", got)
			}
		})
	}
}

func TestPortalPagesRender(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("hook1")
	c := b.admin()
	tests := []struct {
		path  string
		wants []string
	}{
		{"/login", nil},
		{"/registries/myregistry/webhooks", []string{"<h1", ">Webhooks</h1>", ">Name</th>", ">Status</th>", ">Scope</th>", ">Actions</th>", ">HTTP status</th>", `href="/registries/myregistry/webhooks/hook1"`, "Add"}},
		{"/registries/myregistry/webhooks/new", []string{`<label for="f-name" class="label">Webhook name</label>`, `>Service URI</label>`, `>Custom headers</label>`, `>Scope</label>`, `<legend class="label">Actions</legend>`, `value="chart_delete"`, ">Status</legend>", "Create"}},
		{"/registries/myregistry/webhooks/hook1", []string{"Ping", "Delete", ">Event ID</th>", ">Timestamp</th>", ">HTTP status</th>", "X-Secret: ******"}},
		{"/registries", []string{"myregistry"}},
		{"/users", []string{"admin", ">Webhooks</a>"}}, // the nav reaches the blade from a page of no registry
		{"/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := c.get(tt.path)
			if tt.path == "/login" || tt.path == "/" {
				// Signed in already: the form sends you on; home is the
				// default registry's blade.
				wantCode(t, r, http.StatusSeeOther)
				if tt.path == "/" && r.header.Get("Location") != "/registries/myregistry/webhooks" {
					t.Fatalf("Location %q", r.header.Get("Location"))
				}
				return
			}
			wantCode(t, r, http.StatusOK)
			for _, w := range tt.wants {
				wantBody(t, r, w)
			}
			if strings.Contains(r.body, "s3cret") {
				t.Fatal("a secret header value is shown in clear")
			}
		})
	}
}

func TestWebhookEditAndStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("hook1")
	c := b.admin()
	// The edit form comes filled in (secrets included, for Contributors).
	form := c.get("/registries/myregistry/webhooks/hook1/edit")
	wantCode(t, form, http.StatusOK)
	wantBody(t, form, "X-Secret: s3cret")
	wantBody(t, form, `action="/registries/myregistry/webhooks/hook1"`)

	tests := []struct {
		name string
		form url.Values
		code int
		msg  string
	}{
		{"invalid scope", url.Values{"name": {"hook1"}, "service_uri": {"https://example.com/new"}, "actions": {"push"}, "scope": {"foo:"}}, http.StatusUnprocessableEntity, "has an empty tag"},
		{"no actions", url.Values{"name": {"hook1"}, "service_uri": {"https://example.com/new"}}, http.StatusUnprocessableEntity, "select at least one action"},
		{"valid; the name cannot change", url.Values{"name": {"renamed1"}, "service_uri": {"https://example.com/new"}, "actions": {"delete"}, "status": {"disabled"}, "scope": {"foo:*"}}, http.StatusSeeOther, ""},
	}
	for _, tt := range tests {
		r := c.post("/registries/myregistry/webhooks/hook1", tt.form, true)
		if r.code != tt.code {
			t.Fatalf("%s: status %d, want %d", tt.name, r.code, tt.code)
		}
		if tt.msg != "" {
			wantBody(t, r, tt.msg)
			w, _ := b.store.GetWebhook(b.ctx, b.reg, "hook1")
			if w.ServiceURI != "http://127.0.0.1:9/hook" {
				t.Fatalf("%s: saved anyway: %q", tt.name, w.ServiceURI)
			}
		}
	}
	w, err := b.store.GetWebhook(b.ctx, b.reg, "hook1")
	if err != nil {
		t.Fatal(err)
	}
	if w.ServiceURI != "https://example.com/new" || w.Status != models.StatusDisabled || w.Scope != "foo:*" ||
		strings.Join(w.Actions(), ",") != "delete" || len(w.Headers) != 0 {
		t.Fatalf("after edit: %+v", w)
	}
	if _, err := b.store.GetWebhook(b.ctx, b.reg, "renamed1"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("the edit renamed the webhook: %v", err)
	}

	statuses := []struct {
		status string
		code   int
		want   string
	}{
		{"enabled", http.StatusSeeOther, models.StatusEnabled},
		{"bogus", http.StatusBadRequest, models.StatusEnabled},
		{"", http.StatusBadRequest, models.StatusEnabled},
		{"disabled", http.StatusSeeOther, models.StatusDisabled},
	}
	for _, tt := range statuses {
		r := c.post("/registries/myregistry/webhooks/hook1/status", url.Values{"status": {tt.status}}, true)
		if r.code != tt.code {
			t.Fatalf("status %q: %d, want %d", tt.status, r.code, tt.code)
		}
		w, _ := b.store.GetWebhook(b.ctx, b.reg, "hook1")
		if w.Status != tt.want {
			t.Fatalf("status %q: stored %q, want %q", tt.status, w.Status, tt.want)
		}
	}
}

// "validate" is a valid webhook name: its Edit form's POST must reach the
// webhook, not an inline-validation route.
func TestWebhookNamedValidateCanBeEdited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("validate")
	c := b.admin()
	r := c.post("/registries/myregistry/webhooks/validate", url.Values{"name": {"validate"},
		"service_uri": {"https://example.com/edited"}, "actions": {"push"}}, true)
	wantCode(t, r, http.StatusSeeOther)
	if got := r.header.Get("Location"); got != "/registries/myregistry/webhooks/validate" {
		t.Fatalf("Location %q", got)
	}
	w, err := b.store.GetWebhook(b.ctx, b.reg, "validate")
	if err != nil || w.ServiceURI != "https://example.com/edited" {
		t.Fatalf("after edit: %+v, %v", w, err)
	}
	// Inline validation of the Add form answers a field's message.
	r = c.do("POST", "/registries/myregistry/validate-webhook?field=name", url.Values{"name": {"ab"}},
		map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf()})
	wantCode(t, r, http.StatusOK)
	wantBody(t, r, "5-50 characters")
	// Inline validation of the webhook's own Edit form.
	r = c.do("POST", "/registries/myregistry/webhooks/validate/validate?field=service_uri", url.Values{"service_uri": {"x"}},
		map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf()})
	wantCode(t, r, http.StatusOK)
	wantBody(t, r, "must be an absolute")
}

// Without --allow-private-targets the form refuses loopback, private and
// metadata targets with the SSRF guard's reason, and saves nothing.
func TestWebhookCreateRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	b := setupWith(t)
	c := b.admin()
	tests := []struct{ uri, want string }{
		{"http://127.0.0.1:9000/hook", "loopback address; start with --allow-private-targets"},
		{"http://10.1.2.3/hook", "private address; start with --allow-private-targets"},
		{"http://169.254.169.254/latest/meta-data", "link-local address, which webhooks may never target"},
		{"http://[fd00:ec2::254]/", "cloud metadata address"},
	}
	for _, tt := range tests {
		r := c.post("/registries/myregistry/webhooks", url.Values{"name": {"privatehook"}, "service_uri": {tt.uri}, "actions": {"push"}}, true)
		wantCode(t, r, http.StatusUnprocessableEntity)
		wantBody(t, r, html.EscapeString(tt.want))
	}
	if n := b.countWebhooks(b.reg); n != 0 {
		t.Fatalf("%d webhooks saved, want none", n)
	}
	// A public address passes the check (nothing is dialled here).
	r := c.post("/registries/myregistry/webhooks", url.Values{"name": {"publichook"}, "service_uri": {"http://93.184.216.34/hook"}, "actions": {"push"}}, true)
	wantCode(t, r, http.StatusSeeOther)
}

// The ARM API refuses the same targets as the form, with the same reason.
func TestAPIRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	b := setupWith(t)
	put := func(uri string) (int, string) {
		body := `{"location":"local","properties":{"serviceUri":"` + uri + `","actions":["push"]}}`
		req, _ := http.NewRequest(http.MethodPut, b.url+"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry/webhooks/apihook1?api-version=2025-11-01", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	code, body := put("http://127.0.0.1:9/hook")
	if code != http.StatusBadRequest || !strings.Contains(body, "loopback address; start with --allow-private-targets") || !strings.Contains(body, `"code":"InvalidRequestContent"`) {
		t.Fatalf("loopback target: %d %s", code, body)
	}
	if n := b.countWebhooks(b.reg); n != 0 {
		t.Fatalf("%d webhooks saved", n)
	}
	if code, body := put("http://93.184.216.34/hook"); code != http.StatusOK {
		t.Fatalf("public target: %d %s", code, body)
	}
}

func (b testBundle) webhookByName(name string) *models.Webhook {
	b.t.Helper()
	w, err := b.store.GetWebhook(b.ctx, b.reg, name)
	if err != nil {
		b.t.Fatal(err)
	}
	return w
}

func itoa(n uint) string { return strconv.FormatUint(uint64(n), 10) }

// Sign-out ends the session on the server: the old cookie no longer works.
func TestSignOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.admin()
	u, _ := url.Parse(b.url)
	old := c.http.Jar.Cookies(u)
	wantCode(t, c.get("/registries/myregistry/webhooks"), http.StatusOK)
	r := c.post("/logout", url.Values{}, true)
	wantCode(t, r, http.StatusSeeOther)
	if loc := r.header.Get("Location"); loc != "/login" {
		t.Fatalf("after sign-out: Location %q", loc)
	}
	wantCode(t, c.get("/registries/myregistry/webhooks"), http.StatusSeeOther)
	// Replaying the cookie from before the sign-out is refused too.
	replay := b.client()
	replay.http.Jar.SetCookies(u, old)
	r = replay.get("/registries/myregistry/webhooks")
	wantCode(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.header.Get("Location"), "/login") {
		t.Fatalf("replayed cookie: Location %q", r.header.Get("Location"))
	}
}

// Redeliver queues a finished delivery's event again (same event id, new
// delivery), is offered only on finished deliveries and only to
// Contributors, and is audited.
func TestWebhookRedeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w := b.webhook("redeliv1")
	c := b.admin()
	r := c.do("POST", "/registries/myregistry/webhooks/redeliv1/ping", url.Values{}, map[string]string{"X-CSRF-Token": c.csrf()})
	wantCode(t, r, http.StatusSeeOther)
	rows, _, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("deliveries %v, %v", rows, err)
	}
	first := rows[0]
	detail := "/registries/myregistry/webhooks/redeliv1/events/" + itoa(first.ID)
	htmx := map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf()}
	// Still pending (the dispatcher is not started here): no Redeliver.
	if r := c.do("GET", detail, nil, htmx); strings.Contains(r.body, "Redeliver") {
		t.Fatal("Redeliver offered on an open delivery")
	}
	if err := b.store.RecordAttempts(b.ctx, []models.AttemptResult{{Attempt: models.Attempt{DeliveryID: first.ID, WebhookID: w.ID,
		EventID: first.EventID, Number: 1, StatusCode: 500, ReasonPhrase: "Internal Server Error"}, State: models.DeliveryFailed,
		AvailableAt: b.store.Now(), UpdatedAt: b.store.Now()}}); err != nil {
		t.Fatal(err)
	}
	r = c.do("GET", detail, nil, htmx)
	wantBody(t, r, detail+"/redeliver")
	reader := b.as(models.RoleReader)
	if r := reader.do("GET", detail, nil, map[string]string{"HX-Request": "true"}); strings.Contains(r.body, "Redeliver") {
		t.Fatal("Redeliver offered to a Reader")
	}
	wantCode(t, reader.do("POST", detail+"/redeliver", url.Values{}, map[string]string{"HX-Request": "true", "X-CSRF-Token": reader.csrf()}), http.StatusForbidden)
	r = c.do("POST", detail+"/redeliver", url.Values{}, htmx)
	wantCode(t, r, http.StatusOK)
	rows, total, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10)
	if err != nil || total != 2 || rows[0].EventID != first.EventID || rows[0].ID == first.ID || rows[0].State != models.DeliveryPending {
		t.Fatalf("after redeliver: %+v (%d), %v", rows, total, err)
	}
	wantBody(t, r, "Pending")
	// Again while that redelivery is pending: refused, with the reason.
	r = c.do("POST", detail+"/redeliver", url.Values{}, htmx)
	wantCode(t, r, http.StatusConflict)
	wantBody(t, r, "still being delivered")
	if _, total, _ := b.store.ListDeliveries(b.ctx, w.ID, 0, 10); total != 2 {
		t.Fatalf("a refused redeliver queued one: %d deliveries", total)
	}
	entries, _, _ := b.store.ListAudit(b.ctx, 0, 5)
	if len(entries) == 0 || entries[0].Action != "webhook.redeliver" {
		t.Fatalf("audit %+v", entries)
	}
	wantCode(t, c.do("POST", "/registries/myregistry/webhooks/redeliv1/events/999999/redeliver", url.Values{}, htmx), http.StatusNotFound)
}
