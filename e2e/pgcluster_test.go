package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// secretKey seals secrets at rest on every instance of a PostgreSQL test:
// instances sharing a database must share the key.
const secretKey = "4f9a1c2e8b7d6a5f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d"

// pgEnv is the environment every instance on a shared PostgreSQL database
// gets.
var pgEnv = []string{"REGISTRYHOOKS_SECRET_KEY=" + secretKey}

// redacted is u without its password, for messages.
func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// newPostgresDB creates a fresh database on the server at admin (an admin
// URL) and drops it when the test ends; it returns the database's URL.
func newPostgresDB(t testing.TB, admin string) string {
	t.Helper()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "rh_e2e_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create a test database on %s (set REGISTRYHOOKS_TEST_POSTGRES to an admin URL of a PostgreSQL 13+ server): %v", redacted(admin), err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// openPostgres opens dbURL for the test's own queries (what the instances
// wrote); closed when the test ends.
func openPostgres(t testing.TB, dbURL string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// pgCluster is a throw-away PostgreSQL server of one test, in a temporary
// directory on a free loopback port, so that the test may stop and start it
// without disturbing the shared server other tests use.
type pgCluster struct {
	t     testing.TB
	bin   string // the directory of initdb, pg_ctl
	dir   string // data, log and socket directory
	port  int
	admin string // admin URL (trust authentication)
}

// pgBinDir finds the newest /usr/lib/postgresql/<version>/bin with initdb and
// pg_ctl (Debian's layout), or "" when there is none.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	return ""
}

// startPGCluster initialises and starts a throw-away cluster (initdb,
// pg_ctl) as the postgres user when run as root (PostgreSQL refuses to run
// as root), else as the current user. It is stopped and removed when the
// test ends. The test is skipped, saying why, only when no PostgreSQL
// binaries are installed.
func startPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		t.Skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (install Debian's postgresql package; .ci/test does)")
	}
	dir, err := os.MkdirTemp("", "registryhooks-pg")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{t: t, bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and there is no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = c.pgCtl("-m", "immediate", "stop")
		_ = os.RemoveAll(dir)
	})
	if out, err := c.command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	c.admin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	c.start()
	return c
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// command runs name as the postgres user when this process is root.
func (c *pgCluster) command(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (c *pgCluster) pgCtl(args ...string) error {
	args = append([]string{"-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60"}, args...)
	out, err := c.command(filepath.Join(c.bin, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start starts the cluster and waits until it accepts connections.
func (c *pgCluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c max_connections=200", c.port, c.dir)
	if err := c.pgCtl("-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("%v\nserver log:\n%s", err, tail(string(log), 3000))
	}
}

// stop stops the cluster at once (mode immediate: connections are cut, as
// in a crash or a failover; the next start recovers from the WAL).
func (c *pgCluster) stop() {
	c.t.Helper()
	if err := c.pgCtl("-m", "immediate", "stop"); err != nil {
		c.t.Fatal(err)
	}
}
