package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The queries of the dispatcher: claim open deliveries with a lease, load
// what an attempt needs, write attempt results in batches, release leases
// and prune old events. They keep write transactions short because the
// store's write pool has a single connection that ingest shares.

// ClaimedDelivery is one delivery the dispatcher leased. Attempt is the
// number of the attempt about to be made (1 for the first).
type ClaimedDelivery struct {
	ID        uint
	EventSeq  int64
	EventID   string
	WebhookID uint
	Attempt   int
	// Token is the row's lease_token after this claim; the result is
	// written only while the row still carries it (RecordAttempts).
	Token int64
	// Until is when the lease expires unless a heartbeat extends it.
	Until time.Time
}

// ClaimOptions bound one claim.
type ClaimOptions struct {
	// Now is the dispatcher's clock reading; rows with available_at <= Now
	// are due (pending rows whose retry time came, and in-flight rows whose
	// lease expired).
	Now time.Time
	// Lease is how long the claimed rows stay invisible to other claims.
	Lease time.Duration
	// Limit caps the rows claimed.
	Limit int
	// PerWebhook caps the rows in flight per webhook. On SQLite (one
	// process) it counts Busy. On PostgreSQL it counts this instance's live
	// leases, read under the webhook's row lock, and a webhook on which
	// another instance holds a live lease gets none: one instance serves a
	// webhook at a time, so its slots are the limit across instances.
	PerWebhook int
	// Busy counts the deliveries of each webhook the caller has in flight
	// already. Webhooks at PerWebhook are skipped entirely, so a slow
	// endpoint's backlog never takes the slots of the others.
	Busy map[uint]int
}

// claimSQL leases due deliveries in one statement. The innermost selects
// walk idx_delivery_due (state, available_at) in due order, once for pending
// rows and once for in-flight rows whose lease expired; the window keeps at
// most the free capacity of each webhook.
const claimSQL = `WITH busy(webhook_id, n) AS MATERIALIZED (
  SELECT CAST(key AS INTEGER), value FROM json_each(?1)
)
UPDATE deliveries SET state = 1, attempts = attempts + 1, available_at = ?2, updated_at = ?3,
  lease_owner = ?8, lease_token = lease_token + 1
WHERE id IN (
  SELECT c.id FROM (
    SELECT id, available_at, webhook_id,
      ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY available_at, id) AS rn
    FROM (
      SELECT * FROM (
        SELECT id, available_at, webhook_id FROM deliveries INDEXED BY idx_delivery_due
        WHERE state = 0 AND available_at <= ?3
          AND webhook_id NOT IN (SELECT value FROM json_each(?4))
        ORDER BY available_at, id LIMIT ?5)
      UNION ALL
      SELECT * FROM (
        SELECT id, available_at, webhook_id FROM deliveries INDEXED BY idx_delivery_due
        WHERE state = 1 AND available_at <= ?3
          AND webhook_id NOT IN (SELECT value FROM json_each(?4))
        ORDER BY available_at, id LIMIT ?5)
    )
  ) AS c LEFT JOIN busy b ON b.webhook_id = c.webhook_id
  WHERE c.rn <= ?6 - COALESCE(b.n, 0)
  ORDER BY c.available_at, c.id LIMIT ?7
)
RETURNING id, event_seq, event_id, webhook_id, attempts, lease_token`

// ClaimDeliveries leases up to opt.Limit due deliveries: they move to
// DeliveryInFlight, their attempt count goes up by one and available_at
// becomes the lease expiry, so a crashed dispatcher's rows come back by
// themselves. Memory stays bounded whatever the backlog: only Limit rows are
// read.
func (s *Store) ClaimDeliveries(ctx context.Context, opt ClaimOptions) ([]ClaimedDelivery, error) {
	if opt.Limit <= 0 {
		return nil, nil
	}
	out, err := s.drv.claim(ctx, s, opt)
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	return out, nil
}

// claim is the SQLite claim: one statement (claimSQL). The process holds
// the file's lock, so nobody else claims meanwhile.
func (sqliteDriver) claim(ctx context.Context, s *Store, opt ClaimOptions) ([]ClaimedDelivery, error) {
	full := []uint{}
	busy := map[string]int{}
	for id, n := range opt.Busy {
		if n >= opt.PerWebhook {
			full = append(full, id)
		} else if n > 0 {
			busy[strconv.FormatUint(uint64(id), 10)] = n
		}
	}
	fullJSON, _ := json.Marshal(full)
	busyJSON, _ := json.Marshal(busy)
	now := opt.Now.UnixNano()
	// Scan a little past the limit. A webhook whose backlog fills the head
	// of the queue soon reaches its cap, and from the next claim on its rows
	// are skipped by the full list, so the others' rows come up. Scanning
	// several times the limit would be fairer within one claim, but the
	// window over the scanned rows is most of a claim's cost.
	scan := opt.Limit + 128
	var out []ClaimedDelivery
	until := opt.Now.Add(opt.Lease)
	rows, err := s.wsql.QueryContext(ctx, claimSQL, string(busyJSON), until.UnixNano(), now,
		string(fullJSON), scan, opt.PerWebhook, opt.Limit, s.instance)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		c := ClaimedDelivery{Until: until}
		if err := rows.Scan(&c.ID, &c.EventSeq, &c.EventID, &c.WebhookID, &c.Attempt, &c.Token); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// EventPayload is what an attempt sends.
type EventPayload struct {
	Seq     int64
	ID      string
	Action  string
	Payload []byte
}

// EventPayloads returns the public id, action and payload of the given
// events, keyed by Seq. Events deleted meanwhile are absent.
func (s *Store) EventPayloads(ctx context.Context, seqs []int64) (map[int64]EventPayload, error) {
	out := make(map[int64]EventPayload, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	var rows []EventPayload
	if err := s.rdb.WithContext(ctx).Raw(`SELECT seq, id, action, payload FROM events WHERE seq IN ?`, seqs).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: load %d event payloads: %w", len(seqs), err)
	}
	for _, r := range rows {
		out[r.Seq] = r
	}
	return out, nil
}

// WebhookStamps returns the UpdatedAt of the given webhooks, keyed by id, so
// the dispatcher can tell whether its decrypted copy is stale. Deleted
// webhooks are absent.
func (s *Store) WebhookStamps(ctx context.Context, ids []uint) (map[uint]time.Time, error) {
	out := make(map[uint]time.Time, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID        uint
		UpdatedAt time.Time
	}
	if err := s.rdb.WithContext(ctx).Model(&Webhook{}).Select("id", "updated_at").Where("id IN ?", ids).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: webhook stamps: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.UpdatedAt
	}
	return out, nil
}

// AttemptResult is one finished attempt and what becomes of its delivery.
type AttemptResult struct {
	Attempt Attempt
	// Token is the lease token the delivery was claimed with: the delivery
	// changes only if it still carries it.
	Token int64
	// State is the delivery's new state: DeliveryPending (retry at
	// AvailableAt), DeliverySucceeded or DeliveryFailed.
	State       int
	AvailableAt time.Time
	UpdatedAt   time.Time
}

// RecordAttempts writes a batch of attempt results and the matching
// delivery updates in one transaction, with multi-row statements (one UPDATE
// … FROM VALUES and one INSERT per chunk of rows). Each update is fenced by
// the lease token: a result whose lease was lost meanwhile (it expired and
// another claim took the row) changes nothing, and its attempt is kept as
// history with Superseded set. A delivery deleted meanwhile (its webhook was
// deleted) is skipped silently. Superseded results have
// Attempt.Superseded set in results when it returns.
func (s *Store) RecordAttempts(ctx context.Context, results []AttemptResult) error {
	if len(results) == 0 {
		return nil
	}
	err := func() error {
		tx, err := s.wsql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if err := s.drv.relaxedCommit(ctx, tx); err != nil {
			return err
		}
		const chunk = 200
		for rest := results; len(rest) > 0; {
			n := s.nextChunk(len(rest), chunk)
			if err := s.recordChunk(ctx, tx, rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("store: record %d attempts: %w", len(results), err)
	}
	return nil
}

// recordChunk updates the deliveries whose token still matches, then
// inserts every attempt, marking the others superseded. The VALUES columns
// are cast so PostgreSQL knows their types; SQLite ignores the casts' names
// beyond their affinity.
func (s *Store) recordChunk(ctx context.Context, tx *sql.Tx, rs []AttemptResult) error {
	var ins, upd strings.Builder
	upd.WriteString(`UPDATE deliveries SET state = v.column3, available_at = v.column4, last_status_code = v.column5,
  last_reason = v.column6, last_error = v.column7, last_duration_ms = v.column8, updated_at = v.column9 FROM (VALUES `)
	updArgs := make([]any, 0, len(rs)*9)
	for i := range rs {
		r := &rs[i]
		a := &r.Attempt
		if i > 0 {
			upd.WriteByte(',')
		}
		upd.WriteString("(CAST(? AS BIGINT),CAST(? AS BIGINT),CAST(? AS INTEGER),CAST(? AS BIGINT),CAST(? AS INTEGER),CAST(? AS TEXT),CAST(? AS TEXT),CAST(? AS BIGINT),CAST(? AS BIGINT))")
		updArgs = append(updArgs, int64(a.DeliveryID), r.Token, r.State, r.AvailableAt.UnixNano(), a.StatusCode, truncate(a.ReasonPhrase, 128),
			truncate(a.Error, 1024), a.DurationMS, r.UpdatedAt.UnixNano())
	}
	upd.WriteString(") AS v WHERE deliveries.id = v.column1 AND deliveries.lease_token = v.column2 RETURNING deliveries.id")
	rows, err := tx.QueryContext(ctx, s.rebind(upd.String()), updArgs...)
	if err != nil {
		return err
	}
	written := make(map[uint]bool, len(rs))
	for rows.Next() {
		var id uint
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		written[id] = true
	}
	if err := rows.Close(); err != nil {
		return err
	}
	ins.WriteString(`INSERT INTO attempts (delivery_id, webhook_id, event_id, number, request_uri, request_headers,
  status_code, reason_phrase, response_headers, response_body, truncated, error, duration_ms, started_at, superseded)
  SELECT * FROM (VALUES `)
	insArgs := make([]any, 0, len(rs)*15)
	for i := range rs {
		a := &rs[i].Attempt
		if i > 0 {
			ins.WriteByte(',')
		}
		ins.WriteString("(CAST(? AS BIGINT),CAST(? AS BIGINT),CAST(? AS TEXT),CAST(? AS INTEGER),CAST(? AS TEXT),CAST(? AS TEXT),CAST(? AS INTEGER),CAST(? AS TEXT),CAST(? AS TEXT),CAST(? AS TEXT),CAST(? AS BOOLEAN),CAST(? AS TEXT),CAST(? AS BIGINT),CAST(? AS BIGINT),CAST(? AS BOOLEAN))")
		sup := !written[a.DeliveryID]
		a.Superseded = sup
		insArgs = append(insArgs, int64(a.DeliveryID), int64(a.WebhookID), a.EventID, a.Number, a.RequestURI, a.RequestHeaders,
			a.StatusCode, a.ReasonPhrase, a.ResponseHeaders, a.ResponseBody, a.Truncated, a.Error, a.DurationMS, a.StartedAt, sup)
	}
	ins.WriteString(") AS v WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.column1)")
	if _, err := tx.ExecContext(ctx, s.rebind(ins.String()), insArgs...); err != nil {
		return err
	}
	return nil
}

// releaseSQL makes leased deliveries pending again, due at the first
// parameter (the second is updated_at), their lease owner cleared and the
// claim's attempt count undone; the caller adds which rows.
const releaseSQL = `UPDATE deliveries SET state = 0, available_at = ?, updated_at = ?, lease_owner = '',
  attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE `

// ReleaseDeliveries gives leased deliveries back unattempted (a graceful
// stop cancelled them, or their lease ran too short to start): pending
// again, due at now, the claim's attempt count undone. Each is fenced by
// its token, so a lease lost meanwhile is left to its new holder.
func (s *Store) ReleaseDeliveries(ctx context.Context, leases []ClaimedDelivery, now time.Time) error {
	if len(leases) == 0 {
		return nil
	}
	err := func() error {
		tx, err := s.wsql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		q := s.rebind(releaseSQL + `id = ? AND lease_token = ? AND state = 1`)
		for _, l := range leases {
			if _, err := tx.ExecContext(ctx, q, now.UnixNano(), now.UnixNano(), int64(l.ID), l.Token); err != nil {
				return err
			}
		}
		// Due again now: other instances take them at once.
		if err := s.drv.outboxChanged(ctx, tx, s.instance); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("store: release %d deliveries: %w", len(leases), err)
	}
	return nil
}

// ExtendLeases moves the expiry of the given deliveries this instance holds
// leased to until (the heartbeat), and returns how many it holds. A lease
// that expired and was claimed by another instance is not this instance's
// any more and is left alone.
//
// Only the rows ids are extended: those the caller still holds in memory.
// A row this instance leased and then lost track of (a claim whose commit
// reply never came, a result or a release that could not be written while
// the database was away) is left to expire and be taken over; extending
// every row by owner would keep such a row leased for as long as the
// instance lives, and it would never be sent.
func (s *Store) ExtendLeases(ctx context.Context, until time.Time, ids []uint) (int64, error) {
	var total int64
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, 0, len(chunk)+2)
		args = append(args, until.UnixNano(), s.instance)
		for _, id := range chunk {
			args = append(args, int64(id))
		}
		in := `(?` + strings.Repeat(",?", len(chunk)-1) + `)`
		q := `UPDATE deliveries SET available_at = ? WHERE state = 1 AND lease_owner = ? AND id IN ` + in
		if s.engine == enginePostgres {
			// Rows locked just now are being written back (a result or a
			// release): they need no extension, and waiting for them could
			// deadlock with that write, which locks the same rows in
			// another order (PostgreSQL resolves a deadlock only after
			// deadlock_timeout, 1 s, by failing one of them).
			q = `UPDATE deliveries SET available_at = ? WHERE id IN (SELECT id FROM deliveries
  WHERE state = 1 AND lease_owner = ? AND id IN ` + in + ` FOR NO KEY UPDATE SKIP LOCKED)`
		}
		res, err := s.wsql.ExecContext(ctx, s.rebind(q), args...)
		if err != nil {
			return total, fmt.Errorf("store: extend leases: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// ReleaseAllLeases makes every in-flight delivery due at now. Only for
// SQLite, where the file lock held by Open proves that no other process
// works the database: rows still in flight at start belong to a process
// that died, and need not wait for their lease to expire. Their attempt
// count is kept: the request may have gone out.
func (s *Store) ReleaseAllLeases(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE deliveries SET state = 0, available_at = ?, lease_owner = '' WHERE state = 1`, now.UnixNano())
	if res.Error != nil {
		return 0, fmt.Errorf("store: release leases: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// ReleaseOwnLeases gives back every delivery still leased to this
// instance, as if never attempted. A dispatcher calls it last when it stops,
// with nothing of its own in flight: a lease left then is one this process
// never learnt it held (a claim whose commit reached the database but whose
// answer did not) or one whose release could not be written earlier.
// Without it, such deliveries would wait for their leases to expire.
func (s *Store) ReleaseOwnLeases(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := func() error {
		tx, err := s.wsql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		res, err := tx.ExecContext(ctx, s.rebind(releaseSQL+`state = 1 AND lease_owner = ?`), now.UnixNano(), now.UnixNano(), s.instance)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if n > 0 {
			// Other instances take them at once, not on their next poll.
			if err := s.drv.outboxChanged(ctx, tx, s.instance); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		return 0, fmt.Errorf("store: release this instance's leases: %w", err)
	}
	return n, nil
}

// vacuumLockID is the PostgreSQL advisory lock held while an instance
// vacuums the outbox, so instances do not vacuum it at the same time.
const vacuumLockID = 0x52480002

// VacuumOutbox vacuums the deliveries table on PostgreSQL, unless another
// instance is doing so; it reports whether it ran. Claims and results leave
// dead row versions behind, which every claim's index scan wades through
// until a vacuum clears them. It does not ANALYZE: statistics taken right
// after a burst, with nothing pending, made the planner pick slower claim
// plans. On SQLite, which keeps no dead versions, it does nothing.
func (s *Store) VacuumOutbox(ctx context.Context) (bool, error) {
	if s.engine != enginePostgres {
		return false, nil
	}
	conn, err := s.wsql.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("store: vacuum the outbox: %w", err)
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", vacuumLockID).Scan(&got); err != nil {
		return false, fmt.Errorf("store: vacuum the outbox: %w", err)
	}
	if !got {
		return false, nil
	}
	// The lock is the session's: if the connection breaks, it goes with it.
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", vacuumLockID)
	}()
	if _, err := conn.ExecContext(ctx, "VACUUM deliveries"); err != nil {
		return false, fmt.Errorf("store: vacuum the outbox: %w", err)
	}
	return true, nil
}

// NextDue returns when the earliest open delivery becomes due, or false
// when none is open.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var at *int64
	if err := s.rdb.WithContext(ctx).Raw(`SELECT MIN(a) FROM (
		SELECT MIN(available_at) AS a FROM deliveries WHERE state = 0
		UNION ALL SELECT MIN(available_at) FROM deliveries WHERE state = 1)`).Scan(&at).Error; err != nil {
		return time.Time{}, false, fmt.Errorf("store: next due delivery: %w", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return time.Unix(0, *at), true, nil
}

// PruneEvents deletes events created before cutoff whose deliveries are all
// finished, with their deliveries and attempts (foreign-key cascade). It
// works in chunks of batch events, one short transaction each, and returns
// how many events went.
func (s *Store) PruneEvents(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 500
	}
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM events WHERE seq IN (
			SELECT e.seq FROM events e WHERE e.created_at < ?
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.state < 2)
			LIMIT ?)`, cutoff.UnixNano(), batch)
		if res.Error != nil {
			return total, fmt.Errorf("store: prune events before %s: %w", cutoff.Format(time.RFC3339), res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < int64(batch) || ctx.Err() != nil {
			if total > 0 {
				_ = s.reclaimSpace(ctx) // best effort; the delete has happened
			}
			return total, nil
		}
	}
}

// OutboxStats counts deliveries by state.
type OutboxStats struct {
	Pending, InFlight, Succeeded, Failed int64
}

// OutboxStats reports the outbox's size by state, for logs and tests.
func (s *Store) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var rows []struct {
		State int
		N     int64
	}
	if err := s.rdb.WithContext(ctx).Raw(`SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state`).Scan(&rows).Error; err != nil {
		return OutboxStats{}, fmt.Errorf("store: outbox stats: %w", err)
	}
	var st OutboxStats
	for _, r := range rows {
		switch r.State {
		case DeliveryPending:
			st.Pending = r.N
		case DeliveryInFlight:
			st.InFlight = r.N
		case DeliverySucceeded:
			st.Succeeded = r.N
		case DeliveryFailed:
			st.Failed = r.N
		}
	}
	return st, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// PushedMediaType returns the media type of the newest push event of
// repository@digest in a registry, so a delete (which Distribution reports
// without one) can carry it as ACR's does. ErrNotFound when none was seen.
func (s *Store) PushedMediaType(ctx context.Context, registryID uint, repository, digest string) (string, error) {
	var payloads [][]byte
	if err := s.rdb.WithContext(ctx).Raw(`SELECT payload FROM events WHERE registry_id = ? AND action = 'push'
		AND repository = ? AND digest = ? ORDER BY created_at DESC LIMIT 1`, registryID, repository, digest).Scan(&payloads).Error; err != nil {
		return "", fmt.Errorf("store: media type of %s@%s: %w", repository, digest, err)
	}
	if len(payloads) == 0 {
		return "", fmt.Errorf("store: media type of %s@%s: %w", repository, digest, ErrNotFound)
	}
	var p struct {
		Target struct {
			MediaType string `json:"mediaType"`
		} `json:"target"`
	}
	if err := json.Unmarshal(payloads[0], &p); err != nil || p.Target.MediaType == "" {
		return "", fmt.Errorf("store: media type of %s@%s: %w", repository, digest, ErrNotFound)
	}
	return p.Target.MediaType, nil
}
