package dispatch

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// DefaultRetrySchedule is the wait before each retry of a delivery: the first
// attempt goes out at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
// 10 h, as Svix's schedule. Eight attempts span about 27.6 hours, so a
// receiver that is down for a deploy, a night or a day still gets the event.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// retryJitter is the largest fraction added to a scheduled wait, so many
// deliveries that failed together do not retry together.
const retryJitter = 0.1

// minRetryAfter is the least wait a Retry-After can ask for: "0" or a date
// in the past still leaves the receiver a moment.
const minRetryAfter = time.Second

// verdict is what an attempt's result says about retrying.
type verdict int

const (
	// succeeded: a 2xx.
	succeeded verdict = iota
	// retryable: timeouts, connection errors, 408, 425, 429, 5xx, and
	// whatever is neither 2xx nor 4xx (a redirect, which is not followed,
	// may be a proxy's maintenance page); every 4xx too with Retry4xx.
	retryable
	// refused: any other 4xx. The receiver refused this event by design
	// (Keel answers 400 to an event without a tag, argocd-image-updater to
	// every action but push), and sending it again changes nothing.
	refused
)

// classify sorts an attempt by its status code (0: no HTTP response; a
// timeout is recorded as 504).
func classify(status int, retry4xx bool) verdict {
	switch {
	case status >= 200 && status < 300:
		return succeeded
	case status < 400 || status >= 500, retry4xx,
		status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return retryable
	}
	return refused
}

// outcome is what becomes of a delivery after an attempt.
type outcome struct {
	// state is models.DeliverySucceeded, DeliveryPending (retry at retryAt)
	// or DeliveryFailed.
	state   int
	retryAt time.Time
	// reason says why a delivery ended as failed, for the attempt record and
	// the event detail: "refused by the receiver: 400 Bad Request", "gave up
	// after 8 attempts". Empty otherwise, and for a ping (sent once, as ACR's).
	reason string
}

// decide is the retry policy: what becomes of the delivery whose attempt
// number n (1-based) got rec, at now. jitter is a random fraction in [0,1).
func (c *Config) decide(rec *models.Attempt, n int, ping bool, now time.Time, jitter float64) outcome {
	v := classify(rec.StatusCode, c.Retry4xx)
	switch {
	case v == succeeded:
		return outcome{state: models.DeliverySucceeded}
	case ping:
		return outcome{state: models.DeliveryFailed}
	case v == refused:
		return outcome{state: models.DeliveryFailed, reason: fmt.Sprintf("refused by the receiver: %d %s", rec.StatusCode, http.StatusText(rec.StatusCode))}
	case n >= c.MaxAttempts:
		reason := fmt.Sprintf("gave up after %d attempts", n)
		if n == 1 {
			reason = "gave up after 1 attempt"
		}
		return outcome{state: models.DeliveryFailed, reason: reason}
	}
	wait := c.retryWait(n, jitter)
	if rec.StatusCode == http.StatusTooManyRequests || rec.StatusCode == http.StatusServiceUnavailable {
		if ra, ok := parseRetryAfter(models.DecodeHeaders(rec.ResponseHeaders), now); ok {
			wait = min(max(ra, minRetryAfter), c.RetryAfterMax)
		}
	}
	return outcome{state: models.DeliveryPending, retryAt: now.Add(wait)}
}

// joinReason adds why a delivery ended to its last attempt's error:
// "timed out after 5s; gave up after 8 attempts".
func joinReason(attemptErr, reason string) string {
	switch {
	case reason == "":
		return attemptErr
	case attemptErr == "":
		return reason
	}
	return attemptErr + "; " + reason
}

// retryWait is the scheduled wait after failed attempt n (1-based):
// RetrySchedule[n-1], its last entry once the schedule is used up, plus up
// to 10% jitter.
func (c *Config) retryWait(n int, jitter float64) time.Duration {
	s := c.RetrySchedule
	if len(s) == 0 {
		s = DefaultRetrySchedule
	}
	w := s[min(max(n-1, 0), len(s)-1)]
	return w + time.Duration(float64(w)*retryJitter*jitter)
}

// parseRetryAfter reads a Retry-After header (RFC 9110 10.2.3): a number of
// seconds or an HTTP date. ok is false when there is none or it cannot be
// read; a date in the past reads as 0.
func parseRetryAfter(h map[string]string, now time.Time) (time.Duration, bool) {
	var v string
	for k, val := range h {
		if strings.EqualFold(k, "Retry-After") {
			v = strings.TrimSpace(val)
		}
	}
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(365*24*time.Hour/time.Second) {
			secs = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// ParseRetrySchedule reads a retry schedule as the --retry-schedule flag
// takes it: comma-separated Go durations, the wait before each retry
// ("5s,5m,30m,2h,5h,10h,10h"). Every wait must be positive and at most a
// week; at most 99 waits (--max-attempts caps at 100 attempts).
func ParseRetrySchedule(s string) ([]time.Duration, error) {
	parts := strings.Split(s, ",")
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("dispatch: retry schedule is empty; give the waits before each retry, such as 5s,5m,30m")
	}
	if len(parts) > 99 {
		return nil, fmt.Errorf("dispatch: retry schedule has %d waits; at most 99", len(parts))
	}
	out := make([]time.Duration, 0, len(parts))
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("dispatch: retry schedule wait %d (%q) is not a duration such as 5s, 30m or 2h", i+1, strings.TrimSpace(p))
		}
		if d <= 0 || d > 7*24*time.Hour {
			return nil, fmt.Errorf("dispatch: retry schedule wait %d (%s) must be more than 0 and at most 168h", i+1, d)
		}
		out = append(out, d)
	}
	return out, nil
}

// FormatRetrySchedule renders a schedule as ParseRetrySchedule reads it.
func FormatRetrySchedule(s []time.Duration) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = models.FormatWindow(d)
	}
	return strings.Join(parts, ",")
}
