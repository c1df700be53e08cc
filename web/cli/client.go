package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls the ARM-compatible API of one server.
type client struct {
	server, token, sub string
	http               *http.Client
}

// apiError is an ARM error response: {"error":{"code","message"}}.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// do sends method to path (relative to the server, or an absolute nextLink)
// with api-version added when missing, and decodes a JSON answer into out
// (when out is non-nil and there is a body).
func (c *client) do(method, path string, body, out any) (int, error) {
	u := path
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		u = c.server + path
	}
	if !strings.Contains(u, "api-version=") {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "api-version=" + APIVersion
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("bad server URL %q: %v", c.server, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "registryhooks-cli")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := c.http
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the server at %s: %v", c.server, unwrapURLError(err))
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("reading the answer from %s: %v", c.server, err)
	}
	if res.StatusCode >= 300 {
		ae := &apiError{Status: res.StatusCode}
		var eb struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
		} else {
			ae.Code = strings.ReplaceAll(http.StatusText(res.StatusCode), " ", "")
			ae.Message = fmt.Sprintf("%s %s answered %d: %.200s", method, req.URL.Path, res.StatusCode, strings.TrimSpace(string(raw)))
		}
		if ae.Code == "" {
			ae.Code = fmt.Sprintf("HTTP%d", res.StatusCode)
		}
		return res.StatusCode, ae
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, fmt.Errorf("the server's answer to %s %s is not the JSON expected: %v", method, req.URL.Path, err)
		}
	}
	return res.StatusCode, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// page is one page of a paged ARM list.
type page struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"nextLink"`
}

// all gets every item of a paged list: the first page with method, the
// following ones with GET on nextLink, as the Azure SDKs do.
func (c *client) all(method, path string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	next := path
	for i := 0; next != ""; i++ {
		if i > 10000 {
			return nil, fmt.Errorf("the server's nextLinks do not end")
		}
		var p page
		if _, err := c.do(method, next, nil, &p); err != nil {
			return nil, err
		}
		out = append(out, p.Value...)
		next, method = p.NextLink, http.MethodGet
	}
	if out == nil {
		out = []json.RawMessage{}
	}
	return out, nil
}

// registryInfo is what the CLI needs of a registry.
type registryInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Location string `json:"location"`
	SKU      struct {
		Name string `json:"name"`
	} `json:"sku"`
}

// resourceGroup returns rg when given; otherwise it finds the registry's
// resource group through the generic resources listing, as az does.
func (c *client) resourceGroup(registry, rg string) (string, error) {
	if rg != "" {
		return rg, nil
	}
	filter := url.QueryEscape("resourceType eq 'Microsoft.ContainerRegistry/registries'")
	items, err := c.all(http.MethodGet, "/subscriptions/"+url.PathEscape(c.sub)+"/resources?api-version=2022-09-01&$filter="+filter)
	if err != nil {
		return "", err
	}
	for _, raw := range items {
		var r registryInfo
		if json.Unmarshal(raw, &r) == nil && strings.EqualFold(r.Name, registry) {
			// id: /subscriptions/{sub}/resourceGroups/{rg}/providers/...
			parts := strings.Split(r.ID, "/")
			for i := 0; i+1 < len(parts); i++ {
				if strings.EqualFold(parts[i], "resourceGroups") {
					return parts[i+1], nil
				}
			}
		}
	}
	return "", &apiError{Status: 404, Code: "ResourceNotFound",
		Message: fmt.Sprintf("The resource with name '%s' and type 'Microsoft.ContainerRegistry/registries' could not be found in subscription '%s'.", registry, c.sub)}
}

func (c *client) registryPath(rg, registry string) string {
	return "/subscriptions/" + url.PathEscape(c.sub) + "/resourceGroups/" + url.PathEscape(rg) +
		"/providers/Microsoft.ContainerRegistry/registries/" + url.PathEscape(registry)
}
