package handlers

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
	"github.com/registryhooks/registryhooks/web/acr"
)

// queuePing writes a ping event and its delivery to w in one transaction
// and wakes the dispatcher. It returns the event id.
func (h *Handler) queuePing(ctx context.Context, reg *models.Registry, w *models.Webhook) (string, error) {
	id := uuid.NewString()
	// ACR publishes no ping body; this is the recommended minimal event
	// (spec 3.3), with the id the API returns.
	ev := &models.Event{ID: id, RegistryID: reg.ID, Action: models.ActionPing, Source: "ping", Payload: acr.Ping(id, h.Store.Now())}
	if _, err := h.Store.QueuePing(ctx, w, ev); err != nil {
		return "", err
	}
	if h.Dispatcher != nil {
		h.Dispatcher.Kick()
	}
	return id, nil
}

// WebhookPing sends a ping through the dispatcher and answers with the
// refreshed events table, whose new row polls until the answer is in.
func (h *Handler) WebhookPing(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	id, err := h.queuePing(c.Request().Context(), reg, w)
	if err != nil {
		return err
	}
	h.audit(c, actor(c), "webhook.ping", reg.Name+"/"+w.Name, "event "+id)
	return h.queued(c, reg, w, "Ping sent: event "+id+".", "Ping sent")
}

// queued answers a request that queued a delivery: the refreshed events
// table, a toast and a reload of the Health section for htmx (its new row
// polls until the answer is in),
// else a redirect to the webhook page with flash.
func (h *Handler) queued(c echo.Context, reg *models.Registry, w *models.Webhook, flash, toast string) error {
	if !isHTMX(c) {
		h.setFlash(c, flash)
		return c.Redirect(http.StatusSeeOther, webhookURL(reg, w))
	}
	ev, err := h.eventsVM(c, reg, w, eventsQuery{})
	if err != nil {
		return err
	}
	// rh:queued: the Health section reloads once (then polls while the
	// delivery is open).
	b, _ := json.Marshal(map[string]string{"rh:toast": toast, "rh:queued": ""})
	c.Response().Header().Set("HX-Trigger", string(b))
	return render(c, http.StatusOK, views.Events(ev))
}
