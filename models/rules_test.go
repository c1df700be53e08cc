package models

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// checkErr is the one assertion style of these tables: wantErr "" means the
// call must succeed; otherwise it must fail with a message containing wantErr
// (the message is what the portal shows, so its wording is part of the rule).
func checkErr(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case wantErr != "" && err == nil:
		t.Fatalf("no error; want one containing %q", wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Fatalf("error %q does not contain %q", err.Error(), wantErr)
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "Webhook name is required"},
		{"length 4", "abcd", "must be 5-50 characters long (got 4)"},
		{"length 5", "abcde", ""},
		{"length 50", strings.Repeat("a", 50), ""},
		{"length 51", strings.Repeat("a", 51), "must be 5-50 characters long (got 51)"},
		{"digits only", "12345", ""},
		{"mixed case", "MyHook01", ""},
		{"hyphen", "my-hook", "may contain only letters and digits"},
		{"underscore", "my_hook", "may contain only letters and digits"},
		{"space inside", "my hook", "may contain only letters and digits"},
		{"dot", "my.hook", "may contain only letters and digits"},
		{"unicode letters", "wébhook", "may contain only letters and digits"},
		{"unicode, 4 characters in 5 bytes", "wébh", "must be 5-50 characters long (got 4)"},
		{"unicode digits", "hook١٢٣", "may contain only letters and digits"},
		{"emoji", "hook🙂", "may contain only letters and digits"},
		{"newline", "hook1\n", "may contain only letters and digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, ValidateName("Webhook name", tt.in), tt.wantErr)
		})
	}
}

func TestValidateNameUsesKind(t *testing.T) {
	t.Parallel()
	err := ValidateName("Registry name", "ab")
	checkErr(t, err, "Registry name must be 5-50")
}

func TestValidateServiceURI(t *testing.T) {
	t.Parallel()
	long := "https://example.com/" + strings.Repeat("a", MaxServiceURILen-len("https://example.com/"))
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"https", "https://example.com/hook", "https://example.com/hook", ""},
		{"http with port and query", "http://127.0.0.1:8080/x?token=1", "http://127.0.0.1:8080/x?token=1", ""},
		{"trimmed", "  https://example.com/hook \n", "https://example.com/hook", ""},
		{"uppercase scheme", "HTTPS://EXAMPLE.COM/", "HTTPS://EXAMPLE.COM/", ""},
		{"ipv6 host", "http://[::1]:9000/", "http://[::1]:9000/", ""},
		{"exactly max length", long, long, ""},
		{"empty", "", "", "Service URI is required"},
		{"blank", "   ", "", "Service URI is required"},
		{"relative path", "/hook", "", "must be an absolute http:// or https:// URI"},
		{"host without scheme", "example.com/hook", "", "must be an absolute"},
		{"scheme-relative", "//example.com/hook", "", "must be an absolute"},
		{"ftp", "ftp://example.com/file", "", `must use http or https, not "ftp"`},
		{"javascript", "javascript:alert(1)", "", "must use http or https"},
		{"no host", "http://", "", "must name a host"},
		{"no host, path only", "http:///hook", "", "must name a host"},
		{"port without host", "http://:80/", "", "must name a host"},
		{"opaque", "http:example.com", "", "must name a host"},
		{"space in host", "http://exa mple.com/", "", "must be an absolute"},
		{"space in path", "http://example.com/a b", "", "must not contain spaces"},
		{"tab in path", "http://example.com/a\tb", "", "Service URI"},
		{"fragment", "https://example.com/hook#part", "", "must not contain a #fragment"},
		{"empty fragment", "http://x/#", "", "must not contain a #fragment"},
		{"too long", long + "a", "", fmt.Sprintf("at most %d characters", MaxServiceURILen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ValidateServiceURI(tt.in)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("ValidateServiceURI(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidateHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, value, wantErr string
	}{
		{"plain", "Authorization", "Basic 000000", ""},
		{"token punctuation", "X-My_Header.v1~!#$%&'*+^`|", "v", ""},
		{"empty value", "X-Empty", "", ""},
		{"tab in value", "X-Tab", "a\tb", ""},
		{"unicode value", "X-Note", "héllo", ""},
		{"empty name", "", "v", "header name is empty"},
		{"space in name", "X Bad", "v", "may contain only letters, digits"},
		{"colon in name", "X:Bad", "v", "may contain only letters, digits"},
		{"unicode name", "X-Héader", "v", "may contain only letters, digits"},
		{"name too long", strings.Repeat("a", MaxHeaderNameLen+1), "v", "longer than 256 characters"},
		{"name at max", strings.Repeat("a", MaxHeaderNameLen), "v", ""},
		{"value too long", "X-Big", strings.Repeat("v", MaxHeaderValueLen+1), "longer than 4096 characters"},
		{"value at max", "X-Big", strings.Repeat("v", MaxHeaderValueLen), ""},
		{"CR in value", "X-A", "a\rb", "contains a control character"},
		{"LF in value", "X-A", "a\nInjected: 1", "contains a control character"},
		{"NUL in value", "X-A", "a\x00", "contains a control character"},
		{"DEL in value", "X-A", "a\x7f", "contains a control character"},
		{"reserved Host", "Host", "evil.example", "set by the HTTP client"},
		{"reserved host lowercase", "host", "evil.example", "set by the HTTP client"},
		{"reserved Content-Length", "Content-Length", "5", "set by the HTTP client"},
		{"reserved Transfer-Encoding", "Transfer-Encoding", "chunked", "set by the HTTP client"},
		{"reserved Connection", "CONNECTION", "close", "set by the HTTP client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, ValidateHeader(tt.key, tt.value), tt.wantErr)
		})
	}
}

func TestValidateHeaders(t *testing.T) {
	t.Parallel()
	many := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("X-H%d", i)] = "v"
		}
		return m
	}
	tests := []struct {
		name    string
		in      map[string]string
		wantErr string
	}{
		{"nil", nil, ""},
		{"two", map[string]string{"Authorization": "Basic x", "X-Id": "1"}, ""},
		{"at the limit", many(MaxHeaders), ""},
		{"over the limit", many(MaxHeaders + 1), "at most 32 custom headers"},
		{"duplicate ignoring case", map[string]string{"X-Id": "1", "x-id": "2"}, "is given twice"},
		{"invalid entry", map[string]string{"Bad Name": "1"}, "may contain only letters"},
		{"reserved entry", map[string]string{"Content-Length": "1"}, "set by the HTTP client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, ValidateHeaders(tt.in), tt.wantErr)
		})
	}
}

func TestParseHeaderLines(t *testing.T) {
	t.Parallel()
	lines := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-H%d: v\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"empty", "", map[string]string{}, ""},
		{"only blank lines", "\n  \n\t\n", map[string]string{}, ""},
		{"one", "Authorization: Basic 000000", map[string]string{"Authorization": "Basic 000000"}, ""},
		{"spaces trimmed", "  X-Id :   42  ", map[string]string{"X-Id": "42"}, ""},
		{"no space after colon", "X-Id:42", map[string]string{"X-Id": "42"}, ""},
		{"value keeps later colons", "Authorization: Basic user:pass", map[string]string{"Authorization": "Basic user:pass"}, ""},
		{"empty value", "X-Empty:", map[string]string{"X-Empty": ""}, ""},
		{"blank lines ignored", "\nX-A: 1\n\n\nX-B: 2\n", map[string]string{"X-A": "1", "X-B": "2"}, ""},
		{"CRLF", "X-A: 1\r\nX-B: 2\r\n", map[string]string{"X-A": "1", "X-B": "2"}, ""},
		{"at the count limit", lines(MaxHeaders), nil, ""},
		{"missing colon", "Authorization Basic 000000", nil, `line 1: expected "Key: value" (a colon is missing)`},
		{"missing colon reports its line", "X-A: 1\n\nbroken", nil, "line 3: expected"},
		{"empty name", ": value", nil, "line 1: header name is empty"},
		{"blank name", "   : value", nil, "header name is empty"},
		{"invalid token chars", "X Bad: 1", nil, `line 1: header name "X Bad" may contain only`},
		{"invalid token char @", "X@Bad: 1", nil, "may contain only letters"},
		{"control char in value", "X-A: a\x01b", nil, "line 1: value of header \"X-A\" contains a control character"},
		{"bare CR in value", "X-A: a\rb", nil, "contains a control character"},
		{"duplicate", "X-A: 1\nX-A: 2", nil, `line 2: header "X-A" is already given on line 1`},
		{"duplicate ignoring case", "X-Token: 1\n\nx-token: 2", nil, `line 3: header "x-token" is already given on line 1`},
		{"reserved Host", "Host: evil.example", nil, "cannot be a custom header"},
		{"reserved Content-Length", "content-length: 1", nil, "cannot be a custom header"},
		{"over the count limit", lines(MaxHeaders + 1), nil, "at most 32 custom headers"},
		{"blank lines do not count", strings.Repeat("\n", 40) + lines(MaxHeaders), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseHeaderLines(tt.in)
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != "" {
				if got != nil {
					t.Fatalf("got %v with an error; want nil", got)
				}
				return
			}
			if tt.want != nil && !mapsEqual(got, tt.want) {
				t.Fatalf("ParseHeaderLines(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if tt.want == nil && len(got) != MaxHeaders {
				t.Fatalf("got %d headers, want %d", len(got), MaxHeaders)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFormatHeaderLinesRoundTrip(t *testing.T) {
	t.Parallel()
	in := map[string]string{"X-B": "2", "Authorization": "Basic a:b", "X-A": ""}
	text := FormatHeaderLines(in)
	if want := "Authorization: Basic a:b\nX-A: \nX-B: 2\n"; text != want {
		t.Fatalf("FormatHeaderLines = %q, want %q", text, want)
	}
	back, err := ParseHeaderLines(text)
	if err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(back, in) {
		t.Fatalf("round trip = %v, want %v", back, in)
	}
}

func TestValidateActions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{"nil", nil, nil, "select at least one action"},
		{"empty", []string{}, nil, "select at least one action"},
		{"one", []string{"push"}, []string{"push"}, ""},
		{"all, canonical order", []string{"chart_delete", "quarantine", "push", "chart_push", "delete"}, AllActions, ""},
		{"duplicates collapse", []string{"delete", "push", "delete", "push"}, []string{"push", "delete"}, ""},
		{"spaces trimmed", []string{" push "}, []string{"push"}, ""},
		{"unknown", []string{"push", "pull"}, nil, `unknown action "pull"`},
		{"ping is not a trigger", []string{"ping"}, nil, `unknown action "ping"`},
		{"case matters", []string{"PUSH"}, nil, `unknown action "PUSH"`},
		{"empty string", []string{""}, nil, `unknown action ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ValidateActions(tt.in)
			checkErr(t, err, tt.wantErr)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ValidateActions(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizeStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, wantErr string
	}{
		{"", StatusEnabled, ""},
		{"enabled", StatusEnabled, ""},
		{"Enabled", StatusEnabled, ""},
		{" disabled ", StatusDisabled, ""},
		{"DISABLED", StatusDisabled, ""},
		{"on", "", `not "on"`},
		{"true", "", "status must be enabled or disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeStatus(tt.in)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("NormalizeStatus(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWebhookQuotaAndSKU(t *testing.T) {
	t.Parallel()
	quotas := map[string]int{"Basic": 2, "Standard": 10, "Premium": 500, "basic": 0, "": 0, "Free": 0}
	for sku, want := range quotas {
		if got := WebhookQuota(sku); got != want {
			t.Errorf("WebhookQuota(%q) = %d, want %d", sku, got, want)
		}
	}
	norm := []struct {
		in, want string
		ok       bool
	}{
		{"basic", "Basic", true}, {" STANDARD ", "Standard", true}, {"Premium", "Premium", true},
		{"Classic", "", false}, {"", "", false},
	}
	for _, tt := range norm {
		got, ok := NormalizeSKU(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeSKU(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestWebhookInputValidate checks that the form-level validation reports
// each broken rule under its form field, all at once.
func TestWebhookInputValidate(t *testing.T) {
	t.Parallel()
	good := func() WebhookInput {
		return WebhookInput{Name: "hook1", ServiceURI: "https://example.com/h", Actions: []string{"push"}}
	}
	tests := []struct {
		name   string
		edit   func(*WebhookInput)
		fields []string
	}{
		{"valid", func(*WebhookInput) {}, nil},
		{"bad name", func(in *WebhookInput) { in.Name = "ab" }, []string{"name"}},
		{"bad uri", func(in *WebhookInput) { in.ServiceURI = "ftp://x" }, []string{"service_uri"}},
		{"no actions", func(in *WebhookInput) { in.Actions = nil }, []string{"actions"}},
		{"bad status", func(in *WebhookInput) { in.Status = "maybe" }, []string{"status"}},
		{"bad scope", func(in *WebhookInput) { in.Scope = "Foo:*" }, []string{"scope"}},
		{"bad headers", func(in *WebhookInput) { in.Headers = map[string]string{"Host": "x"} }, []string{"custom_headers"}},
		{"everything wrong", func(in *WebhookInput) {
			*in = WebhookInput{Name: "a-b", ServiceURI: "/x", Status: "x", Scope: ":"}
		}, []string{"actions", "name", "scope", "service_uri", "status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := good()
			tt.edit(&in)
			fe := in.Validate()
			var got []string
			for k := range fe {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("Validate() fields = %q (%v), want %q", got, fe, tt.fields)
			}
		})
	}
}
