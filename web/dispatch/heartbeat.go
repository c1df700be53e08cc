package dispatch

import (
	"context"
	"time"
)

// heartbeatLoop extends this instance's leases every HeartbeatInterval, so
// a delivery held while it waits for a slot or while its attempt runs is
// never claimed by another instance, and a killed instance's deliveries
// are taken over within Lease. When a heartbeat fails (the database is
// away), the leases run out by themselves and workers stop starting
// attempts whose lease is too short (see work).
func (d *Dispatcher) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.heartbeatOnce(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("dispatch: heartbeat failed; leases run out unless it recovers", "error", err)
		}
	}
}

// heartbeatOnce extends every lease this instance holds in memory to
// now+Lease. Rows leased to this instance that it no longer tracks (their
// result or release could not be written) are left to expire.
func (d *Dispatcher) heartbeatOnce(ctx context.Context) error {
	until := d.now().Add(d.cfg.Lease)
	d.mu.Lock()
	ids := make([]uint, 0, len(d.held))
	for id := range d.held {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	if _, err := d.store.ExtendLeases(ctx, until, ids); err != nil {
		return err
	}
	d.renewedUntil.Store(until.UnixNano())
	return nil
}
