package web_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
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
	for _, tt := range tests {
		c := b.client()
		r := c.post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {tt.next}}, true)
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
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}
