package models

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAPITokenLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	value, tok, err := b.store.CreateAPIToken(b.ctx, "ci job", "", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(value, APITokenPrefix) || len(value) < 40 {
		t.Fatalf("token value %q", value)
	}
	if tok.Hash == value || tok.Hash != HashToken(value) || !strings.HasPrefix(value, tok.Prefix) || tok.Role != RoleContributor {
		t.Fatalf("stored token %+v for %q", tok, value)
	}
	got, err := b.store.AuthenticateAPIToken(b.ctx, value)
	if err != nil || got.ID != tok.ID || got.LastUsedAt == nil {
		t.Fatalf("authenticate = %+v, %v", got, err)
	}
	if _, err := b.store.AuthenticateAPIToken(b.ctx, value+"x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("wrong value: %v", err)
	}
	if _, err := b.store.AuthenticateAPIToken(b.ctx, "not-a-token"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("foreign value: %v", err)
	}
	if err := b.store.RevokeAPIToken(b.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.store.RevokeAPIToken(b.ctx, tok.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := b.store.AuthenticateAPIToken(b.ctx, value); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked token authenticated: %v", err)
	}
	if err := b.store.RevokeAPIToken(b.ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, err := b.store.ListAPITokens(b.ctx)
	if err != nil || len(list) != 1 || list[0].RevokedAt == nil || list[0].LastUsedAt == nil {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, _, err := b.store.CreateAPIToken(b.ctx, "x", "Root", ""); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, _, err := b.store.CreateAPIToken(b.ctx, " ", "", ""); err == nil {
		t.Fatal("empty name accepted")
	}
}

func TestListWebhooksAfterPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 7 {
		in := validInput(fmt.Sprintf("Hook%02d", 6-i))
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		if _, err := b.store.CreateWebhook(b.ctx, b.reg, in, ""); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, err := b.store.ListWebhooksAfter(b.ctx, b.reg, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, w := range page {
			if w.ServiceURI != "http://127.0.0.1:9/hook" {
				t.Fatalf("secret not opened: %q", w.ServiceURI)
			}
			names = append(names, w.Name)
		}
		after = page[len(page)-1].Name
	}
	if got := strings.Join(names, ","); got != "Hook00,Hook01,Hook02,Hook03,Hook04,Hook05,Hook06" {
		t.Fatalf("names = %s", got)
	}
}

func TestListWebhookAttemptsBefore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := validInput("pinged")
	in.Validate()
	w, err := b.store.CreateWebhook(b.ctx, b.reg, in, "")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixNano()
	for i := range 5 {
		ev := &Event{ID: fmt.Sprintf("ev-%d", i), RegistryID: b.reg.ID, Action: ActionPing, Source: "ping", Payload: []byte(`{"action":"ping"}`)}
		d, err := b.store.QueuePing(b.ctx, w, ev)
		if err != nil {
			t.Fatal(err)
		}
		// Two attempts share a start time to exercise the id tie-break.
		at := base + int64(i/2)
		a := Attempt{DeliveryID: d.ID, WebhookID: w.ID, EventID: ev.ID, Number: 1, RequestURI: "http://x", StatusCode: 200, StartedAt: at}
		if err := b.store.db.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cur := AttemptCursor{}
	for range 4 {
		page, err := b.store.ListWebhookAttemptsBefore(b.ctx, w.ID, cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			if string(a.Payload) != `{"action":"ping"}` {
				t.Fatalf("payload %q", a.Payload)
			}
			got = append(got, a.EventID)
		}
		last := page[len(page)-1]
		cur = AttemptCursor{StartedAt: last.StartedAt, ID: last.ID}
	}
	if s := strings.Join(got, ","); s != "ev-4,ev-3,ev-2,ev-1,ev-0" {
		t.Fatalf("order = %s", s)
	}
}
