// Package dispatch delivers queued webhook events: it works the outbox
// (models.Delivery) with a pool of workers, POSTs each event's ACR payload to
// the webhook's service URI, records every attempt, and retries on a
// schedule (retry.go) until a delivery succeeds, is refused by the receiver
// or runs out of attempts.
//
// The dispatcher is a service: Start, Stop and Kick; runOnce is one claim
// round, which tests drive with a fake clock.
package dispatch

import (
	"errors"
	"slices"
	"time"
)

// DefaultUserAgent is sent on every delivery. It starts with
// "AzureContainerRegistry" because receivers detect ACR by that prefix
// (Kargo answers 400 to anything else); the comment names the sender.
const DefaultUserAgent = "AzureContainerRegistry/1.0 (Registry Hooks)"

// Config tunes the dispatcher. The zero value gives the defaults below;
// WithDefaults fills them in.
type Config struct {
	// Workers is how many attempts may run at once across all webhooks, and
	// so how many deliveries the dispatcher holds leased. Default 32.
	Workers int
	// PerEndpoint is how many attempts may run at once against one webhook,
	// so a slow or dead endpoint holds at most this many workers. Default 4.
	PerEndpoint int
	// Prefetch is how many deliveries per worker (and per endpoint slot) the
	// dispatcher leases ahead, so claims and result writes go in batches
	// rather than one row at a time. At most Workers*Prefetch deliveries
	// are leased, at most PerEndpoint*Prefetch of one webhook: a dead
	// endpoint's leased rows wait at most Prefetch*Timeout, well inside
	// Lease. Default 32: claims of a few hundred rows cost little more than
	// claims of a few dozen, and while nothing else is due new deliveries
	// are leased straight from ingest up to these limits, so a deeper
	// prefetch raises throughput markedly (about 1 MiB of payloads held).
	Prefetch int
	// ClaimInterval is the least time between two claims under load (a
	// quarter of the capacity or more in flight), so a steady stream of
	// events is claimed in batches; with less in flight the pause shrinks
	// in proportion, and an idle dispatcher claims at once (see pace).
	// Default 25ms.
	ClaimInterval time.Duration
	// Timeout bounds one attempt, from dialling to the end of the response
	// body. Default 5s, as ACR. A timeout is recorded as 504 Gateway Timeout.
	Timeout time.Duration
	// MaxAttempts is how many attempts a delivery gets before it is marked
	// failed. Pings always get exactly one. Default len(RetrySchedule)+1
	// (8): one attempt at once and one after each wait. When it asks for
	// more, the schedule's last wait repeats; when less, the schedule ends
	// early.
	MaxAttempts int
	// RetrySchedule is the wait before each retry (see retry.go for which
	// results are retried): RetrySchedule[0] after the first attempt, [1]
	// after the second, and so on; each plus up to 10% random jitter.
	// Default DefaultRetrySchedule (5s, 5m, 30m, 2h, 5h, 10h, 10h).
	RetrySchedule []time.Duration
	// RetryAfterMax caps the wait a receiver asks for with Retry-After on a
	// 429 or 503 (which replaces the scheduled wait). Default the longest
	// wait of RetrySchedule.
	RetryAfterMax time.Duration
	// Retry4xx retries every non-2xx. By default a 4xx other than 408, 425
	// and 429 ends the delivery as failed after that attempt: the receiver
	// refused the event and will refuse it again.
	Retry4xx bool
	// Lease is how long a claimed delivery stays invisible to other claims
	// unless the heartbeat extends it: a killed instance's deliveries are
	// taken over this long after its last heartbeat. An attempt starts only
	// while at least Timeout+1s of its lease is left. Default 25s, or
	// Timeout+5s when longer: with the 1s poll, a killed instance's
	// deliveries move to another within 30s. At least Timeout+2s and twice
	// HeartbeatInterval.
	Lease time.Duration
	// HeartbeatInterval is how often the leases this instance holds are
	// extended to now+Lease. Default Lease/3.
	HeartbeatInterval time.Duration
	// PollInterval is how often the dispatcher looks for due deliveries when
	// nothing kicked it (retries coming due, missed kicks). Default 1s.
	PollInterval time.Duration
	// Retention is how long finished events (and their deliveries and
	// attempts) are kept. Default 7 days. Negative disables pruning.
	Retention time.Duration
	// PruneInterval is how often retention runs. Default 10m.
	PruneInterval time.Duration
	// VacuumAfter is how many deliveries this instance claims and records
	// before, on falling idle, it vacuums the outbox table (PostgreSQL;
	// see vacuum.go). Default 5000; negative never.
	VacuumAfter int
	// BatchSize caps how many attempt results are written in one
	// transaction. Default 256.
	BatchSize int
	// AllowPrivateTargets lets deliveries reach loopback, private and
	// unspecified addresses. Link-local and cloud metadata addresses are
	// refused regardless. Default false.
	AllowPrivateTargets bool
	// UserAgent is the User-Agent header of every delivery. Default
	// DefaultUserAgent.
	UserAgent string
}

// WithDefaults returns c with zero fields set to their defaults, or an error
// when a set field is out of range.
func (c Config) WithDefaults() (Config, error) {
	if c.Workers == 0 {
		c.Workers = 32
	}
	if c.PerEndpoint == 0 {
		c.PerEndpoint = 4
	}
	if c.ClaimInterval == 0 {
		c.ClaimInterval = 25 * time.Millisecond
	}
	if c.Prefetch == 0 {
		c.Prefetch = 32
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if len(c.RetrySchedule) == 0 {
		c.RetrySchedule = DefaultRetrySchedule
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = len(c.RetrySchedule) + 1
	}
	if c.RetryAfterMax == 0 {
		c.RetryAfterMax = slices.Max(c.RetrySchedule)
	}
	if c.Lease == 0 {
		c.Lease = max(25*time.Second, c.Timeout+5*time.Second)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = c.Lease / 3
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = 10 * time.Minute
	}
	if c.VacuumAfter == 0 {
		c.VacuumAfter = 5000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	switch {
	case c.Workers < 1, c.PerEndpoint < 1, c.MaxAttempts < 1, c.BatchSize < 1, c.Prefetch < 1:
		return c, errors.New("dispatch: Workers, PerEndpoint, Prefetch, MaxAttempts and BatchSize must be at least 1")
	case c.Timeout < 0, c.RetryAfterMax < 0, c.PollInterval < 0, slices.Min(c.RetrySchedule) <= 0:
		return c, errors.New("dispatch: Timeout, RetrySchedule, RetryAfterMax and PollInterval must be positive")
	case c.Lease < c.Timeout+2*time.Second:
		return c, errors.New("dispatch: Lease must be at least Timeout+2s, or no attempt could start within it")
	case c.HeartbeatInterval <= 0 || c.HeartbeatInterval*2 > c.Lease:
		return c, errors.New("dispatch: HeartbeatInterval must be positive and at most half of Lease")
	}
	if c.PerEndpoint > c.Workers {
		c.PerEndpoint = c.Workers
	}
	return c, nil
}
