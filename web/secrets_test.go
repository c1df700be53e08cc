package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/web"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A custom header value and a token in the service URI's query reach the
// receiver, but never the log (at debug level), the database file in clear,
// the pages that do not need them, or the event's recorded request.
func TestSecretsStayOutOfLogsPagesAndDisk(t *testing.T) {
	t.Parallel()
	const headerSecret, uriSecret = "hdr-s3cr3t-8f2a", "uri-s3cr3t-77c1"
	var gotHeader, gotQuery string
	var once sync.Once
	delivered := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader, gotQuery = r.Header.Get("Authorization"), r.URL.Query().Get("token")
		w.WriteHeader(http.StatusOK)
		once.Do(func() { close(delivered) })
	}))
	t.Cleanup(rcv.Close)

	dir := t.TempDir()
	logs := &syncBuffer{}
	env := map[string]string{"REGISTRYHOOKS_ADMIN_PASSWORD": adminPassword}
	cfg, err := web.Load([]string{"--db", filepath.Join(dir, "s.db"), "--allow-private-targets"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := web.New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}
	t.Cleanup(stop)

	reg, err := srv.Store().GetRegistry(ctx, "myregistry")
	if err != nil {
		t.Fatal(err)
	}
	b := testBundle{t: t, url: "http://" + ln.Addr().String(), store: srv.Store(), ctx: ctx, reg: reg}
	c := b.admin()
	r := c.post("/registries/myregistry/webhooks", url.Values{"name": {"secrethook"},
		"service_uri": {rcv.URL + "/hook?token=" + uriSecret}, "custom_headers": {"Authorization: Bearer " + headerSecret},
		"actions": {"push"}}, true)
	wantCode(t, r, http.StatusSeeOther)
	r = c.do(http.MethodPost, "/registries/myregistry/webhooks/secrethook/ping", url.Values{}, map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf()})
	wantCode(t, r, http.StatusOK)
	select {
	case <-delivered:
	case <-time.After(5 * time.Second):
		t.Fatal("ping not delivered")
	}
	if gotHeader != "Bearer "+headerSecret || gotQuery != uriSecret {
		t.Fatalf("receiver got Authorization %q, token %q", gotHeader, gotQuery)
	}
	// Wait until the attempt is recorded, then read the pages.
	w := b.webhookByName("secrethook")
	var detail string
	deadline := time.Now().Add(5 * time.Second)
	for {
		rows, _, err := b.store.ListDeliveries(ctx, w.ID, 0, 10)
		if err == nil && len(rows) == 1 && rows[0].State >= 2 {
			detail = "/registries/myregistry/webhooks/secrethook/events/" + itoa(rows[0].ID)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("attempt not recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pages := map[string]resp{
		"blade":  c.get("/registries/myregistry/webhooks"),
		"page":   c.get("/registries/myregistry/webhooks/secrethook"),
		"detail": c.do(http.MethodGet, detail, nil, map[string]string{"HX-Request": "true"}),
	}
	for name, p := range pages {
		wantCode(t, p, http.StatusOK)
		if strings.Contains(p.body, headerSecret) || strings.Contains(p.body, uriSecret) {
			t.Fatalf("the %s page shows a secret", name)
		}
	}
	if !strings.Contains(pages["detail"].body, "******") {
		t.Fatal("the event detail does not show the masked header")
	}
	// Asking for the callback shows them (Contributors only; audited).
	cb := c.get("/registries/myregistry/webhooks/secrethook/callback")
	if !strings.Contains(cb.body, headerSecret) || !strings.Contains(cb.body, uriSecret) {
		t.Fatal("the callback reveal does not show the secrets")
	}
	stop()
	if strings.Contains(logs.String(), headerSecret) || strings.Contains(logs.String(), uriSecret) {
		t.Fatal("a secret reached the log")
	}
	if !strings.Contains(logs.String(), "request") {
		t.Fatal("the log is empty: the test would prove nothing")
	}
	for _, f := range []string{"s.db", "s.db-wal"} {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		if bytes.Contains(raw, []byte(headerSecret)) || bytes.Contains(raw, []byte(uriSecret)) {
			t.Fatalf("%s holds a secret in clear", f)
		}
	}
}
