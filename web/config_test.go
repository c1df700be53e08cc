package web_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/web"
)

// An unreadable or out-of-range setting is refused with a message naming
// it (the flag, or the environment variable it came from); nothing falls
// back to a default silently.
func TestLoadRefusesInvalidSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"duration without unit", nil, map[string]string{"REGISTRYHOOKS_DELIVERY_TIMEOUT": "5"}, `REGISTRYHOOKS_DELIVERY_TIMEOUT="5" is not a duration`},
		{"duration env even with the flag", []string{"--delivery-timeout", "2s"}, map[string]string{"REGISTRYHOOKS_DELIVERY_TIMEOUT": "5"}, "REGISTRYHOOKS_DELIVERY_TIMEOUT"},
		{"retention", nil, map[string]string{"REGISTRYHOOKS_RETENTION": "a week"}, "REGISTRYHOOKS_RETENTION"},
		{"session ttl", nil, map[string]string{"REGISTRYHOOKS_SESSION_TTL": "12"}, "REGISTRYHOOKS_SESSION_TTL"},
		{"workers env", nil, map[string]string{"REGISTRYHOOKS_WORKERS": "abc"}, `REGISTRYHOOKS_WORKERS="abc" is not a whole number`},
		{"max attempts env", nil, map[string]string{"REGISTRYHOOKS_MAX_ATTEMPTS": "8.5"}, "REGISTRYHOOKS_MAX_ATTEMPTS"},
		{"per endpoint env", nil, map[string]string{"REGISTRYHOOKS_PER_ENDPOINT": "four"}, "REGISTRYHOOKS_PER_ENDPOINT"},
		{"bad bool env", nil, map[string]string{"REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS": "yes please"}, `REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS="yes please" is not a boolean`},
		{"workers flag", []string{"--workers", "abc"}, nil, "-workers"},
		{"timeout flag", []string{"--delivery-timeout", "5"}, nil, "-delivery-timeout"},
		{"bool flag", []string{"--allow-private-targets=maybe"}, nil, "-allow-private-targets"},
		{"timeout out of range", nil, map[string]string{"REGISTRYHOOKS_DELIVERY_TIMEOUT": "10m"}, "--delivery-timeout (REGISTRYHOOKS_DELIVERY_TIMEOUT) must be between"},
		{"workers out of range", []string{"--workers", "0"}, nil, "--workers (REGISTRYHOOKS_WORKERS)"},
		{"log format", nil, map[string]string{"REGISTRYHOOKS_LOG_FORMAT": "xml"}, "REGISTRYHOOKS_LOG_FORMAT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := web.Load(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load(%v, %v) = %v, want an error containing %q", tc.args, tc.env, err, tc.want)
			}
		})
	}
}

// Valid values from the environment are taken; a flag wins over them.
func TestLoadReadsSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REGISTRYHOOKS_DELIVERY_TIMEOUT": "7s", "REGISTRYHOOKS_WORKERS": "9",
		"REGISTRYHOOKS_ALLOW_PRIVATE_TARGETS": "true", "REGISTRYHOOKS_MAX_ATTEMPTS": "3"}
	cfg, err := web.Load([]string{"--max-attempts", "4"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dispatch.Timeout != 7*time.Second || cfg.Dispatch.Workers != 9 || !cfg.AllowPrivateTargets || cfg.Dispatch.MaxAttempts != 4 {
		t.Fatalf("config = %+v", cfg)
	}
}
