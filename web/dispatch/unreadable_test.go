package dispatch

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// A webhook whose secrets were sealed with another key fails alone: its
// delivery records an attempt saying why, sends nothing, and the other
// webhook's delivery of the same event goes out in the same round.
func TestUnreadableWebhookFailsAlone(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "u.db")
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	ours, _ := models.NewCipher(make([]byte, 32))
	theirs, _ := models.NewCipher([]byte(strings.Repeat("x", 32)))
	ctx := context.Background()
	srv, got := receiver(t, http.StatusOK)
	// The foreign webhook is written first, by a store whose key differs,
	// as a row copied from another database would be.
	other, err := models.Open(path, models.Options{Cipher: theirs, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.EnsureDefaultRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := other.GetRegistry(ctx, models.DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	in := models.WebhookInput{Name: "foreign", ServiceURI: srv.URL + "/foreign", Actions: []string{"push"}}
	in.Validate()
	bad, err := other.CreateWebhook(ctx, reg, in, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := models.Open(path, models.Options{Cipher: ours, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b := &testBundle{ctx: ctx, store: s, reg: reg, clk: clk}
	good := b.webhook(t, "goodhook", srv.URL+"/good", nil)
	b.d = New(s, Config{AllowPrivateTargets: true, MaxAttempts: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.d.now, b.d.jitter = clk.Now, func() float64 { return 0 }
	b.d.startWorkers()
	t.Cleanup(func() { b.d.cancelWork(); b.d.stopWorkers() })

	b.ingest(t, 1)
	if n := b.round(t); n != 2 {
		t.Fatalf("claimed %d, want 2", n)
	}
	if c := <-got; !strings.Contains(c.body, `"action":"push"`) {
		t.Fatalf("good webhook got %q", c.body)
	}
	select {
	case c := <-got:
		t.Fatalf("a second request arrived: %+v", c)
	default:
	}
	if rows := b.deliveries(t, good); len(rows) != 1 || rows[0].State != models.DeliverySucceeded {
		t.Fatalf("good delivery = %+v", rows)
	}
	rows := b.deliveries(t, bad)
	if len(rows) != 1 || rows[0].State != models.DeliveryPending || !strings.Contains(rows[0].LastError, "cannot decrypt") {
		t.Fatalf("foreign delivery = %+v", rows)
	}
	as := b.attempts(t, rows[0].ID)
	if len(as) != 1 || as[0].StatusCode != 0 || as[0].RequestURI != models.Mask || !strings.Contains(as[0].Error, "nothing was sent") {
		t.Fatalf("foreign attempts = %+v", as)
	}
	// It is retried like any failure, then marked failed.
	clk.Advance(time.Minute)
	b.round(t)
	if rows := b.deliveries(t, bad); rows[0].State != models.DeliveryFailed || rows[0].Attempts != 2 {
		t.Fatalf("foreign delivery after retry = %+v", rows[0].Delivery)
	}
}
