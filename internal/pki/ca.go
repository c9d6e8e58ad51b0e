package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ryanuber/go-glob"
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
	// KeyType is the key type the role signs: rsa, ec, ed25519, or any ("").
	// KeyBits is the smallest size for rsa (default 2048) or ec (default 256).
	KeyType                string
	KeyBits                int
	ServerFlag, ClientFlag bool
	// ExtKeyUsage are further extended key usages, Vault's names
	// (CodeSigning); unknown names are ignored, as Vault ignores them.
	ExtKeyUsage []string
	TTL, MaxTTL time.Duration
}

// ErrNotAllowed wraps every refusal of a profile, so callers can tell a
// request the role forbids from a failure of the CA.
var ErrNotAllowed = errors.New("not allowed by the issuer's role")

// LeafKeyUsage is the key usage of every leaf: Vault's role default
// key_usage (DigitalSignature, KeyAgreement, KeyEncipherment), whatever the
// key, as certfleet writes no key_usage on its roles.
const LeafKeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment

// Sign issues a leaf certificate for a CSR under a profile the way Vault
// 1.14's pki/sign/<role> does (use_csr_common_name and use_csr_sans on):
//   - the CSR's key must be of the role's type and size;
//   - the common name and every SAN must be allowed; a host-name common name
//     is added to the DNS SANs, an e-mail common name to the e-mail SANs, and
//     e-mail SANs are judged by their domain, like DNS names;
//   - the subject is the common name alone: Vault takes O, OU, C, L, ST,
//     street and postal code from the role, and certfleet's roles set none;
//   - key usage is LeafKeyUsage, the extended key usages are the role's;
//   - the signature algorithm is the CA key's (see signatureAlgorithm);
//   - the lifetime is capped at the profile's MaxTTL and may not pass the
//     CA's own expiry (Vault's default leaf_not_after_behavior).
func (ca *CA) Sign(csr *x509.CertificateRequest, p Profile, ttl time.Duration, now time.Time) (*x509.Certificate, error) {
	if err := p.allowsKey(csr.PublicKey); err != nil {
		return nil, err
	}
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
	dns, emails := leafNames(csr)
	t := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            pkix.Name{CommonName: csr.Subject.CommonName},
		DNSNames:           dns,
		IPAddresses:        csr.IPAddresses,
		URIs:               csr.URIs,
		EmailAddresses:     emails,
		NotBefore:          now.Add(-30 * time.Second).Truncate(time.Second),
		NotAfter:           notAfter,
		KeyUsage:           LeafKeyUsage,
		ExtKeyUsage:        p.extKeyUsages(),
		SignatureAlgorithm: signatureAlgorithm(ca.Key.Public(), p.KeyType, csr.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, t, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// leafNames are the DNS and e-mail SANs of the leaf: the CSR's, plus its
// common name (an e-mail one among the e-mail SANs, a host name among the
// DNS SANs, anything else in neither); each once and sorted, as Vault's
// RemoveDuplicates leaves them.
func leafNames(csr *x509.CertificateRequest) (dns, emails []string) {
	dns = slices.Clone(csr.DNSNames)
	emails = slices.Clone(csr.EmailAddresses)
	if cn := csr.Subject.CommonName; cn != "" {
		switch {
		case strings.Contains(cn, "@"):
			emails = append(emails, cn)
		case hostnameRE.MatchString(cn):
			dns = append(dns, cn)
		}
	}
	return sortedSet(dns), sortedSet(emails)
}

func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// extKeyUsages are the role's extended key usages in Vault's order (any,
// server, client, code signing, e-mail, IPsec, time stamping, OCSP, SGC).
func (p Profile) extKeyUsages() []x509.ExtKeyUsage {
	on := map[x509.ExtKeyUsage]bool{x509.ExtKeyUsageServerAuth: p.ServerFlag, x509.ExtKeyUsageClientAuth: p.ClientFlag}
	for _, u := range p.ExtKeyUsage {
		if eku, ok := extKeyUsages[strings.ToLower(strings.TrimSpace(u))]; ok {
			on[eku] = true
		}
	}
	var out []x509.ExtKeyUsage
	for _, eku := range extKeyUsageOrder {
		if on[eku] {
			out = append(out, eku)
		}
	}
	return out
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"any": x509.ExtKeyUsageAny, "serverauth": x509.ExtKeyUsageServerAuth, "clientauth": x509.ExtKeyUsageClientAuth,
	"codesigning": x509.ExtKeyUsageCodeSigning, "emailprotection": x509.ExtKeyUsageEmailProtection,
	"ipsecendsystem": x509.ExtKeyUsageIPSECEndSystem, "ipsectunnel": x509.ExtKeyUsageIPSECTunnel, "ipsecuser": x509.ExtKeyUsageIPSECUser,
	"timestamping": x509.ExtKeyUsageTimeStamping, "ocspsigning": x509.ExtKeyUsageOCSPSigning,
	"microsoftservergatedcrypto": x509.ExtKeyUsageMicrosoftServerGatedCrypto, "netscapeservergatedcrypto": x509.ExtKeyUsageNetscapeServerGatedCrypto,
}

var extKeyUsageOrder = []x509.ExtKeyUsage{
	x509.ExtKeyUsageAny, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning,
	x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageIPSECEndSystem, x509.ExtKeyUsageIPSECTunnel, x509.ExtKeyUsageIPSECUser,
	x509.ExtKeyUsageTimeStamping, x509.ExtKeyUsageOCSPSigning, x509.ExtKeyUsageMicrosoftServerGatedCrypto, x509.ExtKeyUsageNetscapeServerGatedCrypto,
}

// signatureAlgorithm is what Vault signs a leaf with: an RSA CA SHA-256
// (signature_bits defaults to 256 for RSA); an ECDSA CA the hash of its
// curve, unless the role is for RSA keys (key_type rsa, or any with an RSA
// CSR), whose signature_bits of 256 the ECDSA CA honours; Ed25519 itself.
func signatureAlgorithm(caPub crypto.PublicKey, roleKeyType string, csrPub crypto.PublicKey) x509.SignatureAlgorithm {
	switch k := caPub.(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA
	case *ecdsa.PublicKey:
		_, csrRSA := csrPub.(*rsa.PublicKey)
		if roleKeyType == "rsa" || (roleKeyType == "" || roleKeyType == "any") && csrRSA {
			return x509.ECDSAWithSHA256
		}
		switch k.Curve.Params().BitSize {
		case 384:
			return x509.ECDSAWithSHA384
		case 521:
			return x509.ECDSAWithSHA512
		}
		return x509.ECDSAWithSHA256
	case ed25519.PublicKey:
		return x509.PureEd25519
	}
	return x509.UnknownSignatureAlgorithm
}

// allowsKey refuses a CSR key the role does not sign, with Vault's rules: a
// role of type rsa, ec or ed25519 takes only that type, KeyBits (default
// 2048 for rsa, 256 for ec) is the smallest size; a role of type any takes
// RSA from 2048 bits, any curve from P-224, and Ed25519.
func (p Profile) allowsKey(pub crypto.PublicKey) error {
	alg, bits := KeyAlgorithm(pub)
	kt := p.KeyType
	if kt == "" {
		kt = "any"
	}
	want := map[string]string{"rsa": "RSA", "ec": "ECDSA", "ed25519": "Ed25519"}
	if w, ok := want[kt]; ok && w != alg {
		return fmt.Errorf("%w: the role requires keys of type %s, the CSR's key is %s", ErrNotAllowed, kt, alg)
	}
	min := 0
	switch {
	case alg == "RSA":
		min = 2048
		if kt == "rsa" && p.KeyBits > min {
			min = p.KeyBits
		}
	case alg == "ECDSA" && kt == "ec":
		min = 256
		if p.KeyBits > 0 {
			min = p.KeyBits
		}
	case alg == "ECDSA":
		min = 224
	case alg == "unknown":
		return fmt.Errorf("%w: the CSR's key type %T is not one Vault signs", ErrNotAllowed, pub)
	}
	if bits < min {
		return fmt.Errorf("%w: the role requires a key of at least %d bits, the CSR's %s key has %d", ErrNotAllowed, min, alg, bits)
	}
	return nil
}

func (p Profile) allows(csr *x509.CertificateRequest) error {
	if cn := csr.Subject.CommonName; cn != "" && !p.allowsName(cn) {
		return fmt.Errorf("%w: common name %q is not in allowed domains %v", ErrNotAllowed, cn, p.AllowedDomains)
	}
	for _, n := range csr.DNSNames {
		if !p.allowsName(n) {
			return fmt.Errorf("%w: name %q is not in allowed domains %v", ErrNotAllowed, n, p.AllowedDomains)
		}
	}
	for _, m := range csr.EmailAddresses {
		if !p.allowsName(m) {
			return fmt.Errorf("%w: e-mail address %q is not in allowed domains %v", ErrNotAllowed, m, p.AllowedDomains)
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

// allowsName judges a common name, DNS SAN or e-mail SAN as Vault's
// validateNames does for certfleet's roles (enforce_hostnames on,
// allow_localhost off): an e-mail address by its domain; a wildcard only
// with allowWildcardCertificates, which even allowAnyName does not
// override; every name must be a host name; then any name, the bare
// domain, a subdomain (a wildcard of the domain itself counts), or a glob.
func (p Profile) allowsName(name string) bool {
	reduced, isEmail := name, false
	if strings.Contains(name, "@") {
		parts := strings.Split(name, "@")
		if len(parts) != 2 {
			return false
		}
		reduced, isEmail = parts[1], true
	}
	emailDomain := reduced
	isWildcard := strings.Contains(reduced, "*")
	if isWildcard {
		if !p.AllowWildcardCertificates || isEmail || strings.Count(reduced, "*") > 1 {
			return false
		}
		label, rest, _ := strings.Cut(reduced, ".")
		if strings.Contains(rest, "*") || !leftWildLabelRE.MatchString(label) {
			return false
		}
		reduced = rest
	}
	if reduced != "" && !hostnameRE.MatchString(reduced) {
		return false
	}
	if p.AllowAnyName {
		return true
	}
	for _, d := range p.AllowedDomains {
		switch {
		case d == "":
		case p.AllowBareDomains && (strings.EqualFold(name, d) || isEmail && strings.EqualFold(emailDomain, d)):
			return true
		case p.AllowSubdomains && (strings.HasSuffix(reduced, "."+d) || isWildcard && strings.EqualFold(reduced, d)):
			return true
		case p.AllowGlobDomains && strings.Contains(d, "*") && glob.Glob(d, name):
			return true
		}
	}
	return false
}

// Vault's label, host-name and wildcard-label expressions (cert_util.go).
const labelRE = `([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])`

var (
	hostnameRE      = regexp.MustCompile(`^(\*\.)?(` + labelRE + `\.)*` + labelRE + `\.?$`)
	leftWildLabelRE = regexp.MustCompile(`^(\*|\*` + labelRE + `|` + labelRE + `\*|` + labelRE + `\*` + labelRE + `)$`)
)

// matchAny matches with Vault's globs (github.com/ryanuber/go-glob: "*"
// matches any run of characters, "/" included; nothing else is special).
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob.Glob(p, s) {
			return true
		}
	}
	return false
}
