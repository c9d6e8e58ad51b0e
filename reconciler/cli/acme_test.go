package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/testbed"
)

// TestReconcileOnceAnswersACMEHTTP01OnItsListener runs the command line
// against Pebble with the local backend: no listener, no order; with
// --acme-http01-listen, issued into a directory; then the account key rotated.
func TestReconcileOnceAnswersACMEHTTP01OnItsListener(t *testing.T) {
	p := testbed.NewPebble(t, testbed.PebbleOptions{})
	bundle, _ := json.Marshal(p.CABundle)
	dir := t.TempDir()
	catalog := filepath.Join(dir, "catalog.yaml")
	write(t, catalog, `apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: public}
spec:
  acme:
    server: `+p.Directory+`
    caBundle: `+string(bundle)+`
    solvers: {http01: {}}
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: public-names}
spec:
  selector: {issuers: [public]}
  dnsNames: ["**.example.test"]
`)
	repo := filepath.Join(dir, "repo")
	write(t, filepath.Join(repo, "web.yaml"), `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: web}
spec:
  issuer: public
  commonName: web.example.test
  dnsNames: [web.example.test]
  targets: [{directory: {path: web}}]
`)
	reconcile := func(state string, extra ...string) (int, string) {
		t.Helper()
		if code, out, errOut := run(t, "catalog", "apply", "-f", catalog, "--backend", "local", "--state-dir", state); code != 0 {
			t.Fatalf("catalog apply: exit %d\n%s%s", code, out, errOut)
		}
		args := append([]string{"reconcile", "--once", "--source", repo, "--backend", "local", "--state-dir", state,
			"--output-dir", filepath.Join(dir, "out"), "--audit-log", filepath.Join(state, "audit.log")}, extra...)
		code, out, errOut := run(t, args...)
		return code, out + errOut
	}

	code, out := reconcile(t.TempDir())
	if code == 0 || !strings.Contains(out, "no listener answers HTTP-01 challenges") {
		t.Errorf("without a listener: exit %d, want a failure that says why:\n%s", code, out)
	}
	if p.Orders() != 0 {
		t.Errorf("%d orders without a listener: the challenge could not have been answered, so none should be placed", p.Orders())
	}

	state := t.TempDir()
	code, out = reconcile(state, "--acme-http01-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.HTTPPort)))
	if code != 0 || !strings.Contains(out, "issue 1") {
		t.Fatalf("with --acme-http01-listen: exit %d\n%s\n%s", code, out, p.Logs())
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "web", "tls.crt")); err != nil {
		t.Error(err)
	}
	code, stdout, stderr := run(t, "acme", "rotate-key", "public", "--backend", "local", "--state-dir", state)
	if code != 0 || !strings.Contains(stdout, "rotated") {
		t.Errorf("acme rotate-key: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := run(t, "acme", "rotate-key", "nosuch", "--backend", "local", "--state-dir", state); code == 0 || !strings.Contains(stderr, `issuer "nosuch" is not in the catalog`) {
		t.Errorf("rotate-key of an unknown issuer: exit %d, %s", code, stderr)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
