package handlers

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// SignInThrottle decides how often a password may be tried. Login asks Wait
// before checking a password and reports the outcome after. Deps may give
// one that lives in the database, so several instances share it; the
// default, MemorySignInThrottle, lives in this process.
type SignInThrottle interface {
	// Wait returns how long the user name from the client address must wait
	// before trying again; 0 means try now.
	Wait(username, addr string) time.Duration
	// Failed records a wrong password for the pair.
	Failed(username, addr string)
	// Succeeded forgets the pair's failures.
	Succeeded(username, addr string)
}

// Sign-in throttle rules. The pair (name, address) locks quickly, so one
// client cannot guess; an address trying many names locks a little later; the
// name alone locks only after failures from many addresses (each can add only
// signInPairBurst quickly), and even then an address that has not failed for
// that name may still try: a spray from elsewhere cannot keep its owner out.
const (
	signInPairBurst = 5
	signInPairEvery = 5 * time.Minute
	signInAddrBurst = 20
	signInAddrEvery = time.Minute
	signInNameBurst = 50
	signInNameEvery = time.Minute
)

// MemorySignInThrottle is SignInThrottle on token buckets
// (golang.org/x/time/rate) in memory: each failure takes a token, a bucket
// refills at one token per interval, and an empty bucket makes Wait say how
// long until the next token. Safe for concurrent use.
type MemorySignInThrottle struct {
	pair, addr, name *limiterSet
}

// NewMemorySignInThrottle returns the in-process throttle with the rules
// above. now is the clock (nil: time.Now).
func NewMemorySignInThrottle(now func() time.Time) *MemorySignInThrottle {
	return &MemorySignInThrottle{
		pair: newLimiterSet(rate.Every(signInPairEvery), signInPairBurst, now),
		addr: newLimiterSet(rate.Every(signInAddrEvery), signInAddrBurst, now),
		name: newLimiterSet(rate.Every(signInNameEvery), signInNameBurst, now),
	}
}

func pairKey(username, addr string) string { return username + "\x00" + addr }

// Wait implements SignInThrottle.
func (t *MemorySignInThrottle) Wait(username, addr string) time.Duration {
	wait := max(t.pair.wait(pairKey(username, addr)), t.addr.wait(addr))
	if !t.pair.fresh(pairKey(username, addr)) {
		wait = max(wait, t.name.wait(username))
	}
	return wait
}

// Failed implements SignInThrottle.
func (t *MemorySignInThrottle) Failed(username, addr string) {
	t.pair.take(pairKey(username, addr))
	t.addr.take(addr)
	t.name.take(username)
}

// Succeeded implements SignInThrottle.
func (t *MemorySignInThrottle) Succeeded(username, addr string) {
	t.pair.forget(pairKey(username, addr))
}

// Bearer-token failures (API, ingest) per client address: a burst, then one
// guess per interval; past that the address gets 429 with Retry-After,
// whatever token it sends, until a token has refilled.
const (
	tokenFailBurst = 20
	tokenFailEvery = time.Second
)

// limiterSet is one token bucket per key. Buckets that have refilled are
// forgotten when the set grows past maxKeys, so a spray of keys cannot
// grow memory without end (a full bucket and no bucket behave the same).
type limiterSet struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	now   func() time.Time
	m     map[string]*rate.Limiter
}

const maxKeys = 10000

func newLimiterSet(limit rate.Limit, burst int, now func() time.Time) *limiterSet {
	if now == nil {
		now = time.Now
	}
	return &limiterSet{limit: limit, burst: burst, now: now, m: map[string]*rate.Limiter{}}
}

// wait is how long until key's bucket has a token again; 0 when it has one.
func (s *limiterSet) wait(key string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[key]
	if !ok {
		return 0
	}
	tokens := l.TokensAt(s.now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / float64(s.limit) * float64(time.Second)))
}

// fresh reports whether key's bucket is full: no failures lately.
func (s *limiterSet) fresh(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[key]
	return !ok || l.TokensAt(s.now()) >= float64(s.burst)
}

// take removes a token from key's bucket (none left: nothing happens).
func (s *limiterSet) take(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	l, ok := s.m[key]
	if !ok {
		if len(s.m) >= maxKeys {
			for k, v := range s.m {
				if v.TokensAt(now) >= float64(s.burst) {
					delete(s.m, k)
				}
			}
		}
		l = rate.NewLimiter(s.limit, s.burst)
		s.m[key] = l
	}
	l.AllowN(now, 1)
}

func (s *limiterSet) forget(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// retryAfter sets Retry-After to wait, in whole seconds rounded up.
func retryAfter(c echo.Context, wait time.Duration) {
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
}

// tooManyTokenFailures is the message of a 429 after bearer-token failures.
func tooManyTokenFailures(wait time.Duration) string {
	return "Too many requests with an invalid token from this address. Retry after " +
		strconv.Itoa(int(math.Ceil(wait.Seconds()))) + " seconds."
}
