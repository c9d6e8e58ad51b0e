package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/schemas"
)

var vaultServer *testbed.Vault

func TestMain(m *testing.M) {
	v, err := testbed.StartVault(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vaultServer = v
	code := m.Run()
	v.Stop()
	os.Exit(code)
}

// clock is a test clock: real time plus an offset the test moves.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Store(int64(d)) }
func (c *clock) reset()                  { c.offset.Store(0) }

// accEnv is one combination the acceptance tests run in: a CLI (terraform
// or OpenTofu) and a backend (local or Vault).
type accEnv struct {
	cli     testbed.CLI
	kind    string // local | vault
	id      string // unique per run: mounts and names carry it, so runs never collide in the shared Vault
	dir     string
	mount   string
	clock   *clock
	backend backend.Backend
}

var runs atomic.Int64

// eachEnv runs test once per CLI and backend.
func eachEnv(t *testing.T, test func(t *testing.T, e *accEnv)) {
	for _, cli := range testbed.MustCLIs(t) {
		for _, kind := range []string{"local", "vault"} {
			t.Run(cli.Name+"/"+kind, func(t *testing.T) {
				cli.Setenv(t)
				e := &accEnv{cli: cli, kind: kind, id: fmt.Sprintf("t%d", runs.Add(1)), clock: &clock{}}
				var err error
				switch kind {
				case "local":
					e.dir = t.TempDir()
					e.backend, err = backend.OpenLocal(e.dir)
				case "vault":
					e.mount = e.id + "-catalog"
					e.backend, err = backend.OpenVault(context.Background(), backend.VaultConfig{
						Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: e.mount})
				}
				if err != nil {
					t.Fatal(err)
				}
				test(t, e)
			})
		}
	}
}

// providerConfig is the provider block for this environment.
func (e *accEnv) providerConfig() string {
	if e.kind == "local" {
		return fmt.Sprintf("provider \"certfleet\" {\n  backend = \"local\"\n  local {\n    path = %q\n  }\n}\n", e.dir)
	}
	return fmt.Sprintf("provider \"certfleet\" {\n  backend = \"vault\"\n  vault {\n    address       = %q\n    token         = %q\n    catalog_mount = %q\n  }\n}\n",
		vaultServer.Addr, vaultServer.Token, e.mount)
}

// config prefixes a configuration with the provider block; %[1]s in it is
// the run's ID.
func (e *accEnv) config(body string) string {
	return e.providerConfig() + strings.ReplaceAll(body, "%[1]s", e.id)
}

func (e *accEnv) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"certfleet": providerserver.NewProtocol6WithError(&certfleetProvider{version: "test", now: e.clock.now}),
	}
}

func (e *accEnv) test(t *testing.T, steps ...resource.TestStep) {
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: e.factories(), Steps: steps})
}

// noSecretsInState fails when the state holds a private key or the Vault token.
func noSecretsInState(s *terraform.State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	for _, secret := range []string{"PRIVATE KEY", vaultServer.Token} {
		if strings.Contains(string(b), secret) {
			return fmt.Errorf("the state contains %q", secret[:min(len(secret), 12)])
		}
	}
	return nil
}

// gone checks, for CheckDestroy, that catalog objects and PKI pieces are
// really gone from the backend, not just from the state.
func (e *accEnv) gone(checks ...func(ctx context.Context) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, c := range checks {
			if err := c(context.Background()); err != nil {
				return err
			}
		}
		return nil
	}
}

func (e *accEnv) noObject(kind, name string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var v map[string]any
		if err := e.backend.Get(ctx, backend.ObjectKey(kind, name), &v); !errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("%s %s is still in the catalog (err %v)", kind, name, err)
		}
		return nil
	}
}

func (e *accEnv) noAuthority(name, mount string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		a := &schemas.Authority{Metadata: schemas.ObjectMeta{Name: name}, Spec: schemas.AuthoritySpec{Mount: mount}}
		if _, err := e.backend.ReadAuthority(ctx, a); !errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("authority %s still has mount %s (err %v)", name, mount, err)
		}
		return nil
	}
}

func (e *accEnv) noRole(issuer, role, mount string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		iss := &schemas.Issuer{Metadata: schemas.ObjectMeta{Name: issuer}, Spec: schemas.IssuerSpec{Role: role}}
		a := &schemas.Authority{Spec: schemas.AuthoritySpec{Mount: mount}}
		if _, err := e.backend.ReadRole(ctx, iss, a); !errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("role %s still exists in %s (err %v)", role, mount, err)
		}
		return nil
	}
}
