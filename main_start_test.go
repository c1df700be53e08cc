package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registryhooks/registryhooks/web"
)

// prepareDB starts a server on a new database once (creating its key file
// and sealing the default registry's ingest token), then closes it.
func prepareDB(t *testing.T) (db, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	db, keyFile = filepath.Join(dir, "r.db"), filepath.Join(dir, "r.db.key")
	cfg, err := web.Load([]string{"--db", db}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Store().Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyFile); err != nil {
		t.Fatalf("no key file after the first start: %v", err)
	}
	return db, keyFile
}

// Starting with a key that cannot open the database's secrets, or without
// the key file, exits 1 with a message naming the key file, and creates no
// new key.
func TestServeRefusesWrongKey(t *testing.T) {
	t.Parallel()
	db, _ := prepareDB(t)
	dir := filepath.Dir(db)
	wrong := filepath.Join(dir, "wrong.key")
	if err := os.WriteFile(wrong, []byte(strings.Repeat("0f", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.key")
	for _, tc := range []struct{ name, keyFile, want string }{
		{"different key", wrong, "cannot open the secrets"},
		{"missing key file", missing, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run([]string{"serve", "--db", db, "--key-file", tc.keyFile, "--addr", "127.0.0.1:0"}, io.Discard, &stderr)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.keyFile) || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr does not name %s (%q): %s", tc.keyFile, tc.want, stderr.String())
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("a key file was created at %s: %v", missing, err)
	}
}

// Invalid settings stop the program with exit status 2 and a message that
// names the setting. Not parallel: it sets the process environment.
func TestServeRefusesInvalidSettings(t *testing.T) {
	db := filepath.Join(t.TempDir(), "s.db")
	for _, tc := range []struct {
		name     string
		args     []string
		env, val string
		want     string
	}{
		{"env duration without unit", nil, "REGISTRYHOOKS_DELIVERY_TIMEOUT", "5", "REGISTRYHOOKS_DELIVERY_TIMEOUT"},
		{"workers flag", []string{"--workers", "abc"}, "", "", "-workers"},
		{"env bool", nil, "REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS", "sure", "REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(tc.env, tc.val)
			}
			var stderr bytes.Buffer
			code := run(append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0"}, tc.args...), io.Discard, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 naming %s", code, stderr.String(), tc.want)
			}
		})
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("a refused start created the database: %v", err)
	}
}
