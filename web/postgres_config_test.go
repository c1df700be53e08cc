package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registryhooks/registryhooks/web"
)

// On PostgreSQL every instance must open the others' secrets: start
// refuses without REGISTRYHOOKS_SECRET_KEY or an existing --key-file, and
// never generates a key of its own.
func TestPostgresRequiresSharedKey(t *testing.T) {
	t.Parallel()
	none := func(string) string { return "" }
	const db = "postgres://postgres@127.0.0.1:5432/registryhooks?sslmode=disable"
	if _, err := web.Load([]string{"--db", db}, none, io.Discard); err == nil || !strings.Contains(err.Error(), "REGISTRYHOOKS_SECRET_KEY") {
		t.Fatalf("Load without a key = %v, want a message naming REGISTRYHOOKS_SECRET_KEY", err)
	}
	missing := filepath.Join(t.TempDir(), "shared.key")
	cfg, err := web.Load([]string{"--db", db, "--key-file", missing}, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = web.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("New with a missing key file = %v, want a message naming %s", err, missing)
	}
	// With the key in the environment the settings are complete.
	if _, err := web.Load([]string{"--db", db}, func(k string) string {
		if k == "REGISTRYHOOKS_SECRET_KEY" {
			return strings.Repeat("ab", 32)
		}
		return ""
	}, io.Discard); err != nil {
		t.Fatalf("Load with REGISTRYHOOKS_SECRET_KEY: %v", err)
	}
}

// /readyz answers 200 when the database answers with every migration
// applied; /healthz is liveness and answers 200 regardless.
func TestReadyz(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/readyz", "/healthz"} {
		resp, err := http.Get(b.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s = %d", path, resp.StatusCode)
		}
	}
	// With the database closed, /readyz says so and /healthz does not.
	_ = b.store.Close()
	for path, want := range map[string]int{"/readyz": http.StatusServiceUnavailable, "/healthz": http.StatusOK} {
		resp, err := http.Get(b.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("database closed: %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}
