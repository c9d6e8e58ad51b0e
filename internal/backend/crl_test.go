package backend_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/schemas"
	vault "github.com/hashicorp/vault/api"
)

// TestALeafsCRLDistributionPointListsItWhenRevokedAfterRotation follows a
// leaf of the old CA through a rotation: once revoked, its serial must be on
// the CRL its own crlDistributionPoints names (fetched unauthenticated, as a
// relying party does), and that CRL must be signed by the CA that signed the
// leaf. Vault lists a revoked serial on its issuer's CRL only, so a leaf
// pointing at the mount's default CRL would not find it after a rotation.
func TestALeafsCRLDistributionPointListsItWhenRevokedAfterRotation(t *testing.T) {
	ctx := context.Background()
	prefix := "crl" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	b := openVault(t, prefix+"-catalog")
	mount := prefix + "-root"
	root := authority("root", mount, schemas.AuthorityRoot, "")
	declared := []string{vaultServer.Addr + "/v1/" + mount + "/crl"}
	root.Spec.CRLDistributionPoints = declared
	declaredCA := []string{vaultServer.Addr + "/v1/" + mount + "/ca"}
	root.Spec.IssuingCertificates = declaredCA
	first, err := b.CreateAuthority(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	root.Status = first

	// The spec reads back as declared, so a plan or an adoption sees no change.
	described := &schemas.Authority{Spec: schemas.AuthoritySpec{Mount: mount}}
	if err := b.DescribeAuthority(ctx, described); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(described.Spec.CRLDistributionPoints, declared) {
		t.Errorf("crl distribution points read back as %q, declared %q", described.Spec.CRLDistributionPoints, declared)
	}
	if !reflect.DeepEqual(described.Spec.IssuingCertificates, declaredCA) {
		t.Errorf("issuing certificates read back as %q, declared %q", described.Spec.IssuingCertificates, declaredCA)
	}

	iss := &schemas.Issuer{Metadata: schemas.ObjectMeta{Name: "any"}, Spec: schemas.IssuerSpec{Authority: "root", AllowAnyName: true}}
	if err := b.PutRole(ctx, iss, root); err != nil {
		t.Fatal(err)
	}
	sign := func() *x509.Certificate {
		key, _ := pki.GenerateKey("ECDSA", 256)
		csr, _ := pki.CSR(key, pki.Request{DNSNames: []string{"a.example.test"}})
		s, err := b.Sign(ctx, iss, root, csr, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c, err := pki.ParseCertificate([]byte(s.Certificate))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	oldLeaf := sign()
	second, err := b.RotateAuthority(ctx, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	root.Status = second
	newLeaf := sign()
	// An intermediate the root signs names the root issuer's CRL too: Vault
	// fills the template in for sign-intermediate as for a leaf.
	inter := authority("inter", prefix+"-inter", schemas.AuthorityIntermediate, "root")
	interSt, err := b.CreateAuthority(ctx, inter, root)
	if err != nil {
		t.Fatalf("creating an intermediate under the templated root: %v", err)
	}
	interCA, err := pki.ParseCertificate([]byte(interSt.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if want := vaultServer.Addr + "/v1/" + mount + "/issuer/" + second.IssuerID + "/crl/der"; !reflect.DeepEqual(interCA.CRLDistributionPoints, []string{want}) {
		t.Errorf("the intermediate's crl distribution points are %q, want %q", interCA.CRLDistributionPoints, want)
	}
	if err := b.Revoke(ctx, root, pki.Serial(oldLeaf.SerialNumber)); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, root, pki.Serial(newLeaf.SerialNumber)); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name   string
		leaf   *x509.Certificate
		ca     string
		issuer string
	}{
		{"the old CA's leaf", oldLeaf, first.Certificate, first.IssuerID},
		{"the new CA's leaf", newLeaf, second.Certificate, second.IssuerID},
	} {
		if len(c.leaf.CRLDistributionPoints) != 1 {
			t.Fatalf("%s has crl distribution points %q, want one", c.name, c.leaf.CRLDistributionPoints)
		}
		url := c.leaf.CRLDistributionPoints[0]
		if !strings.Contains(url, c.issuer) {
			t.Errorf("%s names the CRL at %s, not its issuer %s's", c.name, url, c.issuer)
		}
		// The leaf's caIssuers URL fetches the CA that signed it, not the
		// mount's current one: a client completing a chain gets the right CA.
		if len(c.leaf.IssuingCertificateURL) != 1 {
			t.Fatalf("%s has issuing certificate URLs %q, want one", c.name, c.leaf.IssuingCertificateURL)
		}
		if got := fetchDER(t, c.leaf.IssuingCertificateURL[0]); c.leaf.CheckSignatureFrom(got) != nil {
			t.Errorf("%s's issuing certificate URL %s serves %s, which did not sign it", c.name, c.leaf.IssuingCertificateURL[0], got.Subject)
		}
		crl, err := testbed.FetchCRL(url)
		if err != nil {
			t.Fatal(err)
		}
		ca, err := pki.ParseCertificate([]byte(c.ca))
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(ca); err != nil {
			t.Errorf("the CRL at %s, named by %s, is not signed by the CA that signed it: %v", url, c.name, err)
		}
		found := false
		for _, e := range crl.RevokedCertificateEntries {
			found = found || e.SerialNumber.Cmp(c.leaf.SerialNumber) == 0
		}
		if !found {
			t.Errorf("%s was revoked, but the CRL at %s (%d entries) does not list serial %s",
				c.name, url, len(crl.RevokedCertificateEntries), pki.Serial(c.leaf.SerialNumber))
		}
	}
}

// fetchDER reads the DER certificate an AIA caIssuers URL serves.
func fetchDER(t *testing.T, url string) *x509.Certificate {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v, status %s", url, err, resp.Status)
	}
	c, err := x509.ParseCertificate(body)
	if err != nil {
		t.Fatalf("GET %s: not a DER certificate: %v", url, err)
	}
	return c
}

// TestAdoptionKeepsTheOperatorsURLsUntilCertfleetWritesThem: adopting a mount
// writes nothing, so an operator's config/urls stay as they were (read back
// as the adopted spec); certfleet's first write of the URLs — here the
// rotation, where it matters — puts the mount's CRL in its per-issuer form.
func TestAdoptionKeepsTheOperatorsURLsUntilCertfleetWritesThem(t *testing.T) {
	ctx := context.Background()
	prefix := "adcrl" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	maker := openVault(t, prefix+"-elsewhere")
	mount := prefix + "-root"
	if _, err := maker.CreateAuthority(ctx, authority("root", mount, schemas.AuthorityRoot, ""), nil); err != nil {
		t.Fatal(err)
	}
	operators := map[string]any{
		"issuing_certificates":    []string{"http://pki.legacy.test/ca"},
		"crl_distribution_points": []string{vaultServer.Addr + "/v1/" + mount + "/crl", "http://pki.legacy.test/crl"},
		"ocsp_servers":            []string{},
	}
	vaultAPI(t, mount+"/config/urls", operators)

	b := openVault(t, prefix+"-catalog")
	a, err := backend.AdoptAuthority(ctx, b, "root", mount)
	if err != nil {
		t.Fatal(err)
	}
	if want := operators["crl_distribution_points"]; !reflect.DeepEqual(a.Spec.CRLDistributionPoints, want) {
		t.Errorf("adopted crl distribution points %q, the operator's are %q", a.Spec.CRLDistributionPoints, want)
	}
	held := vaultAPI(t, mount+"/config/urls", nil)
	if fmt.Sprint(held["crl_distribution_points"]) != fmt.Sprint(operators["crl_distribution_points"]) || held["enable_templating"] != false {
		t.Errorf("adoption changed the mount's config/urls to %v", held)
	}

	if err := backend.RotateAuthority(ctx, b, a); err != nil {
		t.Fatal(err)
	}
	held = vaultAPI(t, mount+"/config/urls", nil)
	want := fmt.Sprint([]string{vaultServer.Addr + "/v1/" + mount + "/issuer/{{issuer_id}}/crl/der", "http://pki.legacy.test/crl"})
	if fmt.Sprint(held["crl_distribution_points"]) != want || held["enable_templating"] != true {
		t.Errorf("after the rotation config/urls = %v, want crl_distribution_points %s templated", held, want)
	}
	again := &schemas.Authority{Spec: schemas.AuthoritySpec{Mount: mount}}
	if err := b.DescribeAuthority(ctx, again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Spec.CRLDistributionPoints, a.Spec.CRLDistributionPoints) {
		t.Errorf("after the rotation the spec reads %q, declared %q: a plan would show a change", again.Spec.CRLDistributionPoints, a.Spec.CRLDistributionPoints)
	}
}

// vaultAPI writes (body not nil) or reads path with the root token, as an
// operator would, and returns the response's data.
func vaultAPI(t *testing.T, path string, body map[string]any) map[string]any {
	t.Helper()
	c, err := vaultServer.Client()
	if err != nil {
		t.Fatal(err)
	}
	var s *vault.Secret
	if body != nil {
		s, err = c.Logical().Write(path, body)
	} else {
		s, err = c.Logical().Read(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s == nil {
		return nil
	}
	return s.Data
}

// openVault opens the test bed's Vault with its catalog in catalogMount.
func openVault(t *testing.T, catalogMount string) *backend.Vault {
	t.Helper()
	b, err := backend.OpenVault(context.Background(), backend.VaultConfig{
		Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: catalogMount})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
