package cli

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
)

// TestRevokeReissuesThenPutsTheOldSerialOnTheCRL: against a real Vault,
// `revoke` delivers a new certificate first and then revokes the serial it
// replaced: the authority's CRL (as a relying party fetches it) lists the
// old serial and not the new one, and the audit log says who revoked what
// and why. The local backend, which has no CRL, refuses before reissuing.
func TestRevokeReissuesThenPutsTheOldSerialOnTheCRL(t *testing.T) {
	v, err := testbed.StartVault(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	write(t, token, v.Token)
	vault := []string{"--backend", "vault", "--vault-addr", v.Addr, "--vault-token-file", token}
	if code, out, errOut := run(t, append([]string{"catalog", "apply", "-f", "../../examples/quickstart/pki.yaml"}, vault...)...); code != 0 {
		t.Fatalf("catalog apply: exit %d\n%s%s", code, out, errOut)
	}
	repo, out, audit := filepath.Join(dir, "repo"), filepath.Join(dir, "out"), filepath.Join(dir, "audit.log")
	write(t, filepath.Join(repo, "api.yaml"), `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: api, namespace: payments}
spec:
  issuer: mtls
  commonName: api.payments.svc.cluster.local
  dnsNames: [api.payments.svc.cluster.local]
  usages: [digital signature, server auth, client auth]
  duration: 72h
  renewBefore: 24h
  targets: [{directory: {path: api}}]
`)
	flags := append([]string{"--source", repo, "--output-dir", out, "--audit-log", audit}, vault...)
	if code, stdout, stderr := run(t, append([]string{"reconcile", "--once"}, flags...)...); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", code, stdout, stderr)
	}
	delivered := func() string {
		c, err := pki.ParseCertificate(must(os.ReadFile(filepath.Join(out, "api", "tls.crt"))))
		if err != nil {
			t.Fatal(err)
		}
		return pki.Serial(c.SerialNumber)
	}
	old := delivered()

	if code, _, stderr := run(t, append([]string{"revoke", "payments/api", "--reason", "stolen"}, flags...)...); code == 0 || !strings.Contains(stderr, "--reason \"stolen\": use one of") {
		t.Errorf("an unknown reason: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := run(t, append([]string{"revoke", "payments/api", "--reason", "keyCompromise"}, flags...)...)
	if code != 0 {
		t.Fatalf("revoke: exit %d\n%s%s", code, stdout, stderr)
	}
	fresh := delivered()
	if fresh == old || !strings.Contains(stdout, "payments/api: serial "+old+" revoked (keyCompromise); serial "+fresh+" delivered in its place") {
		t.Errorf("revoke did not reissue and say so (serial %s → %s):\n%s", old, fresh, stdout)
	}

	// The CRL of the issuing mount, fetched unauthenticated as a client does.
	resp, err := http.Get(v.Addr + "/v1/pki-intermediate/crl")
	if err != nil {
		t.Fatal(err)
	}
	der := must(io.ReadAll(resp.Body))
	resp.Body.Close()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("the CRL (HTTP %d): %v", resp.StatusCode, err)
	}
	listed := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		listed[pki.Serial(e.SerialNumber)] = true
	}
	if !listed[old] || listed[fresh] {
		t.Errorf("CRL lists old serial %s: %v, new serial %s: %v; want only the old one", old, listed[old], fresh, listed[fresh])
	}

	var revoked bool
	f := must(os.Open(audit))
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var ev struct{ Action, Certificate, Reason, Serial, Actor string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Action == "revoke" {
			revoked = ev.Serial == old && ev.Reason == "keyCompromise" && ev.Actor == actor() && ev.Certificate == "payments/api"
		}
	}
	if !revoked {
		t.Error("the audit log has no revoke line with the old serial, the reason and who asked")
	}

	_, state := quickstartCatalog(t)
	local := []string{"--source", repo, "--backend", "local", "--state-dir", state, "--output-dir", t.TempDir()}
	if code, _, stderr := run(t, append([]string{"revoke", "payments/api"}, local...)...); code == 0 || !strings.Contains(stderr, "publishes no CRL") {
		t.Errorf("revoke on the local backend: exit %d, want a refusal\n%s", code, stderr)
	}
}
