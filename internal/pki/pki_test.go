package pki_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
)

// now is the fixed time every certificate of these tests is made at.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, alg string, size int) crypto.Signer {
	t.Helper()
	k, err := pki.GenerateKey(alg, size)
	if err != nil {
		t.Fatalf("GenerateKey(%q, %d): %v", alg, size, err)
	}
	return k
}

func mustRoot(t testing.TB, ttl time.Duration) *pki.CA {
	t.Helper()
	ca, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "Test Root"}, KeyType: "ec", TTL: ttl, MaxPathLength: -1, Now: now})
	if err != nil {
		t.Fatalf("NewRoot: %v", err)
	}
	return ca
}

func mustCSR(t testing.TB, key crypto.Signer, r pki.Request) *x509.CertificateRequest {
	t.Helper()
	p, err := pki.CSR(key, r)
	if err != nil {
		t.Fatalf("CSR: %v", err)
	}
	csr, err := pki.ParseCSR(p)
	if err != nil {
		t.Fatalf("ParseCSR: %v", err)
	}
	return csr
}

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		name      string
		algorithm string
		size      int
		// wantAlg and wantSize are what KeyAlgorithm reads back; wantErr is a substring of the refusal.
		wantAlg  string
		wantSize int
		wantErr  string
	}{
		{name: "RSA with no size is 2048 bits", algorithm: "RSA", wantAlg: "RSA", wantSize: 2048},
		{name: "rsa in Vault's spelling with 3072 bits", algorithm: "rsa", size: 3072, wantAlg: "RSA", wantSize: 3072},
		{name: "RSA 4096", algorithm: "RSA", size: 4096, wantAlg: "RSA", wantSize: 4096},
		{name: "RSA below 2048 bits is refused", algorithm: "RSA", size: 1024, wantErr: "below 2048"},
		{name: "no algorithm is ECDSA P-256", algorithm: "", wantAlg: "ECDSA", wantSize: 256},
		{name: "ECDSA 256", algorithm: "ECDSA", size: 256, wantAlg: "ECDSA", wantSize: 256},
		{name: "ec in Vault's spelling with 384", algorithm: "ec", size: 384, wantAlg: "ECDSA", wantSize: 384},
		{name: "ECDSA 521", algorithm: "ECDSA", size: 521, wantAlg: "ECDSA", wantSize: 521},
		{name: "an unknown curve size is refused", algorithm: "ECDSA", size: 224, wantErr: "no ECDSA curve of size 224"},
		{name: "Ed25519", algorithm: "Ed25519", wantAlg: "Ed25519"},
		{name: "ed25519 in Vault's spelling ignores the size", algorithm: "ed25519", size: 4096, wantAlg: "Ed25519"},
		{name: "an unknown algorithm is refused", algorithm: "DSA", size: 2048, wantErr: `unknown key algorithm "DSA"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := pki.GenerateKey(tt.algorithm, tt.size)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alg, size := pki.KeyAlgorithm(k.Public()); alg != tt.wantAlg || size != tt.wantSize {
				t.Errorf("KeyAlgorithm = %s %d, want %s %d", alg, size, tt.wantAlg, tt.wantSize)
			}
		})
	}
}

func TestEncodeKeyParseKeyRoundTrip(t *testing.T) {
	rsaKey := mustKey(t, "RSA", 2048)
	ecKey := mustKey(t, "ECDSA", 384)
	edKey := mustKey(t, "Ed25519", 0)
	tests := []struct {
		name     string
		key      crypto.Signer
		encoding string
		wantType string
	}{
		{name: "RSA in PKCS1", key: rsaKey, encoding: "PKCS1", wantType: "RSA PRIVATE KEY"},
		{name: "RSA in PKCS8", key: rsaKey, encoding: "PKCS8", wantType: "PRIVATE KEY"},
		{name: "ECDSA in PKCS1 is SEC1", key: ecKey, encoding: "PKCS1", wantType: "EC PRIVATE KEY"},
		{name: "ECDSA in PKCS8", key: ecKey, encoding: "PKCS8", wantType: "PRIVATE KEY"},
		{name: "Ed25519 in PKCS8", key: edKey, encoding: "PKCS8", wantType: "PRIVATE KEY"},
		{name: "Ed25519 asked for in PKCS1 is PKCS8, its only form", key: edKey, encoding: "PKCS1", wantType: "PRIVATE KEY"},
		{name: "an empty encoding is PKCS8", key: ecKey, encoding: "", wantType: "PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := pki.EncodeKey(tt.key, tt.encoding)
			if err != nil {
				t.Fatal(err)
			}
			b, rest := pem.Decode(p)
			if b == nil || b.Type != tt.wantType || len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("PEM = %q, want one %s block", p, tt.wantType)
			}
			back, err := pki.ParseKey(p)
			if err != nil {
				t.Fatal(err)
			}
			type equaler interface{ Equal(crypto.PrivateKey) bool }
			if !back.(equaler).Equal(tt.key) {
				t.Errorf("parsed key differs from the encoded one")
			}
		})
	}
}

func TestParseKeyRefusals(t *testing.T) {
	// secret is what a broken key's bytes would hold; it must not appear in the error.
	secret := []byte("0123456789abcdef-SECRET-KEY-MATERIAL-fedcba9876543210")
	tests := []struct {
		name    string
		pem     []byte
		wantErr string
	}{
		{name: "no PEM block", pem: []byte("not a key"), wantErr: "no PEM block"},
		{name: "a broken PKCS1 key", pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: secret}), wantErr: "RSA PRIVATE KEY"},
		{name: "a broken SEC1 key", pem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: secret}), wantErr: "EC PRIVATE KEY"},
		{name: "a broken PKCS8 key", pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: secret}), wantErr: "invalid key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pki.ParseKey(tt.pem)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			msg := err.Error()
			for _, leak := range []string{"SECRET", string(secret[:16]), base64.StdEncoding.EncodeToString(secret)[:16], "30313233"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error %q contains key material %q", msg, leak)
				}
			}
		})
	}
}

func TestCSR(t *testing.T) {
	key := mustKey(t, "ECDSA", 256)
	req := pki.Request{
		CommonName: "api.example.com", DNSNames: []string{"api.example.com", "www.example.com"},
		IPAddresses: []string{"10.0.0.1", "2001:db8::1"}, URIs: []string{"spiffe://example.com/ns/a/sa/b"},
		EmailAddresses: []string{"ops@example.com"}, Organizations: []string{"Example"},
	}
	p, err := pki.CSR(key, req)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every SAN and the subject survive", func(t *testing.T) {
		csr, err := pki.ParseCSR(p)
		if err != nil {
			t.Fatal(err)
		}
		if csr.Subject.CommonName != req.CommonName || !slices.Equal(csr.Subject.Organization, req.Organizations) {
			t.Errorf("subject = %v", csr.Subject)
		}
		if !slices.Equal(csr.DNSNames, req.DNSNames) {
			t.Errorf("DNS names = %v, want %v", csr.DNSNames, req.DNSNames)
		}
		var ips []string
		for _, ip := range csr.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Equal(ips, req.IPAddresses) {
			t.Errorf("IPs = %v, want %v", ips, req.IPAddresses)
		}
		if len(csr.URIs) != 1 || csr.URIs[0].String() != req.URIs[0] {
			t.Errorf("URIs = %v, want %v", csr.URIs, req.URIs)
		}
		if !slices.Equal(csr.EmailAddresses, req.EmailAddresses) {
			t.Errorf("emails = %v, want %v", csr.EmailAddresses, req.EmailAddresses)
		}
		if !key.Public().(*ecdsa.PublicKey).Equal(csr.PublicKey) {
			t.Errorf("the CSR carries another public key")
		}
	})

	t.Run("a CSR whose signature was tampered with is refused", func(t *testing.T) {
		b, _ := pem.Decode(p)
		der := bytes.Clone(b.Bytes)
		der[len(der)-1] ^= 0xff // the last byte is the signature's
		_, err := pki.ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
		if err == nil || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("err = %v, want a signature error", err)
		}
	})

	t.Run("a CSR whose subject was tampered with is refused", func(t *testing.T) {
		b, _ := pem.Decode(p)
		der := bytes.Replace(b.Bytes, []byte("www.example.com"), []byte("www.evilxx.com!"), 1)
		if bytes.Equal(der, b.Bytes) {
			t.Fatal("the SAN was not found in the DER")
		}
		if _, err := pki.ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})); err == nil {
			t.Fatal("a tampered CSR was accepted")
		}
	})

	t.Run("a certificate is not a CSR", func(t *testing.T) {
		ca := mustRoot(t, time.Hour)
		if _, err := pki.ParseCSR(pki.EncodeCertificate(ca.Cert)); err == nil {
			t.Fatal("a CERTIFICATE block was accepted as a CSR")
		}
	})

	t.Run("an invalid IP address is refused", func(t *testing.T) {
		if _, err := pki.CSR(key, pki.Request{IPAddresses: []string{"10.0.0.256"}}); err == nil {
			t.Fatal("CSR accepted 10.0.0.256")
		}
	})
}

func TestParseCertificates(t *testing.T) {
	root := mustRoot(t, 48*time.Hour)
	inter, err := root.NewIntermediate(pki.CAOptions{Subject: pki.Request{CommonName: "Test Intermediate"}, KeyType: "ec", TTL: 24 * time.Hour, MaxPathLength: 0, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Sign(mustCSR(t, mustKey(t, "ECDSA", 256), pki.Request{CommonName: "a.example.com"}), pki.Profile{AllowAnyName: true}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	var bundle []byte
	bundle = append(bundle, pki.EncodeCertificate(leaf)...)
	bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("skipped")})...)
	bundle = append(bundle, pki.EncodeCertificate(inter.Cert)...)
	bundle = append(bundle, pki.EncodeCertificate(root.Cert)...)

	tests := []struct {
		name    string
		pem     []byte
		want    []*x509.Certificate
		wantErr bool
	}{
		{name: "a chain is read in order and other blocks are skipped", pem: bundle, want: []*x509.Certificate{leaf, inter.Cert, root.Cert}},
		{name: "one certificate", pem: pki.EncodeCertificate(leaf), want: []*x509.Certificate{leaf}},
		{name: "nothing is an error", pem: nil, wantErr: true},
		{name: "only a key is an error", pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}), wantErr: true},
		{name: "a broken certificate is an error", pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pki.ParseCertificates(tt.pem)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d certificates, want an error", len(got))
				}
				if _, err := pki.ParseCertificate(tt.pem); err == nil {
					t.Fatal("ParseCertificate accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d certificates, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Errorf("certificate %d is %s, want %s", i, got[i].Subject, tt.want[i].Subject)
				}
			}
			first, err := pki.ParseCertificate(tt.pem)
			if err != nil || !first.Equal(tt.want[0]) {
				t.Errorf("ParseCertificate = %v, %v; want the first certificate", first, err)
			}
		})
	}
}

func TestSerial(t *testing.T) {
	big128, _ := new(big.Int).SetString("0102030405060708090a0b0c0d0e0f10", 16)
	tests := []struct {
		name string
		n    *big.Int
		want string
	}{
		{name: "zero is 00", n: big.NewInt(0), want: "00"},
		{name: "one byte", n: big.NewInt(0xab), want: "ab"},
		{name: "a leading zero nibble is kept", n: big.NewInt(0x0102), want: "01:02"},
		{name: "128 bits are sixteen colon-separated bytes", n: big128, want: "01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10"},
		{name: "a negative number is its magnitude", n: big.NewInt(-0x0102), want: "01:02"},
		{name: "past 32 bytes", n: new(big.Int).Lsh(big.NewInt(0xff), 8*32), want: "ff" + strings.Repeat(":00", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pki.Serial(tt.n); got != tt.want {
				t.Errorf("Serial(%x) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func TestKeyMatches(t *testing.T) {
	ca := mustRoot(t, 24*time.Hour)
	for _, alg := range []struct {
		name string
		alg  string
		size int
	}{{"an RSA key", "RSA", 2048}, {"an ECDSA key", "ECDSA", 256}, {"an Ed25519 key", "Ed25519", 0}} {
		key := mustKey(t, alg.alg, alg.size)
		leaf, err := ca.Sign(mustCSR(t, key, pki.Request{CommonName: "a.example.com"}), pki.Profile{AllowAnyName: true}, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(alg.name+" matches its certificate", func(t *testing.T) {
			if !pki.KeyMatches(key, leaf) {
				t.Error("KeyMatches = false")
			}
		})
		t.Run(alg.name+" of the same algorithm does not match another's certificate", func(t *testing.T) {
			if pki.KeyMatches(mustKey(t, alg.alg, alg.size), leaf) {
				t.Error("KeyMatches = true")
			}
		})
		t.Run(alg.name+" does not match the CA's certificate", func(t *testing.T) {
			if pki.KeyMatches(key, ca.Cert) {
				t.Error("KeyMatches = true")
			}
		})
	}
	t.Run("a CA's own key matches its certificate", func(t *testing.T) {
		if !pki.KeyMatches(ca.Key, ca.Cert) {
			t.Error("KeyMatches = false")
		}
		other := mustRoot(t, time.Hour)
		if pki.KeyMatches(other.Key, ca.Cert) {
			t.Error("a CA with another root's key matches")
		}
	})
}

func TestNewRootAndIntermediate(t *testing.T) {
	root, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "Root", Organizations: []string{"Example"}}, KeyType: "rsa", KeyBits: 2048,
		TTL: 10 * 24 * time.Hour, MaxPathLength: 1, PermittedDNSDomains: []string{"example.com"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a root is self-signed, a CA, with its path length and name constraints", func(t *testing.T) {
		c := root.Cert
		if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 1 {
			t.Errorf("IsCA %v, BasicConstraintsValid %v, MaxPathLen %d", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen)
		}
		if err := c.CheckSignatureFrom(c); err != nil {
			t.Errorf("not self-signed: %v", err)
		}
		if !slices.Equal(c.PermittedDNSDomains, []string{"example.com"}) || !c.PermittedDNSDomainsCritical {
			t.Errorf("name constraints = %v (critical %v)", c.PermittedDNSDomains, c.PermittedDNSDomainsCritical)
		}
		if c.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Error("no cert sign usage")
		}
		if want := now.Add(10 * 24 * time.Hour); !c.NotAfter.Equal(want) {
			t.Errorf("NotAfter = %s, want %s", c.NotAfter, want)
		}
		if !c.NotBefore.Before(now) {
			t.Errorf("NotBefore = %s, want before %s (clock skew)", c.NotBefore, now)
		}
		if len(root.Chain) != 0 || !pki.KeyMatches(root.Key, root.Cert) {
			t.Errorf("chain %d, key matches %v", len(root.Chain), pki.KeyMatches(root.Key, root.Cert))
		}
	})

	tests := []struct {
		name         string
		ttl          time.Duration
		pathLen      int
		wantNotAfter time.Time
		wantPathLen  int
		wantZero     bool
	}{
		{name: "an intermediate within the root's life keeps its TTL", ttl: 24 * time.Hour, pathLen: 0, wantNotAfter: now.Add(24 * time.Hour), wantPathLen: 0, wantZero: true},
		{name: "an intermediate longer than the root is cut to the root's NotAfter", ttl: 100 * 24 * time.Hour, pathLen: -1, wantNotAfter: root.Cert.NotAfter, wantPathLen: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inter, err := root.NewIntermediate(pki.CAOptions{Subject: pki.Request{CommonName: "Intermediate"}, KeyType: "ec", TTL: tt.ttl, MaxPathLength: tt.pathLen, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			c := inter.Cert
			if !c.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("NotAfter = %s, want %s", c.NotAfter, tt.wantNotAfter)
			}
			if c.MaxPathLen != tt.wantPathLen || c.MaxPathLenZero != tt.wantZero {
				t.Errorf("MaxPathLen %d (zero %v), want %d (zero %v)", c.MaxPathLen, c.MaxPathLenZero, tt.wantPathLen, tt.wantZero)
			}
			if err := c.CheckSignatureFrom(root.Cert); err != nil {
				t.Errorf("not signed by the root: %v", err)
			}
			if len(inter.Chain) != 1 || !inter.Chain[0].Equal(root.Cert) {
				t.Errorf("chain = %d certificates, want the root", len(inter.Chain))
			}
			if !pki.KeyMatches(inter.Key, inter.Cert) {
				t.Error("the intermediate's key does not match it")
			}
			if !bytes.Equal(c.AuthorityKeyId, root.Cert.SubjectKeyId) {
				t.Error("the authority key ID is not the root's subject key ID")
			}
		})
	}

	t.Run("an intermediate of an intermediate chains up to the root, nearest first", func(t *testing.T) {
		inter, err := root.NewIntermediate(pki.CAOptions{Subject: pki.Request{CommonName: "Intermediate"}, KeyType: "ec", TTL: 48 * time.Hour, MaxPathLength: 0, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := inter.NewIntermediate(pki.CAOptions{Subject: pki.Request{CommonName: "Sub"}, KeyType: "ed25519", TTL: 24 * time.Hour, MaxPathLength: 0, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(sub.Chain) != 2 || !sub.Chain[0].Equal(inter.Cert) || !sub.Chain[1].Equal(root.Cert) {
			t.Errorf("chain = %d certificates, want [intermediate, root]", len(sub.Chain))
		}
	})

	t.Run("a root with a refused key size is not made", func(t *testing.T) {
		if _, err := pki.NewRoot(pki.CAOptions{KeyType: "rsa", KeyBits: 1024, TTL: time.Hour, Now: now}); err == nil {
			t.Fatal("NewRoot made an RSA 1024 root")
		}
	})
}

func TestSign(t *testing.T) {
	ca := mustRoot(t, 30*24*time.Hour)
	ecKey := mustKey(t, "ECDSA", 256)
	rsaKey := mustKey(t, "RSA", 2048)
	domains := []string{"example.com"}

	tests := []struct {
		name    string
		req     pki.Request
		key     crypto.Signer
		profile pki.Profile
		ttl     time.Duration
		// wantNotAllowed is a refusal by the profile; wantErr any other failure.
		wantNotAllowed bool
		wantErr        string
		wantTTL        time.Duration
		wantEKU        []x509.ExtKeyUsage
	}{
		{name: "a subdomain of an allowed domain is signed", req: pki.Request{CommonName: "api.example.com", DNSNames: []string{"api.example.com", "a.b.example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "a subdomain is refused without allowSubdomains", req: pki.Request{DNSNames: []string{"api.example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowBareDomains: true}, wantNotAllowed: true},
		{name: "a name that only ends like an allowed domain is refused", req: pki.Request{DNSNames: []string{"badexample.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true}, wantNotAllowed: true},
		{name: "the bare domain is signed with allowBareDomains", req: pki.Request{DNSNames: []string{"example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowBareDomains: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "the bare domain is refused without allowBareDomains", req: pki.Request{DNSNames: []string{"example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true}, wantNotAllowed: true},
		{name: "a common name that is not a DNS SAN is checked too", req: pki.Request{CommonName: "evil.org", DNSNames: []string{"api.example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true}, wantNotAllowed: true},
		{name: "a common name that is not a host name is refused, as Vault's enforce_hostnames refuses it", req: pki.Request{CommonName: "My Service", DNSNames: []string{"api.example.com"}},
			profile: pki.Profile{AllowAnyName: true}, wantNotAllowed: true},
		{name: "a glob domain matches with allowGlobDomains", req: pki.Request{DNSNames: []string{"web-1.prod.example.com"}},
			profile: pki.Profile{AllowedDomains: []string{"web-*.prod.example.com"}, AllowGlobDomains: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "a glob domain is literal without allowGlobDomains", req: pki.Request{DNSNames: []string{"web-1.prod.example.com"}},
			profile: pki.Profile{AllowedDomains: []string{"web-*.prod.example.com"}, AllowBareDomains: true}, wantNotAllowed: true},
		{name: "a wildcard below an allowed domain is signed with allowSubdomains", req: pki.Request{DNSNames: []string{"*.api.example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true, AllowWildcardCertificates: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "a wildcard of the allowed domain itself is signed with allowSubdomains, as Vault does", req: pki.Request{DNSNames: []string{"*.example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true, AllowWildcardCertificates: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "a wildcard is refused without allowWildcardCertificates", req: pki.Request{DNSNames: []string{"*.api.example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true}, wantNotAllowed: true},
		{name: "a wildcard is refused with only bare domains allowed", req: pki.Request{DNSNames: []string{"*.example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowBareDomains: true, AllowWildcardCertificates: true}, wantNotAllowed: true},
		{name: "any name is signed with allowAnyName", req: pki.Request{CommonName: "whatever.internal", DNSNames: []string{"*.anything.test"}},
			profile: pki.Profile{AllowAnyName: true, AllowWildcardCertificates: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "allowAnyName does not override allowWildcardCertificates, as in Vault", req: pki.Request{DNSNames: []string{"*.anything.test"}},
			profile: pki.Profile{AllowAnyName: true}, wantNotAllowed: true},
		{name: "an e-mail SAN in an allowed domain is signed", req: pki.Request{DNSNames: []string{"a.example.com"}, EmailAddresses: []string{"ops@example.com"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true, AllowBareDomains: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "an e-mail SAN is judged by its domain, as Vault judges it", req: pki.Request{DNSNames: []string{"a.example.com"}, EmailAddresses: []string{"ops@evil.org"}},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true, AllowBareDomains: true}, wantNotAllowed: true},
		{name: "an e-mail common name is judged by its domain too", req: pki.Request{CommonName: "ops@evil.org"},
			profile: pki.Profile{AllowedDomains: domains, AllowSubdomains: true, AllowBareDomains: true}, wantNotAllowed: true},
		{name: "a role for RSA keys refuses an ECDSA key", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, KeyType: "rsa"}, wantNotAllowed: true},
		{name: "a role for RSA keys of 3072 bits refuses 2048", req: pki.Request{DNSNames: []string{"a.example.com"}}, key: rsaKey,
			profile: pki.Profile{AllowAnyName: true, KeyType: "rsa", KeyBits: 3072}, wantNotAllowed: true},
		{name: "a role for P-384 refuses P-256", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, KeyType: "ec", KeyBits: 384}, wantNotAllowed: true},
		{name: "a role for ed25519 refuses ECDSA", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, KeyType: "ed25519"}, wantNotAllowed: true},
		{name: "a role for P-256 signs P-256", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, KeyType: "ec"}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "the request's subject beyond the common name is dropped", req: pki.Request{CommonName: "a.example.com", Organizations: []string{"Example"}, Countries: []string{"DE"}},
			profile: pki.Profile{AllowAnyName: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "IP SANs are signed with allowIPSANs", req: pki.Request{IPAddresses: []string{"10.1.2.3"}},
			profile: pki.Profile{AllowIPSANs: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "IP SANs are refused without allowIPSANs", req: pki.Request{IPAddresses: []string{"10.1.2.3"}},
			profile: pki.Profile{AllowAnyName: true}, wantNotAllowed: true},
		{name: "a URI SAN matching an allowed glob is signed", req: pki.Request{URIs: []string{"spiffe://example.com/ns/prod/sa/api"}},
			profile: pki.Profile{AllowedURISANs: []string{"spiffe://example.com/ns/prod/*"}}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "a URI SAN matching no allowed glob is refused", req: pki.Request{URIs: []string{"spiffe://example.com/ns/dev/sa/api"}},
			profile: pki.Profile{AllowedURISANs: []string{"spiffe://example.com/ns/prod/*"}}, wantNotAllowed: true},
		{name: "the server flag gives serverAuth", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, ServerFlag: true}, ttl: time.Hour, wantTTL: time.Hour, wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{name: "the server and client flags and named usages add up", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, ServerFlag: true, ClientFlag: true, ExtKeyUsage: []string{"CodeSigning", "bogus"}}, ttl: time.Hour, wantTTL: time.Hour,
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning}},
		{name: "extended key usages come in Vault's order, each once", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, ClientFlag: true, ExtKeyUsage: []string{"timestamping", "ClientAuth", "Any", " codesigning "}}, ttl: time.Hour, wantTTL: time.Hour,
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageAny, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageTimeStamping}},
		{name: "no TTL asked takes the profile's", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, TTL: 3 * time.Hour}, wantTTL: 3 * time.Hour},
		{name: "no TTL anywhere is 30 days", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true}, wantTTL: 30 * 24 * time.Hour},
		{name: "a TTL over the profile's maximum is capped", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true, MaxTTL: 2 * time.Hour}, ttl: 48 * time.Hour, wantTTL: 2 * time.Hour},
		{name: "an RSA key gets the same key usage", req: pki.Request{DNSNames: []string{"a.example.com"}}, key: rsaKey,
			profile: pki.Profile{AllowAnyName: true}, ttl: time.Hour, wantTTL: time.Hour},
		{name: "a lifetime past the CA's expiry is refused, not as a role refusal", req: pki.Request{DNSNames: []string{"a.example.com"}},
			profile: pki.Profile{AllowAnyName: true}, ttl: 31 * 24 * time.Hour, wantErr: "after the CA certificate expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == nil {
				key = ecKey
			}
			leaf, err := ca.Sign(mustCSR(t, key, tt.req), tt.profile, tt.ttl, now)
			switch {
			case tt.wantNotAllowed:
				if !errors.Is(err, pki.ErrNotAllowed) {
					t.Fatalf("err = %v, want ErrNotAllowed", err)
				}
				return
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, pki.ErrNotAllowed) {
					t.Fatalf("err = %v, want one containing %q and not ErrNotAllowed", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("not signed by the CA: %v", err)
			}
			if !pki.KeyMatches(key, leaf) {
				t.Error("the leaf does not carry the CSR's key")
			}
			if got := leaf.NotAfter.Sub(now); got != tt.wantTTL {
				t.Errorf("lifetime = %s, want %s", got, tt.wantTTL)
			}
			if !slices.Equal(leaf.ExtKeyUsage, tt.wantEKU) {
				t.Errorf("ExtKeyUsage = %v, want %v", leaf.ExtKeyUsage, tt.wantEKU)
			}
			// Vault adds a host-name common name to the DNS SANs, sorted and each once.
			wantDNS := slices.Clone(tt.req.DNSNames)
			if tt.req.CommonName != "" {
				wantDNS = append(wantDNS, tt.req.CommonName)
			}
			slices.Sort(wantDNS)
			wantDNS = slices.Compact(wantDNS)
			if !slices.Equal(leaf.DNSNames, wantDNS) || len(leaf.IPAddresses) != len(tt.req.IPAddresses) || len(leaf.URIs) != len(tt.req.URIs) ||
				!slices.Equal(leaf.EmailAddresses, tt.req.EmailAddresses) {
				t.Errorf("names = %v %v %v %v, want the CSR's and the common name", leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses)
			}
			if got := leaf.Subject.String(); got != "CN="+tt.req.CommonName && !(tt.req.CommonName == "" && got == "") {
				t.Errorf("subject = %s, want the common name %q alone", got, tt.req.CommonName)
			}
			if leaf.IsCA {
				t.Error("a leaf is a CA")
			}
			// Vault's role default key_usage, whatever the key.
			if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment; leaf.KeyUsage != want {
				t.Errorf("KeyUsage = %b, want %b", leaf.KeyUsage, want)
			}
			if leaf.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Errorf("signature algorithm = %s, want the P-256 CA's ECDSAWithSHA256", leaf.SignatureAlgorithm)
			}
		})
	}

	t.Run("an Ed25519 CSR is signed", func(t *testing.T) {
		key := mustKey(t, "Ed25519", 0)
		leaf, err := ca.Sign(mustCSR(t, key, pki.Request{DNSNames: []string{"a.example.com"}}), pki.Profile{AllowAnyName: true}, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := leaf.PublicKey.(ed25519.PublicKey); !ok || !pki.KeyMatches(key, leaf) {
			t.Errorf("public key %T does not match", leaf.PublicKey)
		}
	})
	t.Run("the CA's key decides the signature algorithm, not the request", func(t *testing.T) {
		for _, c := range []struct {
			caType   string
			caBits   int
			role     string
			key      crypto.Signer
			wantAlgo x509.SignatureAlgorithm
		}{
			{"ec", 256, "", ecKey, x509.ECDSAWithSHA256},
			{"ec", 384, "", ecKey, x509.ECDSAWithSHA384},
			{"ec", 521, "any", rsaKey, x509.ECDSAWithSHA256}, // a role for an RSA key carries signature_bits 256
			{"ec", 521, "ec", ecKey, x509.ECDSAWithSHA512},
			{"ec", 384, "rsa", rsaKey, x509.ECDSAWithSHA256},
			{"rsa", 3072, "", ecKey, x509.SHA256WithRSA},
			{"ed25519", 0, "", rsaKey, x509.PureEd25519},
		} {
			ca, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "Root"}, KeyType: c.caType, KeyBits: c.caBits, TTL: 24 * time.Hour, MaxPathLength: -1, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := ca.Sign(mustCSR(t, c.key, pki.Request{DNSNames: []string{"a.example.com"}}), pki.Profile{AllowAnyName: true, KeyType: c.role}, time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			if leaf.SignatureAlgorithm != c.wantAlgo {
				t.Errorf("%s %d CA, role %q, %T: %s, want %s", c.caType, c.caBits, c.role, c.key, leaf.SignatureAlgorithm, c.wantAlgo)
			}
		}
	})
	t.Run("two leaves have different serials", func(t *testing.T) {
		csr := mustCSR(t, ecKey, pki.Request{DNSNames: []string{"a.example.com"}})
		a, err := ca.Sign(csr, pki.Profile{AllowAnyName: true}, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ca.Sign(csr, pki.Profile{AllowAnyName: true}, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if a.SerialNumber.Cmp(b.SerialNumber) == 0 || a.SerialNumber.Sign() <= 0 {
			t.Errorf("serials %s and %s", pki.Serial(a.SerialNumber), pki.Serial(b.SerialNumber))
		}
	})
}
