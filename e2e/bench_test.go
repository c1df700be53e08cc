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

// BenchmarkDelivery measures, in one run and against the same receiver:
// (a) raw loopback POSTs without persistence; events ingested over HTTP
// (one per request, 16 clients) and delivered by the real server (b) on
// SQLite, (c) on PostgreSQL with one instance, (d) on PostgreSQL with two
// instances sharing the database (ingest round-robin across them); for
// each, deliveries/s, the ratio to (a), ingest-to-delivery latency under
// load and idle, CPU per delivery; then the memory of the SQLite server
// with 100,000 deliveries pending. Run it once:
//
//	go test -run '^$' -bench BenchmarkDelivery -benchtime 1x .
//
// RH_BENCH_DELIVERIES (default 40000), RH_BENCH_HOOKS (8) and
// RH_BENCH_PENDING (100000) size it; PostgreSQL is the server at
// REGISTRYHOOKS_TEST_POSTGRES (a fresh database per configuration), and
// RH_BENCH_POSTGRES=off leaves (c) and (d) out.
func BenchmarkDelivery(b *testing.B) {
	deliveries := envInt("RH_BENCH_DELIVERIES", 40000)
	hooks := envInt("RH_BENCH_HOOKS", 8)
	pending := envInt("RH_BENCH_PENDING", 100000)
	const workers, perEndpoint, ingestClients, idleEvents = 32, 4, 16, 200
	conc := min(workers, hooks*perEndpoint)
	events := deliveries / hooks
	deliveries = events * hooks
	flags := []string{"--workers", strconv.Itoa(workers), "--per-endpoint", strconv.Itoa(perEndpoint)}

	rcv := newReceiver(b, false)
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
	perDel := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(deliveries) }

	// One configuration: webhooks on the first server, the load, then the
	// idle latency. Printed as soon as measured.
	fmt.Printf("\n== Registry Hooks delivery benchmark (loopback, %d CPUs; %d deliveries: %d events x %d webhooks; %d workers, --per-endpoint %d) ==\n",
		numCPU(), deliveries, events, hooks, workers, perEndpoint)
	fmt.Printf("%-30s %12s %6s %17s %17s %14s\n", "", "deliveries/s", "ratio", "load p50 / p99", "idle p50 / p99", "CPU/delivery")
	fmt.Printf("%-30s %12.0f %6.2f %17s %17s %11.0f µs  (client and receiver; concurrency %d)\n", "(a) baseline, raw POSTs", baseRate, 1.0, "", "", perDel(baseCPU), conc)
	type run struct {
		load             loadResult
		idleP50, idleP99 time.Duration
		idleMax          time.Duration
	}
	measure := func(label, prefix string, servers []*server) run {
		for i := range hooks {
			servers[0].createWebhook(b, fmt.Sprintf("benchHook%02d", i), fmt.Sprintf("%s?h=%d", rcv.url, i), []string{"push"}, "")
		}
		self0 := selfCPU()
		r := run{load: runLoad(b, servers, rcv, prefix, events, hooks, ingestClients)}
		self := selfCPU() - self0
		r.idleP50, r.idleP99, r.idleMax, _ = runIdle(b, servers, rcv, prefix+"idle", idleEvents, hooks)
		fmt.Printf("%-30s %12.0f %6.2f %17s %17s %11.0f µs  (server; clients and receiver %.0f µs)\n", label, r.load.rate, r.load.rate/baseRate,
			r.load.p50.Round(time.Millisecond).String()+" / "+r.load.p99.Round(time.Millisecond).String(),
			r.idleP50.Round(100*time.Microsecond).String()+" / "+r.idleP99.Round(100*time.Microsecond).String(),
			perDel(r.load.serverCPU), perDel(self))
		return r
	}

	// (b) SQLite.
	s := startServer(b, filepath.Join(b.TempDir(), "bench.db"), flags...)
	_, rssIdle := s.rss()
	sqlite := measure("(b) SQLite, 1 instance", "b", []*server{s})
	_, rssLoad := s.rss()

	// Memory with a backlog (SQLite): the receiver holds every request, so
	// the outbox fills with `pending` deliveries; then it lets go and the
	// backlog drains.
	gate := make(chan struct{})
	rcv.mu.Lock()
	rcv.gate, rcv.track = gate, false
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
	deadline := time.Now().Add(3 * time.Minute)
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
	rcv.mu.Lock()
	rcv.gate = nil
	rcv.mu.Unlock()

	// (c) and (d) PostgreSQL, each on a fresh database.
	var pg []run
	if os.Getenv("RH_BENCH_POSTGRES") != "off" {
		for _, n := range []int{1, 2} {
			_, servers := startPGInstances(b, n, flags...)
			label := "(c) PostgreSQL, 1 instance"
			if n > 1 {
				label = fmt.Sprintf("(d) PostgreSQL, %d instances", n)
			}
			pg = append(pg, measure(label, fmt.Sprintf("pg%d", n), servers))
			for _, sv := range servers {
				sv.stop()
			}
		}
	}

	fmt.Printf("    SQLite backlog of %d deliveries drained in %.2fs = %.0f deliveries/s\n", pendEvents*hooks, drainDur.Seconds(), float64(pendEvents*hooks)/drainDur.Seconds())
	fmt.Printf("    SQLite server RSS: idle peak %d MiB, after load %d MiB, with %d pending %d MiB, max while draining %d MiB, overall peak %d MiB\n",
		rssIdle/1024, rssLoad/1024, pendEvents*hooks, rssPending/1024, rssDrainMax/1024, rssPeak/1024)
	fmt.Printf("    CPU/delivery counts the registryhooks processes, not PostgreSQL's.\n")
	fmt.Printf("    idle, slowest of %d deliveries: SQLite %s", idleEvents*hooks, sqlite.idleMax.Round(100*time.Microsecond))
	for i, r := range pg {
		fmt.Printf("; PostgreSQL, %d instance(s) %s", i+1, r.idleMax.Round(100*time.Microsecond))
	}
	fmt.Println()
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Printf("    target SQLite >= 1/3 of baseline: %s (%.2f)\n", verdict(sqlite.load.rate/baseRate >= 1.0/3), sqlite.load.rate/baseRate)
	if len(pg) == 2 {
		fmt.Printf("    target PostgreSQL, 1 instance >= 5000/s: %s (%.0f); idle p99 < 20ms on PostgreSQL: %s (%s; %s with 2 instances)\n",
			verdict(pg[0].load.rate >= 5000), pg[0].load.rate,
			verdict(pg[0].idleP99 < 20*time.Millisecond && pg[1].idleP99 < 20*time.Millisecond),
			pg[0].idleP99.Round(100*time.Microsecond), pg[1].idleP99.Round(100*time.Microsecond))
	}
	b.ReportMetric(baseRate, "baseline_deliveries/s")
	b.ReportMetric(sqlite.load.rate, "deliveries/s")
	b.ReportMetric(sqlite.load.rate/baseRate, "ratio")
	b.ReportMetric(float64(sqlite.idleP99.Microseconds())/1000, "idle_p99_ms")
	b.ReportMetric(float64(rssPeak)/1024, "peak_rss_MiB")
	b.ReportMetric(perDel(sqlite.load.serverCPU), "server_cpu_us/delivery")
	for i, r := range pg {
		b.ReportMetric(r.load.rate, fmt.Sprintf("pg%d_deliveries/s", i+1))
		b.ReportMetric(float64(r.idleP99.Microseconds())/1000, fmt.Sprintf("pg%d_idle_p99_ms", i+1))
	}
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
