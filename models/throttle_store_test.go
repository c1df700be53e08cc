package models

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models/pgtestdb"
)

// A bucket's arithmetic: a missing bucket is full; each take moves full_at
// by one interval; an empty bucket is left alone; concurrent takes are each
// counted once; Forget and Prune remove rows.
func TestThrottleBuckets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	checkThrottleBuckets(t, b.ctx, b.store, b.store)
}

// checkThrottleBuckets drives the bucket checks with writes alternating
// between a and b (two stores on one database, or the same store twice).
func checkThrottleBuckets(t *testing.T, ctx context.Context, a, b *Store) {
	t.Helper()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := ThrottleKey{Kind: ThrottlePair, Name: "admin", Address: "192.0.2.1"}
	other := ThrottleKey{Kind: ThrottleName, Name: "admin"}
	take := ThrottleTake{Key: key, Every: time.Minute, Burst: 3}

	at, err := b.ThrottleFullAt(ctx, key, other)
	if err != nil {
		t.Fatal(err)
	}
	if !at[0].IsZero() || !at[1].IsZero() {
		t.Fatalf("fresh buckets: full at %v", at)
	}
	for i := range 5 { // the last two find the bucket empty
		st := a
		if i%2 == 1 {
			st = b
		}
		if err := st.ThrottleTakeTokens(ctx, t0, take); err != nil {
			t.Fatal(err)
		}
	}
	at, err = b.ThrottleFullAt(ctx, key, other, key)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(3 * time.Minute); !at[0].Equal(want) || !at[2].Equal(want) || !at[1].IsZero() {
		t.Fatalf("after 5 takes from a bucket of 3: full at %v, want %v (twice) and zero", at, want)
	}

	// A minute later one token is back: one take succeeds, the next does not.
	t1 := t0.Add(time.Minute)
	for range 2 {
		if err := a.ThrottleTakeTokens(ctx, t1, take); err != nil {
			t.Fatal(err)
		}
	}
	if at, _ := a.ThrottleFullAt(ctx, key); !at[0].Equal(t0.Add(4 * time.Minute)) {
		t.Fatalf("after a refill and two takes: full at %v, want %v", at[0], t0.Add(4*time.Minute))
	}

	// Concurrent takes on a big bucket, from both stores: none lost.
	big := ThrottleTake{Key: other, Every: time.Second, Burst: 1000}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() { errs <- st.ThrottleTakeTokens(ctx, t0, big) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if at, _ := a.ThrottleFullAt(ctx, other); !at[0].Equal(t0.Add(40 * time.Second)) {
		t.Fatalf("after 40 concurrent takes: full at %v, want %v", at[0], t0.Add(40*time.Second))
	}

	if err := b.ThrottleForget(ctx, key); err != nil {
		t.Fatal(err)
	}
	if at, _ := a.ThrottleFullAt(ctx, key); !at[0].IsZero() {
		t.Fatalf("forgotten bucket: full at %v", at[0])
	}
	if n, err := a.PruneThrottle(ctx, t0.Add(39*time.Second)); err != nil || n != 0 {
		t.Fatalf("prune before the bucket refilled: %d rows, %v", n, err)
	}
	if n, err := b.PruneThrottle(ctx, t0.Add(40*time.Second)); err != nil || n != 1 {
		t.Fatalf("prune once it refilled: %d rows, %v", n, err)
	}

	if err := a.ThrottleTakeTokens(ctx, t0, ThrottleTake{Key: key}); err == nil {
		t.Fatal("a take without interval and burst was accepted")
	}
}

// openPostgresTwice opens two stores ("instances") on one new PostgreSQL
// database. It skips while this branch's store cannot open PostgreSQL.
func openPostgresTwice(t *testing.T) (*Store, *Store) {
	t.Helper()
	dsn := pgtestdb.PostgresDB(t)
	c, err := NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	var out [2]*Store
	for i := range out {
		s, err := Open(dsn, Options{Cipher: c})
		if err != nil && strings.Contains(err.Error(), "not supported yet") {
			t.Skip("this branch's store cannot open PostgreSQL yet")
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// Two instances on one PostgreSQL database share the throttle's buckets:
// takes through either are counted once, a forget through one is seen by
// the other.
func TestThrottleSharedOnPostgres(t *testing.T) {
	t.Parallel()
	a, b := openPostgresTwice(t)
	checkThrottleBuckets(t, context.Background(), a, b)
}

// Sessions and the audit trail live in the database: a session started
// through one instance is honoured by another, a sign-out through that one
// ends it for the first, and audit entries written by one are listed by the
// other.
func TestSessionsSharedOnPostgres(t *testing.T) {
	t.Parallel()
	a, b := openPostgresTwice(t)
	ctx := context.Background()
	u, err := a.CreateUser(ctx, "alice", "correct horse battery", RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.CreateSession(ctx, u, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := b.GetSession(ctx, tok)
	if err != nil {
		t.Fatalf("the other instance refuses the session: %v", err)
	}
	if sess.User == nil || sess.User.Username != "alice" {
		t.Fatalf("the other instance sees the session of %+v", sess.User)
	}
	if err := b.DeleteSession(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, tok); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a sign-out through the other instance: %v, want ErrNotFound", err)
	}
	if err := a.Audit(ctx, "alice", "user.sign_in", "alice", ""); err != nil {
		t.Fatal(err)
	}
	entries, total, err := b.ListAudit(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || len(entries) != 1 || entries[0].Action != "user.sign_in" {
		t.Fatalf("the other instance's audit trail: %d entries %+v", total, entries)
	}
}
