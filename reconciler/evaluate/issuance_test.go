package evaluate_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/schemas"
)

// issuanceCatalog holds authorities of each key type and issuers whose
// roles give different usages and take different keys.
const issuanceCatalog = `apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: p256}
spec: {type: root, mount: pki-p256, commonName: P256}
status: {notAfter: "2040-01-01T00:00:00Z"}
---
apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: p384}
spec: {type: root, mount: pki-p384, commonName: P384, keyType: ec, keyBits: 384}
status: {notAfter: "2040-01-01T00:00:00Z"}
---
apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: rsa}
spec: {type: root, mount: pki-rsa, commonName: RSA, keyType: rsa, keyBits: 4096}
status: {notAfter: "2040-01-01T00:00:00Z"}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: mtls}
spec: {authority: p256, maxTTL: 2160h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: server}
spec: {authority: p256, clientFlag: false}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: client}
spec: {authority: p256, serverFlag: false}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: signer}
spec: {authority: p256, serverFlag: false, clientFlag: false, extKeyUsage: [CodeSigning]}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: tight}
spec: {authority: p256, maxTTL: 720h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: p384-any}
spec: {authority: p384}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: p384-rsa}
spec: {authority: p384, keyType: rsa, keyBits: 3072}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: rsa-ec}
spec: {authority: rsa, keyType: ec, keyBits: 384}
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: all}
spec: {selector: {paths: ["**"]}}
`

// leaf is a certificate of issuer with further spec lines.
func leaf(issuer string, lines ...string) string {
	s := `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: api, namespace: payments}
spec:
  issuer: ` + issuer + `
  commonName: api.payments.svc
  dnsNames: [api.payments.svc]
  duration: 720h
`
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return s + "  targets: [{directory: {path: /etc/tls/api}}]\n"
}

func TestIssuanceChecks(t *testing.T) {
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(issuanceCatalog))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ev := evaluate.New(cat, now)
	cases := []struct {
		name       string
		manifest   string
		violations []schemas.Reason
		warnings   []schemas.Reason
		// field and message are of the first violation (or warning).
		field, message string
		effective      schemas.Effective
	}{
		{
			name:      "the default usages under an issuer that gives them are allowed; the effective usages show what the role adds",
			manifest:  leaf("mtls"),
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages"}},
		},
		{
			name:       "code signing under an issuer without it is refused, naming the issuer setting that would allow it",
			manifest:   leaf("mtls", "usages: [digital signature, code signing]"),
			violations: []schemas.Reason{evaluate.ReasonUsageNotProduced}, warnings: []schemas.Reason{evaluate.ReasonUsagesWidened},
			field:   "spec.usages[1]",
			message: `usage "code signing" is not added by issuer "mtls" (its role adds server auth, client auth); set extKeyUsage: [CodeSigning] on the issuer`,
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256",
				Changed: []string{"usages"}},
		},
		{
			name:       "code signing under an issuer that adds it is allowed",
			manifest:   leaf("signer", "usages: [digital signature, key encipherment, key agreement, code signing]"),
			effective:  schemas.Effective{TTL: "30d", Usages: []schemas.KeyUsage{"digital signature", "key encipherment", "key agreement", "code signing"}, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256"},
			violations: nil,
		},
		{
			name:       "client auth under a server-only issuer is refused, naming clientFlag",
			manifest:   leaf("server", "usages: [digital signature, key encipherment, key agreement, server auth, client auth]"),
			violations: []schemas.Reason{evaluate.ReasonUsageNotProduced},
			field:      "spec.usages[4]", message: `set clientFlag: true on the issuer`,
			effective: schemas.Effective{TTL: "30d", Usages: []schemas.KeyUsage{"digital signature", "key encipherment", "key agreement", "server auth"}, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages"}},
		},
		{
			name:       "the default server auth under a client-only issuer is refused at spec.usages",
			manifest:   leaf("client"),
			violations: []schemas.Reason{evaluate.ReasonUsageNotProduced},
			field:      "spec.usages", message: `usage "server auth" (a default usage: spec.usages is not set) is not added by issuer "client" (its role adds client auth); set serverFlag: true on the issuer, or set spec.usages`,
			effective: schemas.Effective{TTL: "30d", Usages: []schemas.KeyUsage{"digital signature", "key encipherment", "key agreement", "client auth"}, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages"}},
		},
		{
			name:       "a key usage no role gives is refused",
			manifest:   leaf("mtls", "usages: [digital signature, key encipherment, key agreement, server auth, client auth, data encipherment]"),
			violations: []schemas.Reason{evaluate.ReasonUsageNotProduced},
			field:      "spec.usages[5]", message: `no issuer setting adds it`,
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages"}},
		},
		{
			name:     "explicit usages the role widens are a warning that names what is added",
			manifest: leaf("mtls", "usages: [signing, key encipherment, server auth]"),
			warnings: []schemas.Reason{evaluate.ReasonUsagesWidened},
			field:    "spec.usages", message: `the certificate will also carry key agreement, client auth: issuer "mtls" gives every certificate digital signature, key encipherment, key agreement, server auth, client auth`,
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages"}},
		},
		{
			name:      "explicit usages equal to the role's are neither refused nor widened",
			manifest:  leaf("mtls", "usages: [client auth, server auth, key agreement, key encipherment, digital signature]"),
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256"},
		},
		{
			name:       "a subject field beyond the common name is refused: the role drops it",
			manifest:   leaf("mtls", "subject: {organizations: [Example Corp], countries: [DE]}"),
			violations: []schemas.Reason{evaluate.ReasonSubjectDropped, evaluate.ReasonSubjectDropped},
			field:      "spec.subject.organizations", message: `subject organizations "Example Corp" would be dropped: issuer "mtls"'s role keeps only the common name`,
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages", "subject"}},
		},
		{
			name:       "a signature algorithm the authority's key does not make is refused, naming the authority setting",
			manifest:   leaf("mtls", "signatureAlgorithm: ECDSAWithSHA384"),
			violations: []schemas.Reason{evaluate.ReasonSignatureAlgorithmUnavailable},
			field:      "spec.signatureAlgorithm", message: `signatureAlgorithm ECDSAWithSHA384 cannot be had through issuer "mtls": its authority "p256" has a ec 256 key and signs ECDSAWithSHA256; use an issuer whose authority has keyType: ec, keyBits: 384`,
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages", "signatureAlgorithm"}},
		},
		{
			name:      "SHA-384 from a P-384 authority is allowed",
			manifest:  leaf("p384-any", "signatureAlgorithm: ECDSAWithSHA384"),
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA384", Changed: []string{"usages"}},
		},
		{
			name:       "an RSA key's role makes a P-384 authority sign SHA-256, as Vault does",
			manifest:   leaf("p384-any", "signatureAlgorithm: ECDSAWithSHA384", "privateKey: {algorithm: RSA}"),
			violations: []schemas.Reason{evaluate.ReasonSignatureAlgorithmUnavailable},
			field:      "spec.signatureAlgorithm", message: "whose role is not for RSA keys",
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages", "signatureAlgorithm"}},
		},
		{
			name:       "SHA-512 with RSA is refused: Vault signs SHA-256 with RSA authorities",
			manifest:   leaf("rsa-ec", "signatureAlgorithm: SHA512WithRSA", "privateKey: {algorithm: ECDSA, size: 384}"),
			violations: []schemas.Reason{evaluate.ReasonSignatureAlgorithmUnavailable},
			field:      "spec.signatureAlgorithm", message: "no authority signs it",
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "SHA256WithRSA", Changed: []string{"usages", "signatureAlgorithm"}},
		},
		{
			name:       "a key of another type than the role's is refused",
			manifest:   leaf("p384-rsa"),
			violations: []schemas.Reason{evaluate.ReasonKeyRefusedByIssuer},
			field:      "spec.privateKey.algorithm", message: `a ECDSA 256 key is refused by issuer "p384-rsa": the role requires keys of type rsa; set privateKey.algorithm: RSA`,
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages"}},
		},
		{
			name:       "a key smaller than the role's keyBits is refused",
			manifest:   leaf("p384-rsa", "privateKey: {algorithm: RSA, size: 2048}"),
			violations: []schemas.Reason{evaluate.ReasonKeyRefusedByIssuer},
			field:      "spec.privateKey.size", message: "the role requires a key of at least 3072 bits",
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"usages"}},
		},
		{
			name:       "a P-256 key under a role for P-384 is refused",
			manifest:   leaf("rsa-ec"),
			violations: []schemas.Reason{evaluate.ReasonKeyRefusedByIssuer},
			field:      "spec.privateKey.size", message: "at least 384 bits",
			effective: schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "SHA256WithRSA", Changed: []string{"usages"}},
		},
		{
			name:       "a duration over the issuer's max TTL shows the capped TTL",
			manifest:   strings.Replace(leaf("tight"), "duration: 720h", "duration: 1440h", 1),
			violations: []schemas.Reason{evaluate.ReasonDurationBeyondIssuer},
			field:      "spec.duration",
			effective:  schemas.Effective{TTL: "30d", Usages: mtlsUsages, Subject: "CN=api.payments.svc", SignatureAlgorithm: "ECDSAWithSHA256", Changed: []string{"ttl", "usages"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := ev.Verdict(desired(t, "teams/payments/api.yaml", tc.manifest))
			if got := reasons(v.Violations); !reflect.DeepEqual(got, tc.violations) {
				t.Errorf("violations = %v, want %v (%+v)", got, tc.violations, v.Violations)
			}
			if got := reasons(v.Warnings); !reflect.DeepEqual(got, tc.warnings) {
				t.Errorf("warnings = %v, want %v (%+v)", got, tc.warnings, v.Warnings)
			}
			if v.Allowed != (len(tc.violations) == 0) {
				t.Errorf("Allowed = %v with violations %v", v.Allowed, tc.violations)
			}
			if tc.field != "" || tc.message != "" {
				all := append(append([]schemas.LocatedViolation{}, v.Violations...), v.Warnings...)
				if len(all) == 0 || all[0].Field != tc.field || !strings.Contains(all[0].Message, tc.message) || all[0].Line == 0 {
					t.Errorf("first finding %+v, want field %s, a line, and a message with %q", all, tc.field, tc.message)
				}
			}
			if v.Effective == nil || !reflect.DeepEqual(*v.Effective, tc.effective) {
				t.Errorf("effective = %+v, want %+v", v.Effective, tc.effective)
			}
		})
	}
}

var mtlsUsages = []schemas.KeyUsage{"digital signature", "key encipherment", "key agreement", "server auth", "client auth"}

func TestNoEffectiveValuesWithoutTheIssuerAndItsAuthority(t *testing.T) {
	ev := evaluate.New(catalog(t), now)
	for _, issuer := range []string{"nope", "lost"} {
		if v := ev.Verdict(desired(t, "teams/payments/api.yaml", cert(issuer, "240h"))); v.Effective != nil {
			t.Errorf("issuer %s: effective = %+v, want none: the catalog cannot say", issuer, v.Effective)
		}
	}
	// The issuer alone decides the usages: they are checked without its authority.
	manifest := strings.Replace(cert("lost", "240h"), "  duration:", "  usages: [code signing]\n  duration:", 1)
	v := ev.Verdict(desired(t, "teams/payments/api.yaml", manifest))
	if got := reasons(v.Violations); !slices.Contains(got, evaluate.ReasonUsageNotProduced) || !slices.Contains(got, evaluate.ReasonAuthorityUnavailable) {
		t.Errorf("violations = %v, want UsageNotProduced beside AuthorityUnavailable", got)
	}
}

// Every certificate's Effective carries its issuer's usages; in a fleet of
// 100,000 they share the issuer's one slice rather than each holding a copy.
func TestEffectiveUsagesAreSharedPerIssuer(t *testing.T) {
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(issuanceCatalog))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ev := evaluate.New(cat, now)
	a := ev.Verdict(desired(t, "teams/payments/api.yaml", leaf("mtls"))).Effective
	b := ev.Verdict(desired(t, "teams/payments/web.yaml", leaf("mtls"))).Effective
	if a == nil || b == nil || len(a.Usages) == 0 {
		t.Fatalf("effective %+v, %+v", a, b)
	}
	if &a.Usages[0] != &b.Usages[0] {
		t.Error("two certificates of one issuer hold two copies of its usages")
	}
	if a != b {
		t.Error("two certificates that come out alike hold two copies of their Effective")
	}
	if !slices.Equal(a.Usages, mtlsUsages) {
		t.Errorf("usages %v, want %v", a.Usages, mtlsUsages)
	}
}
