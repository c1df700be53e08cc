package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/views"
)

// WebhookValidate is inline validation: htmx posts the whole form with
// ?field=X as the user types in or leaves X, and gets back X's message slot.
// It runs the same rules as the submit.
func (h *Handler) WebhookValidate(c echo.Context) error {
	reg, err := h.registry(c)
	if err != nil {
		return h.notFoundOr(c, err, "The registry "+c.Param("registry"))
	}
	f := bindWebhookForm(c)
	var errs map[string]string
	if c.Param("webhook") != "" {
		w, err := h.Store.GetWebhook(c.Request().Context(), reg, c.Param("webhook"))
		if err != nil {
			return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
		}
		errs = h.validate(c, reg, &f, w)
	} else {
		errs = h.validate(c, reg, &f, nil)
	}
	field := c.QueryParam("field")
	switch field {
	case "name", "service_uri", "custom_headers", "actions", "scope", "status":
	default:
		return c.String(http.StatusBadRequest, "unknown field")
	}
	return render(c, http.StatusOK, views.FieldError(field, errs[field]))
}
