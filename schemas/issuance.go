package schemas

import (
	"slices"
	"strconv"
	"strings"
)

// What a certificate signed through an issuer's role carries, with Vault
// 1.14's semantics (builtin/logical/pki: signCert, generateCreationBundle,
// parseExtKeyUsages; sdk certutil.signCertificate). The catalog checks
// refuse what a role would silently change, and show the effective values;
// the local backend signs with the same semantics.

// RoleKeyUsages are the key usages every certificate signed through a role
// carries: certfleet writes no key_usage on a role, so Vault's default
// (DigitalSignature, KeyAgreement, KeyEncipherment) applies whatever the key.
var RoleKeyUsages = []KeyUsage{"digital signature", "key encipherment", "key agreement"}

// VaultExtKeyUsage is one name a role's ext_key_usage accepts and the usage
// it adds, in cert-manager's spelling.
type VaultExtKeyUsage struct {
	Name  string
	Usage KeyUsage
}

// VaultExtKeyUsages are the names Vault's ext_key_usage understands (it
// compares them case-insensitively and ignores any other), in the order
// Vault writes the extended key usages into a certificate.
var VaultExtKeyUsages = []VaultExtKeyUsage{
	{"Any", "any"},
	{"ServerAuth", "server auth"},
	{"ClientAuth", "client auth"},
	{"CodeSigning", "code signing"},
	{"EmailProtection", "email protection"},
	{"IPSECEndSystem", "ipsec end system"},
	{"IPSECTunnel", "ipsec tunnel"},
	{"IPSECUser", "ipsec user"},
	{"TimeStamping", "timestamping"},
	{"OCSPSigning", "ocsp signing"},
	{"MicrosoftServerGatedCrypto", "microsoft sgc"},
	{"NetscapeServerGatedCrypto", "netscape sgc"},
}

// CanonicalUsage folds cert-manager's synonyms: "signing" is the digital
// signature key usage, "s/mime" the email protection extended key usage.
func CanonicalUsage(u KeyUsage) KeyUsage {
	switch u {
	case "signing":
		return "digital signature"
	case "s/mime":
		return "email protection"
	}
	return u
}

// ExtKeyUsages returns the role's extended key usages, Vault's names, in
// the order Vault writes them: serverFlag and clientFlag, then extKeyUsage,
// each once; unknown names are dropped, as Vault drops them.
func (s IssuerSpec) ExtKeyUsages() []string {
	on := map[string]bool{"serverauth": s.Server(), "clientauth": s.Client()}
	for _, n := range s.ExtKeyUsage {
		on[strings.ToLower(strings.TrimSpace(n))] = true
	}
	var out []string
	for _, e := range VaultExtKeyUsages {
		if on[strings.ToLower(e.Name)] {
			out = append(out, e.Name)
		}
	}
	return out
}

// Usages returns the usages every certificate signed through the role
// carries, whatever the certificate asked for: the key usages first, then
// the extended ones in Vault's order.
func (s IssuerSpec) Usages() []KeyUsage {
	out := slices.Clone(RoleKeyUsages)
	for _, n := range s.ExtKeyUsages() {
		u, _ := UsageOfVaultName(n)
		out = append(out, u)
	}
	return out
}

// UsageOfVaultName returns the usage a role's ext_key_usage name adds.
func UsageOfVaultName(name string) (KeyUsage, bool) {
	for _, e := range VaultExtKeyUsages {
		if strings.EqualFold(e.Name, strings.TrimSpace(name)) {
			return e.Usage, true
		}
	}
	return "", false
}

// VaultNameOfUsage returns the ext_key_usage name that adds an extended key usage.
func VaultNameOfUsage(u KeyUsage) (string, bool) {
	u = CanonicalUsage(u)
	for _, e := range VaultExtKeyUsages {
		if e.Usage == u {
			return e.Name, true
		}
	}
	return "", false
}

// CAKey returns the authority's key type and size with Vault's defaults
// filled in (ec 256; rsa 2048; ed25519 has no size).
func (s AuthoritySpec) CAKey() (keyType string, bits int) {
	keyType, bits = s.KeyType, s.KeyBits
	if keyType == "" {
		keyType = "ec"
	}
	if bits == 0 {
		switch keyType {
		case "ec":
			bits = 256
		case "rsa":
			bits = 2048
		}
	}
	return keyType, bits
}

// LeafSignatureAlgorithm is the signature algorithm of a certificate the
// authority signs through a role whose key type is roleKeyType ("" is any),
// for a key of algorithm alg. The authority's key decides it, not the
// request: an RSA authority signs SHA256WithRSA; an ECDSA one signs with the
// hash of its curve (SHA-256 for P-256, SHA-384 for P-384, SHA-512 for
// P-521) — except that a role for RSA keys (key_type rsa, or any with an RSA
// key) carries signature_bits 256, which an ECDSA authority honours; Ed25519
// signs PureEd25519.
func (s AuthoritySpec) LeafSignatureAlgorithm(roleKeyType string, alg KeyAlgorithm) string {
	keyType, bits := s.CAKey()
	switch keyType {
	case "rsa":
		return "SHA256WithRSA"
	case "ed25519":
		return "PureEd25519"
	}
	if roleKeyType == "rsa" || (roleKeyType == "" || roleKeyType == "any") && alg == RSA {
		return "ECDSAWithSHA256"
	}
	switch bits {
	case 384:
		return "ECDSAWithSHA384"
	case 521:
		return "ECDSAWithSHA512"
	}
	return "ECDSAWithSHA256"
}

// KeyRefusal says why the role refuses a key of algorithm alg and size bits
// (RSA bits, ECDSA curve size), as Vault's sign does, or "" when it signs
// it: a role of key type rsa, ec or ed25519 takes only that type, keyBits
// (default 2048 for rsa, 256 for ec) is the smallest size; a role of any
// type takes RSA from 2048 bits and any curve.
func (s IssuerSpec) KeyRefusal(alg KeyAlgorithm, bits int) string {
	want := map[string]KeyAlgorithm{"rsa": RSA, "ec": ECDSA, "ed25519": Ed25519}
	kt := s.KeyType
	if kt == "" {
		kt = "any"
	}
	if w, ok := want[kt]; ok && w != alg {
		return "the role requires keys of type " + kt
	}
	min := 0
	switch {
	case alg == RSA:
		min = 2048
		if kt == "rsa" && s.KeyBits > min {
			min = s.KeyBits
		}
	case alg == ECDSA && kt == "ec":
		min = 256
		if s.KeyBits > 0 {
			min = s.KeyBits
		}
	}
	if bits < min {
		return "the role requires a key of at least " + strconv.Itoa(min) + " bits"
	}
	return ""
}
