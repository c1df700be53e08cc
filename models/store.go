package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrQuotaExceeded = errors.New("quota exceeded")
)

// QuotaError says which SKU's webhook quota a create ran into.
type QuotaError struct {
	SKU   string
	Limit int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("Quota exceeded for resource type webhooks for the registry SKU %s (limit %d). Delete a webhook or move the registry to a larger SKU (Basic 2, Standard 10, Premium 500).", e.SKU, e.Limit)
}

// Is makes errors.Is(err, ErrQuotaExceeded) true for a *QuotaError.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

// Store holds every query. SQLite allows one writer at a time, so writes go
// through a pool of one connection (no SQLITE_BUSY between our own writers)
// while reads use a separate pool that WAL mode lets run beside the writer.
type Store struct {
	db     *gorm.DB // writes (and reads that must see them at once)
	wsql   *sql.DB  // the same pool as db, for the hot paths written in plain SQL
	rdb    *gorm.DB // reads
	cipher *Cipher
	now    func() time.Time
	// registries caches GetRegistry by lowercased name (*Registry).
	registries sync.Map
	// hookGen counts writes to webhooks, so callers that cache webhooks
	// (the dispatcher) know when to look again.
	hookGen atomic.Uint64
}

// WebhookGeneration changes whenever a webhook is created, changed or
// deleted through this store, the database's only writer.
func (s *Store) WebhookGeneration() uint64 { return s.hookGen.Load() }

// Options tune Open. The zero value is usable.
type Options struct {
	// Cipher seals secrets at rest. Nil stores them in plain text (tests only).
	Cipher *Cipher
	// ReadConns is the size of the read pool. Default 4.
	ReadConns int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log receives what Open does to the schema (migrations applied, a
	// database baselined). Default: discarded.
	Log *slog.Logger
}

// Open opens (creating if needed) the SQLite database at path, in WAL mode
// with a busy timeout and foreign keys on, and applies the schema
// migrations it lacks (see migrations/README.md).
func Open(path string, opt Options) (*Store, error) {
	if strings.HasPrefix(path, "postgres://") || strings.HasPrefix(path, "postgresql://") {
		return nil, fmt.Errorf("store: postgres is not supported yet; use a SQLite file path")
	}
	dsn := func(extra string) string {
		return "file:" + url.PathEscape(path) + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_synchronous=NORMAL&_cache_size=-16000" + extra
	}
	cfg := &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true, PrepareStmt: true}
	w, err := gorm.Open(sqlite.Open(dsn("&_txlock=immediate")), cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	wsql, err := w.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	wsql.SetMaxOpenConns(1)
	wsql.SetMaxIdleConns(1)
	wsql.SetConnMaxLifetime(0)
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := migrateUp(context.Background(), wsql, engineSQLite, log); err != nil {
		_ = wsql.Close()
		return nil, err
	}
	r, err := gorm.Open(sqlite.Open(dsn("&mode=ro")), cfg)
	if err != nil {
		_ = wsql.Close()
		return nil, fmt.Errorf("store: open %s for reading: %w", path, err)
	}
	rsql, _ := r.DB()
	n := opt.ReadConns
	if n <= 0 {
		n = 4
	}
	rsql.SetMaxOpenConns(n)
	rsql.SetMaxIdleConns(n)
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	return &Store{db: w, wsql: wsql, rdb: r, cipher: opt.Cipher, now: now}, nil
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	for _, g := range []*gorm.DB{s.rdb, s.db} {
		if d, err := g.DB(); err == nil {
			errs = append(errs, d.Close())
		}
	}
	return errors.Join(errs...)
}

// MigrationsPending reports whether the database lacks schema migrations
// this binary knows, which makes the instance not ready.
func (s *Store) MigrationsPending(ctx context.Context) (bool, error) {
	rsql, err := s.rdb.DB()
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	return migrationsPending(ctx, rsql, engineSQLite)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.rdb.WithContext(ctx).Raw("SELECT 1").Scan(&one).Error; err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Now returns the store's clock reading.
func (s *Store) Now() time.Time { return s.now() }

func notFound(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

func isUnique(err error) bool {
	return err != nil && (errors.Is(err, gorm.ErrDuplicatedKey) || strings.Contains(err.Error(), "UNIQUE constraint failed"))
}
