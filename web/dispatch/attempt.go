package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/registryhooks/registryhooks/models"
)

// maxResponseBody is how much of a response body is read; an attempt
// records less when the headers use part of recordBudget.
const maxResponseBody = 64 << 10

// maxDrain is how much more of a response body is read (and dropped) so the
// connection can be reused.
const maxDrain = 1 << 20

func newClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, Control: dialControl(cfg.AllowPrivateTargets)}
	tr := &http.Transport{
		Proxy:               nil, // never via a proxy: the guard must see the real target
		DialContext:         dialer.DialContext,
		MaxIdleConns:        cfg.Workers * 2,
		MaxIdleConnsPerHost: cfg.Workers,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.Timeout,
		ForceAttemptHTTP2:   true,
		// A receiver must not fill memory with headers (see record.go).
		MaxResponseHeaderBytes: maxResponseHeaderRead,
	}
	return &http.Client{
		Transport: tr,
		// Redirects are not followed: ACR does not, and a redirect could
		// point the request at an address the guard would refuse.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// target is what an attempt needs of a webhook.
type target struct {
	uri     string
	headers map[string]string
	// shownURI is what the attempt record keeps of uri (models.MaskURI).
	shownURI string
	// signing signs the deliveries (Standard Webhooks); eventID is set per
	// job, for the webhook-id header.
	signing signing
	eventID string
	// unreadable, when set, says why the webhook's secrets cannot be
	// opened; the attempt records it and sends nothing.
	unreadable string
}

// attempt POSTs payload to t and returns the record of what happened. The
// record's StatusCode is 0 when no HTTP response came back (Error says why),
// and 504 when the attempt timed out.
func (d *Dispatcher) attempt(ctx context.Context, t target, payload []byte) models.Attempt {
	start := d.now()
	shownURI := t.shownURI
	if shownURI == "" {
		shownURI = models.MaskURI(t.uri)
	}
	rec := models.Attempt{RequestURI: shownURI, StartedAt: start.UnixNano()}
	shown := map[string]string{}
	if t.unreadable != "" {
		rec.Error, rec.RequestHeaders = t.unreadable, encodeHeaders(shown)
		return rec
	}

	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.uri, bytes.NewReader(payload))
	if err != nil {
		// url.Error quotes the whole URI, whose path and query may carry a
		// token: record only what is wrong with it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		rec.Error = fmt.Sprintf("invalid service URI: %v", err)
		rec.RequestHeaders = encodeHeaders(shown)
		return rec
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.cfg.UserAgent)
	shown["Content-Type"] = "application/json"
	shown["User-Agent"] = d.cfg.UserAgent
	for k, v := range t.headers {
		ck := http.CanonicalHeaderKey(k)
		if ck == "Host" {
			req.Host = v
		} else {
			req.Header.Set(ck, v)
		}
		if ck == "Content-Type" {
			shown[ck] = v
		} else {
			shown[ck] = models.Mask
		}
	}
	t.signing.sign(req, shown, t.eventID, payload, start)
	shown["Content-Length"] = strconv.Itoa(len(payload))
	rec.RequestHeaders = encodeHeaders(shown)

	t0 := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		rec.DurationMS = time.Since(t0).Milliseconds()
		d.describeError(&rec, ctx, err, req)
		return rec
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	bodyCut := len(body) > maxResponseBody
	if bodyCut {
		body = body[:maxResponseBody]
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	}
	rec.DurationMS = time.Since(t0).Milliseconds()
	rec.StatusCode = resp.StatusCode
	rec.ReasonPhrase = http.StatusText(resp.StatusCode)
	recordResponse(&rec, resp.Header, body, bodyCut)
	if err != nil {
		// The status is known; a body cut short is noted, not fatal.
		if ctx.Err() != nil {
			rec.Error = fmt.Sprintf("response body timed out after %s", d.cfg.Timeout)
		} else {
			rec.Error = fmt.Sprintf("reading response body: %v", err)
		}
	}
	return rec
}

// describeError fills StatusCode, ReasonPhrase and Error for an attempt that
// got no response, in words a webhook owner can act on.
func (d *Dispatcher) describeError(rec *models.Attempt, ctx context.Context, err error, req *http.Request) {
	var te *TargetError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &te):
		rec.Error = te.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		rec.StatusCode = http.StatusGatewayTimeout
		rec.ReasonPhrase = http.StatusText(http.StatusGatewayTimeout)
		rec.Error = fmt.Sprintf("timed out after %s", d.cfg.Timeout)
	case errors.Is(err, context.Canceled):
		rec.Error = "cancelled: the dispatcher is stopping"
	case errors.Is(err, syscall.ECONNREFUSED):
		rec.Error = fmt.Sprintf("connection refused: nothing listens at %s", hostPort(req))
	case errors.Is(err, syscall.ECONNRESET):
		rec.Error = fmt.Sprintf("connection reset by %s", hostPort(req))
	case errors.As(err, &dnsErr):
		rec.Error = fmt.Sprintf("DNS lookup of %s failed: %s", dnsErr.Name, dnsErr.Err)
	default:
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		rec.Error = err.Error()
	}
}

func hostPort(req *http.Request) string {
	h := req.URL.Host
	if req.URL.Port() == "" {
		if req.URL.Scheme == "https" {
			return net.JoinHostPort(req.URL.Hostname(), "443")
		}
		return net.JoinHostPort(req.URL.Hostname(), "80")
	}
	return h
}

func joinValues(vs []string) string { return strings.Join(vs, ", ") }

// encodeHeaders renders a header map as a JSON object with sorted keys,
// as json.Marshal would (less its HTML escaping), without reflection: it
// runs twice for every attempt.
func encodeHeaders(h map[string]string) string {
	keys := make([]string, 0, len(h))
	n := 2
	for k, v := range h {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	sort.Strings(keys)
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, h[k])
	}
	return string(append(b, '}'))
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\r':
					b = append(b, '\\', 'r')
				case '\t':
					b = append(b, '\\', 't')
				default:
					b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
