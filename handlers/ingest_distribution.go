package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/web/acr"
)

// IngestDistribution is POST /ingest/distribution/:registry, the
// notification endpoint of a CNCF Distribution registry. Manifest pushes
// with a tag become push events and manifest deletes delete events; blob
// events, pulls, mounts and untags are acknowledged and skipped. It answers
// 202 once every event and its deliveries are committed, listing each
// event (a retried envelope's events come back as duplicates and are not
// delivered twice) and each skipped one with the reason.
func (h *Handler) IngestDistribution(c echo.Context) error {
	reg, err := h.ingestRegistry(c)
	if reg == nil {
		return err
	}
	body, err := h.ingestBody(c, distributionMediaTypeV1, distributionMediaTypeV2, echo.MIMEApplicationJSON)
	if body == nil {
		return err
	}
	evs, skipped, err := acr.ParseDistribution(body, h.Store.Now())
	if errors.Is(err, acr.ErrInvalid) {
		return ingestError(c, http.StatusBadRequest, IngestCodeInvalidRequest, "%s", err.Error())
	}
	if err != nil {
		return err
	}
	out := []IngestedEvent{}
	if len(evs) > 0 {
		if out, err = h.commitEvents(c.Request().Context(), reg, evs, "distribution", c.Request().UserAgent()); err != nil {
			return err
		}
	}
	if skipped == nil {
		skipped = []acr.Skipped{}
	}
	return c.JSON(http.StatusAccepted, map[string]any{"events": out, "skipped": skipped})
}
