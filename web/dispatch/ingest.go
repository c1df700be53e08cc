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
	gather:
		for n < maxGroupEvents {
			select {
			case r := <-d.ingestCh:
				batch = append(batch, r)
				n += len(r.events)
			default:
				break gather
			}
		}
		d.commit(batch)
	}
}

func (d *Dispatcher) commit(batch []ingestReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(batch) == 1 {
		res, err := d.store.IngestEvents(ctx, batch[0].events)
		batch[0].done <- ingestResp{res, err}
		if err == nil {
			d.Kick()
		}
		return
	}
	var all []*models.Event
	for _, r := range batch {
		all = append(all, r.events...)
	}
	res, err := d.store.IngestEvents(ctx, all)
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
	d.Kick()
}
