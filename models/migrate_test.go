package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

// schemaOf lists a SQLite database's objects as sqlite_master keeps them
// (name -> normalised CREATE statement), without goose's own table.
func schemaOf(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'goose%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// legacyFixture is a database made by the release before versioned
// migrations (commit 975c652, GORM AutoMigrate): the default registry, the
// admin, one webhook sealed with the all-zero key, two events with a
// pending delivery each.
const legacyFixture = "testdata/legacy-975c652.db"

func TestMigrationVersionOneIsTheLegacySchema(t *testing.T) {
	t.Parallel()
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	db, err := sql.Open("sqlite3", "file:"+fresh)
	if err != nil {
		t.Fatal(err)
	}
	p, err := migrationProvider(db, engineSQLite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	legacy := filepath.Join(t.TempDir(), "legacy.db")
	copyFile(t, legacyFixture, legacy)
	got, want := schemaOf(t, fresh), schemaOf(t, legacy)
	if len(got) != len(want) {
		t.Errorf("version 1 has %d objects, the legacy schema %d", len(got), len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s:\n version 1: %s\n legacy:    %s", name, got[name], w)
		}
	}
}

func TestMigrationBaselinesLegacyDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "registryhooks.db")
	copyFile(t, legacyFixture, path)
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	s, err := Open(path, Options{Cipher: c, Log: newTextLog(&logged)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if !strings.Contains(logged.String(), "baselining") {
		t.Errorf("log does not say the database was baselined:\n%s", logged.String())
	}
	if pending, err := s.MigrationsPending(ctx); err != nil || pending {
		t.Fatalf("pending = %v, %v after Open", pending, err)
	}
	// The data survived and is usable: the sealed webhook opens, the
	// pending deliveries are claimable, the admin signs in.
	reg, err := s.GetRegistry(ctx, DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.GetWebhook(ctx, reg, "legacyhook")
	if err != nil {
		t.Fatal(err)
	}
	if w.ServiceURI != "http://127.0.0.1:9/hook?token=s3cret" || w.Headers["Authorization"] != "Basic c2VjcmV0" {
		t.Errorf("webhook secrets after upgrade: %q %v", w.ServiceURI, w.Headers)
	}
	if _, err := s.Authenticate(ctx, AdminUsername, "legacy-password"); err != nil {
		t.Errorf("admin sign-in after upgrade: %v", err)
	}
	rows, total, err := s.ListDeliveries(ctx, w.ID, 0, 10)
	if err != nil || total != 2 || len(rows) != 2 {
		t.Fatalf("deliveries after upgrade: %d of %d, %v", len(rows), total, err)
	}
	var fkProblems int
	if err := s.wsql.QueryRow("SELECT COUNT(*) FROM pragma_foreign_key_check").Scan(&fkProblems); err != nil || fkProblems != 0 {
		t.Fatalf("foreign key check after the rebuild: %d problems, %v", fkProblems, err)
	}
	// Opening again applies nothing and does not baseline again.
	_ = s.Close()
	logged.Reset()
	s2, err := Open(path, Options{Cipher: c, Log: newTextLog(&logged)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if strings.Contains(logged.String(), "baselining") || strings.Contains(logged.String(), "migration applied") {
		t.Errorf("second open changed the schema:\n%s", logged.String())
	}
}

func TestMigrationRefusesUnknownLegacySchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	// A registries table with only two columns: a layout no release made.
	if _, err := db.Exec("CREATE TABLE registries (id integer PRIMARY KEY AUTOINCREMENT, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), "registries has no column subscription_id") {
		t.Fatalf("Open = %v, want ErrSchemaMismatch naming the column", err)
	}
}

func TestMigrationFreshSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new.db")
	var logged strings.Builder
	s, err := Open(path, Options{Log: newTextLog(&logged)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(logged.String(), "baselining") {
		t.Errorf("a new database was baselined:\n%s", logged.String())
	}
	if !strings.Contains(logged.String(), "version=1") {
		t.Errorf("log does not name migration 1:\n%s", logged.String())
	}
	pending, err := s.MigrationsPending(context.Background())
	if err != nil || pending {
		t.Fatalf("pending = %v, %v", pending, err)
	}
	// A version this binary does not have yet would make it pending.
	if _, err := s.wsql.Exec("DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)"); err != nil {
		t.Fatal(err)
	}
	if pending, err := s.MigrationsPending(context.Background()); err != nil || !pending {
		t.Fatalf("after removing the last version: pending = %v, %v", pending, err)
	}
}

// Migration numbers are taken per range, so a database may lack a version
// lower than its highest (made before that migration existed): it is
// pending, and the next start applies it.
func TestMigrationAppliesAMissingLowerVersion(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gap.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	versions, err := embeddedMigrations(engineSQLite)
	if err != nil {
		t.Fatal(err)
	}
	// Version 4 came after 10-20 had been applied (its effect is
	// idempotent, so taking its record away is the database made before it).
	const low = 4
	if !slices.Contains(versions, low) || slices.Max(versions) <= low {
		t.Fatalf("versions %v: the test needs 4 below the highest", versions)
	}
	if _, err := s.wsql.Exec("DELETE FROM goose_db_version WHERE version_id = ?", low); err != nil {
		t.Fatal(err)
	}
	if pending, err := s.MigrationsPending(context.Background()); err != nil || !pending {
		t.Fatalf("without version %d: pending = %v, %v", low, pending, err)
	}
	s.Close()
	var logged strings.Builder
	s, err = Open(path, Options{Log: newTextLog(&logged)})
	if err != nil {
		t.Fatalf("reopening a database that lacks version %d: %v", low, err)
	}
	defer s.Close()
	if !strings.Contains(logged.String(), fmt.Sprintf("version=%d ", low)) {
		t.Errorf("version %d was not applied:\n%s", low, logged.String())
	}
	if pending, err := s.MigrationsPending(context.Background()); err != nil || pending {
		t.Fatalf("after the start: pending = %v, %v", pending, err)
	}
}

// Instances starting together on one PostgreSQL database apply each
// migration once: the advisory lock serialises them.
func TestMigrationPostgresConcurrent(t *testing.T) {
	t.Parallel()
	dsn := pgtestdb.PostgresDB(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = migrateUp(ctx, db, enginePostgres, newTextLog(io.Discard))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	versions, err := embeddedMigrations(enginePostgres)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Max(versions)
	// Each file once (numbers may have gaps: ranges belong to teams).
	files, err := fs.Glob(migrationFiles, "migrations/"+enginePostgres+"/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var n, top int64
	if err := db.QueryRow("SELECT count(*), MAX(version_id) FROM goose_db_version WHERE version_id > 0").Scan(&n, &top); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(files)) || top != want {
		t.Fatalf("goose_db_version: %d rows up to %d, want each of the %d migrations up to %d once", n, top, len(files), want)
	}
	if pending, err := migrationsPending(ctx, db, enginePostgres); err != nil || pending {
		t.Fatalf("pending = %v, %v", pending, err)
	}
	// Case-insensitive names as on SQLite.
	if _, err := db.Exec("INSERT INTO registries (name, subscription_id, resource_group, location, sku, login_server) VALUES ('MyReg', 's', 'g', 'l', 'Basic', 'x'), ('other', 's', 'g', 'l', 'Basic', 'x')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO registries (name, subscription_id, resource_group, location, sku, login_server) VALUES ('myreg', 's', 'g', 'l', 'Basic', 'x')"); err == nil {
		t.Error("a registry name differing only in case was accepted")
	}
	var id int64
	if err := db.QueryRow("SELECT id FROM registries WHERE name = $1 COLLATE NOCASE", "MYREG").Scan(&id); err != nil {
		t.Errorf("COLLATE NOCASE lookup: %v", err)
	}
}
