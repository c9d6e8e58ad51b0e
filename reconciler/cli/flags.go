package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/report"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// sourceFlags say where the manifests are and how to reach them.
type sourceFlags struct {
	source, path                     string
	username, passwordFile           string
	tokenFile, sshKeyFile, knownHost string
	caFile                           string
	insecureHTTP                     bool
	timeout                          time.Duration
	verify                           bool
	trustedKeys                      []string
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", ".", "a local directory, or a Git URL (https://, ssh://)")
	fl.StringVar(&f.path, "path", "", "only read manifests under this folder of the repository (default: all of it)")
	fl.StringVar(&f.username, "git-username", "", "HTTPS basic-auth user (default: $CERTFLEET_GIT_USERNAME)")
	fl.StringVar(&f.passwordFile, "git-password-file", "", "file holding the HTTPS password or token for basic auth (default: $CERTFLEET_GIT_PASSWORD)")
	fl.StringVar(&f.tokenFile, "git-token-file", "", "file holding an HTTPS bearer token (default: $CERTFLEET_GIT_TOKEN)")
	fl.StringVar(&f.sshKeyFile, "git-ssh-key-file", "", "PEM private key for ssh:// URLs")
	fl.StringVar(&f.knownHost, "git-known-hosts-file", "", "known_hosts file for ssh:// URLs")
	fl.StringVar(&f.caFile, "git-ca-file", "", "PEM CA certificate that verifies the Git server (default: the system's roots)")
	fl.BoolVar(&f.insecureHTTP, "git-insecure-http", false, "allow credentials over plain HTTP to hosts other than loopback (default false)")
	fl.DurationVar(&f.timeout, "git-timeout", source.DefaultTimeout, "the longest one fetch of a remote repository may take")
	fl.BoolVar(&f.verify, "verify-signatures", false, "read a revision only when its head commit is signed by a key of --trusted-keys (OpenPGP or SSH); default false")
	fl.StringArrayVar(&f.trustedKeys, "trusted-keys", nil, "with --verify-signatures: an armored OpenPGP public key ring or an authorized_keys file of SSH keys (repeatable)")
}

func (f *sourceFlags) options() (source.Options, error) {
	o := source.Options{Path: f.path, Timeout: f.timeout}
	switch {
	case f.verify:
		v, err := source.ReadVerification(f.trustedKeys)
		if err != nil {
			return o, fmt.Errorf("--verify-signatures: %w (name them with --trusted-keys)", err)
		}
		o.Verify = v
	case len(f.trustedKeys) > 0:
		return o, fmt.Errorf("--trusted-keys is given without --verify-signatures: add --verify-signatures to check signatures")
	}
	a := &o.Auth
	a.Username = cmp.Or(f.username, os.Getenv("CERTFLEET_GIT_USERNAME"))
	var err error
	if a.Password, err = backend.ReadSecretFile(f.passwordFile); err != nil {
		return o, err
	}
	a.Password = cmp.Or(a.Password, os.Getenv("CERTFLEET_GIT_PASSWORD"))
	if a.BearerToken, err = backend.ReadSecretFile(f.tokenFile); err != nil {
		return o, err
	}
	a.BearerToken = cmp.Or(a.BearerToken, os.Getenv("CERTFLEET_GIT_TOKEN"))
	for _, x := range []struct {
		path string
		dst  *[]byte
	}{{f.sshKeyFile, &a.SSHKey}, {f.knownHost, &a.KnownHosts}, {f.caFile, &a.CA}} {
		if x.path == "" {
			continue
		}
		if *x.dst, err = os.ReadFile(x.path); err != nil {
			return o, fmt.Errorf("reading %s: %w", x.path, err)
		}
	}
	a.InsecureHTTP = f.insecureHTTP
	return o, nil
}

func (f *sourceFlags) fetch(ctx context.Context, ref string) (*source.Snapshot, error) {
	o, err := f.options()
	if err != nil {
		return nil, err
	}
	return source.Fetch(ctx, f.source, ref, o)
}

// catalogFlags say where the catalog is: a snapshot file or a backend.
type catalogFlags struct {
	catalogFile string
	backend     string
	stateDir    string
	vault       backend.VaultConfig
	tokenFile   string
}

func (f *catalogFlags) register(cmd *cobra.Command, backendDefault string) {
	fl := cmd.Flags()
	fl.StringVar(&f.catalogFile, "catalog", "", "a catalog snapshot file (from `certfleet catalog export`); needs no Vault")
	fl.StringVar(&f.backend, "backend", backendDefault, "read the catalog from a backend: vault or local")
	fl.StringVar(&f.stateDir, "state-dir", "", "the local backend's directory (default: "+backend.DefaultLocalPath()+")")
	fl.StringVar(&f.vault.Address, "vault-addr", "", "Vault's address (default: $VAULT_ADDR)")
	fl.StringVar(&f.vault.Namespace, "vault-namespace", "", "Vault namespace (default: $VAULT_NAMESPACE)")
	fl.StringVar(&f.vault.CACert, "vault-cacert", "", "PEM CA file that verifies Vault (default: $VAULT_CACERT)")
	fl.StringVar(&f.vault.CatalogMount, "catalog-mount", backend.DefaultCatalogMount, "the KV v2 mount of the catalog in Vault")
	fl.StringVar(&f.tokenFile, "vault-token-file", "", "file holding the Vault token (default: $VAULT_TOKEN)")
	fl.DurationVar(&f.vault.Timeout, "request-timeout", backend.DefaultRequestTimeout, "the longest one request to Vault or a Kubernetes API server may take")
}

// openBackend opens the configured backend (the token never comes from a
// flag value, which other users could read in the process list).
func (f *catalogFlags) openBackend(ctx context.Context) (backend.Backend, error) {
	cfg := backend.Config{Type: f.backend, Local: backend.LocalConfig{Path: f.stateDir}, Vault: f.vault}
	if f.backend == "vault" {
		tok, err := backend.ReadSecretFile(f.tokenFile)
		if err != nil {
			return nil, err
		}
		cfg.Vault.Token = tok
		cfg.Vault = cfg.Vault.WithEnv()
		if err := cfg.Vault.Check("--vault-addr / --vault-token-file"); err != nil {
			return nil, err
		}
	}
	return backend.Open(ctx, cfg)
}

// load returns the catalog, or nil when none was asked for.
func (f *catalogFlags) load(ctx context.Context) (*schemas.Catalog, error) {
	if f.catalogFile != "" {
		b, err := os.ReadFile(f.catalogFile)
		if err != nil {
			return nil, fmt.Errorf("reading the catalog: %w", err)
		}
		cat, errs := schemas.DecodeCatalog(f.catalogFile, b)
		if len(errs) > 0 {
			return nil, fmt.Errorf("the catalog snapshot is invalid:\n%w", errs)
		}
		return cat, nil
	}
	if f.backend == "" {
		return nil, nil
	}
	b, err := f.openBackend(ctx)
	if err != nil {
		return nil, err
	}
	return backend.LoadCatalog(ctx, b)
}

// outputFlag is -o.
type outputFlag struct{ format string }

func (o *outputFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: "+strings.Join(report.Formats, ", "))
}

func (o *outputFlag) check() error {
	for _, f := range report.Formats {
		if o.format == f {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: use one of %s", o.format, strings.Join(report.Formats, ", "))
}

// colorFor says whether to color text written to w: only on a terminal,
// and never when NO_COLOR is set.
func colorFor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// notes go to stderr so that stdout stays parseable (-o json).
func note(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), "note: "+format+"\n", args...)
}

func now() time.Time { return time.Now() }
