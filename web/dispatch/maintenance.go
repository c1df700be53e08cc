package dispatch

import (
	"context"
	"time"
)

// Maintenance: retention pruning of finished events. (Expired leases need
// no rescuer: a claim takes a delivery whose lease ran out as due.)

// pruneLoop applies the retention setting shortly after start and then
// every PruneInterval.
func (d *Dispatcher) pruneLoop(ctx context.Context) {
	if d.cfg.Retention < 0 {
		return
	}
	every(ctx, 10*time.Second, d.cfg.PruneInterval, func(ctx context.Context) {
		if _, err := d.prune(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("dispatch: prune", "error", err)
		}
	})
}

// every runs fn after first and then interval after each run ends, until
// ctx ends: the loop of the periodic maintenance services.
func every(ctx context.Context, first, interval time.Duration, fn func(context.Context)) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
		t.Reset(interval)
	}
}

// prune deletes finished events older than Retention.
func (d *Dispatcher) prune(ctx context.Context) (int64, error) {
	n, err := d.store.PruneEvents(ctx, d.now().Add(-d.cfg.Retention), 500)
	if n > 0 {
		d.log.Info("pruned old events", "events", n, "retention", d.cfg.Retention.String())
	}
	return n, err
}
