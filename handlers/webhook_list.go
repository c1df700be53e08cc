package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// bladePageSize is the number of webhooks per page of the blade. A page
// costs a handful of indexed queries whatever the registry holds; 50 rows
// keep it well under 10 ms and 40 KB.
const bladePageSize = 50

// WebhookList is the Webhooks blade: one page (?page=N) of the registry's
// webhooks by name, with the HTTP status of each one's newest delivery and
// its health over the last 24 hours. An htmx request aimed at the table
// (Refresh, polling) gets the table alone.
func (h *Handler) WebhookList(c echo.Context) error {
	ctx := c.Request().Context()
	reg, err := h.registry(c)
	if err != nil {
		return h.notFoundOr(c, err, "The registry "+c.Param("registry"))
	}
	count, err := h.Store.CountWebhooks(ctx, reg.ID)
	if err != nil {
		return err
	}
	pages := max(1, int((count+bladePageSize-1)/bladePageSize))
	page, _ := strconv.Atoi(c.QueryParam("page"))
	page = min(max(page, 1), pages)
	hooks, err := h.Store.ListWebhookSummaries(ctx, reg.ID, (page-1)*bladePageSize, bladePageSize)
	if err != nil {
		return err
	}
	ids := make([]uint, len(hooks))
	for i := range hooks {
		ids[i] = hooks[i].ID
	}
	last, err := h.Store.NewestDeliveries(ctx, ids)
	if err != nil {
		return err
	}
	health, err := h.health(ctx, ids, window24h)
	if err != nil {
		return err
	}
	base := webhooksURL(reg)
	pageURL := func(n int) string {
		if n == 1 {
			return base
		}
		return base + "?page=" + strconv.Itoa(n)
	}
	vm := views.BladeVM{SKU: reg.SKU, Quota: models.WebhookQuota(reg.SKU), Count: int(count),
		TableURL: pageURL(page), PageN: page, Pages: pages}
	if page > 1 {
		vm.PrevURL = pageURL(page - 1)
	}
	if page < pages {
		vm.NextURL = pageURL(page + 1)
	}
	for i := range hooks {
		w := &hooks[i]
		row := views.WebhookRow{Name: w.Name, URL: base + "/" + w.Name, Status: w.Status, Scope: w.Scope,
			Actions: strings.Join(w.Actions(), ", "), HTTPStatus: "—", Tone: "none", Health: health[w.ID],
			AutoDisabled: autoDisabledVM(&models.Webhook{AutoDisabledAt: w.AutoDisabledAt, AutoDisabledReason: w.AutoDisabledReason})}
		if d, ok := last[w.ID]; ok {
			row.HTTPStatus, row.Tone = deliveryStatus(d.State, d.LastStatusCode, d.LastReason, d.LastError)
			// An auto-disabled webhook's open deliveries are held: nothing moves.
			vm.Polling = vm.Polling || d.State < models.DeliverySucceeded && w.AutoDisabledAt == 0
		}
		vm.Rows = append(vm.Rows, row)
	}
	if isHTMX(c) && c.Request().Header.Get("HX-Target") == "blade-table" {
		return render(c, http.StatusOK, views.BladeTable(vm))
	}
	vm.Page = h.page(c, "Webhooks", "webhooks", reg.Name)
	if vm.Count < vm.Quota {
		vm.AddURL = base + "/new"
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
