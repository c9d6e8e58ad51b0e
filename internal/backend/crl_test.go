package backend_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
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
	b, err := backend.OpenVault(ctx, backend.VaultConfig{
		Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: prefix + "-catalog"})
	if err != nil {
		t.Fatal(err)
	}
	mount := prefix + "-root"
	root := authority("root", mount, schemas.AuthorityRoot, "")
	declared := []string{vaultServer.Addr + "/v1/" + mount + "/crl"}
	root.Spec.CRLDistributionPoints = declared
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
		crl := fetchCRL(t, url)
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

// fetchCRL reads the DER CRL at url without a token.
func fetchCRL(t *testing.T, url string) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("the CRL at %s (HTTP %d): %v", url, resp.StatusCode, err)
	}
	return crl
}

// TestAdoptionKeepsTheOperatorsURLsUntilCertfleetWritesThem: adopting a mount
// writes nothing, so an operator's config/urls stay as they were (read back
// as the adopted spec); certfleet's first write of the URLs — here the
// rotation, where it matters — puts the mount's CRL in its per-issuer form.
func TestAdoptionKeepsTheOperatorsURLsUntilCertfleetWritesThem(t *testing.T) {
	ctx := context.Background()
	prefix := "adcrl" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
	maker, err := backend.OpenVault(ctx, backend.VaultConfig{
		Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: prefix + "-elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	mount := prefix + "-root"
	if _, err := maker.CreateAuthority(ctx, authority("root", mount, schemas.AuthorityRoot, ""), nil); err != nil {
		t.Fatal(err)
	}
	operators := map[string]any{
		"issuing_certificates":    []string{"http://pki.legacy.test/ca"},
		"crl_distribution_points": []string{vaultServer.Addr + "/v1/" + mount + "/crl", "http://pki.legacy.test/crl"},
		"ocsp_servers":            []string{},
	}
	vaultAPI(t, http.MethodPost, mount+"/config/urls", operators)

	b, err := backend.OpenVault(ctx, backend.VaultConfig{
		Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: prefix + "-catalog"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := backend.AdoptAuthority(ctx, b, "root", mount)
	if err != nil {
		t.Fatal(err)
	}
	if want := operators["crl_distribution_points"]; !reflect.DeepEqual(a.Spec.CRLDistributionPoints, want) {
		t.Errorf("adopted crl distribution points %q, the operator's are %q", a.Spec.CRLDistributionPoints, want)
	}
	held := vaultAPI(t, http.MethodGet, mount+"/config/urls", nil)
	if fmt.Sprint(held["crl_distribution_points"]) != fmt.Sprint(operators["crl_distribution_points"]) || held["enable_templating"] != false {
		t.Errorf("adoption changed the mount's config/urls to %v", held)
	}

	if err := backend.RotateAuthority(ctx, b, a); err != nil {
		t.Fatal(err)
	}
	held = vaultAPI(t, http.MethodGet, mount+"/config/urls", nil)
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

// vaultAPI calls Vault's HTTP API with the root token, as an operator would,
// and returns the response's data.
func vaultAPI(t *testing.T, method, path string, body map[string]any) map[string]any {
	t.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, vaultServer.Addr+"/v1/"+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", vaultServer.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []string       `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: HTTP %d %v", method, path, resp.StatusCode, out.Errors)
	}
	return out.Data
}
