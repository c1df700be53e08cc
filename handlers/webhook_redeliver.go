package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
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
	return h.queued(c, reg, w, "Event "+d.EventID+" queued again.", "Event queued again")
}
