package backend_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

// TestAdoptAnIntermediateFindsItsParentAndDescribesItAsDeclared: a root in
// the catalog and an intermediate made beside it without a catalog entry; the
// adopted intermediate names the root as its parent, and its spec is the one
// it was made from, spelled as the provider spells it. Nothing in the mount
// changes: the issuer and serial stay.
func TestAdoptAnIntermediateFindsItsParentAndDescribesItAsDeclared(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend.Backend, prefix string) {
		ctx := context.Background()
		root := authority("root", prefix+"-aroot", schemas.AuthorityRoot, "")
		if err := backend.CreateAuthority(ctx, b, root); err != nil {
			t.Fatal(err)
		}
		made := authority("inter", prefix+"-ainter", schemas.AuthorityIntermediate, "root")
		made.Spec.TTL, made.Spec.PermittedDNSDomains = "360h", []string{"svc.test"}
		st, err := b.CreateAuthority(ctx, made, root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := backend.AdoptAuthority(ctx, b, "orphan", prefix+"-nothing"); err == nil {
			t.Error("adopted a mount that holds nothing")
		}
		got, err := backend.AdoptAuthority(ctx, b, "inter", made.Spec.Mount)
		if err != nil {
			t.Fatal(err)
		}
		want := made.Spec
		maxPath := -1
		want.MaxPathLength, want.RotateBefore = &maxPath, "5d" // a third of 360h, as the provider plans it
		if !reflect.DeepEqual(got.Spec, want) {
			t.Errorf("adopted spec\n%+v\nwant\n%+v", got.Spec, want)
		}
		if got.Status.SerialNumber != st.SerialNumber || got.Status.IssuerID != st.IssuerID {
			t.Errorf("adoption changed the CA: serial %s → %s, issuer %s → %s", st.SerialNumber, got.Status.SerialNumber, st.IssuerID, got.Status.IssuerID)
		}
		stored, err := backend.GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, "inter")
		if err != nil || stored.Spec.Parent != "root" {
			t.Errorf("catalog entry: %+v, %v", stored, err)
		}
		if _, err := backend.AdoptAuthority(ctx, b, "again", made.Spec.Mount); !errors.Is(err, backend.ErrMountInUse) {
			t.Errorf("adopting a mount the catalog has: %v, want ErrMountInUse", err)
		}
	})
}
