package handlers

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/registryhooks/registryhooks/models"
)

// armRegistryJSON is the Registry resource, with the properties clients
// read (acr-webhooks.md 2.3). A registry served here is the same row the
// portal shows.
type armRegistryJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SKU        armSKU            `json:"sku"`
	SystemData *armSystemData    `json:"systemData,omitempty"`
	Properties armRegistryProps  `json:"properties"`
}

type armSKU struct {
	Name string `json:"name"`
	Tier string `json:"tier,omitempty"`
}

type armRegistryProps struct {
	LoginServer         string `json:"loginServer"`
	CreationDate        string `json:"creationDate"`
	ProvisioningState   string `json:"provisioningState"`
	AdminUserEnabled    bool   `json:"adminUserEnabled"`
	PublicNetworkAccess string `json:"publicNetworkAccess"`
}

func armRegistry(r *models.Registry) armRegistryJSON {
	return armRegistryJSON{
		ID: armRegistryPath(r), Name: r.Name, Type: armRegistryType, Location: r.Location, Tags: r.Tags(),
		SKU:        armSKU{Name: r.SKU, Tier: r.SKU},
		SystemData: &armSystemData{CreatedAt: armTime(r.CreatedAt), LastModifiedAt: armTime(r.UpdatedAt)},
		Properties: armRegistryProps{LoginServer: r.LoginServer, CreationDate: armTime(r.CreatedAt),
			ProvisioningState: "Succeeded", PublicNetworkAccess: "Enabled"},
	}
}

type armRegistryList struct {
	Value []armRegistryJSON `json:"value"`
}

func (h *Handler) armListRegistries(c echo.Context, rg string) error {
	regs, err := h.Store.ListRegistries(c.Request().Context(), c.Param("sub"), rg)
	if err != nil {
		return err
	}
	out := armRegistryList{Value: []armRegistryJSON{}}
	for i := range regs {
		out.Value = append(out.Value, armRegistry(&regs[i]))
	}
	return c.JSON(http.StatusOK, out)
}

// ARMRegistryList is Registries_List: every registry of the subscription.
// There are few, so there is one page.
func (h *Handler) ARMRegistryList(c echo.Context) error { return h.armListRegistries(c, "") }

// ARMRegistryListByResourceGroup is Registries_ListByResourceGroup.
func (h *Handler) ARMRegistryListByResourceGroup(c echo.Context) error {
	return h.armListRegistries(c, c.Param("rg"))
}

// ARMRegistryGet is Registries_Get.
func (h *Handler) ARMRegistryGet(c echo.Context) error {
	r, err := h.armRegistry(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, armRegistry(r))
}

// armRegistryPutBody is the Registry a PUT sends; properties are accepted
// and ignored (Registry Hooks has none of ACR's storage settings).
type armRegistryPutBody struct {
	Location *string           `json:"location"`
	Tags     map[string]string `json:"tags"`
	SKU      *armSKU           `json:"sku"`
}

// ARMRegistryCreate is Registries_Create (PUT): it creates the registry in
// the path's subscription and resource group, or updates SKU and tags of the
// one there; 200 with provisioningState Succeeded either way. Registry names
// are unique per server, so a name taken in another resource group is 409.
// The location of an existing registry cannot change.
func (h *Handler) ARMRegistryCreate(c echo.Context) error {
	var body armRegistryPutBody
	if err := armBind(c, &body); err != nil {
		return err
	}
	name, rg, sub := c.Param("registry"), c.Param("rg"), c.Param("sub")
	if body.Location == nil || strings.TrimSpace(*body.Location) == "" {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "location is required.")
	}
	if body.SKU == nil || body.SKU.Name == "" {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "sku is required: {\"name\": \"Basic\" | \"Standard\" | \"Premium\"}.")
	}
	ctx := c.Request().Context()
	existing, err := h.Store.GetRegistry(ctx, name)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	in := models.RegistryInput{Name: name, SKU: body.SKU.Name, Location: *body.Location, SubscriptionID: sub, ResourceGroup: rg, Tags: body.Tags}
	if existing != nil {
		if !strings.EqualFold(existing.SubscriptionID, sub) || !strings.EqualFold(existing.ResourceGroup, rg) {
			return armErr(http.StatusConflict, ARMCodeConflict, "The registry name %q is already in use on this server (registry names are unique, as in ACR).", name)
		}
		if !armLocationEqual(existing.Location, *body.Location) {
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "location of registry %q cannot change from %q to %q.", existing.Name, existing.Location, *body.Location)
		}
		in.Name, in.Location, in.LoginServer = existing.Name, existing.Location, existing.LoginServer
		in.SubscriptionID, in.ResourceGroup = existing.SubscriptionID, existing.ResourceGroup
	}
	if errs := in.Validate(); len(errs) > 0 {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "%s", joinFieldErrors(errs))
	}
	var r *models.Registry
	action := "registry.create"
	if existing != nil {
		action = "registry.update"
		r, err = h.Store.UpdateRegistry(ctx, existing.Name, in)
	} else {
		r, err = h.Store.CreateRegistry(ctx, in)
	}
	if err != nil {
		return h.armRegistryWriteError(err, in)
	}
	h.audit(c, actor(c), action, r.Name, "api; sku="+r.SKU)
	return c.JSON(http.StatusOK, armRegistry(r))
}

func (h *Handler) armRegistryWriteError(err error, in models.RegistryInput) error {
	var qe *models.QuotaError
	switch {
	case errors.As(err, &qe):
		return armErr(http.StatusConflict, ARMCodeQuota, "Quota exceeded for resource type webhooks for the registry SKU %s: registry %q has more webhooks than the %d that SKU allows. Delete webhooks first.", qe.SKU, in.Name, qe.Limit)
	case errors.Is(err, models.ErrAlreadyExists):
		return armErr(http.StatusConflict, ARMCodeConflict, "The registry name %q is already in use on this server.", in.Name)
	}
	return err
}

// joinFieldErrors renders RegistryInput.Validate's messages in a stable order.
func joinFieldErrors(errs map[string]string) string {
	var parts []string
	for _, k := range []string{"name", "sku", "login_server", "location", "resource_group"} {
		if m, ok := errs[k]; ok {
			parts = append(parts, m)
			delete(errs, k)
		}
	}
	for _, m := range errs {
		parts = append(parts, m)
	}
	return strings.Join(parts, "; ")
}

// armRegistryPatchBody is RegistryUpdateParameters: nil fields stay.
type armRegistryPatchBody struct {
	Tags *map[string]string `json:"tags"`
	SKU  *armSKU            `json:"sku"`
}

// ARMRegistryUpdate is Registries_Update (PATCH): SKU and tags. Moving to a
// SKU whose quota is below the registry's webhook count is 409 QuotaExceeded.
func (h *Handler) ARMRegistryUpdate(c echo.Context) error {
	r, err := h.armRegistry(c)
	if err != nil {
		return err
	}
	var body armRegistryPatchBody
	if err := armBind(c, &body); err != nil {
		return err
	}
	in := models.RegistryInput{Name: r.Name, SKU: r.SKU, LoginServer: r.LoginServer, Location: r.Location,
		SubscriptionID: r.SubscriptionID, ResourceGroup: r.ResourceGroup, Tags: r.Tags()}
	if body.Tags != nil {
		in.Tags = *body.Tags
	}
	if body.SKU != nil && body.SKU.Name != "" {
		in.SKU = body.SKU.Name
	}
	if errs := in.Validate(); len(errs) > 0 {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "%s", joinFieldErrors(errs))
	}
	r, err = h.Store.UpdateRegistry(c.Request().Context(), r.Name, in)
	if err != nil {
		return h.armRegistryWriteError(err, in)
	}
	h.audit(c, actor(c), "registry.update", r.Name, "api; sku="+r.SKU)
	return c.JSON(http.StatusOK, armRegistry(r))
}

// ARMRegistryDelete is Registries_Delete: the registry, its webhooks and
// their history go; 200, or 204 when there was no such registry here.
func (h *Handler) ARMRegistryDelete(c echo.Context) error {
	r, err := h.armRegistry(c)
	var ae *ARMError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return c.NoContent(http.StatusNoContent)
	}
	if err != nil {
		return err
	}
	if err := h.Store.DeleteRegistry(c.Request().Context(), r.Name); errors.Is(err, models.ErrNotFound) {
		return c.NoContent(http.StatusNoContent)
	} else if err != nil {
		return err
	}
	h.audit(c, actor(c), "registry.delete", r.Name, "api")
	return c.NoContent(http.StatusOK)
}

type armUsage struct {
	Name         string `json:"name"`
	Limit        int64  `json:"limit"`
	CurrentValue int64  `json:"currentValue"`
	Unit         string `json:"unit"`
}

// ARMRegistryListUsages is Registries_ListUsages: the webhook quota of the
// registry's SKU and how much of it is used.
func (h *Handler) ARMRegistryListUsages(c echo.Context) error {
	r, err := h.armRegistry(c)
	if err != nil {
		return err
	}
	n, err := h.Store.CountWebhooks(c.Request().Context(), r.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string][]armUsage{"value": {
		{Name: "Webhooks", Limit: int64(models.WebhookQuota(r.SKU)), CurrentValue: n, Unit: "Count"},
	}})
}

// armGenericResource is an entry of the generic resources listing.
type armGenericResource struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
	SKU      armSKU            `json:"sku"`
}

var (
	armFilterType = regexp.MustCompile(`(?i)resourceType\s+eq\s+'([^']*)'`)
	armFilterName = regexp.MustCompile(`(?i)\bname\s+eq\s+'([^']*)'`)
)

// ARMResourceList is the part of Microsoft.Resources' Resources_List that
// the az CLI uses to find a registry's resource group: the subscription's
// registries, narrowed by "resourceType eq '…'" and "name eq '…'" in
// $filter. Other resource types have no resources here.
func (h *Handler) ARMResourceList(c echo.Context) error {
	filter := c.QueryParam("$filter")
	out := map[string][]armGenericResource{"value": {}}
	if m := armFilterType.FindStringSubmatch(filter); m != nil && !strings.EqualFold(m[1], armRegistryType) {
		return c.JSON(http.StatusOK, out)
	}
	regs, err := h.Store.ListRegistries(c.Request().Context(), c.Param("sub"), "")
	if err != nil {
		return err
	}
	name := ""
	if m := armFilterName.FindStringSubmatch(filter); m != nil {
		name = m[1]
	}
	for i := range regs {
		r := &regs[i]
		if name != "" && !strings.EqualFold(name, r.Name) {
			continue
		}
		out["value"] = append(out["value"], armGenericResource{ID: armRegistryPath(r), Name: r.Name, Type: armRegistryType,
			Location: r.Location, Tags: r.Tags(), SKU: armSKU{Name: r.SKU, Tier: r.SKU}})
	}
	return c.JSON(http.StatusOK, out)
}
