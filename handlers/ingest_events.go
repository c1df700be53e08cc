package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/web/acr"
)

// IngestEvent is POST /ingest/events/:registry: one event in ACR's content
// shape (action push, delete, quarantine, chart_push or chart_delete), for
// scripts and CI jobs. The event keeps its id when it has one (so a retry is
// a duplicate, not a second delivery), else gets a new UUID. It answers 202
// with {"id","action","duplicate","deliveries"} once the event and its
// deliveries are committed.
func (h *Handler) IngestEvent(c echo.Context) error {
	reg, err := h.ingestRegistry(c)
	if reg == nil {
		return err
	}
	body, err := h.ingestBody(c, echo.MIMEApplicationJSON)
	if body == nil {
		return err
	}
	ev, err := acr.ParseEvent(body, h.Store.Now())
	if errors.Is(err, acr.ErrInvalid) {
		return ingestError(c, http.StatusBadRequest, IngestCodeInvalidRequest, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	out, err := h.commitEvents(c.Request().Context(), reg, []acr.Event{ev}, "api", c.Request().UserAgent())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, out[0])
}
