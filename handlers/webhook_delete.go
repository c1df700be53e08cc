package handlers

import (
	"errors"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
)

// WebhookDelete deletes a webhook and its history after the confirmation
// dialog, then returns to the blade.
func (h *Handler) WebhookDelete(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if errors.Is(err, models.ErrSealed) && w != nil {
		err = nil // a webhook whose secrets are unreadable can still go
	}
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	if err := h.Store.DeleteWebhook(c.Request().Context(), w); err != nil {
		return h.notFoundOr(c, err, "The webhook "+w.Name)
	}
	h.audit(c, actor(c), "webhook.delete", reg.Name+"/"+w.Name, "")
	h.setFlash(c, "Webhook "+w.Name+" deleted.")
	return redirect(c, webhooksURL(reg))
}
