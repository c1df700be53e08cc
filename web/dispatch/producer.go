package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// The producer: one loop per instance that claims due deliveries when
// kicked (an ingest here, a notification from another instance), when
// capacity frees up, when a retry comes due, or on the poll tick, and hands
// them to the executor (work). Tests drive one claim with runOnce.

// loop claims whenever kicked, whenever capacity frees up, when the next
// retry comes due, and at least every PollInterval.
func (d *Dispatcher) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastClaim time.Time
	lastEmpty, remote := false, false
	for {
		var n int
		var err error
		if d.worthClaiming() {
			if w := d.pace(remote && lastEmpty) - time.Since(lastClaim); w > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(w):
				}
			}
			lastClaim = time.Now()
			n, err = d.runOnce(ctx)
			lastEmpty = err == nil && n == 0
			if err != nil && ctx.Err() == nil {
				d.log.Error("dispatch: claim failed", "error", err)
			}
		}
		wait := d.cfg.PollInterval
		if err == nil && n == 0 && d.free() > 0 {
			if at, ok, err := d.store.NextDue(ctx); err == nil && ok {
				if w := at.Sub(d.now()); w > 0 && w < wait {
					wait = w
				}
			}
		} else if err == nil && n > 0 && d.worthClaiming() {
			// A full claim may have left more due rows behind.
			wait = 0
		}
		remote = false
		if wait == 0 {
			select {
			case <-ctx.Done():
				return
			default:
				continue
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-d.remote:
			remote = true
		case <-d.freed:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// pace is the least time between the previous claim and the next. A claim
// costs about the same for a few rows as for a few hundred, so under load,
// waiting a moment claims many rows at once: with a quarter of the capacity
// or more in flight, claims are ClaimInterval apart; with less, the pause
// shrinks in proportion, down to none when nothing is in flight, so a
// trickle of events goes out at once. A wake-up from another instance
// right after a claim that found nothing waits at least a fifth of the
// interval: on PostgreSQL every ingest of every instance wakes every
// producer, and an instance whose webhooks another serves would otherwise
// claim in vain on each.
func (d *Dispatcher) pace(vain bool) time.Duration {
	d.mu.Lock()
	leased, full := d.leased, max(d.capacity/4, 1)
	d.mu.Unlock()
	p := d.cfg.ClaimInterval * time.Duration(min(leased, full)) / time.Duration(full)
	if vain {
		p = max(p, d.cfg.ClaimInterval/5)
	}
	return p
}

func (d *Dispatcher) free() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.capacity - d.leased
}

// worthClaiming says whether a claim now is worth a write transaction:
// when nothing is leased (new work goes out at once), or when at least a
// quarter of the capacity is free. In between, the leased work finishing
// will wake the loop again, so claims go in batches under load.
func (d *Dispatcher) worthClaiming() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	free := d.capacity - d.leased
	return free > 0 && (d.leased == 0 || free >= d.capacity/4)
}

// runOnce claims as many due deliveries as there are free workers (within
// each webhook's limit) and hands them to the workers. It returns how many
// it claimed; it does not wait for the attempts.
func (d *Dispatcher) runOnce(ctx context.Context) (int, error) {
	d.mu.Lock()
	free := d.capacity - d.leased
	busy := make(map[uint]int, len(d.busy))
	for k, v := range d.busy {
		busy[k] = v
	}
	d.mu.Unlock()
	if free <= 0 || ctx.Err() != nil {
		return 0, nil
	}
	// A claim, once begun, runs to its end even when Stop cancels the
	// loop: cancelled during its commit, it could be committed without this
	// process learning which rows it leased. Stop waits for it, then gives
	// the unstarted deliveries back.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	claimed, err := d.store.ClaimDeliveries(ctx, models.ClaimOptions{
		Now: d.now(), Lease: d.cfg.Lease, Limit: free, PerWebhook: d.perWebhookLeases(), Busy: busy,
	})
	if err != nil {
		return 0, fmt.Errorf("dispatch: %w", err)
	}
	// Fewer rows than asked for: nothing else is due, so new events may be
	// leased straight from ingest (see commit) until a backlog forms again.
	d.mu.Lock()
	d.drained = len(claimed) < free
	d.mu.Unlock()
	if len(claimed) == 0 {
		return 0, nil
	}
	d.register(claimed)

	seqs := make([]int64, 0, len(claimed))
	seenE := map[int64]bool{}
	for _, c := range claimed {
		if !seenE[c.EventSeq] {
			seenE[c.EventSeq] = true
			seqs = append(seqs, c.EventSeq)
		}
	}
	payloads, err := d.store.EventPayloads(ctx, seqs)
	if err != nil {
		d.unlease(claimed)
		return 0, fmt.Errorf("dispatch: load claimed deliveries: %w", err)
	}
	if err := d.launch(ctx, claimed, payloads); err != nil {
		return 0, err
	}
	return len(claimed), nil
}

// perWebhookLeases is how many deliveries of one webhook may be leased at
// once: Prefetch per slot, so claims and results go in batches. PerEndpoint
// of them run at a time; on PostgreSQL one instance serves a webhook at a
// time (see models.ClaimOptions), so that is the limit across instances.
func (d *Dispatcher) perWebhookLeases() int {
	return d.cfg.PerEndpoint * d.cfg.Prefetch
}

// register counts leased deliveries as in flight.
func (d *Dispatcher) register(claimed []models.ClaimedDelivery) {
	d.mu.Lock()
	d.leased += len(claimed)
	for _, c := range claimed {
		d.busy[c.WebhookID]++
		d.held[c.ID] = struct{}{}
		if d.slots[c.WebhookID] == nil {
			d.slots[c.WebhookID] = make(chan struct{}, d.cfg.PerEndpoint)
		}
	}
	d.mu.Unlock()
}

// unlease gives registered deliveries back to the outbox after a failure to
// load what their attempts need.
func (d *Dispatcher) unlease(claimed []models.ClaimedDelivery) {
	if rerr := d.store.ReleaseDeliveries(context.Background(), claimed, d.now()); rerr != nil {
		d.log.Error("dispatch: release after failed load", "error", rerr)
	}
	for _, c := range claimed {
		d.done(c)
	}
}

// launch hands registered deliveries, with their events' payloads, to the
// workers.
func (d *Dispatcher) launch(ctx context.Context, claimed []models.ClaimedDelivery, payloads map[int64]models.EventPayload) error {
	hookIDs := make([]uint, 0, 4)
	seenH := map[uint]bool{}
	for _, c := range claimed {
		if !seenH[c.WebhookID] {
			seenH[c.WebhookID] = true
			hookIDs = append(hookIDs, c.WebhookID)
		}
	}
	targets, err := d.targets(ctx, hookIDs)
	if err != nil {
		d.unlease(claimed)
		return fmt.Errorf("dispatch: load claimed deliveries: %w", err)
	}
	for _, c := range claimed {
		p, okP := payloads[c.EventSeq]
		t, okT := targets[c.WebhookID]
		if !okP || !okT {
			// Deleted with its webhook or pruned: the row is gone too.
			d.done(c)
			continue
		}
		d.mu.Lock()
		slots := d.slots[c.WebhookID]
		d.mu.Unlock()
		j := job{claim: c, t: t, payload: p.Payload, ping: p.Action == "ping"}
		d.workerWG.Add(1)
		go func() { defer d.workerWG.Done(); d.work(j, slots) }()
	}
	return nil
}

// targets returns the decrypted URI and headers of the given webhooks,
// re-reading a webhook only when its UpdatedAt changed. Deleted webhooks are
// absent.
func (d *Dispatcher) targets(ctx context.Context, ids []uint) (map[uint]target, error) {
	// No webhook was written since the cache was last checked: serve it.
	gen := d.store.WebhookGeneration()
	d.mu.Lock()
	if gen == d.hookGen {
		out := make(map[uint]target, len(ids))
		for _, id := range ids {
			c, ok := d.hooks[id]
			if !ok {
				break
			}
			out[id] = c.t
		}
		if len(out) == len(ids) {
			d.mu.Unlock()
			return out, nil
		}
	}
	d.mu.Unlock()
	stamps, err := d.store.WebhookStamps(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[uint]target, len(ids))
	for _, id := range ids {
		st, ok := stamps[id]
		d.mu.Lock()
		c, cached := d.hooks[id]
		if !ok {
			delete(d.hooks, id)
		}
		d.mu.Unlock()
		if !ok {
			continue
		}
		if cached && c.stamp.Equal(st) {
			out[id] = c.t
			continue
		}
		w, err := d.store.GetWebhookByID(ctx, id)
		if models.IsNotFound(err) {
			continue
		}
		var t target
		switch {
		case errors.Is(err, models.ErrSealed):
			// This webhook alone fails, each attempt recording why.
			t = unreadableTarget()
		case err != nil:
			return nil, err
		default:
			t = target{uri: w.ServiceURI, headers: w.Headers, shownURI: models.MaskURI(w.ServiceURI), signing: signingOf(w)}
		}
		d.mu.Lock()
		d.hooks[id] = cachedHook{stamp: st, t: t}
		d.mu.Unlock()
		out[id] = t
	}
	d.mu.Lock()
	d.hookGen = gen
	d.mu.Unlock()
	return out, nil
}
