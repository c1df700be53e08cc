package handlers

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/registryhooks/registryhooks/models"
)

// armWebhookJSON is the Webhook resource as GET, PUT and PATCH return it.
// serviceUri and customHeaders are write-only: only getCallbackConfig
// returns them.
type armWebhookJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SystemData *armSystemData    `json:"systemData,omitempty"`
	Properties armWebhookProps   `json:"properties"`
}

type armWebhookProps struct {
	Status            string   `json:"status"`
	Scope             string   `json:"scope"`
	Actions           []string `json:"actions"`
	ProvisioningState string   `json:"provisioningState"`
}

// armSystemData is ARM's common systemData, with what the store knows.
type armSystemData struct {
	CreatedBy      string `json:"createdBy,omitempty"`
	CreatedAt      string `json:"createdAt,omitempty"`
	LastModifiedAt string `json:"lastModifiedAt,omitempty"`
}

func armTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func armWebhook(r *models.Registry, w *models.Webhook) armWebhookJSON {
	actions := w.Actions()
	if actions == nil {
		actions = []string{}
	}
	return armWebhookJSON{
		ID: armWebhookPath(r, w.Name), Name: w.Name, Type: armWebhookType, Location: w.Location, Tags: w.Tags(),
		SystemData: &armSystemData{CreatedBy: w.CreatedBy, CreatedAt: armTime(w.CreatedAt), LastModifiedAt: armTime(w.UpdatedAt)},
		Properties: armWebhookProps{Status: w.Status, Scope: w.Scope, Actions: actions, ProvisioningState: "Succeeded"},
	}
}

type armWebhookList struct {
	Value    []armWebhookJSON `json:"value"`
	NextLink string           `json:"nextLink,omitempty"`
}

// ARMWebhookList is Webhooks_List: the registry's webhooks by name, a page at
// a time; nextLink (absolute, GET-able) is present while more remain.
func (h *Handler) ARMWebhookList(c echo.Context) error {
	r, err := h.armRegistry(c)
	if err != nil {
		return err
	}
	top, after, err := armPage(c)
	if err != nil {
		return err
	}
	// One extra row says whether another page follows.
	ws, err := h.Store.ListWebhooksAfter(c.Request().Context(), r, after, top+1)
	if err != nil {
		return err
	}
	out := armWebhookList{Value: []armWebhookJSON{}}
	for i := range ws {
		if i == top {
			out.NextLink = h.armNextLink(c, ws[top-1].Name)
			break
		}
		out.Value = append(out.Value, armWebhook(r, &ws[i]))
	}
	return c.JSON(http.StatusOK, out)
}

// ARMWebhookGet is Webhooks_Get.
func (h *Handler) ARMWebhookGet(c echo.Context) error {
	r, w, err := h.armWebhook(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, armWebhook(r, w))
}

// armWebhookCreateBody is WebhookCreateParameters (the PUT body).
type armWebhookCreateBody struct {
	Location   *string           `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		ServiceURI    string            `json:"serviceUri"`
		CustomHeaders map[string]string `json:"customHeaders"`
		Status        string            `json:"status"`
		Scope         string            `json:"scope"`
		Actions       []string          `json:"actions"`
	} `json:"properties"`
}

// ARMWebhookCreate is Webhooks_Create (PUT): it creates the webhook or, when
// it exists, replaces every settable field. Either way it answers 200 with
// provisioningState Succeeded, which the SDK pollers take as done without
// polling.
//
// location is required, as in ARM (the CLI fills in the registry's), and
// must be the registry's location: a webhook lives in a replica's region and
// a Registry Hooks registry has one. It cannot change on an existing webhook.
// A missing status means enabled.
func (h *Handler) ARMWebhookCreate(c echo.Context) error {
	r, err := h.armRegistry(c)
	if err != nil {
		return err
	}
	var body armWebhookCreateBody
	if err := armBind(c, &body); err != nil {
		return err
	}
	name := c.Param("webhook")
	if body.Location == nil || *body.Location == "" {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "location is required: use the registry's location, %q.", r.Location)
	}
	if !armLocationEqual(*body.Location, r.Location) {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "location %q is not a location of registry %q; its location is %q.", *body.Location, r.Name, r.Location)
	}
	if body.Properties == nil {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "properties is required, with at least serviceUri and actions.")
	}
	p := body.Properties
	in := models.WebhookInput{Name: name, ServiceURI: p.ServiceURI, Headers: p.CustomHeaders, Actions: p.Actions,
		Status: p.Status, Scope: p.Scope, Location: r.Location, Tags: body.Tags}
	if fe := h.validateWebhook(c.Request().Context(), &in); fe != nil {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "%s", fe.Error())
	}
	ctx := c.Request().Context()
	existing, err := h.Store.GetWebhook(ctx, r, name)
	switch {
	case err == nil:
		w, err := h.Store.UpdateWebhook(ctx, existing, in)
		if err != nil {
			return err
		}
		h.audit(c, actor(c), "webhook.update", r.Name+"/"+w.Name, "api put; actions="+strings.Join(in.Actions, ",")+" status="+in.Status)
		h.kickIfEnabled(in.Status)
		return c.JSON(http.StatusOK, armWebhook(r, w))
	case !errors.Is(err, models.ErrNotFound):
		return err
	}
	w, err := h.Store.CreateWebhook(ctx, r, in, actor(c))
	switch {
	case errors.Is(err, models.ErrQuotaExceeded):
		return armQuotaExceeded(r)
	case errors.Is(err, models.ErrAlreadyExists):
		return armErr(http.StatusConflict, ARMCodeConflict, "Webhook %q was created by another request at the same time; retry to update it.", name)
	case err != nil:
		return err
	}
	h.audit(c, actor(c), "webhook.create", r.Name+"/"+w.Name, "api; actions="+strings.Join(in.Actions, ","))
	return c.JSON(http.StatusOK, armWebhook(r, w))
}

// armQuotaExceeded is ACR's own error for a webhook past the SKU's quota.
func armQuotaExceeded(r *models.Registry) *ARMError {
	return armErr(http.StatusConflict, ARMCodeQuota,
		"Quota exceeded for resource type webhooks for the registry SKU %s. Learn more about different SKU quotas and upgrade process: https://docs.microsoft.com/en-us/azure/container-registry/container-registry-skus", r.SKU)
}

// armWebhookUpdateBody is WebhookUpdateParameters (the PATCH body): nil
// fields are left as they are. A location, if sent, is ignored (PATCH has
// none in ARM).
type armWebhookUpdateBody struct {
	Tags       *map[string]string `json:"tags"`
	Properties *struct {
		ServiceURI    *string            `json:"serviceUri"`
		CustomHeaders *map[string]string `json:"customHeaders"`
		Status        *string            `json:"status"`
		Scope         *string            `json:"scope"`
		Actions       *[]string          `json:"actions"`
	} `json:"properties"`
}

// ARMWebhookUpdate is Webhooks_Update (PATCH): only the fields given change;
// the result is validated as a whole by the same rules as a create.
// customHeaders {} clears the headers; tags {} clears the tags.
func (h *Handler) ARMWebhookUpdate(c echo.Context) error {
	r, w, err := h.armWebhook(c)
	if err != nil {
		return err
	}
	var body armWebhookUpdateBody
	if err := armBind(c, &body); err != nil {
		return err
	}
	in := models.InputFrom(w)
	if body.Tags != nil {
		in.Tags = *body.Tags
	}
	if p := body.Properties; p != nil {
		if p.ServiceURI != nil {
			in.ServiceURI = *p.ServiceURI
		}
		if p.CustomHeaders != nil {
			in.Headers = *p.CustomHeaders
		}
		if p.Status != nil {
			in.Status = *p.Status
		}
		if p.Scope != nil {
			in.Scope = *p.Scope
		}
		if p.Actions != nil {
			in.Actions = *p.Actions
		}
	}
	if fe := h.validateWebhook(c.Request().Context(), &in); fe != nil {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "%s", fe.Error())
	}
	w, err = h.Store.UpdateWebhook(c.Request().Context(), w, in)
	if errors.Is(err, models.ErrNotFound) {
		return armNotFound(c.Param("rg"), r.Name+"/webhooks/"+c.Param("webhook"))
	}
	if err != nil {
		return err
	}
	h.audit(c, actor(c), "webhook.update", r.Name+"/"+w.Name, "api patch; actions="+strings.Join(in.Actions, ",")+" status="+in.Status)
	h.kickIfEnabled(in.Status)
	return c.JSON(http.StatusOK, armWebhook(r, w))
}

// ARMWebhookDelete is Webhooks_Delete: 200 when deleted, 204 when there was
// no such webhook (the registry must exist).
func (h *Handler) ARMWebhookDelete(c echo.Context) error {
	r, w, err := h.armWebhook(c)
	var ae *ARMError
	if w != nil && w.Unreadable {
		err = nil // a webhook whose secrets are unreadable can still go
	}
	if errors.As(err, &ae) && r != nil {
		return c.NoContent(http.StatusNoContent)
	}
	if err != nil {
		return err
	}
	if err := h.Store.DeleteWebhook(c.Request().Context(), w); errors.Is(err, models.ErrNotFound) {
		return c.NoContent(http.StatusNoContent)
	} else if err != nil {
		return err
	}
	h.audit(c, actor(c), "webhook.delete", r.Name+"/"+w.Name, "api")
	return c.NoContent(http.StatusOK)
}
