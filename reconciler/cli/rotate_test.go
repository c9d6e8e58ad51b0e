package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

// TestCatalogApplyRotatesWhenDueOrAsked: `catalog apply` keeps an authority
// until its rotateBefore is reached and then rotates it as the provider does
// (a new default issuer, the old one kept and still trusted); --rotate
// rotates now.
func TestCatalogApplyRotatesWhenDueOrAsked(t *testing.T) {
	dir := t.TempDir()
	file, state := filepath.Join(dir, "pki.yaml"), filepath.Join(dir, "state")
	if err := os.WriteFile(file, []byte(`apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata:
  name: short-root
spec:
  type: root
  mount: pki-short
  commonName: Short Root
  ttl: 3h
  rotateBefore: 2h
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := backend.OpenLocal(state)
	if err != nil {
		t.Fatal(err)
	}
	current := func() *schemas.Authority {
		a, err := backend.GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, "short-root")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	apply := func(args ...string) string {
		code, out, errOut := run(t, append([]string{"catalog", "apply", "-f", file, "--state-dir", state}, args...)...)
		if code != 0 {
			t.Fatalf("catalog apply %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	apply()
	first := current()
	if out := apply(); !strings.Contains(out, "short-root: exists, kept (rotates at "+first.RotatesAt().UTC().Format(time.RFC3339)+")") {
		t.Errorf("an authority not yet due was not kept, or the output does not say when it rotates:\n%s", out)
	}
	if current().Status.IssuerID != first.Status.IssuerID {
		t.Fatal("an authority not yet due was rotated")
	}

	cat, errs := schemas.DecodeCatalog(file, must(os.ReadFile(file)))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	done, err := backend.Apply(ctx, b, cat, backend.WithNow(first.RotatesAt().Add(time.Minute)))
	if err != nil || !strings.Contains(strings.Join(done, "\n"), "short-root: rotated") {
		t.Fatalf("an authority past its rotation time: %v, %v", done, err)
	}
	second := current()
	if second.Status.IssuerID == first.Status.IssuerID || second.Status.SerialNumber == first.Status.SerialNumber {
		t.Fatal("the rotation did not make a new issuer the default")
	}
	if len(second.Status.PreviousIssuers) != 1 || second.Status.PreviousIssuers[0].IssuerID != first.Status.IssuerID {
		t.Errorf("the old issuer is not kept as a previous one: %+v", second.Status.PreviousIssuers)
	}

	if out := apply("--rotate"); !strings.Contains(out, "short-root: rotated") {
		t.Errorf("--rotate did not rotate:\n%s", out)
	}
	if third := current(); third.Status.IssuerID == second.Status.IssuerID || len(third.Status.PreviousIssuers) != 2 {
		t.Errorf("--rotate: issuer %s (was %s), %d previous issuers, want a new one and 2", third.Status.IssuerID, second.Status.IssuerID, len(third.Status.PreviousIssuers))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
