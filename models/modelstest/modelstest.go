// Package modelstest opens real stores for the tests of other packages: a
// new SQLite file in the test's temporary directory, secrets sealed with a
// fixed test key, the default registry created, closed when the test ends.
package modelstest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

// Open returns such a store and its default registry. opt.Cipher, when
// nil, is a cipher with an all-zero key.
func Open(t testing.TB, opt models.Options) (*models.Store, *models.Registry) {
	t.Helper()
	if opt.Cipher == nil {
		c, err := models.NewCipher(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		opt.Cipher = c
	}
	s, err := models.Open(pgtestdb.DB(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.EnsureDefaultRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := s.GetRegistry(ctx, models.DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// Clock is a settable clock for models.Options.Now.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now reads the clock.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// History describes events to seed with Seed.
type History struct {
	// Events is how many events to ingest; each is delivered to every
	// enabled webhook of the registry whose actions and scope match.
	Events int
	// From and To spread the events' (and deliveries') times evenly.
	From, To time.Time
	// Event returns the i-th event's action, repository and tag.
	Event func(i int) (action, repository, tag string)
	// Outcome returns the state a delivery ends in (models.DeliverySucceeded,
	// DeliveryFailed or DeliveryPending), by its id.
	Outcome func(deliveryID uint) int
	// IDPrefix starts every event id (default "seed-"); calls of Seed on
	// one store need different ones.
	IDPrefix string
}

// Seed ingests h.Events events through the store's public API with clock
// moved along, then claims every delivery and records its outcome as the
// dispatcher would (a 200 or a 500). It returns the number of deliveries.
// The clock is left at h.To.
func Seed(t testing.TB, s *models.Store, reg *models.Registry, clock *Clock, h History) int {
	t.Helper()
	ctx := context.Background()
	if h.IDPrefix == "" {
		h.IDPrefix = "seed-"
	}
	// At least about 200 steps of the clock, so times spread over the span.
	batch := min(max(h.Events/200, 1), 500)
	span := h.To.Sub(h.From)
	total := 0
	for i := 0; i < h.Events; i += batch {
		n := min(batch, h.Events-i)
		at := h.From.Add(time.Duration(float64(span) * float64(i) / float64(max(h.Events, 1))))
		clock.Set(at)
		evs := make([]*models.Event, n)
		for j := range evs {
			action, repo, tag := h.Event(i + j)
			evs[j] = &models.Event{ID: fmt.Sprintf("%s%07d", h.IDPrefix, i+j), RegistryID: reg.ID, Action: action,
				Repository: repo, Tag: tag, Digest: "sha256:" + strings.Repeat("0", 64), Source: "api",
				Payload: []byte(`{"action":"` + action + `"}`), CreatedAt: at.UnixNano()}
		}
		res, err := s.IngestEvents(ctx, evs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			total += r.Deliveries
		}
	}
	clock.Set(h.To)
	for {
		claimed, err := s.ClaimDeliveries(ctx, models.ClaimOptions{Now: h.To.Add(time.Hour), Lease: time.Hour,
			Limit: 2000, PerWebhook: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) == 0 {
			break
		}
		var results []models.AttemptResult
		var release []models.ClaimedDelivery
		for _, c := range claimed {
			st := h.Outcome(c.ID)
			if st == models.DeliveryPending || st == models.DeliveryInFlight {
				release = append(release, c)
				continue
			}
			code := 200
			if st == models.DeliveryFailed {
				code = 500
			}
			results = append(results, models.AttemptResult{State: st, Token: c.Token, UpdatedAt: h.To, AvailableAt: h.To,
				Attempt: models.Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: 1,
					RequestURI: "http://receiver.invalid/******", StatusCode: code, ReasonPhrase: "seeded", StartedAt: h.To.UnixNano()}})
		}
		if err := s.RecordAttempts(ctx, results); err != nil {
			t.Fatal(err)
		}
		if len(release) > 0 {
			// Back to pending but not due before the seeding is over, so
			// the next claims do not see them again.
			if err := s.ReleaseDeliveries(ctx, release, h.To.Add(24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return total
}
