package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrDeliveryOpen is returned when an event asked to be sent again still
// has a delivery to that webhook that is pending or in flight.
var ErrDeliveryOpen = errors.New("a delivery of the event is still pending or in flight")

// OpenDeliveryError names the events whose deliveries are still open.
type OpenDeliveryError struct{ EventIDs []string }

func (e *OpenDeliveryError) Error() string {
	return fmt.Sprintf("event %s is still being delivered (pending or in flight); redeliver it once that delivery has finished",
		strings.Join(e.EventIDs, ", "))
}

// Is makes errors.Is(err, ErrDeliveryOpen) true.
func (e *OpenDeliveryError) Is(target error) bool { return target == ErrDeliveryOpen }

// MissingEventsError names event ids that were never delivered to the
// webhook (unknown, pruned, or another webhook's).
type MissingEventsError struct{ EventIDs []string }

func (e *MissingEventsError) Error() string {
	return fmt.Sprintf("no delivery of event %s to this webhook is on record", strings.Join(e.EventIDs, ", "))
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *MissingEventsError) Is(target error) bool { return target == ErrNotFound }

// MaxRedeliverIDs caps the event ids of one RedeliverEvents call.
const MaxRedeliverIDs = 1000

// RedeliverEvents queues one new delivery to the webhook for each given
// event (duplicates count once), due now, with the original payload and id.
// All or nothing, in one transaction: an id with no delivery to this
// webhook on record fails with a *MissingEventsError (ErrNotFound), one
// whose delivery is still pending or in flight with an *OpenDeliveryError
// (ErrDeliveryOpen). It returns how many deliveries it queued.
func (s *Store) RedeliverEvents(ctx context.Context, webhookID uint, eventIDs []string) (int, error) {
	ids := uniqueStrings(eventIDs)
	if len(ids) == 0 {
		return 0, nil
	}
	if len(ids) > MaxRedeliverIDs {
		return 0, fmt.Errorf("store: redeliver: at most %d event ids at once, got %d", MaxRedeliverIDs, len(ids))
	}
	now := s.now().UnixNano()
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Per event id: the lowest state of its deliveries to the webhook
		// (open < finished) and its key. A webhook belongs to one registry,
		// where event ids are unique, so an id names one event here.
		state := map[string]int{}
		seqs := map[string]int64{}
		for rest := ids; len(rest) > 0; {
			k := min(len(rest), 500)
			q := `SELECT event_id, MIN(state), MAX(event_seq) FROM deliveries WHERE webhook_id = ? AND event_id IN (?` +
				strings.Repeat(",?", k-1) + `) GROUP BY event_id`
			args := []any{int64(webhookID)}
			for _, id := range rest[:k] {
				args = append(args, id)
			}
			rows, err := tx.QueryContext(ctx, s.rebind(q), args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				var st int
				var seq int64
				if err := rows.Scan(&id, &st, &seq); err != nil {
					rows.Close()
					return err
				}
				state[id], seqs[id] = st, seq
			}
			if err := rows.Close(); err != nil {
				return err
			}
			rest = rest[k:]
		}
		var missing, open []string
		for _, id := range ids {
			st, ok := state[id]
			switch {
			case !ok:
				missing = append(missing, id)
			case st < DeliverySucceeded:
				open = append(open, id)
			}
		}
		if len(missing) > 0 {
			return &MissingEventsError{EventIDs: missing}
		}
		if len(open) > 0 {
			return &OpenDeliveryError{EventIDs: open}
		}
		dels := make([]Delivery, len(ids))
		for i, id := range ids {
			dels[i] = Delivery{EventSeq: seqs[id], EventID: id, WebhookID: webhookID}
		}
		if _, err := s.insertDeliveries(ctx, tx, dels, now, time.Time{}); err != nil {
			return err
		}
		n = len(dels)
		return s.drv.outboxChanged(ctx, tx, s.instance)
	})
	if err != nil {
		return 0, fmt.Errorf("store: redeliver %d events to webhook %d: %w", len(ids), webhookID, err)
	}
	return n, nil
}

// RedeliverFailedSince queues one new delivery, due now, for each event
// whose latest delivery to the webhook failed at or after since: the
// receiver is fixed, replay what it missed. Events whose latest delivery
// succeeded or is still open are left alone, and so are pings (tests, not
// events). It returns how many deliveries it queued.
func (s *Store) RedeliverFailedSince(ctx context.Context, webhookID uint, since time.Time) (int, error) {
	now := s.now().UnixNano()
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO deliveries (event_seq, event_id, webhook_id, state, attempts, available_at, created_at, updated_at)
			SELECT d.event_seq, d.event_id, d.webhook_id, 0, 0, ?, ?, ? FROM deliveries d JOIN events e ON e.seq = d.event_seq
			WHERE d.id IN (SELECT MAX(id) FROM deliveries WHERE webhook_id = ? GROUP BY event_seq)
			  AND d.state = ? AND d.updated_at >= ? AND e.action <> ?
			ORDER BY d.id`),
			now, now, now, int64(webhookID), DeliveryFailed, since.UnixNano(), ActionPing)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return s.drv.outboxChanged(ctx, tx, s.instance)
	})
	if err != nil {
		return 0, fmt.Errorf("store: redeliver failed deliveries of webhook %d: %w", webhookID, err)
	}
	return int(n), nil
}

// inTx runs fn in a write transaction on the single write connection.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.wsql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func uniqueStrings(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
