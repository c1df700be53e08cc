package handlers

// The ARM-compatible API: the Microsoft.ContainerRegistry provider's
// registry and webhook operations at Azure's paths, so the Azure SDKs and
// scripts written for ACR work against Registry Hooks. This file holds what
// every ARM handler shares: the middleware (errors, auth, api-version), the
// error shape, body decoding, resource ids and paging.

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/registryhooks/registryhooks/models"
)

// ARMAPIVersions are the api-version values the ARM API accepts. The webhook
// and registry shapes served are the same for all of them (acr-webhooks.md
// 2.1); any other value is refused with InvalidApiVersionParameter.
var ARMAPIVersions = []string{
	"2017-10-01", "2019-05-01", "2019-12-01-preview", "2020-11-01-preview",
	"2021-06-01-preview", "2021-08-01-preview", "2021-09-01", "2021-12-01-preview",
	"2022-02-01-preview", "2022-12-01", "2023-01-01-preview", "2023-06-01-preview",
	"2023-07-01", "2023-08-01-preview", "2023-11-01-preview", "2024-11-01-preview",
	"2025-03-01-preview", "2025-04-01", "2025-05-01-preview", "2025-11-01",
	"2026-03-01-preview", "2026-09-01-preview",
}

// ARM error codes. Every 400 about the request's content (malformed JSON, a
// broken validation rule, a bad skip token) uses ARMCodeInvalidContent.
const (
	ARMCodeInvalidContent      = "InvalidRequestContent"
	ARMCodeMissingAPIVersion   = "MissingApiVersionParameter"
	ARMCodeInvalidAPIVersion   = "InvalidApiVersionParameter"
	ARMCodeInvalidSubscription = "InvalidSubscriptionId"
	ARMCodeAuthFailed          = "AuthenticationFailed"
	ARMCodeInvalidToken        = "InvalidAuthenticationToken"
	ARMCodeAuthorization       = "AuthorizationFailed"
	ARMCodeNotFound            = "ResourceNotFound"
	ARMCodeQuota               = "QuotaExceeded"
	ARMCodeConflict            = "Conflict"
	ARMCodeUnsupportedMedia    = "UnsupportedMediaType"
	ARMCodeTooLarge            = "RequestEntityTooLarge"
	ARMCodeMethodNotAllowed    = "MethodNotAllowed"
	ARMCodeTooManyRequests     = "TooManyRequests"
	ARMCodeInternal            = "InternalServerError"
)

const (
	armProvider     = "Microsoft.ContainerRegistry"
	armRegistryType = "Microsoft.ContainerRegistry/registries"
	armWebhookType  = "Microsoft.ContainerRegistry/registries/webhooks"
	// armMaxBody caps ARM request bodies; a webhook fits in a few KiB.
	armMaxBody = 1 << 20
	// armPageSize is the default page of the paged lists (webhooks, events);
	// clients may ask for 1-100 with $top.
	armPageSize    = 20
	armMaxPageSize = 100
	// armBootstrapName names the REGISTRYHOOKS_API_TOKEN caller in the
	// audit trail ("token:bootstrap").
	armBootstrapName = "bootstrap"
)

// ARMError is an error the ARM middleware renders as
// {"error":{"code","message"}} with the x-ms-error-code header.
type ARMError struct {
	Status  int
	Code    string
	Message string
}

func (e *ARMError) Error() string { return fmt.Sprintf("arm: %d %s: %s", e.Status, e.Code, e.Message) }

func armErr(status int, code, format string, args ...any) *ARMError {
	return &ARMError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

type armErrorBody struct {
	Error armErrorDetail `json:"error"`
}

type armErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeARMError(c echo.Context, e *ARMError) error {
	c.Response().Header().Set("x-ms-error-code", e.Code)
	if e.Status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate,
			`Bearer authorization_uri="", error="invalid_token", error_description="`+e.Message+`"`)
	}
	return c.JSON(e.Status, armErrorBody{Error: armErrorDetail{Code: e.Code, Message: e.Message}})
}

// ARMErrors renders every error of the ARM routes in ARM's shape: an
// *ARMError as it is, echo's own errors (no route, method not allowed, body
// too large) mapped to a code, anything else as a 500 whose cause is logged
// and not shown. It goes before the other ARM middleware, so it sees their
// errors too.
func (h *Handler) ARMErrors() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			if err == nil {
				return nil
			}
			if c.Response().Committed {
				h.Log.Error("arm: error after response started", "path", c.Request().URL.Path, "err", err)
				return nil
			}
			var ae *ARMError
			var he *echo.HTTPError
			switch {
			case errors.As(err, &ae):
			case errors.As(err, &he):
				ae = armFromHTTPError(c, he)
			default:
				h.Log.Error("arm: request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
				ae = armErr(http.StatusInternalServerError, ARMCodeInternal, "The server could not complete the request. See the server log for details.")
			}
			return writeARMError(c, ae)
		}
	}
}

func armFromHTTPError(c echo.Context, he *echo.HTTPError) *ARMError {
	switch he.Code {
	case http.StatusNotFound:
		return armErr(http.StatusNotFound, ARMCodeNotFound, "No ARM operation of the %s provider is served at %s %s.", armProvider, c.Request().Method, c.Request().URL.Path)
	case http.StatusMethodNotAllowed:
		return armErr(http.StatusMethodNotAllowed, ARMCodeMethodNotAllowed, "The method %s is not allowed on %s.", c.Request().Method, c.Request().URL.Path)
	case http.StatusRequestEntityTooLarge:
		return armErr(http.StatusRequestEntityTooLarge, ARMCodeTooLarge, "The request body is larger than %d bytes.", armMaxBody)
	case http.StatusUnsupportedMediaType:
		return armErr(http.StatusUnsupportedMediaType, ARMCodeUnsupportedMedia, "The request body must be application/json.")
	}
	if he.Code >= 500 {
		return armErr(he.Code, ARMCodeInternal, "The server could not complete the request.")
	}
	return armErr(he.Code, http.StatusText(he.Code), "%v", he.Message)
}

// ARMAuth admits requests that carry "Authorization: Bearer <token>" with
// the bootstrap token (Deps.APIToken, compared in constant time) or a live
// token created in the portal. A Reader token may only read (GET, and POST
// listEvents); a token with another role may do everything. Failures are
// 401 with a WWW-Authenticate challenge, as ARM answers. An address that
// sent tokenFailBurst wrong tokens gets 429 with Retry-After, whatever it
// sends, until its bucket refills (one guess per tokenFailEvery).
func (h *Handler) ARMAuth() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			auth := c.Request().Header.Get(echo.HeaderAuthorization)
			if auth == "" {
				return armErr(http.StatusUnauthorized, ARMCodeAuthFailed, "Authentication failed. The 'Authorization' header is missing.")
			}
			scheme, token, ok := strings.Cut(auth, " ")
			token = strings.TrimSpace(token)
			if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
				return armErr(http.StatusUnauthorized, ARMCodeAuthFailed, "Authentication failed. The 'Authorization' header is not of the form 'Bearer <token>'.")
			}
			addr := clientIP(c)
			if wait := h.tokenFails.wait(addr); wait > 0 {
				retryAfter(c, wait)
				return armErr(http.StatusTooManyRequests, ARMCodeTooManyRequests, "%s", tooManyTokenFailures(wait))
			}
			name, role := "", ""
			if h.APIToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(h.APIToken)) == 1 {
				name, role = armBootstrapName, models.RoleAdmin
			} else if t, err := h.Store.AuthenticateAPIToken(c.Request().Context(), token); err == nil {
				name, role = t.Name, t.Role
			} else if !errors.Is(err, models.ErrNotFound) && !errors.Is(err, models.ErrTokenRevoked) {
				return fmt.Errorf("arm: authenticate: %w", err)
			}
			if name == "" {
				h.tokenFails.take(addr)
				return armErr(http.StatusUnauthorized, ARMCodeInvalidToken, "The access token is invalid or has been revoked.")
			}
			if need := armRoleNeeded(c); models.RoleRank(role) < models.RoleRank(need) {
				return armErr(http.StatusForbidden, ARMCodeAuthorization, "The API token '%s' has the %s role; %s on %s needs the %s role.", name, role, c.Request().Method, c.Request().URL.Path, need)
			}
			// actor(c) reads the name, so the audit trail and created_by
			// say "token:<name>".
			c.Set(ctxTokenName, name)
			return next(c)
		}
	}
}

// armRoleNeeded is the least role a request needs, as in the portal:
// reading (and listEvents) is for Readers, webhook changes and pings for
// Contributors, registry changes for Admins.
func armRoleNeeded(c echo.Context) string {
	switch {
	case armReadOnly(c.Request()):
		return models.RoleReader
	case strings.Contains(c.Path(), "/webhooks"):
		return models.RoleContributor
	}
	return models.RoleAdmin
}

func armReadOnly(r *http.Request) bool {
	return r.Method == http.MethodGet || r.Method == http.MethodHead ||
		(r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/listEvents"))
}

var (
	armVersionPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview|-beta|-alpha)?$`)
	armUUID           = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// ARMAPIVersion checks the api-version query parameter against
// ARMAPIVersions and the subscription id in the path. The generic resources
// listing (GET /subscriptions/{sub}/resources) belongs to another provider,
// so there any well-formed version is accepted.
func (h *Handler) ARMAPIVersion() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			v := c.QueryParam("api-version")
			if v == "" {
				return armErr(http.StatusBadRequest, ARMCodeMissingAPIVersion, "The api-version query parameter (?api-version=) is required for all requests.")
			}
			generic := strings.HasSuffix(c.Path(), "/resources")
			if !(slices.Contains(ARMAPIVersions, v) || (generic && armVersionPattern.MatchString(v))) {
				return armErr(http.StatusBadRequest, ARMCodeInvalidAPIVersion,
					"The resource type 'registries' could not be found in the namespace '%s' for api version '%s'. The supported api-versions are '%s'.",
					armProvider, v, strings.Join(ARMAPIVersions, ","))
			}
			if sub := c.Param("sub"); sub != "" && !armUUID.MatchString(sub) {
				return armErr(http.StatusBadRequest, ARMCodeInvalidSubscription, "The provided subscription identifier '%s' is malformed or invalid.", sub)
			}
			return next(c)
		}
	}
}

// armBind decodes a JSON request body into v. Unknown fields are ignored, as
// ARM does; an empty, malformed, oversized or non-JSON body is an error in
// ARM's shape that names the problem.
func armBind(c echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")) {
			return armErr(http.StatusUnsupportedMediaType, ARMCodeUnsupportedMedia, "The content type '%s' is not supported; send application/json.", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, armMaxBody))
	if err != nil {
		// The route's BodyLimit middleware cuts a chunked body (no
		// Content-Length) with its own 413 error; MaxBytesReader, the rest.
		var mbe *http.MaxBytesError
		var he *echo.HTTPError
		if errors.As(err, &mbe) || (errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge) {
			return armErr(http.StatusRequestEntityTooLarge, ARMCodeTooLarge, "The request body is larger than %d bytes.", armMaxBody)
		}
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "The request body could not be read: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "The request content was empty; a JSON object is required.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "The request content was invalid and could not be deserialized: malformed JSON at byte %d: %v.", se.Offset, se)
		case errors.As(err, &te):
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "The request content was invalid and could not be deserialized: field '%s' must be a JSON %s, not %s.", te.Field, armJSONKind(te.Type.Kind().String()), te.Value)
		}
		return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "The request content was invalid and could not be deserialized: %v.", err)
	}
	return nil
}

func armJSONKind(goKind string) string {
	switch goKind {
	case "map", "struct", "ptr":
		return "object"
	case "slice", "array":
		return "array"
	case "int", "int64", "uint", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return goKind
}

// armRegistryPath is the id of a registry; armWebhookPath of a webhook.
func armRegistryPath(r *models.Registry) string {
	return "/subscriptions/" + r.SubscriptionID + "/resourceGroups/" + r.ResourceGroup +
		"/providers/" + armRegistryType + "/" + r.Name
}

func armWebhookPath(r *models.Registry, webhook string) string {
	return armRegistryPath(r) + "/webhooks/" + webhook
}

func armNotFound(rg, resource string) *ARMError {
	return armErr(http.StatusNotFound, ARMCodeNotFound,
		"The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", armRegistryType, resource, rg)
}

// armRegistry loads the registry named in the path. A registry that exists
// under another subscription or resource group is not found here, as in ARM.
func (h *Handler) armRegistry(c echo.Context) (*models.Registry, error) {
	name, rg := c.Param("registry"), c.Param("rg")
	r, err := h.Store.GetRegistry(c.Request().Context(), name)
	if errors.Is(err, models.ErrNotFound) {
		return nil, armNotFound(rg, name)
	}
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(r.SubscriptionID, c.Param("sub")) || !strings.EqualFold(r.ResourceGroup, rg) {
		return nil, armNotFound(rg, name)
	}
	return r, nil
}

// armWebhook loads the registry and the webhook named in the path.
func (h *Handler) armWebhook(c echo.Context) (*models.Registry, *models.Webhook, error) {
	r, err := h.armRegistry(c)
	if err != nil {
		return nil, nil, err
	}
	name := c.Param("webhook")
	w, err := h.Store.GetWebhook(c.Request().Context(), r, name)
	if errors.Is(err, models.ErrNotFound) {
		return r, nil, armNotFound(c.Param("rg"), r.Name+"/webhooks/"+name)
	}
	if errors.Is(err, models.ErrSealed) {
		h.Log.Error("arm: a webhook's secrets cannot be opened", "webhook", name, "err", err)
		// w is the unreadable webhook: Delete may still remove it.
		return r, w, armErr(http.StatusInternalServerError, ARMCodeInternal,
			"The webhook '%s' has secrets the server's key cannot decrypt (a damaged row, or a different key). Delete it and create it again, or restart the server with the key it was sealed with.", name)
	}
	if err != nil {
		return nil, nil, err
	}
	return r, w, nil
}

// armPage reads $top and $skipToken. The skip token is opaque to clients:
// base64url of the position after the last item of the previous page.
func armPage(c echo.Context) (top int, skip string, err error) {
	top = armPageSize
	if s := c.QueryParam("$top"); s != "" {
		n, convErr := strconv.Atoi(s)
		if convErr != nil || n < 1 || n > armMaxPageSize {
			return 0, "", armErr(http.StatusBadRequest, ARMCodeInvalidContent, "$top must be a whole number from 1 to %d, not %q.", armMaxPageSize, s)
		}
		top = n
	}
	if s := c.QueryParam("$skipToken"); s != "" {
		b, decErr := base64.RawURLEncoding.DecodeString(s)
		if decErr != nil || len(b) == 0 {
			return 0, "", armErr(http.StatusBadRequest, ARMCodeInvalidContent, "The $skipToken %q is not one this server issued; start again from the first page.", s)
		}
		skip = string(b)
	}
	return top, skip, nil
}

// armNextLink is the absolute URL of the next page: the same path with the
// api-version, $top (when the client gave one) and the skip token, so a GET
// on it verbatim (as the SDK pagers do) continues the listing.
func (h *Handler) armNextLink(c echo.Context, position string) string {
	q := url.Values{}
	q.Set("api-version", c.QueryParam("api-version"))
	if t := c.QueryParam("$top"); t != "" {
		q.Set("$top", t)
	}
	q.Set("$skipToken", base64.RawURLEncoding.EncodeToString([]byte(position)))
	r := c.Request()
	return h.baseURL(c) + r.URL.EscapedPath() + "?" + q.Encode()
}

// armLocationEqual compares ARM locations the way ARM does: "West US" and
// "westus" are the same region.
func armLocationEqual(a, b string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
	return norm(a) == norm(b)
}
