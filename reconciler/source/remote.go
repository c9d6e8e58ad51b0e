package source

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/fluxcd/pkg/git"
	"github.com/fluxcd/pkg/git/gogit"
	"github.com/fluxcd/pkg/git/repository"

	"github.com/certfleet/certfleet/internal/backend"
)

// Auth is how to reach a remote repository. It never appears in a message.
type Auth struct {
	// Username and Password for HTTPS basic auth (a token as password works with most forges).
	Username, Password string
	// BearerToken for HTTPS bearer auth; exclusive with basic auth.
	BearerToken string
	// SSHKey is a PEM private key and KnownHosts the known_hosts lines, for ssh:// URLs.
	SSHKey, KnownHosts []byte
	// CA is a PEM CA certificate that verifies the server (HTTPS).
	CA []byte
	// InsecureHTTP allows credentials over plain HTTP to hosts other than loopback.
	InsecureHTTP bool
}

// Credentials says where a remote repository's credentials are: a user
// name, and files for the secrets (never flag values, which other users
// could read in the process list).
type Credentials struct {
	Username                           string
	PasswordFile, TokenFile            string
	SSHKeyFile, KnownHostsFile, CAFile string
	InsecureHTTP                       bool
}

// Read reads the files into an Auth (a password or token trimmed).
func (c Credentials) Read() (Auth, error) {
	a := Auth{Username: c.Username, InsecureHTTP: c.InsecureHTTP}
	var err error
	if a.Password, err = backend.ReadSecretFile(c.PasswordFile); err != nil {
		return a, err
	}
	if a.BearerToken, err = backend.ReadSecretFile(c.TokenFile); err != nil {
		return a, err
	}
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{c.SSHKeyFile, &a.SSHKey}, {c.KnownHostsFile, &a.KnownHosts}, {c.CAFile, &a.CA}} {
		if f.path == "" {
			continue
		}
		if *f.dst, err = os.ReadFile(f.path); err != nil {
			return a, fmt.Errorf("reading %s: %w", f.path, err)
		}
	}
	return a, nil
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// strategies lists how a user's ref may be meant, in the order tried: a
// full hash is a commit; refs/… a reference; otherwise a branch, then a tag.
func strategies(ref string) []repository.CheckoutStrategy {
	switch {
	case ref == "":
		return []repository.CheckoutStrategy{{Branch: "main"}, {Branch: "master"}}
	case hexHash.MatchString(ref):
		return []repository.CheckoutStrategy{{Commit: ref}}
	case strings.HasPrefix(ref, "refs/"):
		return []repository.CheckoutStrategy{{RefName: ref}}
	}
	return []repository.CheckoutStrategy{{Branch: ref}, {Tag: ref}}
}

// fetchRemote clones one revision into a temporary directory, reads it and
// removes the clone. Credentials written into the URL are moved into the
// auth options and never echoed.
func fetchRemote(ctx context.Context, raw, ref string, o Options) (*Snapshot, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("source URL %s: %w", Sanitize(raw), err)
	}
	data := map[string][]byte{}
	a := o.Auth
	if u.User != nil {
		if a.Username == "" {
			a.Username = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && a.Password == "" {
			a.Password = p
		}
		u.User = nil
	}
	switch {
	case u.Scheme == "ssh":
		data["identity"], data["known_hosts"] = a.SSHKey, a.KnownHosts
	case a.BearerToken != "":
		data["bearerToken"] = []byte(a.BearerToken)
	case a.Username != "":
		data["username"], data["password"] = []byte(a.Username), []byte(a.Password)
	}
	if len(a.CA) > 0 {
		data["ca.crt"] = a.CA
	}
	authOpts, err := git.NewAuthOptions(*u, data)
	if err != nil {
		return nil, fmt.Errorf("auth for %s: %w", u, err)
	}
	dir, err := os.MkdirTemp("", "certfleet-clone-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	clientOpts := []gogit.ClientOption{gogit.WithDiskStorage()}
	if a.InsecureHTTP || isLoopback(u) {
		clientOpts = append(clientOpts, gogit.WithInsecureCredentialsOverHTTP())
	}
	var lastErr error
	for _, s := range strategies(ref) {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		client, err := gogit.NewClient(dir, authOpts, clientOpts...)
		if err != nil {
			return nil, err
		}
		commit, err := client.Clone(ctx, u.String(), repository.CloneConfig{
			CheckoutStrategy: s, ShallowClone: s.Commit == "", LastObservedCommit: lastObserved(s, o.LastCommit),
		})
		client.Close()
		if err == nil && !git.IsConcreteCommit(*commit) {
			return nil, ErrUnchanged // the ref was listed, nothing was transferred
		}
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		rev := Revision{Ref: RefOrDefault(ref), Hash: commit.Hash.String(), Author: commit.Author.Name,
			AuthorEmail: commit.Author.Email, Message: strings.TrimSpace(commit.Message), Time: commit.Author.When.UTC()}
		if o.Verify != nil {
			// Before a single manifest is read: an unverified revision is never applied.
			if _, err := o.Verify.verify(rev, commit.Signature, commit.Encoded); err != nil {
				return nil, err
			}
		}
		snap, err := readDir(dir, o)
		if err != nil {
			return nil, err
		}
		snap.Revision = rev
		return snap, nil
	}
	return nil, fmt.Errorf("fetching %s at %q: %s", u, RefOrDefault(ref), sanitizeErr(lastErr, raw))
}

// lastObserved is the revision fluxcd's client compares the remote ref
// with, in its own form: "<branch>@sha1:<hash>" (or tag, or full ref name).
// A bare hash never matches, and every poll would clone.
func lastObserved(s repository.CheckoutStrategy, hash string) string {
	if hash == "" {
		return ""
	}
	digest := git.Hash(hash).Digest()
	switch {
	case s.Branch != "":
		return s.Branch + "@" + digest
	case s.Tag != "":
		return s.Tag + "@" + digest
	case s.RefName != "":
		return s.RefName + "@" + digest
	}
	return "" // a commit is its own revision: there is nothing to poll
}

// RefOrDefault is the ref a remote fetch reads: ref, or main when none is given.
func RefOrDefault(ref string) string {
	if ref == "" {
		return "main"
	}
	return ref
}

// sanitizeErr keeps credentials out of an error message: libraries may echo
// the URL they were given.
func sanitizeErr(err error, raw string) string {
	if err == nil {
		return "unknown error"
	}
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		msg = strings.ReplaceAll(msg, raw, Sanitize(raw))
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "REDACTED")
		}
	}
	return msg
}
