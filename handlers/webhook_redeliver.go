package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
)

// WebhookRedeliver sends a past event to the webhook again, as a new
// delivery with the original payload, and answers with the refreshed
// events table (htmx) or the webhook page. An event still being delivered
// is refused (409) with a message.
func (h *Handler) WebhookRedeliver(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	id, err := strconv.ParseUint(c.Param("delivery"), 10, 64)
	if err != nil {
		return h.errorPage(c, http.StatusNotFound, "Not found", "No such event.")
	}
	eventID, err := h.Store.Redeliver(c.Request().Context(), w.ID, uint(id))
	var open *models.OpenDeliveryError
	if errors.As(err, &open) {
		return h.errorPage(c, http.StatusConflict, "Still being delivered", open.Error()+".")
	}
	if err != nil {
		return h.notFoundOr(c, err, "The event")
	}
	if h.Dispatcher != nil {
		h.Dispatcher.Kick()
	}
	h.audit(c, actor(c), "webhook.redeliver", reg.Name+"/"+w.Name, "event "+eventID)
	return h.queued(c, reg, w, "Event "+eventID+" queued again.", "Event queued again")
}

// WebhookRedeliverFailed sends again every event whose latest delivery to
// the webhook failed since the time in the form field failed_since (UTC,
// as a datetime-local input sends it, or RFC 3339): the receiver is fixed,
// replay what it missed. Audited; answers like Ping.
func (h *Handler) WebhookRedeliverFailed(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	since, err := parseSince(c.FormValue("failed_since"))
	if err != nil {
		return h.errorPage(c, http.StatusUnprocessableEntity, "Invalid time", err.Error())
	}
	n, err := h.Store.RedeliverFailedSince(c.Request().Context(), w.ID, since)
	if err != nil {
		return err
	}
	if n > 0 && h.Dispatcher != nil {
		h.Dispatcher.Kick()
	}
	at := since.UTC().Format(time.RFC3339)
	h.audit(c, actor(c), "webhook.redeliver", reg.Name+"/"+w.Name, strconv.Itoa(n)+" failed since "+at)
	msg := strconv.Itoa(n) + " failed events since " + since.UTC().Format(timeLayout) + " queued again."
	if n == 1 {
		msg = "1 failed event since " + since.UTC().Format(timeLayout) + " queued again."
	}
	return h.queued(c, reg, w, msg, msg)
}

// parseSince reads a time given as RFC 3339 or, without a zone, as UTC
// (what an <input type="datetime-local"> sends).
func parseSince(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("Give the time from which failed deliveries are sent again.")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("The time " + strconv.Quote(s) + " is not a date and time such as 2026-05-01T14:30 (UTC) or 2026-05-01T14:30:00Z.")
}
