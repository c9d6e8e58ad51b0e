// Package backend is where certfleet's PKI and state live: certificate
// authorities and their keys, issuer roles, the catalog (Authority, Issuer,
// Policy, Cluster objects) and the reconciler's records (inventory). Two
// implementations share one interface: Vault (PKI mounts and roles, the
// catalog in KV v2) and local (a directory, the embedded default).
package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certfleet/certfleet/schemas"
)

// ErrNotFound is returned (wrapped) when a key, authority or role does not exist.
var ErrNotFound = errors.New("not found")

// Store keeps JSON documents by key ("Issuer/web", "inventory/<id>").
type Store interface {
	// Get decodes the document at key into v; ErrNotFound when there is none.
	Get(ctx context.Context, key string, v any) error
	// Put writes v at key, replacing what was there.
	Put(ctx context.Context, key string, v any) error
	// Delete removes the document at key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix ("Issuer/"), sorted, without the prefix.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Revoker is a backend whose authorities publish revocations (Vault's PKI
// engine, on its CRL). The local backend keeps no CRL and is not one.
type Revoker interface {
	// Revoke puts the certificate with serial (colon-separated hex, as
	// Vault writes it) on the CRL of authority a.
	Revoke(ctx context.Context, a *schemas.Authority, serial string) error
}

// Purger is a Store whose Delete keeps history (Vault KV v2 soft-deletes a
// version, and List still names the key): Purge removes the key with its
// history, so List forgets it.
type Purger interface {
	Purge(ctx context.Context, key string) error
}

// Purge removes the document at key and, where the store keeps history,
// the history too. It is for bookkeeping that List must stop naming once
// done with (met renewal requests, inventory entries moved into pages),
// so that a pass's reads stay proportional to what is live; catalog
// objects are deleted with Delete, which keeps Vault's history of them.
func Purge(ctx context.Context, s Store, key string) error {
	if p, ok := s.(Purger); ok {
		return p.Purge(ctx, key)
	}
	return s.Delete(ctx, key)
}

// Signed is a certificate a backend issued: public material only.
type Signed struct {
	// Certificate is the leaf, PEM.
	Certificate string
	// Chain is the issuing CA's chain, PEM, nearest first (intermediates, then the root).
	Chain        []string
	SerialNumber string
	NotBefore    time.Time
	NotAfter     time.Time
}

// PKI creates authorities (their keys never leave the backend), keeps issuer
// roles and signs certificate requests.
type PKI interface {
	// CreateAuthority makes the authority's mount (if missing) and a first
	// issuer with a new key: self-signed for a root, signed by parent for an
	// intermediate. It returns the status to record in the catalog.
	CreateAuthority(ctx context.Context, a, parent *schemas.Authority) (schemas.AuthorityStatus, error)
	// RotateAuthority adds a new issuer with a new key to the authority's mount
	// and makes it the default; the old issuers stay until they expire, so
	// certificates they issued remain valid.
	RotateAuthority(ctx context.Context, a, parent *schemas.Authority) (schemas.AuthorityStatus, error)
	// ReadAuthority reads the current status; ErrNotFound when the mount or
	// its default issuer is gone.
	ReadAuthority(ctx context.Context, a *schemas.Authority) (schemas.AuthorityStatus, error)
	// DescribeAuthority fills the spec and status of an authority that only
	// names its mount from what the mount holds, for adopting a mount
	// certfleet did not create; ErrNotFound when it holds no issuer.
	DescribeAuthority(ctx context.Context, a *schemas.Authority) error
	// ConfigureAuthority applies what can change in place: the URLs.
	ConfigureAuthority(ctx context.Context, a *schemas.Authority) error
	// DeleteAuthority removes the authority's mount with its keys and issuers.
	DeleteAuthority(ctx context.Context, a *schemas.Authority) error

	// PutRole writes the issuer's role in its authority's mount.
	PutRole(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority) error
	// ReadRole reads the issuer's role as the backend holds it, as an
	// IssuerSpec (Authority and Role are the issuer's); ErrNotFound when the
	// role is gone. Vault reports its own defaults (a key size, lifetimes in
	// seconds): IssuerSpec.SameRole compares it with a declared one.
	ReadRole(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority) (schemas.IssuerSpec, error)
	// DeleteRole removes the issuer's role.
	DeleteRole(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority) error

	// Sign issues a certificate for a PEM CSR through the issuer's role, with
	// the requested lifetime. Only the CSR travels: the key stays with the caller.
	Sign(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority, csrPEM []byte, ttl time.Duration) (*Signed, error)
}

// Backend is a Store and a PKI.
type Backend interface {
	Store
	PKI
	// Describe names the backend for messages, without secrets ("vault at https://…", "local at /var/lib/certfleet").
	Describe() string
}

// ObjectKey is where a catalog object is stored: <kind>/<name>.
func ObjectKey(kind, name string) string { return kind + "/" + name }

// PutObject stores a catalog object under its kind and name.
func PutObject(ctx context.Context, s Store, obj any) error {
	kind, name, err := identity(obj)
	if err != nil {
		return err
	}
	return s.Put(ctx, ObjectKey(kind, name), obj)
}

// PutRollout stores the catalog's Rollout, refusing a second one under
// another name: every pass follows one Rollout, and a catalog with two
// would not load.
func PutRollout(ctx context.Context, s Store, r *schemas.Rollout) error {
	names, err := s.List(ctx, schemas.KindRollout+"/")
	if err != nil {
		return fmt.Errorf("listing Rollout objects: %w", err)
	}
	for _, n := range names {
		if n != r.Metadata.Name {
			return fmt.Errorf("the catalog already has Rollout %q: it holds one Rollout, which every pass follows; change that one, or delete it first", n)
		}
	}
	return PutObject(ctx, s, r)
}

// GetObject reads a catalog object of a kind; ErrNotFound when missing.
func GetObject[T any](ctx context.Context, s Store, kind, name string) (*T, error) {
	v := new(T)
	if err := s.Get(ctx, ObjectKey(kind, name), v); err != nil {
		return nil, err
	}
	return v, nil
}

// DeleteObject removes a catalog object.
func DeleteObject(ctx context.Context, s Store, kind, name string) error {
	return s.Delete(ctx, ObjectKey(kind, name))
}

// LoadCatalog reads every catalog object.
func LoadCatalog(ctx context.Context, s Store) (*schemas.Catalog, error) {
	c := schemas.NewCatalog()
	for _, kind := range []string{schemas.KindAuthority, schemas.KindIssuer, schemas.KindPolicy, schemas.KindCluster, schemas.KindRollout} {
		names, err := s.List(ctx, kind+"/")
		if err != nil {
			return nil, fmt.Errorf("listing %s objects: %w", kind, err)
		}
		for _, name := range names {
			var obj any
			switch kind {
			case schemas.KindAuthority:
				obj = &schemas.Authority{}
			case schemas.KindIssuer:
				obj = &schemas.Issuer{}
			case schemas.KindPolicy:
				obj = &schemas.Policy{}
			case schemas.KindCluster:
				obj = &schemas.Cluster{}
			case schemas.KindRollout:
				obj = &schemas.Rollout{}
			}
			if err := s.Get(ctx, ObjectKey(kind, name), obj); err != nil {
				if errors.Is(err, ErrNotFound) {
					continue // deleted between List and Get
				}
				return nil, fmt.Errorf("reading %s %s: %w", kind, name, err)
			}
			if err := c.Add(obj); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func identity(obj any) (kind, name string, err error) {
	switch o := obj.(type) {
	case *schemas.Authority:
		return schemas.KindAuthority, o.Metadata.Name, nil
	case *schemas.Issuer:
		return schemas.KindIssuer, o.Metadata.Name, nil
	case *schemas.Policy:
		return schemas.KindPolicy, o.Metadata.Name, nil
	case *schemas.Cluster:
		return schemas.KindCluster, o.Metadata.Name, nil
	case *schemas.Rollout:
		return schemas.KindRollout, o.Metadata.Name, nil
	}
	return "", "", fmt.Errorf("%T is not a catalog kind", obj)
}

// checkKey refuses keys that could escape a store's namespace.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") || strings.Contains(key, "//") {
		return fmt.Errorf("invalid key %q", key)
	}
	return nil
}
