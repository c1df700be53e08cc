// Package e2e runs the real registryhooks binary against real registries and
// receivers on loopback: a Distribution registry pushed to with
// go-containerregistry, a kill -9 in the middle of a backlog, and the
// throughput benchmark.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	ingestToken   = "e2e-ingest-token-0123456789abcdef"
	apiToken      = "e2e-api-token-0123456789abcdef"
	adminPassword = "e2e-admin-Password-1"
	armRegistry   = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "registryhooks-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "registryhooks")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the portal:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// server is one running registryhooks process.
type server struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string
	db   string
	url  string
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 8<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer runs the binary on a free loopback port with database db and
// waits until /healthz answers 200. It is killed when the test ends.
func startServer(t testing.TB, db string, extra ...string) *server {
	t.Helper()
	s := launchServer(t, db, nil, extra...)
	s.waitHealthy()
	return s
}

// launchServer starts the binary on a free loopback port with database db
// and env added to the environment, without waiting for it: several
// instances can then start together. It is killed when the test ends.
func launchServer(t testing.TB, db string, env []string, extra ...string) *server {
	t.Helper()
	s := &server{t: t, addr: freeAddr(t), db: db, logs: &syncBuffer{}, done: make(chan struct{})}
	s.url = "http://" + s.addr
	args := append([]string{"serve", "--addr", s.addr, "--db", db, "--allow-private-targets"}, extra...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = append(append(os.Environ(),
		"REGISTRYHOOKS_INGEST_TOKEN="+ingestToken,
		"REGISTRYHOOKS_API_TOKEN="+apiToken,
		"REGISTRYHOOKS_ADMIN_PASSWORD="+adminPassword,
		"REGISTRYHOOKS_LOG_FORMAT=text",
	), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server %s log:\n%s", s.addr, tail(s.logs.String(), 4000))
		}
	})
	return s
}

// waitHealthy waits up to 20 s for /healthz to answer 200.
func (s *server) waitHealthy() {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("server exited: %s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 20s: %v\n%s", err, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

var instanceLine = regexp.MustCompile(`msg="Registry Hooks is listening".* instance=(\S+)`)

// instanceID is the lease owner id the server logged at start, or "".
func (s *server) instanceID() string {
	if m := instanceLine.FindStringSubmatch(s.logs.String()); m != nil {
		return m[1]
	}
	return ""
}

// kill sends SIGKILL and waits for the process to go.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("server did not stop within 30s")
		s.kill()
	}
}

// cpu returns the CPU time (user + system) the server process has used.
func (s *server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses): state is
	// field 3, utime 14 and stime 15, in clock ticks (100 per second).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// selfCPU returns the CPU time this test process has used (clients and
// receivers run here).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss returns the resident set size and its peak (VmHWM) of the server
// process in KiB.
func (s *server) rss() (cur, peak int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			cur = v
		case "VmHWM:":
			peak = v
		}
	}
	return cur, peak
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}, Timeout: 30 * time.Second}

func (s *server) do(method, path, token, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// createWebhook creates a webhook through the ARM-compatible API, as the
// Azure SDK and az CLI do.
func (s *server) createWebhook(t testing.TB, name, uri string, actions []string, scope string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"location": "local", "properties": map[string]any{
		"serviceUri": uri, "actions": actions, "scope": scope, "status": "enabled"}})
	path := armRegistry + "/webhooks/" + name + "?api-version=2025-11-01"
	var code int
	var resp []byte
	var err error
	for i := 0; i < 100; i++ { // the ARM API may still be coming up in a fresh tree
		code, resp, err = s.do(http.MethodPut, path, apiToken, "application/json", body)
		if err == nil && code < 300 {
			return
		}
		if code != http.StatusNotFound {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("create webhook %s: %d %s %v", name, code, resp, err)
}

// ingestEvent posts one event in ACR's shape and returns the answer status.
func (s *server) ingestEvent(body []byte) (int, error) {
	code, _, err := s.do(http.MethodPost, "/ingest/events/myregistry", ingestToken, "application/json", body)
	return code, err
}

// receiver is a webhook endpoint on loopback that records every payload.
type receiver struct {
	srv   *http.Server
	url   string
	mu    sync.Mutex
	got   map[string]int // event id -> deliveries
	total int
	// arrived records the first arrival of each event id.
	arrived  map[string]time.Time
	payloads []map[string]any
	keep     bool // keep payloads (small tests only)
	track    bool // keep every arrival (benchmark)
	arrivals []arrival
	delay    time.Duration
	gate     chan struct{} // when non-nil, requests wait for it to close
}

func newReceiver(t testing.TB, keep bool) *receiver {
	t.Helper()
	r := &receiver{got: map[string]int{}, arrived: map[string]time.Time{}, keep: keep}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + l.Addr().String() + "/hook"
	r.srv = &http.Server{Handler: r}
	go func() { _ = r.srv.Serve(l) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	delay, gate := r.delay, r.gate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-req.Context().Done():
			return
		}
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	var p struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &p)
	r.mu.Lock()
	r.got[p.ID]++
	r.total++
	if _, ok := r.arrived[p.ID]; !ok {
		r.arrived[p.ID] = now
	}
	if r.track {
		r.arrivals = append(r.arrivals, arrival{id: p.ID, at: now})
	}
	if r.keep {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		r.payloads = append(r.payloads, m)
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

type arrival struct {
	id string
	at time.Time
}

func (r *receiver) counts() (unique, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got), r.total
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
