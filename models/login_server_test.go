package models

import (
	"strings"
	"testing"
)

func TestValidateLoginServer(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		"localhost:5000":                "localhost:5000",
		" Registry.Example.COM ":        "registry.example.com",
		"myregistry.azurecr.io":         "myregistry.azurecr.io",
		"127.0.0.1:5000":                "127.0.0.1:5000",
		"10.0.0.7":                      "10.0.0.7",
		"[::1]:5000":                    "[::1]:5000",
		"[2001:db8::1]":                 "[2001:db8::1]",
		"reg-1.internal:65535":          "reg-1.internal:65535",
		strings.Repeat("a", 63) + ".io": strings.Repeat("a", 63) + ".io",
	}
	for in, want := range ok {
		got, err := ValidateLoginServer(in)
		if err != nil || got != want {
			t.Errorf("ValidateLoginServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                              "required",
		"http://registry.example.com":   "host name with an optional port",
		"registry.example.com/team":     "host name with an optional port",
		"reg istry":                     "host name with an optional port",
		"-bad-.example":                 "host name with an optional port",
		"registry:":                     "host name with an optional port",
		"registry:0":                    "port must be a number from 1 to 65535",
		"registry:99999":                "port must be a number from 1 to 65535",
		"registry:05000":                "port must be a number from 1 to 65535",
		"[::1":                          "host name with an optional port",
		"[1.2.3.4]:80":                  "host name with an optional port",
		"[::1]x":                        "host name with an optional port",
		strings.Repeat("a", 64) + ".io": "host name with an optional port",
		strings.Repeat("a.", 130):       "at most 255",
	}
	for in, want := range bad {
		if _, err := ValidateLoginServer(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateLoginServer(%.30q) = %v, want %q", in, err, want)
		}
	}
}
