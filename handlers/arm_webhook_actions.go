package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/registryhooks/registryhooks/models"
)

// ARMWebhookPing is Webhooks_Ping: it queues a ping event for the webhook
// (delivered whatever its status and scope) and answers {"id": event id} at
// once; the delivery shows up in listEvents when it has been attempted.
func (h *Handler) ARMWebhookPing(c echo.Context) error {
	r, w, err := h.armWebhook(c)
	if err != nil {
		return err
	}
	id, err := h.queuePing(c.Request().Context(), r, w)
	if err != nil {
		return err
	}
	h.audit(c, actor(c), "webhook.ping", r.Name+"/"+w.Name, "api; event "+id)
	return c.JSON(http.StatusOK, map[string]string{"id": id})
}

// armCallbackConfig is CallbackConfig: the one response carrying the
// webhook's secrets in clear.
type armCallbackConfig struct {
	ServiceURI    string            `json:"serviceUri"`
	CustomHeaders map[string]string `json:"customHeaders"`
}

// ARMWebhookCallbackConfig is Webhooks_GetCallbackConfig.
func (h *Handler) ARMWebhookCallbackConfig(c echo.Context) error {
	_, w, err := h.armWebhook(c)
	if err != nil {
		return err
	}
	hdr := w.Headers
	if hdr == nil {
		hdr = map[string]string{}
	}
	return c.JSON(http.StatusOK, armCallbackConfig{ServiceURI: w.ServiceURI, CustomHeaders: hdr})
}

// ARM's Event record (acr-webhooks.md 2.2): one per delivery attempt.
type armEvent struct {
	ID                   string                  `json:"id"`
	EventRequestMessage  armEventRequestMessage  `json:"eventRequestMessage"`
	EventResponseMessage armEventResponseMessage `json:"eventResponseMessage"`
}

type armEventRequestMessage struct {
	Content    json.RawMessage   `json:"content"`
	Headers    map[string]string `json:"headers"`
	Method     string            `json:"method"`
	RequestURI string            `json:"requestUri"`
	Version    string            `json:"version"`
}

type armEventResponseMessage struct {
	Content      string            `json:"content"`
	Headers      map[string]string `json:"headers"`
	ReasonPhrase string            `json:"reasonPhrase"`
	StatusCode   string            `json:"statusCode"`
	Version      string            `json:"version"`
}

type armEventList struct {
	Value    []armEvent `json:"value"`
	NextLink string     `json:"nextLink,omitempty"`
}

// armMasked replaces custom header values in listEvents.
const armMasked = "******"

// armEventFrom builds the Event of one attempt. The values of w's custom
// headers are masked whatever the attempt stored. An attempt that got no
// HTTP response reads as ACR shows it: 504 Gateway Timeout, with the cause
// as the response content.
func armEventFrom(a *models.AttemptWithEvent, w *models.Webhook) armEvent {
	reqHeaders := decodeHeaderJSON(a.RequestHeaders)
	for k := range reqHeaders {
		for name := range w.Headers {
			if strings.EqualFold(k, name) {
				reqHeaders[k] = armMasked
			}
		}
	}
	content := json.RawMessage(a.Payload)
	if !json.Valid(content) {
		content = json.RawMessage("{}")
	}
	resp := armEventResponseMessage{Content: a.ResponseBody, Headers: decodeHeaderJSON(a.ResponseHeaders),
		ReasonPhrase: a.ReasonPhrase, StatusCode: strconv.Itoa(a.StatusCode), Version: "1.1"}
	if a.StatusCode == 0 {
		resp.StatusCode, resp.ReasonPhrase = "504", http.StatusText(http.StatusGatewayTimeout)
		if resp.Content == "" {
			resp.Content = a.Error
		}
	}
	return armEvent{
		ID:                   a.EventID,
		EventRequestMessage:  armEventRequestMessage{Content: content, Headers: reqHeaders, Method: http.MethodPost, RequestURI: a.RequestURI, Version: "1.1"},
		EventResponseMessage: resp,
	}
}

// decodeHeaderJSON reads a stored header object; values that are lists
// (as http.Header would store them) are joined with ", ".
func decodeHeaderJSON(s string) map[string]string {
	out := map[string]string{}
	var raw map[string]json.RawMessage
	if s == "" || json.Unmarshal([]byte(s), &raw) != nil {
		return out
	}
	for k, v := range raw {
		var one string
		if json.Unmarshal(v, &one) == nil {
			out[k] = one
			continue
		}
		var many []string
		if json.Unmarshal(v, &many) == nil {
			out[k] = strings.Join(many, ", ")
		}
	}
	return out
}

// ARMWebhookListEvents is Webhooks_ListEvents: the webhook's delivery
// attempts, newest first, a page at a time. Clients POST for the first page
// and GET the nextLink; both methods serve every page.
func (h *Handler) ARMWebhookListEvents(c echo.Context) error {
	_, w, err := h.armWebhook(c)
	if err != nil {
		return err
	}
	top, skip, err := armPage(c)
	if err != nil {
		return err
	}
	var cur models.AttemptCursor
	if skip != "" {
		var id uint64
		if _, scanErr := fmt.Sscanf(skip, "%d.%d", &cur.StartedAt, &id); scanErr != nil {
			return armErr(http.StatusBadRequest, ARMCodeInvalidContent, "The $skipToken is not one this server issued; start again from the first page.")
		}
		cur.ID = uint(id)
	}
	rows, err := h.Store.ListWebhookAttemptsBefore(c.Request().Context(), w.ID, cur, top+1)
	if err != nil {
		return err
	}
	out := armEventList{Value: []armEvent{}}
	for i := range rows {
		if i == top {
			last := rows[top-1]
			out.NextLink = armNextLink(c, fmt.Sprintf("%d.%d", last.StartedAt, last.ID))
			break
		}
		out.Value = append(out.Value, armEventFrom(&rows[i], w))
	}
	return c.JSON(http.StatusOK, out)
}
