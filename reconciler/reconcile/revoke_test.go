package reconcile_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

// crlSerials fetches the CRL of mount as a relying party does
// (unauthenticated) and returns the serials on it.
func crlSerials(t *testing.T, mount string) map[string]bool {
	t.Helper()
	return crlAt(t, mount+"/crl")
}

// crlAt is the serials on the DER CRL Vault serves at path (under /v1/).
func crlAt(t *testing.T, path string) map[string]bool {
	t.Helper()
	crl, err := testbed.FetchCRL(vaultServer.Addr + "/v1/" + path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		out[pki.Serial(e.SerialNumber)] = true
	}
	return out
}

// TestSupersededAndPrunedCertificatesAreRevoked: a certificate replaced
// because its declaration changed goes on its authority's CRL once the
// replacement is delivered everywhere, with an audit line; an ordinary
// renewal does not; KeepSuperseded leaves it off; and a pruned certificate
// goes on the CRL when its last target is deleted.
func TestSupersededAndPrunedCertificatesAreRevoked(t *testing.T) {
	e := newEnv(t)
	mount := e.id + "-pki"
	if rep := e.run(e.api()); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("first pass: actions %v failures %v", rep.Actions, rep.Failures)
	}
	first := serial(e.dirLeaf("api"))

	widened := e.api(func(m string) string {
		return strings.Replace(m, "dnsNames: [api.payments.svc.cluster.local]", "dnsNames: [api.payments.svc.cluster.local, api.example.test]", 1)
	})
	rep := e.run(widened)
	if rep.Actions["reissue"] != 1 || rep.Revoked != 1 || len(rep.Failures) != 0 {
		t.Fatalf("spec change: actions %v revoked %d failures %v", rep.Actions, rep.Revoked, rep.Failures)
	}
	second := serial(e.dirLeaf("api"))
	if crl := crlSerials(t, mount); !crl[first] || crl[second] {
		t.Errorf("after the spec change the CRL lists the superseded serial: %v, the new one: %v; want only the superseded", crl[first], crl[second])
	}
	if !strings.Contains(e.audit.String(), `"action":"revoke","certificate":"payments/api","reason":"superseded: SpecChanged","serial":"`+first+`"`) {
		t.Errorf("no audit line for the revocation of %s:\n%s", first, e.audit.String())
	}

	// A renewal (the clock past two thirds of the day) supersedes nothing.
	e.now = e.now.Add(20 * time.Hour)
	rep = e.run(widened)
	if rep.Actions["renew"] != 1 || rep.Revoked != 0 {
		t.Fatalf("renewal: actions %v revoked %d, want a renewal and no revocation", rep.Actions, rep.Revoked)
	}
	third := serial(e.dirLeaf("api"))
	if crlSerials(t, mount)[second] {
		t.Error("a renewed certificate was revoked")
	}

	// KeepSuperseded leaves a superseded certificate off the CRL.
	narrowed := e.api()
	p := e.pass()
	p.KeepSuperseded = true
	if rep := e.runWith(p, narrowed); rep.Actions["reissue"] != 1 || rep.Revoked != 0 {
		t.Fatalf("with KeepSuperseded: actions %v revoked %d", rep.Actions, rep.Revoked)
	}
	fourth := serial(e.dirLeaf("api"))
	if crlSerials(t, mount)[third] {
		t.Error("KeepSuperseded: the superseded certificate was revoked")
	}

	// Pruned: every target deleted, the certificate goes on the CRL.
	e.prune, e.force = true, true
	rep = e.run(map[string]string{"other.yaml": `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: other, namespace: payments}
spec:
  issuer: mtls
  dnsNames: [other.payments.svc.cluster.local]
  duration: 24h
  targets: [{directory: {path: other}}]
`})
	if rep.Pruned == 0 || rep.Revoked != 1 {
		t.Fatalf("pruning: pruned %d revoked %d failures %v", rep.Pruned, rep.Revoked, rep.Failures)
	}
	if !crlSerials(t, mount)[fourth] {
		t.Error("the pruned certificate is not on the CRL")
	}
}

// TestRevocationAuthority: a certificate is revoked through its issuer's
// authority, unless the issuer is gone, speaks ACME, or stores nothing
// (Vault cannot revoke a serial a no_store role never kept) — refused
// with why, so `certfleet revoke` stops before it reissues anything.
func TestRevocationAuthority(t *testing.T) {
	cat := schemas.NewCatalog()
	cat.Authorities["root"] = &schemas.Authority{Metadata: schemas.ObjectMeta{Name: "root"}}
	cat.Issuers["mtls"] = &schemas.Issuer{Spec: schemas.IssuerSpec{Authority: "root"}}
	cat.Issuers["ephemeral"] = &schemas.Issuer{Spec: schemas.IssuerSpec{Authority: "root", NoStore: true}}
	cat.Issuers["public"] = &schemas.Issuer{Spec: schemas.IssuerSpec{ACME: &schemas.ACMEIssuer{}}}
	cat.Issuers["stray"] = &schemas.Issuer{Spec: schemas.IssuerSpec{Authority: "gone"}}
	for issuer, want := range map[string]string{
		"mtls": "", "ephemeral": "noStore", "public": "ACME", "stray": `authority "gone"`, "nosuch": "not in the catalog",
	} {
		a, err := reconcile.RevocationAuthority(cat, issuer)
		switch {
		case want == "" && (err != nil || a != cat.Authorities["root"]):
			t.Errorf("%s: %v, %v; want the root authority", issuer, a, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v; want a refusal naming %s", issuer, err, want)
		}
	}
}

// waitingCert is delivered to a directory feeding a TLS server that loads
// its files once, when it starts.
const waitingCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: web, namespace: web}
spec:
  issuer: mtls
  dnsNames: [DNSNAMES]
  duration: 24h
  targets:
    - directory: {path: web}
      probe: {address: "PROBE", grace: 5m}
`

// TestRevokingASupersededCertificateWaitsUntilItIsNoLongerServed: after a
// spec change, the superseded serial stays off the CRL while the
// workload's probe still sees it — within the grace and past it, when the
// target is NotServed: revoking it would break the handshakes of clients
// that check the CRL — and goes on it in the first pass whose probe sees
// the new one (the workload restarted). A pass with no probe revokes at
// once (TestSupersededAndPrunedCertificatesAreRevoked).
func TestRevokingASupersededCertificateWaitsUntilItIsNoLongerServed(t *testing.T) {
	e := newEnv(t)
	mount := e.id + "-pki"
	server := listenTLS(t)
	files := func(dnsNames string) map[string]string {
		return map[string]string{"teams/web/web.yaml": strings.NewReplacer("PROBE", server.addr(), "DNSNAMES", dnsNames).Replace(waitingCert)}
	}
	if rep := e.run(files("web.example.test")); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("first pass: actions %v failures %v", rep.Actions, rep.Failures)
	}
	first := serial(e.dirLeaf("web"))
	server.serve(t, filepath.Join(e.dir, "web"), false)

	widened := files("web.example.test, www.web.example.test")
	rep := e.run(widened)
	second := serial(e.dirLeaf("web"))
	if rep.Actions["reissue"] != 1 || rep.Revoked != 0 || second == first || len(rep.Failures) != 0 {
		t.Fatalf("spec change: actions %v revoked %d failures %v; want a reissue and no revocation yet", rep.Actions, rep.Revoked, rep.Failures)
	}
	waits := func(rep *reconcile.Result, says string) {
		t.Helper()
		for _, n := range rep.Notes {
			if strings.Contains(n, "revoking web/web serial "+first+" waits") && strings.Contains(n, says) {
				return
			}
		}
		t.Errorf("no note that revoking %s waits (%q): %v", first, says, rep.Notes)
	}
	waits(rep, server.addr()+" still serves it")
	if crlSerials(t, mount)[first] {
		t.Fatal("the superseded serial was revoked while the workload still served it")
	}
	if en := rep.Inventory["web/web"]; en == nil || len(en.Superseded()) != 1 || en.Superseded()[0].Serial != first {
		t.Fatalf("the inventory does not keep %s waiting: %+v", first, en)
	}

	// Past the grace the target is NotServed, and the revocation still waits.
	e.now = e.now.Add(10 * time.Minute)
	rep = e.run(widened)
	if rep.Reasons[decide.NotServed] != 1 || rep.Revoked != 0 || crlSerials(t, mount)[first] {
		t.Fatalf("past the grace: reasons %v revoked %d; want NotServed and no revocation", rep.Reasons, rep.Revoked)
	}
	waits(rep, "past the grace (5m)")
	if strings.Contains(e.audit.String(), `"action":"revoke"`) {
		t.Errorf("a revocation was logged while the serial was served:\n%s", e.audit.String())
	}

	// The workload restarts (same address, the delivered files): revoked.
	addr := server.addr()
	server.stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	restarted := &tlsServer{ln: ln, done: make(chan struct{})}
	t.Cleanup(restarted.stop)
	restarted.serve(t, filepath.Join(e.dir, "web"), false)
	e.now = e.now.Add(time.Minute)
	rep = e.run(widened)
	if rep.Revoked != 1 || rep.Reasons[decide.InSync] != 1 || len(rep.Failures) != 0 || len(rep.Notes) != 0 {
		t.Fatalf("served: revoked %d reasons %v failures %v notes %v; want the superseded serial revoked", rep.Revoked, rep.Reasons, rep.Failures, rep.Notes)
	}
	if crl := crlSerials(t, mount); !crl[first] || crl[second] {
		t.Errorf("the CRL lists the superseded serial: %v, the served one: %v; want only the superseded", crl[first], crl[second])
	}
	if !strings.Contains(e.audit.String(), `"action":"revoke","certificate":"web/web","reason":"superseded: SpecChanged","serial":"`+first+`"`) {
		t.Errorf("no audit line for the revocation of %s:\n%s", first, e.audit.String())
	}
	if en := rep.Inventory["web/web"]; en == nil || len(en.Superseded()) != 0 {
		t.Errorf("the inventory still keeps a serial waiting: %+v", en)
	}
	if rep = e.run(widened); rep.Revoked != 0 {
		t.Errorf("the next pass revoked %d more", rep.Revoked)
	}
}
