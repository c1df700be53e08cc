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

// armRedeliverRequest is the body of the redeliver extension action:
// exactly one of EventIDs and FailedSince.
type armRedeliverRequest struct {
	EventIDs    []string `json:"eventIds"`
	FailedSince *string  `json:"failedSince"`
}

// ARMWebhookRedeliver is the bulk redeliver action beside Azure's
// (POST …/webhooks/{webhook}/redeliver): {"eventIds":[…]} sends those
// events again, all or none (409 while one is still being delivered, 400
// for an id never delivered to this webhook); {"failedSince":"<RFC 3339>"}
// sends every event whose latest delivery to the webhook failed since then.
// Each is a new delivery with the original payload and id. Answers 200
// {"queued":N}; Contributors only; audited.
func (h *Handler) ARMWebhookRedeliver(c echo.Context) error {
	r, w, err := h.armWebhook(c)
	if err != nil {
		return err
	}
	var req armRedeliverRequest
	if err := armBind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var n int
	var detail string
	switch {
	case req.EventIDs != nil && req.FailedSince != nil:
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "Give either 'eventIds' or 'failedSince', not both.")
	case req.FailedSince != nil:
		since, perr := time.Parse(time.RFC3339Nano, strings.TrimSpace(*req.FailedSince))
		if perr != nil {
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "'failedSince' must be an RFC 3339 time such as 2026-05-01T14:30:00Z, not %q.", *req.FailedSince)
		}
		if n, err = h.Store.RedeliverFailedSince(ctx, w.ID, since); err != nil {
			return err
		}
		detail = "api; " + strconv.Itoa(n) + " failed since " + since.UTC().Format(time.RFC3339)
	case req.EventIDs != nil:
		if len(req.EventIDs) == 0 {
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "'eventIds' must name at least one event.")
		}
		if len(req.EventIDs) > models.MaxRedeliverIDs {
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "'eventIds' may name at most %d events at once; got %d.", models.MaxRedeliverIDs, len(req.EventIDs))
		}
		n, err = h.Store.RedeliverEvents(ctx, w.ID, req.EventIDs)
		var open *models.OpenDeliveryError
		var missing *models.MissingEventsError
		switch {
		case errors.As(err, &open):
			return armErr(http.StatusConflict, ARMCodeConflict, "Nothing was queued: %s.", open.Error())
		case errors.As(err, &missing):
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "Nothing was queued: %s.", missing.Error())
		case err != nil:
			return err
		}
		detail = "api; events " + strings.Join(req.EventIDs, ", ")
		if len(detail) > 500 {
			detail = "api; " + strconv.Itoa(n) + " events"
		}
	default:
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "Give 'eventIds' (an array of event ids) or 'failedSince' (an RFC 3339 time).")
	}
	if n > 0 && h.Dispatcher != nil {
		h.Dispatcher.Kick()
	}
	h.audit(c, actor(c), "webhook.redeliver", r.Name+"/"+w.Name, detail)
	return c.JSON(http.StatusOK, map[string]int{"queued": n})
}
