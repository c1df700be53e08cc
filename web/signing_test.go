package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/registryhooks/registryhooks/models"
)

var secretInPage = regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`)

// The webhook page says whether deliveries are signed; a Contributor
// generates and rotates the secret, which is shown once in the answer and
// again only through the audited Show; Readers may not; it is audited.
func TestWebhookSigningSecretPortal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.webhook("signedhook1")
	page := "/registries/myregistry/webhooks/signedhook1"
	c := b.admin()
	r := c.get(page)
	wantBody(t, r, "not signed")
	wantBody(t, r, "Generate signing secret")
	reader := b.as(models.RoleReader)
	if r := reader.get(page); strings.Contains(r.body, "Generate signing secret") {
		t.Fatal("a Reader is offered the signing secret button")
	}
	wantCode(t, reader.do("POST", page+"/signing-secret", url.Values{}, map[string]string{"HX-Request": "true", "X-CSRF-Token": reader.csrf()}), http.StatusForbidden)

	htmx := map[string]string{"HX-Request": "true", "X-CSRF-Token": c.csrf()}
	r = c.do("POST", page+"/signing-secret", url.Values{}, htmx)
	wantCode(t, r, http.StatusOK)
	secret := secretInPage.FindString(r.body)
	if secret == "" {
		t.Fatalf("no secret in the answer: %s", r.body)
	}
	r = c.get(page)
	wantBody(t, r, "Regenerate signing secret")
	if strings.Contains(r.body, secret) {
		t.Fatal("the page shows the secret")
	}
	r = c.do("GET", page+"/callback", nil, htmx)
	wantBody(t, r, secret)
	// Rotating gives another one.
	r = c.do("POST", page+"/signing-secret", url.Values{}, htmx)
	if next := secretInPage.FindString(r.body); next == "" || next == secret {
		t.Fatalf("rotation answered %q", next)
	}
	entries, _, _ := b.store.ListAudit(b.ctx, 0, 10)
	if len(entries) < 2 || entries[0].Action != "webhook.signing_secret" || entries[0].Detail != "rotated" {
		t.Fatalf("audit %+v", entries)
	}
}
