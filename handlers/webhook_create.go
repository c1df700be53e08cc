package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// WebhookCreate saves a new webhook from the Add form. On a validation or
// quota failure it re-renders the form with the values and messages (422)
// and saves nothing; on success it redirects to the blade.
func (h *Handler) WebhookCreate(c echo.Context) error {
	reg, err := h.registry(c)
	if err != nil {
		return h.notFoundOr(c, err, "The registry "+c.Param("registry"))
	}
	f := bindWebhookForm(c)
	errs := h.validate(c, reg, &f, nil)
	f.vm.Errors = errs
	if len(errs) == 0 {
		_, err := h.Store.CreateWebhook(c.Request().Context(), reg, f.input, actor(c))
		var qe *models.QuotaError
		switch {
		case err == nil:
			h.audit(c, actor(c), "webhook.create", reg.Name+"/"+f.input.Name, "actions="+strings.Join(f.input.Actions, ","))
			h.setFlash(c, "Webhook "+f.input.Name+" created.")
			return redirect(c, webhooksURL(reg))
		case errors.As(err, &qe):
			f.vm.General = qe.Error()
		case errors.Is(err, models.ErrAlreadyExists):
			f.vm.Errors["name"] = "A webhook named " + f.input.Name + " already exists in registry " + reg.Name + "."
		default:
			return err
		}
	}
	vm := h.formVM(c, reg, f.vm, nil)
	return render(c, http.StatusUnprocessableEntity, views.WebhookForm(vm))
}
