package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
)

type ingestKicker struct{ n atomic.Int32 }

func (k *ingestKicker) Kick() { k.n.Add(1) }

type ingestBundle struct {
	ctx   context.Context
	store *models.Store
	reg   *models.Registry
	token string // the registry's own ingest token
	kick  *ingestKicker
	e     *echo.Echo
}

const globalIngestToken = "global-ingest-token-0123456789"

func setupIngest(t *testing.T, maxBody int64) ingestBundle {
	t.Helper()
	s, reg := modelstest.Open(t, models.Options{})
	ctx := context.Background()
	tok, err := s.IngestToken(reg)
	if err != nil {
		t.Fatal(err)
	}
	k := &ingestKicker{}
	h := New(Deps{Store: s, Dispatcher: k, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), IngestToken: globalIngestToken, MaxIngestBody: maxBody})
	e := echo.New()
	e.POST("/ingest/distribution/:registry", h.IngestDistribution)
	e.POST("/ingest/events/:registry", h.IngestEvent)
	for _, name := range []string{"hookAll", "hookTagged"} {
		scope := ""
		if name == "hookTagged" {
			scope = "team/app:v1"
		}
		in := models.WebhookInput{Name: name, ServiceURI: "http://127.0.0.1:9/", Actions: []string{"push", "delete"}, Scope: scope}
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		if _, err := s.CreateWebhook(ctx, reg, in, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return ingestBundle{ctx: ctx, store: s, reg: reg, token: tok, kick: k, e: e}
}

func (b ingestBundle) post(path, token, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	b.e.ServeHTTP(rec, req)
	return rec
}

func sample(t *testing.T, n string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "web", "acr", "testdata", "distribution", "filesystem-envelope-"+n+".raw"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	return e.Error.Code, e.Error.Message
}

func TestIngestDistribution(t *testing.T) {
	t.Parallel()
	b := setupIngest(t, 1<<20)
	const dist = "application/vnd.docker.distribution.events.v1+json"

	// Manifest push with tag v1: both webhooks match.
	rec := b.post("/ingest/distribution/myregistry", b.token, dist, sample(t, "03"))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Events  []IngestedEvent
		Skipped []struct{ ID, Action, Reason string }
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if len(out.Events) != 1 || out.Events[0].ID != "01a20f29-6252-7307-b87f-0e472f77789a" || out.Events[0].Deliveries != 2 || out.Events[0].Duplicate || out.Events[0].Action != "push" {
		t.Fatalf("push answer = %s", rec.Body)
	}
	if b.kick.n.Load() != 1 {
		t.Fatalf("dispatcher kicked %d times, want 1", b.kick.n.Load())
	}
	// The same notification again (Distribution retries): a duplicate.
	rec = b.post("/ingest/distribution/myregistry", globalIngestToken, "application/json", sample(t, "03"))
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != http.StatusAccepted || !out.Events[0].Duplicate || out.Events[0].Deliveries != 0 {
		t.Fatalf("retry answer = %d %s", rec.Code, rec.Body)
	}
	// A blob push: acknowledged, skipped, nothing stored.
	rec = b.post("/ingest/distribution/myregistry", b.token, dist, sample(t, "00"))
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != http.StatusAccepted || len(out.Events) != 0 || len(out.Skipped) != 1 || !strings.Contains(out.Skipped[0].Reason, "blob") {
		t.Fatalf("blob answer = %d %s", rec.Code, rec.Body)
	}
	// Manifest delete: only the unscoped webhook (delete has no tag), and
	// the media type is taken from the push.
	rec = b.post("/ingest/distribution/myregistry", b.token, "application/vnd.docker.distribution.events.v2+json", sample(t, "04"))
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if rec.Code != http.StatusAccepted || len(out.Events) != 1 || out.Events[0].Deliveries != 1 {
		t.Fatalf("delete answer = %d %s", rec.Code, rec.Body)
	}
	st, err := b.store.OutboxStats(b.ctx)
	if err != nil || st.Pending != 3 {
		t.Fatalf("outbox %+v %v, want 3 pending", st, err)
	}
	var payload []byte
	rows, _, _ := b.store.ListDeliveries(b.ctx, 1, 0, 10)
	for _, r := range rows {
		if r.Action == "delete" {
			d, err := b.store.GetDelivery(b.ctx, 1, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			payload = d.Event.Payload
		}
	}
	if want := `"target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:d5d88d9f3a5aa05fa706dbb9dfac5f499d452c3232fa1538d4379e89c6dded15","repository":"team/app"}`; !strings.Contains(string(payload), want) {
		t.Fatalf("delete payload = %s", payload)
	}
}

func TestIngestEvent(t *testing.T) {
	t.Parallel()
	b := setupIngest(t, 1<<20)
	rec := b.post("/ingest/events/myregistry", b.token, "application/json; charset=utf-8",
		[]byte(`{"action":"push","target":{"repository":"team/app","tag":"v2","digest":"sha256:abc","size":3,"mediaType":"application/vnd.oci.image.manifest.v1+json"}}`))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var out IngestedEvent
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	if len(out.ID) != 36 || out.Deliveries != 1 || out.Duplicate || out.Action != "push" {
		t.Fatalf("answer = %s", rec.Body)
	}
	// With an id of its own, a retry is a duplicate.
	body := []byte(`{"id":"ci-build-42","action":"push","target":{"repository":"team/app","tag":"v1","digest":"sha256:abc"}}`)
	for i, wantDup := range []bool{false, true} {
		rec = b.post("/ingest/events/myregistry", b.token, "application/json", body)
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		if rec.Code != http.StatusAccepted || out.ID != "ci-build-42" || out.Duplicate != wantDup {
			t.Fatalf("post %d: %d %s", i, rec.Code, rec.Body)
		}
	}
}

func TestIngestErrors(t *testing.T) {
	t.Parallel()
	b := setupIngest(t, 512)
	good := []byte(`{"action":"push","target":{"repository":"team/app","tag":"v1"}}`)
	tests := []struct {
		name        string
		path        string
		token       string
		contentType string
		body        []byte
		status      int
		code        string
		message     string
	}{
		{"no token", "/ingest/events/myregistry", "", "application/json", good, 401, IngestCodeUnauthorized, "Bearer"},
		{"wrong token", "/ingest/events/myregistry", "nope", "application/json", good, 401, IngestCodeUnauthorized, "not valid"},
		{"unknown registry, global token", "/ingest/events/nosuchregistry", globalIngestToken, "application/json", good, 404, IngestCodeRegistryNotFound, "nosuchregistry"},
		{"unknown registry, other token", "/ingest/events/nosuchregistry", "nope", "application/json", good, 401, IngestCodeUnauthorized, ""},
		{"form post", "/ingest/events/myregistry", globalIngestToken, "application/x-www-form-urlencoded", good, 415, IngestCodeUnsupportedMediaType, "application/json"},
		{"too large", "/ingest/events/myregistry", globalIngestToken, "application/json", bytes.Repeat([]byte(" "), 600), 413, IngestCodePayloadTooLarge, "512"},
		{"empty", "/ingest/events/myregistry", globalIngestToken, "application/json", nil, 400, IngestCodeInvalidRequest, "empty"},
		{"not json", "/ingest/events/myregistry", globalIngestToken, "application/json", []byte("{"), 400, IngestCodeInvalidRequest, "not an ACR event"},
		{"bad action", "/ingest/events/myregistry", globalIngestToken, "application/json", []byte(`{"action":"pull","target":{"repository":"a","tag":"v"}}`), 400, IngestCodeInvalidRequest, `"pull" is not one of`},
		{"no repository", "/ingest/events/myregistry", globalIngestToken, "", []byte(`{"action":"push","target":{"tag":"v"}}`), 400, IngestCodeInvalidRequest, "repository is required"},
		{"distribution garbage", "/ingest/distribution/myregistry", globalIngestToken, "application/vnd.docker.distribution.events.v1+json", []byte(`[1,2]`), 400, IngestCodeInvalidRequest, "Distribution notification envelope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := b.post(tt.path, tt.token, tt.contentType, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			code, msg := errorCode(t, rec)
			if code != tt.code || !strings.Contains(msg, tt.message) {
				t.Fatalf("error %s %q, want %s containing %q", code, msg, tt.code, tt.message)
			}
			if tt.status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge")
			}
		})
	}
	if st, _ := b.store.OutboxStats(b.ctx); st.Pending != 0 {
		t.Fatalf("a refused request queued %d deliveries", st.Pending)
	}
}

// API tokens made in the portal work on ingest with the portal's roles: a
// Contributor or Admin token may post events, a Reader token gets 403, a
// revoked one 401.
func TestIngestWithAPITokenRoles(t *testing.T) {
	t.Parallel()
	b := setupIngest(t, 1<<20)
	contrib, _, err := b.store.CreateAPIToken(b.ctx, "ci-job", models.RoleContributor, "admin")
	if err != nil {
		t.Fatal(err)
	}
	reader, readerTok, err := b.store.CreateAPIToken(b.ctx, "dashboard", models.RoleReader, "admin")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"action":"push","target":{"repository":"team/app","tag":"v1"}}`)
	if rec := b.post("/ingest/events/myregistry", contrib, "application/json", body); rec.Code != http.StatusAccepted {
		t.Fatalf("contributor token: %d %s", rec.Code, rec.Body)
	}
	rec := b.post("/ingest/events/myregistry", reader, "application/json", body)
	if code, msg := errorCode(t, rec); rec.Code != http.StatusForbidden || code != IngestCodeForbidden || !strings.Contains(msg, "Reader") {
		t.Fatalf("reader token: %d %s %q", rec.Code, code, msg)
	}
	if err := b.store.RevokeAPIToken(b.ctx, readerTok.ID); err != nil {
		t.Fatal(err)
	}
	if rec := b.post("/ingest/events/myregistry", reader, "application/json", body); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d", rec.Code)
	}
	if rec := b.post("/ingest/distribution/myregistry", reader, "application/vnd.docker.distribution.events.v2+json", sample(t, "03")); rec.Code != http.StatusUnauthorized {
		t.Fatalf("revoked token on distribution: %d", rec.Code)
	}
}
