package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a webhook endpoint on loopback for the multi-instance tests.
// It records every request with the webhook it was for (the query
// parameter h), the event id, which registryhooks instance sent it (found
// from the connection's owner in /proc), when it started and ended and
// whether it was answered; and it counts the requests open at once per
// webhook, so a per-webhook limit held across instances can be checked.
type recorder struct {
	srv  *http.Server
	url  string
	port int

	mu        sync.Mutex
	delay     time.Duration
	instances map[int]string    // pid -> instance name
	open      map[string]int    // webhook -> requests open now
	opened    map[*request]bool // requests open now
	maxOpen   map[string]int    // webhook -> most requests open at once
	reqs      []request
}

// request is one request the recorder saw.
type request struct {
	hook, event, from string
	path              string
	start, end        time.Time
	// answered: the recorder wrote its 200; false when the sender went
	// away first (killed, or it gave up).
	answered bool
}

// key names one delivery: an event for a webhook.
func (r request) key() string { return r.hook + "/" + r.event }

type peerKey struct{}

func newRecorder(t testing.TB, delay time.Duration) *recorder {
	t.Helper()
	r := &recorder{delay: delay, instances: map[int]string{}, open: map[string]int{}, opened: map[*request]bool{}, maxOpen: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.port = l.Addr().(*net.TCPAddr).Port
	r.url = "http://" + l.Addr().String()
	r.srv = &http.Server{Handler: r, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, peerKey{}, r.identify(c.RemoteAddr().String()))
	}}
	go func() { _ = r.srv.Serve(l) }()
	t.Cleanup(func() { _ = r.srv.Close() })
	return r
}

// hookURL is the service URI of webhook h.
func (r *recorder) hookURL(path, h string) string { return r.url + path + "?h=" + h }

// watch names the instances whose requests the recorder attributes.
func (r *recorder) watch(name string, s *server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.instances[s.cmd.Process.Pid] = name
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rq := request{start: time.Now(), hook: req.URL.Query().Get("h"), path: req.URL.Path}
	rq.from, _ = req.Context().Value(peerKey{}).(string)
	body, _ := io.ReadAll(req.Body)
	var p struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &p)
	rq.event = p.ID
	r.mu.Lock()
	r.open[rq.hook]++
	r.opened[&rq] = true
	if r.open[rq.hook] > r.maxOpen[rq.hook] {
		r.maxOpen[rq.hook] = r.open[rq.hook]
	}
	delay := r.delay
	r.mu.Unlock()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		rq.answered = true
		w.WriteHeader(http.StatusOK)
	case <-req.Context().Done():
	}
	rq.end = time.Now()
	r.mu.Lock()
	r.open[rq.hook]--
	delete(r.opened, &rq)
	r.reqs = append(r.reqs, rq)
	r.mu.Unlock()
}

// snapshot returns a copy of the requests recorded so far.
func (r *recorder) snapshot() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// answeredCount counts answered requests per delivery key.
func (r *recorder) answeredCount() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int{}
	for _, q := range r.reqs {
		if q.answered {
			m[q.key()]++
		}
	}
	return m
}

// openNow counts, per instance, the requests open now that started less
// than `within` ago.
func (r *recorder) openNow(within time.Duration) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int{}
	since := time.Now().Add(-within)
	for q := range r.opened {
		if q.start.After(since) {
			m[q.from]++
		}
	}
	return m
}

// maxConcurrent returns the most requests open at once for each webhook.
func (r *recorder) maxConcurrent() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int{}
	for k, v := range r.maxOpen {
		m[k] = v
	}
	return m
}

// identify finds which watched instance holds the other end of a loopback
// connection from remote ("127.0.0.1:port"): the socket's inode from
// /proc/net/tcp, then the process that has it among its file descriptors.
// It answers "?" when none does.
func (r *recorder) identify(remote string) string {
	_, portStr, err := net.SplitHostPort(remote)
	if err != nil {
		return "?"
	}
	port, _ := strconv.Atoi(portStr)
	inode := socketInode(port, r.port)
	if inode == "" {
		return "?"
	}
	r.mu.Lock()
	pids := make(map[int]string, len(r.instances))
	for k, v := range r.instances {
		pids[k] = v
	}
	r.mu.Unlock()
	want := "socket:[" + inode + "]"
	for pid, name := range pids {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && l == want {
				return name
			}
		}
	}
	return "?"
}

// socketInode finds the inode of the TCP socket whose local port is local
// and remote port is remote, in /proc/net/tcp and tcp6.
func socketInode(local, remote int) string {
	lp, rp := fmt.Sprintf(":%04X", local), fmt.Sprintf(":%04X", remote)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			if strings.HasSuffix(fields[1], lp) && strings.HasSuffix(fields[2], rp) {
				_ = file.Close()
				return fields[9]
			}
		}
		_ = file.Close()
	}
	return ""
}
