package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Healthz is liveness: 200 while the process serves HTTP, whatever the
// database does, so an orchestrator does not restart an instance that is
// only waiting for its database to come back.
func (h *Handler) Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz is readiness: 200 when the database answers and has every
// migration this binary knows, 503 otherwise, so a load balancer takes the
// instance out while its database is away or not migrated yet.
func (h *Handler) Readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.Store.Ping(ctx); err != nil {
		h.Log.Warn("readiness: database not answering", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "not answering"})
	}
	pending, err := h.Store.MigrationsPending(ctx)
	if err != nil || pending {
		if err != nil {
			h.Log.Warn("readiness: migration status", "err", err)
		}
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "migrations not applied"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
