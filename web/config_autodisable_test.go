package web

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --auto-disable-after and REGISTRYHOOKS_AUTO_DISABLE_AFTER: 72h by
// default, 0 = never, the flag wins, a negative window is refused.
func TestAutoDisableAfterSetting(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "c.db")
	cases := []struct {
		name  string
		args  []string
		env   string
		want  time.Duration
		error string
	}{
		{"default", nil, "", 72 * time.Hour, ""},
		{"environment", nil, "2s", 2 * time.Second, ""},
		{"the flag wins", []string{"--auto-disable-after", "90m"}, "2s", 90 * time.Minute, ""},
		{"zero is never", []string{"--auto-disable-after", "0"}, "", 0, ""},
		{"negative is refused", []string{"--auto-disable-after", "-1h"}, "", 0, "--auto-disable-after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"REGISTRYHOOKS_AUTO_DISABLE_AFTER": c.env}
			cfg, err := Load(append([]string{"--db", db}, c.args...), func(k string) string { return env[k] }, io.Discard)
			if c.error != "" {
				if err == nil || !strings.Contains(err.Error(), c.error) {
					t.Fatalf("Load = %v, want an error naming %s", err, c.error)
				}
				return
			}
			if err != nil || cfg.AutoDisableAfter != c.want {
				t.Fatalf("AutoDisableAfter = %v, %v; want %v", cfg.AutoDisableAfter, err, c.want)
			}
		})
	}
}
