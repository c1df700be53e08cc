package dispatch

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// setupAt is setup on a database file whose path the test knows.
func setupAt(t *testing.T, cfg Config) (*testBundle, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "space.db")
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, err := models.Open(path, models.Options{Now: clk.Now})
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
	d := New(s, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.now = clk.Now
	d.jitter = func() float64 { return 0 }
	d.startWorkers()
	t.Cleanup(func() {
		d.cancelWork()
		d.stopWorkers()
	})
	return &testBundle{ctx: ctx, store: s, reg: reg, clk: clk, d: d}, path
}

// bombReceiver answers every request on loopback with 200, headerBytes of
// headers (1 KiB each) and bodyBytes of body, from one prepared buffer so
// that the receiver itself allocates next to nothing per answer.
func bombReceiver(t *testing.T, headerBytes, bodyBytes int) (string, *atomic.Int32) {
	t.Helper()
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n")
	value := strings.Repeat("v", 1000)
	for i := 0; i*1024 < headerBytes; i++ {
		fmt.Fprintf(&b, "X-Bomb-%06d: %s\r\n", i, value)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", bodyBytes, strings.Repeat("b", bodyBytes))
	answer := []byte(b.String())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	hits := &atomic.Int32{}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				hits.Add(1)
				_, _ = conn.Write(answer)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook", hits
}

func recordedBytes(a models.Attempt) int { return len(a.ResponseHeaders) + len(a.ResponseBody) }

// A receiver answering with 8 MB of headers: the transport stops reading at
// maxResponseHeaderRead, nothing of the answer is stored, and the server
// allocates a bounded amount per attempt. (Not parallel: it measures the
// process's allocations.)
func TestHeaderBombNotRead(t *testing.T) {
	b, _ := setupAt(t, Config{AllowPrivateTargets: true, Timeout: 10 * time.Second})
	uri, hits := bombReceiver(t, 8<<20, 10)
	w := b.webhook(t, "hookBomb", uri, nil)
	const events = 4
	b.ingest(t, events)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.round(t)
	runtime.ReadMemStats(&after)
	if hits.Load() != events {
		t.Fatalf("receiver hit %d times, want %d", hits.Load(), events)
	}
	perAttempt := (after.TotalAlloc - before.TotalAlloc) / events
	t.Logf("allocated per attempt against 8 MB of headers: %d KiB", perAttempt>>10)
	if perAttempt > 2<<20 {
		t.Fatalf("allocated %d KiB per attempt, want under 2 MiB", perAttempt>>10)
	}
	for _, d := range b.deliveries(t, w) {
		for _, a := range b.attempts(t, d.ID) {
			if a.StatusCode != 0 || !strings.Contains(a.Error, "headers exceeded") || recordedBytes(a) > recordBudget {
				t.Fatalf("attempt: status %d, error %q, %d bytes recorded", a.StatusCode, a.Error, recordedBytes(a))
			}
		}
	}
}

// Headers under the read cap but over the record budget: headers and body
// together are recorded within recordBudget, with a note saying what was
// left out, and the database stays small.
func TestLargeHeadersRecordedWithinBudget(t *testing.T) {
	t.Parallel()
	b, path := setupAt(t, Config{AllowPrivateTargets: true, Timeout: 10 * time.Second})
	uri, _ := bombReceiver(t, 200<<10, 100<<10)
	w := b.webhook(t, "hookWide", uri, nil)
	const events = 40
	b.ingest(t, events)
	b.round(t)
	n := 0
	for _, d := range b.deliveries(t, w) {
		for _, a := range b.attempts(t, d.ID) {
			n++
			if a.StatusCode != 200 || !a.Truncated || recordedBytes(a) > recordBudget {
				t.Fatalf("attempt: status %d truncated %v, %d bytes recorded (budget %d)", a.StatusCode, a.Truncated, recordedBytes(a), recordBudget)
			}
			var h map[string]string
			if err := json.Unmarshal([]byte(a.ResponseHeaders), &h); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(h[notRecordedKey], "more header(s)") || h["X-Bomb-000000"] == "" {
				t.Fatalf("headers recorded without the note or the first header: %d keys", len(h))
			}
		}
	}
	if n != events {
		t.Fatalf("%d attempts, want %d", n, events)
	}
	size := dbSize(t, b, path)
	t.Logf("database after %d attempts with 300 KiB answers: %d KiB", events, size>>10)
	if size > 5<<20 {
		t.Fatalf("database is %d KiB, want under 5 MiB", size>>10)
	}
}

// dbSize is the database file plus its WAL, after a checkpoint.
func dbSize(t *testing.T, b *testBundle, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(b.ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	return total
}

// Deleting a webhook with a large history, and pruning old events, give
// the space back to the file system.
func TestSpaceReclaimedAfterLargeDeletes(t *testing.T) {
	t.Parallel()
	b, path := setupAt(t, Config{AllowPrivateTargets: true, Timeout: 10 * time.Second, Retention: time.Hour})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("r", 60<<10)))
	}))
	t.Cleanup(srv.Close)
	empty := dbSize(t, b, path)
	fill := func(name string) *models.Webhook {
		w := b.webhook(t, name, srv.URL, nil)
		b.ingest(t, 80)
		b.round(t)
		if got := dbSize(t, b, path); got < empty+3<<20 {
			t.Fatalf("after 80 attempts of 60 KiB the database is only %d KiB", got>>10)
		}
		return w
	}
	w := fill("hookDel")
	if err := b.store.DeleteWebhook(b.ctx, w); err != nil {
		t.Fatal(err)
	}
	after := dbSize(t, b, path)
	t.Logf("empty %d KiB, after deleting the webhook %d KiB", empty>>10, after>>10)
	if after > empty+1<<20 {
		t.Fatalf("after deleting the webhook the database is %d KiB (empty: %d KiB)", after>>10, empty>>10)
	}

	fill("hookPrune")
	b.clk.Advance(2 * time.Hour)
	n, err := b.store.PruneEvents(b.ctx, b.clk.Now().Add(-time.Hour), 500)
	if err != nil || n < 80 { // with the first webhook's events, which outlive it
		t.Fatalf("pruned %d events, err %v; want at least 80", n, err)
	}
	after = dbSize(t, b, path)
	t.Logf("after pruning %d KiB", after>>10)
	if after > empty+1<<20 {
		t.Fatalf("after pruning the database is %d KiB (empty: %d KiB)", after>>10, empty>>10)
	}
}

// A service URI that does not parse (here a bad escape in the path) is
// recorded with the reason, never with the URI itself: its path and query
// may carry a token.
func TestInvalidURIErrorKeepsSecretsOut(t *testing.T) {
	t.Parallel()
	b, _ := setupAt(t, Config{AllowPrivateTargets: true})
	const secret = "tok3n-s3cret"
	uri := "http://127.0.0.1:9/hook%zz?token=" + secret
	rec := b.d.attempt(b.ctx, target{uri: uri}, []byte(`{}`))
	if rec.Error == "" || !strings.Contains(rec.Error, "invalid service URI") {
		t.Fatalf("error = %q, want an invalid service URI error", rec.Error)
	}
	if strings.Contains(rec.Error, secret) || strings.Contains(rec.RequestURI, secret) {
		t.Fatalf("the record leaks the URI's token: error %q, uri %q", rec.Error, rec.RequestURI)
	}
}
