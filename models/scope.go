package models

import (
	"fmt"
	"regexp"
	"strings"
)

// Scope is a parsed webhook scope. The zero value (from an empty scope)
// matches every event in the registry.
//
// ACR's rules: "foo:*" matches every tag of repository foo, "foo:bar" only
// that tag, "foo" is the same as "foo:latest". Repository names may contain
// "/", so the scope is split on its last ":". "*" is a wildcard only as the
// whole tag. Comparison is exact (repository names are lowercase).
type Scope struct {
	Repository string // empty: all repositories
	Tag        string // "*": all tags
}

// All reports whether the scope covers every event in the registry.
func (s Scope) All() bool { return s.Repository == "" }

// String renders the scope in its canonical form ("" for all).
func (s Scope) String() string {
	if s.All() {
		return ""
	}
	return s.Repository + ":" + s.Tag
}

var (
	repoComponent = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
	repoPattern   = regexp.MustCompile(`^` + repoComponent + `(?:/` + repoComponent + `)*$`)
	tagPattern    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
)

// ValidRepository reports whether s is a repository name in Distribution's
// grammar: lowercase path components joined by "/".
func ValidRepository(s string) bool { return repoPattern.MatchString(s) }

// ValidTag reports whether s is a valid image tag (at most 128 characters of
// letters, digits, "_", "." and "-", not starting with "." or "-").
func ValidTag(s string) bool { return tagPattern.MatchString(s) }

// ParseScope parses a scope string. Leading and trailing spaces are ignored.
// Errors say which rule the input broke.
func ParseScope(raw string) (Scope, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Scope{}, nil
	}
	if len(s) > MaxScopeLen {
		return Scope{}, fmt.Errorf("scope must be at most %d characters", MaxScopeLen)
	}
	repo, tag := s, "latest"
	if i := strings.LastIndex(s, ":"); i >= 0 {
		repo, tag = s[:i], s[i+1:]
		if tag == "" {
			return Scope{}, fmt.Errorf("scope %q has an empty tag: use repository:tag, repository:* or leave the scope empty", s)
		}
	}
	if repo == "" {
		return Scope{}, fmt.Errorf("scope %q has no repository: use repository:tag, repository:* or leave the scope empty", s)
	}
	if strings.Contains(repo, "*") {
		return Scope{}, fmt.Errorf("scope %q: a wildcard is allowed only as the whole tag (repository:*); leave the scope empty for all repositories", s)
	}
	if !ValidRepository(repo) {
		return Scope{}, fmt.Errorf("scope %q: repository %q is not a valid name (lowercase letters, digits, separators . _ - and / between path components)", s, repo)
	}
	if tag != "*" && !ValidTag(tag) {
		return Scope{}, fmt.Errorf("scope %q: tag %q is not valid (letters, digits, _ . -, at most 128, not starting with . or -), or use * for all tags", s, tag)
	}
	return Scope{Repository: repo, Tag: tag}, nil
}

// Matches reports whether an event on repository repo with tag tag (empty for
// delete events, which carry no tag) falls in the scope. An empty-tag event
// matches "repo:*" and the empty scope, but never a specific tag.
func (s Scope) Matches(repo, tag string) bool {
	if s.All() {
		return true
	}
	if s.Repository != repo {
		return false
	}
	if s.Tag == "*" {
		return true
	}
	return tag != "" && s.Tag == tag
}
