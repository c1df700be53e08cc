package models

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// IngestResult says what became of one ingested event.
type IngestResult struct {
	EventID    string
	Duplicate  bool // an event with this id was ingested before; nothing new was queued
	Deliveries int  // deliveries queued
}

// IngestEvents writes events and, for each, one delivery per enabled webhook
// of its registry whose actions and scope match, all in one transaction: when
// it returns nil, every event and delivery is committed; otherwise none is.
// An event whose id exists already is skipped (Duplicate), so a registry
// retrying a notification does not cause a second delivery.
//
// It is the hot path of ingest, so it runs on database/sql with prepared
// statements and multi-row inserts rather than through GORM.
func (s *Store) IngestEvents(ctx context.Context, events []*Event) ([]IngestResult, error) {
	res, _, err := s.IngestEventsLeased(ctx, events, nil)
	return res, err
}

// DirectLease lets IngestEventsLeased hand new deliveries straight to the
// dispatcher that is running in this process: they are written already
// leased, as a claim would leave them, and returned, so no claim query is
// needed for them. A crash loses nothing: leases expire, and a starting
// dispatcher releases them at once.
type DirectLease struct {
	// Until is when the leases expire.
	Until time.Time
	// Limit caps the deliveries leased in all.
	Limit int
	// PerWebhook caps the deliveries of one webhook in flight, counting Busy.
	PerWebhook int
	// Busy counts each webhook's deliveries the dispatcher has in flight.
	Busy map[uint]int
}

// IngestEventsLeased is IngestEvents that, with a non-nil lease, writes up
// to its limits of the new deliveries already leased and returns them. The
// rest stay pending for claims, and their commit wakes every instance's
// dispatcher. On PostgreSQL only the webhooks this instance may serve now
// are leased (see pgDriver.leasable), so the per-webhook limit holds across
// instances.
func (s *Store) IngestEventsLeased(ctx context.Context, events []*Event, lease *DirectLease) ([]IngestResult, []ClaimedDelivery, error) {
	out := make([]IngestResult, len(events))
	now := s.now().UnixNano()
	tx, err := s.wsql.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("store: ingest %d events: %w", len(events), err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, ev := range events {
		if ev.CreatedAt == 0 {
			ev.CreatedAt = now
		}
	}
	stored, err := s.insertEvents(ctx, tx, events)
	if err != nil {
		return nil, nil, fmt.Errorf("store: ingest %d events: %w", len(events), err)
	}
	hooks := map[uint][]matcher{}
	var dels []Delivery
	for i, ev := range events {
		out[i].EventID = ev.ID
		k := eventKey{ev.RegistryID, ev.ID}
		seq, ok := stored[k]
		if !ok {
			out[i].Duplicate = true
			continue
		}
		// The same id twice in one batch: the first one counts.
		delete(stored, k)
		ev.Seq = seq
		ms, ok := hooks[ev.RegistryID]
		if !ok {
			if ms, err = s.enabledMatchers(ctx, tx, ev.RegistryID); err != nil {
				return nil, nil, fmt.Errorf("store: ingest: webhooks of registry %d: %w", ev.RegistryID, err)
			}
			hooks[ev.RegistryID] = ms
		}
		for _, m := range ms {
			if m.matches(ev) {
				dels = append(dels, Delivery{EventSeq: ev.Seq, EventID: ev.ID, WebhookID: m.id})
				out[i].Deliveries++
			}
		}
	}
	var leased []ClaimedDelivery
	if lease != nil {
		var pending []Delivery
		var direct []Delivery
		busy := make(map[uint]int, len(lease.Busy))
		for k, v := range lease.Busy {
			busy[k] = v
		}
		var ids []int64
		seen := map[uint]bool{}
		for _, d := range dels {
			if !seen[d.WebhookID] {
				seen[d.WebhookID] = true
				ids = append(ids, int64(d.WebhookID))
			}
		}
		slices.Sort(ids)
		mine, err := s.drv.leasable(ctx, s, tx, ids, now)
		if err != nil {
			return nil, nil, fmt.Errorf("store: ingest: %w", err)
		}
		for _, d := range dels {
			if (mine == nil || mine[d.WebhookID]) && len(direct) < lease.Limit && busy[d.WebhookID] < lease.PerWebhook {
				busy[d.WebhookID]++
				direct = append(direct, d)
			} else {
				pending = append(pending, d)
			}
		}
		if leased, err = s.insertDeliveries(ctx, tx, direct, now, lease.Until); err != nil {
			return nil, nil, fmt.Errorf("store: ingest: %w", err)
		}
		dels = pending
	}
	if _, err := s.insertDeliveries(ctx, tx, dels, now, time.Time{}); err != nil {
		return nil, nil, fmt.Errorf("store: ingest: %w", err)
	}
	if len(dels) > 0 {
		if err := s.drv.outboxChanged(ctx, tx, s.instance); err != nil {
			return nil, nil, fmt.Errorf("store: ingest: notify: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("store: ingest %d events: commit: %w", len(events), err)
	}
	return out, leased, nil
}

// eventKey is what makes an event unique: its id within its registry.
type eventKey struct {
	registryID uint
	id         string
}

// insertEvents writes events with multi-row INSERTs that skip ids their
// registry stored before, and returns the keys it stored with their seq.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, events []*Event) (map[eventKey]int64, error) {
	const chunk = 100
	stored := make(map[eventKey]int64, len(events))
	for rest := events; len(rest) > 0; {
		n := s.nextChunk(len(rest), chunk)
		var b strings.Builder
		b.WriteString("INSERT INTO events (id, registry_id, action, repository, tag, digest, source, payload, created_at) VALUES ")
		args := make([]any, 0, n*9)
		for i, ev := range rest[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?)")
			args = append(args, ev.ID, int64(ev.RegistryID), ev.Action, ev.Repository, ev.Tag, ev.Digest, ev.Source, ev.Payload, ev.CreatedAt)
		}
		b.WriteString(" ON CONFLICT DO NOTHING RETURNING seq, registry_id, id")
		rows, err := tx.QueryContext(ctx, s.rebind(b.String()), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k eventKey
			var seq int64
			if err := rows.Scan(&seq, &k.registryID, &k.id); err != nil {
				rows.Close()
				return nil, err
			}
			stored[k] = seq
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return stored, nil
}

// matcher is an enabled webhook reduced to what matching an event needs.
type matcher struct {
	id      uint
	actions []string
	scope   Scope
}

func (m matcher) matches(ev *Event) bool {
	for _, a := range m.actions {
		if a == ev.Action {
			return m.scope.Matches(ev.Repository, ev.Tag)
		}
	}
	return false
}

// enabledMatchers loads the enabled webhooks of a registry. A stored scope
// that no longer parses (a hand-edited database) matches nothing.
func (s *Store) enabledMatchers(ctx context.Context, tx *sql.Tx, registryID uint) ([]matcher, error) {
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT id, actions, scope FROM webhooks WHERE registry_id = ? AND status = ?`), int64(registryID), StatusEnabled)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []matcher
	for rows.Next() {
		var id uint
		var actions, scope string
		if err := rows.Scan(&id, &actions, &scope); err != nil {
			return nil, err
		}
		sc, err := ParseScope(scope)
		if err != nil {
			continue
		}
		w := Webhook{ActionsCSV: actions}
		out = append(out, matcher{id: id, actions: w.Actions(), scope: sc})
	}
	return out, rows.Err()
}

// insertDeliveries writes new deliveries with multi-row INSERTs of up to
// 100 rows: pending and due now when leaseUntil is zero, else already leased
// to this instance (in flight, attempt 1, token 1, available again at
// leaseUntil). It returns the leased rows it wrote as claims.
func (s *Store) insertDeliveries(ctx context.Context, tx *sql.Tx, dels []Delivery, now int64, leaseUntil time.Time) ([]ClaimedDelivery, error) {
	const chunk = 100
	state, attempts, availableAt, owner, token := DeliveryPending, 0, now, "", int64(0)
	leased := !leaseUntil.IsZero()
	if leased {
		state, attempts, availableAt, owner, token = DeliveryInFlight, 1, leaseUntil.UnixNano(), s.instance, 1
	}
	out := make([]ClaimedDelivery, 0, len(dels))
	for len(dels) > 0 {
		n := s.nextChunk(len(dels), chunk)
		var b strings.Builder
		b.WriteString("INSERT INTO deliveries (event_seq, event_id, webhook_id, state, attempts, available_at, lease_owner, lease_token, created_at, updated_at) VALUES ")
		args := make([]any, 0, n*10)
		for i, d := range dels[:n] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
			args = append(args, d.EventSeq, d.EventID, int64(d.WebhookID), state, attempts, availableAt, owner, token, now, now)
		}
		if !leased {
			// Pending rows go to the claims; nobody needs their ids now.
			if _, err := tx.ExecContext(ctx, s.rebind(b.String()), args...); err != nil {
				return nil, fmt.Errorf("insert %d deliveries: %w", n, err)
			}
			dels = dels[n:]
			continue
		}
		b.WriteString(" RETURNING id, event_seq, event_id, webhook_id")
		rows, err := tx.QueryContext(ctx, s.rebind(b.String()), args...)
		if err != nil {
			return nil, fmt.Errorf("insert %d deliveries: %w", n, err)
		}
		for rows.Next() {
			c := ClaimedDelivery{Attempt: attempts, Token: token, Until: leaseUntil}
			if err := rows.Scan(&c.ID, &c.EventSeq, &c.EventID, &c.WebhookID); err != nil {
				rows.Close()
				return nil, fmt.Errorf("insert deliveries: %w", err)
			}
			out = append(out, c)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("insert deliveries: %w", err)
		}
		dels = dels[n:]
	}
	return out, nil
}

// QueuePing writes a ping event for webhook w and its delivery in one
// transaction. A ping is delivered whatever the webhook's status and scope.
func (s *Store) QueuePing(ctx context.Context, w *Webhook, ev *Event) (*Delivery, error) {
	now := s.now().UnixNano()
	ev.CreatedAt = now
	d := &Delivery{EventID: ev.ID, WebhookID: w.ID, AvailableAt: now, CreatedAt: now, UpdatedAt: now}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(ev).Error; err != nil {
			return err
		}
		d.EventSeq = ev.Seq
		if err := tx.Create(d).Error; err != nil {
			return err
		}
		return s.outboxChangedGorm(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("store: queue ping for webhook %q: %w", w.Name, err)
	}
	return d, nil
}

// DeliveryRow is a delivery with its event, for the webhook's events table.
type DeliveryRow struct {
	Delivery
	Action     string
	Repository string
	Tag        string
	Digest     string
	Timestamp  int64 // event created_at, unix ns
}

// Image mirrors Event.Image.
func (r *DeliveryRow) Image() string {
	e := Event{Repository: r.Repository, Tag: r.Tag, Digest: r.Digest}
	return e.Image()
}

// ListDeliveries returns one page of a webhook's deliveries, newest first,
// and the total count.
func (s *Store) ListDeliveries(ctx context.Context, webhookID uint, offset, limit int) ([]DeliveryRow, int64, error) {
	var total int64
	if err := s.db.WithContext(ctx).Model(&Delivery{}).Where("webhook_id = ?", webhookID).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("store: count deliveries: %w", err)
	}
	var rows []DeliveryRow
	err := s.db.WithContext(ctx).Table("deliveries d").
		Select("d.*, e.action, e.repository, e.tag, e.digest, e.created_at AS timestamp").
		Joins("JOIN events e ON e.seq = d.event_seq").
		Where("d.webhook_id = ?", webhookID).
		Order("d.created_at DESC, d.id DESC").Offset(offset).Limit(limit).Scan(&rows).Error
	if err != nil {
		return nil, 0, fmt.Errorf("store: list deliveries: %w", err)
	}
	return rows, total, nil
}

// GetDelivery returns a delivery of a webhook with its event.
func (s *Store) GetDelivery(ctx context.Context, webhookID, id uint) (*Delivery, error) {
	var d Delivery
	if err := s.db.WithContext(ctx).Preload("Event").Where("webhook_id = ?", webhookID).Take(&d, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get delivery %d", id))
	}
	return &d, nil
}

// ListAttempts returns the attempts of a delivery, oldest first.
func (s *Store) ListAttempts(ctx context.Context, deliveryID uint) ([]Attempt, error) {
	var out []Attempt
	if err := s.db.WithContext(ctx).Where("delivery_id = ?", deliveryID).Order("number").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list attempts: %w", err)
	}
	return out, nil
}

// AttemptWithEvent is an attempt joined with its event's payload, the shape
// ARM's listEvents needs.
type AttemptWithEvent struct {
	Attempt
	Payload []byte
}

// ListWebhookAttempts returns a page of a webhook's attempts, newest first.
func (s *Store) ListWebhookAttempts(ctx context.Context, webhookID uint, offset, limit int) ([]AttemptWithEvent, error) {
	var rows []AttemptWithEvent
	err := s.db.WithContext(ctx).Table("attempts a").Select("a.*, e.payload").
		Joins("JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.seq = d.event_seq").Where("a.webhook_id = ?", webhookID).
		Order("a.started_at DESC, a.id DESC").Offset(offset).Limit(limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: list attempts of webhook %d: %w", webhookID, err)
	}
	return rows, nil
}

// Redeliver queues a new delivery of a past delivery's event to the same
// webhook, due now: the "play it again" ACR lacks. The payload, and so the
// event id receivers deduplicate by, is the original one. While a delivery
// of that event to the webhook is still pending or in flight it refuses
// with ErrDeliveryOpen: a second one would only send the event twice.
// It returns the event's id.
func (s *Store) Redeliver(ctx context.Context, webhookID, deliveryID uint) (string, error) {
	var orig Delivery
	if err := s.db.WithContext(ctx).Where("webhook_id = ?", webhookID).Take(&orig, deliveryID).Error; err != nil {
		return "", notFound(err, fmt.Sprintf("redeliver delivery %d", deliveryID))
	}
	if _, err := s.RedeliverEvents(ctx, webhookID, []string{orig.EventID}); err != nil {
		return "", err
	}
	return orig.EventID, nil
}

// outboxChangedGorm is driver.outboxChanged inside a GORM transaction.
func (s *Store) outboxChangedGorm(ctx context.Context, tx *gorm.DB) error {
	if s.engine != enginePostgres {
		return nil
	}
	return tx.WithContext(ctx).Exec("SELECT pg_notify('"+channelOutbox+"', ?)", s.instance).Error
}
