package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// WebhookList is the Webhooks blade: every webhook of the registry with the
// HTTP status of its newest delivery.
func (h *Handler) WebhookList(c echo.Context) error {
	ctx := c.Request().Context()
	reg, err := h.registry(c)
	if err != nil {
		return h.notFoundOr(c, err, "The registry "+c.Param("registry"))
	}
	hooks, err := h.Store.ListWebhooks(ctx, reg, 0, 0)
	if err != nil {
		return err
	}
	ids := make([]uint, len(hooks))
	for i := range hooks {
		ids[i] = hooks[i].ID
	}
	last, err := h.Store.LastDeliveries(ctx, ids)
	if err != nil {
		return err
	}
	vm := views.BladeVM{Page: h.page(c, "Webhooks", "webhooks", reg.Name), SKU: reg.SKU,
		Quota: models.WebhookQuota(reg.SKU), Count: len(hooks)}
	if vm.Count < vm.Quota {
		vm.AddURL = webhooksURL(reg) + "/new"
	}
	for i := range hooks {
		w := &hooks[i]
		row := views.WebhookRow{Name: w.Name, URL: webhookURL(reg, w), Status: w.Status, Scope: w.Scope,
			Actions: strings.Join(w.Actions(), ", "), HTTPStatus: "—", Tone: "none", AutoDisabled: autoDisabledVM(w)}
		if d, ok := last[w.ID]; ok {
			row.HTTPStatus, row.Tone = deliveryStatus(d.State, d.LastStatusCode, d.LastReason, d.LastError)
		}
		vm.Rows = append(vm.Rows, row)
	}
	return render(c, http.StatusOK, views.Blade(vm))
}

// deliveryStatus is the text and tone of a delivery's HTTP status cell:
// "200 OK", "504 Gateway Timeout", the error for requests that got no
// response, or "Pending" while the delivery waits for its first answer.
func deliveryStatus(state, code int, reason, errText string) (string, string) {
	switch {
	case code > 0:
		tone := "error"
		if code >= 200 && code < 300 {
			tone = "ok"
		}
		if reason == "" {
			reason = http.StatusText(code)
		}
		text := strings.TrimSpace(strconv.Itoa(code) + " " + reason)
		if state < models.DeliverySucceeded && tone == "error" {
			text += " · retrying"
		}
		return text, tone
	case errText != "":
		if state < models.DeliverySucceeded {
			return errText + " · retrying", "error"
		}
		return errText, "error"
	case state < models.DeliverySucceeded:
		return "Pending", "pending"
	}
	return "—", "none"
}
