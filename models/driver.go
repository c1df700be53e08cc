package models

import (
	"context"
	"database/sql"
)

// driver holds the few queries that differ between SQLite and PostgreSQL;
// every other query of the store is shared SQL (GORM's builder, or plain SQL
// with ? placeholders that rebind adapts).
type driver interface {
	// claim leases due deliveries for this instance (see ClaimDeliveries).
	claim(ctx context.Context, s *Store, opt ClaimOptions) ([]ClaimedDelivery, error)
	// leasable returns which of the given webhooks an ingest transaction
	// may lease new deliveries of to this instance (see DirectLease); nil
	// means all of them.
	leasable(ctx context.Context, s *Store, tx *sql.Tx, hooks []int64, now int64) (map[uint]bool, error)
	// outboxChanged runs inside a transaction that made deliveries due, so
	// that every other instance's dispatcher wakes when it commits; from
	// names this instance, whose own dispatcher is kicked in process.
	outboxChanged(ctx context.Context, tx *sql.Tx, from string) error
	// changed tells the other instances that rows of a cached kind
	// (webhooks, registries) changed.
	changed(ctx context.Context, s *Store, kind string)
	// relaxedCommit lets a transaction whose loss in a crash costs at most
	// a duplicate delivery (claims, results, heartbeats) commit without
	// waiting for its WAL flush. Ingest never uses it: its 202 promises
	// the events are on disk.
	relaxedCommit(ctx context.Context, tx *sql.Tx) error
}

// sqliteDriver: one process per database (the file lock), so in-process
// kicks and caches suffice and nothing needs announcing.
type sqliteDriver struct{}

// One process per file, and ingest and claims share its one write
// connection: every webhook is this instance's to lease.
func (sqliteDriver) leasable(context.Context, *Store, *sql.Tx, []int64, int64) (map[uint]bool, error) {
	return nil, nil
}

func (sqliteDriver) outboxChanged(context.Context, *sql.Tx, string) error { return nil }
func (sqliteDriver) changed(context.Context, *Store, string)              {}

func (sqliteDriver) relaxedCommit(context.Context, *sql.Tx) error { return nil }
