package models

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

type testBundle struct {
	store *Store
	reg   *Registry
	ctx   context.Context
}

func setup(t *testing.T) testBundle {
	t.Helper()
	key := make([]byte, 32)
	c, err := NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(pgtestdb.DB(t), Options{Cipher: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	if err := s.EnsureDefaultRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := s.GetRegistry(ctx, DefaultRegistryName)
	if err != nil {
		t.Fatal(err)
	}
	return testBundle{store: s, reg: reg, ctx: ctx}
}

func validInput(name string) WebhookInput {
	return WebhookInput{Name: name, ServiceURI: "http://127.0.0.1:9/hook", Headers: map[string]string{"Authorization": "Basic c2VjcmV0"}, Actions: []string{"push"}, Scope: "team/app:*"}
}

func TestDefaultRegistry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.reg.SKU != SKUPremium || b.reg.SubscriptionID != DefaultSubscription || b.reg.ResourceGroup != DefaultResourceGroup || b.reg.Location != DefaultLocation {
		t.Fatalf("default registry = %+v", b.reg)
	}
	// Idempotent.
	if err := b.store.EnsureDefaultRegistry(b.ctx); err != nil {
		t.Fatal(err)
	}
	regs, err := b.store.ListRegistries(b.ctx, "", "")
	if err != nil || len(regs) != 1 {
		t.Fatalf("registries = %d, %v", len(regs), err)
	}
	tok, err := b.store.IngestToken(b.reg)
	if err != nil || len(tok) < 20 || b.reg.IngestToken == tok {
		t.Fatalf("ingest token %q sealed as %q, err %v", tok, b.reg.IngestToken, err)
	}
}

func TestWebhookCRUDAndSecretsSealed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := validInput("hookOne")
	if fe := in.Validate(); fe != nil {
		t.Fatal(fe)
	}
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != StatusEnabled || w.Location != DefaultLocation {
		t.Fatalf("defaults not applied: %+v", w)
	}
	// Raw row holds no secret in clear.
	var raw struct{ ServiceURI, CustomHeaders string }
	b.store.db.Raw("SELECT service_uri, custom_headers FROM webhooks WHERE id = ?", w.ID).Scan(&raw)
	if raw.ServiceURI == in.ServiceURI || raw.CustomHeaders == "" || strings.Contains(raw.CustomHeaders, "c2VjcmV0") {
		t.Fatalf("secrets not sealed: %+v", raw)
	}
	got, err := b.store.GetWebhook(b.ctx, b.reg, "HOOKONE")
	if err != nil {
		t.Fatal(err)
	}
	if got.ServiceURI != in.ServiceURI || got.Headers["Authorization"] != "Basic c2VjcmV0" {
		t.Fatalf("secrets not opened: %+v", got)
	}
	if _, err := b.store.CreateWebhook(b.ctx, b.reg, validInput("HookOne"), "admin"); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("duplicate name (other case) err = %v", err)
	}
	in2 := InputFrom(got)
	in2.Status = "disabled"
	in2.Headers = nil
	if fe := in2.Validate(); fe != nil {
		t.Fatal(fe)
	}
	upd, err := b.store.UpdateWebhook(b.ctx, got, in2)
	if err != nil || upd.Status != StatusDisabled || len(upd.Headers) != 0 {
		t.Fatalf("update = %+v, %v", upd, err)
	}
	if err := b.store.DeleteWebhook(b.ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.GetWebhook(b.ctx, b.reg, "hookOne"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete err = %v", err)
	}
	if err := b.store.DeleteWebhook(b.ctx, got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete err = %v", err)
	}
}

func TestQuotaPerSKU(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := RegistryInput{Name: "basicreg", SKU: "basic"}
	if fe := in.Validate(); len(fe) != 0 {
		t.Fatal(fe)
	}
	reg, err := b.store.CreateRegistry(b.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"hookAAA", "hookBBB", "hookCCC"} {
		wi := validInput(name)
		wi.Validate()
		_, err := b.store.CreateWebhook(b.ctx, reg, wi, "admin")
		if i < 2 && err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if i == 2 {
			var qe *QuotaError
			if !errors.Is(err, ErrQuotaExceeded) || !errors.As(err, &qe) || qe.Limit != 2 || qe.SKU != SKUBasic {
				t.Fatalf("third create on Basic err = %v", err)
			}
		}
	}
	n, _ := b.store.CountWebhooks(b.ctx, reg.ID)
	if n != 2 {
		t.Fatalf("count = %d, want 2 (nothing saved past the quota)", n)
	}
}

func TestIngestMatchesAndDeduplicates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mk := func(name, scope string, actions []string, status string) *Webhook {
		in := WebhookInput{Name: name, ServiceURI: "http://127.0.0.1:9/", Actions: actions, Scope: scope, Status: status}
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "t")
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	all := mk("allevents", "", []string{"push", "delete"}, "")
	tagged := mk("tagonly", "team/app:v1", []string{"push", "delete"}, "")
	mk("disabled1", "", []string{"push"}, "disabled")
	mk("otherrepo", "other:*", []string{"push"}, "")
	mk("deleteonly", "", []string{"delete"}, "")

	ev := &Event{ID: "ev-1", RegistryID: b.reg.ID, Action: "push", Repository: "team/app", Tag: "v1", Source: "api", Payload: []byte(`{}`)}
	res, err := b.store.IngestEvents(b.ctx, []*Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || res[0].Deliveries != 2 {
		t.Fatalf("first ingest = %+v, want 2 deliveries (allevents, tagonly)", res[0])
	}
	again := &Event{ID: "ev-1", RegistryID: b.reg.ID, Action: "push", Repository: "team/app", Tag: "v1", Source: "api", Payload: []byte(`{}`)}
	res, err = b.store.IngestEvents(b.ctx, []*Event{again})
	if err != nil || !res[0].Duplicate || res[0].Deliveries != 0 {
		t.Fatalf("retried ingest = %+v, %v", res, err)
	}
	del := &Event{ID: "ev-2", RegistryID: b.reg.ID, Action: "delete", Repository: "team/app", Source: "api", Payload: []byte(`{}`)}
	res, _ = b.store.IngestEvents(b.ctx, []*Event{del})
	if res[0].Deliveries != 2 { // allevents + deleteonly; tagonly has a tag so no
		t.Fatalf("delete ingest = %+v", res[0])
	}
	rows, total, err := b.store.ListDeliveries(b.ctx, all.ID, 0, 10)
	if err != nil || total != 2 || rows[0].EventID != "ev-2" || rows[1].Image() != "team/app:v1" {
		t.Fatalf("deliveries of allevents = %+v total %d err %v", rows, total, err)
	}
	if err := b.store.DeleteWebhook(b.ctx, tagged); err != nil {
		t.Fatal(err)
	}
	var n int64
	b.store.db.Model(&Delivery{}).Where("webhook_id = ?", tagged.ID).Count(&n)
	if n != 0 {
		t.Fatalf("history of deleted webhook left: %d deliveries", n)
	}
}

// Sessions end at their expiry; pruning removes them.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.store.now = func() time.Time { return now }
	u, err := b.store.CreateUser(b.ctx, "reader1", "password-1", RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := b.store.CreateSession(b.ctx, u, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := b.store.GetSession(b.ctx, tok); err != nil || s.User.Username != "reader1" {
		t.Fatalf("live session: %+v, %v", s, err)
	}
	now = now.Add(time.Hour + time.Second)
	if _, err := b.store.GetSession(b.ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if err := b.store.PruneSessions(b.ctx); err != nil {
		t.Fatal(err)
	}
	var n int64
	b.store.db.Model(&Session{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d sessions left after pruning", n)
	}
	if _, err := b.store.GetSession(b.ctx, "not-a-token"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

// The same event id twice in one batch (two requests sharing a group
// commit) is stored and delivered once; the second is a duplicate.
func TestIngestSameIDTwiceInOneBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := WebhookInput{Name: "dupehook", ServiceURI: "http://127.0.0.1:9/", Actions: []string{"push"}}
	in.Validate()
	if _, err := b.store.CreateWebhook(b.ctx, b.reg, in, "t"); err != nil {
		t.Fatal(err)
	}
	mk := func(id string) *Event {
		return &Event{ID: id, RegistryID: b.reg.ID, Action: "push", Repository: "a", Tag: "v", Source: "api", Payload: []byte(`{}`)}
	}
	res, err := b.store.IngestEvents(b.ctx, []*Event{mk("same"), mk("other"), mk("same")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || res[0].Deliveries != 1 || res[1].Duplicate || !res[2].Duplicate || res[2].Deliveries != 0 {
		t.Fatalf("results %+v", res)
	}
	st, _ := b.store.OutboxStats(b.ctx)
	if st.Pending != 2 {
		t.Fatalf("%d deliveries queued, want 2", st.Pending)
	}
}
