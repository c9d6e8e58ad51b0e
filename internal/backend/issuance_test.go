package backend_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// signCase signs one CSR through one issuer. want describes the leaf
// (see describeLeaf), or is empty when the role must refuse the CSR.
type signCase struct {
	name      string
	authority string // one of caKeys
	issuer    schemas.IssuerSpec
	keyAlg    schemas.KeyAlgorithm
	keySize   int
	req       pki.Request
	want      string
}

// caKeys are the authorities' keys: the CA's key decides the signature algorithm.
var caKeys = map[string][2]any{"p256": {"ec", 256}, "p384": {"ec", 384}, "rsa": {"rsa", 2048}, "ed": {"ed25519", 0}}

var signCases = []signCase{
	{
		name: "a default role gives server and client auth, Vault's key usage, and the common name alone as subject", authority: "p256",
		issuer: schemas.IssuerSpec{AllowedDomains: []string{"example.test"}, AllowSubdomains: true},
		keyAlg: schemas.ECDSA, keySize: 256,
		req: pki.Request{CommonName: "api.example.test", DNSNames: []string{"b.example.test", "api.example.test"},
			Organizations: []string{"Example Corp"}, OrganizationalUnits: []string{"Payments"}, Countries: []string{"DE"}, Localities: []string{"Berlin"}},
		want: "subject=CN=api.example.test ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ServerAuth,ClientAuth sig=ECDSAWithSHA256 dns=api.example.test,b.example.test email=",
	},
	{
		name: "a host-name common name joins the DNS SANs", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true},
		keyAlg: schemas.ECDSA, keySize: 256,
		req:  pki.Request{CommonName: "cn.example.test", DNSNames: []string{"z.example.test"}},
		want: "subject=CN=cn.example.test ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ServerAuth,ClientAuth sig=ECDSAWithSHA256 dns=cn.example.test,z.example.test email=",
	},
	{
		name: "the role's extended key usages replace the flags, in Vault's order; an unknown name is ignored", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true, ServerFlag: ptr(false), ClientFlag: ptr(false), ExtKeyUsage: []string{"TimeStamping", "codesigning", "Bogus", "EmailProtection"}},
		keyAlg: schemas.ECDSA, keySize: 256,
		req:  pki.Request{DNSNames: []string{"sign.example.test"}},
		want: "subject= ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=CodeSigning,EmailProtection,TimeStamping sig=ECDSAWithSHA256 dns=sign.example.test email=",
	},
	{
		name: "a client-only role gives client auth alone", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true, ServerFlag: ptr(false)},
		keyAlg: schemas.Ed25519,
		req:    pki.Request{CommonName: "worker.example.test"},
		want:   "subject=CN=worker.example.test ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ClientAuth sig=ECDSAWithSHA256 dns=worker.example.test email=",
	},
	{
		name: "a P-384 authority signs SHA-384", authority: "p384",
		issuer: schemas.IssuerSpec{AllowAnyName: true},
		keyAlg: schemas.ECDSA, keySize: 256,
		req:  pki.Request{DNSNames: []string{"a.example.test"}},
		want: "subject= ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ServerAuth,ClientAuth sig=ECDSAWithSHA384 dns=a.example.test email=",
	},
	{
		name: "a P-384 authority signs SHA-256 for an RSA key: the role then carries signature_bits 256", authority: "p384",
		issuer: schemas.IssuerSpec{AllowAnyName: true},
		keyAlg: schemas.RSA, keySize: 2048,
		req:  pki.Request{DNSNames: []string{"a.example.test"}},
		want: "subject= ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ServerAuth,ClientAuth sig=ECDSAWithSHA256 dns=a.example.test email=",
	},
	{
		name: "an RSA authority signs SHA-256 with RSA whatever the key", authority: "rsa",
		issuer: schemas.IssuerSpec{AllowAnyName: true, KeyType: "ec", KeyBits: 384},
		keyAlg: schemas.ECDSA, keySize: 384,
		req:  pki.Request{DNSNames: []string{"a.example.test"}},
		want: "subject= ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ServerAuth,ClientAuth sig=SHA256WithRSA dns=a.example.test email=",
	},
	{
		name: "an Ed25519 authority signs PureEd25519", authority: "ed",
		issuer: schemas.IssuerSpec{AllowAnyName: true, KeyType: "rsa"},
		keyAlg: schemas.RSA, keySize: 2048,
		req:  pki.Request{DNSNames: []string{"a.example.test"}},
		want: "subject= ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ServerAuth,ClientAuth sig=PureEd25519 dns=a.example.test email=",
	},
	{
		name: "an e-mail SAN in an allowed domain is signed", authority: "p256",
		issuer: schemas.IssuerSpec{AllowedDomains: []string{"example.test"}, AllowSubdomains: true, AllowBareDomains: true},
		keyAlg: schemas.ECDSA, keySize: 256,
		req:  pki.Request{DNSNames: []string{"mail.example.test"}, EmailAddresses: []string{"ops@example.test"}},
		want: "subject= ku=DigitalSignature,KeyEncipherment,KeyAgreement eku=ServerAuth,ClientAuth sig=ECDSAWithSHA256 dns=mail.example.test email=ops@example.test",
	},
	{
		name: "an e-mail SAN outside the allowed domains is refused", authority: "p256",
		issuer: schemas.IssuerSpec{AllowedDomains: []string{"example.test"}, AllowSubdomains: true, AllowBareDomains: true},
		keyAlg: schemas.ECDSA, keySize: 256,
		req: pki.Request{DNSNames: []string{"mail.example.test"}, EmailAddresses: []string{"ops@other.test"}},
	},
	{
		name: "a common name that is not a host name is refused", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true},
		keyAlg: schemas.ECDSA, keySize: 256,
		req: pki.Request{CommonName: "My Service", DNSNames: []string{"a.example.test"}},
	},
	{
		name: "a wildcard is refused without allowWildcardCertificates, even with allowAnyName", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true},
		keyAlg: schemas.ECDSA, keySize: 256,
		req: pki.Request{DNSNames: []string{"*.example.test"}},
	},
	{
		name: "a role for RSA keys refuses an ECDSA key", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true, KeyType: "rsa"},
		keyAlg: schemas.ECDSA, keySize: 256,
		req: pki.Request{DNSNames: []string{"a.example.test"}},
	},
	{
		name: "a role for RSA keys of 3072 bits refuses 2048", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true, KeyType: "rsa", KeyBits: 3072},
		keyAlg: schemas.RSA, keySize: 2048,
		req: pki.Request{DNSNames: []string{"a.example.test"}},
	},
	{
		name: "a role for P-384 keys refuses P-256", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true, KeyType: "ec", KeyBits: 384},
		keyAlg: schemas.ECDSA, keySize: 256,
		req: pki.Request{DNSNames: []string{"a.example.test"}},
	},
	{
		name: "a role for Ed25519 keys refuses ECDSA", authority: "p256",
		issuer: schemas.IssuerSpec{AllowAnyName: true, KeyType: "ed25519"},
		keyAlg: schemas.ECDSA, keySize: 256,
		req: pki.Request{DNSNames: []string{"a.example.test"}},
	},
}

func ptr[T any](v T) *T { return &v }

// TestBothBackendsSignAlike signs every case through the local backend and
// through Vault, and requires the same leaf (subject, key usage, extended
// key usages, signature algorithm, SANs) or the same refusal from both; it
// also holds the catalog checks' prediction (schemas.IssuerSpec.Usages,
// AuthoritySpec.LeafSignatureAlgorithm) to what the backends issue.
func TestBothBackendsSignAlike(t *testing.T) {
	var mu sync.Mutex
	got := map[string]map[string]string{} // backend → case → leaf or "refused"
	eachBackend(t, func(t *testing.T, b backend.Backend, prefix string) {
		ctx := context.Background()
		auths := map[string]*schemas.Authority{}
		for name, k := range caKeys {
			a := authority(name, prefix+"-sig-"+name, schemas.AuthorityRoot, "")
			a.Spec.KeyType, a.Spec.KeyBits = k[0].(string), k[1].(int)
			st, err := b.CreateAuthority(ctx, a, nil)
			if err != nil {
				t.Fatalf("creating authority %s: %v", name, err)
			}
			a.Status = st
			auths[name] = a
		}
		results := map[string]string{}
		for i, c := range signCases {
			t.Run(c.name, func(t *testing.T) {
				a := auths[c.authority]
				iss := &schemas.Issuer{Metadata: schemas.ObjectMeta{Name: fmt.Sprintf("case-%d", i)}, Spec: c.issuer}
				iss.Spec.Authority = c.authority
				if err := b.PutRole(ctx, iss, a); err != nil {
					t.Fatalf("writing the role: %v", err)
				}
				key, err := pki.GenerateKey(string(c.keyAlg), c.keySize)
				if err != nil {
					t.Fatal(err)
				}
				csr, err := pki.CSR(key, c.req)
				if err != nil {
					t.Fatal(err)
				}
				signed, err := b.Sign(ctx, iss, a, csr, time.Hour)
				predicted := iss.Spec.KeyRefusal(c.keyAlg, c.keySize)
				if c.want == "" {
					if err == nil {
						t.Fatalf("signed; want a refusal")
					}
					if strings.HasPrefix(c.name, "a role for") && predicted == "" {
						t.Errorf("the role refused the key, but the catalog checks predict it signs (%v)", err)
					}
					results[c.name] = "refused"
					return
				}
				if predicted != "" {
					t.Errorf("the role signed the key, but the catalog checks predict a refusal: %s", predicted)
				}
				if err != nil {
					t.Fatalf("signing: %v", err)
				}
				leaf, err := pki.ParseCertificate([]byte(signed.Certificate))
				if err != nil {
					t.Fatal(err)
				}
				desc := describeLeaf(leaf)
				results[c.name] = desc
				if desc != c.want {
					t.Errorf("leaf:\n got  %s\n want %s", desc, c.want)
				}
				if u := leafUsages(leaf); !slices.Equal(u, iss.Spec.Usages()) {
					t.Errorf("usages %v, but the catalog checks predict %v", u, iss.Spec.Usages())
				}
				if want := a.Spec.LeafSignatureAlgorithm(iss.Spec.KeyType, c.keyAlg); sigName(leaf.SignatureAlgorithm) != want {
					t.Errorf("signature algorithm %s, but the catalog checks predict %s", sigName(leaf.SignatureAlgorithm), want)
				}
			})
		}
		mu.Lock()
		got[strings.SplitN(t.Name(), "/", 2)[1]] = results
		mu.Unlock()
	})
	local, vault := got["local"], got["vault"]
	if local == nil || vault == nil {
		t.Fatalf("a backend did not run: local %v, vault %v", local != nil, vault != nil)
	}
	for _, c := range signCases {
		if local[c.name] != vault[c.name] {
			t.Errorf("%s:\n local %s\n vault %s", c.name, local[c.name], vault[c.name])
		}
	}
}

// describeLeaf writes what a role decides about a leaf, in one line.
func describeLeaf(c *x509.Certificate) string {
	var ku []string
	for _, k := range []struct {
		bit  x509.KeyUsage
		name string
	}{{x509.KeyUsageDigitalSignature, "DigitalSignature"}, {x509.KeyUsageContentCommitment, "ContentCommitment"},
		{x509.KeyUsageKeyEncipherment, "KeyEncipherment"}, {x509.KeyUsageDataEncipherment, "DataEncipherment"},
		{x509.KeyUsageKeyAgreement, "KeyAgreement"}, {x509.KeyUsageCertSign, "CertSign"}, {x509.KeyUsageCRLSign, "CRLSign"}} {
		if c.KeyUsage&k.bit != 0 {
			ku = append(ku, k.name)
		}
	}
	var eku []string
	for _, e := range c.ExtKeyUsage {
		eku = append(eku, ekuNames[e])
	}
	return fmt.Sprintf("subject=%s ku=%s eku=%s sig=%s dns=%s email=%s", c.Subject, strings.Join(ku, ","), strings.Join(eku, ","),
		sigName(c.SignatureAlgorithm), strings.Join(c.DNSNames, ","), strings.Join(c.EmailAddresses, ","))
}

var ekuNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny: "Any", x509.ExtKeyUsageServerAuth: "ServerAuth", x509.ExtKeyUsageClientAuth: "ClientAuth",
	x509.ExtKeyUsageCodeSigning: "CodeSigning", x509.ExtKeyUsageEmailProtection: "EmailProtection",
	x509.ExtKeyUsageIPSECEndSystem: "IPSECEndSystem", x509.ExtKeyUsageIPSECTunnel: "IPSECTunnel", x509.ExtKeyUsageIPSECUser: "IPSECUser",
	x509.ExtKeyUsageTimeStamping: "TimeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
	x509.ExtKeyUsageMicrosoftServerGatedCrypto: "MicrosoftServerGatedCrypto", x509.ExtKeyUsageNetscapeServerGatedCrypto: "NetscapeServerGatedCrypto",
}

// leafUsages are a leaf's usages in the catalog's names: the key usages in
// schemas.RoleKeyUsages' order, then the extended ones as issued.
func leafUsages(c *x509.Certificate) []schemas.KeyUsage {
	var out []schemas.KeyUsage
	for _, k := range []struct {
		bit  x509.KeyUsage
		name schemas.KeyUsage
	}{{x509.KeyUsageDigitalSignature, "digital signature"}, {x509.KeyUsageKeyEncipherment, "key encipherment"}, {x509.KeyUsageKeyAgreement, "key agreement"}} {
		if c.KeyUsage&k.bit != 0 {
			out = append(out, k.name)
		}
	}
	for _, e := range c.ExtKeyUsage {
		u, _ := schemas.UsageOfVaultName(ekuNames[e])
		out = append(out, u)
	}
	return out
}

// sigName is a signature algorithm in schemas.SignatureAlgorithms' spelling.
func sigName(a x509.SignatureAlgorithm) string {
	return map[x509.SignatureAlgorithm]string{
		x509.SHA256WithRSA: "SHA256WithRSA", x509.SHA384WithRSA: "SHA384WithRSA", x509.SHA512WithRSA: "SHA512WithRSA",
		x509.ECDSAWithSHA256: "ECDSAWithSHA256", x509.ECDSAWithSHA384: "ECDSAWithSHA384", x509.ECDSAWithSHA512: "ECDSAWithSHA512",
		x509.PureEd25519: "PureEd25519",
	}[a]
}
