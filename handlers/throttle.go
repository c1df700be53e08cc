package handlers

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/registryhooks/registryhooks/models"
)

// SignInThrottle decides how often a password may be tried. Login asks Wait
// before checking a password and reports the outcome after. The default,
// StoreSignInThrottle, keeps its state in the database, so every instance
// on one database applies the same lockout and a restart forgets nothing.
// An error (the database is away) fails the sign-in: no password is checked
// that the throttle could not count.
type SignInThrottle interface {
	// Wait returns how long the user name from the client address must wait
	// before trying again; 0 means try now.
	Wait(ctx context.Context, username, addr string) (time.Duration, error)
	// Failed records a wrong password for the pair.
	Failed(ctx context.Context, username, addr string) error
	// Succeeded forgets the pair's failures.
	Succeeded(ctx context.Context, username, addr string) error
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

// signInPruneEvery is how often (by the throttle's clock) Failed also
// deletes the buckets that have refilled.
const signInPruneEvery = time.Minute

// StoreSignInThrottle is SignInThrottle on token buckets kept in the
// database (table sign_in_throttle): each failure takes a token from the
// pair's, the address's and the name's bucket, a bucket refills at one token
// per interval, and an empty bucket makes Wait say how long until the next
// token, as golang.org/x/time/rate would in memory (rate.Limiter keeps its
// state in the process, which several instances cannot share, so the same
// arithmetic is done on a row instead). Each bucket is one row
// holding when it will be full again, changed by one atomic upsert, so
// instances sharing a PostgreSQL database count every failure once. Wait
// is one query; Failed one transaction, and once a minute a prune of the
// refilled buckets. Safe for concurrent use.
type StoreSignInThrottle struct {
	store *models.Store
	now   func() time.Time
	// lastPrune is the clock reading (unix ns) of the last prune.
	lastPrune atomic.Int64
}

// NewStoreSignInThrottle returns the database-backed throttle with the
// rules above. now is the clock (nil: time.Now); instances sharing a
// database should have clocks that agree to within seconds.
func NewStoreSignInThrottle(store *models.Store, now func() time.Time) *StoreSignInThrottle {
	if now == nil {
		now = time.Now
	}
	return &StoreSignInThrottle{store: store, now: now}
}

func signInKeys(username, addr string) (pair, address, name models.ThrottleKey) {
	return models.ThrottleKey{Kind: models.ThrottlePair, Name: username, Address: addr},
		models.ThrottleKey{Kind: models.ThrottleAddress, Address: addr},
		models.ThrottleKey{Kind: models.ThrottleName, Name: username}
}

// bucketWait is how long until a bucket that is full at fullAt has a token
// again; 0 when it has one (a bucket without a row has the zero fullAt).
func bucketWait(fullAt, now time.Time, every time.Duration, burst int) time.Duration {
	if !fullAt.After(now) {
		return 0
	}
	return max(0, fullAt.Sub(now)-time.Duration(burst-1)*every)
}

// Wait implements SignInThrottle.
func (t *StoreSignInThrottle) Wait(ctx context.Context, username, addr string) (time.Duration, error) {
	pair, address, name := signInKeys(username, addr)
	at, err := t.store.ThrottleFullAt(ctx, pair, address, name)
	if err != nil {
		return 0, fmt.Errorf("throttle: %w", err)
	}
	now := t.now()
	wait := max(bucketWait(at[0], now, signInPairEvery, signInPairBurst),
		bucketWait(at[1], now, signInAddrEvery, signInAddrBurst))
	if at[0].After(now) { // the pair has failed lately: the name's lock applies
		wait = max(wait, bucketWait(at[2], now, signInNameEvery, signInNameBurst))
	}
	return wait, nil
}

// Failed implements SignInThrottle.
func (t *StoreSignInThrottle) Failed(ctx context.Context, username, addr string) error {
	pair, address, name := signInKeys(username, addr)
	now := t.now()
	err := t.store.ThrottleTakeTokens(ctx, now,
		models.ThrottleTake{Key: pair, Every: signInPairEvery, Burst: signInPairBurst},
		models.ThrottleTake{Key: address, Every: signInAddrEvery, Burst: signInAddrBurst},
		models.ThrottleTake{Key: name, Every: signInNameEvery, Burst: signInNameBurst})
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	if last := t.lastPrune.Load(); now.UnixNano()-last >= int64(signInPruneEvery) && t.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		if _, err := t.store.PruneThrottle(ctx, now); err != nil {
			return fmt.Errorf("throttle: %w", err)
		}
	}
	return nil
}

// Succeeded implements SignInThrottle. Only the pair's failures are
// forgotten: the address's and the name's count failures of others too.
func (t *StoreSignInThrottle) Succeeded(ctx context.Context, username, addr string) error {
	pair, _, _ := signInKeys(username, addr)
	if err := t.store.ThrottleForget(ctx, pair); err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	return nil
}

// Bearer-token failures (API, ingest) per client address: a burst, then one
// guess per interval; past that the address gets 429 with Retry-After,
// whatever token it sends, until a token has refilled. These buckets stay in
// memory, per instance (Handler.tokenFails): tokens are long random strings,
// so N instances allowing N times the guesses changes nothing that matters,
// and counting every bearer request in the database would cost a write per
// bad request on the ingest hot path.
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
