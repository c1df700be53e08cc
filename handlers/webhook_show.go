package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
// its health over 24 hours and 7 days, and a page of its events (filter
// and cursor from the query: result, action, repository, before, after).
func (h *Handler) WebhookShow(c echo.Context) error {
	reg, w, err := h.webhook(c)
	if err != nil {
		return h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
	}
	q := eventsQueryFrom(c)
	ev, err := h.eventsVM(c, reg, w, q)
	if err != nil {
		return err
	}
	// The first page's polling already asked whether anything is moving;
	// an open row on any page says so too.
	moving := ev.Polling
	if !moving && !q.top() {
		if moving, err = h.Store.DeliveriesMoving(c.Request().Context(), w.ID); err != nil {
			return err
		}
	}
	health, err := h.healthSection(c, reg, w, moving)
	if err != nil {
		return err
	}
	vm := views.WebhookVM{
		Page: h.page(c, w.Name, "webhooks", reg.Name), Name: w.Name, BaseURL: webhookURL(reg, w),
		Status: w.Status, Scope: w.Scope, Actions: strings.Join(w.Actions(), ", "), Location: w.Location,
		ServiceURI: models.MaskURI(w.ServiceURI), Headers: maskedHeaders(w.Headers),
		CreatedAt: fmtTime(w.CreatedAt), CreatedBy: w.CreatedBy, Events: ev, AutoDisabled: autoDisabledVM(w),
		FailedSince: h.Store.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02T15:04:05"),
		Health:      health,
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

// eventsQuery is what the events table shows: a filter and a cursor
// (Older: the page below it; Newer: the page above it; neither: the newest).
type eventsQuery struct {
	filter       models.DeliveryFilter
	older, newer *models.Cursor
}

// eventsQueryFrom reads the table's query parameters; unknown values of
// result and action, and malformed cursors, are ignored.
func eventsQueryFrom(c echo.Context) eventsQuery {
	var q eventsQuery
	for _, r := range views.EventResults {
		if c.QueryParam("result") == r {
			q.filter.Result = r
		}
	}
	for _, a := range views.EventActions {
		if c.QueryParam("action") == a {
			q.filter.Action = a
		}
	}
	if repo := strings.TrimSpace(c.QueryParam("repository")); len(repo) <= 255 {
		q.filter.Repository = repo
	}
	if cur, ok := models.ParseCursor(c.QueryParam("before")); ok {
		q.older = &cur
	} else if cur, ok := models.ParseCursor(c.QueryParam("after")); ok {
		q.newer = &cur
	}
	return q
}

// encode renders the filter with an optional cursor parameter as a query
// string ("?result=failed&before=…"), or "" when there is nothing to say.
func (q eventsQuery) encode(cursorParam string, cur *models.Cursor) string {
	v := url.Values{}
	if q.filter.Result != "" {
		v.Set("result", q.filter.Result)
	}
	if q.filter.Action != "" {
		v.Set("action", q.filter.Action)
	}
	if q.filter.Repository != "" {
		v.Set("repository", q.filter.Repository)
	}
	if cur != nil {
		v.Set(cursorParam, cur.String())
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// top is whether q shows the newest page unfiltered: the one new
// deliveries appear on.
func (q eventsQuery) top() bool {
	return q.older == nil && q.newer == nil && q.filter == models.DeliveryFilter{}
}

// self is the query string of the page q shows.
func (q eventsQuery) self() string {
	switch {
	case q.older != nil:
		return q.encode("before", q.older)
	case q.newer != nil:
		return q.encode("after", q.newer)
	}
	return q.encode("", nil)
}

// eventsVM builds one page of a webhook's events table.
func (h *Handler) eventsVM(c echo.Context, reg *models.Registry, w *models.Webhook, q eventsQuery) (views.EventsVM, error) {
	p, err := h.Store.PageDeliveries(c.Request().Context(), w.ID, q.filter, q.older, q.newer, eventsPageSize)
	if err != nil {
		return views.EventsVM{}, err
	}
	base := webhookURL(reg, w) + "/events"
	vm := views.EventsVM{BaseURL: base, PageURL: webhookURL(reg, w),
		Filter: views.EventFilter{Result: q.filter.Result, Action: q.filter.Action, Repository: q.filter.Repository}}
	vm.SelfQuery = q.self()
	vm.Partial, vm.Scan = p.Partial, models.FilterScan
	if p.Older != nil {
		vm.OlderQuery = q.encode("before", p.Older)
	}
	if p.Newer != nil {
		vm.NewerQuery = q.encode("after", p.Newer)
	}
	for _, r := range p.Rows {
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
	if !vm.Polling && q.top() {
		// The newest page also follows deliveries not on it yet (queued
		// by a push while the page was open, or retrying further down),
		// so new rows appear; a page the user filtered or paged to is
		// left alone.
		if vm.Polling, err = h.Store.DeliveriesMoving(c.Request().Context(), w.ID); err != nil {
			return views.EventsVM{}, err
		}
	}
	return vm, nil
}

// healthSection is the webhook page's Health section; moving is whether a
// delivery of the webhook is pending or in flight (then it polls).
func (h *Handler) healthSection(c echo.Context, reg *models.Registry, w *models.Webhook, moving bool) (views.HealthSectionVM, error) {
	ctx := c.Request().Context()
	h24, err := h.health(ctx, []uint{w.ID}, window24h)
	if err != nil {
		return views.HealthSectionVM{}, err
	}
	h7, err := h.health(ctx, []uint{w.ID}, window7d)
	if err != nil {
		return views.HealthSectionVM{}, err
	}
	return views.HealthSectionVM{URL: webhookURL(reg, w) + "/health", Polling: moving,
		Health24h: h24[w.ID], Health7d: h7[w.ID]}, nil
}

// polledWebhook looks up the webhook of a fragment its page polls. When it
// cannot, it answers the request itself and reports !ok with what to
// return: a webhook deleted while its page was open sends htmx to the blade
// (which stops the polling), anything else is answered as for the page.
func (h *Handler) polledWebhook(c echo.Context) (*models.Registry, *models.Webhook, bool, error) {
	reg, w, err := h.webhook(c)
	if err == nil {
		return reg, w, true, nil
	}
	if models.IsNotFound(err) && isHTMX(c) {
		return nil, nil, false, redirect(c, "/registries/"+c.Param("registry")+"/webhooks")
	}
	return nil, nil, false, h.notFoundOr(c, err, "The webhook "+c.Param("webhook"))
}

// WebhookHealth is the Health section fragment, which polls while a
// delivery of the webhook is pending or in flight and reloads once after
// a Ping or a redelivery. A plain request is sent to the webhook page.
func (h *Handler) WebhookHealth(c echo.Context) error {
	reg, w, ok, err := h.polledWebhook(c)
	if !ok {
		return err
	}
	if !isHTMX(c) {
		return c.Redirect(http.StatusSeeOther, webhookURL(reg, w))
	}
	// Asked before the counts: a delivery that finishes in between is
	// counted as finished and the section polls once more, never the
	// other way round (open counts shown and polling stopped).
	moving, err := h.Store.DeliveriesMoving(c.Request().Context(), w.ID)
	if err != nil {
		return err
	}
	vm, err := h.healthSection(c, reg, w, moving)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.HealthSection(vm))
}

// WebhookEvents is the events table fragment (paging, polling). A plain
// request (a bookmarked fragment URL) is sent to the webhook page with the
// same query.
func (h *Handler) WebhookEvents(c echo.Context) error {
	reg, w, ok, err := h.polledWebhook(c)
	if !ok {
		return err
	}
	q := eventsQueryFrom(c)
	if !isHTMX(c) {
		return c.Redirect(http.StatusSeeOther, webhookURL(reg, w)+q.self())
	}
	vm, err := h.eventsVM(c, reg, w, q)
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
