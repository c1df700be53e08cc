package azsdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry"
)

// cli runs the built binary's `webhook` command with the server and token
// in the environment, and returns its exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(env.bin, append([]string{"webhook"}, args...)...)
	cmd.Env = append(os.Environ(), "REGISTRYHOOKS_SERVER="+env.server, "REGISTRYHOOKS_API_TOKEN="+apiToken)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("run %v: %v", args, err)
	return -1, "", ""
}

// TestCLIBinary runs `registryhooks webhook ...` as a script would, against
// a registry the SDK created (so the resource group is found by lookup).
func TestCLIBinary(t *testing.T) {
	t.Parallel()
	regs, _ := clients(t, apiToken)
	createRegistry(t, regs, "cli-rg", "clireg", armcontainerregistry.SKUNameBasic)

	code, out, errOut := cli(t, "create", "-r", "clireg", "-n", "clihook", "--uri", env.receiver+"/cli",
		"--actions", "push", "delete", "--headers", "Authorization=Basic c2VjcmV0", "X-Team=a", "--scope", "app:*")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	var w struct {
		ID, Name, Location string
	}
	if err := json.Unmarshal([]byte(out), &w); err != nil || w.Location != "local" ||
		w.ID != "/subscriptions/"+subscription+"/resourceGroups/cli-rg/providers/Microsoft.ContainerRegistry/registries/clireg/webhooks/clihook" {
		t.Fatalf("create output: %q, %v", out, err)
	}

	code, out, _ = cli(t, "list", "-r", "clireg", "-o", "table")
	want := "NAME     LOCATION  ACTIONS       SCOPE  STATUS\n" +
		"-------  --------  ------------  -----  -------\n" +
		"clihook  local     push, delete  app:*  enabled\n"
	if code != 0 || out != want {
		t.Fatalf("list -o table: %d\n%s\nwant:\n%s", code, out, want)
	}
	code, out, _ = cli(t, "show", "-r", "clireg", "-n", "clihook", "-g", "cli-rg")
	if code != 0 || !strings.Contains(out, `"provisioningState": "Succeeded"`) || strings.Contains(out, "c2VjcmV0") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	code, out, _ = cli(t, "update", "-r", "clireg", "-n", "clihook", "--actions", "quarantine", "--scope", "", "-o", "table")
	if code != 0 || !strings.Contains(out, "clihook  local     quarantine         enabled") {
		t.Fatalf("update: %d\n%q", code, out)
	}
	code, out, _ = cli(t, "get-config", "-r", "clireg", "-n", "clihook", "-o", "table")
	if code != 0 || !strings.Contains(out, env.receiver+"/cli  Authorization=Basic c2VjcmV0, X-Team=a") {
		t.Fatalf("get-config: %d\n%s", code, out)
	}

	code, out, _ = cli(t, "ping", "-r", "clireg", "-n", "clihook", "-o", "table")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || lines[0] != "ID" || len(lines[2]) != 36 {
		t.Fatalf("ping: %d %q", code, out)
	}
	id := lines[2]
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, _ = cli(t, "list-events", "-r", "clireg", "-n", "clihook", "-o", "table")
		if code == 0 && strings.Contains(out, id+"  ping") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %s not listed: %d\n%s", id, code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "ACTION  IMAGE  HTTP STATUS  TIMESTAMP") || !strings.Contains(out, "200 OK") {
		t.Fatalf("list-events table:\n%s", out)
	}
	code, out, _ = cli(t, "list-events", "-r", "clireg", "-n", "clihook")
	var events []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &events) != nil || len(events) != 1 || !strings.Contains(out, `"Authorization": "******"`) {
		t.Fatalf("list-events json: %d\n%s", code, out)
	}

	// Exit codes and messages a script relies on.
	code, out, errOut = cli(t, "create", "-r", "clireg", "-n", "clihooktwo", "--uri", env.receiver, "--actions", "push")
	if code != 0 {
		t.Fatalf("second webhook: %d %s %s", code, out, errOut)
	}
	code, _, errOut = cli(t, "create", "-r", "clireg", "-n", "clihookthree", "--uri", env.receiver, "--actions", "push")
	if code != 1 || !strings.HasPrefix(errOut, "ERROR: QuotaExceeded: Quota exceeded for resource type webhooks for the registry SKU Basic.") {
		t.Fatalf("quota: %d %q", code, errOut)
	}
	code, _, errOut = cli(t, "show", "-r", "clireg", "-n", "missinghook")
	if code != 1 || !strings.HasPrefix(errOut, "ERROR: ResourceNotFound: ") {
		t.Fatalf("not found: %d %q", code, errOut)
	}
	code, _, errOut = cli(t, "create", "-r", "clireg", "-n", "clihookfour", "--uri", "ftp://x", "--actions", "push")
	if code != 1 || !strings.HasPrefix(errOut, "ERROR: InvalidRequestContent: ") {
		t.Fatalf("invalid: %d %q", code, errOut)
	}
	code, _, errOut = cli(t, "list", "-r", "clireg", "--token", "wrong")
	if code != 1 || !strings.HasPrefix(errOut, "ERROR: InvalidAuthenticationToken: ") {
		t.Fatalf("wrong token: %d %q", code, errOut)
	}
	code, _, errOut = cli(t, "create", "-r", "clireg", "-n", "x")
	if code != 2 || !strings.Contains(errOut, "Usage: registryhooks webhook") {
		t.Fatalf("usage: %d %q", code, errOut)
	}
	if code, out, _ := cli(t, "--help"); code != 0 || !strings.Contains(out, "get-config") {
		t.Fatalf("--help: %d", code)
	}

	for _, n := range []string{"clihook", "clihooktwo"} {
		if code, out, errOut := cli(t, "delete", "-r", "clireg", "-n", n); code != 0 || out != "" {
			t.Fatalf("delete %s: %d %q %q", n, code, out, errOut)
		}
	}
	code, out, _ = cli(t, "list", "-r", "clireg")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list after delete: %d %q", code, out)
	}
}
