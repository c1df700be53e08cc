package acr

import (
	"encoding/json"
	"strconv"

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

// EventRequestMessage is the request of an attempt. Custom header values
// are masked.
type EventRequestMessage struct {
	Content    Content           `json:"content"`
	Headers    map[string]string `json:"headers"`
	Method     string            `json:"method"`
	RequestURI string            `json:"requestUri"`
	Version    string            `json:"version"`
}

// EventResponseMessage is the response of an attempt. StatusCode is a
// string, as in ARM ("200"); an attempt that got no response has "504" and
// "Gateway Timeout" when it timed out, and otherwise no status code and the
// error as its content.
type EventResponseMessage struct {
	Content      string            `json:"content,omitempty"`
	Headers      map[string]string `json:"headers"`
	ReasonPhrase string            `json:"reasonPhrase,omitempty"`
	StatusCode   string            `json:"statusCode,omitempty"`
	Version      string            `json:"version"`
}

// Record builds the listEvents entry of an attempt and the payload it sent.
// A payload that does not decode still yields a record with the content's
// id set to the attempt's event id.
func Record(a models.AttemptWithEvent) EventRecord {
	var c Content
	if err := json.Unmarshal(a.Payload, &c); err != nil || c.ID == "" {
		c.ID = a.EventID
	}
	req := EventRequestMessage{Content: c, Headers: decodeMap(a.RequestHeaders), Method: "POST", RequestURI: a.RequestURI, Version: "1.1"}
	resp := EventResponseMessage{Headers: decodeMap(a.ResponseHeaders), Version: "1.1", Content: a.ResponseBody, ReasonPhrase: a.ReasonPhrase}
	if a.StatusCode != 0 {
		resp.StatusCode = strconv.Itoa(a.StatusCode)
	}
	if a.StatusCode == 0 || (a.Error != "" && a.ResponseBody == "") {
		resp.Content = a.Error
	}
	return EventRecord{ID: a.EventID, EventRequestMessage: req, EventResponseMessage: resp}
}

func decodeMap(s string) map[string]string {
	m := map[string]string{}
	if s != "" {
		_ = json.Unmarshal([]byte(s), &m)
	}
	return m
}
