package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// TokenList shows the API tokens (admins).
func (h *Handler) TokenList(c echo.Context) error {
	return h.renderTokens(c, http.StatusOK, views.TokensVM{})
}

func (h *Handler) renderTokens(c echo.Context, status int, vm views.TokensVM) error {
	toks, err := h.Store.ListAPITokens(c.Request().Context())
	if err != nil {
		return err
	}
	vm.Page = h.page(c, "API tokens", "tokens", "")
	vm.APIBase = h.baseURL(c)
	for _, t := range toks {
		row := views.TokenRow{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Role: t.Role, CreatedBy: t.CreatedBy,
			CreatedAt: fmtTime(t.CreatedAt), LastUsed: "never", Revoked: t.RevokedAt != nil,
			RevokeURL: fmt.Sprintf("/tokens/%d/revoke", t.ID)}
		if t.LastUsedAt != nil {
			row.LastUsed = fmtTime(*t.LastUsedAt)
		}
		vm.Rows = append(vm.Rows, row)
	}
	return render(c, status, views.Tokens(vm))
}

// TokenCreate creates an API token and shows its value once.
func (h *Handler) TokenCreate(c echo.Context) error {
	name, role := c.FormValue("name"), c.FormValue("role")
	value, t, err := h.Store.CreateAPIToken(c.Request().Context(), name, role, actor(c))
	if err != nil {
		return h.renderTokens(c, http.StatusUnprocessableEntity, views.TokensVM{NewName: name, NewRole: role,
			Error: "Token name must be 1-64 characters and the role Reader, Contributor or Admin."})
	}
	h.audit(c, actor(c), "token.create", t.Name, "role="+t.Role+" prefix="+t.Prefix)
	return h.renderTokens(c, http.StatusOK, views.TokensVM{Created: value})
}

// TokenRevoke revokes an API token.
func (h *Handler) TokenRevoke(c echo.Context) error {
	id, _ := strconv.ParseUint(c.Param("id"), 10, 64)
	if err := h.Store.RevokeAPIToken(c.Request().Context(), uint(id)); err != nil {
		return h.notFoundOr(c, err, "The token")
	}
	h.audit(c, actor(c), "token.revoke", strconv.FormatUint(id, 10), "")
	h.setFlash(c, "Token revoked.")
	return redirect(c, "/tokens")
}

// UserList shows the accounts (admins).
func (h *Handler) UserList(c echo.Context) error {
	return h.renderUsers(c, http.StatusOK, views.UsersVM{})
}

func (h *Handler) renderUsers(c echo.Context, status int, vm views.UsersVM) error {
	users, err := h.Store.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	vm.Page = h.page(c, "Users", "users", "")
	for _, u := range users {
		vm.Rows = append(vm.Rows, views.UserRow{ID: u.ID, Username: u.Username, Role: u.Role, Self: u.ID == session(c).UserID})
	}
	return render(c, status, views.Users(vm))
}

// UserCreate adds an account.
func (h *Handler) UserCreate(c echo.Context) error {
	name, role := c.FormValue("username"), c.FormValue("role")
	u, err := h.Store.CreateUser(c.Request().Context(), name, c.FormValue("password"), role)
	if err != nil {
		text := trimStorePrefix(err.Error())
		if errors.Is(err, models.ErrAlreadyExists) {
			text = "A user named " + name + " already exists."
		}
		return h.renderUsers(c, http.StatusUnprocessableEntity, views.UsersVM{NewName: name, NewRole: role, Error: text})
	}
	h.audit(c, actor(c), "user.create", u.Username, "role="+u.Role)
	h.setFlash(c, "User "+u.Username+" added.")
	return redirect(c, "/users")
}

// UserSetRole changes an account's role; the last Admin cannot be demoted.
func (h *Handler) UserSetRole(c echo.Context) error {
	id, _ := strconv.ParseUint(c.Param("id"), 10, 64)
	role := c.FormValue("role")
	if err := h.Store.SetUserRole(c.Request().Context(), uint(id), role); err != nil {
		if models.IsNotFound(err) {
			return h.notFoundOr(c, err, "The user")
		}
		return h.renderUsers(c, http.StatusUnprocessableEntity, views.UsersVM{Error: trimStorePrefix(err.Error())})
	}
	h.audit(c, actor(c), "user.role", strconv.FormatUint(id, 10), "role="+role)
	h.setFlash(c, "Role saved.")
	return redirect(c, "/users")
}

// UserDelete removes an account (not one's own, not the last Admin).
func (h *Handler) UserDelete(c echo.Context) error {
	id, _ := strconv.ParseUint(c.Param("id"), 10, 64)
	if uint(id) == session(c).UserID {
		return h.renderUsers(c, http.StatusUnprocessableEntity, views.UsersVM{Error: "You cannot delete your own account."})
	}
	if err := h.Store.DeleteUser(c.Request().Context(), uint(id)); err != nil {
		if models.IsNotFound(err) {
			return h.notFoundOr(c, err, "The user")
		}
		return h.renderUsers(c, http.StatusUnprocessableEntity, views.UsersVM{Error: trimStorePrefix(err.Error())})
	}
	h.audit(c, actor(c), "user.delete", strconv.FormatUint(id, 10), "")
	h.setFlash(c, "User deleted.")
	return redirect(c, "/users")
}

// AuditList shows the audit trail (admins), newest first.
func (h *Handler) AuditList(c echo.Context) error {
	const size = 50
	page, _ := strconv.Atoi(c.QueryParam("page"))
	if page < 1 {
		page = 1
	}
	rows, total, err := h.Store.ListAudit(c.Request().Context(), (page-1)*size, size)
	if err != nil {
		return err
	}
	vm := views.AuditVM{Page: h.page(c, "Audit log", "audit", ""), PageN: page, Pages: int((total + size - 1) / size)}
	for _, a := range rows {
		vm.Rows = append(vm.Rows, views.AuditRow{At: fmtTime(a.At), Actor: a.Actor, Action: a.Action, Target: a.Target, Detail: a.Detail})
	}
	return render(c, http.StatusOK, views.Audit(vm))
}

// trimStorePrefix drops the layer prefixes ("store: create user: ") from
// a message shown to a person: what follows the last ": " is the rule.
func trimStorePrefix(s string) string {
	if j := strings.LastIndex(s, ": "); j >= 0 {
		return s[j+2:]
	}
	return s
}
