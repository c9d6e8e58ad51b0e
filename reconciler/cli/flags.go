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
	"github.com/certfleet/certfleet/reconciler/plan"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// sourceFlags say where the manifests are and how to reach them.
type sourceFlags struct {
	source, path string
	creds        source.Credentials
	timeout      time.Duration
	verify       bool
	trustedKeys  []string
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", ".", "a local directory, or a Git URL (https://, ssh://)")
	fl.StringVar(&f.path, "path", "", "only read manifests under this folder of the repository (default: all of it)")
	fl.StringVar(&f.creds.Username, "git-username", "", "HTTPS basic-auth user (default: $CERTFLEET_GIT_USERNAME)")
	fl.StringVar(&f.creds.PasswordFile, "git-password-file", "", "file holding the HTTPS password or token for basic auth (default: $CERTFLEET_GIT_PASSWORD)")
	fl.StringVar(&f.creds.TokenFile, "git-token-file", "", "file holding an HTTPS bearer token (default: $CERTFLEET_GIT_TOKEN)")
	fl.StringVar(&f.creds.SSHKeyFile, "git-ssh-key-file", "", "PEM private key for ssh:// URLs")
	fl.StringVar(&f.creds.KnownHostsFile, "git-known-hosts-file", "", "known_hosts file for ssh:// URLs")
	fl.StringVar(&f.creds.CAFile, "git-ca-file", "", "PEM CA certificate that verifies the Git server (default: the system's roots)")
	fl.BoolVar(&f.creds.InsecureHTTP, "git-insecure-http", false, "allow credentials over plain HTTP to hosts other than loopback (default false)")
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
	var err error
	if o.Auth, err = f.creds.Read(); err != nil {
		return o, err
	}
	// The environment stands in for what the flags leave unset.
	a := &o.Auth
	a.Username = cmp.Or(a.Username, os.Getenv("CERTFLEET_GIT_USERNAME"))
	a.Password = cmp.Or(a.Password, os.Getenv("CERTFLEET_GIT_PASSWORD"))
	a.BearerToken = cmp.Or(a.BearerToken, os.Getenv("CERTFLEET_GIT_TOKEN"))
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
	fl.StringVar(&f.vault.TokenFile, "vault-token-file", "", "file holding the Vault token (default: $VAULT_TOKEN)")
	fl.DurationVar(&f.vault.Timeout, "request-timeout", backend.DefaultRequestTimeout, "the longest one request to Vault or a Kubernetes API server may take")
}

// openBackend opens the configured backend.
func (f *catalogFlags) openBackend(ctx context.Context) (backend.Backend, error) {
	return backend.Open(ctx, backend.Config{Type: f.backend, Local: backend.LocalConfig{Path: f.stateDir}, Vault: f.vault,
		Where: "--vault-addr / --vault-token-file"})
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
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: "+strings.Join(plan.Formats, ", "))
}

func (o *outputFlag) check() error {
	for _, f := range plan.Formats {
		if o.format == f {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: use one of %s", o.format, strings.Join(plan.Formats, ", "))
}

// print writes a validate or plan report to stdout and ends the command
// with the exit code the report's verdict says.
func (o *outputFlag) print(cmd *cobra.Command, rep *schemas.Report) error {
	if err := plan.Write(cmd.OutOrStdout(), rep, o.format, colorFor(cmd.OutOrStdout())); err != nil {
		return err
	}
	return WithExitCode(plan.ExitCode(rep))
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
