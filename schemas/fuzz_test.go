package schemas

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzDecodeValidate feeds arbitrary bytes through what `certfleet
// validate` does with a file. Nothing may panic, and every error must be
// placed in the file.
func FuzzDecodeValidate(f *testing.F) {
	for _, pattern := range []string{"testdata/invalid/*.yaml", "testdata/valid/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	_, data := genFiles(1, 3)
	f.Add(data[0])
	f.Add([]byte(benchPolicies))
	f.Add([]byte(posDoc))
	f.Add([]byte(setHeader + "  template:\n    issuer: fleet\n    dnsNames: [\"${service}.svc\"]\n    privateKey: {size: 256}\n  items:\n    - {service: api}\n"))
	f.Add([]byte("---\n--- {a: 1}\n...\n---\nkind: Certificate\n"))
	f.Add([]byte("apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: &m {name: a}\nspec:\n  <<: {issuer: x}\n  commonName: *m\n"))
	// Files that a single stream parser reads differently from a parser
	// per document: anchors across documents, directives, markers, errors.
	cert := "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: &i x, commonName: y}\n"
	f.Add([]byte(cert + "---\napiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: b}\nspec: {issuer: *i, commonName: y}\n"))
	f.Add([]byte("%YAML 1.2\n---\n" + cert + "---\n%TAG ! tag:example.com,2000:\n---\n" + cert))
	f.Add([]byte("# head\n---\n" + cert + "---\n# nothing\n---\n" + cert + "...\n# between\n...\n" + cert + "--- {a: 1}\n--- |\n  text\n"))
	f.Add([]byte(cert + "---\nfoo: [\n---\n" + cert + "---\n\tbad: tab\n---\n" + cert))

	f.Fuzz(func(t *testing.T, data []byte) {
		dec := Decode("fuzz.yaml", data)
		// Parsing the file as one stream is only a saving: it must decode
		// exactly what a parser per document does.
		alone := decode("fuzz.yaml", data, &stream{}, nil)
		if got, want := errorLines(slices.Clone(dec.Errors)), errorLines(slices.Clone(alone.Errors)); !slices.Equal(got, want) {
			t.Fatalf("parsed as a stream, errors\n%s\nparsed per document\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(dec.Documents) != len(alone.Documents) || !reflect.DeepEqual(dec.Ignored, alone.Ignored) {
			t.Fatalf("parsed as a stream, %d documents and %v ignored; per document %d and %v", len(dec.Documents), dec.Ignored, len(alone.Documents), alone.Ignored)
		}
		for i, d := range dec.Documents {
			a := alone.Documents[i]
			if d.Line != a.Line || d.Index != a.Index || d.Kind != a.Kind || d.Name != a.Name || !reflect.DeepEqual(d.Object, a.Object) {
				t.Fatalf("document %d parsed as a stream %+v, per document %+v", i, d, a)
			}
		}
		all := dec.Errors
		for _, d := range dec.Documents {
			if d.Object == nil {
				t.Fatalf("document %d has no object", d.Index)
			}
			switch o := d.Object.(type) {
			case *Certificate, *CertificateSet:
				decl, errs := Declarations(d)
				all = append(all, errs...)
				for _, c := range decl {
					if c.Certificate == nil || c.Origin.Doc != d {
						t.Fatalf("declaration without certificate or origin: %+v", c)
					}
					IssueHash(&c.Certificate.Spec)
					for _, tg := range c.Certificate.Spec.Targets {
						TemplateHash(&c.Certificate.Spec, tg)
					}
					c.Origin.Pos("spec.dnsNames[0]")
				}
			case *Policy:
				_, errs := compilePolicy(o)
				all = append(all, d.Locate(errs)...)
			default:
				all = append(all, d.Locate(Validate(d.Object))...)
			}
			for _, p := range []string{"", "spec", "spec.targets[0].kubernetes", `metadata.labels["a.b/c"]`, "spec[", `x["`, "a..b[-1]", "[99999999999999999999]"} {
				if line, col := d.Pos(p); line < 1 || col < 1 {
					t.Fatalf("Pos(%q) = %d:%d", p, line, col)
				}
			}
		}
		all.Sort()
		for _, e := range all {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Column < 1 || e.Problem == "" {
				t.Fatalf("an error not placed in the file: %#v", e)
			}
			_ = e.Error()
		}
	})
}

// fuzzPolicies is a fixed catalog that uses every kind of rule.
const fuzzPolicies = benchPolicies + `---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: everything
spec:
  selector:
    matchLabels: {fuzz: "yes"}
  dnsNames: ["*.example.com", "**.svc"]
  ipRanges: [192.168.0.0/16, "::1"]
  uris: ["https://*.example.com/**"]
  emailAddresses: ["*@example.com"]
  subject:
    organizations: ["Ex*"]
    organizationalUnits: ["{a,b}*"]
  keyAlgorithms: [{algorithm: RSA, minSize: 3072}, {algorithm: ECDSA, minSize: 384}]
  maxDuration: 1d
  minRenewBefore: 1h
  allowedUsages: [server auth, client auth, digital signature]
  requiredUsages: [server auth]
  allowWildcards: true
  maxSANs: 3
  clusters: ["prod-*"]
  namespaces: ["[a-m]*"]
`

// FuzzEvaluate evaluates arbitrary certificates against fixed policies:
// nothing may panic, and a certificate is allowed exactly when it has no
// violations.
func FuzzEvaluate(f *testing.F) {
	f.Add("fleet-internal", "api.payments.svc", "10.0.0.1", "spiffe://fleet.test/ns/payments/sa/api", "pki@example.com", "Example", "server auth", "30d", "10d", 25, "RSA", 3072, "prod-eu-1", "payments", "teams/payments/a.yaml", "critical", "yes")
	f.Add("fleet-public", "*.example.com", "fd00::1", "https://x.example.com/a/b", "a@b", "", "client auth", "", "", 0, "", 0, "", "", "", "", "")
	f.Add("", "", "not-an-ip", "::", "", "", "", "bad", "-1h", -5, "Ed25519", -1, "", "", "teams/**", "", "no")
	f.Fuzz(func(t *testing.T, issuer, dns, ip, uri, email, org, usage, duration, renewBefore string, pct int,
		alg string, size int, cluster, namespace, path, tier, fuzzLabel string) {
		set := compileFuzzPolicies(t)
		c := &Certificate{
			TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindCertificate},
			Metadata: ObjectMeta{Name: "fuzz", Labels: map[string]string{"tier": tier, "fuzz": fuzzLabel}},
			Spec: CertificateSpec{
				Issuer: issuer, CommonName: dns, DNSNames: []string{dns, strings.ToUpper(dns)}, IPAddresses: []string{ip},
				URIs: []string{uri}, EmailAddresses: []string{email}, Subject: &Subject{Organizations: []string{org}, OrganizationalUnits: []string{org}},
				Usages: []KeyUsage{KeyUsage(usage)}, Duration: Duration(duration), RenewBefore: Duration(renewBefore),
				RenewBeforePercentage: &pct, PrivateKey: &PrivateKey{Algorithm: KeyAlgorithm(alg), Size: size},
				Targets: []Target{
					{Kubernetes: &KubernetesTarget{Cluster: cluster, Namespace: namespace, SecretName: "x"}},
					{Kubernetes: &KubernetesTarget{ClusterSelector: &LabelSelector{MatchLabels: map[string]string{"env": cluster}}, Namespace: namespace}},
					{VaultKV: &VaultKVTarget{Mount: cluster, Path: namespace}},
				},
			},
		}
		if pct%3 == 0 {
			c.Spec.RenewBeforePercentage, c.Spec.PrivateKey, c.Spec.Usages = nil, nil, nil
		}
		v := set.Evaluate(c, path, nil)
		if v.Allowed != (len(v.Violations) == 0) {
			t.Fatalf("Allowed = %v with %d violations", v.Allowed, len(v.Violations))
		}
		if len(v.Policies) == 0 && (v.Allowed || v.Violations[0].Reason != ReasonNoPolicy) {
			t.Fatalf("a certificate no policy selects is not denied for NoPolicy: %+v", v)
		}
		for _, viol := range append(v.Violations, v.Warnings...) {
			if viol.Reason == "" || viol.Message == "" || viol.Field == "" {
				t.Fatalf("an incomplete violation: %+v", viol)
			}
		}
		Validate(c)
		IssueHash(&c.Spec)
		nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		na := nb.Add(c.Spec.Lifetime())
		rt := RenewalTime(nb, na, c.Spec.RenewBefore, c.Spec.RenewBeforePercentage)
		if jt := JitteredRenewalTime(issuer+dns, nb, na, c.Spec.RenewBefore, c.Spec.RenewBeforePercentage, MaxJitter); jt.After(rt) || rt.After(na) || rt.Before(nb) {
			t.Fatalf("renewal %v, jittered %v, outside [%v, %v]", rt, jt, nb, na)
		}
	})
}

// fuzzPolicySet compiles fuzzPolicies once.
var fuzzPolicySet = sync.OnceValues(func() (*PolicySet, error) {
	dec := Decode("catalog/policies.yaml", []byte(fuzzPolicies))
	if len(dec.Errors) > 0 {
		return nil, dec.Errors
	}
	var ps []*Policy
	for _, d := range dec.Documents {
		ps = append(ps, d.Object.(*Policy))
	}
	set, bad := CompilePolicies(ps)
	if len(bad) > 0 || set.Len() != 6 {
		return nil, fmt.Errorf("compiled %d policies: %v", set.Len(), bad)
	}
	return set, nil
})

func compileFuzzPolicies(t *testing.T) *PolicySet {
	set, err := fuzzPolicySet()
	if err != nil {
		t.Fatalf("the fuzz policies: %v", err)
	}
	return set
}
