package models

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationFiles are the versioned schema changes, one directory per
// engine, the same version number in both (see migrations/README.md).
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// ErrSchemaMismatch means the database holds tables from a release before
// versioned migrations that do not have today's first schema, so they cannot
// be baselined safely.
var ErrSchemaMismatch = errors.New("schema does not match a known release")

// Engines the store runs on; each names its directory of migrations.
const (
	engineSQLite   = "sqlite"
	enginePostgres = "postgres"
)

// migrationLockID is the PostgreSQL advisory lock that instances starting
// together take around their migrations (crc32 of "registryhooks").
const migrationLockID = 0x52480001

func migrationProvider(db *sql.DB, engine string) (*goose.Provider, error) {
	dir, err := fs.Sub(migrationFiles, "migrations/"+engine)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", engine, err)
	}
	// Numbers are taken per range (migrations/README.md), so a migration
	// of a lower range may come after higher ones were applied: goose
	// applies such a missing version instead of refusing to start.
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true), goose.WithAllowOutofOrder(true)}
	dialect := goose.DialectSQLite3
	if engine == enginePostgres {
		dialect = goose.DialectPostgres
		// Probe every second for up to five minutes: a peer applying a
		// long migration holds the lock, and the others wait for it.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("store: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db, dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, nil
}

// migrateUp applies every pending migration. A SQLite database made before
// versioned migrations (tables but no goose_db_version) is checked against
// version 1 and baselined: version 1 is idempotent there.
func migrateUp(ctx context.Context, db *sql.DB, engine string, log *slog.Logger) error {
	if engine == engineSQLite {
		legacy, err := sqliteLegacy(ctx, db)
		if err != nil {
			return err
		}
		if legacy {
			if err := checkSQLiteBaseline(ctx, db); err != nil {
				return err
			}
			log.Info("baselining a database made before versioned migrations at version 1")
		}
	}
	p, err := migrationProvider(db, engine)
	if err != nil {
		return err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range res {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration_ms", r.Duration.Milliseconds())
	}
	return nil
}

// migrationsPending reports whether the database lacks migrations this
// binary knows (a peer started with an older binary's schema, or nothing
// migrated it yet). One cheap query: /readyz asks it often.
func migrationsPending(ctx context.Context, db *sql.DB, engine string) (bool, error) {
	want, err := embeddedMigrations(engine)
	if err != nil {
		return false, err
	}
	// Every embedded version, not just the highest: one of a lower range
	// may be missing below the database's highest version.
	list := make([]string, len(want))
	for i, v := range want {
		list[i] = strconv.FormatInt(v, 10)
	}
	var have int
	q := "SELECT COUNT(DISTINCT version_id) FROM goose_db_version WHERE is_applied AND version_id IN (" + strings.Join(list, ",") + ")"
	if err := db.QueryRowContext(ctx, q).Scan(&have); err != nil {
		return true, fmt.Errorf("store: migration status: %w", err)
	}
	return have < len(want), nil
}

// embeddedMigrations is the versions embedded for engine.
func embeddedMigrations(engine string) ([]int64, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations/"+engine)
	if err != nil {
		return nil, fmt.Errorf("store: migrations for %s: %w", engine, err)
	}
	var out []int64
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	return out, nil
}

func sqliteTables(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table'")
	if err != nil {
		return nil, fmt.Errorf("store: list tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("store: list tables: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func sqliteLegacy(ctx context.Context, db *sql.DB) (bool, error) {
	tables, err := sqliteTables(ctx, db)
	if err != nil {
		return false, err
	}
	return slices.Contains(tables, "registries") && !slices.Contains(tables, "goose_db_version"), nil
}

// checkSQLiteBaseline compares every column of version 1 (applied to an
// in-memory database) with the legacy database's, so a file from an older
// layout is refused rather than half-upgraded.
func checkSQLiteBaseline(ctx context.Context, db *sql.DB) error {
	ref, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		return fmt.Errorf("store: baseline: %w", err)
	}
	defer ref.Close()
	ref.SetMaxOpenConns(1)
	p, err := migrationProvider(ref, engineSQLite)
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		return fmt.Errorf("store: baseline: %w", err)
	}
	tables, err := sqliteTables(ctx, ref)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if t == "sqlite_sequence" || t == "goose_db_version" {
			continue
		}
		want, err := sqliteColumns(ctx, ref, t)
		if err != nil {
			return err
		}
		have, err := sqliteColumns(ctx, db, t)
		if err != nil {
			return err
		}
		if len(have) == 0 {
			continue // created by version 1
		}
		for _, c := range want {
			if !slices.Contains(have, c) {
				return fmt.Errorf("store: migrate: table %s has no column %s: %w", t, c, ErrSchemaMismatch)
			}
		}
	}
	return nil
}

func sqliteColumns(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, fmt.Errorf("store: columns of %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("store: columns of %s: %w", table, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
