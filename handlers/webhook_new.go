package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/views"
)

// WebhookNew shows the empty Add form: status enabled, action push checked.
func (h *Handler) WebhookNew(c echo.Context) error {
	reg, err := h.registry(c)
	if err != nil {
		return h.notFoundOr(c, err, "The registry "+c.Param("registry"))
	}
	vm := h.formVM(c, reg, views.FormVM{Status: "enabled", Actions: map[string]bool{"push": true}}, nil)
	return render(c, http.StatusOK, views.WebhookForm(vm))
}
