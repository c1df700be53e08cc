package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// ARMWebhookRegenerateSigningSecret is the extension action beside Azure's
// (POST …/webhooks/{webhook}/regenerateSigningSecret): the webhook gets a
// new Standard Webhooks signing secret, returned once as
// {"signingSecret":"whsec_…"} (getCallbackConfig shows it again). The
// replaced one still signs deliveries for 24 hours. Contributors only;
// audited without the secret.
func (h *Handler) ARMWebhookRegenerateSigningSecret(c echo.Context) error {
	r, w, err := h.armWebhook(c)
	if err != nil {
		return err
	}
	secret, err := h.Store.RotateSigningSecret(c.Request().Context(), w)
	if err != nil {
		return err
	}
	h.audit(c, actor(c), "webhook.signing_secret", r.Name+"/"+w.Name, "api; regenerated")
	return c.JSON(http.StatusOK, map[string]string{"signingSecret": secret})
}
