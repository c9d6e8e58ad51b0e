package backend_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/schemas"
)

var vaultServer *testbed.Vault

func TestMain(m *testing.M) {
	v, err := testbed.StartVault(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vaultServer = v
	code := m.Run()
	v.Stop()
	os.Exit(code)
}

// eachBackend runs a test against a fresh local backend and against Vault
// (each with its own mounts, so the two never share state).
func eachBackend(t *testing.T, test func(t *testing.T, b backend.Backend, prefix string)) {
	t.Run("local", func(t *testing.T) {
		b, err := backend.OpenLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		test(t, b, "l")
	})
	t.Run("vault", func(t *testing.T) {
		prefix := fmt.Sprintf("v%d", time.Now().UnixNano())
		b, err := backend.OpenVault(context.Background(), backend.VaultConfig{
			Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: prefix + "-catalog"})
		if err != nil {
			t.Fatal(err)
		}
		test(t, b, prefix)
	})
}

func authority(name, mount string, typ schemas.AuthorityType, parent string) *schemas.Authority {
	return &schemas.Authority{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindAuthority},
		Metadata: schemas.ObjectMeta{Name: name},
		Spec: schemas.AuthoritySpec{Type: typ, Parent: parent, Mount: mount, CommonName: name + " CA",
			KeyType: "ec", KeyBits: 256, TTL: "720h"},
	}
}

func TestStoreKeepsCatalogObjectsByKindAndName(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend.Backend, _ string) {
		ctx := context.Background()
		pol := &schemas.Policy{TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindPolicy},
			Metadata: schemas.ObjectMeta{Name: "internal"}, Spec: schemas.PolicySpec{DNSNames: []string{"**.svc"}}}
		if err := backend.PutObject(ctx, b, pol); err != nil {
			t.Fatal(err)
		}
		got, err := backend.GetObject[schemas.Policy](ctx, b, schemas.KindPolicy, "internal")
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.DNSNames[0] != "**.svc" {
			t.Errorf("read back %+v", got.Spec)
		}
		cat, err := backend.LoadCatalog(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cat.Policies["internal"]; !ok || len(cat.Policies) != 1 {
			t.Errorf("catalog policies = %v", cat.Policies)
		}
		if err := backend.DeleteObject(ctx, b, schemas.KindPolicy, "internal"); err != nil {
			t.Fatal(err)
		}
		if _, err := backend.GetObject[schemas.Policy](ctx, b, schemas.KindPolicy, "internal"); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("after delete: %v, want ErrNotFound", err)
		}
		cat, err = backend.LoadCatalog(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(cat.Policies) != 0 {
			t.Errorf("a deleted policy is still in the catalog: %v", cat.Policies)
		}
		if err := b.Put(ctx, "../escape", pol); err == nil {
			t.Error("a key with .. was accepted")
		}
	})
}

func TestRootIntermediateRoleSignChainsToTheRoot(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend.Backend, prefix string) {
		ctx := context.Background()
		root := authority("root", prefix+"-root", schemas.AuthorityRoot, "")
		rootSt, err := b.CreateAuthority(ctx, root, nil)
		if err != nil {
			t.Fatalf("creating root: %v", err)
		}
		root.Status = rootSt
		inter := authority("inter", prefix+"-inter", schemas.AuthorityIntermediate, "root")
		inter.Spec.TTL = "360h"
		interSt, err := b.CreateAuthority(ctx, inter, root)
		if err != nil {
			t.Fatalf("creating intermediate: %v", err)
		}
		if len(interSt.CAChain) != 1 || interSt.CAChain[0] != rootSt.Certificate {
			t.Errorf("intermediate chain = %d certificates, want the root only", len(interSt.CAChain))
		}
		if interSt.NotAfter.Sub(*interSt.NotBefore) > 361*time.Hour {
			t.Errorf("intermediate lives %s, want its ttl 360h", interSt.NotAfter.Sub(*interSt.NotBefore))
		}
		iss := &schemas.Issuer{Metadata: schemas.ObjectMeta{Name: "web"}, Spec: schemas.IssuerSpec{
			Authority: "inter", AllowedDomains: []string{"example.test"}, AllowSubdomains: true, MaxTTL: "48h",
			AllowedURISANs: []string{"spiffe://fleet.test/*"}}}
		if err := b.PutRole(ctx, iss, inter); err != nil {
			t.Fatalf("writing role: %v", err)
		}
		held, err := b.ReadRole(ctx, iss, inter)
		if err != nil {
			t.Fatalf("reading the role back: %v", err)
		}
		if got := iss.Spec.WithRole(held); !reflect.DeepEqual(got, iss.Spec) {
			t.Errorf("the role read back differs from the one written:\nwrote %+v\nread  %+v", iss.Spec, held)
		}
		key, err := pki.GenerateKey("ECDSA", 256)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := pki.CSR(key, pki.Request{CommonName: "api.example.test", DNSNames: []string{"api.example.test"},
			URIs: []string{"spiffe://fleet.test/api"}})
		if err != nil {
			t.Fatal(err)
		}
		signed, err := b.Sign(ctx, iss, inter, csr, 72*time.Hour)
		if err != nil {
			t.Fatalf("signing: %v", err)
		}
		leaf, err := pki.ParseCertificate([]byte(signed.Certificate))
		if err != nil {
			t.Fatal(err)
		}
		if got := leaf.NotAfter.Sub(leaf.NotBefore); got > 49*time.Hour {
			t.Errorf("lifetime %s: the role's max TTL of 48h was not applied", got)
		}
		if !pki.KeyMatches(key, leaf) {
			t.Error("the certificate is not for the key that made the CSR")
		}
		if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://fleet.test/api" {
			t.Errorf("URI SANs = %v", leaf.URIs)
		}
		verify(t, leaf, signed.Chain, rootSt.Certificate)

		other, _ := pki.CSR(key, pki.Request{DNSNames: []string{"evil.other.test"}})
		if _, err := b.Sign(ctx, iss, inter, other, time.Hour); err == nil {
			t.Error("signed a name outside the role's allowed domains")
		}

		if err := b.DeleteRole(ctx, iss, inter); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ReadRole(ctx, iss, inter); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("reading the role after delete: %v, want ErrNotFound", err)
		}
		for _, a := range []*schemas.Authority{inter, root} {
			if err := b.DeleteAuthority(ctx, a); err != nil {
				t.Fatal(err)
			}
			if _, err := b.ReadAuthority(ctx, a); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("%s after delete: %v, want ErrNotFound", a.Metadata.Name, err)
			}
		}
	})
}

func TestRotationKeepsTheOldIssuerSoIssuedCertificatesStayValid(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend.Backend, prefix string) {
		ctx := context.Background()
		root := authority("rot", prefix+"-rot", schemas.AuthorityRoot, "")
		first, err := b.CreateAuthority(ctx, root, nil)
		if err != nil {
			t.Fatal(err)
		}
		iss := &schemas.Issuer{Metadata: schemas.ObjectMeta{Name: "any"}, Spec: schemas.IssuerSpec{Authority: "rot", AllowAnyName: true}}
		if err := b.PutRole(ctx, iss, root); err != nil {
			t.Fatal(err)
		}
		key, _ := pki.GenerateKey("ECDSA", 256)
		csr, _ := pki.CSR(key, pki.Request{DNSNames: []string{"a.example.test"}})
		before, err := b.Sign(ctx, iss, root, csr, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		second, err := b.RotateAuthority(ctx, root, nil)
		if err != nil {
			t.Fatalf("rotating: %v", err)
		}
		if second.IssuerID == first.IssuerID || second.Certificate == first.Certificate {
			t.Fatal("rotation kept the same issuer")
		}
		if len(second.PreviousIssuers) != 1 || second.PreviousIssuers[0].IssuerID != first.IssuerID {
			t.Fatalf("previous issuers = %+v, want the first issuer", second.PreviousIssuers)
		}
		after, err := b.Sign(ctx, iss, root, csr, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		oldLeaf, _ := pki.ParseCertificate([]byte(before.Certificate))
		newLeaf, _ := pki.ParseCertificate([]byte(after.Certificate))
		bundle := second.Certificate + second.PreviousIssuers[0].Certificate
		verify(t, oldLeaf, nil, bundle)
		verify(t, newLeaf, nil, bundle)
		if string(newLeaf.AuthorityKeyId) == string(oldLeaf.AuthorityKeyId) {
			t.Error("after rotation the new certificate is still signed by the old key")
		}
	})
}

// verify checks that leaf chains through the intermediates to one of roots.
func verify(t *testing.T, leaf *x509.Certificate, chain []string, roots string) {
	t.Helper()
	rp := x509.NewCertPool()
	if !rp.AppendCertsFromPEM([]byte(roots)) {
		t.Fatal("no root certificates")
	}
	ip := x509.NewCertPool()
	for _, c := range chain {
		if !strings.Contains(roots, strings.TrimSpace(c)) {
			ip.AppendCertsFromPEM([]byte(c))
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("certificate does not chain to the root: %v", err)
	}
}

// Get decodes the stored value itself (Vault: once, from the raw response),
// so what comes back must be exactly what was put, large numbers
// and nested values included; a key never written and a
// soft-deleted one are ErrNotFound, and a refused read is not.
func TestGetReadsBackExactlyWhatWasPut(t *testing.T) {
	type page struct {
		Serial  uint64            `json:"serial"`
		Names   []string          `json:"names"`
		Labels  map[string]string `json:"labels"`
		Nothing *string           `json:"nothing"`
	}
	eachBackend(t, func(t *testing.T, b backend.Backend, _ string) {
		ctx := context.Background()
		var missing page
		if err := b.Get(ctx, "Inventory/never", &missing); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("a key never written: %v, want ErrNotFound", err)
		}
		in := page{Serial: 1<<40 + 1, Names: []string{"a", "b"}, Labels: map[string]string{"team": "web"}}
		if err := b.Put(ctx, "Inventory/p0", in); err != nil {
			t.Fatal(err)
		}
		var got page
		if err := b.Get(ctx, "Inventory/p0", &got); err != nil {
			t.Fatal(err)
		}
		if got.Serial != in.Serial || len(got.Names) != 2 || got.Names[1] != "b" || got.Labels["team"] != "web" || got.Nothing != nil {
			t.Errorf("read back %+v, want %+v", got, in)
		}
		if err := b.Delete(ctx, "Inventory/p0"); err != nil {
			t.Fatal(err)
		}
		if err := b.Get(ctx, "Inventory/p0", &got); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("a soft-deleted key: %v, want ErrNotFound", err)
		}
	})
	t.Run("vault refuses", func(t *testing.T) {
		b, err := backend.OpenVault(context.Background(), backend.VaultConfig{
			Address: vaultServer.Addr, Token: "not-a-token", CatalogMount: "certfleet"})
		if err != nil {
			t.Fatal(err)
		}
		var got struct{}
		err = b.Get(context.Background(), "Inventory/p0", &got)
		if err == nil || errors.Is(err, backend.ErrNotFound) || strings.Contains(err.Error(), "not-a-token") {
			t.Errorf("a read with a bad token: %v, want a permission error that is not ErrNotFound and names no token", err)
		}
	})
}

// BenchmarkVaultGetPage reads one page of inventory-like records (40
// entries: 10,000 certificates over 256 pages), what a one-shot pass does
// once per page: its CPU and allocations are the decoding of the response.
func BenchmarkVaultGetPage(b *testing.B) {
	type entry struct {
		ID, Issuer, Serial, IssueHash, File, Revision string
		NotBefore, NotAfter, RenewAt                  time.Time
		Targets                                       []string
	}
	type page struct {
		Entries []entry `json:"entries"`
	}
	ctx := context.Background()
	v, err := backend.OpenVault(ctx, backend.VaultConfig{Address: vaultServer.Addr, Token: vaultServer.Token,
		CatalogMount: fmt.Sprintf("bench%d-catalog", time.Now().UnixNano())})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var in page
	for i := range 40 {
		in.Entries = append(in.Entries, entry{ID: fmt.Sprintf("web/cert-%05d", i), Issuer: "web", Serial: strings.Repeat("3a:", 19) + "00",
			IssueHash: strings.Repeat("ab", 32), File: "teams/web/f00.yaml", Revision: strings.Repeat("c", 40),
			NotBefore: now, NotAfter: now.Add(720 * time.Hour), RenewAt: now.Add(480 * time.Hour),
			Targets: []string{fmt.Sprintf("kubernetes/alpha/web/cert-%05d", i)}})
	}
	if err := v.Put(ctx, "Inventory/00", in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var got page
		if err := v.Get(ctx, "Inventory/00", &got); err != nil || len(got.Entries) != 40 {
			b.Fatalf("%d entries, %v", len(got.Entries), err)
		}
	}
}
