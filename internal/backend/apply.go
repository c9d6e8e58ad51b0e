package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/schemas"
)

// Errors of applying catalog objects, so callers can point at the field
// (the provider) or the document (catalog apply) at fault.
var (
	ErrExists           = errors.New("already exists")
	ErrMountInUse       = errors.New("mount already holds another authority")
	ErrUnknownAuthority = errors.New("authority not in the catalog")
)

// CreateAuthority creates an authority in the backend and records it, with
// its status, in the catalog: the provider and `certfleet catalog apply` go
// through here, so both behave alike. An intermediate's parent must be in
// the catalog already.
func CreateAuthority(ctx context.Context, b Backend, a *schemas.Authority) error {
	if _, err := GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, a.Metadata.Name); err == nil {
		return fmt.Errorf("authority %q: %w in the catalog of %s", a.Metadata.Name, ErrExists, b.Describe())
	}
	cat, err := LoadCatalog(ctx, b)
	if err != nil {
		return fmt.Errorf("reading the catalog: %w", err)
	}
	for _, other := range cat.Authorities {
		if other.Spec.Mount == a.Spec.Mount {
			return fmt.Errorf("mount %q: %w (%q); give each authority its own mount", a.Spec.Mount, ErrMountInUse, other.Metadata.Name)
		}
	}
	parent, err := Parent(ctx, b, a)
	if err != nil {
		return err
	}
	st, err := b.CreateAuthority(ctx, a, parent)
	if err != nil {
		return fmt.Errorf("creating authority %q: %w", a.Metadata.Name, err)
	}
	a.Status = st
	return PutObject(ctx, b, a)
}

// RotateAuthority adds a new issuer with a new key to an existing
// authority's mount and makes it the default, applies the URLs and records
// the new status in the catalog: the provider's apply of a planned rotation
// and `certfleet catalog apply` go through here.
func RotateAuthority(ctx context.Context, b Backend, a *schemas.Authority) error {
	parent, err := Parent(ctx, b, a)
	if err != nil {
		return err
	}
	if _, err := b.RotateAuthority(ctx, a, parent); err != nil {
		return fmt.Errorf("rotating authority %q: %w", a.Metadata.Name, err)
	}
	return ConfigureAuthority(ctx, b, a)
}

// ConfigureAuthority applies what changes in place (the URLs) and records
// the authority with its current status in the catalog.
func ConfigureAuthority(ctx context.Context, b Backend, a *schemas.Authority) error {
	if err := b.ConfigureAuthority(ctx, a); err != nil {
		return fmt.Errorf("configuring authority %q: %w", a.Metadata.Name, err)
	}
	st, err := b.ReadAuthority(ctx, a)
	if err != nil {
		return fmt.Errorf("reading authority %q: %w", a.Metadata.Name, err)
	}
	a.Status = st
	return PutObject(ctx, b, a)
}

// Parent returns an intermediate's parent from the catalog (nil for a root).
func Parent(ctx context.Context, b Backend, a *schemas.Authority) (*schemas.Authority, error) {
	if a.Spec.Type != schemas.AuthorityIntermediate {
		return nil, nil
	}
	p, err := GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, a.Spec.Parent)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("parent %q of %q: %w of %s; create the parent first", a.Spec.Parent, a.Metadata.Name, ErrUnknownAuthority, b.Describe())
	}
	return p, err
}

// WriteIssuer writes an issuer's role in its authority's mount and records
// the issuer in the catalog.
func WriteIssuer(ctx context.Context, b Backend, iss *schemas.Issuer) error {
	if iss.Spec.ACME != nil {
		// No authority and no role: the ACME CA signs; its account is made on first issuance.
		return PutObject(ctx, b, iss)
	}
	a, err := GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, iss.Spec.Authority)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("authority %q of issuer %q: %w of %s; create the authority first", iss.Spec.Authority, iss.Metadata.Name, ErrUnknownAuthority, b.Describe())
	}
	if err != nil {
		return err
	}
	if err := b.PutRole(ctx, iss, a); err != nil {
		return fmt.Errorf("writing the role of issuer %q: %w", iss.Metadata.Name, err)
	}
	return PutObject(ctx, b, iss)
}

// ApplyOption changes what Apply does; see WithNow and WithRotation.
type ApplyOption func(*applyOptions)

type applyOptions struct {
	now    time.Time
	rotate bool
}

// WithNow is the time Apply compares rotation times with. Default: time.Now().
func WithNow(now time.Time) ApplyOption { return func(o *applyOptions) { o.now = now } }

// WithRotation rotates every existing authority, due or not
// (`certfleet catalog apply --rotate`). Default: only those due.
func WithRotation() ApplyOption { return func(o *applyOptions) { o.rotate = true } }

// Apply loads a catalog into a backend: authorities that do not exist yet
// are created (parents before children); existing ones keep their keys until
// their rotateBefore is reached, when they are rotated as the provider's plan
// rotates them (RotateAuthority); issuers' roles are written; policies and
// clusters are recorded. It returns what it did, one line per object.
func Apply(ctx context.Context, b Backend, cat *schemas.Catalog, opts ...ApplyOption) ([]string, error) {
	o := applyOptions{now: time.Now()}
	for _, opt := range opts {
		opt(&o)
	}
	var done []string
	created := map[string]bool{}
	var create func(name string, seen map[string]bool) error
	create = func(name string, seen map[string]bool) error {
		a, ok := cat.Authorities[name]
		if !ok || created[name] {
			return nil
		}
		if seen[name] {
			return fmt.Errorf("authorities %v form a parent cycle", name)
		}
		seen[name] = true
		if a.Spec.Type == schemas.AuthorityIntermediate {
			if err := create(a.Spec.Parent, seen); err != nil {
				return err
			}
		}
		created[name] = true
		if existing, err := GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, name); err == nil {
			if st, err := b.ReadAuthority(ctx, existing); err == nil {
				existing.Status = st
				due := existing.RotatesAt()
				if !o.rotate && o.now.Before(due) {
					done = append(done, "Authority/"+name+": exists, kept (rotates at "+due.UTC().Format(time.RFC3339)+")")
					return nil
				}
				if err := RotateAuthority(ctx, b, a); err != nil {
					return err
				}
				done = append(done, "Authority/"+name+": rotated: a new issuer with a new key is the default, the old one stays until it expires")
				return nil
			}
		}
		if err := CreateAuthority(ctx, b, a); err != nil {
			return err
		}
		done = append(done, "Authority/"+name+": created")
		return nil
	}
	for _, o := range cat.Objects() {
		var err error
		switch x := o.(type) {
		case *schemas.Authority:
			err = create(x.Metadata.Name, map[string]bool{})
		case *schemas.Issuer:
			if err = WriteIssuer(ctx, b, x); err == nil {
				done = append(done, "Issuer/"+x.Metadata.Name+": written")
			}
		case *schemas.Rollout:
			if err = PutRollout(ctx, b, x); err == nil {
				done = append(done, "Rollout/"+x.Metadata.Name+": written")
			}
		case *schemas.Policy, *schemas.Cluster:
			kind, name, _ := identity(o)
			if err = PutObject(ctx, b, o); err == nil {
				done = append(done, kind+"/"+name+": written")
			}
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
