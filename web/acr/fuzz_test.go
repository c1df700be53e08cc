package acr

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/registryhooks/registryhooks/models"
)

// checkEvent asserts what every accepted event must satisfy, whichever
// parser produced it.
func checkEvent(t *testing.T, ev Event, from []byte) {
	t.Helper()
	switch ev.Action {
	case models.ActionPush, models.ActionDelete, models.ActionQuarantine, models.ActionChartPush, models.ActionChartDelete:
	default:
		t.Fatalf("accepted action %q from %q", ev.Action, from)
	}
	if !models.ValidRepository(ev.Repository) {
		t.Fatalf("accepted repository %q from %q", ev.Repository, from)
	}
	if ev.Tag != "" && !models.ValidTag(ev.Tag) {
		t.Fatalf("accepted tag %q from %q", ev.Tag, from)
	}
	if len(ev.MediaType) > maxMediaTypeLen || !utf8.ValidString(ev.MediaType) || strings.ContainsFunc(ev.MediaType, unicode.IsControl) {
		t.Fatalf("accepted mediaType %q from %q", ev.MediaType, from)
	}
	if ev.Action == models.ActionDelete && (ev.Tag != "" || ev.Digest == "") {
		t.Fatalf("delete with tag %q, digest %q from %q", ev.Tag, ev.Digest, from)
	}
	if ev.Size < 0 || ev.Size > MaxSize {
		t.Fatalf("size %d outside ACR's Int32 from %q", ev.Size, from)
	}
	// Whatever is accepted renders to a JSON object with the action.
	body, err := ev.Payload()
	if err != nil {
		t.Fatalf("payload of accepted event: %v", err)
	}
	var c Content
	if err := json.Unmarshal(body, &c); err != nil || c.Action != ev.Action {
		t.Fatalf("payload %s does not round-trip: %v", body, err)
	}
}

func seedFiles(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzParseDistribution: no panic on any envelope; every event it accepts
// is a well-formed ACR push or delete; errors wrap ErrInvalid.
func FuzzParseDistribution(f *testing.F) {
	seedFiles(f, "testdata/distribution/*.raw")
	f.Add([]byte(`{"events":[]}`))
	f.Add([]byte(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"a","tag":"v","digest":"sha256:ab"}}]}`))
	f.Add([]byte(`{"events":[{"action":"delete","target":{"repository":"A/B","digest":"x"}}]}`))
	f.Add([]byte(`[]`))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, skipped, err := ParseDistribution(body, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if len(evs) != 0 {
				t.Fatalf("error with %d events", len(evs))
			}
			return
		}
		for _, ev := range evs {
			if ev.Action != models.ActionPush && ev.Action != models.ActionDelete {
				t.Fatalf("distribution event became %q", ev.Action)
			}
			if ev.Action == models.ActionPush && ev.Tag == "" {
				t.Fatalf("push without tag accepted from %q", body)
			}
			checkEvent(t, ev, body)
		}
		for _, s := range skipped {
			if s.Reason == "" {
				t.Fatalf("skipped %+v without a reason", s)
			}
		}
	})
}

// FuzzParseEvent: no panic on any body; an accepted event satisfies the
// rules; errors wrap ErrInvalid.
func FuzzParseEvent(f *testing.F) {
	seedFiles(f, "testdata/ingest/*.json")
	f.Add([]byte(`{"action":"push","target":{"repository":"team/app","tag":"v1","digest":"sha256:abc","size":1}}`))
	f.Add([]byte(`{"action":"delete","target":{"repository":"team/app","digest":"sha256:abc"}}`))
	f.Add([]byte(`{"action":"chart_push","target":{"repository":"repo","tag":"wordpress-5.4.0.tgz","name":"wordpress","version":"5.4.0.tgz"}}`))
	f.Add([]byte(`{"action":"push","target":{"repository":"Team","tag":"-x"}}`))
	f.Add([]byte(`{"action":"quarantine","target":{"repository":"a","size":-1,"tag":"t"}}`))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseEvent(body, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		checkEvent(t, ev, body)
	})
}
