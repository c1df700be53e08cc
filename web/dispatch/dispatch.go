package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// Dispatcher works the outbox, split as River splits a queue, one file
// each: the producer (producer.go) claims due deliveries in batches (at most
// Workers*Prefetch leased at a time; per webhook PerEndpoint*Prefetch on
// SQLite, PerEndpoint across all instances on PostgreSQL); the executor
// (work, here) runs each once a slot of its webhook (PerEndpoint) and of the
// pool (Workers) is free, so a slow endpoint only ever holds its own slots;
// the completer (completer.go) records results in batches, one transaction
// each, fenced by lease token; the heartbeat (heartbeat.go) renews this
// instance's leases; maintenance (maintenance.go) prunes by retention.
// Start and Stop run them all; tests drive runOnce, heartbeatOnce and prune
// one at a time. Create it with New.
type Dispatcher struct {
	store  *models.Store
	cfg    Config
	log    *slog.Logger
	client *http.Client
	// now is the clock; tests replace it before Start.
	now func() time.Time
	// jitter returns a random fraction in [0,1); tests pin it.
	jitter func() float64
	// obs is told of attempts and finished deliveries (metrics).
	obs Observer

	kick chan struct{}
	// remote is kicked by other instances' notifications (PostgreSQL).
	remote  chan struct{}
	freed   chan struct{}
	pool    chan struct{} // a token per running attempt, Workers in all
	results chan result

	mu       sync.Mutex
	leased   int                    // deliveries claimed and not yet written back
	drained  bool                   // the last claim found nothing more due
	busy     map[uint]int           // the same, per webhook
	held     map[uint]struct{}      // the same, by delivery id: the leases the heartbeat extends
	slots    map[uint]chan struct{} // running attempts per webhook, PerEndpoint each
	hooks    map[uint]cachedHook
	hookGen  uint64      // the store's WebhookGeneration when hooks was last checked
	capacity int         // Workers*Prefetch
	vac      vacuumState // the outbox's dead rows (PostgreSQL), under mu
	// renewedUntil is the lease expiry the last successful heartbeat gave
	// every delivery this instance holds (unix ns).
	renewedUntil atomic.Int64

	ingestCh      chan ingestReq
	ingestMu      sync.RWMutex
	committing    bool // a committer takes ingest calls (between Start and Stop)
	stopCommitter chan struct{}
	commitWG      sync.WaitGroup

	stateMu    sync.Mutex
	started    bool
	cancelLoop context.CancelFunc
	cancelWork context.CancelFunc
	workCtx    context.Context
	// drain is closed by a graceful Stop: leased deliveries that have not
	// started are released rather than attempted.
	drain    chan struct{}
	loopWG   sync.WaitGroup
	vacWG    sync.WaitGroup
	workerWG sync.WaitGroup
	// The heartbeat runs until the last attempt is recorded.
	cancelHeartbeat context.CancelFunc
	heartbeatWG     sync.WaitGroup
	writerWG        sync.WaitGroup
}

type cachedHook struct {
	stamp time.Time
	t     target
}

// job is one leased delivery on its way to a worker.
type job struct {
	claim   models.ClaimedDelivery
	t       target
	payload []byte
	ping    bool
}

// result is a worker's report to the writer.
type result struct {
	job      job
	res      models.AttemptResult
	released bool // not attempted (a hard stop, or too little lease left): give the lease back, record nothing
}

// leaseLeft is how long the lease of a claimed delivery still runs: its
// claim's expiry, or the heartbeat's when that is later.
func (d *Dispatcher) leaseLeft(c models.ClaimedDelivery) time.Duration {
	until := c.Until
	if r := d.renewedUntil.Load(); r > until.UnixNano() {
		until = time.Unix(0, r)
	}
	return until.Sub(d.now())
}

// New returns a dispatcher for store. An invalid cfg is logged and replaced
// by the defaults, so a server always has a working dispatcher.
func New(store *models.Store, cfg Config, log *slog.Logger) *Dispatcher {
	if log == nil {
		log = slog.Default()
	}
	c, err := cfg.WithDefaults()
	if err != nil {
		log.Error("dispatch: invalid config, using defaults", "error", err)
		c, _ = Config{AllowPrivateTargets: cfg.AllowPrivateTargets, UserAgent: cfg.UserAgent, Retry4xx: cfg.Retry4xx}.WithDefaults()
	}
	d := &Dispatcher{
		store:    store,
		cfg:      c,
		log:      log.With("component", "dispatch"),
		client:   newClient(c),
		now:      time.Now,
		jitter:   rand.Float64,
		obs:      nopObserver{},
		kick:     make(chan struct{}, 1),
		remote:   make(chan struct{}, 1),
		freed:    make(chan struct{}, 1),
		pool:     make(chan struct{}, c.Workers),
		busy:     map[uint]int{},
		held:     map[uint]struct{}{},
		slots:    map[uint]chan struct{}{},
		hooks:    map[uint]cachedHook{},
		capacity: c.Workers * c.Prefetch,
		ingestCh: make(chan ingestReq, 1024),
	}
	return d
}

// Config returns the effective configuration, defaults filled in.
func (d *Dispatcher) Config() Config { return d.cfg }

// Kick wakes the dispatcher so newly committed deliveries go out at once.
// It never blocks; kicks while the dispatcher is busy coalesce.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// kickRemote wakes the dispatcher for deliveries another instance made due.
func (d *Dispatcher) kickRemote() {
	select {
	case d.remote <- struct{}{}:
	default:
	}
}

// Start releases the leases a previous process left behind, then starts the
// workers, the writer, the claim loop and the retention pruner. They run
// until Stop; ctx only bounds Start itself.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.stateMu.Lock()
	defer d.stateMu.Unlock()
	if d.started {
		return errors.New("dispatch: already started")
	}
	if d.store.Engine() == "sqlite" {
		// The store holds the SQLite file's lock, so no other process
		// works it: leases left in flight belong to a process that died.
		n, err := d.store.ReleaseAllLeases(ctx, d.now())
		if err != nil {
			return fmt.Errorf("dispatch: start: %w", err)
		}
		if n > 0 {
			d.log.Info("released leases of a previous run", "deliveries", n)
		}
	}
	d.startWorkers()
	d.stopCommitter = make(chan struct{})
	d.ingestMu.Lock()
	d.committing = true
	d.ingestMu.Unlock()
	d.commitWG.Add(1)
	go func(stop chan struct{}) { defer d.commitWG.Done(); d.committer(stop) }(d.stopCommitter)
	loopCtx, cancel := context.WithCancel(context.Background())
	d.cancelLoop = cancel
	d.loopWG.Add(3)
	go func() { defer d.loopWG.Done(); d.loop(loopCtx) }()
	go func() { defer d.loopWG.Done(); d.pruneLoop(loopCtx) }()
	// Other instances' ingests and edits (PostgreSQL; a no-op on SQLite).
	go func() { defer d.loopWG.Done(); d.store.Listen(loopCtx, d.kickRemote) }()
	d.heartbeatWG.Add(1)
	hbCtx, hbCancel := context.WithCancel(context.Background())
	d.cancelHeartbeat = hbCancel
	go func() { defer d.heartbeatWG.Done(); d.heartbeatLoop(hbCtx) }()
	d.started = true
	d.Kick()
	return nil
}

// Stop stops claiming, lets the attempts in flight finish and records them.
// If ctx ends first, the attempts still running are cancelled and their
// deliveries released unattempted, due at once for the next start.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.stateMu.Lock()
	defer d.stateMu.Unlock()
	if !d.started {
		return nil
	}
	d.started = false
	// Ingest calls from now on commit directly; queued ones are committed.
	d.ingestMu.Lock()
	d.committing = false
	d.ingestMu.Unlock()
	close(d.stopCommitter)
	d.commitWG.Wait()
	d.cancelLoop()
	d.loopWG.Wait()
	// Deliveries not yet started go back at once, for other instances (or
	// the next start) to send; attempts under way finish.
	close(d.drain)
	err := d.waitIdle(ctx)
	if err != nil {
		d.cancelWork()
		_ = d.waitIdle(context.Background())
	}
	d.stopWorkers()
	d.vacWG.Wait()
	d.cancelHeartbeat()
	d.heartbeatWG.Wait()
	// Nothing of this instance is in flight now, so any lease still in its
	// name is one it never learnt of or could not give back: return them,
	// so other instances need not wait for them to expire.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if n, rerr := d.store.ReleaseOwnLeases(rctx, d.now()); rerr != nil {
		d.log.Warn("dispatch: stop: release leftover leases", "error", rerr)
	} else if n > 0 {
		d.log.Info("dispatch: stop: released leases left in this instance's name", "deliveries", n)
	}
	rcancel()
	if err != nil {
		return fmt.Errorf("dispatch: stop: in-flight deliveries released: %w", err)
	}
	return nil
}

// startWorkers starts the writer and readies the attempt goroutines (tests
// call it without the claim loop and drive runOnce themselves).
func (d *Dispatcher) startWorkers() {
	d.workCtx, d.cancelWork = context.WithCancel(context.Background())
	d.drain = make(chan struct{})
	d.results = make(chan result, d.capacity)
	d.writerWG.Add(1)
	go func() { defer d.writerWG.Done(); d.writer() }()
}

func (d *Dispatcher) stopWorkers() {
	d.workerWG.Wait()
	close(d.results)
	d.writerWG.Wait()
	d.cancelWork()
}

// waitIdle returns when every leased delivery is written back, or ctx ends.
func (d *Dispatcher) waitIdle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		d.mu.Lock()
		n := d.leased
		d.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// done forgets one leased delivery: written back, released, or dropped.
// Its row is no longer extended by the heartbeat, so if writing it back
// failed, its lease runs out and the delivery is claimed again.
func (d *Dispatcher) done(c models.ClaimedDelivery) {
	id := c.WebhookID
	d.mu.Lock()
	d.leased--
	delete(d.held, c.ID)
	if d.busy[id]--; d.busy[id] <= 0 {
		delete(d.busy, id)
		delete(d.slots, id) // no goroutine of this webhook is left to use it
	}
	d.mu.Unlock()
}

// work runs one leased delivery: it waits for a slot of its webhook, then
// of the pool, makes the attempt and reports to the writer. A hard stop
// while it waits or runs releases the delivery instead.
func (d *Dispatcher) work(j job, slots chan struct{}) {
	select {
	case slots <- struct{}{}:
	case <-d.workCtx.Done():
		d.results <- result{job: j, released: true}
		return
	case <-d.drain:
		d.results <- result{job: j, released: true}
		return
	}
	defer func() { <-slots }()
	select {
	case d.pool <- struct{}{}:
	case <-d.workCtx.Done():
		d.results <- result{job: j, released: true}
		return
	case <-d.drain:
		d.results <- result{job: j, released: true}
		return
	}
	select {
	case <-d.drain:
		<-d.pool
		d.results <- result{job: j, released: true}
		return
	default:
	}
	// The lease must outlast the attempt, however long the delivery waited
	// for its slots: otherwise another claim could send it at the same
	// time. The heartbeat normally keeps it long; when it could not (the
	// database was away), the delivery goes back unattempted.
	if d.leaseLeft(j.claim) < d.cfg.Timeout+time.Second {
		<-d.pool
		d.results <- result{job: j, released: true}
		return
	}
	t0 := time.Now()
	t := j.t
	t.eventID = j.claim.EventID // the payload's id, for the signature headers
	rec := d.attempt(d.workCtx, t, j.payload)
	elapsed := time.Since(t0)
	<-d.pool
	if d.workCtx.Err() != nil && rec.StatusCode == 0 {
		d.results <- result{job: j, released: true}
		return
	}
	d.obs.AttemptDone(elapsed, rec.StatusCode >= 200 && rec.StatusCode < 300)
	rec.DeliveryID, rec.WebhookID, rec.EventID, rec.Number = j.claim.ID, j.claim.WebhookID, j.claim.EventID, j.claim.Attempt
	now := d.now()
	r := models.AttemptResult{Attempt: rec, Token: j.claim.Token, UpdatedAt: now, AvailableAt: now}
	o := d.cfg.decide(&r.Attempt, j.claim.Attempt, j.ping, now, d.jitter())
	r.State = o.state
	if o.state == models.DeliveryPending {
		r.AvailableAt = o.retryAt
	}
	r.Attempt.Error = joinReason(r.Attempt.Error, o.reason)
	d.results <- result{job: j, res: r}
}
