package handlers

import (
	"context"
	"fmt"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// failingBelow is the success rate under which a webhook is marked failing.
const failingBelow = 0.8

// healthWindow is one span the portal charts: n buckets of width.
type healthWindow struct {
	name        string
	n           int
	width       time.Duration
	bucketLabel string
}

var (
	window24h = healthWindow{"24 hours", 24, time.Hour, "hour"}
	window7d  = healthWindow{"7 days", 28, 6 * time.Hour, "6 hours"}
)

// health reads the window's health of the given webhooks, ending now.
func (h *Handler) health(ctx context.Context, ids []uint, w healthWindow) (map[uint]views.HealthVM, error) {
	// Buckets end on a whole bucket, so a bar is a clock hour (or six).
	end := h.Store.Now().Truncate(w.width).Add(w.width)
	hs, err := h.Store.WebhookHealth(ctx, ids, end, w.n, w.width)
	if err != nil {
		return nil, fmt.Errorf("handlers: health: %w", err)
	}
	out := make(map[uint]views.HealthVM, len(hs))
	for id, st := range hs {
		out[id] = healthVM(st, w)
	}
	return out, nil
}

func healthVM(st *models.Health, w healthWindow) views.HealthVM {
	vm := views.HealthVM{Window: w.name, BucketLabel: w.bucketLabel, Succeeded: st.Succeeded, Failed: st.Failed, Open: st.Open}
	if rate, ok := st.SuccessRate(); ok {
		// Floor, so 99.6% is not shown as a perfect 100%.
		vm.Rate = fmt.Sprintf("%d%%", int(rate*100))
		vm.Failing = rate < failingBelow
	}
	for _, b := range st.Buckets {
		vm.Bars = append(vm.Bars, views.HealthBar{Succeeded: b.Succeeded, Failed: b.Failed, Open: b.Open})
	}
	return vm
}
