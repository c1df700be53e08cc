package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/registryhooks/registryhooks/web"
)

// Tests of issue 12 (hardening): each fails on the code before it.

// After sign-in, next may only name a path on this site; every spelling a
// browser would follow elsewhere sends the user to "/".
func TestSignInNextRefusesOffSiteForms(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct{ next, want string }{
		{"/registries/myregistry/webhooks?page=2", "/registries/myregistry/webhooks?page=2"},
		{"/\t/evil.example/", "/"}, // the issue's /%09/ once the query is decoded
		{"/%09/evil.example/", "/"},
		{"/\n/evil.example/", "/"},
		{"/\r\n/evil.example", "/"},
		{"//evil.example/", "/"},
		{`/\evil.example`, "/"},
		{`/\/evil.example`, "/"},
		{"/%2F/evil.example", "/"},
		{"/%2f%2fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5c%5cevil.example", "/"},
		{"https://evil.example/", "/"},
		{"https:evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/%00x", "/"},
		{"/\u2028/evil.example", "/"},
	}
	// Signed in, /login?next= redirects at once: every form, without a
	// password check each.
	c := b.admin()
	for _, tt := range tests {
		r := c.get("/login?next=" + url.QueryEscape(tt.next))
		wantCode(t, r, http.StatusSeeOther)
		if got := r.header.Get("Location"); got != tt.want {
			t.Errorf("next %q: Location %q, want %q", tt.next, got, tt.want)
		}
		// The sign-in page carries next into its form only when it is safe.
		r = b.client().get("/login?next=" + url.QueryEscape(tt.next))
		if tt.want == "/" && strings.Contains(r.body, `value="`+html.EscapeString(tt.next)+`"`) {
			t.Errorf("next %q kept in the sign-in form", tt.next)
		}
	}
	// And the form through the sign-in itself.
	r := b.client().post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {"/\t/evil.example/"}}, true)
	wantCode(t, r, http.StatusSeeOther)
	if got := r.header.Get("Location"); got != "/" {
		t.Fatalf("sign-in with next=/%%09/evil.example/: Location %q", got)
	}
}

// specialTargets is one address in every special-purpose range the guard
// refuses, with whether --allow-private-targets would allow it.
var specialTargets = []struct {
	ip        string
	allowable bool
}{
	{"0.1.2.3", false}, {"0.0.0.0", true}, {"10.9.8.7", true}, {"100.64.0.1", true}, {"100.100.100.200", false},
	{"127.0.0.2", true}, {"169.254.169.254", false}, {"172.31.0.1", true}, {"192.0.0.1", false},
	{"192.0.2.1", false}, {"192.88.99.1", false}, {"192.168.0.1", true}, {"198.18.0.1", false},
	{"198.51.100.1", false}, {"203.0.113.1", false}, {"224.0.0.251", false}, {"240.0.0.1", false},
	{"255.255.255.255", false},
	{"::", true}, {"::1", true}, {"::ffff:240.0.0.1", false}, {"64:ff9b:1::1", false}, {"64:ff9b::a9fe:a9fe", false},
	{"2002:a9fe:a9fe::1", false}, {"100::1", false}, {"2001::1", false}, {"2001:db8::1", false}, {"3fff::1", false},
	{"5f00::1", false}, {"fc00::1", true}, {"fd00:ec2::254", false}, {"fe80::1", false}, {"fec0::1", false},
	{"ff02::1", false},
}

func targetURI(ip string) string {
	if strings.Contains(ip, ":") {
		return "http://[" + ip + "]/hook"
	}
	return "http://" + ip + "/hook"
}

// The form and the API refuse a webhook aimed at any special-purpose range,
// with the guard's reason, and save nothing.
func TestSpecialRangesRefusedByFormAndAPI(t *testing.T) {
	t.Parallel()
	b := setupWith(t)
	c := b.admin()
	for _, tt := range specialTargets {
		uri := targetURI(tt.ip)
		r := c.post("/registries/myregistry/webhooks", url.Values{"name": {"specialhook"}, "service_uri": {uri}, "actions": {"push"}}, true)
		if r.code != http.StatusUnprocessableEntity || !strings.Contains(r.body, "refused: ") {
			t.Errorf("form, %s: %d, want 422 with the guard's reason", uri, r.code)
		}
		if hint := strings.Contains(r.body, "start with --allow-private-targets"); hint != tt.allowable {
			t.Errorf("form, %s: --allow-private-targets hint %v, want %v", uri, hint, tt.allowable)
		}
		code, body := b.armPutWebhook("apihook1", uri)
		if code != http.StatusBadRequest || !strings.Contains(body, "refused: ") || !strings.Contains(body, `"code":"InvalidRequestContent"`) {
			t.Errorf("API, %s: %d %s", uri, code, body)
		}
	}
	if n := b.countWebhooks(b.reg); n != 0 {
		t.Fatalf("%d webhooks saved, want none", n)
	}
}

// armPutWebhook creates or replaces a webhook through the ARM API with the
// bootstrap token.
func (b testBundle) armPutWebhook(name, uri string) (int, string) {
	b.t.Helper()
	body := `{"location":"local","properties":{"serviceUri":"` + uri + `","actions":["push"]}}`
	return b.armDo(http.MethodPut, "/webhooks/"+name, body, apiToken, nil)
}

// armDo sends a request under myregistry's ARM path and returns status and body.
func (b testBundle) armDo(method, sub, body, token string, header map[string]string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.url+"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry"+sub+"?api-version=2025-11-01", strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

// setupLogged is setupWith plus the server's log, and extra environment.
func setupLogged(t *testing.T, extraEnv map[string]string, flags ...string) (testBundle, *syncBuffer) {
	t.Helper()
	return setupLoggedIn(t, t.TempDir(), extraEnv, flags...)
}

// setupLoggedIn is setupLogged with the database in dir.
func setupLoggedIn(t *testing.T, dir string, extraEnv map[string]string, flags ...string) (testBundle, *syncBuffer) {
	t.Helper()
	env := map[string]string{"REGISTRYHOOKS_ADMIN_PASSWORD": adminPassword, "REGISTRYHOOKS_API_TOKEN": apiToken}
	for k, v := range extraEnv {
		env[k] = v
	}
	cfg, err := web.Load(append([]string{"--db", filepath.Join(dir, "portal.db")}, flags...),
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := web.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		_ = srv.Store().Close()
	})
	reg, err := srv.Store().GetRegistry(context.Background(), "myregistry")
	if err != nil {
		t.Fatal(err)
	}
	return testBundle{t: t, url: ts.URL, store: srv.Store(), ctx: context.Background(), reg: reg}, logs
}

// loginFrom signs in with a fresh client whose requests say (to a server
// that trusts loopback as a proxy) that they come from addr.
func (b testBundle) loginFrom(addr, user, password string) resp {
	b.t.Helper()
	c := b.client()
	r := c.get("/login")
	m := csrfInput.FindStringSubmatch(r.body)
	if m == nil {
		b.t.Fatalf("no _csrf on the sign-in page (%d)", r.code)
	}
	form := url.Values{"username": {user}, "password": {password}, "_csrf": {html.UnescapeString(m[1])}}
	return c.do(http.MethodPost, "/login", form, map[string]string{"X-Forwarded-For": addr})
}

// Wrong bearer tokens are throttled per client address, on the API and on
// ingest alike: after a burst, 429 with Retry-After, even for a right token
// from that address; other addresses are not affected.
func TestBearerTokenFailuresThrottled(t *testing.T) {
	t.Parallel()
	b, _ := setupLogged(t, map[string]string{"REGISTRYHOOKS_INGEST_TOKEN": "ingest-token-0123456789abcdef"}, "--trusted-proxies", "127.0.0.1/32")
	hdr := func(addr string) map[string]string { return map[string]string{"X-Forwarded-For": addr} }
	var got401, got429 int
	for i := range 40 {
		code, body := b.armDo(http.MethodGet, "/webhooks", "", fmt.Sprintf("wrong-token-%04d-xxxxxxxx", i), hdr("198.51.100.7"))
		switch code {
		case http.StatusUnauthorized:
			got401++
		case http.StatusTooManyRequests:
			got429++
			if !strings.Contains(body, `"code":"TooManyRequests"`) {
				t.Fatalf("429 body %s", body)
			}
		default:
			t.Fatalf("wrong token %d: %d %s", i, code, body)
		}
	}
	if got401 == 0 || got401 > 25 || got429 < 15 {
		t.Fatalf("40 wrong tokens: %d got 401, %d got 429; want at most 25 guesses checked", got401, got429)
	}
	// Retry-After is given, and a right token from that address waits too.
	req, _ := http.NewRequest(http.MethodGet, b.url+"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry/webhooks?api-version=2025-11-01", nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right token from a throttled address: %d, want 429", res.StatusCode)
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	// Ingest shares the count: the same address is throttled there.
	ingest := func(addr, token string) int {
		req, _ := http.NewRequest(http.MethodPost, b.url+"/ingest/events/myregistry", strings.NewReader(`{"action":"push","target":{"repository":"team/app","tag":"v1"}}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", addr)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := ingest("198.51.100.7", "ingest-token-0123456789abcdef"); code != http.StatusTooManyRequests {
		t.Fatalf("ingest from the throttled address: %d", code)
	}
	// Another address: its own budget, on ingest as well.
	if code, body := b.armDo(http.MethodGet, "/webhooks", "", apiToken, hdr("198.51.100.8")); code != http.StatusOK {
		t.Fatalf("right token from another address: %d %s", code, body)
	}
	got401, got429 = 0, 0
	for i := range 40 {
		switch ingest("198.51.100.9", fmt.Sprintf("wrong-ingest-%04d-xxxxxxx", i)) {
		case http.StatusUnauthorized:
			got401++
		case http.StatusTooManyRequests:
			got429++
		}
	}
	if got401 == 0 || got401 > 25 || got429 < 15 {
		t.Fatalf("ingest, 40 wrong tokens: %d got 401, %d got 429", got401, got429)
	}
	if code := ingest("198.51.100.10", "ingest-token-0123456789abcdef"); code != http.StatusAccepted {
		t.Fatalf("ingest with the right token from a fresh address: %d", code)
	}
}

// A token from the environment shorter than 16 characters stops the start,
// with a message naming the variable.
func TestShortEnvironmentTokensRefused(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"REGISTRYHOOKS_API_TOKEN", "REGISTRYHOOKS_INGEST_TOKEN", "REGISTRYHOOKS_METRICS_TOKEN"} {
		env := map[string]string{name: "short-token-15ch"[:15]}
		_, err := web.Load([]string{"--db", filepath.Join(t.TempDir(), "x.db")}, func(k string) string { return env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "at least 16") {
			t.Errorf("%s of 15 characters: %v", name, err)
		}
		env[name] = "long-enough-token-16"[:16]
		if _, err := web.Load([]string{"--db", filepath.Join(t.TempDir(), "x.db")}, func(k string) string { return env[k] }, io.Discard); err != nil {
			t.Errorf("%s of 16 characters: %v", name, err)
		}
	}
}

// Forwarded headers are believed only from --trusted-proxies: the client
// address (logs, throttles) and the scheme of built links. --public-url
// wins over the request's Host.
func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	nextLinkOf := func(b testBundle, header map[string]string) string {
		for i := range 21 { // one more than a page
			in := `{"location":"local","properties":{"serviceUri":"http://127.0.0.1:9/h","actions":["push"]}}`
			if code, body := b.armDo(http.MethodPut, fmt.Sprintf("/webhooks/hook%02d", i), in, apiToken, nil); code != http.StatusOK {
				t.Fatalf("create: %d %s", code, body)
			}
		}
		code, body := b.armDo(http.MethodGet, "/webhooks", "", apiToken, header)
		if code != http.StatusOK {
			t.Fatalf("list: %d %s", code, body)
		}
		var out struct {
			NextLink string `json:"nextLink"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil || out.NextLink == "" {
			t.Fatalf("no nextLink: %v %s", err, body)
		}
		return out.NextLink
	}
	forged := map[string]string{"X-Forwarded-For": "198.51.100.23", "X-Forwarded-Proto": "https", "X-Real-Ip": "198.51.100.24"}

	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		b, logs := setupLogged(t, nil, "--allow-private-targets")
		link := nextLinkOf(b, forged)
		if !strings.HasPrefix(link, b.url+"/subscriptions/") {
			t.Fatalf("nextLink %q: want it built on %s (X-Forwarded-Proto ignored)", link, b.url)
		}
		if strings.Contains(logs.String(), "198.51.100.2") || !strings.Contains(logs.String(), "remote_addr=127.0.0.1") {
			t.Fatalf("log took the forged address:\n%s", lastLines(logs.String(), 3))
		}
		// Failures from "many addresses" are all one peer: locked after 5.
		for i := range 5 {
			if r := b.loginFrom(fmt.Sprintf("198.51.100.%d", 100+i), "admin", "wrong"); r.code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i, r.code)
			}
		}
		if r := b.loginFrom("198.51.100.200", "admin", adminPassword); r.code != http.StatusTooManyRequests {
			t.Fatalf("forged fresh address after 5 failures: %d, want 429", r.code)
		}
	})

	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		b, logs := setupLogged(t, nil, "--allow-private-targets", "--trusted-proxies", "10.0.0.0/8, 127.0.0.1/32")
		link := nextLinkOf(b, forged)
		want := "https://" + strings.TrimPrefix(b.url, "http://") + "/subscriptions/"
		if !strings.HasPrefix(link, want) {
			t.Fatalf("nextLink %q: want it to start with %s", link, want)
		}
		if !strings.Contains(logs.String(), "remote_addr=198.51.100.23") {
			t.Fatalf("log does not name the forwarded client:\n%s", lastLines(logs.String(), 3))
		}
		// A spoofed hop before the real client is not believed: the
		// nearest untrusted address counts.
		code, _ := b.armDo(http.MethodGet, "/webhooks", "", apiToken, map[string]string{"X-Forwarded-For": "203.0.113.66, 198.51.100.44"})
		if code != http.StatusOK || !strings.Contains(logs.String(), "remote_addr=198.51.100.44") {
			t.Fatalf("nearest untrusted hop not logged (%d):\n%s", code, lastLines(logs.String(), 2))
		}
		for i := range 5 {
			if r := b.loginFrom("198.51.100.100", "admin", "wrong"); r.code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i, r.code)
			}
		}
		if r := b.loginFrom("198.51.100.100", "admin", adminPassword); r.code != http.StatusTooManyRequests {
			t.Fatalf("the failing client: %d, want 429", r.code)
		}
		if r := b.loginFrom("198.51.100.101", "admin", adminPassword); r.code != http.StatusSeeOther {
			t.Fatalf("another client behind the proxy: %d, want 303", r.code)
		}
	})

	t.Run("public URL", func(t *testing.T) {
		t.Parallel()
		b, _ := setupLogged(t, nil, "--allow-private-targets", "--public-url", "https://hooks.example.com/")
		link := nextLinkOf(b, map[string]string{"Host": "evil.example", "X-Forwarded-Proto": "http"})
		if !strings.HasPrefix(link, "https://hooks.example.com/subscriptions/") {
			t.Fatalf("nextLink %q, want it on the public URL", link)
		}
		c := b.admin()
		req, _ := http.NewRequest(http.MethodGet, b.url+"/registries", nil)
		req.Host = "evil.example"
		base, _ := url.Parse(b.url)
		for _, ck := range c.http.Jar.Cookies(base) { // the jar looks cookies up by req.Host
			req.AddCookie(ck)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "https://hooks.example.com/ingest/distribution/myregistry") {
			t.Fatalf("registries page (%d %s) lacks the public ingest URL", res.StatusCode, res.Header.Get("Location"))
		}
		if strings.Contains(string(page), "evil.example") {
			t.Fatal("a page built a link on the request's Host")
		}
	})

	t.Run("bad values", func(t *testing.T) {
		t.Parallel()
		for _, flags := range [][]string{{"--trusted-proxies", "10.0.0.0/33"}, {"--trusted-proxies", "proxy.example"}, {"--public-url", "hooks.example.com"}, {"--public-url", "ftp://x/"}} {
			_, err := web.Load(append([]string{"--db", "x.db"}, flags...), func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), flags[0]) {
				t.Errorf("%v: %v", flags, err)
			}
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Sign-in lockout: the pair (name, address) locks after 5 failures; another
// address with the right password still gets in (the issue's "anyone can
// keep admin locked out").
func TestSignInLockoutByNameAndAddress(t *testing.T) {
	t.Parallel()
	b, _ := setupLogged(t, nil, "--trusted-proxies", "127.0.0.1/32")
	for i := range 5 {
		if r := b.loginFrom("198.51.100.1", "admin", "wrong"); r.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.code)
		}
	}
	r := b.loginFrom("198.51.100.1", "admin", adminPassword)
	wantCode(t, r, http.StatusTooManyRequests)
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	wantCode(t, b.loginFrom("198.51.100.2", "admin", adminPassword), http.StatusSeeOther)
	// The name alone (failures from many addresses) is tested on the
	// throttle itself, with a fake clock: TestSignInThrottleRules.
}

// armRegistryDo sends a request to a registry's ARM path.
func (b testBundle) armRegistryDo(method, registry, body string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.url+"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/"+registry+"?api-version=2025-11-01", strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

func tagsJSON(n int) string {
	tags := map[string]string{}
	for i := range n {
		tags[fmt.Sprintf("k%02d", i)] = "v"
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

// The small ones: a chunked API body over 1 MiB is 413; registry tags are
// capped at 50; an ingested mediaType is bounded, without control
// characters, in a UTF-8 body; pages and answers with secrets are not
// cached; the database files are private.
func TestSmallHardening(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("chunked body over 1 MiB", func(t *testing.T) {
		// Sent as curl does, in small chunks, over a raw connection.
		big := `{"location":"local","properties":{"serviceUri":"http://127.0.0.1:9/","actions":["push"]},"tags":{"x":"` + strings.Repeat("a", 3<<19) + `"}}`
		for _, path := range []string{"", "/webhooks/chunky"} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			w := bufio.NewWriter(conn)
			fmt.Fprintf(w, "PUT /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry%s?api-version=2025-11-01 HTTP/1.1\r\n"+
				"Host: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", path, apiToken)
			go func() {
				for i := 0; i < len(big); i += 16 << 10 {
					chunk := big[i:min(i+16<<10, len(big))]
					fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk)
					if w.Flush() != nil {
						return
					}
				}
				fmt.Fprint(w, "0\r\n\r\n")
				_ = w.Flush()
			}()
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(res.Body)
			conn.Close()
			if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), `"code":"RequestEntityTooLarge"`) {
				t.Errorf("PUT %s, chunked 1.5 MiB body: %d %s", path, res.StatusCode, out)
			}
		}
	})

	t.Run("registry tags capped", func(t *testing.T) {
		code, body := b.armRegistryDo(http.MethodPut, "tagsregistry", `{"location":"local","sku":{"name":"Basic"},"tags":`+tagsJSON(51)+`}`)
		if code != http.StatusBadRequest || !strings.Contains(body, "at most 50 tags") {
			t.Fatalf("PUT with 51 tags: %d %s", code, body)
		}
		if code, body := b.armRegistryDo(http.MethodPut, "tagsregistry", `{"location":"local","sku":{"name":"Basic"},"tags":`+tagsJSON(50)+`}`); code != http.StatusOK {
			t.Fatalf("PUT with 50 tags: %d %s", code, body)
		}
		if code, body := b.armRegistryDo(http.MethodPatch, "tagsregistry", `{"tags":`+tagsJSON(51)+`}`); code != http.StatusBadRequest || !strings.Contains(body, "at most 50 tags") {
			t.Fatalf("PATCH with 51 tags: %d %s", code, body)
		}
	})

	t.Run("ingested mediaType", func(t *testing.T) {
		token, err := b.store.IngestToken(b.reg)
		if err != nil {
			t.Fatal(err)
		}
		post := func(path string, body []byte) (int, string) {
			req, _ := http.NewRequest(http.MethodPost, b.url+path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			out, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(out)
		}
		event := func(mt string) []byte {
			return []byte(`{"action":"push","target":{"repository":"team/app","tag":"v1","mediaType":"` + mt + `"}}`)
		}
		envelope := func(mt string) []byte {
			return []byte(`{"events":[{"id":"e1","action":"push","target":{"repository":"team/app","tag":"v1","digest":"sha256:abc","mediaType":"` + mt + `","url":"http://r/v2/team/app/manifests/sha256:abc"}}]}`)
		}
		bad := map[string]string{
			"500,000 characters": strings.Repeat("a", 500000),
			"256 characters":     strings.Repeat("a", 256),
			"NUL":                `application/vnd.oci.image.manifest.v1+json\u0000`,
			"newline":            `application/json\nX-Injected: 1`,
			"invalid UTF-8":      "application/\xff\xfejson",
		}
		for name, mt := range bad {
			for _, tc := range []struct {
				path string
				body []byte
			}{{"/ingest/events/myregistry", event(mt)}, {"/ingest/distribution/myregistry", envelope(mt)}} {
				code, out := post(tc.path, tc.body)
				if code != http.StatusBadRequest || !(strings.Contains(out, "mediaType") || strings.Contains(out, "UTF-8")) {
					t.Errorf("%s, mediaType %s: %d %.200s", tc.path, name, code, out)
				}
			}
		}
		if code, out := post("/ingest/events/myregistry", event("application/vnd.oci.image.manifest.v1+json")); code != http.StatusAccepted {
			t.Fatalf("a normal mediaType: %d %s", code, out)
		}
	})

	t.Run("no-store on pages with secrets", func(t *testing.T) {
		b.webhook("nostorehook")
		c := b.admin()
		for _, path := range []string{"/registries", "/registries/myregistry/webhooks/nostorehook/edit",
			"/registries/myregistry/webhooks/nostorehook/callback", "/tokens"} {
			r := c.get(path)
			if r.code != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: %d, Cache-Control %q", path, r.code, r.header.Get("Cache-Control"))
			}
		}
		r := c.post("/tokens", url.Values{"name": {"ci"}, "role": {"Reader"}}, true)
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("POST /tokens (%d): Cache-Control %q", r.code, r.header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest(http.MethodPost, b.url+"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry/webhooks/nostorehook/getCallbackConfig?api-version=2025-11-01", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("getCallbackConfig: %d, Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
		}
	})
}

// The server's database, its WAL and SHM and the key file are the owner's
// alone.
func TestServerFilesPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, _ := setupLoggedIn(t, dir, nil)
	b.admin() // a write, so the WAL exists
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), st.Mode().Perm())
		}
		n++
	}
	if n < 4 {
		t.Fatalf("%d files, want the database, -wal, -shm and the key", n)
	}
}

// A state-changing request a browser marks as cross-site (Sec-Fetch-Site,
// or an Origin that is not this server) is refused before the CSRF token
// is looked at, even with a valid session and token; the sign-in form too.
func TestCrossOriginRequestsRefused(t *testing.T) {
	t.Parallel()
	b, _ := setupLogged(t, nil, "--allow-private-targets", "--public-url", "https://hooks.example.com")
	c := b.admin()
	create := func(name string, header map[string]string) resp {
		form := url.Values{"name": {name}, "service_uri": {"http://127.0.0.1:9/h"}, "actions": {"push"}, "_csrf": {c.csrf()}}
		return c.do(http.MethodPost, "/registries/myregistry/webhooks", form, header)
	}
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "http://evil.example"},
		{"Origin": "null"},
	} {
		r := create("crosshook", h)
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "Cross-site request refused") {
			t.Errorf("%v: %d, want 403 Cross-site request refused", h, r.code)
		}
	}
	if n := b.countWebhooks(b.reg); n != 0 {
		t.Fatalf("%d webhooks created by cross-site requests", n)
	}
	for i, h := range []map[string]string{
		{"Sec-Fetch-Site": "same-origin"},
		{"Origin": b.url},
		{"Origin": "https://hooks.example.com"}, // the public URL, behind a proxy
		{},                                      // no browser headers: the token decides
	} {
		if r := create(fmt.Sprintf("samehook%d", i), h); r.code != http.StatusSeeOther {
			t.Errorf("%v: %d, want 303", h, r.code)
		}
	}
	// Sign-in from another site.
	nc := b.client()
	m := csrfInput.FindStringSubmatch(nc.get("/login").body)
	r := nc.do(http.MethodPost, "/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "_csrf": {html.UnescapeString(m[1])}},
		map[string]string{"Sec-Fetch-Site": "cross-site"})
	if r.code != http.StatusForbidden || nc.signedIn() {
		t.Fatalf("cross-site sign-in: %d, signed in %v", r.code, nc.signedIn())
	}
}

// Request ids come from echo's RequestID: a sane one from a proxy is kept,
// a long or odd one replaced; the access log (echo's request logger) names
// it with the status sent.
func TestRequestIDsAndAccessLog(t *testing.T) {
	t.Parallel()
	b, logs := setupLogged(t, nil)
	c := b.client()
	for _, tt := range []struct {
		sent string
		kept bool
	}{
		{"proxy-id-0001", true},
		{strings.Repeat("x", 65), false},
		{"id with spaces", false},
		{`id"quote`, false},
		{"", false},
	} {
		r := c.do(http.MethodGet, "/login", nil, map[string]string{"X-Request-Id": tt.sent})
		got := r.header.Get("X-Request-Id")
		if got == "" || len(got) > 64 || (got == tt.sent) != tt.kept {
			t.Errorf("sent %q: X-Request-Id %q (kept %v, want %v)", tt.sent, got, got == tt.sent, tt.kept)
		}
		if !strings.Contains(logs.String(), "request_id="+got+" method=GET path=/login status_code=200") {
			t.Errorf("no access log line for request %q:\n%s", got, lastLines(logs.String(), 2))
		}
	}
	// An error is logged with the status sent.
	r := c.get("/no-such-page")
	if !strings.Contains(logs.String(), "request_id="+r.header.Get("X-Request-Id")+" method=GET path=/no-such-page status_code=404") {
		t.Errorf("404 not logged with its status:\n%s", lastLines(logs.String(), 2))
	}
}
