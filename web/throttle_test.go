package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// The sign-in lockout lives in the database: a server started again on the
// same file still refuses the locked pair (429, even with the right
// password), and still lets another address in.
func TestSignInLockoutSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, _ := setupLoggedIn(t, dir, nil, "--trusted-proxies", "127.0.0.1/32")
	for i := range 5 {
		if r := b.loginFrom("198.51.100.1", "admin", "wrong"); r.code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, r.code)
		}
	}
	wantCode(t, b.loginFrom("198.51.100.1", "admin", adminPassword), http.StatusTooManyRequests)
	if err := b.store.Close(); err != nil { // the file lock goes with it
		t.Fatal(err)
	}

	b, _ = setupLoggedIn(t, dir, nil, "--trusted-proxies", "127.0.0.1/32")
	r := b.loginFrom("198.51.100.1", "admin", adminPassword)
	wantCode(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After after the restart")
	}
	wantCode(t, b.loginFrom("198.51.100.2", "admin", adminPassword), http.StatusSeeOther)
}

// A throttle that cannot read its buckets (the database is gone) fails the
// sign-in: no password is checked that it could not count.
func TestSignInFailsClosedWithoutTheThrottle(t *testing.T) {
	t.Parallel()
	b, logs := setupLogged(t, nil)
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	r := b.loginFrom("198.51.100.1", "admin", adminPassword)
	if r.code < 500 {
		t.Fatalf("sign-in with the database closed: %d, want a 5xx", r.code)
	}
	if !strings.Contains(logs.String(), "throttle:") {
		t.Fatalf("the throttle's error was not logged:\n%s", lastLines(logs.String(), 5))
	}
}
