package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// AutoDisableConfig tunes the AutoDisabler.
type AutoDisableConfig struct {
	// After is the window of the auto-disable rule (--auto-disable-after,
	// the server's default 72h): a webhook enabled for at least this long,
	// none of whose deliveries finished succeeded within it while at least
	// models.AutoDisableMinFailures finished failed within it, is disabled
	// by the system (see models.Store.FailingWebhooks). Zero or negative:
	// never; the service then does nothing.
	After time.Duration
	// Interval is how often the rule is checked. Default After/10, at most
	// 1m and at least 100ms: a webhook is disabled at most a tenth of the
	// window (or a minute) after it met the rule.
	Interval time.Duration
	// OnAutoDisabled, when set, is called once for each webhook the system
	// disabled, after the change is committed: the hook for a metric such as
	// registryhooks_webhooks_auto_disabled_total. It runs on the service's
	// goroutine, so it must be quick.
	OnAutoDisabled func(webhookID uint)
}

// WithDefaults fills Interval from After.
func (c AutoDisableConfig) WithDefaults() AutoDisableConfig {
	if c.Interval <= 0 && c.After > 0 {
		c.Interval = min(max(c.After/10, 100*time.Millisecond), time.Minute)
	}
	return c
}

// AutoDisabler is the service that disables webhooks whose deliveries keep
// failing, so a dead endpoint stops taking attempts (and retries) from the
// others: Start runs runOnce every Interval until Stop. A disabled webhook
// keeps its pending deliveries, held, and gets them all when a person
// enables it again (portal, API or CLI); each one is audited, logged once
// and reported to OnAutoDisabled. Create it with NewAutoDisabler.
type AutoDisabler struct {
	store *models.Store
	cfg   AutoDisableConfig
	log   *slog.Logger
	// now is the clock; tests replace it.
	now func() time.Time

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewAutoDisabler returns the service for store; cfg.After <= 0 makes one
// that never disables anything.
func NewAutoDisabler(store *models.Store, cfg AutoDisableConfig, log *slog.Logger) *AutoDisabler {
	if log == nil {
		log = slog.Default()
	}
	return &AutoDisabler{store: store, cfg: cfg.WithDefaults(), log: log.With("component", "autodisable"), now: time.Now}
}

// Config returns the effective configuration.
func (a *AutoDisabler) Config() AutoDisableConfig { return a.cfg }

// Start checks the rule at once and then every Interval, until Stop. With
// After <= 0 it starts nothing. ctx only bounds Start itself.
func (a *AutoDisabler) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel != nil {
		return errors.New("dispatch: auto-disable: already started")
	}
	if a.cfg.After <= 0 {
		return nil
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		a.loop(loopCtx)
	}()
	return nil
}

// Stop ends the loop and waits for a check under way, or for ctx.
func (a *AutoDisabler) Stop(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel == nil {
		return nil
	}
	a.cancel()
	a.cancel = nil
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dispatch: auto-disable: stop: %w", ctx.Err())
	}
}

func (a *AutoDisabler) loop(ctx context.Context) {
	every(ctx, 0, a.cfg.Interval, func(ctx context.Context) {
		if _, err := a.runOnce(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("auto-disable check failed", "error", err)
		}
	})
}

// runOnce disables every webhook that meets the rule now and returns how
// many it disabled. A webhook that stopped meeting the rule between the
// query and its own transaction (a person acted, a delivery succeeded) is
// left alone. An error with one webhook does not stop the others.
func (a *AutoDisabler) runOnce(ctx context.Context) (int, error) {
	if a.cfg.After <= 0 {
		return 0, nil
	}
	now := a.now()
	failing, err := a.store.FailingWebhooks(ctx, now, a.cfg.After)
	if err != nil {
		return 0, fmt.Errorf("dispatch: auto-disable: %w", err)
	}
	var errs []error
	n := 0
	for _, f := range failing {
		got, ok, err := a.store.AutoDisableWebhook(ctx, f.ID, now, a.cfg.After)
		if err != nil {
			errs = append(errs, fmt.Errorf("dispatch: auto-disable: %w", err))
			continue
		}
		if !ok {
			continue
		}
		n++
		a.log.Warn("webhook auto-disabled: its deliveries kept failing", "webhook_id", got.ID, "registry", got.Registry,
			"webhook", got.Name, "failed_deliveries", got.Failed, "held_deliveries", got.Held,
			"window", models.FormatWindow(a.cfg.After))
		if a.cfg.OnAutoDisabled != nil {
			a.cfg.OnAutoDisabled(got.ID)
		}
	}
	return n, errors.Join(errs...)
}
