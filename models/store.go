package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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
	// engine is engineSQLite or enginePostgres.
	engine string
	// instance names this process in lease_owner: random per Open.
	instance string
	// fileLock is held on <db>.lock while a SQLite store is open.
	fileLock *os.File
	// drv holds the few queries that differ between the engines.
	drv driver
	// dsn is the PostgreSQL URL, for the listener's own connection.
	dsn string
	log *slog.Logger
	// registries caches GetRegistry by lowercased name (*Registry).
	registries sync.Map
	// regGen counts registry cache invalidations (see GetRegistry).
	regGen atomic.Uint64
	// hookGen counts writes to webhooks, so callers that cache webhooks
	// (the dispatcher) know when to look again.
	hookGen atomic.Uint64
}

// WebhookGeneration changes whenever a webhook is created, changed or
// deleted through this store, and on PostgreSQL whenever another instance
// says it changed one (a notification), or the listener reconnected and may
// have missed such a notification.
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
	// database baselined) and the PostgreSQL listener's reconnects.
	// Default: discarded.
	Log *slog.Logger
	// MaxConns bounds the PostgreSQL connection pool of this instance.
	// Default 8: with the one connection that listens for notifications,
	// ten instances stay within PostgreSQL's default max_connections of
	// 100. Ignored for SQLite (one writer, ReadConns readers).
	MaxConns int
}

// ErrLocked means another process has the SQLite database open: one
// process per file, so leases and caches need no coordination.
var ErrLocked = errors.New("database in use by another process")

// Open opens (creating if needed) the SQLite database at path, in WAL mode
// with a busy timeout, foreign keys on and synchronous=FULL (a commit, and
// so a 202 from ingest, survives a power loss; the group commit pays for
// the extra sync), and applies the schema migrations it lacks (see
// migrations/README.md). It holds an exclusive lock on path+".lock" until
// Close: a second process on the same file gets ErrLocked.
//
// A postgres:// or postgresql:// URL opens PostgreSQL instead (13 or
// newer): any number of processes may share that database; migrations run
// under an advisory lock.
func Open(path string, opt Options) (*Store, error) {
	if IsPostgresURL(path) {
		return openPostgres(path, opt)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	s, err := openSQLite(path, opt)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s.fileLock = lock
	return s, nil
}

// IsPostgresURL reports whether a --db value names a PostgreSQL database.
func IsPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

func openSQLite(path string, opt Options) (*Store, error) {
	dsn := func(extra string) string {
		return "file:" + url.PathEscape(path) + "?_journal_mode=WAL&_busy_timeout=10000&_foreign_keys=on&_synchronous=FULL&_cache_size=-16000&_stmt_cache_size=128" + extra
	}
	if err := privateFiles(path); err != nil {
		return nil, err
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
	if err := useIncrementalVacuum(w); err != nil {
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
	return &Store{db: w, wsql: wsql, rdb: r, cipher: opt.Cipher, now: now, engine: engineSQLite, instance: newInstanceID(),
		drv: sqliteDriver{}, log: log}, nil
}

// newInstanceID names one process's leases: random, so a restarted process
// never mistakes a dead one's leases for its own.
func newInstanceID() string {
	host, _ := os.Hostname()
	if len(host) > 32 {
		host = host[:32]
	}
	return host + "-" + RandomToken(6)
}

// InstanceID is the lease owner this store writes on the rows it claims.
func (s *Store) InstanceID() string { return s.instance }

// Engine is "sqlite" or "postgres".
func (s *Store) Engine() string { return s.engine }

// rebind turns the ? placeholders of a query for database/sql into the
// engine's (PostgreSQL's $1, $2, …). Queries through GORM are rebound by
// GORM itself. None of our queries has a ? inside a string literal.
func (s *Store) rebind(q string) string {
	if s.engine != enginePostgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Close closes both pools.
func (s *Store) Close() error {
	var errs []error
	for _, g := range []*gorm.DB{s.rdb, s.db} {
		if d, err := g.DB(); err == nil {
			if err := d.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
				errs = append(errs, err)
			}
		}
	}
	if s.fileLock != nil {
		errs = append(errs, s.fileLock.Close())
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
	return migrationsPending(ctx, rsql, s.engine)
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
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505" // unique_violation
	}
	return err != nil && (errors.Is(err, gorm.ErrDuplicatedKey) || strings.Contains(err.Error(), "UNIQUE constraint failed"))
}

// webhooksChanged follows every write to webhooks: the generation moves,
// so this process's dispatcher looks again, and other instances are told
// to do the same. Writers of webhooks outside this file call it too.
func (s *Store) webhooksChanged(ctx context.Context) {
	s.hookGen.Add(1)
	s.drv.changed(ctx, s, "webhooks")
}

// registriesChanged follows every write to registries (ingest tokens
// included): the registry cache is dropped here and on other instances.
func (s *Store) registriesChanged(ctx context.Context) {
	s.forgetRegistries()
	s.drv.changed(ctx, s, "registries")
}

// nextChunk is how many of n rows the next multi-row statement writes, at
// most max. On SQLite, statements are prepared once per connection and
// cached by their text (_stmt_cache_size): preparing a statement of a few
// hundred placeholders costs more than running it, so the sizes are powers
// of two, at most log2(max)+1 texts per statement, each prepared once. On
// PostgreSQL every statement is a round trip: as many rows as allowed.
func (s *Store) nextChunk(n, max int) int {
	k := min(n, max)
	if s.engine == engineSQLite && k > 0 {
		k = 1 << (bits.Len(uint(k)) - 1)
	}
	return k
}
