package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// redeliver against the real server: an event sent again arrives again;
// --failed-since with nothing failed queues nothing; usage errors exit 2,
// API refusals exit 1.
func TestRedeliverCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, _, errOut := b.run("create", "-r", "myregistry", "-n", "replayhook", "--uri", b.receiver+"/hook", "--actions", "push"); code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	code, out, errOut := b.run("ping", "-r", "myregistry", "-n", "replayhook")
	var ping struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &ping) != nil || ping.ID == "" {
		t.Fatalf("ping: %d %s %s", code, out, errOut)
	}
	waitFor(t, func() bool { return b.received.Load() == 1 })

	// The delivery is recorded just after the receiver answers: until
	// then the server refuses (409, exit 1) and says why.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errOut = b.run("redeliver", "-r", "myregistry", "-n", "replayhook", "--event-id", ping.ID, "-o", "table")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		if code != 1 || !strings.Contains(errOut, "ERROR: Conflict") {
			t.Fatalf("redeliver: %d %q", code, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != 0 || out != "QUEUED\n------\n1\n" {
		t.Fatalf("redeliver by id: %d %q %q", code, out, errOut)
	}
	waitFor(t, func() bool { return b.received.Load() == 2 })

	code, out, errOut = b.run("redeliver", "-r", "myregistry", "-n", "replayhook", "--failed-since", "1h")
	if code != 0 || strings.TrimSpace(out) != `{"queued":0}` && !strings.Contains(out, `"queued": 0`) {
		t.Fatalf("redeliver --failed-since: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := b.run("redeliver", "-r", "myregistry", "-n", "replayhook", "--event-id", "no-such-event"); code != 1 || !strings.Contains(errOut, "no-such-event") {
		t.Fatalf("unknown event: %d %q", code, errOut)
	}
	for _, args := range [][]string{
		{"redeliver", "-r", "myregistry", "-n", "replayhook"},
		{"redeliver", "-r", "myregistry", "-n", "replayhook", "--event-id", "a", "--failed-since", "1h"},
		{"redeliver", "-r", "myregistry", "-n", "replayhook", "--failed-since", "last tuesday"},
		{"redeliver", "-r", "myregistry", "-n", "replayhook", "--event-id"},
	} {
		if code, _, errOut := b.run(args...); code != 2 || !strings.Contains(errOut, "ERROR:") {
			t.Fatalf("%v: exit %d %q, want 2", args, code, errOut)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// regenerate-secret prints a new whsec_ secret; get-config shows it.
func TestRegenerateSecretCommand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if code, _, errOut := b.run("create", "-r", "myregistry", "-n", "signhook1", "--uri", b.receiver+"/hook", "--actions", "push"); code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	code, out, errOut := b.run("regenerate-secret", "-r", "myregistry", "-n", "signhook1")
	var got struct {
		SigningSecret string `json:"signingSecret"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || !strings.HasPrefix(got.SigningSecret, "whsec_") {
		t.Fatalf("regenerate-secret: %d %q %q", code, out, errOut)
	}
	if code, out, _ := b.run("get-config", "-r", "myregistry", "-n", "signhook1"); code != 0 || !strings.Contains(out, got.SigningSecret) {
		t.Fatalf("get-config: %d %q", code, out)
	}
	if code, out, _ := b.run("regenerate-secret", "-r", "myregistry", "-n", "signhook1", "-o", "table"); code != 0 || !strings.HasPrefix(out, "SIGNING SECRET\n") || strings.Contains(out, got.SigningSecret) {
		t.Fatalf("regenerate-secret -o table: %d %q", code, out)
	}
	if code, _, errOut := b.run("regenerate-secret", "-r", "myregistry", "-n", "nosuchhook"); code != 1 || !strings.Contains(errOut, "ResourceNotFound") {
		t.Fatalf("unknown webhook: %d %q", code, errOut)
	}
}
