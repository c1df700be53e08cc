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

// Dispatcher works the outbox. One goroutine claims due deliveries in
// batches (at most Workers*Prefetch leased at a time, PerEndpoint*Prefetch
// per webhook); each leased delivery waits for a slot of its webhook
// (PerEndpoint) and then of the pool (Workers) before its request goes out,
// so a slow endpoint only ever holds its own slots; a single writer records
// results in batches, one transaction each. Create it with New.
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

	kick    chan struct{}
	freed   chan struct{}
	pool    chan struct{} // a token per running attempt, Workers in all
	results chan result

	mu       sync.Mutex
	leased   int                    // deliveries claimed and not yet written back
	drained  bool                   // the last claim found nothing more due
	busy     map[uint]int           // the same, per webhook
	slots    map[uint]chan struct{} // running attempts per webhook, PerEndpoint each
	hooks    map[uint]cachedHook
	hookGen  uint64 // the store's WebhookGeneration when hooks was last checked
	capacity int    // Workers*Prefetch
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
		freed:    make(chan struct{}, 1),
		pool:     make(chan struct{}, c.Workers),
		busy:     map[uint]int{},
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
	go func() { defer d.loopWG.Done(); d.store.Listen(loopCtx, d.Kick) }()
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
	d.cancelHeartbeat()
	d.heartbeatWG.Wait()
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

// loop claims whenever kicked, whenever capacity frees up, when the next
// retry comes due, and at least every PollInterval.
func (d *Dispatcher) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastClaim time.Time
	for {
		var n int
		var err error
		if d.worthClaiming() {
			// While work is in flight, claims are paced: a claim costs about
			// the same for a few rows as for a few hundred, so under a steady
			// trickle of ingests, waiting a moment claims many rows at once.
			// An idle dispatcher claims at once.
			if w := d.claimInterval() - time.Since(lastClaim); w > 0 && d.inFlight() {
				select {
				case <-ctx.Done():
					return
				case <-time.After(w):
				}
			}
			lastClaim = time.Now()
			n, err = d.runOnce(ctx)
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

// inFlight reports whether any leased delivery is not yet written back.
func (d *Dispatcher) inFlight() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.leased > 0
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
	if free <= 0 {
		return 0, nil
	}
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
// once. On SQLite (one process) the dispatcher leases ahead, Prefetch per
// slot, and runs PerEndpoint of them at a time. On PostgreSQL the claim
// counts every instance's leases, so leases are the running attempts:
// PerEndpoint across all instances.
func (d *Dispatcher) perWebhookLeases() int {
	if d.store.Engine() == "postgres" {
		return d.cfg.PerEndpoint
	}
	return d.cfg.PerEndpoint * d.cfg.Prefetch
}

// claimInterval paces claims while deliveries are in flight. On SQLite a
// claim shares the single write connection with ingest, so claims are
// batched (ClaimInterval). On PostgreSQL leases are only the running
// attempts (perWebhookLeases), so every result that frees a slot should be
// followed by a claim soon: at most every 2 ms.
func (d *Dispatcher) claimInterval() time.Duration {
	if d.store.Engine() == "postgres" {
		return min(d.cfg.ClaimInterval, 2*time.Millisecond)
	}
	return d.cfg.ClaimInterval
}

// resultLinger is how long the completer gathers results for one
// transaction: 10 ms on SQLite (one writer: fewer, larger transactions),
// 1 ms on PostgreSQL, where a recorded result is what frees a webhook's
// slot for the next claim of any instance.
func (d *Dispatcher) resultLinger() time.Duration {
	if d.store.Engine() == "postgres" {
		return time.Millisecond
	}
	return 10 * time.Millisecond
}

// register counts leased deliveries as in flight.
func (d *Dispatcher) register(claimed []models.ClaimedDelivery) {
	d.mu.Lock()
	d.leased += len(claimed)
	for _, c := range claimed {
		d.busy[c.WebhookID]++
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
		d.done(c.WebhookID)
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
			d.done(c.WebhookID)
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

// done forgets one leased delivery of webhook id.
func (d *Dispatcher) done(id uint) {
	d.mu.Lock()
	d.leased--
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
		linger.Reset(d.resultLinger())
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
		d.done(r.job.claim.WebhookID)
	}
	select {
	case d.freed <- struct{}{}:
	default:
	}
}

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
