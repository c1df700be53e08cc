package handlers

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/web/acr"
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
	// SigningSecret is present while the webhook signs its deliveries.
	SigningSecret string `json:"signingSecret,omitempty"`
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
	return c.JSON(http.StatusOK, armCallbackConfig{ServiceURI: w.ServiceURI, CustomHeaders: hdr, SigningSecret: w.SigningSecret})
}

type armEventList struct {
	Value    []acr.EventRecord `json:"value"`
	NextLink string            `json:"nextLink,omitempty"`
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
	out := armEventList{Value: []acr.EventRecord{}}
	for i := range rows {
		if i == top {
			last := rows[top-1]
			out.NextLink = h.armNextLink(c, fmt.Sprintf("%d.%d", last.StartedAt, last.ID))
			break
		}
		out.Value = append(out.Value, acr.Record(rows[i], w.Headers))
	}
	return c.JSON(http.StatusOK, out)
}
