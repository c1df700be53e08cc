// Package pgtestdb gives tests their database on the engine under test: a
// SQLite file, or a fresh PostgreSQL database on REGISTRYHOOKS_TEST_POSTGRES.
// It imports no app package, so the store's own tests use it as well as
// modelstest and the server's tests.
package pgtestdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Postgres reports whether the tests run on PostgreSQL:
// REGISTRYHOOKS_TEST_ENGINE=postgres. CI runs the store and dispatcher
// tests once on each engine.
func Postgres() bool { return os.Getenv("REGISTRYHOOKS_TEST_ENGINE") == "postgres" }

// AdminURL is the PostgreSQL server tests make their databases on:
// REGISTRYHOOKS_TEST_POSTGRES, default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
func AdminURL() string {
	if u := os.Getenv("REGISTRYHOOKS_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// DB returns a new, empty database for one test on the test engine: a
// SQLite file in t.TempDir(), or a fresh PostgreSQL database that is
// dropped when the test ends.
func DB(t testing.TB) string {
	t.Helper()
	if Postgres() {
		return PostgresDB(t)
	}
	return filepath.Join(t.TempDir(), "test.db")
}

// PostgresDB creates a fresh PostgreSQL database on AdminURL for one test,
// dropped at cleanup, and returns its URL.
func PostgresDB(t testing.TB) string {
	t.Helper()
	admin := AdminURL()
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
		t.Fatalf("create a test database on %s (set REGISTRYHOOKS_TEST_POSTGRES to an admin URL of a PostgreSQL 13+ server): %v", redacted(admin), err)
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

// redacted is u with any password replaced, for messages.
func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
