package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registryhooks/registryhooks/web"
)

const testToken = "cli-test-token-0123456789"

type cliBundle struct {
	t        *testing.T
	server   string
	received *atomic.Int32
	receiver string
}

// setup starts the real server (web.New: store, dispatcher, route table) on
// a loopback port and a receiver for its deliveries.
func setup(t *testing.T) cliBundle {
	t.Helper()
	var n atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(recv.Close)
	dir := t.TempDir()
	env := map[string]string{"REGISTRYHOOKS_API_TOKEN": testToken, "REGISTRYHOOKS_ADMIN_PASSWORD": "cli-test-password"}
	cfg, err := web.Load([]string{"--db", filepath.Join(dir, "cli.db"), "--allow-private-targets"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := web.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return cliBundle{t: t, server: "http://" + ln.Addr().String(), received: &n, receiver: recv.URL}
}

// run runs the CLI with the server and token from the environment.
func (b cliBundle) run(args ...string) (int, string, string) {
	b.t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"REGISTRYHOOKS_SERVER": b.server, "REGISTRYHOOKS_API_TOKEN": testToken}
	code := run(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want map[string][]string
		err  string
	}{
		{[]string{"-r", "reg", "--name=hookone", "--actions", "push", "delete", "--uri", "http://x"},
			map[string][]string{"registry": {"reg"}, "name": {"hookone"}, "actions": {"push", "delete"}, "uri": {"http://x"}}, ""},
		{[]string{"--actions", "push", "--actions", "chart_push", "--headers", "A=b=c", "X", "-o", "table"},
			map[string][]string{"actions": {"push", "chart_push"}, "headers": {"A=b=c", "X"}, "output": {"table"}}, ""},
		{[]string{"--tags", "{}", "--scope", ""}, map[string][]string{"tags": {"{}"}, "scope": {""}}, ""},
		{[]string{"--registry"}, nil, "expected one argument"},
		{[]string{"--bogus", "x"}, nil, "unrecognized argument: --bogus"},
		{[]string{"stray"}, nil, "unrecognized argument: stray"},
	}
	for _, tc := range cases {
		o, err := parseFlags(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%v: err %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(o.values, tc.want) {
			t.Fatalf("%v: got %v, %v; want %v", tc.args, o.values, err, tc.want)
		}
	}
	h, err := keyValues("headers", []string{"Authorization=Basic abc=", "X-Empty"})
	if err != nil || h["Authorization"] != "Basic abc=" || h["X-Empty"] != "" || len(h) != 2 {
		t.Fatalf("keyValues = %v, %v", h, err)
	}
	if got := splitActions([]string{"push,delete", "quarantine"}); strings.Join(got, " ") != "push delete quarantine" {
		t.Fatalf("splitActions = %v", got)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, ExitUsage, "Usage: registryhooks webhook"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"create", "-r", "myregistry", "-n", "hookone", "--uri", "http://x"}, ExitUsage, "required: --actions"},
		{[]string{"show", "-r", "myregistry"}, ExitUsage, "required: --name"},
		{[]string{"list", "-r", "myregistry", "-o", "yaml"}, ExitUsage, "invalid choice"},
		{[]string{"update", "-r", "myregistry", "-n", "hookone"}, ExitUsage, "at least one of"},
		{[]string{"delete", "-r", "myregistry", "-n", "hookone", "--uri", "http://x"}, ExitUsage, "delete does not take --uri"},
		{[]string{"create", "-r", "myregistry", "-n", "hookone", "--uri", "http://x", "--actions", "push", "--status", "on"}, ExitUsage, "--status"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		code := run(tc.args, func(string) string { return "" }, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.want) || out.Len() != 0 {
			t.Fatalf("%v: exit %d, stderr %q", tc.args, code, errOut.String())
		}
	}
	var out bytes.Buffer
	if code := run([]string{"--help"}, func(string) string { return "" }, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "list-events") {
		t.Fatalf("--help: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"create", "-h"}, func(string) string { return "" }, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "--actions") {
		t.Fatalf("create -h: %d", code)
	}
}

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := writeTable(&b, []string{"NAME", "STATUS"}, [][]string{{"hookone", "enabled"}, {"h", "disabled"}}); err != nil {
		t.Fatal(err)
	}
	want := "NAME     STATUS\n-------  --------\nhookone  enabled\nh        disabled\n"
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestCLIAgainstServer(t *testing.T) {
	t.Parallel()
	b := setup(t)

	code, out, errOut := b.run("create", "-r", "myregistry", "-n", "hookone", "--uri", b.receiver+"/hook",
		"--actions", "push", "delete", "--headers", "Authorization=Basic c2VjcmV0", "--scope", "app:*", "--tags", "team=a")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["name"] != "hookone" || created["location"] != "local" {
		t.Fatalf("create output %q: %v", out, err)
	}
	if strings.Contains(out, "c2VjcmV0") {
		t.Fatalf("create printed a secret: %s", out)
	}

	code, out, _ = b.run("list", "-r", "myregistry", "-o", "table")
	wantRow := "hookone  local     push, delete  app:*  enabled"
	if code != 0 || !strings.HasPrefix(out, "NAME     LOCATION  ACTIONS       SCOPE  STATUS\n") || !strings.Contains(out, wantRow) {
		t.Fatalf("list -o table: %d\n%s", code, out)
	}

	code, out, _ = b.run("update", "-r", "myregistry", "-n", "hookone", "--status", "disabled", "-o", "table")
	if code != 0 || !strings.Contains(out, "hookone  local     push, delete  app:*  disabled") {
		t.Fatalf("update: %d\n%s", code, out)
	}
	code, out, _ = b.run("show", "-r", "myregistry", "-n", "hookone", "-g", "registryhooks")
	if code != 0 || !strings.Contains(out, `"status": "disabled"`) || !strings.Contains(out, `"scope": "app:*"`) {
		t.Fatalf("show: %d\n%s", code, out)
	}

	code, out, _ = b.run("get-config", "-r", "myregistry", "-n", "hookone", "-o", "table")
	if code != 0 || !strings.Contains(out, b.receiver+"/hook  Authorization=Basic c2VjcmV0") {
		t.Fatalf("get-config: %d\n%s", code, out)
	}
	code, _, _ = b.run("update", "-r", "myregistry", "-n", "hookone", "--headers", "{}")
	if code != 0 {
		t.Fatalf("clear headers: %d", code)
	}
	code, out, _ = b.run("get-config", "-r", "myregistry", "-n", "hookone")
	if code != 0 || !strings.Contains(out, `"customHeaders": {}`) {
		t.Fatalf("headers not cleared: %s", out)
	}

	code, out, _ = b.run("ping", "-r", "myregistry", "-n", "hookone")
	var ping struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &ping) != nil || len(ping.ID) != 36 {
		t.Fatalf("ping: %d %q", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ = b.run("list-events", "-r", "myregistry", "-n", "hookone", "-o", "table")
		if code == 0 && strings.Contains(out, ping.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %s never listed: %d\n%s", ping.ID, code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "HTTP STATUS") || !strings.Contains(out, ping.ID+"  ping") || !strings.Contains(out, "200 OK") {
		t.Fatalf("list-events table:\n%s", out)
	}
	if b.received.Load() < 1 {
		t.Fatal("receiver got no request")
	}

	// Errors a script can tell apart.
	code, _, errOut = b.run("show", "-r", "myregistry", "-n", "nosuchhook")
	if code != ExitAPI || !strings.HasPrefix(errOut, "ERROR: ResourceNotFound: The Resource 'Microsoft.ContainerRegistry/registries/myregistry/webhooks/nosuchhook'") {
		t.Fatalf("missing webhook: %d %q", code, errOut)
	}
	code, _, errOut = b.run("create", "-r", "myregistry", "-n", "bad-name", "--uri", b.receiver, "--actions", "push")
	if code != ExitAPI || !strings.Contains(errOut, "ERROR: InvalidRequestContent: Webhook name may contain only letters and digits") {
		t.Fatalf("invalid name: %d %q", code, errOut)
	}
	code, _, errOut = b.run("list", "-r", "nosuchregistry")
	if code != ExitAPI || !strings.Contains(errOut, "type 'Microsoft.ContainerRegistry/registries' could not be found") {
		t.Fatalf("missing registry: %d %q", code, errOut)
	}
	code, _, errOut = b.run("list", "-r", "myregistry", "--token", "wrong")
	if code != ExitAPI || !strings.Contains(errOut, "ERROR: InvalidAuthenticationToken:") {
		t.Fatalf("wrong token: %d %q", code, errOut)
	}

	code, out, _ = b.run("delete", "-r", "myregistry", "-n", "hookone")
	if code != 0 || out != "" {
		t.Fatalf("delete: %d %q", code, out)
	}
	code, out, _ = b.run("list", "-r", "myregistry")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list after delete: %d %q", code, out)
	}
}
