package dispatch

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/registryhooks/registryhooks/models"
)

// What a hostile receiver can make the dispatcher read and keep.
const (
	// maxResponseHeaderRead caps the response headers the transport reads
	// (http.Transport.MaxResponseHeaderBytes); past it the attempt fails
	// with "server response headers exceeded … bytes" and nothing of the
	// response is kept. Go's default is 1 MiB.
	maxResponseHeaderRead = 256 << 10
	// recordBudget is what one attempt records of a response: headers and
	// body together (as JSON and text), so a receiver cannot grow the
	// database or listEvents answers with either.
	recordBudget = maxResponseBody
	// maxRecordedHeaders is the headers' share of recordBudget; the body
	// gets what they leave.
	maxRecordedHeaders = recordBudget / 2
	// notRecordedKey names the entry that says how many headers were left
	// out. It cannot clash with a real header: those have no spaces.
	notRecordedKey = "(not recorded)"
)

// recordResponse puts the response's headers and body into rec within
// recordBudget bytes: headers in name order until their share is used (a
// longer value is cut and ends in "…"), with an entry saying how many were
// left out; then as much of body as fits. bodyCut says the body read was
// already cut short. rec.Truncated is set when anything was left out.
func recordResponse(rec *models.Attempt, h http.Header, body []byte, bodyCut bool) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rh := make(map[string]string, len(keys))
	used, skipped, skippedBytes, full := 2, 0, 0, false
	for _, k := range keys {
		v := joinValues(h[k])
		room := maxRecordedHeaders - used - len(k) - 6 - 96 // 6: quotes, colon, comma; 96: the note
		if full || room < 16 {
			full = true
			skipped++
			skippedBytes += len(k) + len(v)
			continue
		}
		if len(v) > room {
			v = cutUTF8(v, room-len("…")) + "…"
			rec.Truncated, full = true, true
		}
		rh[k] = v
		used += len(k) + len(v) + 6
	}
	if skipped > 0 {
		rh[notRecordedKey] = fmt.Sprintf("%d more header(s), %d bytes; a response is recorded up to %d KiB", skipped, skippedBytes, recordBudget>>10)
		rec.Truncated = true
	}
	rec.ResponseHeaders = encodeHeaders(rh)
	left := max(recordBudget-len(rec.ResponseHeaders), 0)
	if len(body) > left {
		body = []byte(cutUTF8(string(body), left))
		bodyCut = true
	}
	rec.ResponseBody = string(body)
	rec.Truncated = rec.Truncated || bodyCut
}

// cutUTF8 returns at most n bytes of s, not splitting a character.
func cutUTF8(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}
