package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/models/modelstest"
)

// mountARM mirrors the ARM section of web/routes.go (less its BodyLimit,
// whose 413 the server's error handler renders), so these tests exercise the
// same middleware order and paths.
func mountARM(e *echo.Echo, h *Handler) {
	arm := e.Group("/subscriptions", h.ARMErrors(), h.ARMAPIVersion(), h.ARMAuth())
	arm.GET("/:sub/resources", h.ARMResourceList)
	arm.GET("/:sub/providers/Microsoft.ContainerRegistry/registries", h.ARMRegistryList)
	const rg = "/:sub/resourceGroups/:rg/providers/Microsoft.ContainerRegistry/registries"
	arm.GET(rg, h.ARMRegistryListByResourceGroup)
	arm.GET(rg+"/:registry", h.ARMRegistryGet)
	arm.PUT(rg+"/:registry", h.ARMRegistryCreate)
	arm.PATCH(rg+"/:registry", h.ARMRegistryUpdate)
	arm.DELETE(rg+"/:registry", h.ARMRegistryDelete)
	arm.GET(rg+"/:registry/listUsages", h.ARMRegistryListUsages)
	arm.GET(rg+"/:registry/webhooks", h.ARMWebhookList)
	arm.GET(rg+"/:registry/webhooks/:webhook", h.ARMWebhookGet)
	arm.PUT(rg+"/:registry/webhooks/:webhook", h.ARMWebhookCreate)
	arm.PATCH(rg+"/:registry/webhooks/:webhook", h.ARMWebhookUpdate)
	arm.DELETE(rg+"/:registry/webhooks/:webhook", h.ARMWebhookDelete)
	arm.POST(rg+"/:registry/webhooks/:webhook/ping", h.ARMWebhookPing)
	arm.POST(rg+"/:registry/webhooks/:webhook/getCallbackConfig", h.ARMWebhookCallbackConfig)
	arm.POST(rg+"/:registry/webhooks/:webhook/listEvents", h.ARMWebhookListEvents)
	arm.GET(rg+"/:registry/webhooks/:webhook/listEvents", h.ARMWebhookListEvents)
	arm.POST(rg+"/:registry/webhooks/:webhook/redeliver", h.ARMWebhookRedeliver)
	arm.POST(rg+"/:registry/webhooks/:webhook/regenerateSigningSecret", h.ARMWebhookRegenerateSigningSecret)
}

const (
	testAPIToken = "bootstrap-secret-token"
	testSub      = models.DefaultSubscription
	regPath      = "/subscriptions/" + testSub + "/resourceGroups/registryhooks/providers/Microsoft.ContainerRegistry/registries/myregistry"
)

type countingKicker struct{ n atomic.Int32 }

func (k *countingKicker) Kick() { k.n.Add(1) }

type armBundle struct {
	t     *testing.T
	srv   *httptest.Server
	store *models.Store
	reg   *models.Registry
	kick  *countingKicker
	ctx   context.Context
}

func setupARM(t *testing.T) armBundle {
	t.Helper()
	s, reg := modelstest.Open(t, models.Options{})
	ctx := context.Background()
	k := &countingKicker{}
	h := New(Deps{Store: s, Dispatcher: k, APIToken: testAPIToken, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e := echo.New()
	mountARM(e, h)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return armBundle{t: t, srv: srv, store: s, reg: reg, kick: k, ctx: ctx}
}

type armResp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// code returns error.code of an ARM error body.
func (r armResp) code() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r armResp) message() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// call sends a request with the bootstrap token. path gets
// api-version=2025-11-01 unless it has a query or is absolute. body is
// JSON-encoded unless it is a string (sent as is).
func (b armBundle) call(method, path string, body any) armResp {
	return b.callAs(testAPIToken, method, path, body)
}

func (b armBundle) callAs(token, method, path string, body any) armResp {
	b.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		if !strings.Contains(u, "?") {
			u += "?api-version=2025-11-01"
		}
		u = b.srv.URL + u
	}
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := armResp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			b.t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return out
}

// expectError checks the ARM error shape: status, code in body and header.
func expectError(t *testing.T, r armResp, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code || r.header.Get("x-ms-error-code") != code || r.message() == "" {
		t.Fatalf("want %d %s, got %d %q (header %q): %s", status, code, r.status, r.code(), r.header.Get("x-ms-error-code"), r.raw)
	}
}

func webhookBody(uri string, actions ...string) map[string]any {
	return map[string]any{
		"location": "local",
		"tags":     map[string]string{"team": "a"},
		"properties": map[string]any{
			"serviceUri":    uri,
			"customHeaders": map[string]string{"Authorization": "Basic c2VjcmV0"},
			"scope":         "app:*",
			"actions":       actions,
		},
	}
}

func TestARMAuth(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	r := b.callAs("", "GET", regPath, nil)
	expectError(t, r, 401, ARMCodeAuthFailed)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	expectError(t, b.callAs("wrong", "GET", regPath, nil), 401, ARMCodeInvalidToken)
	expectError(t, b.callAs(testAPIToken+"x", "GET", regPath, nil), 401, ARMCodeInvalidToken)

	contrib, _, err := b.store.CreateAPIToken(b.ctx, "ci", models.RoleContributor, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if r := b.callAs(contrib, "PUT", regPath+"/webhooks/byportaltoken", webhookBody("http://127.0.0.1:9/h", "push")); r.status != 200 {
		t.Fatalf("portal token create: %d %s", r.status, r.raw)
	}
	w, err := b.store.GetWebhook(b.ctx, b.reg, "byportaltoken")
	if err != nil || w.CreatedBy != "token:ci" {
		t.Fatalf("created by %q, %v", w.CreatedBy, err)
	}
	entries, _, err := b.store.ListAudit(b.ctx, 0, 10)
	if err != nil || len(entries) != 1 || entries[0].Actor != "token:ci" || entries[0].Action != "webhook.create" || entries[0].Target != "myregistry/byportaltoken" {
		t.Fatalf("audit trail %+v, %v", entries, err)
	}
	reader, tok, err := b.store.CreateAPIToken(b.ctx, "dashboard", models.RoleReader, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if r := b.callAs(reader, "GET", regPath+"/webhooks", nil); r.status != 200 {
		t.Fatalf("reader list: %d %s", r.status, r.raw)
	}
	if r := b.callAs(reader, "POST", regPath+"/webhooks/byportaltoken/listEvents", nil); r.status != 200 {
		t.Fatalf("reader listEvents: %d %s", r.status, r.raw)
	}
	expectError(t, b.callAs(reader, "POST", regPath+"/webhooks/byportaltoken/getCallbackConfig", nil), 403, ARMCodeAuthorization)
	expectError(t, b.callAs(reader, "DELETE", regPath+"/webhooks/byportaltoken", nil), 403, ARMCodeAuthorization)
	// Registries are the Admins': a Contributor token may not change them.
	expectError(t, b.callAs(contrib, "DELETE", regPath, nil), 403, ARMCodeAuthorization)
	expectError(t, b.callAs(contrib, "PATCH", regPath, map[string]any{"sku": map[string]string{"name": "Basic"}}), 403, ARMCodeAuthorization)
	if r := b.callAs(contrib, "GET", regPath, nil); r.status != 200 {
		t.Fatalf("contributor get registry: %d %s", r.status, r.raw)
	}
	if err := b.store.RevokeAPIToken(b.ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	expectError(t, b.callAs(reader, "GET", regPath, nil), 401, ARMCodeInvalidToken)
}

func TestARMAPIVersion(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	expectError(t, b.call("GET", regPath+"?x=1", nil), 400, ARMCodeMissingAPIVersion)
	r := b.call("GET", regPath+"?api-version=2015-01-01", nil)
	expectError(t, r, 400, ARMCodeInvalidAPIVersion)
	if !strings.Contains(r.message(), "2025-11-01") {
		t.Fatalf("message does not list the supported versions: %s", r.message())
	}
	for _, v := range ARMAPIVersions {
		if r := b.call("GET", regPath+"/webhooks?api-version="+v, nil); r.status != 200 {
			t.Fatalf("api-version %s: %d %s", v, r.status, r.raw)
		}
	}
	// The generic resources listing takes Microsoft.Resources' versions.
	if r := b.call("GET", "/subscriptions/"+testSub+"/resources?api-version=2022-09-01", nil); r.status != 200 {
		t.Fatalf("resources: %d %s", r.status, r.raw)
	}
	expectError(t, b.call("GET", "/subscriptions/"+testSub+"/resources?api-version=latest", nil), 400, ARMCodeInvalidAPIVersion)
	expectError(t, b.call("GET", "/subscriptions/not-a-guid/providers/Microsoft.ContainerRegistry/registries", nil), 400, ARMCodeInvalidSubscription)
	// Unknown paths under /subscriptions answer in ARM's shape too.
	expectError(t, b.call("GET", "/subscriptions/"+testSub+"/resourceGroups/registryhooks/providers/Microsoft.Storage/storageAccounts", nil), 404, ARMCodeNotFound)
}

func TestARMWebhookLifecycle(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	hook := regPath + "/webhooks/myWebhook"
	r := b.call("PUT", hook, webhookBody("http://127.0.0.1:9/hook", "push", "delete"))
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	props := r.body["properties"].(map[string]any)
	if r.body["id"] != hook || r.body["name"] != "myWebhook" || r.body["type"] != "Microsoft.ContainerRegistry/registries/webhooks" ||
		r.body["location"] != "local" || props["provisioningState"] != "Succeeded" || props["status"] != "enabled" ||
		props["scope"] != "app:*" || fmt.Sprint(props["actions"]) != "[push delete]" {
		t.Fatalf("create body: %s", r.raw)
	}
	for _, secret := range []string{"serviceUri", "customHeaders", "c2VjcmV0", "127.0.0.1:9"} {
		if strings.Contains(r.raw, secret) {
			t.Fatalf("PUT response leaks %s: %s", secret, r.raw)
		}
	}
	// The portal sees the same row.
	w, err := b.store.GetWebhook(b.ctx, b.reg, "mywebhook")
	if err != nil || w.ServiceURI != "http://127.0.0.1:9/hook" || w.Headers["Authorization"] != "Basic c2VjcmV0" {
		t.Fatalf("stored: %+v, %v", w, err)
	}

	r = b.call("GET", hook, nil)
	if r.status != 200 || strings.Contains(r.raw, "serviceUri") || strings.Contains(r.raw, "c2VjcmV0") || r.body["tags"].(map[string]any)["team"] != "a" {
		t.Fatalf("get: %d %s", r.status, r.raw)
	}
	r = b.call("POST", hook+"/getCallbackConfig", nil)
	if r.status != 200 || r.body["serviceUri"] != "http://127.0.0.1:9/hook" || r.body["customHeaders"].(map[string]any)["Authorization"] != "Basic c2VjcmV0" {
		t.Fatalf("getCallbackConfig: %d %s", r.status, r.raw)
	}

	// PATCH changes only what it names.
	r = b.call("PATCH", hook, map[string]any{"properties": map[string]any{"status": "disabled"}})
	props = r.body["properties"].(map[string]any)
	if r.status != 200 || props["status"] != "disabled" || props["scope"] != "app:*" || fmt.Sprint(props["actions"]) != "[push delete]" {
		t.Fatalf("patch status: %d %s", r.status, r.raw)
	}
	if cfg := b.call("POST", hook+"/getCallbackConfig", nil); cfg.body["customHeaders"].(map[string]any)["Authorization"] != "Basic c2VjcmV0" {
		t.Fatalf("headers lost by PATCH: %s", cfg.raw)
	}
	r = b.call("PATCH", hook, map[string]any{"tags": map[string]string{}, "properties": map[string]any{"customHeaders": map[string]string{}, "serviceUri": "https://example.com/new"}})
	if r.status != 200 || len(r.body["tags"].(map[string]any)) != 0 {
		t.Fatalf("patch clear: %d %s", r.status, r.raw)
	}
	if cfg := b.call("POST", hook+"/getCallbackConfig", nil); len(cfg.body["customHeaders"].(map[string]any)) != 0 || cfg.body["serviceUri"] != "https://example.com/new" {
		t.Fatalf("after clearing headers: %s", cfg.raw)
	}
	expectError(t, b.call("PATCH", hook, map[string]any{"properties": map[string]any{"actions": []string{}}}), 400, ARMCodeInvalidContent)

	// PUT on an existing webhook replaces it (still 200, same id).
	r = b.call("PUT", hook, webhookBody("http://127.0.0.1:9/other", "quarantine"))
	if r.status != 200 || fmt.Sprint(r.body["properties"].(map[string]any)["actions"]) != "[quarantine]" || r.body["properties"].(map[string]any)["status"] != "enabled" {
		t.Fatalf("replace: %d %s", r.status, r.raw)
	}
	if n, _ := b.store.CountWebhooks(b.ctx, b.reg.ID); n != 1 {
		t.Fatalf("replace created a second webhook: %d", n)
	}

	if r := b.call("DELETE", hook, nil); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if r := b.call("DELETE", hook, nil); r.status != 204 {
		t.Fatalf("delete again: %d %s", r.status, r.raw)
	}
	r = b.call("GET", hook, nil)
	expectError(t, r, 404, ARMCodeNotFound)
	if want := "The Resource 'Microsoft.ContainerRegistry/registries/myregistry/webhooks/myWebhook' under resource group 'registryhooks' was not found."; !strings.HasPrefix(r.message(), want) {
		t.Fatalf("message = %q", r.message())
	}
	expectError(t, b.call("POST", hook+"/ping", nil), 404, ARMCodeNotFound)
}

func TestARMWebhookValidation(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	good := func() map[string]any { return webhookBody("http://127.0.0.1:9/h", "push") }
	with := func(f func(m map[string]any)) map[string]any { m := good(); f(m); return m }
	prop := func(k string, v any) map[string]any {
		return with(func(m map[string]any) { m["properties"].(map[string]any)[k] = v })
	}
	cases := []struct {
		name, webhook string
		body          any
		status        int
		code, inMsg   string
	}{
		{"short name", "ab", good(), 400, ARMCodeInvalidContent, "5-50 characters"},
		{"name with dash", "my-hook", good(), 400, ARMCodeInvalidContent, "letters and digits"},
		{"missing location", "hookone", with(func(m map[string]any) { delete(m, "location") }), 400, ARMCodeInvalidContent, "location is required"},
		{"foreign location", "hookone", with(func(m map[string]any) { m["location"] = "westus" }), 400, ARMCodeInvalidContent, "not a location of registry"},
		{"no properties", "hookone", map[string]any{"location": "local"}, 400, ARMCodeInvalidContent, "properties is required"},
		{"no uri", "hookone", prop("serviceUri", ""), 400, ARMCodeInvalidContent, "Service URI is required"},
		{"ftp uri", "hookone", prop("serviceUri", "ftp://x/y"), 400, ARMCodeInvalidContent, "http or https"},
		{"no actions", "hookone", prop("actions", []string{}), 400, ARMCodeInvalidContent, "at least one action"},
		{"unknown action", "hookone", prop("actions", []string{"pull"}), 400, ARMCodeInvalidContent, `unknown action "pull"`},
		{"bad status", "hookone", prop("status", "paused"), 400, ARMCodeInvalidContent, "enabled or disabled"},
		{"bad header", "hookone", prop("customHeaders", map[string]string{"Bad Name": "x"}), 400, ARMCodeInvalidContent, "header name"},
		{"malformed json", "hookone", `{"location": "local",`, 400, ARMCodeInvalidContent, "could not be deserialized"},
		{"wrong type", "hookone", `{"location":"local","properties":{"serviceUri":"http://x.y","actions":"push"}}`, 400, ARMCodeInvalidContent, "properties.actions"},
		{"empty body", "hookone", "", 400, ARMCodeInvalidContent, "empty"},
		{"too large", "hookone", `{"location":"` + strings.Repeat("x", armMaxBody) + `"}`, 413, ARMCodeTooLarge, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.call("PUT", regPath+"/webhooks/"+tc.webhook, tc.body)
			expectError(t, r, tc.status, tc.code)
			if !strings.Contains(r.message(), tc.inMsg) {
				t.Fatalf("message %q lacks %q", r.message(), tc.inMsg)
			}
		})
	}
	if n, _ := b.store.CountWebhooks(b.ctx, b.reg.ID); n != 0 {
		t.Fatalf("invalid requests created %d webhooks", n)
	}

	// A non-JSON content type is 415; unknown fields are tolerated.
	req, _ := http.NewRequest("PUT", b.srv.URL+regPath+"/webhooks/hookone?api-version=2025-11-01", strings.NewReader("location=local"))
	req.Header.Set("Authorization", "Bearer "+testAPIToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 415 || res.Header.Get("x-ms-error-code") != ARMCodeUnsupportedMedia {
		t.Fatalf("form body: %d %s", res.StatusCode, res.Header.Get("x-ms-error-code"))
	}
	extra := with(func(m map[string]any) {
		m["future"] = true
		m["properties"].(map[string]any)["somethingNew"] = map[string]int{"a": 1}
		m["location"] = "Local" // ARM compares locations case-insensitively
	})
	if r := b.call("PUT", regPath+"/webhooks/hookone", extra); r.status != 200 || r.body["location"] != "local" {
		t.Fatalf("unknown fields: %d %s", r.status, r.raw)
	}
}

func TestARMWebhookQuotaAndRegistries(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	basic := "/subscriptions/" + testSub + "/resourceGroups/Team-RG/providers/Microsoft.ContainerRegistry/registries/smallreg"
	r := b.call("PUT", basic, map[string]any{"location": "local", "sku": map[string]string{"name": "basic"}, "tags": map[string]string{"env": "dev"}})
	if r.status != 200 || r.body["sku"].(map[string]any)["name"] != "Basic" || r.body["sku"].(map[string]any)["tier"] != "Basic" ||
		r.body["id"] != basic || r.body["properties"].(map[string]any)["loginServer"] == "" {
		t.Fatalf("create registry: %d %s", r.status, r.raw)
	}
	// The registry the API created is the portal's registry.
	reg, err := b.store.GetRegistry(b.ctx, "smallreg")
	if err != nil || reg.SKU != models.SKUBasic || reg.ResourceGroup != "Team-RG" || reg.Tags()["env"] != "dev" {
		t.Fatalf("stored registry %+v, %v", reg, err)
	}
	// Resource group and subscription are matched without regard to case, but must match.
	if r := b.call("GET", strings.Replace(basic, "Team-RG", "team-rg", 1), nil); r.status != 200 {
		t.Fatalf("case-insensitive rg: %d %s", r.status, r.raw)
	}
	expectError(t, b.call("GET", strings.Replace(basic, "Team-RG", "other", 1), nil), 404, ARMCodeNotFound)
	expectError(t, b.call("GET", strings.Replace(basic, testSub, "11111111-1111-1111-1111-111111111111", 1), nil), 404, ARMCodeNotFound)
	expectError(t, b.call("GET", strings.Replace(basic, "Team-RG", "other", 1)+"/webhooks", nil), 404, ARMCodeNotFound)
	expectError(t, b.call("PUT", strings.Replace(basic, "Team-RG", "other", 1), map[string]any{"location": "local", "sku": map[string]string{"name": "Basic"}}), 409, ARMCodeConflict)
	expectError(t, b.call("PUT", basic, map[string]any{"location": "westus", "sku": map[string]string{"name": "Basic"}}), 400, ARMCodeInvalidContent)
	expectError(t, b.call("PUT", basic, map[string]any{"location": "local", "sku": map[string]string{"name": "Classic"}}), 400, ARMCodeInvalidContent)
	expectError(t, b.call("PUT", basic, map[string]any{"location": "local"}), 400, ARMCodeInvalidContent)

	for _, n := range []string{"hookone", "hooktwo"} {
		if r := b.call("PUT", basic+"/webhooks/"+n, webhookBody("http://127.0.0.1:9/h", "push")); r.status != 200 {
			t.Fatalf("create %s: %d %s", n, r.status, r.raw)
		}
	}
	r = b.call("PUT", basic+"/webhooks/hookthree", webhookBody("http://127.0.0.1:9/h", "push"))
	expectError(t, r, 409, ARMCodeQuota)
	if want := "Quota exceeded for resource type webhooks for the registry SKU Basic. Learn more about different SKU quotas and upgrade process: https://docs.microsoft.com/en-us/azure/container-registry/container-registry-skus"; r.message() != want {
		t.Fatalf("quota message %q", r.message())
	}
	r = b.call("GET", basic+"/listUsages", nil)
	if r.status != 200 || !strings.Contains(r.raw, `{"name":"Webhooks","limit":2,"currentValue":2,"unit":"Count"}`) {
		t.Fatalf("usages: %d %s", r.status, r.raw)
	}
	// Upgrading lifts the quota; downgrading below the count is refused.
	if r := b.call("PATCH", basic, map[string]any{"sku": map[string]string{"name": "Standard"}}); r.status != 200 || r.body["sku"].(map[string]any)["name"] != "Standard" || r.body["tags"].(map[string]any)["env"] != "dev" {
		t.Fatalf("upgrade: %d %s", r.status, r.raw)
	}
	if r := b.call("PUT", basic+"/webhooks/hookthree", webhookBody("http://127.0.0.1:9/h", "push")); r.status != 200 {
		t.Fatalf("third webhook after upgrade: %d %s", r.status, r.raw)
	}
	expectError(t, b.call("PATCH", basic, map[string]any{"sku": map[string]string{"name": "Basic"}}), 409, ARMCodeQuota)
	if r := b.call("PUT", basic, map[string]any{"location": "local", "sku": map[string]string{"name": "Premium"}, "tags": map[string]string{}}); r.status != 200 || len(r.body["tags"].(map[string]any)) != 0 || r.body["sku"].(map[string]any)["name"] != "Premium" {
		t.Fatalf("PUT update: %d %s", r.status, r.raw)
	}

	// Listings.
	r = b.call("GET", "/subscriptions/"+testSub+"/providers/Microsoft.ContainerRegistry/registries", nil)
	if r.status != 200 || len(r.body["value"].([]any)) != 2 {
		t.Fatalf("list by subscription: %d %s", r.status, r.raw)
	}
	r = b.call("GET", "/subscriptions/"+testSub+"/resourceGroups/team-rg/providers/Microsoft.ContainerRegistry/registries", nil)
	if r.status != 200 || len(r.body["value"].([]any)) != 1 || r.body["value"].([]any)[0].(map[string]any)["name"] != "smallreg" {
		t.Fatalf("list by resource group: %d %s", r.status, r.raw)
	}
	r = b.call("GET", "/subscriptions/"+testSub+"/resources?api-version=2022-09-01&$filter=resourceType%20eq%20%27Microsoft.ContainerRegistry%2Fregistries%27", nil)
	if r.status != 200 || len(r.body["value"].([]any)) != 2 {
		t.Fatalf("resources: %d %s", r.status, r.raw)
	}
	r = b.call("GET", "/subscriptions/"+testSub+"/resources?api-version=2022-09-01&$filter=resourceType%20eq%20%27Microsoft.Storage%2FstorageAccounts%27", nil)
	if r.status != 200 || len(r.body["value"].([]any)) != 0 {
		t.Fatalf("resources of another type: %d %s", r.status, r.raw)
	}

	if r := b.call("DELETE", basic, nil); r.status != 200 {
		t.Fatalf("delete registry: %d %s", r.status, r.raw)
	}
	if r := b.call("DELETE", basic, nil); r.status != 204 {
		t.Fatalf("delete registry again: %d %s", r.status, r.raw)
	}
	if _, err := b.store.GetRegistry(b.ctx, "smallreg"); !models.IsNotFound(err) {
		t.Fatalf("registry still there: %v", err)
	}
}

func TestARMWebhookListPaging(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	const total = 2*armPageSize + 5
	for i := range total {
		in := models.WebhookInput{Name: fmt.Sprintf("hook%03d", i), ServiceURI: "http://127.0.0.1:9/h", Actions: []string{"push"}}
		if fe := in.Validate(); fe != nil {
			t.Fatal(fe)
		}
		if _, err := b.store.CreateWebhook(b.ctx, b.reg, in, ""); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	next := regPath + "/webhooks"
	pages := 0
	for next != "" {
		r := b.call("GET", next, nil)
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.raw)
		}
		for _, v := range r.body["value"].([]any) {
			names = append(names, v.(map[string]any)["name"].(string))
		}
		next, _ = r.body["nextLink"].(string)
		if next != "" && (!strings.HasPrefix(next, b.srv.URL+regPath+"/webhooks?") || !strings.Contains(next, "api-version=2025-11-01")) {
			t.Fatalf("nextLink %q", next)
		}
		pages++
	}
	if pages != 3 || len(names) != total || names[0] != "hook000" || names[total-1] != fmt.Sprintf("hook%03d", total-1) {
		t.Fatalf("%d pages, %d names: %v", pages, len(names), names)
	}
	r := b.call("GET", regPath+"/webhooks?api-version=2023-07-01&$top=7", nil)
	if len(r.body["value"].([]any)) != 7 || !strings.Contains(r.body["nextLink"].(string), "%24top=7") {
		t.Fatalf("$top=7: %s", r.raw)
	}
	expectError(t, b.call("GET", regPath+"/webhooks?api-version=2023-07-01&$top=1000", nil), 400, ARMCodeInvalidContent)
	expectError(t, b.call("GET", regPath+"/webhooks?api-version=2023-07-01&$skipToken=@@@", nil), 400, ARMCodeInvalidContent)
}

func TestARMPingAndListEvents(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	hook := regPath + "/webhooks/pinged"
	if r := b.call("PUT", hook, webhookBody("http://127.0.0.1:9/h", "push")); r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	r := b.call("POST", hook+"/ping", nil)
	id, _ := r.body["id"].(string)
	if r.status != 200 || len(id) != 36 || b.kick.n.Load() != 1 {
		t.Fatalf("ping: %d %s, kicks %d", r.status, r.raw, b.kick.n.Load())
	}
	w, err := b.store.GetWebhook(b.ctx, b.reg, "pinged")
	if err != nil {
		t.Fatal(err)
	}
	rows, total, err := b.store.ListDeliveries(b.ctx, w.ID, 0, 10)
	if err != nil || total != 1 || rows[0].EventID != id || rows[0].Action != models.ActionPing {
		t.Fatalf("queued deliveries %+v (%d), %v", rows, total, err)
	}
	d, err := b.store.GetDelivery(b.ctx, w.ID, rows[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]string
	if err := json.Unmarshal(d.Event.Payload, &payload); err != nil || payload["id"] != id || payload["action"] != "ping" || payload["timestamp"] == "" {
		t.Fatalf("ping payload %s, %v", d.Event.Payload, err)
	}

	// Nothing was attempted yet: listEvents is empty, not an error.
	r = b.call("POST", hook+"/listEvents", nil)
	if r.status != 200 || len(r.body["value"].([]any)) != 0 || r.body["nextLink"] != nil {
		t.Fatalf("empty listEvents: %d %s", r.status, r.raw)
	}

	// Record attempts the way the dispatcher does: the first delivered with
	// the secret header in clear in the record, one that got no response.
	const n = armPageSize + 3
	var results []models.AttemptResult
	for i := range n {
		ev := &models.Event{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), RegistryID: b.reg.ID, Action: "ping", Source: "ping",
			Payload: []byte(fmt.Sprintf(`{"id":"%d","action":"ping"}`, i))}
		dl, err := b.store.QueuePing(b.ctx, w, ev)
		if err != nil {
			t.Fatal(err)
		}
		a := models.Attempt{DeliveryID: dl.ID, WebhookID: w.ID, EventID: ev.ID, Number: 1, RequestURI: "http://127.0.0.1:9/h",
			RequestHeaders: `{"Content-Type":"application/json","authorization":"Basic c2VjcmV0"}`, StatusCode: 200, ReasonPhrase: "OK",
			ResponseHeaders: `{"Content-Length":["0"]}`, StartedAt: int64(1000 + i)}
		if i == 5 {
			a.StatusCode, a.ReasonPhrase, a.Error = 0, "", "connection refused: nothing listens at 127.0.0.1:9"
		}
		results = append(results, models.AttemptResult{Attempt: a, State: models.DeliverySucceeded})
	}
	if err := b.store.RecordAttempts(b.ctx, results); err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	r = b.call("POST", hook+"/listEvents", nil)
	for pages := 0; ; pages++ {
		if r.status != 200 || pages > 3 {
			t.Fatalf("listEvents page %d: %d %s", pages, r.status, r.raw)
		}
		if strings.Contains(r.raw, "c2VjcmV0") {
			t.Fatalf("secret header value in listEvents: %s", r.raw)
		}
		for _, v := range r.body["value"].([]any) {
			events = append(events, v.(map[string]any))
		}
		next, _ := r.body["nextLink"].(string)
		if next == "" {
			break
		}
		r = b.call("GET", next, nil)
	}
	if len(events) != n {
		t.Fatalf("got %d events, want %d", len(events), n)
	}
	first := events[0]
	req := first["eventRequestMessage"].(map[string]any)
	resp := first["eventResponseMessage"].(map[string]any)
	if first["id"] != fmt.Sprintf("00000000-0000-4000-8000-%012d", n-1) || req["method"] != "POST" || req["version"] != "1.1" ||
		req["headers"].(map[string]any)["authorization"] != "******" || req["content"].(map[string]any)["action"] != "ping" ||
		resp["statusCode"] != "200" || resp["reasonPhrase"] != "OK" || resp["headers"].(map[string]any)["Content-Length"] != "0" {
		t.Fatalf("newest event: %v", first)
	}
	failed := events[n-1-5]["eventResponseMessage"].(map[string]any)
	if failed["statusCode"] != "504" || !strings.Contains(failed["content"].(string), "connection refused") {
		t.Fatalf("failed attempt: %v", failed)
	}
	expectError(t, b.call("GET", hook+"/listEvents?api-version=2025-11-01&$skipToken=eHl6", nil), 400, ARMCodeInvalidContent)
}
