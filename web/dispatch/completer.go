package dispatch

import (
	"context"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// The completer: one writer that records attempt results in batches (one
// transaction each), fenced by lease token, and gives back deliveries that
// were not attempted.

// writer records results in batches: whatever has arrived, up to
// BatchSize, in one transaction, so the single write connection is held
// briefly and rarely.
func (d *Dispatcher) writer() {
	batch := make([]result, 0, d.cfg.BatchSize)
	linger := time.NewTimer(time.Hour)
	for r := range d.results {
		batch = append(batch[:0], r)
		// Gather what arrives within 10 ms while more attempts are
		// running: one transaction for many results.
		linger.Reset(10 * time.Millisecond)
	drain:
		for len(batch) < d.cfg.BatchSize {
			select {
			case r, ok := <-d.results:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				continue
			default:
			}
			if len(d.pool) == 0 { // nothing running: nothing more to wait for
				break drain
			}
			select {
			case r, ok := <-d.results:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			case <-linger.C:
				break drain
			}
		}
		d.flush(batch)
	}
}

func (d *Dispatcher) flush(batch []result) {
	recs := make([]models.AttemptResult, 0, len(batch))
	var released []models.ClaimedDelivery
	for _, r := range batch {
		if r.released {
			released = append(released, r.job.claim)
			continue
		}
		recs = append(recs, r.res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// While the database is away (a restart, a failover) the results wait
	// here, and the workers behind them, for up to a lease: a result
	// written late is fenced, so it cannot undo what another instance did
	// meanwhile.
	start, giveUp := time.Now(), min(20*time.Second, d.cfg.Lease*4/5)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := d.store.RecordAttempts(ctx, recs)
		if err == nil {
			for i := range recs {
				if !recs[i].Attempt.Superseded && (recs[i].State == models.DeliverySucceeded || recs[i].State == models.DeliveryFailed) {
					d.obs.DeliveryFinished(recs[i].State == models.DeliverySucceeded)
				}
			}
			break
		}
		if ctx.Err() != nil || time.Since(start)+wait > giveUp {
			// The rows stay leased and come back when the lease expires.
			d.log.Error("dispatch: record attempts", "error", err, "attempts", len(recs))
			break
		}
		d.log.Warn("dispatch: record attempts failed; retrying", "error", err, "attempts", len(recs), "retry_in", wait.String())
		time.Sleep(wait)
	}
	if err := d.store.ReleaseDeliveries(ctx, released, d.now()); err != nil {
		d.log.Error("dispatch: release deliveries", "error", err, "deliveries", len(released))
	}
	for _, r := range recs {
		a := &r.Attempt
		if a.Superseded {
			d.log.Warn("dispatch: result of a lost lease kept as history only", "delivery_id", a.DeliveryID,
				"webhook_id", a.WebhookID, "event_id", a.EventID, "attempt", a.Number, "status_code", a.StatusCode)
			continue
		}
		if r.State == models.DeliverySucceeded {
			continue
		}
		d.log.Debug("delivery attempt failed", "delivery_id", a.DeliveryID, "webhook_id", a.WebhookID,
			"event_id", a.EventID, "attempt", a.Number, "status_code", a.StatusCode, "error", a.Error,
			"final", r.State == models.DeliveryFailed)
	}
	for _, r := range batch {
		d.done(r.job.claim)
	}
	d.noteWritten(len(batch))
	select {
	case d.freed <- struct{}{}:
	default:
	}
}
