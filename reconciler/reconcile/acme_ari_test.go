package reconcile_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/lego"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/schemas"
)

// TestACMERenewsWhenTheCASuggestsIt revokes an ACME certificate at Pebble,
// whose renewal information (ARI) then suggests renewing at once: the pass
// renews it within hours of its issuance, not at two thirds of its 90 days,
// and asks Pebble again only when its Retry-After (6 h) has passed.
func TestACMERenewsWhenTheCASuggestsIt(t *testing.T) {
	e, files, first := issuedWeb(t)
	if life := first.NotAfter.Sub(first.NotBefore); life < 80*24*time.Hour {
		t.Fatalf("Pebble issued for %s, want 90 days", life)
	}
	start := e.now
	pass := func(after time.Duration) map[string]int {
		t.Helper()
		e.now = start.Add(after)
		rep := e.run(files)
		if len(rep.Failures) != 0 {
			t.Fatalf("after %s: failures %v", after, rep.Failures)
		}
		return rep.Actions
	}
	// Pebble suggests a window around two thirds for a good certificate:
	// nothing to do, and the answer is kept for the next passes.
	for _, after := range []time.Duration{time.Minute, 2 * time.Minute} {
		if acts := pass(after); acts["renew"] != 0 {
			t.Fatalf("after %s: renewed a fresh certificate: %v", after, acts)
		}
	}
	if n := backend.ARIRequests(e.backend); n != 1 {
		t.Fatalf("%d renewalInfo requests for one certificate over two passes, want 1 (the answer is kept until its Retry-After)", n)
	}

	e.revoke(e.secret(alpha, "web", "web-tls").Data["tls.crt"])
	// Within Pebble's Retry-After the kept answer stands.
	if acts := pass(3 * time.Minute); acts["renew"] != 0 {
		t.Fatalf("renewed before the kept renewal information was due again: %v", acts)
	}
	if n := backend.ARIRequests(e.backend); n != 1 {
		t.Errorf("%d renewalInfo requests before the Retry-After passed, want 1", n)
	}
	// Past it, Pebble's answer for the revoked certificate is a window in
	// the past: renew now.
	e.now = start.Add(6*time.Hour + time.Minute)
	rep := e.run(files)
	if rep.Actions["renew"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("6 hours into a 90-day certificate its CA wants renewed: actions %v, failures %v\n%s", rep.Actions, rep.Failures, e.log.String())
	}
	var said bool
	for _, it := range rep.Items {
		said = said || (it.Reason == decide.Expiring && strings.Contains(it.Message, "(ARI)"))
	}
	if !said {
		t.Errorf("the report does not say the CA's window decided: %+v", rep.Items)
	}
	second := e.secretCert("web-tls", "web.example.test")
	if serial(second) == serial(first) {
		t.Fatalf("still serial %s", serial(first))
	}
	if got := e.dirCert("web", "web.example.test"); serial(got) != serial(second) {
		t.Errorf("the directory holds serial %s, the Secret %s", serial(got), serial(second))
	}
	if e.pebble.Orders() != 2 {
		t.Errorf("%d orders, want 2 (the issuance and the renewal)", e.pebble.Orders())
	}
	// The new certificate is asked about once, then kept: no order, no
	// renewal on the passes after.
	for _, after := range []time.Duration{6*time.Hour + 2*time.Minute, 6*time.Hour + 3*time.Minute} {
		if acts := pass(after); acts["renew"] != 0 || acts["issue"] != 0 {
			t.Fatalf("after %s: %v", after, acts)
		}
	}
	if n := backend.ARIRequests(e.backend); n != 3 {
		t.Errorf("%d renewalInfo requests, want 3 (the first certificate twice, 6 h apart; the new one once)", n)
	}
	if e.pebble.Orders() != 2 {
		t.Errorf("%d orders after the renewal, want 2", e.pebble.Orders())
	}
	if strings.Contains(e.log.String(), "BEGIN CERTIFICATE") {
		t.Error("a certificate body is in the log")
	}
}

// TestACMEARIFailureFallsBackToTheLifetime points the issuer at another
// Pebble, which knows neither the delivered certificate nor its issuer and
// answers its renewalInfo request with a problem: the pass goes on, renews nothing, keeps
// two thirds as the renewal time, logs why without the certificate, and
// does not ask again on the next pass.
func TestACMEARIFailureFallsBackToTheLifetime(t *testing.T) {
	e, files, leaf := issuedWeb(t)
	other := testbed.NewPebble(t, testbed.PebbleOptions{})
	e.apply(issuerYAML(other, http01))
	twoThirds := schemas.RenewalTime(leaf.NotBefore, leaf.NotAfter, "", nil)
	for i := range 2 {
		e.now = e.now.Add(time.Minute)
		rep := e.run(files)
		if len(rep.Actions) != 0 || len(rep.Failures) != 0 {
			t.Fatalf("pass %d: actions %v, failures %v: a failed ARI request must change nothing", i, rep.Actions, rep.Failures)
		}
		for _, s := range rep.State {
			if s.Certificate == "web/web" && !s.RenewAt.Equal(twoThirds) {
				t.Errorf("pass %d: %s renews at %s, want two thirds of its lifetime, %s", i, s.Target, s.RenewAt, twoThirds)
			}
		}
	}
	log := e.log.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "renewal window (ARI) failed") || !strings.Contains(log, serial(leaf)) {
		t.Errorf("the log does not say, at warn, that asking for the renewal window of %s failed:\n%s", serial(leaf), log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=WARN") {
			t.Log(line)
		}
	}
	if strings.Contains(log, "BEGIN CERTIFICATE") {
		t.Error("a certificate body is in the log")
	}
	if n := backend.ARIRequests(e.backend); n != 1 {
		t.Errorf("%d renewalInfo requests over two passes, want 1 (a failure is not repeated for an hour)", n)
	}
}

// issuedWeb is an ACME env whose first pass issued web.example.test (HTTP-01,
// Pebble's 90 days): the env, the declaration and the delivered certificate.
func issuedWeb(t *testing.T) (*acmeEnv, map[string]string, *x509.Certificate) {
	t.Helper()
	e := newACMEEnv(t, testbed.PebbleOptions{}, http01)
	e.serveHTTP01()
	files := webCert("web", "web.example.test")
	if rep := e.run(files); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("actions %v, failures %v", rep.Actions, rep.Failures)
	}
	return e, files, e.secretCert("web-tls", "web.example.test")
}

// revoke revokes a certificate at Pebble with the issuer's ACME account.
func (e *acmeEnv) revoke(certPEM []byte) {
	e.t.Helper()
	ctx := context.Background()
	var acct struct{ URI, KeyPEM string }
	if err := e.backend.Get(ctx, "acme/accounts/public", &acct); err != nil {
		e.t.Fatal(err)
	}
	key, err := pki.ParseKey([]byte(acct.KeyPEM))
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(e.pebble.CABundle))
	cfg := lego.NewConfig(account{uri: acct.URI, key: key})
	cfg.CADirURL = e.pebble.Directory
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	client, err := lego.NewClient(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := client.Certificate.Revoke(ctx, certPEM); err != nil {
		e.t.Fatalf("revoking at Pebble: %v", err)
	}
}

// account is an ACME account for lego.
type account struct {
	uri string
	key crypto.Signer
}

func (a account) GetEmail() string { return "" }
func (a account) GetRegistration() *acme.ExtendedAccount {
	return &acme.ExtendedAccount{Location: a.uri}
}
func (a account) GetPrivateKey() crypto.Signer { return a.key }
