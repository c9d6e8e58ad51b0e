package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gobwas/glob"
)

// CA is a certificate authority held in memory: its certificate, the chain
// above it (nearest first, up to the root) and its key. The local backend
// keeps one per authority; Vault keeps its own.
type CA struct {
	Cert  *x509.Certificate
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// CAOptions describe a CA certificate to create.
type CAOptions struct {
	Subject Request
	// KeyType is rsa, ec or ed25519 (Vault's names); KeyBits its size.
	KeyType string
	KeyBits int
	TTL     time.Duration
	// MaxPathLength is -1 for no limit.
	MaxPathLength         int
	PermittedDNSDomains   []string
	IssuingCertificates   []string
	CRLDistributionPoints []string
	OCSPServers           []string
	Now                   time.Time
}

// template is the CA certificate to sign; Go derives the subject key ID
// from the key and the authority key ID from the parent.
func (o CAOptions) template() (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               o.Subject.subject(),
		NotBefore:             o.Now.Add(-30 * time.Second).Truncate(time.Second), // tolerate clock skew, as Vault does
		NotAfter:              o.Now.Add(o.TTL).Truncate(time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		PermittedDNSDomains:   o.PermittedDNSDomains,
		IssuingCertificateURL: o.IssuingCertificates,
		CRLDistributionPoints: o.CRLDistributionPoints,
		OCSPServer:            o.OCSPServers,
	}
	if o.MaxPathLength >= 0 {
		t.MaxPathLen = o.MaxPathLength
		t.MaxPathLenZero = o.MaxPathLength == 0
	} else {
		t.MaxPathLen = -1
	}
	if len(o.PermittedDNSDomains) > 0 {
		t.PermittedDNSDomainsCritical = true
	}
	return t, nil
}

// NewRoot creates a self-signed root CA with a new key.
func NewRoot(o CAOptions) (*CA, error) {
	key, err := GenerateKey(o.KeyType, o.KeyBits)
	if err != nil {
		return nil, err
	}
	t, err := o.template()
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, t, t, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// NewIntermediate creates an intermediate CA with a new key, signed by ca.
// Its lifetime is cut to the parent's, as a certificate cannot outlive its issuer.
func (ca *CA) NewIntermediate(o CAOptions) (*CA, error) {
	key, err := GenerateKey(o.KeyType, o.KeyBits)
	if err != nil {
		return nil, err
	}
	t, err := o.template()
	if err != nil {
		return nil, err
	}
	if t.NotAfter.After(ca.Cert.NotAfter) {
		t.NotAfter = ca.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, t, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	chain := append([]*x509.Certificate{ca.Cert}, ca.Chain...)
	return &CA{Cert: cert, Chain: chain, Key: key}, nil
}

// Profile is what a role lets a CA sign, with Vault PKI role semantics.
type Profile struct {
	AllowedDomains            []string
	AllowSubdomains           bool
	AllowGlobDomains          bool
	AllowBareDomains          bool
	AllowWildcardCertificates bool
	AllowAnyName              bool
	AllowedURISANs            []string
	AllowIPSANs               bool
	ServerFlag, ClientFlag    bool
	ExtKeyUsage               []string
	TTL, MaxTTL               time.Duration
}

// ErrNotAllowed wraps every refusal of a profile, so callers can tell a
// request the role forbids from a failure of the CA.
var ErrNotAllowed = errors.New("not allowed by the issuer's role")

// Sign issues a leaf certificate for a CSR under a profile: every name of the
// CSR must be allowed, the lifetime is capped at the profile's MaxTTL and may
// not pass the CA's own expiry (Vault's default leaf_not_after_behavior).
func (ca *CA) Sign(csr *x509.CertificateRequest, p Profile, ttl time.Duration, now time.Time) (*x509.Certificate, error) {
	if err := p.allows(csr); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = p.TTL
	}
	if ttl <= 0 {
		ttl = 30 * 24 * time.Hour
	}
	if p.MaxTTL > 0 && ttl > p.MaxTTL {
		ttl = p.MaxTTL
	}
	notAfter := now.Add(ttl).Truncate(time.Second)
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("cannot satisfy request: a lifetime of %s would end %s, after the CA certificate expires (%s)",
			ttl, notAfter.Format(time.RFC3339), ca.Cert.NotAfter.Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        csr.Subject,
		DNSNames:       csr.DNSNames,
		IPAddresses:    csr.IPAddresses,
		URIs:           csr.URIs,
		EmailAddresses: csr.EmailAddresses,
		NotBefore:      now.Add(-30 * time.Second).Truncate(time.Second),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
	}
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		t.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if p.ServerFlag {
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if p.ClientFlag {
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, u := range p.ExtKeyUsage {
		if eku, ok := extKeyUsages[strings.ToLower(u)]; ok {
			t.ExtKeyUsage = append(t.ExtKeyUsage, eku)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, t, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"serverauth": x509.ExtKeyUsageServerAuth, "clientauth": x509.ExtKeyUsageClientAuth,
	"codesigning": x509.ExtKeyUsageCodeSigning, "emailprotection": x509.ExtKeyUsageEmailProtection,
	"timestamping": x509.ExtKeyUsageTimeStamping, "ocspsigning": x509.ExtKeyUsageOCSPSigning,
}

func (p Profile) allows(csr *x509.CertificateRequest) error {
	names := csr.DNSNames
	if cn := csr.Subject.CommonName; cn != "" && !strings.Contains(cn, " ") {
		names = append([]string{cn}, names...)
	}
	for _, n := range names {
		if !p.allowsName(n) {
			return fmt.Errorf("%w: name %q is not in allowed domains %v", ErrNotAllowed, n, p.AllowedDomains)
		}
	}
	if len(csr.IPAddresses) > 0 && !p.AllowIPSANs {
		return fmt.Errorf("%w: IP SANs are not allowed", ErrNotAllowed)
	}
	for _, u := range csr.URIs {
		if !matchAny(p.AllowedURISANs, u.String()) {
			return fmt.Errorf("%w: URI SAN %q matches none of %v", ErrNotAllowed, u, p.AllowedURISANs)
		}
	}
	return nil
}

func (p Profile) allowsName(name string) bool {
	if p.AllowAnyName {
		return true
	}
	wildcard := strings.HasPrefix(name, "*.")
	if wildcard {
		if !p.AllowWildcardCertificates {
			return false
		}
		name = name[2:]
		// A wildcard covers the labels below its base, so it is judged as a subdomain.
		if !p.AllowSubdomains && !p.AllowGlobDomains {
			return false
		}
	}
	for _, d := range p.AllowedDomains {
		switch {
		case name == d && p.AllowBareDomains:
			return true
		case p.AllowSubdomains && strings.HasSuffix(name, "."+strings.TrimPrefix(d, "*.")):
			return true
		case p.AllowSubdomains && wildcard && name == d:
			// *.example.com names example.com's subdomains, as in Vault.
			return true
		case p.AllowGlobDomains && strings.ContainsAny(d, "*?") && matchAny([]string{d}, name):
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if g, err := glob.Compile(p); err == nil && g.Match(s) {
			return true
		}
	}
	return false
}

// KeyMatchesCA reports whether the CA's key and certificate belong together.
func (ca *CA) KeyMatchesCA() bool { return KeyMatches(ca.Key, ca.Cert) }
