// Package acr is the wire format of Azure Container Registry webhooks: the
// JSON body a receiver gets for each action, the ping body, the event record
// the ARM listEvents operation returns, and the parsers that turn what comes
// in (a CNCF Distribution notification envelope, or one event in ACR's own
// shape) into those bodies.
//
// The field sets per action follow the ACR webhook reference (see
// acr-webhooks.md, sections 3.2 and 3.3) and are pinned by golden files.
package acr

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/registryhooks/registryhooks/models"
)

// MaxSize is the largest target.size and target.length ACR's schema allows:
// both are Int32 there, so a receiver generated from it cannot read more.
const MaxSize = math.MaxInt32

// HelmChartMediaType is the media type of legacy ACR Helm chart events.
const HelmChartMediaType = "application/vnd.acr.helm.chart"

// Content is the body of a delivery, and the content of a listEvents
// request message. Every field but id, timestamp and action is optional.
type Content struct {
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Action    string   `json:"action"`
	Target    *Target  `json:"target,omitempty"`
	Request   *Request `json:"request,omitempty"`
	Actor     *Actor   `json:"actor,omitempty"`
	Source    *Source  `json:"source,omitempty"`
}

// Target says what the event is about. Size and Length are pointers so an
// action that carries them can send 0 while one that does not omits them.
type Target struct {
	MediaType  string `json:"mediaType,omitempty"`
	Size       *int64 `json:"size,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Length     *int64 `json:"length,omitempty"`
	Repository string `json:"repository,omitempty"`
	URL        string `json:"url,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Name       string `json:"name,omitempty"`
	Version    string `json:"version,omitempty"`
}

// Request describes the registry request that caused the event.
type Request struct {
	ID        string `json:"id,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method,omitempty"`
	UserAgent string `json:"useragent,omitempty"`
}

// Actor is who caused the event.
type Actor struct {
	Name string `json:"name,omitempty"`
}

// Source is the registry node that produced the event. Note instanceID's
// capital ID, as in the ARM schema.
type Source struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// Event is one registry event in a neutral shape, before it is rendered as
// the body of its action. Parsers produce it; Payload renders it.
type Event struct {
	ID         string
	Time       time.Time
	Action     string
	Repository string
	Tag        string
	Digest     string
	MediaType  string
	Size       int64
	// Name and Version are a Helm chart's (chart_push, chart_delete).
	Name    string
	Version string
	// Request is the registry request; push and delete default its method.
	Request Request
}

// Origin is what ingest knows of where an event happened, for the request
// object of its payload.
type Origin struct {
	// LoginServer is the registry's login server (host[:port]), the host
	// clients pull from. It becomes request.host.
	LoginServer string
	// UserAgent is request.useragent when the event names none: the
	// User-Agent of the ingest request, or "unknown".
	UserAgent string
	// NewID makes request.id when the event has none. Default: a UUID.
	NewID func() string
}

// Stamp makes e's request describe the registry the event happened at, as
// ACR's payloads do, because receivers build the image reference as
// request.host + "/" + target.repository and match it against the images
// they watch (Kargo, Keel, argocd-image-updater):
//   - request.host is the registry's login server, whatever the source said
//     (a Distribution event carries the Host header its client used, which
//     may be 127.0.0.1:5000 or an internal name; a script's may carry none);
//   - request.id gets a new id and request.useragent o.UserAgent when empty;
//   - request.method keeps its value; Content fills PUT or DELETE.
//
// Content still decides which actions carry a request at all.
func (e *Event) Stamp(o Origin) {
	e.Request.Host = o.LoginServer
	if e.Request.ID == "" {
		if o.NewID != nil {
			e.Request.ID = o.NewID()
		} else {
			e.Request.ID = uuid.NewString()
		}
	}
	if e.Request.UserAgent == "" {
		e.Request.UserAgent = o.UserAgent
	}
}

// FormatTime renders a timestamp as ACR receivers see it: RFC 3339 with
// nanoseconds, UTC, Z suffix.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Content returns the body of e's action with exactly the fields ACR sends
// for it: push carries mediaType, size, digest, length, repository, tag and
// the request; delete no tag, size or length; quarantine no mediaType and no
// useragent; chart events name and version and no request.
func (e *Event) Content() (Content, error) {
	c := Content{ID: e.ID, Timestamp: FormatTime(e.Time), Action: e.Action}
	size := e.Size
	req := e.Request
	switch e.Action {
	case models.ActionPush:
		if req.Method == "" {
			req.Method = "PUT"
		}
		req.Addr = ""
		c.Target = &Target{MediaType: e.MediaType, Size: &size, Digest: e.Digest, Length: &size, Repository: e.Repository, Tag: e.Tag}
		c.Request = &req
	case models.ActionDelete:
		if req.Method == "" {
			req.Method = "DELETE"
		}
		req.Addr = ""
		c.Target = &Target{MediaType: e.MediaType, Digest: e.Digest, Repository: e.Repository}
		c.Request = &req
	case models.ActionQuarantine:
		if req.Method == "" {
			req.Method = "PUT"
		}
		req.Addr, req.UserAgent = "", ""
		c.Target = &Target{Size: &size, Digest: e.Digest, Length: &size, Repository: e.Repository, Tag: e.Tag}
		c.Request = &req
	case models.ActionChartPush, models.ActionChartDelete:
		mt := e.MediaType
		if mt == "" {
			mt = HelmChartMediaType
		}
		c.Target = &Target{MediaType: mt, Size: &size, Digest: e.Digest, Repository: e.Repository, Tag: e.Tag, Name: e.Name, Version: e.Version}
	case models.ActionPing:
	default:
		return Content{}, fmt.Errorf("acr: unknown action %q", e.Action)
	}
	if c.Request != nil && *c.Request == (Request{}) {
		c.Request = nil
	}
	return c, nil
}

// Payload renders the JSON body of e.
func (e *Event) Payload() ([]byte, error) {
	c, err := e.Content()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("acr: encode %s event: %w", e.Action, err)
	}
	return b, nil
}

// Model returns the stored form of e for registry registryID: the event row
// whose Payload every delivery sends. source says where it came from
// (distribution, api, ping). CreatedAt stays zero: the store stamps the
// ingest time, which retention and ordering go by, whatever the event's
// own timestamp says.
func (e *Event) Model(registryID uint, source string) (*models.Event, error) {
	p, err := e.Payload()
	if err != nil {
		return nil, err
	}
	return &models.Event{ID: e.ID, RegistryID: registryID, Action: e.Action, Repository: e.Repository, Tag: e.Tag,
		Digest: e.Digest, Source: source, Payload: p}, nil
}

// Ping returns the body of a ping: {"id","timestamp","action":"ping"}, no
// target or request (ACR publishes no ping body; receivers key on action).
func Ping(id string, at time.Time) []byte {
	b, _ := json.Marshal(Content{ID: id, Timestamp: FormatTime(at), Action: models.ActionPing})
	return b
}
