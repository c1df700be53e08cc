package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
)

// Home sends the user to the Webhooks blade of the default registry (or of
// the first one, when the default was deleted).
func (h *Handler) Home(c echo.Context) error {
	regs, err := h.Store.ListRegistries(c.Request().Context(), "", "")
	if err != nil {
		return err
	}
	if len(regs) == 0 {
		return c.Redirect(http.StatusSeeOther, "/registries")
	}
	name := regs[0].Name
	for _, r := range regs {
		if r.Name == models.DefaultRegistryName {
			name = r.Name
		}
	}
	return c.Redirect(http.StatusSeeOther, "/registries/"+name+"/webhooks")
}

// SwitchRegistry is the registry picker's target.
func (h *Handler) SwitchRegistry(c echo.Context) error {
	reg, err := h.Store.GetRegistry(c.Request().Context(), c.QueryParam("registry"))
	if err != nil {
		return h.notFoundOr(c, err, "The registry")
	}
	return c.Redirect(http.StatusSeeOther, "/registries/"+reg.Name+"/webhooks")
}

// registry loads the :registry of the path.
func (h *Handler) registry(c echo.Context) (*models.Registry, error) {
	return h.Store.GetRegistry(c.Request().Context(), c.Param("registry"))
}

// webhook loads the :registry and :webhook of the path.
func (h *Handler) webhook(c echo.Context) (*models.Registry, *models.Webhook, error) {
	reg, err := h.registry(c)
	if err != nil {
		return nil, nil, err
	}
	w, err := h.Store.GetWebhook(c.Request().Context(), reg, c.Param("webhook"))
	if err != nil {
		// With ErrSealed, w is the unreadable webhook (Delete needs it).
		return reg, w, err
	}
	return reg, w, nil
}

func webhooksURL(reg *models.Registry) string { return "/registries/" + reg.Name + "/webhooks" }

func webhookURL(reg *models.Registry, w *models.Webhook) string {
	return webhooksURL(reg) + "/" + w.Name
}
