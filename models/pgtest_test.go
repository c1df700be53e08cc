package models

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// testEngine is the engine the store tests run on: sqlite (the default) or
// postgres, from REGISTRYHOOKS_TEST_ENGINE; CI runs them on both.
func testEngine() string {
	if os.Getenv("REGISTRYHOOKS_TEST_ENGINE") == "postgres" {
		return enginePostgres
	}
	return engineSQLite
}

// testDB returns a new, empty database for one test on the test engine: a
// SQLite file in the test's temporary directory, or a fresh PostgreSQL
// database dropped when the test ends.
func testDB(t testing.TB) string {
	t.Helper()
	if testEngine() == enginePostgres {
		return newPostgresDB(t)
	}
	return filepath.Join(t.TempDir(), "test.db")
}

// postgresAdminURL is the server the tests make their databases on:
// REGISTRYHOOKS_TEST_POSTGRES, an admin URL.
func postgresAdminURL() string {
	if u := os.Getenv("REGISTRYHOOKS_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// newPostgresDB creates a fresh, empty database for one test and drops it
// when the test ends. It returns the database's URL.
func newPostgresDB(t testing.TB) string {
	t.Helper()
	admin := postgresAdminURL()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "rh_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create a test database on %s (set REGISTRYHOOKS_TEST_POSTGRES to an admin URL of a PostgreSQL 13+ server): %v", redactURL(admin), err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// newTextLog logs everything at debug level and above to w.
func newTextLog(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
