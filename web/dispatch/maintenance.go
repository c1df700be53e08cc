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
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := d.prune(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("dispatch: prune", "error", err)
		}
		t.Reset(d.cfg.PruneInterval)
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
