package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// startRegistry runs a Distribution registry in process, storing in memory,
// with deletes enabled and its notifications sent to the portal.
func startRegistry(t *testing.T, notifyURL string) string {
	t.Helper()
	cfg := &configuration.Configuration{}
	cfg.Version = "0.1"
	cfg.Log.Level = "error"
	cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}, "delete": configuration.Parameters{"enabled": true}}
	cfg.Notifications.Endpoints = []configuration.Endpoint{{
		Name:      "registryhooks",
		URL:       notifyURL,
		Headers:   http.Header{"Authorization": {"Bearer " + ingestToken}},
		Timeout:   5 * time.Second,
		Threshold: 3,
		Backoff:   200 * time.Millisecond,
	}}
	app := handlers.NewApp(context.Background(), cfg)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A real registry's push and delete reach a webhook as ACR payloads.
func TestDistributionPushAndDelete(t *testing.T) {
	s := startServer(t, filepath.Join(t.TempDir(), "x.db"))
	rcv := newReceiver(t, true)
	s.createWebhook(t, "hookAll", rcv.url, []string{"push", "delete"}, "")
	s.createWebhook(t, "hookOther", rcv.url+"?other", []string{"push"}, "other/repo:*")
	host := startRegistry(t, s.url+"/ingest/distribution/myregistry")

	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/team/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	mediaType, _ := img.MediaType()
	size, _ := img.Size()
	waitUntil(t, 15*time.Second, "the push delivery", func() bool { u, _ := rcv.counts(); return u >= 1 })

	del, err := name.ParseReference(host+"/team/app@"+digest.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(del); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 15*time.Second, "the delete delivery", func() bool { u, _ := rcv.counts(); return u >= 2 })
	time.Sleep(300 * time.Millisecond) // nothing else may arrive (blobs, untag, the scoped-out webhook)

	rcv.mu.Lock()
	payloads := append([]map[string]any(nil), rcv.payloads...)
	rcv.mu.Unlock()
	if len(payloads) != 2 {
		t.Fatalf("receiver got %d payloads, want 2 (push, delete): %v", len(payloads), payloads)
	}
	push, dele := payloads[0], payloads[1]
	pt := push["target"].(map[string]any)
	if push["action"] != "push" || pt["repository"] != "team/app" || pt["tag"] != "v1" || pt["digest"] != digest.String() ||
		pt["mediaType"] != string(mediaType) || pt["size"] != float64(size) || pt["length"] != float64(size) {
		t.Errorf("push payload = %v; want team/app:v1 %s %s size %d", push, digest, mediaType, size)
	}
	// request.host is the registry's login server (the default registry's,
	// localhost:5000), not the address the client happened to push to.
	if req, _ := push["request"].(map[string]any); req["method"] != "PUT" || req["host"] != "localhost:5000" || req["id"] == "" || req["useragent"] == "" {
		t.Errorf("push request = %v", push["request"])
	}
	if id, _ := push["id"].(string); id == "" || push["timestamp"] == "" {
		t.Errorf("push id/timestamp missing: %v", push)
	}
	dt := dele["target"].(map[string]any)
	if dele["action"] != "delete" || dt["repository"] != "team/app" || dt["digest"] != digest.String() || dt["mediaType"] != string(mediaType) {
		t.Errorf("delete payload = %v", dele)
	}
	for _, k := range []string{"tag", "size", "length"} {
		if _, ok := dt[k]; ok {
			t.Errorf("delete target carries %s: %v", k, dt)
		}
	}
	if req, _ := dele["request"].(map[string]any); req["method"] != "DELETE" || req["host"] != "localhost:5000" {
		t.Errorf("delete request = %v", dele["request"])
	}
}
