package dispatch

import "time"

// Vacuuming the outbox. On PostgreSQL every claim and every result leaves a
// dead row version in deliveries, and each claim's index scans wade through
// them until a vacuum clears them: after a burst of 40,000 deliveries, the
// first statement of a claim took 4-6 ms instead of 0.3-1.3 ms, and the
// idle ingest-to-delivery latency that followed was 12-15 ms (p50) and
// 24-31 ms (p99) instead of 6 and 11 ms. Autovacuum gets there in its own
// time (migration 00004 makes it eager on this table); the dispatcher does
// not wait for it: when it falls idle after writing VacuumAfter rows, it
// vacuums the table itself (100-200 ms for that burst), at most every
// vacuumEvery, one instance at a time (Store.VacuumOutbox). Under steady
// load it never falls idle, and autovacuum does the work. SQLite keeps no
// dead versions.

const vacuumEvery = 2 * time.Second

type vacuumState struct {
	written int       // deliveries recorded or given back since the last vacuum
	last    time.Time // when the last vacuum started
	running bool
}

// noteWritten counts n deliveries written back and, when the dispatcher is
// idle and enough were written, vacuums the outbox in the background.
func (d *Dispatcher) noteWritten(n int) {
	if d.cfg.VacuumAfter < 0 || d.store.Engine() != "postgres" {
		return
	}
	d.mu.Lock()
	v := &d.vac
	v.written += n
	start := d.leased == 0 && !v.running && v.written >= d.cfg.VacuumAfter && time.Since(v.last) >= vacuumEvery
	if start {
		v.running, v.written, v.last = true, 0, time.Now()
	}
	d.mu.Unlock()
	if !start {
		return
	}
	ctx := d.workCtx // cancelled by Stop, which waits for vacWG
	d.vacWG.Add(1)
	go func() {
		defer d.vacWG.Done()
		t0 := time.Now()
		ran, err := d.store.VacuumOutbox(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("dispatch: vacuum the outbox", "error", err)
		case ran:
			d.log.Debug("dispatch: outbox vacuumed", "took", time.Since(t0).String())
		}
		d.mu.Lock()
		d.vac.running = false
		d.mu.Unlock()
	}()
}
