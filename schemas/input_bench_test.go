package schemas

import (
	"fmt"
	"strings"
	"testing"
)

// genSmallCertificates writes n small Certificates as one multi-document
// file, the shape of a generated fleet inventory (~280 bytes each).
func genSmallCertificates(n int) []byte {
	var b strings.Builder
	for i := range n {
		team := benchTeams[i%len(benchTeams)]
		fmt.Fprintf(&b, `---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: svc-%06[1]d
  namespace: %[2]s
spec:
  issuer: fleet-internal
  dnsNames: [svc-%06[1]d.%[2]s.svc]
  targets:
    - kubernetes: {cluster: prod, namespace: %[2]s, secretName: svc-%06[1]d-tls}
`, i, team)
	}
	return []byte(b.String())
}

func BenchmarkDecodeLargeFile(b *testing.B) {
	data := genSmallCertificates(20_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var allocated uint64
	for b.Loop() {
		dec := Decode("inventory.yaml", data)
		if len(dec.Errors) > 0 || len(dec.Documents) != 20_000 {
			b.Fatalf("%d documents, errors: %v", len(dec.Documents), dec.Errors)
		}
	}
	_ = allocated
}
