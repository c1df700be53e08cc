package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// RegistryList shows the registries, how to point the current one's event
// sources at Registry Hooks and, for admins, the Add form.
func (h *Handler) RegistryList(c echo.Context) error {
	return h.renderRegistries(c, http.StatusOK, views.RegistryFormVM{SKU: models.SKUStandard}, nil)
}

// loginServerForm is the login server form of one registry, re-rendered
// with the value given and the error.
type loginServerForm struct {
	registry, value, err string
}

func (h *Handler) renderRegistries(c echo.Context, status int, form views.RegistryFormVM, ls *loginServerForm) error {
	ctx := c.Request().Context()
	regs, err := h.Store.ListRegistries(ctx, "", "")
	if err != nil {
		return err
	}
	current := c.QueryParam("registry")
	if ls != nil {
		current = ls.registry
	}
	if current == "" {
		current = models.DefaultRegistryName
	}
	vm := views.RegistriesVM{Page: h.page(c, "Registries", "registries", ""), Form: form}
	for i := range regs {
		r := &regs[i]
		n, err := h.Store.CountWebhooks(ctx, r.ID)
		if err != nil {
			return err
		}
		vm.Rows = append(vm.Rows, views.RegistryRow{Name: r.Name, SKU: r.SKU, LoginServer: r.LoginServer, Location: r.Location,
			ResourceGroup: r.ResourceGroup, Webhooks: n, Quota: models.WebhookQuota(r.SKU), URL: webhooksURL(r)})
		if r.Name == current || vm.Ingest == nil {
			vm.Page.Registry = r.Name
			vm.Ingest = &views.IngestVM{Registry: r.Name, Token: models.Mask,
				DistributionURL: h.baseURL(c) + "/ingest/distribution/" + r.Name,
				EventsURL:       h.baseURL(c) + "/ingest/events/" + r.Name,
				RotateURL:       "/registries/" + r.Name + "/ingest-token",
				LoginServer:     r.LoginServer, LoginServerURL: "/registries/" + r.Name + "/login-server"}
			if ls != nil && strings.EqualFold(ls.registry, r.Name) {
				vm.Ingest.LoginServer, vm.Ingest.LoginServerError = ls.value, ls.err
			}
			if s := session(c); s != nil && models.RoleRank(s.User.Role) >= models.RoleRank(models.RoleAdmin) {
				if tok, err := h.Store.IngestToken(r); err == nil {
					vm.Ingest.Token = tok
				}
			}
		}
	}
	return render(c, status, views.Registries(vm))
}

// RegistryCreate adds a registry (admins). Invalid input re-renders the form
// with the messages and saves nothing.
func (h *Handler) RegistryCreate(c echo.Context) error {
	in := models.RegistryInput{Name: c.FormValue("name"), SKU: c.FormValue("sku"),
		LoginServer: c.FormValue("login_server"), Location: c.FormValue("location")}
	form := views.RegistryFormVM{Name: in.Name, SKU: in.SKU, LoginServer: in.LoginServer, Location: in.Location}
	errs := in.Validate()
	if len(errs) == 0 {
		reg, err := h.Store.CreateRegistry(c.Request().Context(), in)
		switch {
		case err == nil:
			h.audit(c, actor(c), "registry.create", reg.Name, "sku="+reg.SKU)
			h.setFlash(c, "Registry "+reg.Name+" added.")
			return redirect(c, webhooksURL(reg))
		case errors.Is(err, models.ErrAlreadyExists):
			errs["name"] = "A registry named " + in.Name + " already exists (names ignore case)."
		default:
			return err
		}
	}
	form.Errors = errs
	return h.renderRegistries(c, http.StatusUnprocessableEntity, form, nil)
}

// RegistryRotateToken gives a registry a new ingest token (admins); the old
// one stops working at once.
func (h *Handler) RegistryRotateToken(c echo.Context) error {
	reg, err := h.registry(c)
	if err != nil {
		return h.notFoundOr(c, err, "The registry "+c.Param("registry"))
	}
	if _, err := h.Store.RotateIngestToken(c.Request().Context(), reg); err != nil {
		return err
	}
	h.audit(c, actor(c), "registry.rotate_ingest_token", reg.Name, "")
	h.setFlash(c, "New ingest token for "+reg.Name+": update your registry's notification settings.")
	return redirect(c, "/registries?registry="+reg.Name)
}

// RegistrySetLoginServer changes a registry's login server (admins): the
// host[:port] its clients push to, which every payload names as
// request.host and receivers prefix to the repository to find the image
// they watch. An invalid value re-renders the form with the message and
// changes nothing; a change is audited with the old and new values.
func (h *Handler) RegistrySetLoginServer(c echo.Context) error {
	reg, err := h.registry(c)
	if err != nil {
		return h.notFoundOr(c, err, "The registry "+c.Param("registry"))
	}
	value := c.FormValue("login_server")
	ls, verr := models.ValidateLoginServer(value)
	if verr != nil {
		return h.renderRegistries(c, http.StatusUnprocessableEntity, views.RegistryFormVM{SKU: models.SKUStandard},
			&loginServerForm{registry: reg.Name, value: value, err: verr.Error()})
	}
	old, err := h.Store.SetLoginServer(c.Request().Context(), reg, ls)
	if err != nil {
		return err
	}
	if old != ls {
		h.audit(c, actor(c), "registry.login_server", reg.Name, old+" -> "+ls)
		h.setFlash(c, "Login server of "+reg.Name+" is now "+ls+": new events name it as request.host.")
	}
	return redirect(c, "/registries?registry="+reg.Name)
}
