package handlers

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/registryhooks/registryhooks/models"
)

// regenerateSigningSecret answers a fresh whsec_ secret, getCallbackConfig
// shows it (and only while one is set), Reader tokens may not, the audit
// trail records it without the secret.
func TestARMRegenerateSigningSecret(t *testing.T) {
	t.Parallel()
	b := setupARM(t)
	hook := regPath + "/webhooks/signedhook"
	if r := b.call("PUT", hook, webhookBody("http://127.0.0.1:9/h", "push")); r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r := b.call("POST", hook+"/getCallbackConfig", nil); r.status != 200 || strings.Contains(r.raw, "signingSecret") {
		t.Fatalf("callback config before: %d %s", r.status, r.raw)
	}
	reader, _, err := b.store.CreateAPIToken(b.ctx, "viewer", models.RoleReader, "admin")
	if err != nil {
		t.Fatal(err)
	}
	expectError(t, b.callAs(reader, "POST", hook+"/regenerateSigningSecret", nil), http.StatusForbidden, ARMCodeAuthorization)
	expectError(t, b.call("POST", regPath+"/webhooks/nosuchhook/regenerateSigningSecret", nil), http.StatusNotFound, ARMCodeNotFound)

	secrets := map[string]bool{}
	for range 2 {
		r := b.call("POST", hook+"/regenerateSigningSecret", nil)
		s, _ := r.body["signingSecret"].(string)
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if r.status != 200 || !strings.HasPrefix(s, "whsec_") || err != nil || len(key) < 24 || len(key) > 64 || secrets[s] {
			t.Fatalf("regenerate: %d %s (%d key bytes, %v)", r.status, r.raw, len(key), err)
		}
		secrets[s] = true
		cfg := b.call("POST", hook+"/getCallbackConfig", nil)
		if cfg.body["signingSecret"] != s {
			t.Fatalf("callback config %s, want the secret %s", cfg.raw, s)
		}
		// GET never shows it.
		if g := b.call("GET", hook, nil); strings.Contains(g.raw, s) {
			t.Fatalf("GET shows the secret: %s", g.raw)
		}
	}
	entries, _, err := b.store.ListAudit(b.ctx, 0, 10)
	if err != nil || len(entries) < 2 || entries[0].Action != "webhook.signing_secret" || entries[0].Actor != "token:bootstrap" {
		t.Fatalf("audit %+v, %v", entries, err)
	}
	for _, e := range entries {
		for s := range secrets {
			if strings.Contains(e.Detail, s) || strings.Contains(e.Target, s) {
				t.Fatalf("audit entry carries the secret: %+v", e)
			}
		}
	}
}
