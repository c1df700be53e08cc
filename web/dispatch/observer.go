package dispatch

import "time"

// Observer is told what the dispatcher does, for metrics. The dispatcher
// calls it from its workers and its writer, so implementations must be
// safe for concurrent use and quick (no I/O). web/metrics.Metrics is one.
type Observer interface {
	// AttemptDone reports one HTTP attempt and how long it took; success is
	// a 2xx answer.
	AttemptDone(elapsed time.Duration, success bool)
	// DeliveryFinished reports a delivery whose final state was recorded:
	// succeeded, or failed after its last attempt.
	DeliveryFinished(succeeded bool)
	// WebhooksAutoDisabled reports n webhooks the system disabled.
	WebhooksAutoDisabled(n int)
}

type nopObserver struct{}

func (nopObserver) AttemptDone(time.Duration, bool) {}
func (nopObserver) DeliveryFinished(bool)           {}
func (nopObserver) WebhooksAutoDisabled(int)        {}

// Observe sets the observer told of attempts and finished deliveries. Call
// it before Start; nil restores the default, which ignores everything.
func (d *Dispatcher) Observe(o Observer) {
	if o == nil {
		o = nopObserver{}
	}
	d.obs = o
}
