package web_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
	"github.com/registryhooks/registryhooks/web"
)

// BenchmarkPortalPages measures the server-side time of the portal's
// heaviest pages on a large database: a registry with 500 webhooks (the
// Premium quota), one of which has 100,000 events over the last 7 days
// (about 14,000 of them in the last 24 hours), the others 40 each in the
// last day. Each page is served many times through the real handler
// stack (middleware, session, store, templates) in process, so network
// time is not counted; it prints p50 and p95 and the page size.
//
//	go test -run '^$' -bench BenchmarkPortalPages -benchtime 1x ./web/
func BenchmarkPortalPages(b *testing.B) {
	dir := b.TempDir()
	if keep := os.Getenv("RH_BENCH_DIR"); keep != "" {
		dir = keep // keep the seeded database to look at afterwards
	}
	dbPath := filepath.Join(dir, "bench.db")
	now := time.Now()
	clock := modelstest.NewClock(now)
	cipher, _ := models.NewCipher(make([]byte, 32))
	store, err := models.Open(dbPath, models.Options{Cipher: cipher, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := store.EnsureDefaultRegistry(ctx); err != nil {
		b.Fatal(err)
	}
	reg, _ := store.GetRegistry(ctx, "myregistry")
	if _, err := store.GetWebhook(ctx, reg, "aabusyhook"); err != nil { // not seeded before (RH_BENCH_DIR)
		seedPortal(b, store, reg, clock, now)
	}
	busy, err := store.GetWebhook(ctx, reg, "aabusyhook")
	if err != nil {
		b.Fatal(err)
	}
	// The cursor of page 5,000 of 20 rows: the 99,980th newest delivery.
	deep, _, err := store.ListDeliveries(ctx, busy.ID, 99_980, 1)
	if err != nil || len(deep) != 1 {
		b.Fatal(err, len(deep))
	}
	deepCursor := models.Cursor{CreatedAt: deep[0].CreatedAt, ID: deep[0].ID}
	_ = store.Close()

	env := map[string]string{"REGISTRYHOOKS_ADMIN_PASSWORD": adminPassword, "REGISTRYHOOKS_SECRET_KEY": strings.Repeat("00", 32)}
	cfg, err := web.Load([]string{"--db", dbPath}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := web.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Store().Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	cookie := benchLogin(b, ts.URL)

	base := "/registries/myregistry/webhooks"
	pages := []struct {
		name, path string
		htmx       string // HX-Target, for fragments
	}{
		{"blade, page 1 of 10 (500 webhooks)", base, ""},
		{"blade, Refresh (table only)", base, "blade-table"},
		{"blade, page 10", base + "?page=10", ""},
		{"webhook page, 100,000 events, page 1", base + "/aabusyhook", ""},
		{"webhook page, page 5,000 (keyset)", base + "/aabusyhook?before=" + deepCursor.String(), ""},
		{"health section (htmx, the poll)", base + "/aabusyhook/health", "health"},
		{"events table, page 5,000 (htmx)", base + "/aabusyhook/events?before=" + deepCursor.String(), "events"},
		{"events table, failed only, page 1", base + "/aabusyhook/events?result=failed", "events"},
		{"events table, failed push of team/app3", base + "/aabusyhook/events?result=failed&action=push&repository=team%2Fapp3", "events"},
	}
	h := srv.Handler()
	runs := 200
	if os.Getenv("RH_BENCH_SEED_ONLY") != "" {
		return
	}
	b.ResetTimer()
	for _, p := range pages {
		var d []time.Duration
		var cold time.Duration
		size := 0
		for i := 0; i < runs+10; i++ {
			req := httptest.NewRequest(http.MethodGet, p.path, nil)
			req.Header.Set("Cookie", cookie)
			if p.htmx != "" {
				req.Header.Set("HX-Request", "true")
				req.Header.Set("HX-Target", p.htmx)
			}
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, req)
			el := time.Since(start)
			if rec.Code != http.StatusOK {
				b.Fatalf("%s: %d %s", p.path, rec.Code, rec.Body.String())
			}
			if i == 0 {
				cold = el
			}
			if i >= 10 { // the first few warm caches
				d = append(d, el)
			}
			size = rec.Body.Len()
			if dump := os.Getenv("RH_BENCH_DUMP"); dump != "" && i == 0 {
				_ = os.WriteFile(filepath.Join(dump, strings.NewReplacer("/", "_", "?", "_", ",", "", " ", "_").Replace(p.name)+".html"), rec.Body.Bytes(), 0o644)
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		p50, p95 := d[len(d)/2], d[len(d)*95/100]
		fmt.Printf("%-42s p50 %6.2f ms  p95 %6.2f ms  first %6.2f ms  %4d KB\n", p.name, ms(p50), ms(p95), ms(cold), size/1024)
	}
	// For comparison: the same deep page read with OFFSET, as before.
	var d []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, _, err := srv.Store().ListDeliveries(ctx, busy.ID, 99_980, 20); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	fmt.Printf("%-42s p50 %6.2f ms  p95 %6.2f ms\n", "query alone, page 5,000 with OFFSET", ms(d[len(d)/2]), ms(d[len(d)*95/100]))
	d = d[:0]
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, err := srv.Store().PageDeliveries(ctx, busy.ID, models.DeliveryFilter{}, &deepCursor, nil, 20); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	fmt.Printf("%-42s p50 %6.2f ms  p95 %6.2f ms\n", "query alone, page 5,000 with keyset", ms(d[len(d)/2]), ms(d[len(d)*95/100]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// seedMore gives each chart_push webhook 40 deliveries in the last day.
func seedMore(b *testing.B, store *models.Store, reg *models.Registry, clock *modelstest.Clock, now time.Time) int {
	return modelstest.Seed(b, store, reg, clock, modelstest.History{
		Events: 40, From: now.Add(-23 * time.Hour), To: now.Add(-time.Minute),
		Outcome: func(id uint) int {
			if id%13 == 0 {
				return models.DeliveryFailed
			}
			return models.DeliverySucceeded
		},
		Event:    func(i int) (string, string, string) { return "chart_push", "charts/app", fmt.Sprintf("c%d", i) },
		IDPrefix: "chart-",
	})
}

var benchCSRF = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// benchLogin signs admin in and returns the Cookie header to send.
func benchLogin(b *testing.B, base string) string {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(base + "/login")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := benchCSRF.FindStringSubmatch(string(body))
	if m == nil {
		b.Fatal("no CSRF token on the sign-in page")
	}
	res, err = c.PostForm(base+"/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "_csrf": {html.UnescapeString(m[1])}})
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign-in: %d", res.StatusCode)
	}
	u, _ := url.Parse(base)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return strings.Join(parts, "; ")
}

// seedPortal makes the benchmark's registry: 500 webhooks, 100,000 events
// over 7 days to one, 40 in the last day to each of the others.
func seedPortal(b *testing.B, store *models.Store, reg *models.Registry, clock *modelstest.Clock, now time.Time) {
	ctx := context.Background()
	t0 := time.Now()
	mk := func(name string, actions ...string) {
		in := models.WebhookInput{Name: name, ServiceURI: "https://receiver.example/hook/" + name, Actions: actions,
			Headers: map[string]string{"Authorization": "Bearer secret"}}
		if fe := in.Validate(); fe != nil {
			b.Fatal(fe)
		}
		if _, err := store.CreateWebhook(ctx, reg, in, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	mk("aabusyhook", "push", "delete", "quarantine")
	for i := 1; i < 500; i++ {
		mk(fmt.Sprintf("hook%04d", i), "chart_push")
	}
	outcome := func(id uint) int {
		switch {
		case id%97 == 0:
			return models.DeliveryPending
		case id%10 == 0:
			return models.DeliveryFailed
		}
		return models.DeliverySucceeded
	}
	n := modelstest.Seed(b, store, reg, clock, modelstest.History{
		Events: 100_000, From: now.Add(-7 * 24 * time.Hour), To: now.Add(-time.Minute), Outcome: outcome,
		Event: func(i int) (string, string, string) {
			return []string{"push", "push", "delete", "quarantine"}[i%4], fmt.Sprintf("team/app%d", i%20), fmt.Sprintf("v%d", i)
		},
	})
	// 40 chart pushes in the last day, to each of the 499 other webhooks.
	n += seedMore(b, store, reg, clock, now)
	b.Logf("seeded %d deliveries in %s", n, time.Since(t0).Round(time.Millisecond))
}
