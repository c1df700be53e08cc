package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/views"
)

// WebhookRedeliver sends a past event to the webhook again, as a new
// delivery with the original payload, and answers with the refreshed
// events table (htmx) or the webhook page.
func (h *Handler) WebhookRedeliver(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	id, err := strconv.ParseUint(c.Param("delivery"), 10, 64)
	if err != nil {
		return h.errorPage(c, http.StatusNotFound, "Not found", "No such event.")
	}
	d, err := h.Store.Redeliver(c.Request().Context(), w.ID, uint(id))
	if err != nil {
		return h.notFoundOr(c, err, "The event")
	}
	if h.Dispatcher != nil {
		h.Dispatcher.Kick()
	}
	h.audit(c, actor(c), "webhook.redeliver", reg.Name+"/"+w.Name, "event "+d.EventID)
	if !isHTMX(c) {
		h.setFlash(c, "Event "+d.EventID+" queued again.")
		return c.Redirect(http.StatusSeeOther, webhookURL(reg, w))
	}
	ev, err := h.eventsVM(c, reg, w, 1)
	if err != nil {
		return err
	}
	c.Response().Header().Set("HX-Trigger", `{"rh:toast":"Event queued again"}`)
	return render(c, http.StatusOK, views.Events(ev))
}
