package testbed

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Vault is a running Vault dev server: in memory, unsealed, with a root token.
type Vault struct {
	// Addr is the server's URL, http://127.0.0.1:<port>.
	Addr string
	// Token is the root token.
	Token string
	proc  *process
}

// StartVault starts a Vault dev server on a free loopback port and waits until
// it is unsealed and active. Stop it with Stop.
func StartVault(ctx context.Context) (*Vault, error) {
	path, err := Binary("vault")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "testbed-vault-")
	if err != nil {
		return nil, err
	}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "VAULT_DISABLE_MLOCK=true"}
	proc, err := startProcess("vault", env, path, "server", "-dev",
		"-dev-root-token-id="+token,
		"-dev-listen-address="+loopback(port),
		"-dev-no-store-token",
	)
	if err != nil {
		os.RemoveAll(home)
		return nil, err
	}
	v := &Vault{Addr: "http://" + loopback(port), Token: token, proc: proc}
	// sys/health answers 200 only once the server is initialized, unsealed and active.
	if err := proc.waitReady(ctx, 30*time.Second, httpOK(http.DefaultClient, v.Addr+"/v1/sys/health")); err != nil {
		proc.Stop()
		os.RemoveAll(home)
		return nil, err
	}
	go func() { <-proc.done; os.RemoveAll(home) }()
	return v, nil
}

// NewVault starts a Vault dev server for one test and stops it when the test ends.
func NewVault(t testing.TB) *Vault {
	t.Helper()
	v, err := StartVault(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	return v
}

// Stop stops the server; its in-memory data is gone.
func (v *Vault) Stop() { v.proc.Stop() }

// Client returns a Vault API client with the root token.
func (v *Vault) Client() (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = v.Addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(v.Token)
	return c, nil
}

// FetchCRL reads the DER CRL at url without a token, as a relying party
// does.
func FetchCRL(url string) (*x509.RevocationList, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("the CRL at %s (HTTP %d): %w", url, resp.StatusCode, err)
	}
	return crl, nil
}

// Env returns the VAULT_ADDR and VAULT_TOKEN settings that reach this server.
func (v *Vault) Env() []string {
	return []string{"VAULT_ADDR=" + v.Addr, "VAULT_TOKEN=" + v.Token}
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return "root-" + hex.EncodeToString(b), nil
}
