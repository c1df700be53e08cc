package dispatch

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// The same event id ingested on two registries is delivered twice, once to
// each registry's webhook, each with its own payload.
func TestSameEventIDOnTwoRegistriesDeliversTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.URL.Path+" "+string(body))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	other, err := b.store.CreateRegistry(b.ctx, models.RegistryInput{Name: "secondreg", SKU: models.SKUPremium, Location: models.DefaultLocation})
	if err != nil {
		t.Fatal(err)
	}
	b.webhook(t, "first", srv.URL+"/a", nil)
	in := models.WebhookInput{Name: "second", ServiceURI: srv.URL + "/b", Actions: []string{"push"}}
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	if _, err := b.store.CreateWebhook(b.ctx, other, in, "test"); err != nil {
		t.Fatal(err)
	}
	const id = "3f6c1a52-1111-4000-8000-00000000abcd"
	for _, reg := range []*models.Registry{b.reg, other} {
		res, err := b.d.Ingest(b.ctx, []*models.Event{{ID: id, RegistryID: reg.ID, Action: "push", Repository: "team/app", Tag: "v1",
			Source: "api", Payload: []byte(`{"id":"` + id + `","registry":"` + reg.Name + `"}`)}})
		if err != nil || res[0].Duplicate || res[0].Deliveries != 1 {
			t.Fatalf("ingest on %s: %+v, %v", reg.Name, res, err)
		}
	}
	if n := b.round(t); n != 2 {
		t.Fatalf("claimed %d, want 2", n)
	}
	sort.Strings(got)
	want := []string{`/a {"id":"` + id + `","registry":"myregistry"}`, `/b {"id":"` + id + `","registry":"secondreg"}`}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("receiver got %q, want %q", got, want)
	}
}

// A delivery whose lease ran too short while it waited (no heartbeat, the
// database away) is given back unattempted rather than sent while another
// instance may claim it.
func TestShortLeaseIsNotAttempted(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, Timeout: 5 * time.Second, Lease: 30 * time.Second})
	var hits sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Store(r.URL.Path, true) }))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "shortlease", srv.URL+"/x", nil)
	b.ingest(t, 1)
	claimed, err := b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: b.clk.Now(), Lease: 30 * time.Second, Limit: 1, PerWebhook: 1})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim %v, %v", claimed, err)
	}
	// 26 s pass before a worker gets to it: 4 s left, less than Timeout+1s.
	b.clk.Advance(26 * time.Second)
	b.d.register(claimed)
	payloads, err := b.store.EventPayloads(b.ctx, []int64{claimed[0].EventSeq})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.d.launch(b.ctx, claimed, payloads); err != nil {
		t.Fatal(err)
	}
	if err := b.d.waitIdle(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := hits.Load("/x"); ok {
		t.Fatal("an attempt went out on a lease about to expire")
	}
	rows := b.deliveries(t, w)
	if len(rows) != 1 || rows[0].State != models.DeliveryPending || rows[0].Attempts != 0 {
		t.Fatalf("delivery after the give-back: %+v", rows)
	}
	// With a heartbeat the same wait is fine.
	b.ingest(t, 1)
	claimed, _ = b.store.ClaimDeliveries(b.ctx, models.ClaimOptions{Now: b.clk.Now(), Lease: 30 * time.Second, Limit: 2, PerWebhook: 2})
	b.clk.Advance(26 * time.Second)
	if err := b.d.heartbeatOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.d.register(claimed)
	seqs := []int64{}
	for _, c := range claimed {
		seqs = append(seqs, c.EventSeq)
	}
	payloads, _ = b.store.EventPayloads(b.ctx, seqs)
	if err := b.d.launch(b.ctx, claimed, payloads); err != nil {
		t.Fatal(err)
	}
	if err := b.d.waitIdle(b.ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := hits.Load("/x"); !ok || len(claimed) != 2 {
		t.Fatalf("after a heartbeat: %d claimed, sent=%v", len(claimed), ok)
	}
}
