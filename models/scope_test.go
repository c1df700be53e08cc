package models

import (
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     Scope
		canon    string
		wantErr  string
	}{
		{"empty is all", "", Scope{}, "", ""},
		{"blank is all", "   ", Scope{}, "", ""},
		{"repository alone means latest", "foo", Scope{"foo", "latest"}, "foo:latest", ""},
		{"repository and tag", "foo:bar", Scope{"foo", "bar"}, "foo:bar", ""},
		{"all tags", "foo:*", Scope{"foo", "*"}, "foo:*", ""},
		{"nested repository, all tags", "team/app:*", Scope{"team/app", "*"}, "team/app:*", ""},
		{"nested repository alone", "team/sub/app", Scope{"team/sub/app", "latest"}, "team/sub/app:latest", ""},
		{"separators in repository", "my-app_x.y__z:v1.2-rc_3", Scope{"my-app_x.y__z", "v1.2-rc_3"}, "my-app_x.y__z:v1.2-rc_3", ""},
		{"uppercase tag", "foo:V1", Scope{"foo", "V1"}, "foo:V1", ""},
		{"trimmed", "  foo:bar\t", Scope{"foo", "bar"}, "foo:bar", ""},
		{"tag of 128", "foo:" + strings.Repeat("t", 128), Scope{"foo", strings.Repeat("t", 128)}, "", ""},
		{"empty tag", "foo:", Scope{}, "", `scope "foo:" has an empty tag`},
		{"no repository", ":bar", Scope{}, "", `scope ":bar" has no repository`},
		{"colon only", ":", Scope{}, "", "has an empty tag"},
		{"star alone", "*", Scope{}, "", "a wildcard is allowed only as the whole tag"},
		{"star repository with tag", "*:tag", Scope{}, "", "a wildcard is allowed only as the whole tag"},
		{"star inside repository", "fo*:bar", Scope{}, "", "a wildcard is allowed only as the whole tag"},
		{"uppercase repository", "Foo:bar", Scope{}, "", `repository "Foo" is not a valid name`},
		{"repository with leading slash", "/foo:bar", Scope{}, "", "is not a valid name"},
		{"repository with trailing separator", "foo-:bar", Scope{}, "", "is not a valid name"},
		{"repository with double slash", "team//app", Scope{}, "", "is not a valid name"},
		{"space in repository", "my app:v1", Scope{}, "", "is not a valid name"},
		{"tag starting with dot", "foo:.v1", Scope{}, "", `tag ".v1" is not valid`},
		{"tag starting with dash", "foo:-v1", Scope{}, "", `tag "-v1" is not valid`},
		{"partial wildcard tag", "foo:v*", Scope{}, "", `tag "v*" is not valid`},
		{"tag of 129", "foo:" + strings.Repeat("t", 129), Scope{}, "", "is not valid"},
		{"tag with slash", "foo:a/b", Scope{}, "", "is not valid"},
		// Split on the last colon: the part before it is the repository,
		// which cannot itself hold a colon (no registry host:port prefix).
		{"split on last colon", "foo:bar:baz", Scope{}, "", `repository "foo:bar" is not a valid name`},
		{"host and port prefix", "localhost:5000/foo:v1", Scope{}, "", `repository "localhost:5000/foo"`},
		{"too long", strings.Repeat("a", MaxScopeLen-2) + ":*" + "x", Scope{}, "", "at most 512 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseScope(tt.in)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("ParseScope(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if tt.wantErr == "" && tt.canon != "" && got.String() != tt.canon {
				t.Fatalf("ParseScope(%q).String() = %q, want %q", tt.in, got.String(), tt.canon)
			}
			if tt.wantErr == "" && got.All() != (strings.TrimSpace(tt.in) == "") {
				t.Fatalf("ParseScope(%q).All() = %v", tt.in, got.All())
			}
		})
	}
}

func TestParseScopeMaxLengthAccepted(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("a", MaxScopeLen-2) + ":*"
	if len(in) != MaxScopeLen {
		t.Fatalf("test input is %d long", len(in))
	}
	if _, err := ParseScope(in); err != nil {
		t.Fatalf("ParseScope of %d characters: %v", MaxScopeLen, err)
	}
}

func TestScopeMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scope     string
		repo, tag string
		want      bool
	}{
		// The empty scope matches every event, delete events without tag too.
		{"", "foo", "bar", true},
		{"", "team/app", "", true},
		// foo:* matches every tag of foo, and foo's tagless delete events.
		{"foo:*", "foo", "v1", true},
		{"foo:*", "foo", "latest", true},
		{"foo:*", "foo", "", true},
		{"foo:*", "foobar", "v1", false},
		{"foo:*", "foo/sub", "v1", false},
		{"foo:*", "bar", "", false},
		// foo:bar matches that tag only, never a tagless event.
		{"foo:bar", "foo", "bar", true},
		{"foo:bar", "foo", "baz", false},
		{"foo:bar", "foo", "", false},
		{"foo:bar", "foo", "Bar", false},
		{"foo:bar", "other", "bar", false},
		// foo means foo:latest.
		{"foo", "foo", "latest", true},
		{"foo", "foo", "v1", false},
		{"foo", "foo", "", false},
		// Nested repositories compare whole.
		{"team/app:*", "team/app", "1.0", true},
		{"team/app:*", "team", "1.0", false},
		{"team/app:1.0", "team/app", "1.0", true},
		{"team/app:1.0", "other/app", "1.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.scope+"|"+tt.repo+":"+tt.tag, func(t *testing.T) {
			t.Parallel()
			s, err := ParseScope(tt.scope)
			if err != nil {
				t.Fatalf("ParseScope(%q): %v", tt.scope, err)
			}
			if got := s.Matches(tt.repo, tt.tag); got != tt.want {
				t.Fatalf("scope %q Matches(%q, %q) = %v, want %v", tt.scope, tt.repo, tt.tag, got, tt.want)
			}
		})
	}
}
