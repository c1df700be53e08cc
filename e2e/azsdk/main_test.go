package azsdk

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry"
)

const (
	apiToken     = "e2e-azsdk-api-token"
	subscription = "00000000-0000-0000-0000-000000000000"
)

// env is what TestMain set up for every test: the built binary, the running
// server and a receiver for its deliveries.
var env struct {
	bin      string
	server   string // http://127.0.0.1:port
	receiver string
	received atomic.Int32
}

// TestMain builds the real registryhooks binary from the repository root,
// starts `registryhooks serve` on a free loopback port with a fresh
// database, waits for /healthz, runs the tests and stops the server.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "azsdk-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	env.bin = filepath.Join(dir, "registryhooks")
	build := exec.Command("go", "build", "-o", env.bin, ".")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build registryhooks:", err)
		return 1
	}

	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.received.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	env.receiver = recv.URL

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	env.server = "http://" + addr
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := exec.Command(env.bin, "serve", "--addr", addr, "--db", filepath.Join(dir, "x.db"), "--allow-private-targets")
	srv.Env = append(os.Environ(), "REGISTRYHOOKS_API_TOKEN="+apiToken, "REGISTRYHOOKS_ADMIN_PASSWORD=e2e-admin-password")
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start server:", err)
		return 1
	}
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
		}
	}()
	if err := waitHealthy(env.server + "/healthz"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		dumpLog(logf.Name())
		return 1
	}
	code := m.Run()
	if code != 0 {
		dumpLog(logf.Name())
	}
	return code
}

func waitHealthy(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("server at %s never became healthy", url)
}

func dumpLog(path string) {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	fmt.Fprintf(os.Stderr, "--- server log (tail) ---\n%s\n", b)
}

// staticCred hands the SDK a fixed bearer token; the SDK treats it as opaque.
type staticCred struct{ token string }

func (c staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(24 * time.Hour)}, nil
}

// clientOptions points the SDK at the server: a custom cloud whose Resource
// Manager endpoint and audience are both set (the SDK refuses either
// empty), plain HTTP allowed for credentials, no RP registration.
func clientOptions() *arm.ClientOptions {
	return &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{
				ActiveDirectoryAuthorityHost: "https://login.microsoftonline.com/",
				Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
					cloud.ResourceManager: {Endpoint: env.server, Audience: "https://management.azure.com"},
				},
			},
			InsecureAllowCredentialWithHTTP: true,
			Retry:                           policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
}

func clients(t *testing.T, token string) (*armcontainerregistry.RegistriesClient, *armcontainerregistry.WebhooksClient) {
	t.Helper()
	f, err := armcontainerregistry.NewClientFactory(subscription, staticCred{token: token}, clientOptions())
	if err != nil {
		t.Fatal(err)
	}
	return f.NewRegistriesClient(), f.NewWebhooksClient()
}

func ptr[T any](v T) *T { return &v }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createRegistry creates a registry through the SDK and checks the result.
func createRegistry(t *testing.T, regs *armcontainerregistry.RegistriesClient, rg, name string, sku armcontainerregistry.SKUName) {
	t.Helper()
	ctx := ctxT(t)
	poller, err := regs.BeginCreate(ctx, rg, name, armcontainerregistry.Registry{
		Location: ptr("local"), SKU: &armcontainerregistry.SKU{Name: ptr(sku)}, Tags: map[string]*string{"owner": ptr("e2e")},
	}, nil)
	if err != nil {
		t.Fatalf("create registry %s: %v", name, err)
	}
	res, err := poller.PollUntilDone(ctx, pollFast)
	if err != nil {
		t.Fatalf("create registry %s: %v", name, err)
	}
	if *res.Name != name || *res.SKU.Name != sku || *res.Properties.ProvisioningState != armcontainerregistry.ProvisioningStateSucceeded {
		t.Fatalf("created registry: %+v", res.Registry)
	}
}

// pollFast would only matter if the server answered with an async
// operation; it never does, so PollUntilDone returns at once.
var pollFast = &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}

// respErr asserts err is an ARM error with the status and code.
func respErr(t *testing.T, err error, status int, code string) *azcore.ResponseError {
	t.Helper()
	re, ok := err.(*azcore.ResponseError)
	if !ok {
		t.Fatalf("want *azcore.ResponseError %d %s, got %T %v", status, code, err, err)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("want %d %s, got %d %s: %v", status, code, re.StatusCode, re.ErrorCode, err)
	}
	return re
}
