package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// eventsPageSize is the number of deliveries per page of the events table.
const eventsPageSize = 20

// WebhookShow is a webhook's page: properties (secrets masked), toolbar,
// and the first page of its events.
func (h *Handler) WebhookShow(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	page, _ := strconv.Atoi(c.QueryParam("page"))
	ev, err := h.eventsVM(c, reg, w, page)
	if err != nil {
		return err
	}
	vm := views.WebhookVM{
		Page: h.page(c, w.Name, "webhooks", reg.Name), Name: w.Name, BaseURL: webhookURL(reg, w),
		Status: w.Status, Scope: w.Scope, Actions: strings.Join(w.Actions(), ", "), Location: w.Location,
		ServiceURI: models.MaskURI(w.ServiceURI), Headers: maskedHeaders(w.Headers),
		CreatedAt: fmtTime(w.CreatedAt), CreatedBy: w.CreatedBy, Events: ev, AutoDisabled: autoDisabledVM(w),
		FailedSince: h.Store.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02T15:04:05"),
	}
	if vm.AutoDisabled.Since != "" {
		if vm.AutoDisabled.Held, err = h.Store.HeldDeliveries(c.Request().Context(), w.ID); err != nil {
			return err
		}
	}
	vm.Signing = signingVM(vm.Page, vm.BaseURL, w, "")
	return render(c, http.StatusOK, views.Webhook(vm))
}

func maskedHeaders(h map[string]string) []views.KV {
	out := make([]views.KV, 0, len(h))
	for k := range h {
		out = append(out, views.KV{Key: k, Value: models.Mask})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func sortedKV(m map[string]string) []views.KV {
	out := make([]views.KV, 0, len(m))
	for k, v := range m {
		out = append(out, views.KV{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// WebhookCallback reveals the service URI and header values to a
// Contributor who pressed Show; the reveal is audited.
func (h *Handler) WebhookCallback(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	h.audit(c, actor(c), "webhook.reveal", reg.Name+"/"+w.Name, "callback config")
	return render(c, http.StatusOK, views.Callback(w.ServiceURI, sortedKV(w.Headers), w.SigningSecret))
}

// eventsVM builds one page (1-based) of a webhook's events table.
func (h *Handler) eventsVM(c echo.Context, reg *models.Registry, w *models.Webhook, page int) (views.EventsVM, error) {
	if page < 1 {
		page = 1
	}
	rows, total, err := h.Store.ListDeliveries(c.Request().Context(), w.ID, (page-1)*eventsPageSize, eventsPageSize)
	if err != nil {
		return views.EventsVM{}, err
	}
	base := webhookURL(reg, w) + "/events"
	vm := views.EventsVM{BaseURL: base, Page: page, Total: total, Pages: int((total + eventsPageSize - 1) / eventsPageSize)}
	for _, r := range rows {
		text, tone := deliveryStatus(r.State, r.LastStatusCode, r.LastReason, r.LastError)
		if r.State == models.DeliveryPending && r.AvailableAt == models.HeldAvailableAt {
			// Held while the webhook is auto-disabled: nothing to poll for.
			text = strings.TrimSuffix(text, " · retrying") + " · held until enabled"
		} else if r.State < models.DeliverySucceeded {
			vm.Polling = true
		}
		dur := ""
		if r.Attempts > 0 && (r.LastStatusCode > 0 || r.LastError != "") {
			dur = fmt.Sprintf("%d ms", r.LastDurationMS)
		}
		vm.Rows = append(vm.Rows, views.EventRow{
			DeliveryID: r.ID, EventID: r.EventID, Action: r.Action, Image: r.Image(),
			Timestamp: fmtNanos(r.Timestamp), HTTPStatus: text, Tone: tone, Duration: dur,
			Attempts: r.Attempts, DetailURL: fmt.Sprintf("%s/%d", base, r.ID),
		})
	}
	return vm, nil
}

// WebhookEvents is the events table fragment (pagination and polling).
func (h *Handler) WebhookEvents(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		if models.IsNotFound(err) && isHTMX(c) {
			// The webhook was deleted while its page was open: stop polling.
			c.Response().Header().Set("HX-Redirect", "/registries/"+c.Param("registry")+"/webhooks")
			return c.NoContent(http.StatusOK)
		}
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	page, _ := strconv.Atoi(c.QueryParam("page"))
	if !isHTMX(c) {
		return c.Redirect(http.StatusSeeOther, webhookURL(reg, w)+"?page="+strconv.Itoa(max(page, 1)))
	}
	vm, err := h.eventsVM(c, reg, w, page)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Events(vm))
}

// WebhookEventDetail shows one delivery: its attempts, and for the chosen
// one (?attempt=N, default the latest) the request sent and the response.
func (h *Handler) WebhookEventDetail(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	id, err := strconv.ParseUint(c.Param("delivery"), 10, 64)
	if err != nil {
		return h.errorPage(c, http.StatusNotFound, "Not found", "No such event.")
	}
	d, err := h.Store.GetDelivery(c.Request().Context(), w.ID, uint(id))
	if err != nil {
		return h.notFoundOr(c, err, "The event")
	}
	attempts, err := h.Store.ListAttempts(c.Request().Context(), d.ID)
	if err != nil {
		return err
	}
	if !isHTMX(c) {
		// A direct link: show the webhook page; the detail loads on click.
		return c.Redirect(http.StatusSeeOther, webhookURL(reg, w))
	}
	base := fmt.Sprintf("%s/events/%d", webhookURL(reg, w), d.ID)
	vm := views.EventDetailVM{EventID: d.EventID, Action: d.Event.Action, State: stateName(d.State), CloseURL: base,
		Outcome: deliveryOutcome(d, d.Event.Action)}
	if s := session(c); s != nil && models.RoleRank(s.User.Role) >= models.RoleRank(models.RoleContributor) && !d.Open() {
		vm.RedeliverURL = base + "/redeliver"
	}
	for _, a := range attempts {
		vm.Attempts = append(vm.Attempts, views.AttemptTab{Number: a.Number, URL: fmt.Sprintf("%s?attempt=%d", base, a.Number), Label: fmt.Sprintf("Attempt %d", a.Number)})
	}
	if len(attempts) > 0 {
		sel := len(attempts) - 1
		if n, err := strconv.Atoi(c.QueryParam("attempt")); err == nil {
			for i, a := range attempts {
				if a.Number == n {
					sel = i
				}
			}
		}
		a := attempts[sel]
		vm.Selected = sel
		vm.RequestMethod, vm.RequestURI = http.MethodPost, a.RequestURI
		vm.RequestHeaders = sortedKV(models.DecodeHeaders(a.RequestHeaders))
		vm.RequestBody = prettyJSON(d.Event.Payload)
		if a.StatusCode > 0 {
			vm.ResponseStatus = fmt.Sprintf("%d %s", a.StatusCode, a.ReasonPhrase)
		} else {
			vm.ResponseStatus = "no response"
		}
		vm.ResponseHeaders = sortedKV(models.DecodeHeaders(a.ResponseHeaders))
		vm.ResponseBody = prettyJSON([]byte(a.ResponseBody))
		vm.Truncated, vm.Error = a.Truncated, a.Error
		vm.Duration = fmt.Sprintf("%d ms", a.DurationMS)
		vm.StartedAt = fmtNanos(a.StartedAt)
	}
	return render(c, http.StatusOK, views.EventDetail(vm))
}

func stateName(s int) string {
	switch s {
	case models.DeliveryPending:
		return "queued"
	case models.DeliveryInFlight:
		return "sending"
	case models.DeliverySucceeded:
		return "delivered"
	case models.DeliveryFailed:
		return "failed"
	}
	return ""
}

// prettyJSON indents a JSON body; anything else is returned as it is.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}
