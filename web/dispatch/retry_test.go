package dispatch

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status   int
		retry4xx bool
		want     verdict
	}{
		{200, false, succeeded}, {204, false, succeeded}, {299, false, succeeded},
		{0, false, retryable},   // no response: connection refused, reset, DNS
		{504, false, retryable}, // a timeout is recorded as 504
		{500, false, retryable}, {502, false, retryable}, {503, false, retryable},
		{408, false, retryable}, {425, false, retryable}, {429, false, retryable},
		{302, false, retryable}, // a redirect is not followed; the receiver may come back
		{400, false, refused}, {401, false, refused}, {403, false, refused}, {404, false, refused},
		{410, false, refused}, {413, false, refused}, {422, false, refused},
		{400, true, retryable}, {404, true, retryable}, {200, true, succeeded},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.retry4xx); got != tt.want {
			t.Errorf("classify(%d, retry4xx=%v) = %d, want %d", tt.status, tt.retry4xx, got, tt.want)
		}
	}
}

func TestRetryWaitFollowsTheSchedule(t *testing.T) {
	t.Parallel()
	c, err := Config{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxAttempts != 8 || c.RetryAfterMax != 10*time.Hour {
		t.Fatalf("defaults: MaxAttempts %d, RetryAfterMax %s; want 8, 10h", c.MaxAttempts, c.RetryAfterMax)
	}
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	var total time.Duration
	for n := 1; n <= 7; n++ {
		w := c.retryWait(n, 0)
		if w != want[n-1] {
			t.Errorf("wait after attempt %d = %s, want %s", n, w, want[n-1])
		}
		total += w
		if hi := c.retryWait(n, 0.999999); hi <= w || hi > w+w/10 {
			t.Errorf("wait after attempt %d with the most jitter = %s; want within (%s, %s]", n, hi, w, w+w/10)
		}
	}
	// About a day from the first attempt to the last: 27 h 35 min 5 s.
	if total != 27*time.Hour+35*time.Minute+5*time.Second {
		t.Errorf("schedule spans %s", total)
	}
	// More attempts than waits: the last wait repeats.
	if w := c.retryWait(20, 0); w != 10*time.Hour {
		t.Errorf("wait after attempt 20 = %s, want 10h", w)
	}
	// A custom schedule sets the attempt count unless MaxAttempts is given.
	c2, _ := Config{RetrySchedule: []time.Duration{time.Second, time.Minute}}.WithDefaults()
	if c2.MaxAttempts != 3 || c2.RetryAfterMax != time.Minute {
		t.Errorf("custom schedule: MaxAttempts %d, RetryAfterMax %s", c2.MaxAttempts, c2.RetryAfterMax)
	}
	if _, err := (Config{RetrySchedule: []time.Duration{time.Second, 0}}).WithDefaults(); err == nil {
		t.Error("a zero wait was accepted")
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		h    map[string]string
		want time.Duration
		ok   bool
	}{
		{map[string]string{"Retry-After": "120"}, 2 * time.Minute, true},
		{map[string]string{"retry-after": " 1 "}, time.Second, true},
		{map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second, true},
		{map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0, true},
		{map[string]string{"Retry-After": "soon"}, 0, false},
		{map[string]string{"Retry-After": "-5"}, 0, false},
		{map[string]string{"Content-Type": "text/plain"}, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%v) = %s, %v; want %s, %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	c, _ := Config{}.WithDefaults()
	c4, _ := Config{Retry4xx: true}.WithDefaults()
	ra := func(v string) string { return `{"Retry-After":"` + v + `"}` }
	tests := []struct {
		name    string
		cfg     *Config
		rec     models.Attempt
		n       int
		ping    bool
		state   int
		wait    time.Duration
		reason  string
		comment string
	}{
		{"200", &c, models.Attempt{StatusCode: 200}, 1, false, models.DeliverySucceeded, 0, "", ""},
		{"500 first", &c, models.Attempt{StatusCode: 500}, 1, false, models.DeliveryPending, 5 * time.Second, "", ""},
		{"500 third", &c, models.Attempt{StatusCode: 500}, 3, false, models.DeliveryPending, 30 * time.Minute, "", ""},
		{"500 last", &c, models.Attempt{StatusCode: 500}, 8, false, models.DeliveryFailed, 0, "gave up after 8 attempts", ""},
		{"timeout last", &c, models.Attempt{StatusCode: 504, Error: "timed out after 5s"}, 8, false, models.DeliveryFailed, 0, "gave up after 8 attempts", ""},
		{"refused connection", &c, models.Attempt{Error: "connection refused"}, 2, false, models.DeliveryPending, 5 * time.Minute, "", ""},
		{"400", &c, models.Attempt{StatusCode: 400}, 1, false, models.DeliveryFailed, 0, "refused by the receiver: 400 Bad Request", ""},
		{"404 late", &c, models.Attempt{StatusCode: 404}, 5, false, models.DeliveryFailed, 0, "refused by the receiver: 404 Not Found", ""},
		{"400 with retry-4xx", &c4, models.Attempt{StatusCode: 400}, 1, false, models.DeliveryPending, 5 * time.Second, "", ""},
		{"503 Retry-After 1", &c, models.Attempt{StatusCode: 503, ResponseHeaders: ra("1")}, 1, false, models.DeliveryPending, time.Second, "", "shorter than the schedule"},
		{"429 Retry-After 3600", &c, models.Attempt{StatusCode: 429, ResponseHeaders: ra("3600")}, 1, false, models.DeliveryPending, time.Hour, "", "longer than the schedule"},
		{"429 Retry-After date", &c, models.Attempt{StatusCode: 429, ResponseHeaders: ra(now.Add(42 * time.Second).Format(http.TimeFormat))}, 1, false, models.DeliveryPending, 42 * time.Second, "", ""},
		{"503 Retry-After capped", &c, models.Attempt{StatusCode: 503, ResponseHeaders: ra("999999")}, 1, false, models.DeliveryPending, 10 * time.Hour, "", "capped at the longest wait"},
		{"503 Retry-After 0", &c, models.Attempt{StatusCode: 503, ResponseHeaders: ra("0")}, 1, false, models.DeliveryPending, time.Second, "", "at least a second"},
		{"500 Retry-After ignored", &c, models.Attempt{StatusCode: 500, ResponseHeaders: ra("1")}, 1, false, models.DeliveryPending, 5 * time.Second, "", "only 429 and 503"},
		{"503 Retry-After on the last attempt", &c, models.Attempt{StatusCode: 503, ResponseHeaders: ra("1")}, 8, false, models.DeliveryFailed, 0, "gave up after 8 attempts", ""},
		{"ping 502", &c, models.Attempt{StatusCode: 502}, 1, true, models.DeliveryFailed, 0, "", "pings are sent once"},
		{"ping 400", &c, models.Attempt{StatusCode: 400}, 1, true, models.DeliveryFailed, 0, "", ""},
	}
	for _, tt := range tests {
		o := tt.cfg.decide(&tt.rec, tt.n, tt.ping, now, 0)
		if o.state != tt.state || o.reason != tt.reason {
			t.Errorf("%s: state %d reason %q; want %d %q", tt.name, o.state, o.reason, tt.state, tt.reason)
		}
		if tt.state == models.DeliveryPending {
			if got := o.retryAt.Sub(now); got != tt.wait {
				t.Errorf("%s (%s): retry in %s, want %s", tt.name, tt.comment, got, tt.wait)
			}
		}
	}
}

func TestParseRetrySchedule(t *testing.T) {
	t.Parallel()
	got, err := ParseRetrySchedule(" 5s, 5m,30m,2h,5h,10h,10h")
	if err != nil || FormatRetrySchedule(got) != FormatRetrySchedule(DefaultRetrySchedule) || len(got) != 7 {
		t.Fatalf("ParseRetrySchedule = %v, %v", got, err)
	}
	if s := FormatRetrySchedule(DefaultRetrySchedule); s != "5s,5m,30m,2h,5h,10h,10h" {
		t.Errorf("FormatRetrySchedule = %q", s)
	}
	for in, want := range map[string]string{
		"":                               "empty",
		"5s,,1m":                         `wait 2 ("") is not a duration`,
		"5":                              `wait 1 ("5") is not a duration`,
		"0s":                             "must be more than 0",
		"-1s":                            "must be more than 0",
		"200h":                           "at most 168h",
		"1s" + strings.Repeat(",1s", 99): "at most 99",
	} {
		if _, err := ParseRetrySchedule(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRetrySchedule(%.20q) = %v, want %q", in, err, want)
		}
	}
}

// A receiver that refuses an event gets one attempt; the reason is recorded.
func TestRefusedIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "tag cannot be empty", http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "hookRefuse", srv.URL, nil)
	b.ingest(t, 1)
	b.round(t)
	b.clk.Advance(time.Hour)
	if n := b.round(t); n != 0 {
		t.Fatalf("a refused delivery was claimed again: %d", n)
	}
	d := b.deliveries(t, w)[0]
	if d.State != models.DeliveryFailed || d.Attempts != 1 || hits.Load() != 1 || d.LastError != "refused by the receiver: 400 Bad Request" {
		t.Fatalf("delivery = %+v, hits %d", d.Delivery, hits.Load())
	}
	if as := b.attempts(t, d.ID); len(as) != 1 || as[0].Error != "refused by the receiver: 400 Bad Request" || !strings.Contains(as[0].ResponseBody, "tag cannot be empty") {
		t.Fatalf("attempts = %+v", as)
	}
}

// With Retry4xx the same receiver is retried on the schedule.
func TestRetry4xxRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, Retry4xx: true, RetrySchedule: []time.Duration{time.Second}, MaxAttempts: 2})
	srv, _ := receiver(t, http.StatusNotFound)
	w := b.webhook(t, "hookRetry4xx", srv.URL, nil)
	b.ingest(t, 1)
	b.round(t)
	if d := b.deliveries(t, w)[0]; d.State != models.DeliveryPending || time.Unix(0, d.AvailableAt).Sub(b.clk.Now()) != time.Second {
		t.Fatalf("after the first 404: %+v", d.Delivery)
	}
	b.clk.Advance(time.Second)
	if n := b.round(t); n != 1 {
		t.Fatalf("claimed %d, want the retry", n)
	}
	d := b.deliveries(t, w)[0]
	if d.State != models.DeliveryFailed || d.Attempts != 2 || d.LastError != "gave up after 2 attempts" {
		t.Fatalf("after the second 404: %+v", d.Delivery)
	}
}

// A 503 with Retry-After is retried when the receiver asked, not on the
// schedule.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{AllowPrivateTargets: true, RetrySchedule: DefaultRetrySchedule})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "90")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	w := b.webhook(t, "hookRetryAfter", srv.URL, nil)
	b.ingest(t, 1)
	b.round(t)
	d := b.deliveries(t, w)[0]
	if d.State != models.DeliveryPending || time.Unix(0, d.AvailableAt).Sub(b.clk.Now()) != 90*time.Second {
		t.Fatalf("after the 503: %+v (next in %s)", d.Delivery, time.Unix(0, d.AvailableAt).Sub(b.clk.Now()))
	}
	b.clk.Advance(89 * time.Second)
	if n := b.round(t); n != 0 {
		t.Fatalf("retried %d before Retry-After passed", n)
	}
	b.clk.Advance(time.Second)
	if n := b.round(t); n != 1 {
		t.Fatalf("claimed %d when Retry-After passed", n)
	}
	if d := b.deliveries(t, w)[0]; d.State != models.DeliverySucceeded || d.Attempts != 2 || hits.Load() != 2 {
		t.Fatalf("after the retry: %+v, hits %d", d.Delivery, hits.Load())
	}
}
