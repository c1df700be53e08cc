package acr

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/registryhooks/registryhooks/models"
)

// EventRecord is one entry of ARM's listEvents: the request a delivery
// attempt sent and the response it got (definition Event in the
// Microsoft.ContainerRegistry spec).
type EventRecord struct {
	ID                   string               `json:"id"`
	EventRequestMessage  EventRequestMessage  `json:"eventRequestMessage"`
	EventResponseMessage EventResponseMessage `json:"eventResponseMessage"`
}

// EventRequestMessage is the request of an attempt: the exact payload sent,
// the headers with custom header values masked, the masked service URI.
type EventRequestMessage struct {
	Content    json.RawMessage   `json:"content"`
	Headers    map[string]string `json:"headers"`
	Method     string            `json:"method"`
	RequestURI string            `json:"requestUri"`
	Version    string            `json:"version"`
}

// EventResponseMessage is the response of an attempt. StatusCode is a
// string, as in ARM ("200"). An attempt that got no HTTP response reads as
// ACR's portal shows it: "504" "Gateway Timeout", with the cause as content.
type EventResponseMessage struct {
	Content      string            `json:"content"`
	Headers      map[string]string `json:"headers"`
	ReasonPhrase string            `json:"reasonPhrase"`
	StatusCode   string            `json:"statusCode"`
	Version      string            `json:"version"`
}

// Record builds the listEvents entry of an attempt and the payload it sent.
// Values of the headers named in secret (a webhook's custom headers) are
// masked, whatever the attempt stored.
func Record(a models.AttemptWithEvent, secret map[string]string) EventRecord {
	reqHeaders := models.DecodeHeaders(a.RequestHeaders)
	for k := range reqHeaders {
		for name := range secret {
			if strings.EqualFold(k, name) {
				reqHeaders[k] = models.Mask
			}
		}
	}
	content := json.RawMessage(a.Payload)
	if !json.Valid(content) {
		content = json.RawMessage("{}")
	}
	resp := EventResponseMessage{Content: a.ResponseBody, Headers: models.DecodeHeaders(a.ResponseHeaders),
		ReasonPhrase: a.ReasonPhrase, StatusCode: strconv.Itoa(a.StatusCode), Version: "1.1"}
	if a.StatusCode == 0 {
		resp.StatusCode, resp.ReasonPhrase = "504", http.StatusText(http.StatusGatewayTimeout)
	}
	if resp.Content == "" {
		resp.Content = a.Error
	}
	return EventRecord{
		ID:                   a.EventID,
		EventRequestMessage:  EventRequestMessage{Content: content, Headers: reqHeaders, Method: http.MethodPost, RequestURI: a.RequestURI, Version: "1.1"},
		EventResponseMessage: resp,
	}
}
