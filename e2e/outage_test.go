package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// PostgreSQL stopped for 10 s under load (a throw-away cluster of this
// test, so the shared server is not disturbed) and started again: two
// instances answer ingest with 503 meanwhile (so Distribution retries),
// /readyz with 503 and /healthz with 200; no accepted event is lost and
// deliveries resume without restarting the instances. The database
// password in --db never reaches the logs.
func TestPostgresOutage(t *testing.T) {
	const (
		down    = 10 * time.Second
		noticed = 3 * time.Second // readiness may lag the outage this much
	)
	cl := startPGCluster(t)
	dbURL := newPostgresDB(t, cl.admin)
	// Trust authentication ignores the password; the servers must not log it.
	const dbPassword = "e2e-db-Password-7f3a9c"
	u, _ := url.Parse(dbURL)
	u.User = url.UserPassword("postgres", dbPassword)
	dbURL = u.String()

	inst := []*server{launchServer(t, dbURL, pgEnv), launchServer(t, dbURL, pgEnv)}
	rec := newRecorder(t, 5*time.Millisecond)
	for i, s := range inst {
		s.waitHealthy()
		rec.watch(fmt.Sprint("AB"[i:i+1]), s)
	}
	inst[0].createWebhook(t, "multiHook0", rec.hookURL("/hook", "0"), []string{"push"}, "")

	var (
		mu        sync.Mutex
		accepted  = map[string]bool{}
		codes     = map[int]int{} // answers to ingest, by status
		transport []string        // ingest requests that got no answer
		lies      []string        // 202s while the database was down
		downFrom  time.Time       // the cluster is stopped from here ...
		downUntil time.Time       // ... to here
	)
	var seq atomic.Int64
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				i := int(seq.Add(1))
				id := fmt.Sprintf("outage-%05d", i)
				// Retried until accepted, as Distribution retries a
				// notification endpoint that answers 503.
				for try := 0; ; try++ {
					s := inst[(i+try+c)%len(inst)]
					start := time.Now()
					code, _, err := s.ingestAs(ingestToken, pushEvent(id, i))
					end := time.Now()
					mu.Lock()
					if err != nil {
						transport = append(transport, fmt.Sprintf("%s at +%s: %v", id, start.Sub(downFrom).Round(time.Millisecond), err))
					} else {
						codes[code]++
					}
					if code == http.StatusAccepted {
						accepted[id] = true
						if !downFrom.IsZero() && start.After(downFrom) && (downUntil.IsZero() || end.Before(downUntil)) {
							lies = append(lies, id)
						}
					}
					mu.Unlock()
					if code == http.StatusAccepted {
						break
					}
					if err == nil && code != http.StatusServiceUnavailable {
						break // counted in codes; checked below
					}
					if try > 600 {
						t.Errorf("ingest %s: not accepted after %d tries", id, try)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	// Probes: /readyz and /healthz of both instances, every 200 ms.
	type probe struct {
		at              time.Time
		inst            int
		readyz, healthz int
	}
	var probes []probe
	probing := make(chan struct{})
	probesDone := make(chan struct{})
	go func() {
		defer close(probesDone)
		for {
			select {
			case <-probing:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for i, s := range inst {
				p := probe{at: time.Now(), inst: i}
				p.readyz, _, _ = s.do(http.MethodGet, "/readyz", "", "", nil)
				p.healthz, _, _ = s.do(http.MethodGet, "/healthz", "", "", nil)
				mu.Lock()
				probes = append(probes, p)
				mu.Unlock()
			}
		}
	}()

	time.Sleep(2 * time.Second)
	mu.Lock()
	before := len(accepted)
	mu.Unlock()
	if before == 0 {
		t.Fatalf("no event accepted before the outage")
	}
	cl.stop()
	mu.Lock()
	downFrom = time.Now()
	mu.Unlock()
	time.Sleep(down)
	mu.Lock()
	downUntil = time.Now()
	mu.Unlock()
	cl.start()
	upAt := time.Now()
	for i, s := range inst {
		waitUntil(t, 30*time.Second, fmt.Sprintf("/readyz 200 on instance %d after the restart", i), func() bool {
			code, _, _ := s.do(http.MethodGet, "/readyz", "", "", nil)
			return code == http.StatusOK
		})
	}
	readyAfter := time.Since(upAt)
	time.Sleep(3 * time.Second) // load after the restart
	close(stopLoad)
	wg.Wait()
	close(probing)
	<-probesDone

	mu.Lock()
	nAccepted := len(accepted)
	t.Logf("%d events accepted (%d before the outage); answers %v; ready again %s after the restart",
		nAccepted, before, codes, readyAfter.Round(100*time.Millisecond))
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no ingest answered 503 while PostgreSQL was down")
	}
	for code, n := range codes {
		if code != http.StatusAccepted && code != http.StatusServiceUnavailable {
			t.Errorf("%d ingest requests answered %d; want only 202 or 503", n, code)
		}
	}
	if len(transport) > 0 {
		t.Errorf("%d ingest requests got no answer, e.g. %s", len(transport), transport[0])
	}
	if len(lies) > 0 {
		t.Errorf("%d events were answered 202 while PostgreSQL was down, e.g. %s", len(lies), lies[0])
	}
	if nAccepted <= before {
		t.Errorf("no event accepted after the outage")
	}
	var notReady, notAlive, probesDown int
	for _, p := range probes {
		if p.healthz != http.StatusOK {
			notAlive++
		}
		if p.at.After(downFrom.Add(noticed)) && p.at.Before(downUntil) {
			probesDown++
			if p.readyz != http.StatusServiceUnavailable {
				notReady++
			}
		}
	}
	if probesDown == 0 {
		t.Errorf("no /readyz probe ran while PostgreSQL was down")
	}
	if notReady > 0 {
		t.Errorf("%d of %d /readyz probes while PostgreSQL was down (from %s after the stop) did not answer 503", notReady, probesDown, noticed)
	}
	if notAlive > 0 {
		t.Errorf("%d of %d /healthz probes did not answer 200 (liveness must not depend on the database)", notAlive, len(probes))
	}
	ids := make([]string, 0, nAccepted)
	for id := range accepted {
		ids = append(ids, id)
	}
	mu.Unlock()

	// Deliveries resume without a restart: every accepted event arrives.
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := rec.answeredCount()
		missing = missing[:0]
		for _, id := range ids {
			if got["0/"+id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(missing) > 0 {
		// What the database says of them, to tell a stuck lease from a
		// retry scheduled far ahead.
		sort.Strings(missing)
		db := openPostgres(t, dbURL)
		for _, id := range missing[:min(len(missing), 10)] {
			var state, attempts int
			var due int64
			var owner, lastErr string
			err := db.QueryRow(`SELECT d.state, d.attempts, d.available_at, d.lease_owner, d.last_error FROM deliveries d
				JOIN events e ON e.seq = d.event_seq WHERE e.id = $1`, id).Scan(&state, &attempts, &due, &owner, &lastErr)
			t.Logf("%s: state %d, attempts %d, due in %s, lease owner %q, last error %q (%v)", id, state, attempts,
				time.Until(time.Unix(0, due)).Round(time.Millisecond), owner, lastErr, err)
		}
		t.Fatalf("%d of %d accepted events not delivered within 90 s of the restart, e.g. %v", len(missing), len(ids), missing[:min(len(missing), 10)])
	}
	for i, s := range inst {
		select {
		case <-s.done:
			t.Errorf("instance %d exited during the outage", i)
		default:
		}
		if strings.Contains(s.logs.String(), dbPassword) {
			t.Errorf("instance %d logged the database password", i)
		}
	}
}
