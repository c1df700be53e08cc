package acr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/registryhooks/registryhooks/models"
)

// ErrInvalid marks a body that cannot be an event; the message says why.
var ErrInvalid = errors.New("invalid event")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Distribution's notification envelope (distribution/v3 notifications).
type distEnvelope struct {
	Events []distEvent `json:"events"`
}

type distEvent struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"`
	Target    struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Size       int64  `json:"size"`
		Length     int64  `json:"length"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request Request `json:"request"`
	Actor   Actor   `json:"actor"`
	Source  Source  `json:"source"`
}

// Skipped is a Distribution event that is not an ACR event, and why.
type Skipped struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// ParseDistribution turns a Distribution notification envelope into ACR
// events: a manifest push with a tag becomes push, a manifest delete by
// digest becomes delete. Blob pushes and deletes, pulls, mounts, pushes
// by digest alone and tag-only deletes (untag, which ACR does not report)
// are skipped, each with a reason. now stamps events that carry no
// timestamp; an event without an id keeps ID empty for the caller to fill.
func ParseDistribution(body []byte, now time.Time) ([]Event, []Skipped, error) {
	if !utf8.Valid(body) {
		return nil, nil, invalid("the body is not valid UTF-8")
	}
	var env distEnvelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return nil, nil, invalid("not a Distribution notification envelope: %v", err)
	}
	if env.Events == nil {
		return nil, nil, invalid(`not a Distribution notification envelope: no "events" array`)
	}
	var out []Event
	var skipped []Skipped
	for i, de := range env.Events {
		ev, reason, err := fromDistribution(de, now)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (events[%d])", err, i)
		}
		if reason != "" {
			skipped = append(skipped, Skipped{ID: de.ID, Action: de.Action, Reason: reason})
			continue
		}
		out = append(out, ev)
	}
	return out, skipped, nil
}

func fromDistribution(de distEvent, now time.Time) (Event, string, error) {
	t := de.Target
	blob := t.MediaType == "application/octet-stream" || strings.Contains(t.URL, "/blobs/")
	switch de.Action {
	case "push", "delete":
	case "pull":
		return Event{}, "pulls are not ACR webhook events", nil
	case "mount":
		return Event{}, "blob mounts are not ACR webhook events", nil
	default:
		return Event{}, fmt.Sprintf("action %q is not an ACR webhook event", de.Action), nil
	}
	if blob {
		return Event{}, "blob " + de.Action + "es are not ACR webhook events", nil
	}
	if t.Repository == "" {
		return Event{}, "", invalid("target.repository is required")
	}
	if err := ValidateRepository(t.Repository); err != nil {
		return Event{}, "", err
	}
	if err := validateMediaType(t.MediaType); err != nil {
		return Event{}, "", err
	}
	if de.Action == "push" && t.Tag == "" {
		return Event{}, "manifest pushed by digest without a tag; push fires for tagged pushes", nil
	}
	if de.Action == "delete" && t.Digest == "" {
		return Event{}, "tag delete (untag) without a digest; ACR does not fire on untag", nil
	}
	// The same rules as an event posted to /ingest/events.
	if de.Action == "push" && !models.ValidTag(t.Tag) {
		return Event{}, "", invalid("target.tag %q is not a valid tag", t.Tag)
	}
	if t.Digest != "" && !digestRE.MatchString(t.Digest) {
		return Event{}, "", invalid("target.digest %q is not a valid digest (algorithm:hex)", t.Digest)
	}
	if de.ID != "" && (len(de.ID) > 64 || strings.ContainsAny(de.ID, " \t\r\n/")) {
		return Event{}, "", invalid("id must be at most 64 characters without spaces or slashes")
	}
	if t.Size < 0 || t.Length < 0 {
		return Event{}, "", invalid("target.size must not be negative")
	}
	if err := checkSize(t.Size, t.Length); err != nil {
		return Event{}, "", err
	}
	at := now
	if de.Timestamp != "" {
		p, err := time.Parse(time.RFC3339Nano, de.Timestamp)
		if err != nil {
			return Event{}, "", invalid("timestamp %q is not RFC 3339", de.Timestamp)
		}
		at = p
	}
	size := t.Size
	if size == 0 {
		size = t.Length
	}
	ev := Event{ID: de.ID, Time: at.UTC(), Action: de.Action, Repository: t.Repository, Digest: t.Digest,
		MediaType: t.MediaType, Size: size, Request: de.Request}
	if de.Action == "push" {
		ev.Tag = t.Tag
	}
	return ev, "", nil
}

// checkSize refuses a target.size or target.length that ACR's Int32 fields
// cannot hold: receivers decoding into int32 would fail on the payload.
func checkSize(size, length int64) error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"size", size}, {"length", length}} {
		if f.v > MaxSize {
			return invalid("target.%s %d is larger than %d: ACR's size and length are 32-bit integers", f.name, f.v, MaxSize)
		}
	}
	return nil
}

// maxMediaTypeLen bounds target.mediaType: RFC 6838 allows 127 characters
// for each of type and subtype, and registries send no parameters.
const maxMediaTypeLen = 255

// validateMediaType checks what every payload repeats of target.mediaType:
// bounded, and free of control characters (the body was checked for valid
// UTF-8 before).
func validateMediaType(mt string) error {
	switch {
	case len(mt) > maxMediaTypeLen:
		return invalid("target.mediaType must be at most %d characters", maxMediaTypeLen)
	case strings.ContainsFunc(mt, unicode.IsControl):
		return invalid("target.mediaType must not contain control characters")
	}
	return nil
}

var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// ValidateRepository checks a repository name against the Distribution
// grammar (lowercase, "/"-separated components, at most 255 characters).
func ValidateRepository(repo string) error {
	switch {
	case repo == "":
		return invalid("target.repository is required")
	case len(repo) > 255:
		return invalid("target.repository must be at most 255 characters")
	case !models.ValidRepository(repo):
		return invalid("target.repository %q is not a valid repository name: lowercase letters, digits and separators (. _ __ -), components separated by /", repo)
	}
	return nil
}

// apiEvent is the body of POST /ingest/events: one event in ACR's content
// shape. Unknown fields are refused so a typo does not pass silently.
type apiEvent struct {
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Action    string   `json:"action"`
	Target    *Target  `json:"target"`
	Request   *Request `json:"request"`
	Actor     *Actor   `json:"actor"`
	Source    *Source  `json:"source"`
}

// ParseEvent parses and validates one event in ACR's content shape, for
// scripts and CI jobs. action must be push, delete, quarantine, chart_push or
// chart_delete; target.repository is required and must be a valid name;
// push and quarantine need a tag or a digest, delete a digest, chart events
// a tag or name. now stamps an event without timestamp; an event without id
// keeps ID empty for the caller to fill.
func ParseEvent(body []byte, now time.Time) (Event, error) {
	if !utf8.Valid(body) {
		return Event{}, invalid("the body is not valid UTF-8")
	}
	var in apiEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return Event{}, invalid("body is not an ACR event object: %v", err)
	}
	if dec.More() {
		return Event{}, invalid("body must hold exactly one JSON object")
	}
	switch in.Action {
	case models.ActionPush, models.ActionDelete, models.ActionQuarantine, models.ActionChartPush, models.ActionChartDelete:
	case "":
		return Event{}, invalid("action is required: one of push, delete, quarantine, chart_push, chart_delete")
	default:
		return Event{}, invalid("action %q is not one of push, delete, quarantine, chart_push, chart_delete", in.Action)
	}
	if in.Target == nil {
		return Event{}, invalid("target is required")
	}
	t := in.Target
	if err := ValidateRepository(t.Repository); err != nil {
		return Event{}, err
	}
	if err := validateMediaType(t.MediaType); err != nil {
		return Event{}, err
	}
	if in.ID != "" && (len(in.ID) > 64 || strings.ContainsAny(in.ID, " \t\r\n/")) {
		return Event{}, invalid("id must be at most 64 characters without spaces or slashes")
	}
	if t.Tag != "" && !models.ValidTag(t.Tag) {
		return Event{}, invalid("target.tag %q is not a valid tag", t.Tag)
	}
	if t.Digest != "" && !digestRE.MatchString(t.Digest) {
		return Event{}, invalid("target.digest %q is not a valid digest (algorithm:hex)", t.Digest)
	}
	switch in.Action {
	case models.ActionPush, models.ActionQuarantine:
		if t.Tag == "" && t.Digest == "" {
			return Event{}, invalid("%s needs target.tag or target.digest", in.Action)
		}
	case models.ActionDelete:
		if t.Digest == "" {
			return Event{}, invalid("delete needs target.digest (ACR does not fire on untag)")
		}
	case models.ActionChartPush, models.ActionChartDelete:
		if t.Tag == "" && t.Name == "" {
			return Event{}, invalid("%s needs target.tag or target.name", in.Action)
		}
	}
	at := now
	if in.Timestamp != "" {
		p, err := time.Parse(time.RFC3339Nano, in.Timestamp)
		if err != nil {
			return Event{}, invalid("timestamp %q is not RFC 3339", in.Timestamp)
		}
		at = p
	}
	var size int64
	switch {
	case t.Size != nil:
		size = *t.Size
	case t.Length != nil:
		size = *t.Length
	}
	if size < 0 || (t.Length != nil && *t.Length < 0) {
		return Event{}, invalid("target.size must not be negative")
	}
	var length int64
	if t.Length != nil {
		length = *t.Length
	}
	if err := checkSize(size, length); err != nil {
		return Event{}, err
	}
	ev := Event{ID: in.ID, Time: at.UTC(), Action: in.Action, Repository: t.Repository, Tag: t.Tag, Digest: t.Digest,
		MediaType: t.MediaType, Size: size, Name: t.Name, Version: t.Version}
	if in.Action == models.ActionDelete {
		ev.Tag = ""
	}
	if in.Request != nil {
		ev.Request = *in.Request
	}
	return ev, nil
}
