package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// concReceiver counts, per webhook (the "h" query parameter), the requests
// it is serving at once and the most it ever served at once, and every
// event id it received.
type concReceiver struct {
	url   string
	delay time.Duration
	mu    sync.Mutex
	now   map[string]int
	peak  map[string]int
	got   map[string]int // "hook/event id" -> deliveries
	// first is when the first request of each "hook/event id" began.
	first map[string]time.Time
}

func newConcReceiver(t *testing.T, delay time.Duration) *concReceiver {
	t.Helper()
	r := &concReceiver{delay: delay, now: map[string]int{}, peak: map[string]int{}, got: map[string]int{}, first: map[string]time.Time{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + l.Addr().String() + "/hook"
	srv := &http.Server{Handler: r}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *concReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	began := time.Now()
	hook := req.URL.Query().Get("h")
	body, _ := io.ReadAll(req.Body)
	var p struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &p)
	key := hook + "/" + p.ID
	r.mu.Lock()
	if _, ok := r.first[key]; !ok {
		r.first[key] = began
	}
	r.now[hook]++
	if r.now[hook] > r.peak[hook] {
		r.peak[hook] = r.now[hook]
	}
	r.mu.Unlock()
	time.Sleep(r.delay)
	r.mu.Lock()
	r.now[hook]--
	r.got[key]++
	r.mu.Unlock()
}

func (r *concReceiver) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Three instances on one PostgreSQL database, 3,000 events ingested
// round-robin with a slow receiver; one instance killed with SIGKILL
// mid-way, another stopped gracefully: every accepted event arrives at
// every webhook, duplicates only among deliveries in flight at the kill,
// and no webhook ever gets more concurrent requests than --per-endpoint
// across all instances.
func TestPostgresThreeInstances(t *testing.T) {
	const (
		events      = 3000
		hooks       = 2
		perEndpoint = 3
	)
	rcv := newConcReceiver(t, 5*time.Millisecond)
	_, servers := startPGInstances(t, 3, "--per-endpoint", fmt.Sprint(perEndpoint), "--lease-ttl", "8s", "--lease-heartbeat", "2s", "--delivery-timeout", "5s")
	for i := range hooks {
		servers[0].createWebhook(t, fmt.Sprintf("multi%d", i), fmt.Sprintf("%s?h=%d", rcv.url, i), []string{"push"}, "")
	}
	var mu sync.Mutex
	accepted := map[int]bool{}
	var next atomic.Int64
	var alive atomic.Int32 // instances still taking ingest: 3, then 2, then 1
	alive.Store(3)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= events {
					return
				}
				// The killed and the stopped instance stop getting traffic,
				// as a load balancer would take them out.
				s := servers[2-i%int(alive.Load())]
				code, err := s.ingestEvent([]byte(fmt.Sprintf(`{"id":"multi-%05d","action":"push","target":{"repository":"team/app","tag":"v%d","digest":"sha256:%064d","size":1}}`, i, i, i)))
				if err == nil && code == http.StatusAccepted {
					mu.Lock()
					accepted[i] = true
					mu.Unlock()
				}
			}
		}()
	}
	waitUntil(t, time.Minute, "deliveries under way", func() bool { return rcv.unique() >= 300 })
	alive.Store(2)
	servers[0].kill() // SIGKILL: its leases are taken over when they run out
	killedAt := time.Now()
	waitUntil(t, time.Minute, "more deliveries", func() bool { return rcv.unique() >= 1200 })
	alive.Store(1)
	servers[1].stop() // graceful: hands back what it had not started
	wg.Wait()
	mu.Lock()
	n := len(accepted)
	mu.Unlock()
	if n < events*9/10 {
		t.Fatalf("only %d of %d events accepted", n, events)
	}
	waitUntil(t, 2*time.Minute, "every accepted event at every webhook", func() bool { return rcv.unique() >= n*hooks })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	dup := 0
	for i := range events {
		for h := range hooks {
			key := fmt.Sprintf("%d/multi-%05d", h, i)
			c := rcv.got[key]
			if accepted[i] && c == 0 {
				t.Errorf("event %d never reached webhook %d", i, h)
			}
			if c > 1 {
				dup += c - 1
				// Only a delivery in flight at the kill (sent, its result
				// not yet committed) may arrive twice: its first request
				// began before the kill.
				if !rcv.first[key].Before(killedAt) {
					t.Errorf("%s arrived %d times, first after the kill", key, c)
				}
			}
		}
	}
	for h, p := range rcv.peak {
		if p > perEndpoint {
			t.Errorf("webhook %s had %d concurrent requests across instances, limit %d", h, p, perEndpoint)
		}
	}
	t.Logf("%d events accepted, %d deliveries, %d duplicates, peak concurrency per webhook %v", n, len(rcv.got), dup, rcv.peak)
	if strings.Contains(servers[2].logs.String(), "level=ERROR") {
		t.Logf("survivor's errors:\n%s", tail(servers[2].logs.String(), 2000))
	}
}
