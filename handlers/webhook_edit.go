package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// WebhookEdit shows the form filled with the webhook's current settings,
// secrets included: only Contributors reach it, and asking is audited.
func (h *Handler) WebhookEdit(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	vm := views.FormVM{Name: w.Name, ServiceURI: w.ServiceURI, Headers: models.FormatHeaderLines(w.Headers),
		Scope: w.Scope, Status: w.Status, Actions: map[string]bool{}}
	for _, a := range w.Actions() {
		vm.Actions[a] = true
	}
	h.audit(c, actor(c), "webhook.reveal", reg.Name+"/"+w.Name, "edit form")
	return render(c, http.StatusOK, views.WebhookForm(h.formVM(c, reg, vm, w)))
}

// WebhookUpdate saves the Edit form with the same rules as create.
func (h *Handler) WebhookUpdate(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	f := bindWebhookForm(c)
	errs := h.validate(c, reg, &f, w)
	if len(errs) == 0 {
		f.input.Location, f.input.Tags = w.Location, w.Tags()
		if _, err := h.Store.UpdateWebhook(c.Request().Context(), w, f.input); err != nil {
			return h.notFoundOr(c, err, "The webhook "+w.Name)
		}
		h.audit(c, actor(c), "webhook.update", reg.Name+"/"+w.Name, "actions="+strings.Join(f.input.Actions, ",")+" status="+f.input.Status)
		h.kickIfEnabled(f.input.Status)
		h.setFlash(c, "Webhook "+w.Name+" saved.")
		return redirect(c, webhookURL(reg, w))
	}
	f.vm.Errors = errs
	return render(c, http.StatusUnprocessableEntity, views.WebhookForm(h.formVM(c, reg, f.vm, w)))
}

// WebhookStatus enables or disables a webhook.
func (h *Handler) WebhookStatus(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	st, err := models.NormalizeStatus(c.FormValue("status"))
	if err != nil || c.FormValue("status") == "" {
		return h.errorPage(c, http.StatusBadRequest, "Bad request", "status must be enabled or disabled")
	}
	if err := h.Store.SetWebhookStatus(c.Request().Context(), w, st); err != nil {
		return h.notFoundOr(c, err, "The webhook "+w.Name)
	}
	h.audit(c, actor(c), "webhook.status", reg.Name+"/"+w.Name, st)
	h.kickIfEnabled(st)
	h.setFlash(c, "Webhook "+w.Name+" is now "+st+".")
	return redirect(c, webhookURL(reg, w))
}
