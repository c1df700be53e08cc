package e2e

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// portal is a signed-in browser without JavaScript: it keeps its cookies
// itself (a cookie jar would share them between instances on 127.0.0.1,
// ports apart, and the tests decide when to do that) and follows no
// redirects.
type portal struct {
	t       testing.TB
	cookies map[string]string
}

var noRedirect = &http.Client{Transport: client.Transport, Timeout: client.Timeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signIn signs in on s as admin through the sign-in form.
func signIn(t testing.TB, s *server) *portal {
	t.Helper()
	p := &portal{t: t, cookies: map[string]string{}}
	code, body, _ := p.get(s, "/login")
	m := csrfField.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		t.Fatalf("GET /login: %d, no _csrf field", code)
	}
	code, _, loc := p.post(s, "/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "_csrf": {m[1]}, "next": {"/"}})
	if code != http.StatusSeeOther || p.cookies["rh_session"] == "" {
		t.Fatalf("sign in: %d (to %q), session cookie %t", code, loc, p.cookies["rh_session"] != "")
	}
	return p
}

func (p *portal) get(s *server, path string) (int, string, string) {
	return p.do(s, http.MethodGet, path, nil)
}

func (p *portal) post(s *server, path string, form url.Values) (int, string, string) {
	return p.do(s, http.MethodPost, path, form)
}

// do sends one request to s with the portal's cookies and returns the
// status, the body and the Location header.
func (p *portal) do(s *server, method, path string, form url.Values) (int, string, string) {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range p.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(p.cookies, c.Name)
		} else {
			p.cookies[c.Name] = c.Value
		}
	}
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

var ingestTokenCode = regexp.MustCompile(`(?s)Ingest token</dt>.*?<code[^>]*>([^<]+)</code>`)

// registriesPage reads the Registries page of s: the current registry's
// ingest token (shown to admins) and the page's CSRF token.
func (p *portal) registriesPage(s *server) (token, csrf string) {
	p.t.Helper()
	code, body, loc := p.get(s, "/registries")
	if code != http.StatusOK {
		p.t.Fatalf("GET /registries on %s: %d (to %q)", s.addr, code, loc)
	}
	tm, cm := ingestTokenCode.FindStringSubmatch(body), csrfField.FindStringSubmatch(body)
	if tm == nil || cm == nil {
		p.t.Fatalf("GET /registries on %s: no ingest token or _csrf field in the page", s.addr)
	}
	return strings.TrimSpace(tm[1]), cm[1]
}
