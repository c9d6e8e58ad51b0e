package reconcile_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// acmeEnv is a test's world plus a Pebble and an ACME issuer "public" in
// the catalog.
type acmeEnv struct {
	*env
	pebble *testbed.Pebble
	root   string
	log    bytes.Buffer
}

func newACMEEnv(t *testing.T, o testbed.PebbleOptions, acme string) *acmeEnv {
	t.Helper()
	return newACMEEnvWith(t, testbed.NewPebble(t, o), acme)
}

// apply adds catalog objects to the backend and reloads the catalog.
func (e *acmeEnv) apply(yaml string) {
	e.t.Helper()
	ctx := context.Background()
	cat, errs := schemas.DecodeCatalog("acme.yaml", []byte(yaml))
	if len(errs) > 0 {
		e.t.Fatal(errs)
	}
	if _, err := backend.Apply(ctx, e.backend, cat); err != nil {
		e.t.Fatal(err)
	}
	full, err := backend.LoadCatalog(ctx, e.backend)
	if err != nil {
		e.t.Fatal(err)
	}
	e.catalog = full
}

// serveHTTP01 answers HTTP-01 where Pebble looks: 127.0.0.1:HTTPPort.
func (e *acmeEnv) serveHTTP01() {
	e.t.Helper()
	stop, err := backend.ServeHTTP01(net.JoinHostPort("127.0.0.1", strconv.Itoa(e.pebble.HTTPPort)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(stop)
}

// run is env.run with the pass's log kept, at debug level.
func (e *acmeEnv) run(files map[string]string) *reconcile.Result {
	e.t.Helper()
	res := render.Render(e.snapshot(files), e.catalog)
	if len(res.Errors) > 0 {
		e.t.Fatalf("render: %v", res.Errors)
	}
	p := e.pass()
	p.Log = slog.New(slog.NewTextHandler(&e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := p.Run(context.Background(), res, verdicts(res, e.catalog, e.now))
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// verify checks a delivered bundle as a TLS client of Pebble's root
// would, and that the key belongs to the certificate.
func (e *acmeEnv) verify(crt, key []byte, name string) *x509.Certificate {
	e.t.Helper()
	certs, err := pki.ParseCertificates(crt)
	if err != nil {
		e.t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(e.root)) {
		e.t.Fatal("Pebble's root is not PEM")
	}
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name, CurrentTime: later(e.now, time.Now())}); err != nil {
		e.t.Errorf("the certificate for %s does not verify against Pebble's root: %v", name, err)
	}
	k, err := pki.ParseKey(key)
	if err != nil {
		e.t.Fatal(err)
	}
	if !pki.KeyMatches(k, certs[0]) {
		e.t.Error("tls.key does not belong to tls.crt")
	}
	return certs[0]
}

func (e *acmeEnv) secretCert(name, dnsName string) *x509.Certificate {
	e.t.Helper()
	s := e.secret(alpha, "web", name)
	return e.verify(s.Data["tls.crt"], s.Data["tls.key"], dnsName)
}

func (e *acmeEnv) dirCert(path, dnsName string) *x509.Certificate {
	e.t.Helper()
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(e.dir, path, n))
		if err != nil {
			e.t.Fatal(err)
		}
		return b
	}
	return e.verify(read("tls.crt"), read("tls.key"), dnsName)
}

// webCert declares a certificate of issuer public into a Secret in both
// clusters and a directory.
func webCert(name string, dnsNames ...string) map[string]string {
	return map[string]string{"teams/web/" + name + ".yaml": fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: %[1]s, namespace: web}
spec:
  issuer: public
  commonName: %[2]s
  dnsNames: [%[3]s]
  privateKey: {algorithm: ECDSA, size: 256}
  targets:
    - kubernetes:
        clusterSelector: {matchLabels: {env: prod}}
        namespace: NS-web
        secretName: %[1]s-tls
    - directory: {path: %[1]s}
`, name, dnsNames[0], strings.Join(dnsNames, ", "))}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

const http01 = `    solvers: {http01: {}}
`

func TestACMEHTTP01IssuesIntoASecretAndADirectory(t *testing.T) {
	e := newACMEEnv(t, testbed.PebbleOptions{}, http01)
	e.serveHTTP01()
	files := webCert("web", "web.example.test", "www.example.test")
	rep := e.run(files)
	if rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("actions %v, failures %v\n%s", rep.Actions, rep.Failures, e.pebble.Logs())
	}
	leaf := e.secretCert("web-tls", "www.example.test")
	if got := e.dirCert("web", "web.example.test"); serial(got) != serial(leaf) {
		t.Errorf("the directory holds serial %s, the Secret %s: one issuance delivers one certificate", serial(got), serial(leaf))
	}
	if beta := e.secret(beta, "web", "web-tls"); !bytes.Equal(beta.Data["tls.crt"], e.secret(alpha, "web", "web-tls").Data["tls.crt"]) {
		t.Error("the two clusters' Secrets differ")
	}
	if e.pebble.Orders() != 1 {
		t.Errorf("%d orders for one certificate, want 1", e.pebble.Orders())
	}
	// A second pass has nothing to do and orders nothing.
	if rep := e.run(files); rep.Actions["issue"] != 0 || len(rep.Failures) != 0 {
		t.Errorf("second pass: actions %v, failures %v", rep.Actions, rep.Failures)
	}
	if e.pebble.Orders() != 1 {
		t.Errorf("%d orders after a pass with nothing to do, want 1", e.pebble.Orders())
	}

	// The account is created once and reused: a second certificate orders
	// with the same account.
	var first struct{ URI, KeyPEM string }
	if err := e.backend.Get(context.Background(), "acme/accounts/public", &first); err != nil || first.URI == "" || first.KeyPEM == "" {
		t.Fatalf("the account is not in the backend: %+v, %v", first.URI, err)
	}
	files = merge(files, webCert("shop", "shop.example.test"))
	if rep := e.run(files); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("actions %v, failures %v", rep.Actions, rep.Failures)
	}
	e.secretCert("shop-tls", "shop.example.test")
	var second struct{ URI, KeyPEM string }
	_ = e.backend.Get(context.Background(), "acme/accounts/public", &second)
	if second.URI != first.URI || second.KeyPEM != first.KeyPEM {
		t.Error("a second issuance made a new account")
	}
	e.keyNowhere(first.KeyPEM, rep, "web", "shop")

	// Rotating the account key rolls it over at the CA: the same account
	// orders with the new key.
	if err := backend.RotateACMEKey(context.Background(), e.backend, e.catalog.Issuers["public"]); err != nil {
		t.Fatal(err)
	}
	var rotated struct{ URI, KeyPEM string }
	_ = e.backend.Get(context.Background(), "acme/accounts/public", &rotated)
	if rotated.URI != first.URI || rotated.KeyPEM == first.KeyPEM {
		t.Errorf("after rotation: same account %v, new key %v", rotated.URI == first.URI, rotated.KeyPEM != first.KeyPEM)
	}
	files = merge(files, webCert("blog", "blog.example.test"))
	if rep := e.run(files); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("after rotation: actions %v, failures %v", rep.Actions, rep.Failures)
	}
}

// keyNowhere checks that the account key is in no log, report, audit
// line, inventory entry or delivered file.
func (e *acmeEnv) keyNowhere(keyPEM string, rep *reconcile.Result, dirs ...string) {
	e.t.Helper()
	k, err := pki.ParseKey([]byte(keyPEM))
	if err != nil {
		e.t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	body := strings.Join(strings.Split(strings.TrimSpace(keyPEM), "\n")[1:3], "") // a piece of the base64
	report, _ := json.Marshal(rep)
	places := map[string]string{"log": e.log.String(), "audit log": e.audit.String(), "report": string(report)}
	ids, _ := e.backend.List(context.Background(), "inventory/")
	for _, id := range ids {
		var raw json.RawMessage
		_ = e.backend.Get(context.Background(), "inventory/"+id, &raw)
		places["inventory "+id] = string(raw)
	}
	for _, d := range dirs {
		for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
			b, _ := os.ReadFile(filepath.Join(e.dir, d, f))
			places[d+"/"+f] = string(b)
		}
	}
	for where, s := range places {
		if strings.Contains(s, body) || bytes.Contains([]byte(s), der) {
			e.t.Errorf("the ACME account key is in the %s", where)
		}
	}
}

func TestACMERenewsBeforeExpiry(t *testing.T) {
	e := newACMEEnv(t, testbed.PebbleOptions{Validity: time.Hour}, http01)
	e.serveHTTP01()
	files := webCert("web", "web.example.test")
	if rep := e.run(files); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("actions %v, failures %v", rep.Actions, rep.Failures)
	}
	first := e.secretCert("web-tls", "web.example.test")
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Hour+time.Minute {
		t.Fatalf("Pebble issued for %s, want an hour", life)
	}
	// Half the lifetime on: not due yet (renewal is at two thirds). Pebble's
	// renewal window (ARI) for an hour-long certificate is its whole
	// lifetime; the point web/web picks in it is at 55 minutes, later than
	// two thirds, which therefore rules.
	e.now = first.NotBefore.Add(30 * time.Minute)
	if rep := e.run(files); rep.Actions["renew"] != 0 {
		t.Errorf("renewed at half the lifetime: %v", rep.Actions)
	}
	// Three quarters on: due, and renewed before it expires.
	e.now = first.NotBefore.Add(45 * time.Minute)
	rep := e.run(files)
	if rep.Actions["renew"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("at three quarters of the lifetime: actions %v, failures %v", rep.Actions, rep.Failures)
	}
	second := e.secretCert("web-tls", "web.example.test")
	// Pebble dates certificates by the wall clock, in whole seconds: a
	// renewal within the second of the issuance has the same notAfter.
	if serial(second) == serial(first) || second.NotAfter.Before(first.NotAfter) {
		t.Errorf("not renewed: serial %s → %s, notAfter %s → %s", serial(first), serial(second), first.NotAfter, second.NotAfter)
	}
}

func TestACMEFailingChallengeIsReportedAndBacksOff(t *testing.T) {
	e := newACMEEnv(t, testbed.PebbleOptions{}, http01)
	e.serveHTTP01()
	// broken.example.test resolves to 127.0.0.2, where nothing answers
	// HTTP-01: the CA cannot validate it, whatever certfleet does.
	body := strings.NewReader(`{"host":"broken.example.test","addresses":["127.0.0.2"]}`)
	resp, err := http.Post(e.pebble.ChallSrv+"/add-a", "application/json", body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("challtestsrv /add-a: %v %v", resp, err)
	}
	resp.Body.Close()
	files := merge(webCert("web", "web.example.test"), webCert("broken", "broken.example.test"))
	rep := e.run(files)
	// The good certificate is issued all the same.
	if rep.Actions["issue"] != 1 {
		t.Errorf("actions %v: the working certificate must be issued beside the failing one", rep.Actions)
	}
	e.secretCert("web-tls", "web.example.test")
	msg := fmt.Sprint(rep.Failures)
	t.Logf("the report says: %s", msg)
	for _, want := range []string{"broken", "ACME problem urn:ietf:params:acme:error:connection", "for broken.example.test"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the report's failures do not say %q: %s", want, msg)
		}
	}
	// Ten passes a minute apart: the failing certificate is ordered again
	// only as its backoff allows (1, 2, 4 minutes …), not on every pass.
	before := e.pebble.Orders()
	start := e.now
	for i := 1; i < 10; i++ {
		e.now = start.Add(time.Duration(i) * time.Minute)
		e.run(files)
	}
	orders := e.pebble.Orders() - before + 1 // the first pass's order for it
	t.Logf("a failing challenge cost %d orders over ten passes a minute apart", orders)
	if orders > 4 {
		t.Errorf("%d orders over ten passes, want at most 4 (at 0, 1, 3 and 7 minutes)", orders)
	}
	if orders < 2 {
		t.Errorf("%d orders over ten passes: the failing certificate was never retried", orders)
	}
}

func TestACMEPolicyDeniesANameOutsideItsPattern(t *testing.T) {
	e := newACMEEnv(t, testbed.PebbleOptions{}, http01)
	e.serveHTTP01()
	e.apply(`apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: public-names}
spec:
  selector: {issuers: [public]}
  dnsNames: ["**.public.example.test"]
`)
	rep := e.run(merge(webCert("web", "web.public.example.test"), webCert("other", "other.example.test")))
	if rep.Actions["issue"] != 1 {
		t.Errorf("actions %v: the name inside the pattern must be issued", rep.Actions)
	}
	if n := rep.Reasons[decide.PolicyViolation]; n == 0 {
		t.Errorf("reasons %v: other.example.test is outside **.public.example.test and must be denied", rep.Reasons)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "other")); err == nil {
		t.Error("the denied certificate was delivered")
	}
	if e.pebble.Orders() != 1 {
		t.Errorf("%d orders: a denied certificate must cost none", e.pebble.Orders())
	}
}

func TestACMEExternalAccountBinding(t *testing.T) {
	pebbleOpts := testbed.PebbleOptions{RequireEAB: true}
	t.Run("without a binding the CA refuses the account, and says so", func(t *testing.T) {
		e := newACMEEnv(t, pebbleOpts, http01)
		e.serveHTTP01()
		rep := e.run(webCert("web", "web.example.test"))
		if msg := fmt.Sprint(rep.Failures); !strings.Contains(msg, "externalAccountRequired") {
			t.Errorf("failures %s: want the CA's externalAccountRequired problem", msg)
		}
	})
	t.Run("with the binding from a file it issues", func(t *testing.T) {
		hmacFile := filepath.Join(t.TempDir(), "eab-hmac")
		p := testbed.NewPebble(t, pebbleOpts)
		if err := os.WriteFile(hmacFile, []byte(p.EABKeys["kid-1"]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e := newACMEEnvWith(t, p, fmt.Sprintf("    externalAccountBinding: {keyID: kid-1, hmacKeyFile: %s}\n"+http01, hmacFile))
		e.serveHTTP01()
		rep := e.run(webCert("web", "web.example.test"))
		if rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
			t.Fatalf("actions %v, failures %v", rep.Actions, rep.Failures)
		}
		e.secretCert("web-tls", "web.example.test")
		hmac, _ := os.ReadFile(hmacFile)
		report, _ := json.Marshal(rep)
		var cat bytes.Buffer
		_ = json.NewEncoder(&cat).Encode(e.catalog)
		for where, s := range map[string]string{"report": string(report), "log": e.log.String(), "audit": e.audit.String(), "catalog": cat.String()} {
			if strings.Contains(s, strings.TrimSpace(string(hmac))) {
				t.Errorf("the EAB HMAC key is in the %s", where)
			}
		}
	})
}

// newACMEEnvWith is newACMEEnv with a Pebble already started.
func newACMEEnvWith(t *testing.T, p *testbed.Pebble, acme string) *acmeEnv {
	t.Helper()
	e := &acmeEnv{env: newEnv(t), pebble: p}
	root, err := p.Root()
	if err != nil {
		t.Fatal(err)
	}
	e.root = root
	e.apply(issuerYAML(p, acme))
	return e
}

// issuerYAML declares the ACME issuer "public" of Pebble p; acme adds to its section.
func issuerYAML(p *testbed.Pebble, acme string) string {
	bundle, _ := json.Marshal(p.CABundle)
	return fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: public}
spec:
  acme:
    server: %s
    email: pki@example.test
    caBundle: %s
%s`, p.Directory, bundle, acme)
}

func TestACMEDNS01IssuesIntoASecretAndADirectory(t *testing.T) {
	p := testbed.NewPebble(t, testbed.PebbleOptions{})
	// lego's exec provider runs a program with present|cleanup, the record's
	// name and value: this one hands them to challtestsrv, whose DNS Pebble asks.
	script := filepath.Join(t.TempDir(), "challtestsrv-dns.sh")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
set -e
case "$1" in
present) curl -sf -X POST -d "{\"host\":\"$2\",\"value\":\"$3\"}" `+p.ChallSrv+`/set-txt ;;
cleanup) curl -sf -X POST -d "{\"host\":\"$2\"}" `+p.ChallSrv+`/clear-txt ;;
esac
`), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXEC_PATH", script)
	t.Setenv("EXEC_POLLING_INTERVAL", "1")
	t.Setenv("EXEC_SEQUENCE_INTERVAL", "1")
	e := newACMEEnvWith(t, p, fmt.Sprintf(`    solvers:
      dns01:
        provider: exec
        nameservers: [%q]
        skipAuthoritativeCheck: true
        propagationTimeout: 30s
`, p.DNS))
	// No HTTP-01 listener: only DNS can prove these names.
	rep := e.run(webCert("web", "web.example.test", "api.example.test"))
	if rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("actions %v, failures %v\n%s", rep.Actions, rep.Failures, p.Logs())
	}
	leaf := e.secretCert("web-tls", "api.example.test")
	if got := e.dirCert("web", "web.example.test"); serial(got) != serial(leaf) {
		t.Errorf("the directory holds serial %s, the Secret %s", serial(got), serial(leaf))
	}
}

// TestACMEIssuesTwentyCertificates measures a pass that orders 20
// certificates from Pebble (HTTP-01, each into a directory).
func TestACMEIssuesTwentyCertificates(t *testing.T) {
	e := newACMEEnv(t, testbed.PebbleOptions{}, http01)
	e.serveHTTP01()
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("teams/web/c%d.yaml", i)] = fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: c%[1]d, namespace: web}
spec:
  issuer: public
  commonName: c%[1]d.example.test
  dnsNames: [c%[1]d.example.test]
  privateKey: {algorithm: ECDSA, size: 256}
  targets:
    - directory: {path: c%[1]d}
`, i)
	}
	start := time.Now()
	rep := e.run(files)
	took := time.Since(start)
	if rep.Actions["issue"] != 20 || len(rep.Failures) != 0 {
		t.Fatalf("actions %v, failures %v", rep.Actions, rep.Failures)
	}
	for i := range 20 {
		e.dirCert(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d.example.test", i))
	}
	t.Logf("20 ACME certificates issued by Pebble in %s (%d orders)", took.Round(time.Millisecond), e.pebble.Orders())
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
