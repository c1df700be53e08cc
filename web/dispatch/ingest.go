package dispatch

import (
	"context"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// maxGroupEvents caps the events of one group commit.
const maxGroupEvents = 1000

type ingestReq struct {
	events []*models.Event
	done   chan ingestResp
}

type ingestResp struct {
	res []models.IngestResult
	err error
}

// Ingest stores events and their deliveries (store.IngestEvents) and wakes
// the dispatcher. While the dispatcher runs, concurrent calls share one
// transaction (group commit): the single write connection then commits
// once for many requests, and each call still returns only after its own
// events are committed. A batch that fails is retried call by call, so one
// bad request does not fail the others.
func (d *Dispatcher) Ingest(ctx context.Context, events []*models.Event) ([]models.IngestResult, error) {
	req := ingestReq{events: events, done: make(chan ingestResp, 1)}
	d.ingestMu.RLock()
	if !d.committing {
		d.ingestMu.RUnlock()
		res, err := d.store.IngestEvents(ctx, events)
		if err == nil {
			d.Kick()
		}
		return res, err
	}
	// The committer runs until Stop, which waits for this lock, so the
	// request is taken even when the queue is full for a moment.
	d.ingestCh <- req
	d.ingestMu.RUnlock()
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		// The commit may still happen; a retry is then a duplicate.
		return nil, ctx.Err()
	}
}

// committer gathers whatever ingest calls are waiting and commits them
// together, until stop is closed and the queue is empty.
func (d *Dispatcher) committer(stop <-chan struct{}) {
	busy := false
	for {
		var first ingestReq
		select {
		case first = <-d.ingestCh:
		case <-stop:
			for {
				select {
				case r := <-d.ingestCh:
					d.commit([]ingestReq{r})
				default:
					return
				}
			}
		}
		batch := []ingestReq{first}
		n := len(first.events)
		// Under load (the last commit was shared), wait a moment for more
		// requests: fewer, larger transactions. A lone request goes at once.
		var linger <-chan time.Time
		if busy {
			linger = time.After(ingestLinger)
		}
	gather:
		for n < maxGroupEvents {
			select {
			case r := <-d.ingestCh:
				batch = append(batch, r)
				n += len(r.events)
				continue
			default:
			}
			if linger == nil {
				break
			}
			select {
			case r := <-d.ingestCh:
				batch = append(batch, r)
				n += len(r.events)
			case <-linger:
				break gather
			}
		}
		busy = len(batch) > 1
		d.commit(batch)
	}
}

// ingestLinger is how long a group commit waits for more requests while
// ingest is busy.
const ingestLinger = 2 * time.Millisecond

func (d *Dispatcher) commit(batch []ingestReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(batch) == 1 {
		res, start, err := d.ingestLeased(ctx, batch[0].events)
		batch[0].done <- ingestResp{res, err}
		start(ctx)
		return
	}
	var all []*models.Event
	for _, r := range batch {
		all = append(all, r.events...)
	}
	res, start, err := d.ingestLeased(ctx, all)
	if err != nil {
		d.log.Warn("dispatch: group commit failed, committing one by one", "error", err, "requests", len(batch))
		for _, r := range batch {
			res, err := d.store.IngestEvents(ctx, r.events)
			r.done <- ingestResp{res, err}
		}
		d.Kick()
		return
	}
	i := 0
	for _, r := range batch {
		r.done <- ingestResp{res: res[i : i+len(r.events)]}
		i += len(r.events)
	}
	start(ctx)
}

// ingestLeased commits events and, while nothing else is due, leases their
// new deliveries to this dispatcher in the same transaction: on the happy
// path a delivery needs no claim query and no payload lookup. When a backlog
// exists, new deliveries queue behind it. The returned start launches the
// leased deliveries; callers answer their requests first, so an ingest
// request waits only for its commit.
func (d *Dispatcher) ingestLeased(ctx context.Context, events []*models.Event) ([]models.IngestResult, func(context.Context), error) {
	d.mu.Lock()
	var lease *models.DirectLease
	if d.drained && d.workCtx != nil {
		busy := make(map[uint]int, len(d.busy))
		for k, v := range d.busy {
			busy[k] = v
		}
		lease = &models.DirectLease{Until: d.now().Add(d.cfg.Lease), Limit: d.capacity - d.leased,
			PerWebhook: d.perWebhookLeases(), Busy: busy}
	}
	d.mu.Unlock()
	res, leased, err := d.store.IngestEventsLeased(ctx, events, lease)
	if err != nil {
		return nil, func(context.Context) {}, err
	}
	// Count the leases at once, so claims and other ingests see them.
	d.register(leased)
	queued := 0
	for _, r := range res {
		queued += r.Deliveries
	}
	if queued > len(leased) {
		// Some wait in the outbox: claims take them, in due order.
		d.mu.Lock()
		d.drained = false
		d.mu.Unlock()
		d.Kick()
	}
	start := func(ctx context.Context) {
		if len(leased) == 0 {
			return
		}
		payloads := make(map[int64]models.EventPayload, len(events))
		for _, ev := range events {
			if ev.Seq != 0 {
				payloads[ev.Seq] = models.EventPayload{Seq: ev.Seq, ID: ev.ID, Action: ev.Action, Payload: ev.Payload}
			}
		}
		if err := d.launch(ctx, leased, payloads); err != nil {
			// The events are committed; the leases were given back and the
			// claim loop will send them.
			d.log.Warn("dispatch: start leased deliveries", "error", err)
		}
	}
	return res, start, nil
}
