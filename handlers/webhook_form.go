package handlers

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// webhookForm is the submitted create or edit form: the raw values, kept to
// re-render the form, and the input they parse into.
type webhookForm struct {
	vm    views.FormVM
	input models.WebhookInput
	// headersErr is a parse error of the Custom headers textarea.
	headersErr error
}

// bindWebhookForm reads the form fields fixed in interfaces.md: name,
// service_uri, custom_headers, actions (repeated), status, scope.
func bindWebhookForm(c echo.Context) webhookForm {
	var f webhookForm
	form, _ := c.FormParams()
	f.vm = views.FormVM{
		Name:       c.FormValue("name"),
		ServiceURI: c.FormValue("service_uri"),
		Headers:    c.FormValue("custom_headers"),
		Scope:      c.FormValue("scope"),
		Status:     c.FormValue("status"),
		Actions:    map[string]bool{},
	}
	for _, a := range form["actions"] {
		f.vm.Actions[a] = true
	}
	headers, err := models.ParseHeaderLines(f.vm.Headers)
	f.headersErr = err
	f.input = models.WebhookInput{
		Name: f.vm.Name, ServiceURI: f.vm.ServiceURI, Headers: headers,
		Actions: form["actions"], Status: f.vm.Status, Scope: f.vm.Scope,
	}
	return f
}

// validate runs the shared rules plus the form-only ones (header lines,
// name unique in the registry). existing is the webhook being edited, or nil.
func (h *Handler) validate(c echo.Context, reg *models.Registry, f *webhookForm, existing *models.Webhook) map[string]string {
	errs := map[string]string{}
	if existing != nil {
		f.input.Name = existing.Name // the name cannot change
		f.vm.Name = existing.Name
	}
	for k, v := range h.validateWebhook(c.Request().Context(), &f.input) {
		errs[k] = v
	}
	if f.headersErr != nil {
		errs["custom_headers"] = f.headersErr.Error()
	}
	if existing == nil && errs["name"] == "" {
		if _, err := h.Store.GetWebhook(c.Request().Context(), reg, f.input.Name); err == nil {
			errs["name"] = "A webhook named " + strings.TrimSpace(f.input.Name) + " already exists in registry " + reg.Name + "; names are unique per registry (ignoring case)."
		}
	}
	return errs
}

func (h *Handler) formVM(c echo.Context, reg *models.Registry, f views.FormVM, editing *models.Webhook) views.FormVM {
	title := "Add webhook"
	f.Page = h.page(c, title, "webhooks", reg.Name)
	f.CancelURL = webhooksURL(reg)
	if editing != nil {
		f.Editing = true
		f.Page.Title = "Edit " + editing.Name
		f.Action = webhookURL(reg, editing)
		f.ValidateURL = webhookURL(reg, editing) + "/validate"
		f.CancelURL = webhookURL(reg, editing)
	} else {
		f.Action = webhooksURL(reg)
		// Not under …/webhooks/: "validate" is a valid webhook name.
		f.ValidateURL = "/registries/" + reg.Name + "/validate-webhook"
	}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if f.Actions == nil {
		f.Actions = map[string]bool{}
	}
	return f
}
