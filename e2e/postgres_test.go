package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// pgAdminURL is the PostgreSQL server the e2e tests make databases on
// (REGISTRYHOOKS_TEST_POSTGRES, an admin URL).
func pgAdminURL() string {
	if u := os.Getenv("REGISTRYHOOKS_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// startPGInstances starts n servers on one fresh database on
// REGISTRYHOOKS_TEST_POSTGRES, together (as the multi-instance tests do),
// with the same secret key, and waits until each answers /healthz.
func startPGInstances(t testing.TB, n int, extra ...string) (string, []*server) {
	t.Helper()
	db := newPostgresDB(t, pgAdminURL())
	var out []*server
	for range n {
		out = append(out, launchServer(t, db, pgEnv, extra...))
	}
	for _, s := range out {
		s.waitHealthy()
	}
	return db, out
}

func benchEvent(prefix string, i int) []byte {
	return []byte(fmt.Sprintf(`{"id":"%s-%d","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"team/app","tag":"v%d","digest":"sha256:%064d","size":524},"request":{"id":"r%d","host":"bench","method":"PUT","useragent":"bench"}}`, prefix, i, i, i, i))
}

// loadResult is one measured load phase.
type loadResult struct {
	deliveries int
	dur        time.Duration
	rate       float64
	p50, p99   time.Duration
	serverCPU  time.Duration
}

// runLoad ingests events (one per request, clients at a time, round-robin
// over servers) and waits until each has reached every webhook.
func runLoad(b testing.TB, servers []*server, rcv *receiver, prefix string, events, hooks, clients int) loadResult {
	b.Helper()
	rcv.mu.Lock()
	rcv.arrivals, rcv.got, rcv.total, rcv.track = nil, map[string]int{}, 0, true
	rcv.mu.Unlock()
	sentAt := make([]time.Time, events)
	var cpu0 time.Duration
	for _, s := range servers {
		cpu0 += s.cpu()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= events {
					return
				}
				sentAt[i] = time.Now()
				if code, err := servers[i%len(servers)].ingestEvent(benchEvent(prefix, i)); err != nil || code != http.StatusAccepted {
					b.Errorf("ingest %d: %d %v", i, code, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitUntil(b, 3*time.Minute, prefix+" deliveries", func() bool { _, t := rcv.counts(); return t >= events*hooks })
	rcv.mu.Lock()
	arr := rcv.arrivals
	rcv.arrivals, rcv.got, rcv.total = nil, map[string]int{}, 0
	rcv.mu.Unlock()
	var last time.Time
	lat := make([]time.Duration, 0, len(arr))
	for _, a := range arr {
		if a.at.After(last) {
			last = a.at
		}
		if i, err := strconv.Atoi(strings.TrimPrefix(a.id, prefix+"-")); err == nil && i < events {
			lat = append(lat, a.at.Sub(sentAt[i]))
		}
	}
	var cpu time.Duration
	for _, s := range servers {
		cpu += s.cpu()
	}
	r := loadResult{deliveries: events * hooks, dur: last.Sub(start), serverCPU: cpu - cpu0}
	r.rate = float64(r.deliveries) / r.dur.Seconds()
	r.p50, r.p99 = pct(lat, 0.50), pct(lat, 0.99)
	return r
}

// runIdle sends n events one at a time (5 ms apart) and returns the
// ingest-to-delivery latency percentiles.
func runIdle(b testing.TB, servers []*server, rcv *receiver, prefix string, n, hooks int) (p50, p99, worst time.Duration, count int) {
	b.Helper()
	rcv.mu.Lock()
	rcv.arrivals, rcv.got, rcv.total, rcv.track = nil, map[string]int{}, 0, true
	rcv.mu.Unlock()
	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = time.Now()
		if code, err := servers[i%len(servers)].ingestEvent(benchEvent(prefix, i)); err != nil || code != http.StatusAccepted {
			b.Fatalf("idle ingest: %d %v", code, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitUntil(b, 30*time.Second, prefix+" deliveries", func() bool { _, t := rcv.counts(); return t >= n*hooks })
	rcv.mu.Lock()
	lat := make([]time.Duration, 0, len(rcv.arrivals))
	for _, a := range rcv.arrivals {
		if i, err := strconv.Atoi(strings.TrimPrefix(a.id, prefix+"-")); err == nil && i < n {
			lat = append(lat, a.at.Sub(sent[i]))
		}
	}
	rcv.arrivals, rcv.got, rcv.total, rcv.track = nil, map[string]int{}, 0, false
	rcv.mu.Unlock()
	return pct(lat, 0.5), pct(lat, 0.99), pct(lat, 1), len(lat)
}
