package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// kill -9 in the middle of a backlog loses nothing: every event the portal
// accepted (202) reaches the receiver after a restart on the same database,
// at least once; the few sent twice are those that were in flight.
func TestCrashLosesNothing(t *testing.T) {
	const n = 1500
	db := filepath.Join(t.TempDir(), "x.db")
	s := startServer(t, db)
	rcv := newReceiver(t, false)
	rcv.delay = 20 * time.Millisecond // slow at first: the backlog builds up
	s.createWebhook(t, "hookCrash", rcv.url, []string{"push"}, "")

	body := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"id":"crash-%05d","action":"push","target":{"repository":"team/app","tag":"v%d","digest":"sha256:%064d","size":1}}`, i, i, i))
	}
	var mu sync.Mutex
	accepted := map[int]bool{}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if code, err := s.ingestEvent(body(i)); err == nil && code == http.StatusAccepted {
					mu.Lock()
					accepted[i] = true
					mu.Unlock()
				}
			}
		}()
	}
	killed := false
	for i := range n {
		next <- i
		if !killed && i > n/2 {
			if u, _ := rcv.counts(); u >= 50 {
				s.kill() // mid-ingest and mid-delivery
				killed = true
			}
		}
	}
	close(next)
	wg.Wait()
	if !killed {
		waitUntil(t, 30*time.Second, "50 deliveries before the kill", func() bool { u, _ := rcv.counts(); return u >= 50 })
		s.kill()
	}
	uniqueAtKill, _ := rcv.counts()
	mu.Lock()
	nAccepted := len(accepted)
	mu.Unlock()
	t.Logf("killed with %d events accepted, %d delivered", nAccepted, uniqueAtKill)
	if uniqueAtKill >= nAccepted {
		t.Fatalf("the backlog was empty at the kill (%d delivered of %d); the test proves nothing", uniqueAtKill, nAccepted)
	}

	rcv.mu.Lock()
	rcv.delay = 0
	rcv.mu.Unlock()
	s2 := startServer(t, db)
	// The registry retries what was not accepted; accepted ones come back
	// as duplicates and are not queued twice.
	for i := range n {
		if !accepted[i] {
			if code, err := s2.ingestEvent(body(i)); err != nil || code != http.StatusAccepted {
				t.Fatalf("re-ingest %d: %d %v", i, code, err)
			}
		}
	}
	waitUntil(t, 60*time.Second, "every event after the restart", func() bool { u, _ := rcv.counts(); return u == n })
	time.Sleep(500 * time.Millisecond)
	unique, total := rcv.counts()
	rcv.mu.Lock()
	missing := 0
	for i := range n {
		if rcv.got[fmt.Sprintf("crash-%05d", i)] == 0 {
			missing++
		}
	}
	rcv.mu.Unlock()
	t.Logf("after restart: %d unique events, %d deliveries (%d sent twice: in flight at the kill)", unique, total, total-unique)
	if missing != 0 || unique != n {
		t.Fatalf("%d events missing", missing)
	}
	if total-unique > 32 {
		t.Fatalf("%d duplicates; only the in-flight deliveries (at most the 32 workers) may repeat", total-unique)
	}
}
