package models

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Webhook actions, as ACR names them. ActionPing is not a trigger a webhook
// subscribes to: it is the action of the event the Ping button sends.
const (
	ActionPush        = "push"
	ActionDelete      = "delete"
	ActionQuarantine  = "quarantine"
	ActionChartPush   = "chart_push"
	ActionChartDelete = "chart_delete"
	ActionPing        = "ping"
)

// AllActions lists the trigger actions in the order the portal and CLI show them.
var AllActions = []string{ActionPush, ActionDelete, ActionQuarantine, ActionChartPush, ActionChartDelete}

// Webhook statuses.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
)

// SKUs and their webhook quotas (ACR's limits: Basic 2, Standard 10, Premium 500).
const (
	SKUBasic    = "Basic"
	SKUStandard = "Standard"
	SKUPremium  = "Premium"
)

// AllSKUs lists the SKUs a registry can have, cheapest first.
var AllSKUs = []string{SKUBasic, SKUStandard, SKUPremium}

// WebhookQuota returns the number of webhooks a registry of the given SKU may
// hold, or 0 for an unknown SKU (which therefore may hold none).
func WebhookQuota(sku string) int {
	switch sku {
	case SKUBasic:
		return 2
	case SKUStandard:
		return 10
	case SKUPremium:
		return 500
	}
	return 0
}

// NormalizeSKU returns the canonical spelling of a SKU name given in any case,
// and false when it is not one of AllSKUs.
func NormalizeSKU(s string) (string, bool) {
	for _, k := range AllSKUs {
		if strings.EqualFold(k, strings.TrimSpace(s)) {
			return k, true
		}
	}
	return "", false
}

// Limits on custom headers. ACR documents none; these keep a single webhook
// from carrying an unbounded amount of secret material into every request.
const (
	MaxHeaders         = 32
	MaxHeaderNameLen   = 256
	MaxHeaderValueLen  = 4096
	MaxServiceURILen   = 2048
	MaxScopeLen        = 512
	MaxRegistryNameLen = 50
	MinNameLen         = 5
	MaxNameLen         = 50
)

var alnum = regexp.MustCompile(`^[a-zA-Z0-9]+$`)

// ValidateName checks a webhook or registry name against ACR's rule:
// 5-50 characters, letters and digits only. kind is used in the message
// ("Webhook name", "Registry name").
func ValidateName(kind, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is required: 5-50 letters and digits", kind)
	case utf8.RuneCountInString(name) < MinNameLen || len(name) > MaxNameLen:
		return fmt.Errorf("%s must be 5-50 characters long (got %d); letters and digits only", kind, utf8.RuneCountInString(name))
	case !alnum.MatchString(name):
		return fmt.Errorf("%s may contain only letters and digits (a-z, A-Z, 0-9), 5-50 characters", kind)
	}
	return nil
}

// ValidateServiceURI checks that s is an absolute http or https URI with a
// host, and returns it trimmed.
func ValidateServiceURI(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("Service URI is required: an absolute http:// or https:// URI")
	}
	if len(s) > MaxServiceURILen {
		return "", fmt.Errorf("Service URI must be at most %d characters", MaxServiceURILen)
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return "", fmt.Errorf("Service URI must be an absolute http:// or https:// URI, for example https://example.com/hook")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("Service URI must use http or https, not %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("Service URI must name a host, for example https://example.com/hook")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "", fmt.Errorf("Service URI must not contain spaces")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("Service URI must not contain a #fragment")
	}
	return s, nil
}

var headerToken = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")

// ValidateHeader checks one custom header name and value: the name an HTTP
// token, the value free of control characters, neither too long.
func ValidateHeader(name, value string) error {
	if name == "" {
		return fmt.Errorf("header name is empty")
	}
	if len(name) > MaxHeaderNameLen {
		return fmt.Errorf("header name %.20q… is longer than %d characters", name, MaxHeaderNameLen)
	}
	if !headerToken.MatchString(name) {
		return fmt.Errorf("header name %q may contain only letters, digits and !#$%%&'*+-.^_`|~", name)
	}
	if len(value) > MaxHeaderValueLen {
		return fmt.Errorf("value of header %q is longer than %d characters", name, MaxHeaderValueLen)
	}
	for _, r := range value {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("value of header %q contains a control character", name)
		}
	}
	switch strings.ToLower(name) {
	case "host", "content-length", "transfer-encoding", "connection":
		return fmt.Errorf("header %q is set by the HTTP client and cannot be a custom header", name)
	}
	return nil
}

// ValidateHeaders checks a whole header map: each entry, the count, and that
// no two names differ only in case.
func ValidateHeaders(h map[string]string) error {
	if len(h) > MaxHeaders {
		return fmt.Errorf("at most %d custom headers are allowed (got %d)", MaxHeaders, len(h))
	}
	seen := map[string]string{}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := ValidateHeader(k, h[k]); err != nil {
			return err
		}
		lk := strings.ToLower(k)
		if prev, ok := seen[lk]; ok {
			return fmt.Errorf("header %q is given twice (as %q and %q)", k, prev, k)
		}
		seen[lk] = k
	}
	return nil
}

// ParseHeaderLines parses the portal's Custom headers textarea: one
// "Key: value" per line. Blank lines are ignored; surrounding spaces trimmed.
// The error names the line number and the rule broken.
func ParseHeaderLines(text string) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]int{}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	n := 0
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: expected \"Key: value\" (a colon is missing)", i+1)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if name == "" {
			return nil, fmt.Errorf("line %d: header name is empty; expected \"Key: value\"", i+1)
		}
		if err := ValidateHeader(name, value); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if prev, dup := seen[strings.ToLower(name)]; dup {
			return nil, fmt.Errorf("line %d: header %q is already given on line %d", i+1, name, prev)
		}
		seen[strings.ToLower(name)] = i + 1
		out[name] = value
		n++
		if n > MaxHeaders {
			return nil, fmt.Errorf("at most %d custom headers are allowed", MaxHeaders)
		}
	}
	return out, nil
}

// FormatHeaderLines renders headers as the textarea expects them, sorted by name.
func FormatHeaderLines(h map[string]string) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(h[k])
		b.WriteString("\n")
	}
	return b.String()
}

// ValidateActions checks that actions is non-empty, holds only known trigger
// actions and no duplicates, and returns them in canonical order.
func ValidateActions(actions []string) ([]string, error) {
	if len(actions) == 0 {
		return nil, fmt.Errorf("select at least one action (push, delete, quarantine, chart_push, chart_delete)")
	}
	set := map[string]bool{}
	for _, a := range actions {
		a = strings.TrimSpace(a)
		if !slices.Contains(AllActions, a) {
			return nil, fmt.Errorf("unknown action %q: allowed are push, delete, quarantine, chart_push, chart_delete", a)
		}
		set[a] = true
	}
	out := make([]string, 0, len(set))
	for _, a := range AllActions {
		if set[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

// NormalizeStatus maps "" to enabled (ACR's portal and CLI default) and
// checks the value is enabled or disabled, in any case.
func NormalizeStatus(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", StatusEnabled:
		return StatusEnabled, nil
	case StatusDisabled:
		return StatusDisabled, nil
	}
	return "", fmt.Errorf("status must be enabled or disabled, not %q", s)
}
