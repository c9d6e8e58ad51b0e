package schemas

import (
	"slices"
	"testing"
)

func TestIssuerUsagesFollowVaultsRole(t *testing.T) {
	no := false
	cases := []struct {
		name string
		spec IssuerSpec
		want []KeyUsage
	}{
		{"a default role gives server and client auth", IssuerSpec{},
			[]KeyUsage{"digital signature", "key encipherment", "key agreement", "server auth", "client auth"}},
		{"flags off and named usages give the named ones in Vault's order, once, unknown names dropped",
			IssuerSpec{ServerFlag: &no, ClientFlag: &no, ExtKeyUsage: []string{"timestamping", " CodeSigning", "Bogus", "codesigning", "Any"}},
			[]KeyUsage{"digital signature", "key encipherment", "key agreement", "any", "code signing", "timestamping"}},
		{"a named usage the flags already give is given once", IssuerSpec{ClientFlag: &no, ExtKeyUsage: []string{"ServerAuth"}},
			[]KeyUsage{"digital signature", "key encipherment", "key agreement", "server auth"}},
	}
	for _, c := range cases {
		if got := c.spec.Usages(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if CanonicalUsage("signing") != "digital signature" || CanonicalUsage("s/mime") != "email protection" {
		t.Error("cert-manager's synonyms are not folded")
	}
	if n, ok := VaultNameOfUsage("s/mime"); !ok || n != "EmailProtection" {
		t.Errorf("s/mime is added by %q, want EmailProtection", n)
	}
}

func TestLeafSignatureAlgorithmIsTheAuthoritys(t *testing.T) {
	cases := []struct {
		keyType string
		bits    int
		role    string
		alg     KeyAlgorithm
		want    string
	}{
		{"", 0, "", ECDSA, "ECDSAWithSHA256"},
		{"ec", 384, "", ECDSA, "ECDSAWithSHA384"},
		{"ec", 521, "ec", ECDSA, "ECDSAWithSHA512"},
		{"ec", 384, "any", RSA, "ECDSAWithSHA256"},
		{"ec", 384, "rsa", RSA, "ECDSAWithSHA256"},
		{"ec", 384, "", Ed25519, "ECDSAWithSHA384"},
		{"rsa", 4096, "", ECDSA, "SHA256WithRSA"},
		{"ed25519", 0, "", RSA, "PureEd25519"},
	}
	for _, c := range cases {
		a := AuthoritySpec{KeyType: c.keyType, KeyBits: c.bits}
		if got := a.LeafSignatureAlgorithm(c.role, c.alg); got != c.want {
			t.Errorf("authority %s %d, role %q, %s key: %s, want %s", c.keyType, c.bits, c.role, c.alg, got, c.want)
		}
	}
}

func TestKeyRefusalFollowsVaultsRole(t *testing.T) {
	cases := []struct {
		keyType string
		bits    int
		alg     KeyAlgorithm
		size    int
		refused bool
	}{
		{"", 0, ECDSA, 256, false},
		{"any", 4096, RSA, 2048, false}, // Vault ignores key_bits of an any role
		{"rsa", 0, ECDSA, 256, true},
		{"rsa", 0, RSA, 2048, false},
		{"rsa", 3072, RSA, 2048, true},
		{"rsa", 3072, RSA, 4096, false},
		{"ec", 0, ECDSA, 256, false},
		{"ec", 384, ECDSA, 256, true},
		{"ec", 384, ECDSA, 521, false},
		{"ed25519", 0, ECDSA, 256, true},
		{"ed25519", 0, Ed25519, 0, false},
	}
	for _, c := range cases {
		why := IssuerSpec{KeyType: c.keyType, KeyBits: c.bits}.KeyRefusal(c.alg, c.size)
		if (why != "") != c.refused {
			t.Errorf("role %s %d, %s %d: refusal %q, want refused %v", c.keyType, c.bits, c.alg, c.size, why, c.refused)
		}
	}
}
