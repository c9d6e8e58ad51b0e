package backend_test

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/schemas"
)

func acmeIssuer(p *testbed.Pebble) *schemas.Issuer {
	return &schemas.Issuer{TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindIssuer},
		Metadata: schemas.ObjectMeta{Name: "public"},
		Spec: schemas.IssuerSpec{ACME: &schemas.ACMEIssuer{Server: p.Directory, CABundle: p.CABundle, Email: "pki@example.test",
			Solvers: schemas.ACMESolvers{HTTP01: &schemas.ACMEHTTP01{}}}}}
}

func serveHTTP01(t *testing.T, p *testbed.Pebble) {
	t.Helper()
	stop, err := backend.ServeHTTP01(net.JoinHostPort("127.0.0.1", strconv.Itoa(p.HTTPPort)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

func csrFor(t *testing.T, names ...string) []byte {
	t.Helper()
	k, err := pki.GenerateKey("ECDSA", 256)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.CSR(k, pki.Request{CommonName: names[0], DNSNames: names})
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// verifyACME checks a Signed against Pebble's root.
func verifyACME(t *testing.T, p *testbed.Pebble, s *backend.Signed, name string) {
	t.Helper()
	root, err := p.Root()
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(root))
	for _, c := range s.Chain {
		inter.AppendCertsFromPEM([]byte(c))
	}
	leaf, err := pki.ParseCertificate([]byte(s.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
		t.Errorf("%s does not verify against Pebble's root: %v", name, err)
	}
	if pki.Serial(leaf.SerialNumber) != s.SerialNumber || !leaf.NotAfter.Equal(s.NotAfter) {
		t.Error("Signed's serial or notAfter is not the leaf's")
	}
}

func TestACMESignKeepsTheAccountInTheLocalState(t *testing.T) {
	p := testbed.NewPebble(t, testbed.PebbleOptions{})
	serveHTTP01(t, p)
	dir := t.TempDir()
	b, err := backend.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss := acmeIssuer(p)
	ctx := context.Background()
	if err := backend.WriteIssuer(ctx, b, iss); err != nil {
		t.Fatalf("an ACME issuer needs no authority: %v", err)
	}
	s, err := b.Sign(ctx, iss, nil, csrFor(t, "one.example.test"), 24*time.Hour)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	verifyACME(t, p, s, "one.example.test")
	var acct struct{ URI, KeyPEM string }
	if err := b.Get(ctx, "acme/accounts/public", &acct); err != nil || acct.URI == "" {
		t.Fatalf("no account in the local state: %v", err)
	}
	// A backend opened again on the same directory reuses the account.
	again, _ := backend.OpenLocal(dir)
	if _, err := again.Sign(ctx, iss, nil, csrFor(t, "two.example.test"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	var after struct{ URI, KeyPEM string }
	_ = again.Get(ctx, "acme/accounts/public", &after)
	if after != acct {
		t.Error("the second issuance registered a new account")
	}
}

func TestACMEExternalAccountBindingFromVaultKV(t *testing.T) {
	p := testbed.NewPebble(t, testbed.PebbleOptions{RequireEAB: true})
	serveHTTP01(t, p)
	ctx := context.Background()
	b, err := backend.OpenVault(ctx, backend.VaultConfig{Address: vaultServer.Addr, Token: vaultServer.Token,
		CatalogMount: "eab" + strconv.FormatInt(time.Now().UnixNano(), 36)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := vaultServer.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "acme/pebble", map[string]any{"hmac": p.EABKeys["kid-1"]}); err != nil {
		t.Fatal(err)
	}
	iss := acmeIssuer(p)
	iss.Spec.ACME.ExternalAccountBinding = &schemas.ACMEExternalAccountBinding{KeyID: "kid-1", HMACKeyVaultKV: "secret/acme/pebble#hmac"}
	s, err := b.Sign(ctx, iss, nil, csrFor(t, "eab.example.test"), 24*time.Hour)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	verifyACME(t, p, s, "eab.example.test")

	// A wrong HMAC key: the CA refuses the account, and the error is its problem document.
	bad := filepath.Join(t.TempDir(), "hmac")
	_ = os.WriteFile(bad, []byte("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc"), 0o600)
	local, _ := backend.OpenLocal(t.TempDir())
	iss.Spec.ACME.ExternalAccountBinding = &schemas.ACMEExternalAccountBinding{KeyID: "kid-1", HMACKeyFile: bad}
	_, err = local.Sign(ctx, iss, nil, csrFor(t, "eab.example.test"), 24*time.Hour)
	if err == nil || !strings.Contains(err.Error(), "ACME problem urn:ietf:params:acme:error:") {
		t.Errorf("a wrong EAB key: %v, want the CA's problem document", err)
	}
	if err != nil && strings.Contains(err.Error(), "d3Jvbmcta2V5") {
		t.Error("the error quotes the HMAC key")
	}
}
