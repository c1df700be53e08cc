package models

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkClaimDeliveries measures one claim of 32 rows from a backlog of
// 8 webhooks, with some webhooks busy and one full, as the dispatcher runs it.
func BenchmarkClaimDeliveries(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "claim.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	_ = s.EnsureDefaultRegistry(ctx)
	reg, _ := s.GetRegistry(ctx, DefaultRegistryName)
	var ids []uint
	for i := range 8 {
		in := WebhookInput{Name: fmt.Sprintf("claimHook%d", i), ServiceURI: "http://127.0.0.1:9/", Actions: []string{"push"}}
		in.Validate()
		w, err := s.CreateWebhook(ctx, reg, in, "b")
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	total := b.N*32/8 + 1000
	for i := 0; i < total; i += 500 {
		var evs []*Event
		for j := i; j < min(i+500, total); j++ {
			evs = append(evs, &Event{ID: fmt.Sprintf("ev-%d", j), RegistryID: reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api", Payload: []byte(`{}`)})
		}
		if _, err := s.IngestEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	busy := map[uint]int{ids[0]: 16, ids[1]: 3, ids[2]: 5}
	b.ResetTimer()
	n := 0
	for range b.N {
		got, err := s.ClaimDeliveries(ctx, ClaimOptions{Now: time.Now().Add(time.Hour), Lease: 24 * time.Hour, Limit: 32, PerWebhook: 16, Busy: busy})
		if err != nil {
			b.Fatal(err)
		}
		n += len(got)
	}
	b.ReportMetric(float64(n)/float64(b.N), "rows/claim")
}
