package models

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseScope checks the scope parser never panics, that what it accepts
// is well formed (a valid repository and tag, canonical form re-parses to the
// same scope) and that it never accepts a wildcard outside the tag.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "foo", "foo:bar", "foo:*", "team/app:v1", "a/b/c:latest", ":x", "x:", "*", "*:x",
		"Foo:bar", "foo::bar", "foo:b*r", "foo bar", "foo/:x", "a__b:c", "a--b:1.0-rc", strings.Repeat("a", 600)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			if sc != (Scope{}) {
				t.Fatalf("error %v but non-zero scope %+v", err, sc)
			}
			return
		}
		if sc.All() {
			if strings.TrimSpace(s) != "" {
				t.Fatalf("non-empty %q parsed as all events", s)
			}
			return
		}
		if strings.Contains(sc.Repository, "*") || strings.Contains(sc.Repository, " ") || sc.Repository == "" {
			t.Fatalf("%q accepted with repository %q", s, sc.Repository)
		}
		if sc.Tag == "" || (sc.Tag != "*" && strings.Contains(sc.Tag, "*")) || strings.Contains(sc.Tag, ":") {
			t.Fatalf("%q accepted with tag %q", s, sc.Tag)
		}
		again, err := ParseScope(sc.String())
		if err != nil || again != sc {
			t.Fatalf("canonical form %q of %q re-parses to %+v, %v", sc.String(), s, again, err)
		}
		if !sc.Matches(sc.Repository, map[bool]string{true: "anytag", false: sc.Tag}[sc.Tag == "*"]) {
			t.Fatalf("scope %+v does not match its own repository and tag", sc)
		}
		if sc.Matches(sc.Repository+"x", sc.Tag) {
			t.Fatalf("scope %+v matches another repository", sc)
		}
	})
}

// FuzzParseHeaderLines checks the Custom headers parser never panics and
// that every header it accepts is valid on its own, unique ignoring case,
// and survives a round trip through FormatHeaderLines.
func FuzzParseHeaderLines(f *testing.F) {
	for _, s := range []string{"", "Authorization: Basic 000", "A: 1\nB: 2", "A: 1\na: 2", "no colon", ": v", "X-Y:", "Host: x",
		"Bad Name: v", "X: a\x00b", "X: \t tab", "\n\n A : b \r\n", "X: v:w:z", "é: v"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHeaderLines(s)
		if err != nil {
			if h != nil {
				t.Fatalf("error %v with a non-nil map", err)
			}
			return
		}
		if err := ValidateHeaders(h); err != nil {
			t.Fatalf("accepted %q but the map is invalid: %v", s, err)
		}
		for k, v := range h {
			if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("accepted bad header %q: %q from %q", k, v, s)
			}
			if !utf8.ValidString(k) {
				t.Fatalf("accepted non-UTF-8 name %q", k)
			}
		}
		back, err := ParseHeaderLines(FormatHeaderLines(h))
		if err != nil || len(back) != len(h) {
			t.Fatalf("round trip of %v failed: %v, %v", h, back, err)
		}
		for k, v := range h {
			if back[k] != strings.TrimSpace(v) {
				t.Fatalf("round trip changed %q: %q -> %q", k, v, back[k])
			}
		}
	})
}
