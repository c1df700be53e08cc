package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/web/acr"
)

// Error codes of the ingest endpoints, in ARM's error shape
// {"error":{"code","message"}}.
const (
	IngestCodeInvalidRequest       = "InvalidRequest"
	IngestCodeUnauthorized         = "Unauthorized"
	IngestCodeForbidden            = "Forbidden"
	IngestCodeRegistryNotFound     = "RegistryNotFound"
	IngestCodePayloadTooLarge      = "PayloadTooLarge"
	IngestCodeUnsupportedMediaType = "UnsupportedMediaType"
	IngestCodeTooManyRequests      = "TooManyRequests"
)

// The media types a Distribution registry sends its notification envelopes
// as: v1 by registry:2, v2 by distribution v3.
const (
	distributionMediaTypeV1 = "application/vnd.docker.distribution.events.v1+json"
	distributionMediaTypeV2 = "application/vnd.docker.distribution.events.v2+json"
)

// eventIngester is a dispatcher that commits the events of concurrent
// ingest requests in one transaction (group commit) and wakes itself after.
// When Deps.Dispatcher is not one, ingest writes through the store.
type eventIngester interface {
	Ingest(ctx context.Context, events []*models.Event) ([]models.IngestResult, error)
}

// IngestedEvent is one event of a 202 answer.
type IngestedEvent struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	// Duplicate is true when an event with this id was ingested before;
	// nothing new was queued for it.
	Duplicate bool `json:"duplicate"`
	// Deliveries is how many webhooks it was queued for.
	Deliveries int `json:"deliveries"`
}

func ingestError(c echo.Context, status int, code, format string, a ...any) error {
	if status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="registryhooks-ingest"`)
	}
	return c.JSON(status, map[string]any{"error": map[string]string{"code": code, "message": fmt.Sprintf(format, a...)}})
}

// ingestRegistry authenticates an ingest request and finds its registry.
// It accepts "Authorization: Bearer <token>" with the registry's own ingest
// token or the server-wide one (both compared in constant time). It writes
// the error answer itself and returns nil when the request must stop: 401
// without or with a wrong token, 404 for an unknown registry (only to a
// caller holding the server-wide token; anyone else learns nothing), 429
// with Retry-After for an address that sent too many wrong tokens.
func (h *Handler) ingestRegistry(c echo.Context) (*models.Registry, error) {
	auth := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, ingestError(c, http.StatusUnauthorized, IngestCodeUnauthorized, "An 'Authorization: Bearer <ingest token>' header is required. The registry's ingest token is shown in the portal.")
	}
	addr := clientIP(c)
	if wait := h.tokenFails.wait(addr); wait > 0 {
		retryAfter(c, wait)
		return nil, ingestError(c, http.StatusTooManyRequests, IngestCodeTooManyRequests, "%s", tooManyTokenFailures(wait))
	}
	global := h.IngestToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(h.IngestToken)) == 1
	name := c.Param("registry")
	reg, err := h.Store.GetRegistry(c.Request().Context(), name)
	if errors.Is(err, models.ErrNotFound) {
		if global {
			return nil, ingestError(c, http.StatusNotFound, IngestCodeRegistryNotFound, "The registry '%s' does not exist.", name)
		}
		h.tokenFails.take(addr)
		return nil, ingestError(c, http.StatusUnauthorized, IngestCodeUnauthorized, "The ingest token is not valid for registry '%s'.", name)
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: find registry %q: %w", name, err)
	}
	if !global {
		own, err := h.Store.IngestToken(reg)
		if err != nil {
			return nil, fmt.Errorf("ingest: token of registry %q: %w", name, err)
		}
		if own == "" || subtle.ConstantTimeCompare([]byte(token), []byte(own)) != 1 {
			if ok, err := h.ingestByAPIToken(c, reg, token); !ok {
				return nil, err
			}
		}
	}
	return reg, nil
}

// ingestByAPIToken admits an API token created in the portal, with the
// same roles as everywhere: a Contributor or Admin token may post events, a
// Reader token may not (403). Anything else is 401. When it refuses (false)
// it has written the answer, or returns the error to log.
func (h *Handler) ingestByAPIToken(c echo.Context, reg *models.Registry, token string) (bool, error) {
	t, err := h.Store.AuthenticateAPIToken(c.Request().Context(), token)
	switch {
	case err == nil && models.RoleRank(t.Role) >= models.RoleRank(models.RoleContributor):
		c.Set(ctxTokenName, t.Name)
		return true, nil
	case err == nil:
		return false, ingestError(c, http.StatusForbidden, IngestCodeForbidden,
			"The API token '%s' has the %s role; posting events needs Contributor or Admin.", t.Name, t.Role)
	case errors.Is(err, models.ErrNotFound) || errors.Is(err, models.ErrTokenRevoked):
		h.tokenFails.take(clientIP(c))
		return false, ingestError(c, http.StatusUnauthorized, IngestCodeUnauthorized, "The ingest token is not valid for registry '%s'.", reg.Name)
	}
	return false, fmt.Errorf("ingest: authenticate api token: %w", err)
}

// ingestBody checks the content type against accepted and reads the body up
// to Deps.MaxIngestBody. On a failure it writes the answer (415, 413, 400)
// and returns a nil body.
func (h *Handler) ingestBody(c echo.Context, accepted ...string) ([]byte, error) {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		ok := false
		for _, a := range accepted {
			ok = ok || (err == nil && strings.EqualFold(mt, a))
		}
		if !ok {
			return nil, ingestError(c, http.StatusUnsupportedMediaType, IngestCodeUnsupportedMediaType,
				"Content-Type '%s' is not accepted; send %s.", ct, strings.Join(accepted, " or "))
		}
	}
	r := c.Request()
	if r.ContentLength > h.MaxIngestBody {
		return nil, ingestError(c, http.StatusRequestEntityTooLarge, IngestCodePayloadTooLarge, "The body is larger than the limit of %d bytes.", h.MaxIngestBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.MaxIngestBody+1))
	if err != nil {
		return nil, ingestError(c, http.StatusBadRequest, IngestCodeInvalidRequest, "The body could not be read: %v.", err)
	}
	if int64(len(body)) > h.MaxIngestBody {
		return nil, ingestError(c, http.StatusRequestEntityTooLarge, IngestCodePayloadTooLarge, "The body is larger than the limit of %d bytes.", h.MaxIngestBody)
	}
	if len(body) == 0 {
		return nil, ingestError(c, http.StatusBadRequest, IngestCodeInvalidRequest, "The body is empty.")
	}
	return body, nil
}

// maxUserAgent caps the ingest client's User-Agent copied into payloads.
const maxUserAgent = 512

// commitEvents renders and stores events for reg in one transaction (shared
// with concurrent requests when the dispatcher group-commits), then wakes
// the dispatcher. Events without an id get a new UUID; every event's
// request names reg's login server as its host (acr.Event.Stamp), with
// userAgent (the ingest request's) when the event names no client.
func (h *Handler) commitEvents(ctx context.Context, reg *models.Registry, evs []acr.Event, source, userAgent string) ([]IngestedEvent, error) {
	if userAgent == "" {
		userAgent = "unknown"
	}
	if len(userAgent) > maxUserAgent {
		userAgent = userAgent[:maxUserAgent]
	}
	origin := acr.Origin{LoginServer: reg.LoginServer, UserAgent: userAgent}
	rows := make([]*models.Event, 0, len(evs))
	for i := range evs {
		ev := &evs[i]
		if ev.ID == "" {
			ev.ID = uuid.NewString()
		}
		ev.Stamp(origin)
		if ev.Action == models.ActionDelete && ev.MediaType == "" && ev.Digest != "" {
			// Distribution leaves a delete's media type empty; take the one
			// its push had, when we saw it.
			if mt, err := h.Store.PushedMediaType(ctx, reg.ID, ev.Repository, ev.Digest); err == nil {
				ev.MediaType = mt
			}
		}
		row, err := ev.Model(reg.ID, source)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		rows = append(rows, row)
	}
	var res []models.IngestResult
	var err error
	if ing, ok := h.Dispatcher.(eventIngester); ok {
		res, err = ing.Ingest(ctx, rows)
	} else {
		res, err = h.Store.IngestEvents(ctx, rows)
		if err == nil && h.Dispatcher != nil {
			h.Dispatcher.Kick()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	out := make([]IngestedEvent, len(res))
	queued, stored := 0, 0
	for i, r := range res {
		out[i] = IngestedEvent{ID: r.EventID, Action: rows[i].Action, Duplicate: r.Duplicate, Deliveries: r.Deliveries}
		queued += r.Deliveries
		if !r.Duplicate {
			stored++
		}
	}
	if h.Metrics != nil {
		label := "events"
		if source == "distribution" {
			label = "distribution"
		}
		h.Metrics.EventsIngested(label, stored)
	}
	h.Log.Debug("events ingested", "registry", reg.Name, "source", source, "events", len(out), "deliveries", queued)
	return out, nil
}
