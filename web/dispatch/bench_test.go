package dispatch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
)

// BenchmarkDrain measures the dispatcher alone: a backlog of b.N
// deliveries (8 webhooks) drained to a loopback receiver.
func BenchmarkDrain(b *testing.B) {
	s, reg := modelstest.Open(b, models.Options{})
	ctx := context.Background()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer srv.Close()
	const hooks = 8
	for i := range hooks {
		in := models.WebhookInput{Name: fmt.Sprintf("benchHook%d", i), ServiceURI: srv.URL, Actions: []string{"push"}}
		in.Validate()
		if _, err := s.CreateWebhook(ctx, reg, in, "b"); err != nil {
			b.Fatal(err)
		}
	}
	events := max(b.N/hooks, 1)
	for i := 0; i < events; i += 500 {
		var evs []*models.Event
		for j := i; j < min(i+500, events); j++ {
			id := fmt.Sprintf("ev-%d", j)
			evs = append(evs, &models.Event{ID: id, RegistryID: reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api",
				Payload: []byte(`{"id":"` + id + `","action":"push","target":{"repository":"a","tag":"v"}}`)})
		}
		if _, err := s.IngestEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	d := New(s, Config{AllowPrivateTargets: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.ResetTimer()
	start := time.Now()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for got.Load() < int64(events*hooks) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(events*hooks)/time.Since(start).Seconds(), "deliveries/s")
	_ = d.Stop(ctx)
}
