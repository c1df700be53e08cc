package e2e

// Contract tests: the ACR webhook receivers of Kargo, Keel,
// argocd-image-updater and Flux, their acceptance and matching rules
// reproduced from their source (their modules are not served by the module
// proxy here), fed with real deliveries of a real Distribution push and
// delete through the portal. Each must act on the push as it would on one
// from ACR: the right image reference (localhost:5000/team/app, the default
// registry's login server and the repository), tag and digest.

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// watchedImage is the image every receiver is configured to watch: the
// repository team/app at the default registry's login server.
const watchedImage = "localhost:5000/team/app"

// acted is one thing a receiver did with a delivery: refresh (Kargo), an
// update event (Keel, argocd-image-updater), a reconcile request (Flux),
// or answering a ping.
type acted struct {
	action string // the payload's action
	image  string // the image reference the receiver built and matched
	tag    string
	digest string
}

// contract is one receiver on loopback: what it answered and what it did.
type contract struct {
	name string
	url  string
	mu   sync.Mutex
	// answers holds the status code given to each delivery, by payload action.
	answers map[string][]int
	acts    []acted
}

func (c *contract) answer(action string, code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers[action] = append(c.answers[action], code)
}

func (c *contract) act(a acted) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acts = append(c.acts, a)
}

func (c *contract) snapshot() (map[string][]int, []acted) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ans := map[string][]int{}
	for k, v := range c.answers {
		ans[k] = slices.Clone(v)
	}
	return ans, slices.Clone(c.acts)
}

// serveContract runs h on a loopback port; path is the receiver's webhook
// path (with its query), as its user would configure it.
func serveContract(t *testing.T, name, path string, h func(c *contract, w http.ResponseWriter, r *http.Request)) *contract {
	t.Helper()
	c := &contract{name: name, answers: map[string][]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.url = "http://" + l.Addr().String() + path
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(c, w, r) })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

// peekAction reads the payload's action for the answer log, leaving the
// body for the receiver's own decoding.
func peekAction(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	var p struct {
		Action string `json:"action"`
	}
	_ = json.Unmarshal(b, &p)
	return p.Action
}

// statusRecorder notes the status a receiver wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// recorded wraps a receiver so every answer is logged by payload action.
func recorded(h func(c *contract, w http.ResponseWriter, r *http.Request)) func(c *contract, w http.ResponseWriter, r *http.Request) {
	return func(c *contract, w http.ResponseWriter, r *http.Request) {
		action := peekAction(r)
		sr := &statusRecorder{ResponseWriter: w}
		h(c, sr, r)
		if sr.code == 0 {
			sr.code = http.StatusOK
		}
		c.answer(action, sr.code)
	}
}

// kargoReceiver reproduces Kargo's Azure webhook receiver:
// github.com/akuity/kargo pkg/webhook/external/azure.go (getHandler,
// handleACREvent) and media_types.go (getNormalizedImageRepoURLs), with
// pkg/urls/image.go (NormalizeImage) and refresh.go (refreshWarehouses,
// shouldRefresh), at commit 1c764767ae03bad063531fb443ee2485a972c669.
//   - The User-Agent must start with "AzureContainerRegistry", else 400
//     "request does not appear to have originated from a supported service".
//   - action "ping": 200. "push": the repository URL is
//     request.host + "/" + target.repository, normalized (lower case, parsed
//     as an image reference with go-containerregistry's weak validation);
//     every Warehouse subscribed to that URL whose image selector accepts
//     target.tag is refreshed, 200. Any other action: 400 "event type … is
//     not supported".
//
// The Warehouse here subscribes to watchedImage and accepts every tag.
func kargoReceiver(c *contract, w http.ResponseWriter, r *http.Request) {
	writeJSON := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	if !strings.HasPrefix(r.UserAgent(), "AzureContainerRegistry") {
		writeJSON(http.StatusBadRequest, map[string]string{"error": "request does not appear to have originated from a supported service"})
		return
	}
	body, _ := io.ReadAll(r.Body)
	var event struct {
		Action string `json:"action"`
		Target struct {
			MediaType  string `json:"mediaType"`
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"target"`
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &event); err != nil {
		writeJSON(http.StatusBadRequest, map[string]string{"error": "invalid request body"})
		return
	}
	switch event.Action {
	case "push":
		repoURL := kargoNormalizeImage(fmt.Sprintf("%s/%s", event.Request.Host, event.Target.Repository))
		refreshed := 0
		// With a tag, shouldRefresh asks the Warehouse's selector (which
		// accepts every tag here); without one, every subscriber refreshes.
		if repoURL == kargoNormalizeImage(watchedImage) {
			refreshed++
			c.act(acted{action: "push", image: repoURL, tag: event.Target.Tag})
		}
		writeJSON(http.StatusOK, map[string]string{"msg": fmt.Sprintf("refreshed %d warehouse(s)", refreshed)})
	case "ping":
		c.act(acted{action: "ping"})
		writeJSON(http.StatusOK, map[string]string{"msg": "ping event received, webhook is configured correctly"})
	default:
		writeJSON(http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("event type %s is not supported", event.Action)})
	}
}

// kargoNormalizeImage is Kargo's urls.NormalizeImage for a non-Docker Hub
// reference: registry name and repository of the parsed reference.
func kargoNormalizeImage(repoURL string) string {
	parsed, err := name.ParseReference(strings.ToLower(repoURL), name.WeakValidation)
	if err != nil {
		return repoURL
	}
	return parsed.Context().Registry.Name() + "/" + parsed.Context().RepositoryStr()
}

// keelReceiver reproduces Keel's Azure webhook trigger:
// github.com/keel-hq/keel pkg/http/azure_webhook_trigger.go (azureHandler),
// with the matching of provider/kubernetes/updates.go (checkForUpdate:
// image.Parse(repo.String()).Repository() compared with the container
// image's) and util/image (Parse, splitHostname), at commit
// 6ac9dc5cfec1fa53c4d95972c00e5f670b988bf4.
//   - The body must decode, else 400; target.tag must not be empty, else
//     400 "tag cannot be empty" (so pings and deletes are refused).
//   - The event's repository is request.host + "/" + target.repository,
//     with target.tag and target.digest; a deployment whose container image
//     has the same registry/name is updated. 200.
func keelReceiver(c *contract, w http.ResponseWriter, r *http.Request) {
	var aw struct {
		Target struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
			Digest     string `json:"digest"`
		} `json:"target"`
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
	}
	if err := json.NewDecoder(r.Body).Decode(&aw); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if aw.Target.Tag == "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "tag cannot be empty")
		return
	}
	dockerURL := aw.Request.Host + "/" + aw.Target.Repository
	eventRepo, err := keelRepository(dockerURL + ":" + aw.Target.Tag)
	deployed, err2 := keelRepository(watchedImage + ":v0")
	if err == nil && err2 == nil && eventRepo == deployed {
		c.act(acted{action: "push", image: eventRepo, tag: aw.Target.Tag, digest: aw.Target.Digest})
	}
	w.WriteHeader(http.StatusOK)
}

// keelRepository is Keel's image.Parse(s).Repository(): the normalized
// name split into host and remote name, the host defaulting to
// index.docker.io unless the first component has a "." or ":" or is
// localhost.
func keelRepository(s string) (string, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", err
	}
	n := named.Name()
	host, remote := "index.docker.io", n
	if i := strings.IndexRune(n, '/'); i >= 0 && (strings.ContainsAny(n[:i], ".:") || n[:i] == "localhost") {
		host, remote = n[:i], n[i+1:]
	}
	if host == "docker.io" {
		host = "index.docker.io"
	}
	return host + "/" + remote, nil
}

// argoSecret is the Authorization value argocd-image-updater is configured
// with; the webhook sends it as a custom header.
const argoSecret = "Bearer argo-webhook-secret-0123456789"

// argoReceiver reproduces argocd-image-updater's ACR webhook:
// github.com/argoproj-labs/argocd-image-updater pkg/webhook/acr.go
// (Validate, Parse), webhook.go (detectRegistryType: ?type=acr), server.go
// (handleWebhook: any error is 400), pkg/argocd/argocd.go (parseImageList:
// registry and repository must equal the image's) and
// registry-scanner/pkg/image/image.go (NewFromIdentifier), at commit
// de2cfec67880a232bbdfce81c985796251be242a.
//   - ?type=acr selects the handler; the method must be POST, the
//     Content-Type contain application/json, and with a secret configured
//     the Authorization header must equal it.
//   - Only action push is processed (others: 400 "ignoring action: …");
//     target.repository is required. The event is registry request.host,
//     repository target.repository, with tag and digest; an image matches
//     when its registry (reference.Domain) and path equal them. 200.
func argoReceiver(c *contract, w http.ResponseWriter, r *http.Request) {
	fail := func(err string) { http.Error(w, err, http.StatusBadRequest) }
	if r.URL.Query().Get("type") != "acr" && r.Header.Get("X-Registry-Type") != "acr" {
		fail("missing registry type parameter")
		return
	}
	if r.Method != http.MethodPost {
		fail("invalid HTTP method: " + r.Method)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, "application/json") {
		fail("invalid content type: " + ct)
		return
	}
	if auth := r.Header.Get("Authorization"); auth == "" || auth != argoSecret {
		fail("invalid webhook secret")
		return
	}
	var payload struct {
		Action string `json:"action"`
		Target struct {
			Digest     string `json:"digest"`
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"target"`
		Request struct {
			Host string `json:"host"`
		} `json:"request"`
	}
	if err := json.NewDecoder(r.Body).Decode(&payload); err != nil {
		fail("failed to parse webhook payload")
		return
	}
	if payload.Action != "push" {
		fail("ignoring action: " + payload.Action)
		return
	}
	if payload.Target.Repository == "" {
		fail("repository name not found in webhook payload")
		return
	}
	img, err := reference.ParseNormalizedNamed(watchedImage)
	if err == nil && reference.Domain(img) == payload.Request.Host && reference.Path(img) == payload.Target.Repository {
		c.act(acted{action: "push", image: payload.Request.Host + "/" + payload.Target.Repository, tag: payload.Target.Tag, digest: payload.Target.Digest})
	}
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "Webhook received and processing")
}

// fluxToken, fluxName and fluxNamespace define the Flux Receiver; its
// webhook path is /hook/ + sha256(token+name+namespace).
const fluxToken, fluxName, fluxNamespace = "flux-receiver-token-0123456789", "acr-receiver", "flux-system"

// fluxReceiver reproduces Flux's ACR Receiver:
// github.com/fluxcd/notification-controller internal/server/receiver_handlers.go
// (handlePayload, validate: case apiv1.ACRReceiver), limits.go (3 MiB body
// limit) and api/v1/receiver_types.go (GetWebhookPath), at commit
// 2e46958a67f3af0e3e755a4fcaf7397d5803725e.
//   - The request URI must be the Receiver's webhook path, else 404.
//   - The body must decode as {action, target{repository, tag}}, else 400;
//     then every resource of the Receiver (an ImageRepository scanning
//     watchedImage) is annotated for reconciliation. 200. Flux does not
//     look at the image: it rescans whatever the Receiver names.
func fluxReceiver(c *contract, w http.ResponseWriter, r *http.Request) {
	if r.RequestURI != fluxPath() {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 3*1024*1024+1))
	if err != nil || len(b) > 3*1024*1024 {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	var p struct {
		Action string `json:"action"`
		Target struct {
			Repository string `json:"repository"`
			Tag        string `json:"tag"`
		} `json:"target"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.act(acted{action: p.Action, image: watchedImage, tag: p.Target.Tag})
	w.WriteHeader(http.StatusOK)
}

func fluxPath() string {
	return fmt.Sprintf("/hook/%x", sha256.Sum256([]byte(fluxToken+fluxName+fluxNamespace)))
}

// putWebhook creates a webhook with custom headers through the ARM API.
func (s *server) putWebhook(t *testing.T, name, uri string, actions []string, headers map[string]string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"location": "local", "properties": map[string]any{
		"serviceUri": uri, "actions": actions, "status": "enabled", "customHeaders": headers}})
	code, resp, err := s.do(http.MethodPut, armRegistry+"/webhooks/"+name+"?api-version=2025-11-01", apiToken, "application/json", body)
	if err != nil || code != http.StatusOK {
		t.Fatalf("create webhook %s: %d %s %v", name, code, resp, err)
	}
}

// ping presses Ping through the ARM API.
func (s *server) ping(t *testing.T, webhook string) {
	t.Helper()
	code, resp, err := s.do(http.MethodPost, armRegistry+"/webhooks/"+webhook+"/ping?api-version=2025-11-01", apiToken, "application/json", []byte("{}"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("ping %s: %d %s %v", webhook, code, resp, err)
	}
}

// listEvents returns the attempts of a webhook's deliveries (one record per
// attempt, as listEvents answers): payload action and status code.
func (s *server) listEvents(t *testing.T, webhook string) []struct{ action, status string } {
	t.Helper()
	code, resp, err := s.do(http.MethodPost, armRegistry+"/webhooks/"+webhook+"/listEvents?api-version=2025-11-01", apiToken, "application/json", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("listEvents %s: %d %s %v", webhook, code, resp, err)
	}
	var page struct {
		Value []struct {
			EventRequestMessage struct {
				Content struct {
					Action string `json:"action"`
				} `json:"content"`
			} `json:"eventRequestMessage"`
			EventResponseMessage struct {
				StatusCode string `json:"statusCode"`
			} `json:"eventResponseMessage"`
		} `json:"value"`
	}
	if err := json.Unmarshal(resp, &page); err != nil {
		t.Fatal(err)
	}
	var out []struct{ action, status string }
	for _, v := range page.Value {
		out = append(out, struct{ action, status string }{v.EventRequestMessage.Content.Action, v.EventResponseMessage.StatusCode})
	}
	return out
}

// TestReceiverContracts: a Distribution push and delete, and a Ping, reach
// Kargo, Keel, argocd-image-updater and Flux as each acts on ACR's.
func TestReceiverContracts(t *testing.T) {
	// A short schedule, so a delivery that were retried would be retried
	// within the test: refused ones must get exactly one attempt.
	s := startServer(t, filepath.Join(t.TempDir(), "x.db"), "--retry-schedule", "200ms")
	kargo := serveContract(t, "kargo", "/webhook/azure/0123456789abcdef", recorded(kargoReceiver))
	keel := serveContract(t, "keel", "/v1/webhooks/azure", recorded(keelReceiver))
	argo := serveContract(t, "argocd-image-updater", "/webhook?type=acr", recorded(argoReceiver))
	flux := serveContract(t, "flux", fluxPath(), recorded(fluxReceiver))
	s.putWebhook(t, "kargo", kargo.url, []string{"push", "delete"}, nil)
	s.putWebhook(t, "keelsh", keel.url, []string{"push", "delete"}, nil)
	s.putWebhook(t, "argocd", argo.url, []string{"push", "delete"}, map[string]string{"Authorization": argoSecret})
	s.putWebhook(t, "fluxcd", flux.url, []string{"push", "delete"}, nil)
	receivers := map[string]*contract{"kargo": kargo, "keelsh": keel, "argocd": argo, "fluxcd": flux}

	for hook := range receivers {
		s.ping(t, hook)
	}
	host := startRegistry(t, s.url+"/ingest/distribution/myregistry")
	img, err := random.Image(1024, 1)
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
	waitUntil(t, 15*time.Second, "the push at every receiver", func() bool {
		for _, c := range receivers {
			if ans, _ := c.snapshot(); len(ans["push"]) == 0 {
				return false
			}
		}
		return true
	})
	del, _ := name.ParseReference(host+"/team/app@"+digest.String(), name.Insecure)
	if err := remote.Delete(del); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 15*time.Second, "the delete at every receiver", func() bool {
		for _, c := range receivers {
			if ans, _ := c.snapshot(); len(ans["delete"]) == 0 || len(ans["ping"]) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond) // a retry, were there one, would come after 200 ms

	want := map[string]map[string][]int{ // receiver -> action -> answers, one attempt each
		"kargo":  {"ping": {200}, "push": {200}, "delete": {400}},
		"keelsh": {"ping": {400}, "push": {200}, "delete": {400}},
		"argocd": {"ping": {400}, "push": {200}, "delete": {400}},
		"fluxcd": {"ping": {200}, "push": {200}, "delete": {200}},
	}
	for hook, c := range receivers {
		ans, acts := c.snapshot()
		for action, codes := range want[hook] {
			if !slices.Equal(ans[action], codes) {
				t.Errorf("%s answered %s with %v, want %v (one attempt each)", c.name, action, ans[action], codes)
			}
		}
		var push *acted
		for i := range acts {
			if acts[i].action == "push" {
				push = &acts[i]
			}
		}
		if push == nil {
			t.Errorf("%s did not act on the push; it did %+v", c.name, acts)
			continue
		}
		if push.image != watchedImage || push.tag != "v1" {
			t.Errorf("%s acted on %s:%s, want %s:v1", c.name, push.image, push.tag, watchedImage)
		}
		if (hook == "keelsh" || hook == "argocd") && push.digest != digest.String() {
			t.Errorf("%s got digest %q, want %s", c.name, push.digest, digest)
		}
		// The portal's record agrees: one attempt per delivery.
		events := s.listEvents(t, hook)
		if len(events) != 3 {
			t.Errorf("%s: listEvents has %d attempts, want 3 (ping, push, delete once each): %v", hook, len(events), events)
		}
	}
	_, kargoActs := kargo.snapshot()
	if !slices.ContainsFunc(kargoActs, func(a acted) bool { return a.action == "ping" }) {
		t.Errorf("kargo did not accept the ping: %+v", kargoActs)
	}
}

// TestRetryPolicy: a receiver answering 400 gets exactly one attempt; one
// answering 503 with Retry-After: 1 gets the retry a second later, well
// before the schedule's first wait (5 s).
func TestRetryPolicy(t *testing.T) {
	s := startServer(t, filepath.Join(t.TempDir(), "x.db"))
	var mu sync.Mutex
	var refusedAt, unavailableAt []time.Time
	bad := serveContract(t, "bad", "/hook", func(_ *contract, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		refusedAt = append(refusedAt, time.Now())
		mu.Unlock()
		http.Error(w, "tag cannot be empty", http.StatusBadRequest)
	})
	busy := serveContract(t, "busy", "/hook", func(_ *contract, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		unavailableAt = append(unavailableAt, time.Now())
		if len(unavailableAt) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s.putWebhook(t, "refuses", bad.url, []string{"push"}, nil)
	s.putWebhook(t, "unavailable", busy.url, []string{"push"}, nil)
	code, err := s.ingestEvent([]byte(`{"action":"push","target":{"repository":"team/app","tag":"v1","digest":"sha256:abc","mediaType":"application/vnd.oci.image.manifest.v1+json","size":10}}`))
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", code, err)
	}
	waitUntil(t, 10*time.Second, "the retry after Retry-After", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(unavailableAt) >= 2
	})
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(refusedAt) != 1 {
		t.Errorf("the 400 receiver got %d attempts, want exactly 1", len(refusedAt))
	}
	if len(unavailableAt) != 2 {
		t.Fatalf("the 503 receiver got %d attempts, want 2", len(unavailableAt))
	}
	if gap := unavailableAt[1].Sub(unavailableAt[0]); gap < 900*time.Millisecond || gap > 4*time.Second {
		t.Errorf("retry came %s after the 503; Retry-After asked for 1s (the schedule's first wait is 5s)", gap)
	}
	recs := s.listEvents(t, "refuses")
	if len(recs) != 1 || recs[0].status != "400" {
		t.Errorf("listEvents of the refused webhook = %v", recs)
	}
}
