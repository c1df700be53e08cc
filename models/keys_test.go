package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openUnlocked opens the database at path and unlocks it with src, the way
// the server starts. The store is closed when the test ends.
func openUnlocked(t *testing.T, path string, src KeySource) (*Store, UnlockReport, error) {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rep, err := s.UnlockSecrets(context.Background(), src)
	if err != nil {
		_ = s.Close() // as the server does: the file's lock goes with it
	}
	return s, rep, err
}

// seedWebhook gives the database a registry (sealed ingest token) and a
// webhook with a sealed URI and headers.
func seedWebhook(t *testing.T, s *Store) *Webhook {
	t.Helper()
	ctx := context.Background()
	if err := s.EnsureDefaultRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := s.GetRegistry(ctx, DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	in := validInput("hook1")
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := s.CreateWebhook(ctx, reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestUnlockSecretsKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, keyFile := filepath.Join(dir, "r.db"), filepath.Join(dir, "r.db.key")
	s, rep, err := openUnlocked(t, db, KeySource{File: keyFile})
	if err != nil || !rep.CreatedKeyFile {
		t.Fatalf("first start: %+v, %v", rep, err)
	}
	want := seedWebhook(t, s)
	_ = s.Close()

	// The same key file opens everything.
	s, rep, err = openUnlocked(t, db, KeySource{File: keyFile})
	if err != nil || rep.CreatedKeyFile || rep.Sealed != 3 || len(rep.Unreadable) != 0 {
		t.Fatalf("restart: %+v, %v", rep, err)
	}
	w, err := s.GetWebhookByID(context.Background(), want.ID)
	if err != nil || w.ServiceURI != want.ServiceURI || w.Headers["Authorization"] != want.Headers["Authorization"] {
		t.Fatalf("webhook after restart = %+v, %v", w, err)
	}
	_ = s.Close()

	// A missing key file is refused, and none is created.
	missing := filepath.Join(dir, "elsewhere.key")
	_, _, err = openUnlocked(t, db, KeySource{File: missing})
	var ke *KeyError
	if !errors.Is(err, ErrKeyMissing) || !errors.As(err, &ke) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing key file: %v", err)
	}
	if _, statErr := os.Stat(missing); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("a key file was created: %v", statErr)
	}

	// A different key is refused, naming the file.
	other := filepath.Join(dir, "other.key")
	if err := os.WriteFile(other, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = openUnlocked(t, db, KeySource{File: other})
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), other) {
		t.Fatalf("wrong key file: %v", err)
	}

	// A key file that is not a key is refused.
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err = openUnlocked(t, db, KeySource{File: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("malformed key file: %v", err)
	}
}

func TestUnlockSecretsPassphrase(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "p.db")
	const pass = "correct horse battery staple"
	s, _, err := openUnlocked(t, db, KeySource{Setting: pass})
	if err != nil {
		t.Fatal(err)
	}
	seedWebhook(t, s)
	salt, err := s.setting(context.Background(), settingKDFSalt)
	if err != nil || salt == "" {
		t.Fatalf("salt = %q, %v", salt, err)
	}
	// The key is scrypt's, not one SHA-256 of the passphrase.
	sum := sha256.Sum256([]byte(pass))
	old, _ := NewCipher(sum[:])
	var uri string
	if err := s.wsql.QueryRow(`SELECT service_uri FROM webhooks`).Scan(&uri); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Open(uri); err == nil {
		t.Fatal("the URI opens with SHA-256 of the passphrase")
	}
	_ = s.Close()

	s, _, err = openUnlocked(t, db, KeySource{Setting: pass})
	if err != nil {
		t.Fatalf("same passphrase: %v", err)
	}
	_ = s.Close()
	_, _, err = openUnlocked(t, db, KeySource{Setting: "another passphrase"})
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "REGISTRYHOOKS_SECRET_KEY") {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

// A database sealed with the earlier derivation (SHA-256 of the passphrase,
// no key check, no salt) keeps working: its secrets are sealed again with
// the scrypt key at the first start.
func TestUnlockSecretsReseal(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "legacy.db")
	const pass = "an old passphrase"
	sum := sha256.Sum256([]byte(pass))
	legacy, _ := NewCipher(sum[:])
	s, err := Open(db, Options{Cipher: legacy})
	if err != nil {
		t.Fatal(err)
	}
	want := seedWebhook(t, s)
	_ = s.Close()

	s, rep, err := openUnlocked(t, db, KeySource{Setting: pass})
	if err != nil || rep.Resealed != 3 || len(rep.Unreadable) != 0 {
		t.Fatalf("first start with scrypt: %+v, %v", rep, err)
	}
	w, err := s.GetWebhookByID(context.Background(), want.ID)
	if err != nil || w.ServiceURI != want.ServiceURI || w.Headers["Authorization"] != want.Headers["Authorization"] {
		t.Fatalf("webhook = %+v, %v", w, err)
	}
	var uri string
	if err := s.wsql.QueryRow(`SELECT service_uri FROM webhooks`).Scan(&uri); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Open(uri); err == nil {
		t.Fatal("the URI is still sealed with the SHA-256 key")
	}
	_ = s.Close()
	s, rep, err = openUnlocked(t, db, KeySource{Setting: pass})
	if err != nil || rep.Resealed != 0 {
		t.Fatalf("second start: %+v, %v", rep, err)
	}
	_ = s.Close()
	// The legacy key given as hex no longer opens it: the check value says so.
	if _, _, err := openUnlocked(t, db, KeySource{Setting: hex.EncodeToString(sum[:])}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("legacy key as hex: %v", err)
	}
}

// One value sealed with another key does not stop the start: it is
// reported, its webhook is listed as Unreadable, and the others open.
func TestUnlockSecretsOneUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, keyFile := filepath.Join(dir, "u.db"), filepath.Join(dir, "u.db.key")
	s, _, err := openUnlocked(t, db, KeySource{File: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	good := seedWebhook(t, s)
	reg, _ := s.GetRegistry(context.Background(), DefaultRegistryName)
	in := validInput("hook2")
	in.Validate()
	bad, err := s.CreateWebhook(context.Background(), reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := NewCipher([]byte(strings.Repeat("k", 32)))
	if _, err := s.wsql.Exec(`UPDATE webhooks SET service_uri = ? WHERE id = ?`, foreign.Seal("http://elsewhere/"), bad.ID); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	s, rep, err := openUnlocked(t, db, KeySource{File: keyFile})
	if err != nil || len(rep.Unreadable) != 1 || !strings.Contains(rep.Unreadable[0], "hook2 service URI") {
		t.Fatalf("start: %+v, %v", rep, err)
	}
	ctx := context.Background()
	hooks, err := s.ListWebhooks(ctx, reg, 0, 0)
	if err != nil || len(hooks) != 2 {
		t.Fatalf("list = %d, %v", len(hooks), err)
	}
	for _, h := range hooks {
		if h.Unreadable != (h.ID == bad.ID) || (h.ID == good.ID && h.ServiceURI != good.ServiceURI) {
			t.Fatalf("listed %+v", h)
		}
	}
	w, err := s.GetWebhookByID(ctx, bad.ID)
	if !errors.Is(err, ErrSealed) || w == nil || !w.Unreadable || w.ServiceURI != "" {
		t.Fatalf("get unreadable = %+v, %v", w, err)
	}
	if err := s.DeleteWebhook(ctx, w); err != nil {
		t.Fatalf("delete unreadable: %v", err)
	}
}
