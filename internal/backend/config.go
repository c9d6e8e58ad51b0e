package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config selects and configures a backend.
type Config struct {
	// Type is "vault" or "local" (default local).
	Type  string
	Vault VaultConfig
	Local LocalConfig
	// Where names these settings in an error ("--vault-addr /
	// --vault-token-file", "backend.vault in certfleet.yaml").
	Where string
}

// VaultConfig reaches a Vault server. Empty fields fall back to the
// environment variables Vault's own CLI reads.
type VaultConfig struct {
	Address string // VAULT_ADDR
	Token   string // VAULT_TOKEN
	// TokenFile, when set, holds the token (read by Open): a token never
	// comes from a flag value, which other users could read in the process list.
	TokenFile     string
	Namespace     string // VAULT_NAMESPACE
	CACert        string // VAULT_CACERT: a PEM file
	SkipTLSVerify bool
	// CatalogMount is the KV v2 mount of the catalog and records. Default certfleet.
	CatalogMount string
	// Timeout bounds each request to Vault, so a hung server cannot hang a
	// pass. Default DefaultRequestTimeout.
	Timeout time.Duration
}

// DefaultRequestTimeout bounds one request to Vault or a Kubernetes API
// server when nothing else is configured.
const DefaultRequestTimeout = 30 * time.Second

// LocalConfig is the local backend's directory.
type LocalConfig struct {
	// Path of the state directory. Default: certfleet under the user's config directory.
	Path string
}

// DefaultCatalogMount is the KV v2 mount that holds the catalog in Vault.
const DefaultCatalogMount = "certfleet"

// WithEnv fills empty settings from VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and VAULT_CACERT.
func (c VaultConfig) WithEnv() VaultConfig {
	fill := func(v *string, env string) {
		if *v == "" {
			*v = os.Getenv(env)
		}
	}
	fill(&c.Address, "VAULT_ADDR")
	fill(&c.Token, "VAULT_TOKEN")
	fill(&c.Namespace, "VAULT_NAMESPACE")
	fill(&c.CACert, "VAULT_CACERT")
	if c.CatalogMount == "" {
		c.CatalogMount = DefaultCatalogMount
	}
	return c
}

// Check says which required setting is missing and where it can come from.
// where names the configuration the user writes ("the provider's vault block", "--vault-addr").
func (c VaultConfig) Check(where string) error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, fmt.Errorf("the Vault address is missing: set address in %s, or VAULT_ADDR", where))
	}
	if c.Token == "" {
		errs = append(errs, fmt.Errorf("the Vault token is missing: set token in %s, or VAULT_TOKEN", where))
	}
	return errors.Join(errs...)
}

// DefaultLocalPath is the local backend's default directory.
func DefaultLocalPath() string {
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "certfleet")
	}
	return ".certfleet"
}

// Open connects to the configured backend.
func Open(ctx context.Context, c Config) (Backend, error) {
	switch c.Type {
	case "vault":
		v := c.Vault
		if v.TokenFile != "" {
			tok, err := ReadSecretFile(v.TokenFile)
			if err != nil {
				return nil, err
			}
			v.Token = tok
		}
		v = v.WithEnv()
		if err := v.Check(cmp.Or(c.Where, "the vault settings")); err != nil {
			return nil, err
		}
		return OpenVault(ctx, v)
	case "local", "":
		path := c.Local.Path
		if path == "" {
			path = DefaultLocalPath()
		}
		return OpenLocal(path)
	}
	return nil, fmt.Errorf("unknown backend %q: use vault or local", c.Type)
}

// ReadSecretFile reads a token or password from a file (a Vault agent sink,
// a mounted Secret), trimmed; "" for no file. Secrets come from files, never
// from flag values, which other users could read in the process list.
func ReadSecretFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}
