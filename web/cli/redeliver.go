package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// redeliver sends finished events of a webhook again: those named by
// --event-id, or every one whose latest delivery failed since
// --failed-since (RFC 3339, or a duration before now such as 2h).
func redeliver(o opts, c *client, hookPath string, table bool, stdout io.Writer) error {
	body := map[string]any{}
	if o.has("event-id") {
		body["eventIds"] = o.values["event-id"]
	} else {
		since, err := parseSince(o.get("failed-since"), time.Now())
		if err != nil {
			return err
		}
		body["failedSince"] = since.UTC().Format(time.RFC3339)
	}
	var raw json.RawMessage
	if _, err := c.do(http.MethodPost, hookPath+"/redeliver", body, &raw); err != nil {
		return err
	}
	if table {
		var out struct{ Queued int }
		_ = json.Unmarshal(raw, &out)
		return writeTable(stdout, []string{"QUEUED"}, [][]string{{strconv.Itoa(out.Queued)}})
	}
	return printJSON(stdout, raw)
}

// parseSince reads an RFC 3339 time, or a positive duration meaning that
// long before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("argument --failed-since: %q is neither an RFC 3339 time (2026-05-01T14:30:00Z) nor a duration ago (2h)", s)
}
