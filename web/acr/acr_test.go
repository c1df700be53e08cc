package acr

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/name byte for byte.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./web/acr/ -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file\n got: %s\nwant: %s", name, got, want)
	}
}

// testOrigin is the registry the golden ingest payloads come from: the
// default login server, a fixed request id for events that carry none.
var testOrigin = Origin{LoginServer: "localhost:5000", UserAgent: "curl/8.5.0", NewID: func() string { return "00000000-0000-4000-8000-000000000abc" }}

var at = time.Date(2023, 11, 17, 16, 52, 1, 343145347, time.FixedZone("CET", 3600))

func TestPayloadPerAction(t *testing.T) {
	t.Parallel()
	req := Request{ID: "3cbb6949-7549-4fa1-86cd-a6d5451dffc7", Addr: "10.0.0.1:5555", Host: "myregistry.azurecr.io", UserAgent: "docker/17.09.0-ce"}
	digest := "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d"
	tests := []struct {
		name string
		ev   Event
	}{
		{"push", Event{ID: "cb8c3971-9adc-488b-bdd8-43cbb4974ff5", Time: at, Action: models.ActionPush, Repository: "hello-world", Tag: "v1",
			Digest: digest, MediaType: "application/vnd.docker.distribution.manifest.v2+json", Size: 524, Request: req}},
		{"push_by_digest", Event{ID: "cb8c3971-9adc-488b-bdd8-43cbb4974ff6", Time: at, Action: models.ActionPush, Repository: "team/app",
			Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 0, Request: Request{ID: "r1", Host: "h"}}},
		{"delete", Event{ID: "afc359ce-df7f-4e32-bdde-1ff8aa80927b", Time: at, Action: models.ActionDelete, Repository: "hello-world", Tag: "ignored",
			Digest: digest, MediaType: "application/vnd.docker.distribution.manifest.v2+json", Size: 524,
			Request: Request{ID: "3d78b540-ab61-4f75-807f-7ca9ecf559b3", Host: "myregistry.azurecr.io", UserAgent: "python-requests/2.18.4"}}},
		{"quarantine", Event{ID: "0d799b14-404b-4859-b2f6-50c5ee2a2c3a", Time: at, Action: models.ActionQuarantine, Repository: "helloworld", Tag: "1",
			Digest: "sha256:91ef6", MediaType: "application/vnd.docker.distribution.manifest.v2+json", Size: 1791, Request: req}},
		{"chart_push", Event{ID: "6356e9e0-627f-4fed-a9a1-000000000001", Time: at, Action: models.ActionChartPush, Repository: "repo",
			Tag: "wordpress-5.4.0.tgz", Name: "wordpress", Version: "5.4.0.tgz", Digest: digest, Size: 25265, Request: req}},
		{"chart_delete", Event{ID: "6356e9e0-627f-4fed-a9a1-000000000002", Time: at, Action: models.ActionChartDelete, Repository: "repo",
			Tag: "wordpress-5.4.0.tgz", Name: "wordpress", Version: "5.4.0.tgz", Digest: digest, Size: 25265}},
		{"ping", Event{ID: "00000000-0000-0000-0000-000000000001", Time: at, Action: models.ActionPing}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.ev.Payload()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "action_"+tt.name+".json", got)
		})
	}
	if got, want := string(Ping("00000000-0000-0000-0000-000000000001", at)), `{"id":"00000000-0000-0000-0000-000000000001","timestamp":"2023-11-17T15:52:01.343145347Z","action":"ping"}`; got != want {
		t.Errorf("Ping = %s, want %s", got, want)
	}
	if _, err := (&Event{Action: "pull"}).Payload(); err == nil {
		t.Error("an unknown action rendered")
	}
}

// The field sets per action, checked by key, independent of the goldens.
func TestFieldSetsPerAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action      string
		target      string
		withRequest bool
	}{
		{models.ActionPush, "digest,length,mediaType,repository,size,tag", true},
		{models.ActionDelete, "digest,mediaType,repository", true},
		{models.ActionQuarantine, "digest,length,repository,size,tag", true},
		{models.ActionChartPush, "digest,mediaType,name,repository,size,tag,version", false},
		{models.ActionChartDelete, "digest,mediaType,name,repository,size,tag,version", false},
	}
	for _, tt := range tests {
		ev := Event{ID: "x", Time: at, Action: tt.action, Repository: "r", Tag: "t", Digest: "sha256:1", MediaType: "m", Size: 1,
			Name: "n", Version: "v", Request: Request{ID: "q", Host: "h", UserAgent: "ua", Addr: "a"}}
		b, err := ev.Payload()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]map[string]any
		var top map[string]json.RawMessage
		_ = json.Unmarshal(b, &top)
		_ = json.Unmarshal(b, &m) // non-object fields fail to decode into the inner map; fine
		var target map[string]any
		_ = json.Unmarshal(top["target"], &target)
		if got := keys(target); got != tt.target {
			t.Errorf("%s target fields = %s, want %s", tt.action, got, tt.target)
		}
		if _, ok := top["request"]; ok != tt.withRequest {
			t.Errorf("%s request present = %v, want %v", tt.action, ok, tt.withRequest)
		}
		if _, ok := top["actor"]; ok {
			t.Errorf("%s carries actor", tt.action)
		}
	}
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return strings.Join(ks, ",")
}

// renderDistribution is the golden form of a parsed envelope: one line per
// event (action, id, then the exact payload) and one per skipped event.
func renderDistribution(evs []Event, skipped []Skipped) ([]byte, error) {
	var buf bytes.Buffer
	for _, ev := range evs {
		ev.Stamp(testOrigin)
		p, err := ev.Payload()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&buf, "event %s %s\n%s\n", ev.Action, ev.ID, p)
	}
	for _, s := range skipped {
		fmt.Fprintf(&buf, "skipped %s %s: %s\n", s.Action, s.ID, s.Reason)
	}
	return buf.Bytes(), nil
}

func TestParseDistributionSamples(t *testing.T) {
	t.Parallel()
	want := map[string]string{ // what each sample becomes, from the samples' README
		"00": "skip", "01": "skip", "02": "skip", "03": "push", "04": "delete", "05": "skip",
		"06": "skip", "07": "skip", "08": "push", "09": "skip", "10": "skip", "11": "skip",
	}
	files, err := filepath.Glob(filepath.Join("testdata", "distribution", "*.raw"))
	if err != nil || len(files) != 12 {
		t.Fatalf("found %d samples, %v", len(files), err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".raw")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			evs, skipped, err := ParseDistribution(body, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			n := name[len(name)-2:]
			switch w := want[n]; {
			case w == "skip" && (len(evs) != 0 || len(skipped) != 1):
				t.Fatalf("got %d events, %d skipped; want skipped", len(evs), len(skipped))
			case w != "skip" && (len(evs) != 1 || evs[0].Action != w):
				t.Fatalf("got %+v; want one %s", evs, w)
			}
			out, err := renderDistribution(evs, skipped)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "distribution_"+n+".txt", out)
		})
	}
}

func TestParseDistributionEnvelope(t *testing.T) {
	t.Parallel()
	manifest := `{"id":"e%d","timestamp":"2026-11-24T20:05:00.1Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ab","size":10,"length":10,"repository":"team/app","url":"http://r/v2/team/app/manifests/sha256:ab","tag":"v%d"},"request":{"id":"r","host":"h","method":"PUT"}}`
	tests := []struct {
		name    string
		body    string
		events  int
		skipped int
		wantErr string
	}{
		{"two manifests", `{"events":[` + fmt.Sprintf(manifest, 1, 1) + `,` + fmt.Sprintf(manifest, 2, 2) + `]}`, 2, 0, ""},
		{"mount", `{"events":[{"id":"m","action":"mount","target":{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","repository":"a","url":"http://r/v2/a/blobs/sha256:1"}}]}`, 0, 1, ""},
		{"blob by url", `{"events":[{"id":"b","action":"push","target":{"mediaType":"application/vnd.oci.image.layer.v1.tar","repository":"a","digest":"sha256:1","url":"http://r/v2/a/blobs/sha256:1"}}]}`, 0, 1, ""},
		{"digest-only push", `{"events":[{"id":"d","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"a","digest":"sha256:1"}}]}`, 0, 1, ""},
		{"empty array", `{"events":[]}`, 0, 0, ""},
		{"not json", `hello`, 0, 0, "not a Distribution notification envelope"},
		{"no events", `{"foo":1}`, 0, 0, `no "events" array`},
		{"bad repository", `{"events":[{"id":"x","action":"push","target":{"mediaType":"m","repository":"Team/App","tag":"v1","digest":"sha256:1"}}]}`, 0, 0, "not a valid repository name"},
		{"bad timestamp", `{"events":[{"id":"x","timestamp":"yesterday","action":"push","target":{"mediaType":"m","repository":"a","tag":"v1","digest":"sha256:1"}}]}`, 0, 0, "not RFC 3339"},
		{"size past Int32", `{"events":[{"id":"x","action":"push","target":{"mediaType":"m","repository":"a","tag":"v1","digest":"sha256:1","size":3000000000}}]}`, 0, 0, "target.size 3000000000 is larger than 2147483647"},
		{"blob past Int32 is skipped, not refused", `{"events":[{"id":"b","action":"push","target":{"mediaType":"application/octet-stream","repository":"a","digest":"sha256:1","size":3000000000,"url":"http://r/v2/a/blobs/sha256:1"}}]}`, 0, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs, skipped, err := ParseDistribution([]byte(tt.body), at)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(evs) != tt.events || len(skipped) != tt.skipped {
				t.Fatalf("got %d events, %d skipped, %v", len(evs), len(skipped), err)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantErr string
		golden  string
	}{
		{"push", `{"id":"11111111-1111-1111-1111-111111111111","timestamp":"2025-01-01T00:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,"digest":"sha256:abc","repository":"team/app","tag":"v1"},"request":{"id":"r1","host":"ci.example","method":"PUT","useragent":"curl/8"}}`, "", "ingest_push.json"},
		{"delete drops tag", `{"id":"22222222-2222-2222-2222-222222222222","timestamp":"2025-01-01T00:00:00Z","action":"delete","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abc","repository":"team/app","tag":"v1"}}`, "", "ingest_delete.json"},
		{"chart_push", `{"id":"33333333-3333-3333-3333-333333333333","timestamp":"2025-01-01T00:00:00Z","action":"chart_push","target":{"size":25265,"digest":"sha256:abc","repository":"repo","tag":"wordpress-5.4.0.tgz","name":"wordpress","version":"5.4.0.tgz"}}`, "", "ingest_chart_push.json"},
		{"quarantine", `{"id":"44444444-4444-4444-4444-444444444444","timestamp":"2025-01-01T00:00:00Z","action":"quarantine","target":{"length":1791,"digest":"sha256:91ef6","repository":"helloworld","tag":"1"},"request":{"id":"q","host":"h","method":"PUT"}}`, "", "ingest_quarantine.json"},
		{"no action", `{"target":{"repository":"a","tag":"v1"}}`, "action is required", ""},
		{"pull", `{"action":"pull","target":{"repository":"a","tag":"v1"}}`, `action "pull" is not one of`, ""},
		{"ping", `{"action":"ping","target":{"repository":"a","tag":"v1"}}`, `action "ping" is not one of`, ""},
		{"no target", `{"action":"push"}`, "target is required", ""},
		{"no repository", `{"action":"push","target":{"tag":"v1"}}`, "target.repository is required", ""},
		{"uppercase repository", `{"action":"push","target":{"repository":"Team/app","tag":"v1"}}`, "not a valid repository name", ""},
		{"push without tag or digest", `{"action":"push","target":{"repository":"a"}}`, "needs target.tag or target.digest", ""},
		{"untag", `{"action":"delete","target":{"repository":"a","tag":"v1"}}`, "delete needs target.digest", ""},
		{"bad tag", `{"action":"push","target":{"repository":"a","tag":"-x"}}`, "not a valid tag", ""},
		{"unknown field", `{"action":"push","targte":{}}`, "unknown field", ""},
		{"two objects", `{"action":"push","target":{"repository":"a","tag":"v"}} {}`, "exactly one JSON object", ""},
		{"array", `[{"action":"push"}]`, "not an ACR event object", ""},
		{"bad id", `{"id":"a b","action":"push","target":{"repository":"a","tag":"v"}}`, "id must be", ""},
		{"negative size", `{"action":"push","target":{"repository":"a","tag":"v","size":-1}}`, "must not be negative", ""},
		{"size past Int32", `{"action":"push","target":{"repository":"a","tag":"v","size":2147483648}}`, "target.size 2147483648 is larger than 2147483647: ACR's size and length are 32-bit integers", ""},
		{"length past Int32", `{"action":"push","target":{"repository":"a","tag":"v","size":1,"length":4294967296}}`, "target.length 4294967296 is larger than 2147483647", ""},
		{"size at Int32", `{"id":"55555555-5555-5555-5555-555555555555","timestamp":"2025-01-01T00:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"a","tag":"v","digest":"sha256:abc","size":2147483647}}`, "", "ingest_push_max_size.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := ParseEvent([]byte(tt.body), at)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ev.Stamp(testOrigin)
			p, err := ev.Payload()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, p)
		})
	}
	// Defaults: no id stays empty for the handler, no timestamp takes now.
	ev, err := ParseEvent([]byte(`{"action":"push","target":{"repository":"a","tag":"v"}}`), at)
	if err != nil || ev.ID != "" || !ev.Time.Equal(at) || ev.Time.Location() != time.UTC {
		t.Fatalf("defaults: %+v %v", ev, err)
	}
}

func TestRecord(t *testing.T) {
	t.Parallel()
	payload, _ := (&Event{ID: "ev-1", Time: at, Action: models.ActionPush, Repository: "hello-world", Tag: "latest", Digest: "sha256:fea8",
		MediaType: "application/vnd.docker.distribution.manifest.v2+json", Size: 708, Request: Request{ID: "r", Host: "h"}}).Payload()
	tests := []struct {
		name string
		a    models.Attempt
	}{
		{"ok", models.Attempt{EventID: "ev-1", RequestURI: "http://myservice.com", StatusCode: 200, ReasonPhrase: "OK",
			// A value stored unmasked by mistake is masked by Record.
			RequestHeaders:  `{"Authorization":"Basic c2VjcmV0","Content-Length":"719","Content-Type":"application/json"}`,
			ResponseHeaders: `{"Content-Length":"0"}`}},
		{"timeout", models.Attempt{EventID: "ev-1", RequestURI: "http://myservice.com", StatusCode: 504, ReasonPhrase: "Gateway Timeout",
			Error: "timed out after 5s", RequestHeaders: `{"Content-Type":"application/json"}`, ResponseHeaders: `{}`}},
		{"refused", models.Attempt{EventID: "ev-1", RequestURI: "http://127.0.0.1:9", Error: "connection refused: nothing listens at 127.0.0.1:9",
			RequestHeaders: `{"Content-Type":"application/json"}`, ResponseHeaders: `{}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := Record(models.AttemptWithEvent{Attempt: tt.a, Payload: payload}, map[string]string{"authorization": "Basic c2VjcmV0"})
			b, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "record_"+tt.name+".json", append(b, '\n'))
		})
	}
}

// Stamp names the registry's login server as request.host whatever the
// source said, and fills request.id and useragent only when missing.
func TestStamp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Request
		want Request
	}{
		{"distribution", Request{ID: "d1", Addr: "10.0.0.1:5555", Host: "127.0.0.1:39395", Method: "PUT", UserAgent: "go-containerregistry/v0.22.1"},
			Request{ID: "d1", Addr: "10.0.0.1:5555", Host: "localhost:5000", Method: "PUT", UserAgent: "go-containerregistry/v0.22.1"}},
		{"no request", Request{}, Request{ID: "00000000-0000-4000-8000-000000000abc", Host: "localhost:5000", UserAgent: "curl/8.5.0"}},
		{"host given", Request{Host: "ci.example"}, Request{ID: "00000000-0000-4000-8000-000000000abc", Host: "localhost:5000", UserAgent: "curl/8.5.0"}},
	}
	for _, tt := range tests {
		ev := Event{ID: "e", Time: at, Action: models.ActionPush, Repository: "team/app", Tag: "v1", Request: tt.in}
		ev.Stamp(testOrigin)
		if ev.Request != tt.want {
			t.Errorf("%s: request = %+v, want %+v", tt.name, ev.Request, tt.want)
		}
	}
	// Without NewID, a UUID.
	ev := Event{Action: models.ActionDelete}
	ev.Stamp(Origin{LoginServer: "r.example:443"})
	if len(ev.Request.ID) != 36 || ev.Request.Host != "r.example:443" {
		t.Errorf("request = %+v", ev.Request)
	}
	// Every action with a request carries id, host, method and useragent as
	// ACR's do, but quarantine (ACR's sample has no useragent).
	for _, action := range []string{models.ActionPush, models.ActionDelete, models.ActionQuarantine} {
		ev := Event{ID: "e", Time: at, Action: action, Repository: "team/app", Tag: "v1", Digest: "sha256:1"}
		ev.Stamp(testOrigin)
		c, err := ev.Content()
		if err != nil {
			t.Fatal(err)
		}
		r := c.Request
		if r == nil || r.ID == "" || r.Host != "localhost:5000" || r.Method == "" || (r.UserAgent == "") != (action == models.ActionQuarantine) || r.Addr != "" {
			t.Errorf("%s request = %+v", action, r)
		}
	}
}
