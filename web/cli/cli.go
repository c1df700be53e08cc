// Package cli is `registryhooks webhook ...`: the commands of
// `az acr webhook` with its flags and table columns, talking to a Registry
// Hooks server's ARM-compatible API over HTTP like any other client.
//
// Exit codes: 0 success, 1 the server refused or could not be reached
// ("ERROR: <code>: <message>" on stderr), 2 a usage error (with the usage).
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Defaults of the connection settings.
const (
	DefaultServer       = "http://127.0.0.1:8080"
	DefaultSubscription = "00000000-0000-0000-0000-000000000000"
	// APIVersion is the api-version the CLI sends (the newest stable one).
	APIVersion = "2025-11-01"
)

// Exit codes a shell script can rely on.
const (
	ExitOK    = 0
	ExitAPI   = 1
	ExitUsage = 2
)

const usageText = `Usage: registryhooks webhook <command> [flags]

Manage the webhooks of a registry, like 'az acr webhook'.

Commands:
  create       Create a webhook.        -r -n --uri --actions [--headers] [--scope] [--status] [--location] [--tags]
  update       Update a webhook.        -r -n [--uri] [--actions] [--headers] [--scope] [--status] [--tags]
  delete       Delete a webhook.        -r -n
  list         List the webhooks.       -r
  show         Show a webhook.          -r -n
  ping         Send a ping event.       -r -n
  list-events  List recent events.      -r -n
  get-config   Show service URI and custom headers.  -r -n
  regenerate-secret  New Standard Webhooks signing secret (the old one signs 24 h more).  -r -n
  redeliver    Send finished events again (same payload and id).  -r -n (--event-id ID [ID ...] | --failed-since TIME)

Flags:
  -r, --registry NAME        registry name (required)
  -n, --name NAME            webhook name: 5-50 letters and digits
      --uri URI              service URI the events are POSTed to
      --actions A [A ...]    push, delete, quarantine, chart_push, chart_delete (space-separated; repeatable)
      --headers K=V [K=V ...]  custom headers; on update, {} clears them
      --scope SCOPE          repository[:tag], repo:* for every tag; empty for all events
      --status STATUS        enabled (default) or disabled
  -l, --location LOC         default: the registry's location
      --tags K=V [K=V ...]   tags; {} clears them
      --event-id ID [ID ...] redeliver: these events (space-separated; repeatable)
      --failed-since TIME    redeliver: every event whose latest delivery failed since TIME
                             (RFC 3339, such as 2026-05-01T14:30:00Z, or a duration ago, such as 2h)
  -g, --resource-group RG    default: looked up from the registry name
      --subscription ID      default ` + DefaultSubscription + `
      --server URL           env REGISTRYHOOKS_SERVER, default ` + DefaultServer + `
      --token TOKEN          env REGISTRYHOOKS_API_TOKEN
  -o, --output FORMAT        json (default) or table
  -h, --help                 show this help

Exit codes: 0 ok, 1 API or connection error, 2 usage error.
`

// flagSpec describes one flag: its long name, short alias and whether it
// takes several values (az's space-separated lists).
type flagSpec struct {
	long, short string
	multi       bool
}

var flagSpecs = []flagSpec{
	{"registry", "r", false}, {"name", "n", false}, {"uri", "", false},
	{"actions", "", true}, {"headers", "", true}, {"scope", "", false},
	{"status", "", false}, {"location", "l", false}, {"tags", "", true},
	{"resource-group", "g", false}, {"subscription", "", false},
	{"server", "", false}, {"token", "", false}, {"output", "o", false},
	{"event-id", "", true}, {"failed-since", "", false},
}

// opts are the parsed flags. set says which flags were given, so update
// can send only those.
type opts struct {
	values map[string][]string
	help   bool
}

func (o opts) get(name string) string {
	v := o.values[name]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func (o opts) has(name string) bool { _, ok := o.values[name]; return ok }

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseFlags reads az-style flags: "--flag value", "--flag=value", "-f
// value", and for list flags every following word up to the next flag.
func parseFlags(args []string) (opts, error) {
	o := opts{values: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" {
			o.help = true
			continue
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return o, usagef("unrecognized argument: %s", a)
		}
		name, inline, hasInline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var spec *flagSpec
		for j := range flagSpecs {
			f := &flagSpecs[j]
			if (strings.HasPrefix(a, "--") && f.long == name) || (!strings.HasPrefix(a, "--") && f.short != "" && f.short == name) {
				spec = f
			}
		}
		if spec == nil {
			return o, usagef("unrecognized argument: %s", a)
		}
		var vals []string
		if hasInline {
			vals = append(vals, inline)
		}
		for !hasInline && i+1 < len(args) && !isFlag(args[i+1]) {
			vals = append(vals, args[i+1])
			i++
			if !spec.multi {
				break
			}
		}
		if len(vals) == 0 && !spec.multi {
			return o, usagef("argument --%s: expected one argument", spec.long)
		}
		o.values[spec.long] = append(o.values[spec.long], vals...)
	}
	return o, nil
}

// isFlag tells a flag from a value; "-" alone and negative-looking values
// such as "-1" are values.
func isFlag(s string) bool {
	if !strings.HasPrefix(s, "-") || len(s) < 2 {
		return false
	}
	return !(s[1] >= '0' && s[1] <= '9')
}

var commands = []string{"create", "update", "delete", "list", "show", "ping", "list-events", "get-config", "redeliver", "regenerate-secret"}

// Main runs `registryhooks webhook <args>` and returns the exit code. The
// server and token default to REGISTRYHOOKS_SERVER and
// REGISTRYHOOKS_API_TOKEN.
func Main(args []string, stdout, stderr io.Writer) int {
	return run(args, os.Getenv, stdout, stderr)
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return ExitUsage
	}
	cmd := args[0]
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		fmt.Fprint(stdout, usageText)
		return ExitOK
	}
	if !slices.Contains(commands, cmd) {
		fmt.Fprintf(stderr, "ERROR: unknown command %q\n\n%s", cmd, usageText)
		return ExitUsage
	}
	o, err := parseFlags(args[1:])
	if o.help {
		fmt.Fprint(stdout, usageText)
		return ExitOK
	}
	if err == nil {
		err = checkFlags(cmd, o)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ERROR: %v\n\n%s", err, usageText)
		return ExitUsage
	}
	c := &client{
		server: firstNonEmpty(o.get("server"), getenv("REGISTRYHOOKS_SERVER"), DefaultServer),
		token:  firstNonEmpty(o.get("token"), getenv("REGISTRYHOOKS_API_TOKEN")),
		sub:    firstNonEmpty(o.get("subscription"), DefaultSubscription),
	}
	c.server = strings.TrimRight(c.server, "/")
	err = runCommand(cmd, o, c, stdout)
	var ae *apiError
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ERROR: %v\n\n%s", err, usageText)
		return ExitUsage
	case errors.As(err, &ae):
		fmt.Fprintf(stderr, "ERROR: %s: %s\n", ae.Code, ae.Message)
		if ae.Status == 401 && c.token == "" {
			fmt.Fprintln(stderr, "Pass --token or set REGISTRYHOOKS_API_TOKEN.")
		}
		return ExitAPI
	default:
		fmt.Fprintf(stderr, "ERROR: %v\n", err)
		return ExitAPI
	}
}

// checkFlags enforces the required flags and the flags each command takes.
func checkFlags(cmd string, o opts) error {
	required := []string{"registry", "name"}
	allowed := []string{"registry", "name", "resource-group", "subscription", "server", "token", "output"}
	switch cmd {
	case "list":
		required = []string{"registry"}
	case "create":
		required = append(required, "uri", "actions")
		allowed = append(allowed, "uri", "actions", "headers", "scope", "status", "location", "tags")
	case "update":
		allowed = append(allowed, "uri", "actions", "headers", "scope", "status", "tags")
	case "redeliver":
		allowed = append(allowed, "event-id", "failed-since")
		if o.has("event-id") == o.has("failed-since") {
			return usagef("redeliver needs exactly one of --event-id and --failed-since")
		}
		if o.has("event-id") && len(o.values["event-id"]) == 0 {
			return usagef("argument --event-id: expected at least one argument")
		}
	}
	for name := range o.values {
		if !slices.Contains(allowed, name) {
			return usagef("%s does not take --%s", cmd, name)
		}
	}
	for _, name := range required {
		if o.get(name) == "" {
			return usagef("the following arguments are required: --%s", name)
		}
	}
	if f := o.get("output"); f != "" && f != "json" && f != "table" {
		return usagef("argument --output/-o: invalid choice: %q (choose from 'json', 'table')", f)
	}
	if s := o.get("status"); s != "" && s != "enabled" && s != "disabled" {
		return usagef("argument --status: invalid choice: %q (choose from 'enabled', 'disabled')", s)
	}
	if cmd == "update" && !(o.has("uri") || o.has("actions") || o.has("headers") || o.has("scope") || o.has("status") || o.has("tags")) {
		return usagef("update needs at least one of --uri, --actions, --headers, --scope, --status, --tags")
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// keyValues parses az's "key=value" lists. A missing "=value" means "";
// a single "{}" (or "") means an empty map, which clears on update.
func keyValues(flag string, vals []string) (map[string]string, error) {
	out := map[string]string{}
	if len(vals) == 1 && (vals[0] == "{}" || vals[0] == "") {
		return out, nil
	}
	for _, v := range vals {
		k, val, _ := strings.Cut(v, "=")
		if k == "" {
			return nil, usagef("argument --%s: %q is not key=value", flag, v)
		}
		out[k] = val
	}
	return out, nil
}

// splitActions accepts "push delete" as separate words and also "push,delete".
func splitActions(vals []string) []string {
	out := []string{}
	for _, v := range vals {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}
