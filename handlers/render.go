package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// render writes a templ component with the given status.
func render(c echo.Context, status int, comp templ.Component) error {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().WriteHeader(status)
	return comp.Render(c.Request().Context(), c.Response())
}

// isHTMX reports whether the request was made by htmx.
func isHTMX(c echo.Context) bool { return c.Request().Header.Get("HX-Request") == "true" }

// redirect sends the browser to url after a successful action: 303 for a
// plain form, HX-Redirect for an htmx request.
func redirect(c echo.Context, to string) error {
	if isHTMX(c) {
		c.Response().Header().Set("HX-Redirect", to)
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, to)
}

const flashCookie = "rh_flash"

// setFlash leaves a one-time message for the next page the browser shows.
func (h *Handler) setFlash(c echo.Context, msg string) {
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: url.QueryEscape(msg), Path: "/", MaxAge: 60,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: h.SecureCookies})
}

// popFlash reads and clears the one-time message.
func (h *Handler) popFlash(c echo.Context) string {
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.SecureCookies})
	msg, _ := url.QueryUnescape(ck.Value)
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

// page fills the common view model of a signed-in page.
func (h *Handler) page(c echo.Context, title, nav, registry string) views.Page {
	p := views.Page{Title: title, Nav: nav, Registry: registry, Flash: h.popFlash(c)}
	if s := session(c); s != nil {
		p.User, p.Role, p.CSRF = s.User.Username, s.User.Role, s.CSRFToken
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if regs, err := h.Store.ListRegistries(ctx, "", ""); err == nil {
		for _, r := range regs {
			p.Registries = append(p.Registries, r.Name)
		}
	}
	return p
}

// errorPage renders a full-page error; for htmx requests a toast-sized
// message instead.
func (h *Handler) errorPage(c echo.Context, code int, title, msg string) error {
	if isHTMX(c) {
		c.Response().Header().Set("HX-Reswap", "none")
		return c.String(code, msg)
	}
	p := h.page(c, title, "", "")
	return render(c, code, views.ErrorPage(views.ErrorVM{Page: p, Code: code, Message: msg}))
}

// notFoundOr maps ErrNotFound to a 404 page and anything else to an error
// echo's central handler logs once.
func (h *Handler) notFoundOr(c echo.Context, err error, what string) error {
	if errors.Is(err, models.ErrNotFound) {
		return h.errorPage(c, http.StatusNotFound, "Not found", what+" does not exist (or was deleted).")
	}
	if errors.Is(err, models.ErrSealed) {
		h.Log.Error("a webhook's secrets cannot be opened", "path", c.Request().URL.Path, "err", err)
		return h.errorPage(c, http.StatusInternalServerError, "Cannot decrypt", what+" has secrets the server's key cannot decrypt (a damaged row, or a different key). Delete it and create it again, or restart with the key it was sealed with.")
	}
	return err
}

const timeLayout = "2006-01-02 15:04:05 UTC"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func fmtNanos(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000 UTC") }

// NoStore marks the answers of pages that show secrets (ingest tokens, a
// new API token, a webhook's service URI and header values) and answers of
// API calls that return them Cache-Control: no-store, so neither the
// browser's cache nor a shared proxy keeps a copy.
func (h *Handler) NoStore() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
			return next(c)
		}
	}
}
