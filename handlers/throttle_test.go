package handlers

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
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

// The sign-in throttle's rules, on a fake clock: the pair locks after
// signInPairBurst failures and frees a try per signInPairEvery; the name
// alone locks only after signInNameBurst failures, which one address cannot
// reach quickly, and then only for addresses that failed for it.
func TestSignInThrottleRules(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := NewMemorySignInThrottle(clk.now)

	// The pair.
	for i := range signInPairBurst {
		if w := th.Wait("admin", "a1"); w != 0 {
			t.Fatalf("try %d from a1 waits %v", i+1, w)
		}
		th.Failed("admin", "a1")
	}
	w := th.Wait("admin", "a1")
	if w <= 0 || w > signInPairEvery {
		t.Fatalf("after %d failures a1 waits %v, want (0, %v]", signInPairBurst, w, signInPairEvery)
	}
	if w := th.Wait("admin", "a2"); w != 0 {
		t.Fatalf("a2 waits %v for a1's failures", w)
	}
	if w := th.Wait("other", "a1"); w != 0 {
		t.Fatalf("another name from a1 waits %v", w)
	}
	clk.advance(signInPairEvery)
	if w := th.Wait("admin", "a1"); w != 0 {
		t.Fatalf("a1 still waits %v after %v", w, signInPairEvery)
	}
	th.Failed("admin", "a1")
	if w := th.Wait("admin", "a1"); w <= 0 {
		t.Fatal("a1 not locked again after one more failure")
	}
	th.Succeeded("admin", "a1")
	if w := th.Wait("admin", "a1"); w != 0 {
		t.Fatalf("a1 waits %v after a success", w)
	}

	// The name: failures from many addresses, a few each.
	th = NewMemorySignInThrottle(clk.now)
	addrs := 0
	for n := 0; n < signInNameBurst; addrs++ {
		for range signInPairBurst {
			th.Failed("admin", fmt.Sprintf("b%d", addrs))
			n++
		}
	}
	th.Failed("admin", "c1") // one failure from yet another address
	if w := th.Wait("admin", "c1"); w <= 0 {
		t.Fatalf("after failures from %d addresses, c1 (one failure) may still try", addrs+1)
	}
	if w := th.Wait("admin", "fresh"); w != 0 {
		t.Fatalf("an address without failures waits %v while the name is locked", w)
	}
	if w := th.Wait("someoneelse", "c1"); w != 0 {
		t.Fatalf("c1 waits %v for another name", w)
	}

	// One address spraying names.
	th = NewMemorySignInThrottle(clk.now)
	for i := range signInAddrBurst {
		th.Failed(fmt.Sprintf("user%d", i), "spray")
	}
	if w := th.Wait("admin", "spray"); w <= 0 {
		t.Fatalf("after %d names failed from one address, it may still try", signInAddrBurst)
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
