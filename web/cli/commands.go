package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// runCommand resolves the registry and runs one command.
func runCommand(cmd string, o opts, c *client, stdout io.Writer) error {
	registry := o.get("registry")
	rg, err := c.resourceGroup(registry, o.get("resource-group"))
	if err != nil {
		return err
	}
	regPath := c.registryPath(rg, registry)
	hookPath := regPath + "/webhooks/" + url.PathEscape(o.get("name"))
	table := o.get("output") == "table"

	switch cmd {
	case "create":
		return create(o, c, regPath, hookPath, table, stdout)
	case "update":
		return update(o, c, hookPath, table, stdout)
	case "delete":
		_, err := c.do(http.MethodDelete, hookPath, nil, nil)
		return err
	case "show":
		var raw json.RawMessage
		if _, err := c.do(http.MethodGet, hookPath, nil, &raw); err != nil {
			return err
		}
		return printWebhooks(stdout, table, raw, false)
	case "list":
		items, err := c.all(http.MethodGet, regPath+"/webhooks")
		if err != nil {
			return err
		}
		return printWebhooks(stdout, table, mustArray(items), true)
	case "ping":
		var raw json.RawMessage
		if _, err := c.do(http.MethodPost, hookPath+"/ping", nil, &raw); err != nil {
			return err
		}
		if table {
			var info struct{ ID string }
			_ = json.Unmarshal(raw, &info)
			return writeTable(stdout, []string{"ID"}, [][]string{{info.ID}})
		}
		return printJSON(stdout, raw)
	case "list-events":
		items, err := c.all(http.MethodPost, hookPath+"/listEvents")
		if err != nil {
			return err
		}
		if table {
			return writeTable(stdout, []string{"ID", "ACTION", "IMAGE", "HTTP STATUS", "TIMESTAMP"}, eventRows(items))
		}
		return printJSON(stdout, mustArray(items))
	case "redeliver":
		return redeliver(o, c, hookPath, table, stdout)
	case "regenerate-secret":
		var raw json.RawMessage
		if _, err := c.do(http.MethodPost, hookPath+"/regenerateSigningSecret", nil, &raw); err != nil {
			return err
		}
		if table {
			var out struct {
				SigningSecret string `json:"signingSecret"`
			}
			_ = json.Unmarshal(raw, &out)
			return writeTable(stdout, []string{"SIGNING SECRET"}, [][]string{{out.SigningSecret}})
		}
		return printJSON(stdout, raw)
	case "get-config":
		var raw json.RawMessage
		if _, err := c.do(http.MethodPost, hookPath+"/getCallbackConfig", nil, &raw); err != nil {
			return err
		}
		if table {
			var cfg struct {
				ServiceURI    string            `json:"serviceUri"`
				CustomHeaders map[string]string `json:"customHeaders"`
			}
			_ = json.Unmarshal(raw, &cfg)
			return writeTable(stdout, []string{"SERVICE URI", "HEADERS"}, [][]string{{cfg.ServiceURI, joinPairs(cfg.CustomHeaders)}})
		}
		return printJSON(stdout, raw)
	}
	return usagef("unknown command %q", cmd)
}

// create PUTs a webhook. Like az it defaults the location to the registry's
// and refuses registries whose SKU has no webhooks.
func create(o opts, c *client, regPath, hookPath string, table bool, stdout io.Writer) error {
	var reg registryInfo
	if _, err := c.do(http.MethodGet, regPath, nil, &reg); err != nil {
		return err
	}
	switch reg.SKU.Name {
	case "Basic", "Standard", "Premium":
	default:
		return &apiError{Code: "InvalidSku", Message: "Webhooks are only supported for managed registries."}
	}
	props, tags, err := webhookFields(o)
	if err != nil {
		return err
	}
	props["serviceUri"] = o.get("uri")
	props["actions"] = splitActions(o.values["actions"])
	props["status"] = firstNonEmpty(o.get("status"), "enabled")
	body := map[string]any{"location": firstNonEmpty(o.get("location"), reg.Location), "properties": props}
	if tags != nil {
		body["tags"] = tags
	}
	var raw json.RawMessage
	if _, err := c.do(http.MethodPut, hookPath, body, &raw); err != nil {
		return err
	}
	return printWebhooks(stdout, table, raw, false)
}

// webhookFields reads the flags create and update treat alike: --scope and
// --headers into properties, --tags (nil when not given).
func webhookFields(o opts) (props map[string]any, tags map[string]string, err error) {
	props = map[string]any{}
	if o.has("scope") {
		props["scope"] = o.get("scope")
	}
	if o.has("headers") {
		h, err := keyValues("headers", o.values["headers"])
		if err != nil {
			return nil, nil, err
		}
		props["customHeaders"] = h
	}
	if o.has("tags") {
		if tags, err = keyValues("tags", o.values["tags"]); err != nil {
			return nil, nil, err
		}
	}
	return props, tags, nil
}

// update PATCHes only the fields given, as az's generic update does.
func update(o opts, c *client, hookPath string, table bool, stdout io.Writer) error {
	props, tags, err := webhookFields(o)
	if err != nil {
		return err
	}
	if o.has("uri") {
		props["serviceUri"] = o.get("uri")
	}
	if o.has("actions") {
		props["actions"] = splitActions(o.values["actions"])
	}
	if o.has("status") {
		props["status"] = o.get("status")
	}
	body := map[string]any{}
	if len(props) > 0 {
		body["properties"] = props
	}
	if tags != nil {
		body["tags"] = tags
	}
	var raw json.RawMessage
	if _, err := c.do(http.MethodPatch, hookPath, body, &raw); err != nil {
		return err
	}
	return printWebhooks(stdout, table, raw, false)
}

func mustArray(items []json.RawMessage) json.RawMessage {
	b, _ := json.Marshal(items)
	return b
}

// printJSON writes raw indented by two spaces, as az's default output.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

type webhookView struct {
	Name       string `json:"name"`
	Location   string `json:"location"`
	Properties struct {
		Actions []string `json:"actions"`
		Scope   string   `json:"scope"`
		Status  string   `json:"status"`
	} `json:"properties"`
}

// printWebhooks prints one webhook or a list; the table has az's columns.
func printWebhooks(w io.Writer, table bool, raw json.RawMessage, list bool) error {
	if !table {
		return printJSON(w, raw)
	}
	var hooks []webhookView
	if list {
		if err := json.Unmarshal(raw, &hooks); err != nil {
			return err
		}
	} else {
		var one webhookView
		if err := json.Unmarshal(raw, &one); err != nil {
			return err
		}
		hooks = append(hooks, one)
	}
	rows := make([][]string, 0, len(hooks))
	for _, h := range hooks {
		rows = append(rows, []string{h.Name, h.Location, strings.Join(h.Properties.Actions, ", "), h.Properties.Scope, h.Properties.Status})
	}
	return writeTable(w, []string{"NAME", "LOCATION", "ACTIONS", "SCOPE", "STATUS"}, rows)
}

type eventView struct {
	ID                  string `json:"id"`
	EventRequestMessage struct {
		Content struct {
			Timestamp string `json:"timestamp"`
			Action    string `json:"action"`
			Target    struct {
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
				Digest     string `json:"digest"`
			} `json:"target"`
		} `json:"content"`
	} `json:"eventRequestMessage"`
	EventResponseMessage struct {
		StatusCode   string `json:"statusCode"`
		ReasonPhrase string `json:"reasonPhrase"`
	} `json:"eventResponseMessage"`
}

// eventRows are az's list-events columns: ID, ACTION, IMAGE (repo:tag),
// HTTP STATUS ("200 OK"), TIMESTAMP (%Y-%m-%dT%H:%M:%SZ).
func eventRows(items []json.RawMessage) [][]string {
	rows := make([][]string, 0, len(items))
	for _, raw := range items {
		var ev eventView
		_ = json.Unmarshal(raw, &ev)
		c := ev.EventRequestMessage.Content
		image := c.Target.Repository
		switch {
		case image != "" && c.Target.Tag != "":
			image += ":" + c.Target.Tag
		case image != "" && c.Target.Digest != "":
			image += "@" + c.Target.Digest
		}
		ts := c.Timestamp
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			ts = t.UTC().Format("2006-01-02T15:04:05Z")
		}
		status := strings.TrimSpace(ev.EventResponseMessage.StatusCode + " " + ev.EventResponseMessage.ReasonPhrase)
		rows = append(rows, []string{ev.ID, c.Action, image, status, ts})
	}
	return rows
}

func joinPairs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// writeTable prints az's table layout: headers, a dashed rule under each
// column, then the rows, columns two spaces apart.
func writeTable(w io.Writer, headers []string, rows [][]string) error {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, cell := range cells {
			if i == len(cells)-1 {
				b.WriteString(cell)
			} else {
				fmt.Fprintf(&b, "%-*s  ", widths[i], cell)
			}
		}
		b.WriteString("\n")
	}
	line(headers)
	rule := make([]string, len(headers))
	for i := range headers {
		rule[i] = strings.Repeat("-", widths[i])
	}
	line(rule)
	for _, r := range rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
