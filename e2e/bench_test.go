package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[int(float64(len(ds)-1)*p)]
}

// BenchmarkDelivery measures, in one run, (a) raw loopback POSTs to a
// receiver without persistence and (b) events ingested over HTTP and
// delivered by the real portal on SQLite to the same receiver; then the
// idle ingest-to-delivery latency and the memory with 100,000 deliveries
// pending. Run it once:
//
//	go test -run '^$' -bench BenchmarkDelivery -benchtime 1x ./...
//
// RH_BENCH_DELIVERIES (default 40000), RH_BENCH_HOOKS (8) and
// RH_BENCH_PENDING (100000) size it.
func BenchmarkDelivery(b *testing.B) {
	deliveries := envInt("RH_BENCH_DELIVERIES", 40000)
	hooks := envInt("RH_BENCH_HOOKS", 8)
	pending := envInt("RH_BENCH_PENDING", 100000)
	const workers, perEndpoint, ingestClients = 32, 4, 16
	conc := min(workers, hooks*perEndpoint)
	events := deliveries / hooks
	deliveries = events * hooks

	rcv := newReceiver(b, false)
	rcv.track = true
	payload := []byte(`{"id":"baseline","timestamp":"2025-01-01T00:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":524,"digest":"sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d","length":524,"repository":"team/app","tag":"v1"},"request":{"id":"r","host":"h","method":"PUT","useragent":"bench"}}`)

	// (a) Baseline: the same number of POSTs, same concurrency, no portal.
	var sent atomic.Int64
	baseCPU0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(deliveries) {
				req, _ := http.NewRequest(http.MethodPost, rcv.url, bytes.NewReader(payload))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	baseDur := time.Since(start)
	baseCPU := selfCPU() - baseCPU0
	baseRate := float64(deliveries) / baseDur.Seconds()
	rcv.mu.Lock()
	rcv.arrivals, rcv.got, rcv.total = nil, map[string]int{}, 0
	rcv.mu.Unlock()

	// (b) The product: ingest over HTTP, one event per request, fan out to
	// `hooks` webhooks, delivered from the SQLite outbox.
	s := startServer(b, filepath.Join(b.TempDir(), "bench.db"), "--workers", strconv.Itoa(workers), "--per-endpoint", strconv.Itoa(perEndpoint))
	for i := range hooks {
		s.createWebhook(b, fmt.Sprintf("benchHook%02d", i), fmt.Sprintf("%s?h=%d", rcv.url, i), []string{"push"}, "")
	}
	_, rssIdle := s.rss()
	sentAt := make([]time.Time, events)
	eventBody := func(prefix string, i int) []byte {
		return []byte(fmt.Sprintf(`{"id":"%s-%d","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"team/app","tag":"v%d","digest":"sha256:%064d","size":524},"request":{"id":"r%d","host":"bench","method":"PUT","useragent":"bench"}}`, prefix, i, i, i, i))
	}
	var next atomic.Int64
	prodSelf0, prodServer0 := selfCPU(), s.cpu()
	start = time.Now()
	for range ingestClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= events {
					return
				}
				sentAt[i] = time.Now()
				if code, err := s.ingestEvent(eventBody("b", i)); err != nil || code != http.StatusAccepted {
					b.Errorf("ingest %d: %d %v", i, code, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ingestDur := time.Since(start)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, total := rcv.counts(); total >= deliveries {
			break
		}
		if time.Now().After(deadline) {
			_, total := rcv.counts()
			b.Fatalf("only %d of %d deliveries within 3 minutes", total, deliveries)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
		if i, err := strconv.Atoi(strings.TrimPrefix(a.id, "b-")); err == nil && i < events {
			lat = append(lat, a.at.Sub(sentAt[i]))
		}
	}
	prodSelf, prodServer := selfCPU()-prodSelf0, s.cpu()-prodServer0
	prodDur := last.Sub(start)
	prodRate := float64(deliveries) / prodDur.Seconds()
	loadP50, loadP99 := pct(lat, 0.50), pct(lat, 0.99)
	_, rssLoad := s.rss()

	// Idle latency: one event at a time, ingest to each delivery.
	const idleEvents = 200
	idleSent := make([]time.Time, idleEvents)
	for i := range idleEvents {
		idleSent[i] = time.Now()
		if code, err := s.ingestEvent(eventBody("idle", i)); err != nil || code != http.StatusAccepted {
			b.Fatalf("idle ingest: %d %v", code, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitUntil(b, 30*time.Second, "idle deliveries", func() bool { _, t := rcv.counts(); return t >= idleEvents*hooks })
	rcv.mu.Lock()
	idleLat := make([]time.Duration, 0, len(rcv.arrivals))
	for _, a := range rcv.arrivals {
		if i, err := strconv.Atoi(strings.TrimPrefix(a.id, "idle-")); err == nil {
			idleLat = append(idleLat, a.at.Sub(idleSent[i]))
		}
	}
	rcv.arrivals, rcv.got, rcv.total, rcv.track = nil, map[string]int{}, 0, false
	rcv.mu.Unlock()
	idleP50, idleP99 := pct(idleLat, 0.50), pct(idleLat, 0.99)

	// Memory with a backlog: the receiver holds every request, so the
	// outbox fills with `pending` deliveries; then it lets go and the
	// backlog drains.
	gate := make(chan struct{})
	rcv.mu.Lock()
	rcv.gate = gate
	rcv.mu.Unlock()
	pendEvents := pending / hooks
	const perEnvelope = 500
	for i := 0; i < pendEvents; i += perEnvelope {
		var env bytes.Buffer
		env.WriteString(`{"events":[`)
		for j := i; j < min(i+perEnvelope, pendEvents); j++ {
			if j > i {
				env.WriteByte(',')
			}
			fmt.Fprintf(&env, `{"id":"p-%d","timestamp":"2025-01-01T00:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064d","size":524,"length":524,"repository":"team/app","url":"http://r/v2/team/app/manifests/sha256:%064d","tag":"p%d"},"request":{"id":"r","addr":"127.0.0.1:1","host":"r","method":"PUT","useragent":"bench"}}`, j, j, j, j)
		}
		env.WriteString(`]}`)
		code, resp, err := s.do(http.MethodPost, "/ingest/distribution/myregistry", ingestToken, "application/vnd.docker.distribution.events.v2+json", env.Bytes())
		if err != nil || code != http.StatusAccepted {
			b.Fatalf("backlog ingest: %d %s %v", code, resp, err)
		}
	}
	time.Sleep(time.Second)
	rssPending, _ := s.rss()
	close(gate)
	drainStart := time.Now()
	var rssDrainMax int64
	deadline = time.Now().Add(3 * time.Minute)
	for {
		if cur, _ := s.rss(); cur > rssDrainMax {
			rssDrainMax = cur
		}
		if _, t := rcv.counts(); t >= pendEvents*hooks {
			break
		}
		if time.Now().After(deadline) {
			_, t := rcv.counts()
			b.Fatalf("backlog: %d of %d delivered within 3 minutes", t, pendEvents*hooks)
		}
		time.Sleep(50 * time.Millisecond)
	}
	drainDur := time.Since(drainStart)
	_, rssPeak := s.rss()
	s.stop()

	// (c) and (d): the same load on PostgreSQL, one instance, then two
	// instances on one database with ingest spread over both.
	// RH_BENCH_POSTGRES=off skips them.
	type pgRun struct {
		load             loadResult
		idleP50, idleP99 time.Duration
		idleN, instances int
	}
	var pgRuns []pgRun
	if os.Getenv("RH_BENCH_POSTGRES") != "off" {
		for _, n := range []int{1, 2} {
			_, servers := startPGInstances(b, n, "--workers", strconv.Itoa(workers), "--per-endpoint", strconv.Itoa(perEndpoint))
			for i := range hooks {
				servers[0].createWebhook(b, fmt.Sprintf("benchHook%02d", i), fmt.Sprintf("%s?h=%d", rcv.url, i), []string{"push"}, "")
			}
			r := pgRun{instances: n}
			r.load = runLoad(b, servers, rcv, fmt.Sprintf("pg%d", n), events, hooks, ingestClients)
			r.idleP50, r.idleP99, r.idleN = runIdle(b, servers, rcv, fmt.Sprintf("pg%didle", n), 200, hooks)
			for _, sv := range servers {
				sv.stop()
			}
			pgRuns = append(pgRuns, r)
		}
	}

	fmt.Printf("\n== Registry Hooks delivery benchmark (loopback, %d CPUs) ==\n", numCPU())
	fmt.Printf("(a) baseline raw POSTs:      %8d in %6.2fs = %8.0f deliveries/s (concurrency %d)\n", deliveries, baseDur.Seconds(), baseRate, conc)
	fmt.Printf("(b) product (ingest+SQLite): %8d in %6.2fs = %8.0f deliveries/s (%d events x %d webhooks; ingest took %.2fs, %d clients)\n",
		deliveries, prodDur.Seconds(), prodRate, events, hooks, ingestDur.Seconds(), ingestClients)
	fmt.Printf("    ratio b/a: %.2f\n", prodRate/baseRate)
	perDel := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(deliveries) }
	fmt.Printf("    CPU per delivery: baseline %.0f µs (client and receiver); product %.0f µs (server %.0f µs, clients and receiver %.0f µs); ratio %.2f\n",
		perDel(baseCPU), perDel(prodServer+prodSelf), perDel(prodServer), perDel(prodSelf), perDel(baseCPU)/perDel(prodServer+prodSelf))
	fmt.Printf("    ingest-to-delivery under load: p50 %s  p99 %s\n", loadP50.Round(time.Millisecond), loadP99.Round(time.Millisecond))
	fmt.Printf("    ingest-to-delivery idle:       p50 %s  p99 %s (%d deliveries)\n", idleP50.Round(100*time.Microsecond), idleP99.Round(100*time.Microsecond), len(idleLat))
	fmt.Printf("    backlog of %d deliveries drained in %.2fs = %.0f deliveries/s\n", pendEvents*hooks, drainDur.Seconds(), float64(pendEvents*hooks)/drainDur.Seconds())
	fmt.Printf("    server RSS: idle peak %d MiB, after load %d MiB, with %d pending %d MiB, max while draining %d MiB, overall peak %d MiB\n",
		rssIdle/1024, rssLoad/1024, pendEvents*hooks, rssPending/1024, rssDrainMax/1024, rssPeak/1024)
	for _, r := range pgRuns {
		label := "(c) product on PostgreSQL, 1 instance: "
		if r.instances > 1 {
			label = fmt.Sprintf("(d) PostgreSQL, %d instances:          ", r.instances)
		}
		fmt.Printf("%s%8d in %6.2fs = %8.0f deliveries/s (ratio to baseline %.2f; server CPU %.0f µs/delivery)\n",
			label, r.load.deliveries, r.load.dur.Seconds(), r.load.rate, r.load.rate/baseRate, perDel(r.load.serverCPU))
		fmt.Printf("    ingest-to-delivery under load: p50 %s  p99 %s; idle: p50 %s  p99 %s (%d deliveries)\n",
			r.load.p50.Round(time.Millisecond), r.load.p99.Round(time.Millisecond),
			r.idleP50.Round(100*time.Microsecond), r.idleP99.Round(100*time.Microsecond), r.idleN)
		b.ReportMetric(r.load.rate, fmt.Sprintf("pg%d_deliveries/s", r.instances))
		b.ReportMetric(float64(r.idleP99.Microseconds())/1000, fmt.Sprintf("pg%d_idle_p99_ms", r.instances))
	}
	b.ReportMetric(baseRate, "baseline_deliveries/s")
	b.ReportMetric(prodRate, "deliveries/s")
	b.ReportMetric(prodRate/baseRate, "ratio")
	b.ReportMetric(float64(idleP99.Microseconds())/1000, "idle_p99_ms")
	b.ReportMetric(float64(rssPeak)/1024, "peak_rss_MiB")
	b.ReportMetric(perDel(prodServer), "server_cpu_us/delivery")
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
