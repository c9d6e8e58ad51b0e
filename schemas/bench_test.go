package schemas

import (
	"fmt"
	"strings"
	"testing"
)

// teams are the owners of generated manifests; each has a namespace, a
// domain and a SPIFFE path, as a fleet's repository would.
var benchTeams = []string{"payments", "checkout", "search", "identity", "ledger", "catalog", "shipping", "billing", "fraud", "notify"}

// genManifest writes one realistic Certificate of a team: SANs, SPIFFE IDs,
// key, usages and one to three targets, varied by n.
func genManifest(b *strings.Builder, team string, n int) {
	svc := fmt.Sprintf("svc-%04d", n)
	issuer := "fleet-internal"
	if n%7 == 0 {
		issuer = "fleet-public"
	}
	fmt.Fprintf(b, `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: %[1]s-tls
  namespace: %[2]s
  labels:
    app.kubernetes.io/name: %[1]s
    team: %[2]s
    tier: %[3]s
spec:
  issuer: %[4]s
  commonName: %[1]s.%[2]s.svc
  dnsNames:
    - %[1]s.%[2]s.svc.cluster.local
    - %[1]s.%[2]s.svc
`, svc, team, []string{"critical", "standard", "batch"}[n%3], issuer)
	if issuer == "fleet-public" {
		fmt.Fprintf(b, "    - %s.%s.example.com\n", svc, team)
	}
	if n%3 == 0 {
		fmt.Fprintf(b, "  ipAddresses:\n    - 10.%d.%d.%d\n", n%250, (n/250)%250, n%200+1)
	}
	fmt.Fprintf(b, "  uris:\n    - spiffe://fleet.test/ns/%s/sa/%s\n", team, svc)
	fmt.Fprintf(b, "  usages:\n    - digital signature\n    - key encipherment\n    - server auth\n")
	if n%2 == 0 {
		b.WriteString("    - client auth\n")
	}
	switch n % 4 {
	case 0:
		b.WriteString("  duration: 2160h\n  renewBefore: 360h\n")
	case 1:
		b.WriteString("  duration: 30d\n  renewBeforePercentage: 25\n")
	case 2:
		b.WriteString("  duration: 1d12h\n")
	}
	switch n % 3 {
	case 0:
		b.WriteString("  privateKey:\n    algorithm: ECDSA\n    size: 256\n")
	case 1:
		b.WriteString("  privateKey:\n    algorithm: RSA\n    size: 3072\n    rotationPolicy: Always\n    encoding: PKCS8\n")
	}
	b.WriteString("  targets:\n")
	fmt.Fprintf(b, `    - kubernetes:
        cluster: prod-eu-%d
        namespace: %s
        secretName: %s-tls
        secretTemplate:
          labels:
            app.kubernetes.io/part-of: %s
          annotations:
            reloader.stakater.com/match: "true"
`, n%3, team, svc, team)
	if n%5 == 0 {
		fmt.Fprintf(b, "    - vaultKV:\n        mount: secret\n        path: tls/%s/%s\n", team, svc)
	}
	if n%11 == 0 {
		fmt.Fprintf(b, "    - kubernetes:\n        clusterSelector:\n          matchLabels:\n            env: staging\n        namespace: %s\n        secretName: %s-tls\n", team, svc)
	}
}

// genFiles makes files×perFile Certificate manifests, keyed by a
// repository path under teams/<team>/.
func genFiles(files, perFile int) (paths []string, data [][]byte) {
	for f := 0; f < files; f++ {
		team := benchTeams[f%len(benchTeams)]
		var b strings.Builder
		for i := 0; i < perFile; i++ {
			if i > 0 {
				b.WriteString("---\n")
			}
			genManifest(&b, team, f*perFile+i)
		}
		paths = append(paths, fmt.Sprintf("teams/%s/certificates-%03d.yaml", team, f))
		data = append(data, []byte(b.String()))
	}
	return paths, data
}

// benchPolicies is a realistic catalog: a baseline every certificate meets,
// per-issuer and per-team rules, and a warning for critical services.
const benchPolicies = `apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: baseline
spec:
  keyAlgorithms:
    - algorithm: ECDSA
    - algorithm: RSA
      minSize: 2048
    - algorithm: Ed25519
  maxDuration: 90d
  minRenewBefore: 2h
  allowedUsages: [digital signature, key encipherment, server auth, client auth]
  maxSANs: 50
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: internal
spec:
  selector:
    issuers: [fleet-internal]
  dnsNames: ["**.svc.cluster.local", "*.*.svc"]
  ipRanges: [10.0.0.0/8, "fd00::/8"]
  uris: ["spiffe://fleet.test/ns/*/sa/*"]
  namespaces: ["*"]
  clusters: ["prod-*", "staging-*"]
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: public
spec:
  selector:
    issuers: [fleet-public]
  dnsNames: ["**.example.com", "**.svc.cluster.local", "*.*.svc"]
  ipRanges: [10.0.0.0/8]
  requiredUsages: [server auth]
  allowedUsages: [digital signature, key encipherment, server auth, client auth]
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: payments
spec:
  selector:
    paths: ["teams/payments/**"]
  uris: ["spiffe://fleet.test/ns/payments/**"]
  namespaces: [payments, "payments-*"]
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: critical-short-lived
spec:
  selector:
    matchLabels:
      tier: critical
  maxDuration: 30d
  enforcement: warn
`

// compileBenchPolicies decodes and compiles benchPolicies, failing tb on any error.
func compileBenchPolicies(tb testing.TB) *PolicySet {
	tb.Helper()
	dec := Decode("catalog/policies.yaml", []byte(benchPolicies))
	if len(dec.Errors) > 0 {
		tb.Fatalf("decoding the policies: %v", dec.Errors)
	}
	var ps []*Policy
	for _, d := range dec.Documents {
		ps = append(ps, d.Object.(*Policy))
	}
	set, bad := CompilePolicies(ps)
	if len(bad) > 0 {
		tb.Fatalf("compiling the policies: %v", bad)
	}
	return set
}

func BenchmarkDecodeValidateEvaluate10k(b *testing.B) {
	paths, data := genFiles(100, 100)
	policies := compileBenchPolicies(b)
	var size int
	for _, d := range data {
		size += len(d)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		certs, denied := 0, 0
		for i, d := range data {
			dec := Decode(paths[i], d)
			if len(dec.Errors) > 0 {
				b.Fatalf("decoding %s: %v", paths[i], dec.Errors)
			}
			for _, doc := range dec.Documents {
				decl, errs := Declarations(doc)
				if len(errs) > 0 {
					b.Fatalf("validating %s: %v", paths[i], errs)
				}
				for _, c := range decl {
					certs++
					if v := policies.Evaluate(c.Certificate, c.Origin.Doc.File, nil); !v.Allowed {
						denied++
					}
				}
			}
		}
		if certs != 10000 {
			b.Fatalf("got %d certificates, want 10000", certs)
		}
		if denied != 0 {
			b.Fatalf("%d generated certificates were denied; the generator and the policies disagree", denied)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/cert")
}
