package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
)

// A delivery queued in an hour whose bucket has settled (and is cached)
// but that was still retrying: its result, recorded later, shows on the
// next view, not up to healthTTL later.
func TestHealthCacheShowsLateResultsAtOnce(t *testing.T) {
	t.Parallel()
	queued := time.Date(2026, 11, 30, 10, 5, 0, 0, time.UTC)
	clock := modelstest.NewClock(queued)
	s, reg := modelstest.Open(t, models.Options{Now: clock.Now})
	ctx := context.Background()
	in := models.WebhookInput{Name: "slowhook1", ServiceURI: "https://receiver.example/hook", Actions: []string{"push"}, Status: "enabled"}
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := s.CreateWebhook(ctx, reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.IngestEvents(ctx, []*models.Event{{ID: "late-1", RegistryID: reg.ID, Action: "push", Repository: "app",
		Tag: "v1", Source: "api", Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	h := New(Deps{Store: s, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	counts := func() (ok, failed, open int64) {
		t.Helper()
		got, err := h.health(ctx, []uint{w.ID}, window24h)
		if err != nil {
			t.Fatal(err)
		}
		return got[w.ID].Succeeded, got[w.ID].Failed, got[w.ID].Open
	}

	// 11:30: the 10:00 bucket settled at 11:15; this view caches it, the
	// delivery still open (its first attempts failed, it is retrying).
	clock.Set(queued.Add(85 * time.Minute))
	if ok, failed, open := counts(); ok != 0 || failed != 0 || open != 1 {
		t.Fatalf("before the result: %d succeeded, %d failed, %d open; want 0, 0, 1", ok, failed, open)
	}
	// 11:31: a retry succeeds.
	clock.Set(queued.Add(86 * time.Minute))
	claimed, err := s.ClaimDeliveries(ctx, models.ClaimOptions{Now: clock.Now(), Lease: time.Minute, Limit: 10, PerWebhook: 10})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	c := claimed[0]
	now := clock.Now()
	if err := s.RecordAttempts(ctx, []models.AttemptResult{{Token: c.Token, State: models.DeliverySucceeded, AvailableAt: now, UpdatedAt: now,
		Attempt: models.Attempt{DeliveryID: c.ID, WebhookID: c.WebhookID, EventID: c.EventID, Number: c.Attempt, RequestURI: "x",
			StatusCode: http.StatusOK, ReasonPhrase: "OK", StartedAt: now.UnixNano()}}}); err != nil {
		t.Fatal(err)
	}
	clock.Set(now.Add(time.Second))
	if ok, failed, open := counts(); ok != 1 || failed != 0 || open != 0 {
		t.Errorf("a second after the result: %d succeeded, %d failed, %d open; want 1, 0, 0", ok, failed, open)
	}
	// A settled bucket with nothing open stays cached: the next view reads
	// only the live buckets (checked by the result, not the query count).
	if ok, _, open := counts(); ok != 1 || open != 0 {
		t.Errorf("third view: %d succeeded, %d open", ok, open)
	}
}
