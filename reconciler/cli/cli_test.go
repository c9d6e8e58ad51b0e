package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// run executes certfleet with args in-process and returns its exit code,
// standard output and standard error.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	code := executeTo(root, &errOut)
	return code, out.String(), errOut.String()
}

// quickstartCatalog loads examples/quickstart/pki.yaml into a fresh local
// backend, as `catalog apply` does, and writes its snapshot; it returns the
// snapshot's path and the backend's directory.
func quickstartCatalog(t *testing.T) (snapshot, stateDir string) {
	t.Helper()
	stateDir = t.TempDir()
	if code, out, errOut := run(t, "catalog", "apply", "-f", "../../examples/quickstart/pki.yaml", "--backend", "local", "--state-dir", stateDir); code != 0 {
		t.Fatalf("catalog apply: exit %d\n%s%s", code, out, errOut)
	}
	snapshot = filepath.Join(t.TempDir(), "catalog.yaml")
	if code, out, errOut := run(t, "catalog", "export", "--state-dir", stateDir, "-f", snapshot); code != 0 {
		t.Fatalf("catalog export: exit %d\n%s%s", code, out, errOut)
	}
	return snapshot, stateDir
}

func TestCatalogApplyCreatesThePKIAndExportRoundTrips(t *testing.T) {
	snapshot, stateDir := quickstartCatalog(t)
	b, err := backend.OpenLocal(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cat, err := backend.LoadCatalog(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	inter := cat.Authorities["fleet-intermediate"]
	if inter == nil || inter.Status.Certificate == "" || len(inter.Status.CAChain) != 1 ||
		inter.Status.CAChain[0] != cat.Authorities["fleet-root"].Status.Certificate {
		t.Fatalf("the intermediate was not created under the root: %+v", inter)
	}
	data, err := os.ReadFile(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	again, errs := schemas.DecodeCatalog(snapshot, data)
	if len(errs) > 0 {
		t.Fatalf("the exported snapshot does not decode: %v", errs)
	}
	if len(again.Issuers) != 2 || len(again.Policies) != 2 || len(again.Clusters) != 2 || len(again.Authorities) != 2 {
		t.Errorf("snapshot holds %d authorities, %d issuers, %d policies, %d clusters", len(again.Authorities), len(again.Issuers), len(again.Policies), len(again.Clusters))
	}
	// Applying again keeps the existing keys.
	if code, out, _ := run(t, "catalog", "apply", "-f", "../../examples/quickstart/pki.yaml", "--state-dir", stateDir); code != 0 || !regexp.MustCompile(`fleet-root: exists, kept`).MatchString(out) {
		t.Errorf("second apply: exit %d\n%s", code, out)
	}
	cat2, _ := backend.LoadCatalog(ctx, b)
	if cat2.Authorities["fleet-root"].Status.Certificate != cat.Authorities["fleet-root"].Status.Certificate {
		t.Error("a second apply replaced the root's certificate")
	}
}

func TestCatalogApplyRejectsAnInvalidFileAndAppliesNothing(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(`apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: ok
spec: {}
---
apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata:
  name: orphan
spec:
  type: intermediate
  mount: pki-x
  commonName: X
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, "catalog", "apply", "-f", bad, "--state-dir", filepath.Join(dir, "state"))
	if code != ExitError || !regexp.MustCompile(`bad.yaml:11:1: Authority "orphan": spec.parent: an intermediate authority needs a parent`).MatchString(errOut) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	b, _ := backend.OpenLocal(filepath.Join(dir, "state"))
	if names, _ := b.List(context.Background(), "Policy/"); len(names) != 0 {
		t.Errorf("an invalid file was partly applied: %v", names)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (run go test ./reconciler/cli -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
