package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/registryhooks/registryhooks/models"
)

// A second serve on a SQLite file another process serves exits 1 with a
// message that says why, before touching the database.
func TestSecondServeOnSameSQLiteFileExits1(t *testing.T) {
	db := filepath.Join(t.TempDir(), "rh.db")
	first, err := models.Open(db, models.Options{}) // holds <db>.lock as a serving process does
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	var stderr bytes.Buffer
	code := run([]string{"serve", "--db", db, "--addr", "127.0.0.1:0"}, io.Discard, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "held by another registryhooks process") {
		t.Fatalf("stderr does not say why:\n%s", stderr.String())
	}
}

func TestMigrateCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	var stderr bytes.Buffer
	if code := run([]string{"migrate", "--db", db}, io.Discard, &stderr); code != 0 {
		t.Fatalf("migrate exit %d:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "migration applied") {
		t.Fatalf("migrate output:\n%s", stderr.String())
	}
	s, err := models.Open(db, models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code := run([]string{"migrate", "--db", db}, io.Discard, &stderr); code != 1 {
		t.Fatalf("migrate on a file in use: exit %d, want 1", code)
	}
}
