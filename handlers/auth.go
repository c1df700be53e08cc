package handlers

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

const (
	sessionCookie   = "rh_session"
	loginCSRFCookie = "rh_login_csrf"
	ctxSession      = "session"
)

// session returns the signed-in session of the request, or nil.
func session(c echo.Context) *models.Session {
	s, _ := c.Get(ctxSession).(*models.Session)
	return s
}

// actor names who acts, for the audit trail.
func actor(c echo.Context) string {
	if s := session(c); s != nil {
		return s.User.Username
	}
	if t, ok := c.Get(ctxTokenName).(string); ok {
		return "token:" + t
	}
	return "anonymous"
}

const ctxTokenName = "api_token_name"

// LoadSession attaches the session named by the cookie, if it is live.
func (h *Handler) LoadSession() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
				if s, err := h.Store.GetSession(c.Request().Context(), ck.Value); err == nil {
					c.Set(ctxSession, s)
				}
			}
			return next(c)
		}
	}
}

// RequireRole lets through signed-in users with at least role; others are
// sent to sign in (or get 403 when signed in with too small a role).
func (h *Handler) RequireRole(role string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			s := session(c)
			if s == nil {
				to := "/login"
				if c.Request().Method == http.MethodGet && c.Request().URL.Path != "/" {
					to += "?next=" + c.Request().URL.RequestURI()
				}
				if isHTMX(c) {
					c.Response().Header().Set("HX-Redirect", to)
					return c.NoContent(http.StatusUnauthorized)
				}
				return c.Redirect(http.StatusSeeOther, to)
			}
			if models.RoleRank(s.User.Role) < models.RoleRank(role) {
				return h.errorPage(c, http.StatusForbidden, "Not allowed",
					fmt.Sprintf("This needs the %s role; you are signed in as %s (%s).", role, s.User.Username, s.User.Role))
			}
			return next(c)
		}
	}
}

// CSRF rejects cross-origin and forged state-changing requests in two
// layers. First net/http's CrossOriginProtection: a browser's
// Sec-Fetch-Site (or, from older browsers, an Origin that is not this
// host or Deps.PublicURL) marks a request from another site, refused
// before anything else runs, the sign-in form included. It lets requests
// without those headers through (scripts, old browsers), so the session's
// token (form field _csrf or header X-CSRF-Token, which htmx sends) is
// still checked after it.
func (h *Handler) CSRF() echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	if u, err := url.Parse(h.PublicURL); err == nil && u.Host != "" {
		// Behind a proxy that rewrites Host, the browser's Origin is the
		// public one.
		_ = cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := cop.Check(c.Request()); err != nil {
				return h.errorPage(c, http.StatusForbidden, "Cross-site request refused",
					"This request came from another site. Open the portal and try again from there.")
			}
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			s := session(c)
			if s == nil {
				return next(c) // RequireRole answers
			}
			got := c.Request().Header.Get("X-CSRF-Token")
			if got == "" {
				got = c.FormValue("_csrf")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRFToken)) != 1 {
				return h.errorPage(c, http.StatusForbidden, "Form expired",
					"The form's security token did not match. Reload the page and try again.")
			}
			return next(c)
		}
	}
}

// clientIP is the client's address: the peer's, or, when the server was
// told which proxies to trust (echo's IPExtractor, set by the web package),
// what they forwarded. Without an extractor, echo's RealIP would believe an
// X-Forwarded-For from anyone, so it is not asked.
func clientIP(c echo.Context) string {
	if c.Echo().IPExtractor != nil {
		return c.RealIP()
	}
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}

// safeNext keeps post-login redirects on this site: it returns next when
// it is a path on this origin and "/" otherwise. Browsers read a Location
// more loosely than url.Parse (they drop tabs and newlines, take a backslash
// for "/", and some decode %2F and %5C), so next is refused when it has a
// scheme, a host or user info, a control or other unprintable character, or begins with "//" or
// "/" and a backslash, before or after percent-decoding.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	decoded, err := url.PathUnescape(next)
	if err != nil {
		return "/"
	}
	for _, s := range []string{next, decoded} {
		if strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") || !utf8.ValidString(s) || strings.ContainsFunc(s, notPrintable) {
			return "/"
		}
	}
	return next
}

// notPrintable is true for control characters and Unicode separators and
// formats (U+2028, bidi overrides) that have no place in a path.
func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

func (h *Handler) loginCSRF(c echo.Context) string {
	if ck, err := c.Cookie(loginCSRFCookie); err == nil && len(ck.Value) >= 16 {
		return ck.Value
	}
	tok := models.RandomToken(18)
	c.SetCookie(&http.Cookie{Name: loginCSRFCookie, Value: tok, Path: "/login", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.SecureCookies, MaxAge: 3600})
	return tok
}

// LoginForm shows the sign-in page.
func (h *Handler) LoginForm(c echo.Context) error {
	if session(c) != nil {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	vm := views.LoginVM{Page: views.Page{Title: "Sign in", CSRF: h.loginCSRF(c)}, Next: safeNext(c.QueryParam("next"))}
	return render(c, http.StatusOK, views.Login(vm))
}

// Login checks the credentials, throttles guessing and starts a session.
func (h *Handler) Login(c echo.Context) error {
	username := strings.TrimSpace(c.FormValue("username"))
	password := c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	fail := func(status int, msg string) error {
		vm := views.LoginVM{Page: views.Page{Title: "Sign in", CSRF: h.loginCSRF(c)}, Username: username, Next: next, Error: msg}
		return render(c, status, views.Login(vm))
	}
	ck, err := c.Cookie(loginCSRFCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.FormValue("_csrf"))) != 1 {
		return fail(http.StatusForbidden, "The sign-in form expired. Please try again.")
	}
	name, addr := strings.ToLower(username), clientIP(c)
	ctx := c.Request().Context()
	wait, err := h.SignInThrottle.Wait(ctx, name, addr)
	if err != nil {
		return err
	}
	if wait > 0 {
		retryAfter(c, wait)
		return fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins. Try again in %d minute(s).", int(wait.Minutes())+1))
	}
	if username == "" || password == "" {
		return fail(http.StatusUnprocessableEntity, "Enter your username and password.")
	}
	u, err := h.Store.Authenticate(c.Request().Context(), username, password)
	if errors.Is(err, models.ErrBadCredentials) {
		if err := h.SignInThrottle.Failed(ctx, name, addr); err != nil {
			return err
		}
		h.Log.Warn("sign-in failed", "username", username, "remote_addr", addr)
		return fail(http.StatusUnauthorized, "Invalid username or password.")
	}
	if err != nil {
		return err
	}
	if err := h.SignInThrottle.Succeeded(ctx, name, addr); err != nil {
		return err
	}
	tok, _, err := h.Store.CreateSession(c.Request().Context(), u, h.SessionTTL)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.SecureCookies, MaxAge: int(h.SessionTTL.Seconds())})
	h.audit(c, u.Username, "user.sign_in", u.Username, "")
	return c.Redirect(http.StatusSeeOther, next)
}

// Logout ends the session.
func (h *Handler) Logout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := h.Store.DeleteSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: h.SecureCookies})
	return c.Redirect(http.StatusSeeOther, "/login")
}

// audit records an action; a failure to record is logged, not returned: the
// action itself has happened.
func (h *Handler) audit(c echo.Context, who, action, target, detail string) {
	if err := h.Store.Audit(c.Request().Context(), who, action, target, detail); err != nil {
		h.Log.Error("audit failed", "err", err, "action", action, "target", target)
	}
}
