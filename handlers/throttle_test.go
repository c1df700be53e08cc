package handlers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The sign-in throttle's rules, on a fake clock, over a real SQLite store:
// the pair locks after signInPairBurst failures and frees a try per
// signInPairEvery; the name alone locks only after signInNameBurst failures,
// which one address cannot reach quickly, and then only for addresses that
// failed for it. Then a restart: a second throttle on the same store (a new
// process sees only the database) still applies the lockout.
func TestSignInThrottleRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	wait := func(th SignInThrottle, name, addr string) time.Duration {
		t.Helper()
		w, err := th.Wait(ctx, name, addr)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	failed := func(th SignInThrottle, name, addr string) {
		t.Helper()
		if err := th.Failed(ctx, name, addr); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func() SignInThrottle {
		s, _ := modelstest.Open(t, models.Options{Now: clk.now})
		return NewStoreSignInThrottle(s, clk.now)
	}
	th := fresh()

	// The pair.
	for i := range signInPairBurst {
		if w := wait(th, "admin", "a1"); w != 0 {
			t.Fatalf("try %d from a1 waits %v", i+1, w)
		}
		failed(th, "admin", "a1")
	}
	w := wait(th, "admin", "a1")
	if w <= 0 || w > signInPairEvery {
		t.Fatalf("after %d failures a1 waits %v, want (0, %v]", signInPairBurst, w, signInPairEvery)
	}
	if w := wait(th, "admin", "a2"); w != 0 {
		t.Fatalf("a2 waits %v for a1's failures", w)
	}
	if w := wait(th, "other", "a1"); w != 0 {
		t.Fatalf("another name from a1 waits %v", w)
	}
	failed(th, "admin", "a1") // while locked: does not lengthen the lock
	if w2 := wait(th, "admin", "a1"); w2 != w {
		t.Fatalf("a failure while locked moved the wait from %v to %v", w, w2)
	}
	clk.advance(signInPairEvery)
	if w := wait(th, "admin", "a1"); w != 0 {
		t.Fatalf("a1 still waits %v after %v", w, signInPairEvery)
	}
	failed(th, "admin", "a1")
	if w := wait(th, "admin", "a1"); w <= 0 {
		t.Fatal("a1 not locked again after one more failure")
	}
	if err := th.Succeeded(ctx, "admin", "a1"); err != nil {
		t.Fatal(err)
	}
	if w := wait(th, "admin", "a1"); w != 0 {
		t.Fatalf("a1 waits %v after a success", w)
	}

	// The name: failures from many addresses, a few each.
	th = fresh()
	addrs := 0
	for n := 0; n < signInNameBurst; addrs++ {
		for range signInPairBurst {
			failed(th, "admin", fmt.Sprintf("b%d", addrs))
			n++
		}
	}
	failed(th, "admin", "c1") // one failure from yet another address
	if w := wait(th, "admin", "c1"); w <= 0 {
		t.Fatalf("after failures from %d addresses, c1 (one failure) may still try", addrs+1)
	}
	if w := wait(th, "admin", "fresh"); w != 0 {
		t.Fatalf("an address without failures waits %v while the name is locked", w)
	}
	if w := wait(th, "someoneelse", "c1"); w != 0 {
		t.Fatalf("c1 waits %v for another name", w)
	}
	clk.advance(signInNameEvery)
	if w := wait(th, "admin", "c1"); w != 0 {
		t.Fatalf("c1 still waits %v after the name's bucket refilled a token", w)
	}

	// One address spraying names; the lock survives a restart.
	s, _ := modelstest.Open(t, models.Options{Now: clk.now})
	th = NewStoreSignInThrottle(s, clk.now)
	for i := range signInAddrBurst {
		failed(th, fmt.Sprintf("user%d", i), "spray")
	}
	if w := wait(th, "admin", "spray"); w <= 0 {
		t.Fatalf("after %d names failed from one address, it may still try", signInAddrBurst)
	}
	if w := wait(NewStoreSignInThrottle(s, clk.now), "admin", "spray"); w <= 0 {
		t.Fatal("a new throttle on the same database forgot the address's lock")
	}
}

// Two throttles over one store (two handlers, as two instances would be
// over one database): failures reported to either add up, and the lock and
// a success's forgetting are seen by both.
func TestSignInLockoutSharedByTwoThrottles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := modelstest.Open(t, models.Options{Now: clk.now})
	both := []SignInThrottle{NewStoreSignInThrottle(s, clk.now), NewStoreSignInThrottle(s, clk.now)}
	for i := range signInPairBurst {
		if err := both[i%2].Failed(ctx, "admin", "a1"); err != nil {
			t.Fatal(err)
		}
	}
	for i, th := range both {
		if w, err := th.Wait(ctx, "admin", "a1"); err != nil || w <= 0 {
			t.Fatalf("throttle %d after %d failures split between two: wait %v, %v", i, signInPairBurst, w, err)
		}
	}
	if err := both[0].Succeeded(ctx, "admin", "a1"); err != nil {
		t.Fatal(err)
	}
	if w, err := both[1].Wait(ctx, "admin", "a1"); err != nil || w != 0 {
		t.Fatalf("after a success through the other throttle: wait %v, %v", w, err)
	}
}

// Names and addresses no real user has (very long, invalid UTF-8, NUL)
// still get buckets of their own on both engines, and refilled buckets are
// pruned from the table.
func TestSignInThrottleOddKeysAndPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := modelstest.Open(t, models.Options{Now: clk.now})
	th := NewStoreSignInThrottle(s, clk.now)
	odd := []string{strings.Repeat("x", 100000), "bad\xff\xfe", "nul\x00name", strings.Repeat("x", 100001)}
	for i, name := range odd {
		for range signInPairBurst {
			if err := th.Failed(ctx, name, fmt.Sprintf("a%d\xff", i)); err != nil {
				t.Fatalf("%.20q: %v", name, err)
			}
		}
	}
	for i, name := range odd {
		if w, err := th.Wait(ctx, name, fmt.Sprintf("a%d\xff", i)); err != nil || w <= 0 {
			t.Fatalf("%.20q after %d failures: wait %v, %v", name, signInPairBurst, w, err)
		}
	}
	// Another long name from the address that locked the first: its own pair.
	if w, err := th.Wait(ctx, strings.Repeat("x", 100002), "a0\xff"); err != nil || w != 0 {
		t.Fatalf("a long name that never failed: wait %v, %v", w, err)
	}
	// Everything refills within the longest bucket: burst * interval.
	clk.advance(max(signInPairBurst*signInPairEvery, signInAddrBurst*signInAddrEvery, signInNameBurst*signInNameEvery))
	n, err := s.PruneThrottle(ctx, clk.now())
	if err != nil {
		t.Fatal(err)
	}
	// A pair, a name and an address per odd name.
	if want := int64(3 * len(odd)); n != want {
		t.Fatalf("pruned %d rows, want %d", n, want)
	}
}

// Failed prunes refilled buckets by itself, once a signInPruneEvery.
func TestSignInThrottlePrunesOnWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := modelstest.Open(t, models.Options{Now: clk.now})
	th := NewStoreSignInThrottle(s, clk.now)
	for i := range 30 {
		if err := th.Failed(ctx, fmt.Sprintf("u%d", i), fmt.Sprintf("a%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	clk.advance(signInPairEvery) // every bucket above had one token taken: all refilled
	if err := th.Failed(ctx, "late", "z"); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneThrottle(ctx, clk.now().Add(signInPairEvery))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 { // only "late"'s pair, address and name were left
		t.Fatalf("%d rows left after Failed pruned, want 3", n)
	}
}

// Bearer-token failures: a burst per address, then one per tokenFailEvery;
// Wait says how long, rounded up to whole seconds by retryAfter's caller.
func TestTokenFailureBuckets(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newLimiterSet(rate.Every(tokenFailEvery), tokenFailBurst, clk.now)
	for range tokenFailBurst {
		if w := s.wait("x"); w != 0 {
			t.Fatalf("waits %v inside the burst", w)
		}
		s.take("x")
	}
	if w := s.wait("x"); w <= 0 || w > tokenFailEvery {
		t.Fatalf("after the burst: wait %v, want (0, %v]", w, tokenFailEvery)
	}
	clk.advance(tokenFailEvery)
	if w := s.wait("x"); w != 0 {
		t.Fatalf("after %v: wait %v", tokenFailEvery, w)
	}
	// Refilled buckets are forgotten once the set is large.
	for i := range maxKeys {
		s.take(fmt.Sprintf("k%d", i))
	}
	clk.advance(time.Duration(tokenFailBurst) * tokenFailEvery)
	s.take("new")
	if n := len(s.m); n > 2 {
		t.Fatalf("%d buckets kept after they refilled", n)
	}
}

// The throttle's cost per sign-in attempt: Wait (one query) and Failed (one
// transaction of three upserts), on the test engine.
func BenchmarkStoreSignInThrottle(b *testing.B) {
	ctx := context.Background()
	s, _ := modelstest.Open(b, models.Options{})
	th := NewStoreSignInThrottle(s, nil)
	b.Run("Wait", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := th.Wait(ctx, "admin", fmt.Sprintf("203.0.113.%d", i%200)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Failed", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := th.Failed(ctx, fmt.Sprintf("user%d", i%1000), fmt.Sprintf("203.0.113.%d", i%200)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
