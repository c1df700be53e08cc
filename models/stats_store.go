package models

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OutboxBacklog returns how many deliveries are open (pending or in
// flight) and when the oldest of them was queued; ok is false when none is
// open. It is what the metrics endpoint reads at every scrape, so it stays
// cheap with a large backlog: the count and MIN(id) come from
// idx_delivery_due alone (ids grow with created_at), then one primary-key
// lookup.
func (s *Store) OutboxBacklog(ctx context.Context) (open int64, oldest time.Time, ok bool, err error) {
	var row struct {
		N     int64
		First *int64
	}
	if err := s.rdb.WithContext(ctx).Raw(`SELECT COUNT(*) AS n, MIN(id) AS first FROM deliveries WHERE state IN (?, ?)`,
		DeliveryPending, DeliveryInFlight).Scan(&row).Error; err != nil {
		return 0, time.Time{}, false, fmt.Errorf("store: outbox backlog: %w", err)
	}
	if row.First == nil {
		return row.N, time.Time{}, false, nil
	}
	var at []int64
	if err := s.rdb.WithContext(ctx).Raw(`SELECT created_at FROM deliveries WHERE id = ?`, *row.First).Scan(&at).Error; err != nil {
		return 0, time.Time{}, false, fmt.Errorf("store: outbox backlog: %w", err)
	}
	if len(at) == 0 {
		// Finished and pruned between the two reads: the next scrape sees it.
		return row.N, time.Time{}, false, nil
	}
	return row.N, time.Unix(0, at[0]), true, nil
}

// HealthBucket counts one slice of a health window's deliveries by state.
type HealthBucket struct {
	Start     time.Time
	Succeeded int64
	Failed    int64
	Open      int64
}

// Health is a webhook's deliveries over a window (the last 24 hours on the
// blade; 24 hours and 7 days on its page), in equal buckets, oldest first.
// A delivery counts in the bucket it was queued in, with its state now.
type Health struct {
	Succeeded int64
	Failed    int64
	Open      int64
	Buckets   []HealthBucket
}

// Total is every delivery of the window.
func (h *Health) Total() int64 { return h.Succeeded + h.Failed + h.Open }

// SuccessRate is succeeded / finished in [0,1], and false while no delivery
// of the window has finished.
func (h *Health) SuccessRate() (float64, bool) {
	done := h.Succeeded + h.Failed
	if done == 0 {
		return 0, false
	}
	return float64(h.Succeeded) / float64(done), true
}

// WebhookHealth returns the health of each given webhook over the window
// that ends at end and has n buckets of width each. Every id gets an
// entry, empty when it had no deliveries. One grouped query over
// idx_delivery_health (webhook_id, state, created_at), which answers it
// from the index alone: the state list makes it one range per state.
func (s *Store) WebhookHealth(ctx context.Context, ids []uint, end time.Time, n int, width time.Duration) (map[uint]*Health, error) {
	out := make(map[uint]*Health, len(ids))
	if len(ids) == 0 || n <= 0 || width <= 0 {
		return out, nil
	}
	start := end.Add(-time.Duration(n) * width)
	for _, id := range ids {
		h := &Health{Buckets: make([]HealthBucket, n)}
		for i := range h.Buckets {
			h.Buckets[i].Start = start.Add(time.Duration(i) * width)
		}
		out[id] = h
	}
	var rows []struct {
		WebhookID uint
		B         int64
		State     int
		N         int64
	}
	// GROUP BY ordinals: PostgreSQL does not see two parameterised
	// expressions as the same one.
	err := s.rdb.WithContext(ctx).Raw(`SELECT webhook_id, (created_at - ?) / ? AS b, state, COUNT(*) AS n
		FROM deliveries WHERE webhook_id IN ? AND state IN ? AND created_at >= ? AND created_at < ?
		GROUP BY 1, 2, 3`, start.UnixNano(), int64(width), ids,
		[]int{DeliveryPending, DeliveryInFlight, DeliverySucceeded, DeliveryFailed}, start.UnixNano(), end.UnixNano()).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: webhook health: %w", err)
	}
	for _, r := range rows {
		h := out[r.WebhookID]
		if h == nil {
			continue
		}
		b := &h.Buckets[min(max(int(r.B), 0), n-1)]
		switch r.State {
		case DeliverySucceeded:
			h.Succeeded += r.N
			b.Succeeded += r.N
		case DeliveryFailed:
			h.Failed += r.N
			b.Failed += r.N
		default:
			h.Open += r.N
			b.Open += r.N
		}
	}
	return out, nil
}

// DeliveriesMoving reports whether the webhook has a delivery that is
// pending or in flight and not held (auto-disabled): one whose state will
// change without anyone acting, which the portal polls for. One seek on
// idx_delivery_webhook_due (webhook_id, state, available_at).
func (s *Store) DeliveriesMoving(ctx context.Context, webhookID uint) (bool, error) {
	var got []int
	if err := s.rdb.WithContext(ctx).Raw(`SELECT 1 FROM deliveries WHERE webhook_id = ? AND state IN (?, ?) AND available_at <> ? LIMIT 1`,
		webhookID, DeliveryPending, DeliveryInFlight, HeldAvailableAt).Scan(&got).Error; err != nil {
		return false, fmt.Errorf("store: open deliveries of webhook %d: %w", webhookID, err)
	}
	return len(got) > 0, nil
}

// OpenDeliveries counts, per given webhook, the deliveries queued in
// [from, to) that are still pending or in flight (held ones included);
// webhooks with none are absent. Index only, on idx_delivery_health
// (webhook_id, state, created_at): it reads the open rows alone. The
// unary plus keeps SQLite off idx_delivery_webhook (webhook_id,
// created_at), which it otherwise picks for the time range and which
// walks every delivery of the week (8 ms against 0.2 ms with 100,000).
func (s *Store) OpenDeliveries(ctx context.Context, ids []uint, from, to time.Time) (map[uint]int64, error) {
	out := map[uint]int64{}
	if len(ids) == 0 || !from.Before(to) {
		return out, nil
	}
	var rows []struct {
		WebhookID uint
		N         int64
	}
	if err := s.rdb.WithContext(ctx).Raw(`SELECT webhook_id, COUNT(*) AS n FROM deliveries
		WHERE webhook_id IN ? AND state IN ? AND +created_at >= ? AND +created_at < ? GROUP BY webhook_id`,
		ids, []int{DeliveryPending, DeliveryInFlight}, from.UnixNano(), to.UnixNano()).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("store: open deliveries: %w", err)
	}
	for _, r := range rows {
		out[r.WebhookID] = r.N
	}
	return out, nil
}

// Results a delivery list can be filtered by.
const (
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultPending   = "pending"
)

// DeliveryFilter narrows a webhook's events table. Zero fields match all.
type DeliveryFilter struct {
	// Result is ResultSucceeded, ResultFailed or ResultPending (queued or
	// being sent, retries included).
	Result string
	// Action is an event action (push, delete, ..., ping).
	Action string
	// Repository matches the event's repository exactly.
	Repository string
}

// Cursor is a position in a webhook's events table, newest first: the
// delivery's created_at (unix ns) and id. Its text form is "ns.id".
type Cursor struct {
	CreatedAt int64
	ID        uint
}

// ParseCursor reads the text form of a Cursor; ok is false for anything
// else (the caller then shows the first page).
func ParseCursor(s string) (Cursor, bool) {
	ns, id, found := strings.Cut(s, ".")
	if !found {
		return Cursor{}, false
	}
	n, err1 := strconv.ParseInt(ns, 10, 64)
	i, err2 := strconv.ParseUint(id, 10, 64)
	if err1 != nil || err2 != nil || n < 0 {
		return Cursor{}, false
	}
	return Cursor{CreatedAt: n, ID: uint(i)}, true
}

// String is the text form.
func (c Cursor) String() string {
	return strconv.FormatInt(c.CreatedAt, 10) + "." + strconv.FormatUint(uint64(c.ID), 10)
}

// DeliveryPage is one page of a webhook's events table.
type DeliveryPage struct {
	Rows []DeliveryRow
	// Newer and Older are the cursors of the neighbouring pages; nil at
	// either end.
	Newer, Older *Cursor
	// Partial is set when a filter on the event (action, repository) ran
	// out of its search window before the page was full: the page holds
	// what matched among FilterScan deliveries, and Older (or Newer) goes
	// on searching from there.
	Partial bool
}

// FilterScan is how many deliveries one page of a filter on the event's
// action or repository looks through at most, so a filter that matches
// little or nothing costs a few milliseconds and not a walk over the whole
// history.
const FilterScan = 2000

// PageDeliveries returns up to limit deliveries of a webhook that match f,
// newest first, with keyset paging: after the cursor older (the page
// below it), or before newer (the page above it), or the newest when both
// are nil. Its cost does not grow with the depth of the page, unlike
// OFFSET: the query starts at the cursor in idx_delivery_webhook, or in
// idx_delivery_health for a result filter. A filter
// on the event's action or repository looks through at most FilterScan
// deliveries per page (see DeliveryPage.Partial).
func (s *Store) PageDeliveries(ctx context.Context, webhookID uint, f DeliveryFilter, older, newer *Cursor, limit int) (DeliveryPage, error) {
	if limit <= 0 {
		limit = 20
	}
	// The deliveries side: webhook, result, cursor, order.
	inner := s.rdb.WithContext(ctx).Table("deliveries").Where("webhook_id = ?", webhookID)
	switch f.Result {
	case ResultSucceeded:
		inner = inner.Where("state = ?", DeliverySucceeded)
	case ResultFailed:
		inner = inner.Where("state = ?", DeliveryFailed)
	case ResultPending:
		inner = inner.Where("state IN ?", []int{DeliveryPending, DeliveryInFlight})
	}
	backwards := false
	order := "created_at DESC, id DESC"
	switch {
	case older != nil:
		// (created_at, id) < cursor, written so the first term is a range
		// on the index in both SQLite and PostgreSQL.
		inner = inner.Where("created_at <= ? AND (created_at < ? OR id < ?)", older.CreatedAt, older.CreatedAt, older.ID)
	case newer != nil:
		inner = inner.Where("created_at >= ? AND (created_at > ? OR id > ?)", newer.CreatedAt, newer.CreatedAt, newer.ID)
		order = "created_at ASC, id ASC"
		backwards = true
	}
	inner = inner.Order(order)
	eventFilter := f.Action != "" || f.Repository != ""
	from := inner.Select("*")
	if eventFilter {
		from = from.Limit(FilterScan)
	}
	q := s.rdb.WithContext(ctx).Table("(?) AS d", from).
		Select("d.*, e.action, e.repository, e.tag, e.digest, e.created_at AS timestamp").
		Joins("JOIN events e ON e.seq = d.event_seq")
	if f.Action != "" {
		q = q.Where("e.action = ?", f.Action)
	}
	if f.Repository != "" {
		q = q.Where("e.repository = ?", f.Repository)
	}
	q = q.Order(strings.ReplaceAll(strings.ReplaceAll(order, "created_at", "d.created_at"), "id ", "d.id "))
	var rows []DeliveryRow
	if err := q.Limit(limit + 1).Scan(&rows).Error; err != nil {
		return DeliveryPage{}, fmt.Errorf("store: page deliveries of webhook %d: %w", webhookID, err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	p := DeliveryPage{Rows: rows}
	// The search window ran out before the page was full: continue from
	// its last delivery.
	var scanEnd *Cursor
	if eventFilter && !more {
		var edge []Cursor
		if err := inner.Select("created_at, id").Offset(FilterScan - 1).Limit(1).Scan(&edge).Error; err != nil {
			return DeliveryPage{}, fmt.Errorf("store: page deliveries of webhook %d: %w", webhookID, err)
		}
		if len(edge) == 1 {
			scanEnd, p.Partial = &edge[0], true
		}
	}
	if backwards {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	var first, last *Cursor
	if len(rows) > 0 {
		first = &Cursor{CreatedAt: rows[0].CreatedAt, ID: rows[0].ID}
		last = &Cursor{CreatedAt: rows[len(rows)-1].CreatedAt, ID: rows[len(rows)-1].ID}
	}
	switch {
	case older != nil:
		p.Newer = first
		if p.Newer == nil {
			// An empty page (a filter found nothing in its window): Newer
			// shows what is above it, the cursor's own row included.
			p.Newer = &Cursor{CreatedAt: older.CreatedAt, ID: older.ID - 1}
		}
		if more {
			p.Older = last
		} else if scanEnd != nil {
			p.Older = scanEnd
		}
	case newer != nil:
		p.Older = last
		if p.Older == nil {
			p.Older = &Cursor{CreatedAt: newer.CreatedAt, ID: newer.ID + 1}
		}
		if more {
			p.Newer = first
		} else if scanEnd != nil {
			p.Newer = scanEnd
		}
	default:
		if more {
			p.Older = last
		} else if scanEnd != nil {
			p.Older = scanEnd
		}
	}
	return p, nil
}

// WebhookSummary is what the blade shows of a webhook: no secrets, so
// nothing to decrypt.
type WebhookSummary struct {
	ID         uint
	Name       string
	Status     string
	Scope      string
	ActionsCSV string `gorm:"column:actions"`
	// AutoDisabledAt and AutoDisabledReason are as in Webhook.
	AutoDisabledAt     int64
	AutoDisabledReason string
}

// Actions returns the trigger actions.
func (w *WebhookSummary) Actions() []string { return (&Webhook{ActionsCSV: w.ActionsCSV}).Actions() }

// ListWebhookSummaries returns a page of a registry's webhooks sorted by
// name (ignoring case), without their secrets. limit <= 0 means all.
func (s *Store) ListWebhookSummaries(ctx context.Context, registryID uint, offset, limit int) ([]WebhookSummary, error) {
	q := s.rdb.WithContext(ctx).Model(&Webhook{}).Select("id, name, status, scope, actions, auto_disabled_at, auto_disabled_reason").
		Where("registry_id = ?", registryID).Order("LOWER(name), id").Offset(offset)
	if limit > 0 {
		q = q.Limit(limit)
	}
	var out []WebhookSummary
	if err := q.Scan(&out).Error; err != nil {
		return nil, fmt.Errorf("store: list webhooks of registry %d: %w", registryID, err)
	}
	return out, nil
}

// NewestDeliveries returns the newest delivery of each given webhook (by
// created_at, then id), keyed by webhook id; webhooks that never delivered
// are absent. One index seek per webhook, whatever its history.
func (s *Store) NewestDeliveries(ctx context.Context, ids []uint) (map[uint]LastDelivery, error) {
	out := map[uint]LastDelivery{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []LastDelivery
	err := s.rdb.WithContext(ctx).Raw(`SELECT d.webhook_id, d.state, d.last_status_code, d.last_reason, d.last_error
		FROM webhooks w JOIN deliveries d ON d.id = (SELECT x.id FROM deliveries x WHERE x.webhook_id = w.id
			ORDER BY x.created_at DESC, x.id DESC LIMIT 1)
		WHERE w.id IN ?`, ids).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: newest deliveries: %w", err)
	}
	for _, r := range rows {
		out[r.WebhookID] = r
	}
	return out, nil
}
