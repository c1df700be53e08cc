package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// privatePostgres is a throw-away PostgreSQL cluster of this test alone, so
// it can be stopped and started without disturbing anyone else's server.
type privatePostgres struct {
	t    *testing.T
	bin  string
	data string
	port int
	dir  string
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries (Debian's postgresql package) to start a private cluster")
	}
	sort.Strings(bins)
	dir, err := os.MkdirTemp("", "rh-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &privatePostgres{t: t, bin: filepath.Dir(bins[len(bins)-1]), data: filepath.Join(dir, "data"), port: port, dir: dir}
	if os.Getuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user to run a private cluster as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.run("initdb", "-D", p.data, "-U", "postgres", "--auth=trust", "--no-sync")
	p.start()
	t.Cleanup(func() { p.runQuiet("pg_ctl", "-D", p.data, "-m", "immediate", "stop") })
	return p
}

func (p *privatePostgres) cmd(name string, args ...string) *exec.Cmd {
	full := filepath.Join(p.bin, name)
	if os.Getuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", full}, args...)...)
	}
	return exec.Command(full, args...)
}

func (p *privatePostgres) run(name string, args ...string) {
	p.t.Helper()
	if out, err := p.cmd(name, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func (p *privatePostgres) runQuiet(name string, args ...string) { _ = p.cmd(name, args...).Run() }

func (p *privatePostgres) start() {
	p.run("pg_ctl", "-D", p.data, "-l", filepath.Join(p.dir, "log"), "-w", "-o",
		fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c fsync=off", p.port, p.dir), "start")
}

func (p *privatePostgres) stop() { p.run("pg_ctl", "-D", p.data, "-m", "fast", "-w", "stop") }

func (p *privatePostgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// PostgreSQL stopped for 10 s under load and started again: ingest answers
// 503 meanwhile (and /readyz too), no accepted event is lost, and
// deliveries resume without a restart of the instance.
func TestPostgresOutageUnderLoad(t *testing.T) {
	pg := startPrivatePostgres(t)
	rcv := newReceiver(t, false)
	s := startServer(t, pg.url(), "--key-file", sharedKeyFile(t))
	s.createWebhook(t, "outage", rcv.url, []string{"push"}, "")
	var mu sync.Mutex
	accepted := map[int]bool{}
	var refused, n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(n.Add(1))
				code, err := s.ingestEvent([]byte(fmt.Sprintf(`{"id":"out-%06d","action":"push","target":{"repository":"team/app","tag":"v1","digest":"sha256:%064d","size":1}}`, i, i)))
				switch {
				case err == nil && code == http.StatusAccepted:
					mu.Lock()
					accepted[i] = true
					mu.Unlock()
				case err == nil && code == http.StatusServiceUnavailable:
					refused.Add(1)
				case err == nil:
					t.Errorf("ingest answered %d during the outage test", code)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(2 * time.Second)
	pg.stop()
	time.Sleep(2 * time.Second)
	code, _, _ := s.do(http.MethodGet, "/readyz", "", "", nil)
	hcode, _, _ := s.do(http.MethodGet, "/healthz", "", "", nil)
	time.Sleep(8 * time.Second)
	pg.start()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	if code != http.StatusServiceUnavailable || hcode != http.StatusOK {
		t.Errorf("during the outage /readyz answered %d (want 503), /healthz %d (want 200)", code, hcode)
	}
	if refused.Load() == 0 {
		t.Error("no ingest request was refused with 503 while PostgreSQL was down")
	}
	mu.Lock()
	want := len(accepted)
	mu.Unlock()
	waitUntil(t, 90*time.Second, "every accepted event delivered after the outage", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for i := range accepted {
			if rcv.got[fmt.Sprintf("out-%06d", i)] == 0 {
				return false
			}
		}
		return true
	})
	if code, _, _ := s.do(http.MethodGet, "/readyz", "", "", nil); code != http.StatusOK {
		t.Errorf("/readyz after the outage: %d", code)
	}
	t.Logf("%d accepted, %d refused with 503 during a 10 s outage; all delivered", want, refused.Load())
}

// A service URI changed through instance A is used by deliveries sent from
// instance B within one second.
func TestPostgresEditSeenByOtherInstance(t *testing.T) {
	old := newReceiver(t, false)
	nw := newReceiver(t, false)
	_, servers := startPGInstances(t, 2)
	a, b := servers[0], servers[1]
	a.createWebhook(t, "edited", old.url, []string{"push"}, "")
	ev := func(id string) []byte {
		return []byte(`{"id":"` + id + `","action":"push","target":{"repository":"team/app","tag":"v1","digest":"sha256:` + fmt.Sprintf("%064d", 1) + `","size":1}}`)
	}
	if code, err := b.ingestEvent(ev("before-edit")); err != nil || code != http.StatusAccepted {
		t.Fatalf("ingest on B: %d %v", code, err)
	}
	waitUntil(t, 10*time.Second, "delivery to the old URI", func() bool { u, _ := old.counts(); return u == 1 })
	a.createWebhook(t, "edited", nw.url, []string{"push"}, "") // PUT replaces the service URI, through A
	time.Sleep(time.Second)
	if code, err := b.ingestEvent(ev("after-edit")); err != nil || code != http.StatusAccepted {
		t.Fatalf("ingest on B: %d %v", code, err)
	}
	waitUntil(t, 10*time.Second, "delivery to the new URI", func() bool { u, _ := nw.counts(); return u == 1 })
	if u, _ := old.counts(); u != 1 {
		t.Fatalf("the old URI got %d events, want only the one before the edit", u)
	}
}
