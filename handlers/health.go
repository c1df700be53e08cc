package handlers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// failingBelow is the success rate under which a webhook is marked failing.
const failingBelow = 0.8

// healthWindow is one span the portal charts: n buckets of width.
type healthWindow struct {
	name        string
	n           int
	width       time.Duration
	bucketLabel string
}

var (
	window24h = healthWindow{"24 hours", 24, time.Hour, "hour"}
	window7d  = healthWindow{"7 days", 28, 6 * time.Hour, "6 hours"}
)

// Health figures are counted from the deliveries table on every view, but
// only for the recent buckets: a bucket that ended more than healthSettle
// ago hardly changes any more (its deliveries have finished their
// retries), so its counts are kept in memory for healthTTL and then read
// again. A page of a webhook with 100,000 deliveries in the week then
// counts a few thousand rows, not 100,000. The price: a delivery that
// finishes in an old bucket shows up at most healthTTL late.
const (
	healthSettle = 15 * time.Minute
	healthTTL    = 5 * time.Minute
	// healthCacheMax bounds the cache; past it, it starts again empty.
	healthCacheMax = 20_000
)

type healthKey struct {
	id    uint
	width time.Duration
}

// sealedHealth is the counts of a webhook's settled buckets from start
// on, one per width, read at fetched.
type sealedHealth struct {
	start   time.Time
	buckets []models.HealthBucket
	fetched time.Time
}

func (s *sealedHealth) end(width time.Duration) time.Time {
	return s.start.Add(time.Duration(len(s.buckets)) * width)
}

// healthCache holds the settled buckets of recently viewed webhooks.
type healthCache struct {
	mu sync.Mutex
	m  map[healthKey]*sealedHealth
}

func newHealthCache() *healthCache { return &healthCache{m: map[healthKey]*sealedHealth{}} }

// health reads the window's health of the given webhooks, ending with the
// current bucket.
func (h *Handler) health(ctx context.Context, ids []uint, w healthWindow) (map[uint]views.HealthVM, error) {
	now := h.Store.Now()
	// Buckets end on a whole bucket, so a bar is a clock hour (or six).
	end := now.Truncate(w.width).Add(w.width)
	start := end.Add(-time.Duration(w.n) * w.width)
	// Settled buckets: those that ended healthSettle ago or earlier.
	sealedEnd := now.Add(-healthSettle).Truncate(w.width)
	if sealedEnd.Before(start) {
		sealedEnd = start
	}
	nLive := int(end.Sub(sealedEnd) / w.width)
	nSealed := w.n - nLive

	sealed := make(map[uint][]models.HealthBucket, len(ids))
	if nSealed > 0 {
		// Webhooks whose settled buckets are cached and fresh need at most
		// the buckets that settled since; the others all of them.
		var cold []uint
		gaps := map[time.Time][]uint{}
		hc := h.healthCache
		hc.mu.Lock()
		for _, id := range ids {
			c := hc.m[healthKey{id, w.width}]
			if c == nil || now.Sub(c.fetched) > healthTTL || c.start.After(start) || c.end(w.width).Before(start) {
				cold = append(cold, id)
				continue
			}
			gapStart := c.end(w.width)
			if gapStart.Before(sealedEnd) {
				gaps[gapStart] = append(gaps[gapStart], id)
			}
		}
		hc.mu.Unlock()
		if len(cold) > 0 {
			if _, err := h.fillSealed(ctx, cold, start, sealedEnd, w.width, now, true); err != nil {
				return nil, err
			}
		}
		for from, group := range gaps {
			if _, err := h.fillSealed(ctx, group, from, sealedEnd, w.width, now, false); err != nil {
				return nil, err
			}
		}
		var missed []uint
		hc.mu.Lock()
		for _, id := range ids {
			c := hc.m[healthKey{id, w.width}]
			if c == nil || c.start.After(start) || c.end(w.width).Before(sealedEnd) {
				// Changed by a concurrent request meanwhile: read it directly.
				missed = append(missed, id)
				continue
			}
			off := int(start.Sub(c.start) / w.width)
			sealed[id] = append([]models.HealthBucket(nil), c.buckets[off:off+nSealed]...)
		}
		hc.mu.Unlock()
		if len(missed) > 0 {
			got, err := h.Store.WebhookHealth(ctx, missed, sealedEnd, nSealed, w.width)
			if err != nil {
				return nil, fmt.Errorf("handlers: health: %w", err)
			}
			for _, id := range missed {
				sealed[id] = got[id].Buckets
			}
		}
		if err := h.recheckOpen(ctx, sealed, cold, start, sealedEnd, w.width, now); err != nil {
			return nil, err
		}
	}
	live, err := h.Store.WebhookHealth(ctx, ids, end, nLive, w.width)
	if err != nil {
		return nil, fmt.Errorf("handlers: health: %w", err)
	}
	out := make(map[uint]views.HealthVM, len(ids))
	for _, id := range ids {
		st := &models.Health{Buckets: append(sealed[id], live[id].Buckets...)}
		for _, b := range st.Buckets {
			st.Succeeded += b.Succeeded
			st.Failed += b.Failed
			st.Open += b.Open
		}
		out[id] = healthVM(st, w)
	}
	return out, nil
}

// recheckOpen keeps cached settled buckets true to deliveries that were
// still open when they were read: a delivery counts in the bucket it was
// queued in, and one retrying for hours finishes long after its bucket
// settled. Those buckets are the only cached figures that can change (new
// deliveries are queued now, into a live bucket), and an open delivery can
// only finish, so the cached open count of [start, sealedEnd) is checked
// against the store (an index-only count of the open rows alone); where
// they differ the buckets are read again and replace the cache entry. A
// result recorded by any instance thus shows on the next view, not up to
// healthTTL later. Webhooks just read (fresh) and those with nothing open
// in their settled buckets cost nothing.
func (h *Handler) recheckOpen(ctx context.Context, sealed map[uint][]models.HealthBucket, fresh []uint, start, sealedEnd time.Time, width time.Duration, now time.Time) error {
	cached := map[uint]int64{}
	var suspect []uint
	for id, bs := range sealed {
		var open int64
		for _, b := range bs {
			open += b.Open
		}
		if open > 0 && !slices.Contains(fresh, id) {
			cached[id] = open
			suspect = append(suspect, id)
		}
	}
	if len(suspect) == 0 {
		return nil
	}
	open, err := h.Store.OpenDeliveries(ctx, suspect, start, sealedEnd)
	if err != nil {
		return fmt.Errorf("handlers: health: %w", err)
	}
	var stale []uint
	for _, id := range suspect {
		if open[id] != cached[id] {
			stale = append(stale, id)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	got, err := h.fillSealed(ctx, stale, start, sealedEnd, width, now, true)
	if err != nil {
		return err
	}
	for _, id := range stale {
		// A copy: the cache keeps the read buckets and appends to them.
		sealed[id] = append([]models.HealthBucket(nil), got[id].Buckets...)
	}
	return nil
}

// fillSealed reads the buckets [from, to) of ids and stores them in the
// cache: as a new entry (fresh) or appended to the existing one, whose
// oldest buckets, out of every window now, are dropped. It returns what it
// read, which the cache now holds.
func (h *Handler) fillSealed(ctx context.Context, ids []uint, from, to time.Time, width time.Duration, now time.Time, fresh bool) (map[uint]*models.Health, error) {
	n := int(to.Sub(from) / width)
	got, err := h.Store.WebhookHealth(ctx, ids, to, n, width)
	if err != nil {
		return nil, fmt.Errorf("handlers: health: %w", err)
	}
	hc := h.healthCache
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if len(hc.m) > healthCacheMax {
		hc.m = map[healthKey]*sealedHealth{}
	}
	for _, id := range ids {
		k := healthKey{id, width}
		c := hc.m[k]
		if fresh {
			hc.m[k] = &sealedHealth{start: from, buckets: got[id].Buckets, fetched: now}
			continue
		}
		if c == nil || !c.end(width).Equal(from) {
			delete(hc.m, k) // changed meanwhile; the next view reads it afresh
			continue
		}
		c.buckets = append(c.buckets, got[id].Buckets...)
		// Keep at most a week of hourly buckets.
		if drop := len(c.buckets) - 7*24; drop > 0 {
			c.buckets = c.buckets[drop:]
			c.start = c.start.Add(time.Duration(drop) * width)
		}
	}
	return got, nil
}

func healthVM(st *models.Health, w healthWindow) views.HealthVM {
	vm := views.HealthVM{Window: w.name, BucketLabel: w.bucketLabel, Succeeded: st.Succeeded, Failed: st.Failed, Open: st.Open}
	if rate, ok := st.SuccessRate(); ok {
		// Floor, so 99.6% is not shown as a perfect 100%.
		vm.Rate = fmt.Sprintf("%d%%", int(rate*100))
		vm.Failing = rate < failingBelow
	}
	for _, b := range st.Buckets {
		vm.Bars = append(vm.Bars, views.HealthBar{Succeeded: b.Succeeded, Failed: b.Failed, Open: b.Open})
	}
	return vm
}
