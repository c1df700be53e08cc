package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// WebhookRegenerateSigningSecret gives the webhook a new signing secret
// (the first one, or a rotation whose predecessor keeps signing for 24 h)
// and shows it once: the htmx answer is the property with the secret, a
// plain post redirects to the page. Contributors only; audited without the
// secret.
func (h *Handler) WebhookRegenerateSigningSecret(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	had := w.SigningSecret != ""
	secret, err := h.Store.RotateSigningSecret(c.Request().Context(), w)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+w.Name)
	}
	detail := "generated"
	if had {
		detail = "rotated"
	}
	h.audit(c, actor(c), "webhook.signing_secret", reg.Name+"/"+w.Name, detail)
	if !isHTMX(c) {
		h.setFlash(c, "New signing secret made; press Show to see it.")
		return c.Redirect(http.StatusSeeOther, webhookURL(reg, w))
	}
	return render(c, http.StatusOK, views.SigningSecret(signingVM(h.page(c, w.Name, "webhooks", reg.Name), webhookURL(reg, w), w, secret)))
}

func signingVM(p views.Page, base string, w *models.Webhook, secret string) views.SigningSecretVM {
	vm := views.SigningSecretVM{BaseURL: base, CSRF: p.CSRF, CanEdit: p.CanEdit(), Set: w.SigningSecret != "", Secret: secret}
	if w.SigningRotatedAt > 0 {
		vm.Rotated = fmtTime(time.Unix(0, w.SigningRotatedAt))
	}
	return vm
}
