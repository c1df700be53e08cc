package models

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Notification channels: new due deliveries, and changed rows of cached
// kinds (payload "webhooks" or "registries").
const (
	channelOutbox  = "registryhooks_outbox"
	channelChanged = "registryhooks_changed"
)

// openPostgres opens a bounded pool on the database at dsn and applies the
// migrations it lacks under an advisory lock.
func openPostgres(dsn string, opt Options) (*Store, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres URL: %w", err)
	}
	db := stdlib.OpenDB(*cc)
	n := opt.MaxConns
	if n <= 0 {
		n = 8
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", redactDSN(dsn), err)
	}
	if err := migrateUp(ctx, db, enginePostgres, log); err != nil {
		_ = db.Close()
		return nil, err
	}
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true, PrepareStmt: true})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", redactDSN(dsn), err)
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	return &Store{db: g, wsql: db, rdb: g, cipher: opt.Cipher, now: now, engine: enginePostgres, instance: newInstanceID(),
		drv: pgDriver{}, dsn: dsn, log: log}, nil
}

// redactDSN hides the password of a database URL for messages.
func redactDSN(dsn string) string {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
}

type pgDriver struct{}

// pgNotLeasable finds, for webhook w.id, a live lease of another instance
// ($3 is this one) or a delivery due at $2.
const pgNotLeasable = `SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.state IN (0, 1)
    AND (d.available_at <= $2 OR (d.state = 1 AND d.lease_owner <> $3))`

// leasable on PostgreSQL: one instance serves a webhook at a time, and only
// a transaction holding the webhook's row lock may decide which (as a claim
// does, pgClaimSQL). So an ingest leases its new deliveries of a webhook to
// this instance only if it locks the webhook's row at once (SKIP LOCKED: a
// claim or another instance's ingest holding it means those deliveries
// queue, and ingest never waits) and then, in a second statement whose
// snapshot is taken after the lock was granted, finds no live lease of
// another instance on it and nothing of it due (a backlog, or a dead
// instance's expired leases, goes first, in due order).
func (pgDriver) leasable(ctx context.Context, s *Store, tx *sql.Tx, hooks []int64, now int64) (map[uint]bool, error) {
	out := map[uint]bool{}
	if len(hooks) == 0 {
		return out, nil
	}
	// Webhooks already seen served by another instance, or with something
	// due, are not even locked: their owner's claims must not find them
	// locked by an ingest that cannot lease them anyway.
	locked, err := queryIDs(ctx, tx, `SELECT w.id FROM webhooks w WHERE w.id = ANY($1) AND NOT EXISTS (`+pgNotLeasable+`)
ORDER BY w.id FOR NO KEY UPDATE OF w SKIP LOCKED`, claimExecMode, hooks, now, s.instance)
	if err != nil || len(locked) == 0 {
		return out, err
	}
	mine, err := queryIDs(ctx, tx, `SELECT w.id FROM unnest($1::bigint[]) AS w(id) WHERE NOT EXISTS (`+pgNotLeasable+`)`,
		claimExecMode, locked, now, s.instance)
	for _, id := range mine {
		out[uint(id)] = true
	}
	return out, err
}

// queryIDs runs a query of one bigint column in tx and returns its rows.
func queryIDs(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Close()
}

func (pgDriver) outboxChanged(ctx context.Context, tx *sql.Tx, from string) error {
	_, err := tx.ExecContext(ctx, "SELECT pg_notify('"+channelOutbox+"', $1)", from)
	return err
}

// relaxedCommit: a claim or result lost in a server crash only means the
// delivery is sent again (at least once, as documented), so these commits
// do not wait for the WAL flush; on a busy disk that wait is most of an
// idle delivery's latency.
func (pgDriver) relaxedCommit(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off")
	return err
}

func (pgDriver) changed(ctx context.Context, s *Store, kind string) {
	// Best effort: a lost notification is covered by the listener's
	// reconnect (it forgets everything) and by the stamps the dispatcher
	// checks.
	if _, err := s.wsql.ExecContext(context.WithoutCancel(ctx), "SELECT pg_notify($1, $2)", channelChanged, kind); err != nil {
		s.log.Warn("store: notify other instances", "kind", kind, "err", err)
	}
}

// pgLockHooksSQL, the first statement of a claim's transaction, makes
// the transaction commit without waiting for the WAL flush (relaxedCommit:
// a lost claim only means the row is claimed again) and locks the webhooks
// with due deliveries near the head of the queue, FOR NO KEY UPDATE SKIP
// LOCKED (which does not block ingest, whose foreign keys take KEY SHARE
// locks). It skips those this instance runs at its limit ($2) and those
// another instance is serving (it holds a live lease on them), so a
// claimer never holds up their owner's claims for nothing.
const pgLockHooksSQL = `WITH cfg AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS v)
SELECT w.id FROM webhooks w, cfg WHERE w.id IN (
  SELECT webhook_id FROM (
    (SELECT webhook_id FROM deliveries WHERE state = 0 AND available_at <= $1 AND webhook_id <> ALL($2::bigint[])
      ORDER BY available_at LIMIT $3)
    UNION ALL
    (SELECT webhook_id FROM deliveries WHERE state = 1 AND available_at <= $1 AND webhook_id <> ALL($2::bigint[])
      ORDER BY available_at LIMIT $3)
  ) due
) AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.webhook_id = w.id AND o.state = 1
    AND o.available_at > $1 AND o.lease_owner <> $4)
ORDER BY w.id FOR NO KEY UPDATE OF w SKIP LOCKED`

// pgClaimSQL, the second statement, runs with a new snapshot (READ
// COMMITTED), taken after the locks were granted, so it sees every lease
// another instance committed on these webhooks before. It leases, for each
// locked webhook, up to its free capacity of its due deliveries, oldest
// first, at most $7 in all. A webhook is served by one instance at a time:
// while another instance holds a live lease on it, its free capacity is 0;
// otherwise it is the limit less this instance's own live leases. So the
// owner may lease ahead (prefetch, as on SQLite) and its per-webhook slots
// bound the concurrent requests across all instances; another instance
// takes the webhook over once the owner's leases are finished, handed
// back, or expired (it died). Expired leases count as due and go first:
// their available_at is the lease's end, later than the backlog queued
// meanwhile, so in due order a dead instance's deliveries would wait for
// the whole backlog.
const pgClaimSQL = `WITH hooks AS (
  SELECT h.id AS webhook_id,
    CASE WHEN EXISTS (SELECT 1 FROM deliveries o WHERE o.webhook_id = h.id AND o.state = 1
                        AND o.available_at > $1 AND o.lease_owner <> $5) THEN 0
         ELSE GREATEST($4 - (SELECT count(*) FROM deliveries l WHERE l.webhook_id = h.id AND l.state = 1
                        AND l.available_at > $1 AND l.lease_owner = $5), 0) END AS free
  FROM unnest($3::bigint[]) AS h(id)
), picked AS (
  SELECT d.id FROM hooks CROSS JOIN LATERAL (
    SELECT id, state, available_at FROM deliveries
    WHERE webhook_id = hooks.webhook_id AND state IN (0, 1) AND available_at <= $1
    ORDER BY state DESC, available_at, id LIMIT hooks.free
  ) d ORDER BY d.state DESC, d.available_at, d.id LIMIT $7
)
UPDATE deliveries SET state = 1, attempts = attempts + 1, available_at = $2, updated_at = $1,
  lease_owner = $5, lease_token = lease_token + 1
WHERE id IN (SELECT id FROM picked) AND state IN (0, 1) AND available_at <= $6
RETURNING id, event_seq, event_id, webhook_id, attempts, lease_token`

// claimExecMode, passed as a claim statement's first argument, sends it
// with its parameters as an unnamed statement (one round trip, like a
// cached one), which PostgreSQL plans for those values every time.
const claimExecMode = pgx.QueryExecModeExec

// claim on PostgreSQL: lock the webhooks to serve, then lease, in one
// transaction of four round trips (begin, lock, lease, commit). Webhooks
// this instance already runs at the limit are not even considered.
func (pgDriver) claim(ctx context.Context, s *Store, opt ClaimOptions) ([]ClaimedDelivery, error) {
	full := []int64{}
	for id, n := range opt.Busy {
		if n >= opt.PerWebhook {
			full = append(full, int64(id))
		}
	}
	now := opt.Now.UnixNano()
	until := opt.Now.Add(opt.Lease)
	tx, err := s.wsql.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	// Both statements go unprepared (QueryExecModeExec), so each is
	// planned for its parameters. Cached as prepared statements, they
	// switched to PostgreSQL's generic plan after five runs, which cannot
	// see how few rows available_at <= now selects: after 40,000
	// deliveries that plan made each claim take 30-100 ms where the custom
	// plan takes 1-5 ms (see claimExecMode).
	hooks, err := queryIDs(ctx, tx, pgLockHooksSQL, claimExecMode, now, full, opt.Limit+128, s.instance)
	if err != nil {
		return nil, err
	}
	if len(hooks) == 0 {
		return nil, tx.Commit()
	}
	rows, err := tx.QueryContext(ctx, pgClaimSQL, claimExecMode, now, until.UnixNano(), hooks, opt.PerWebhook, s.instance, now, opt.Limit)
	if err != nil {
		return nil, err
	}
	var out []ClaimedDelivery
	for rows.Next() {
		c := ClaimedDelivery{Until: until}
		if err := rows.Scan(&c.ID, &c.EventSeq, &c.EventID, &c.WebhookID, &c.Attempt, &c.Token); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return out, tx.Commit()
}

// Listen wakes onOutbox whenever any instance queued deliveries, and drops
// this store's caches whenever any instance changed webhooks or registries,
// until ctx ends. On PostgreSQL it holds one connection of its own (outside
// the pool) and reconnects after a failure; after a reconnect it assumes it
// missed something: caches dropped, onOutbox called. On SQLite there is
// nothing to listen to (one process per file) and it returns at once.
func (s *Store) Listen(ctx context.Context, onOutbox func()) {
	if s.engine != enginePostgres {
		return
	}
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, onOutbox, !first)
		first = false
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("store: listener lost its connection; reconnecting", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, onOutbox func(), reconnected bool) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, s.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{channelOutbox, channelChanged} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return err
		}
	}
	if reconnected {
		s.forgetAll()
		onOutbox()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case channelOutbox:
			// This instance's own changes kick its dispatcher in
			// process (Kick), before this arrives: woken again, it would
			// claim in vain, and a claim that finds nothing paces the next.
			if n.Payload != s.instance {
				onOutbox()
			}
		case channelChanged:
			s.forgetAll()
		}
	}
}

// forgetAll drops what this store caches: the registries, and (through
// the generation) the dispatcher's webhook targets.
func (s *Store) forgetAll() {
	s.forgetRegistries()
	s.hookGen.Add(1)
}
