package schemas

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// genSmallCertificates writes n small Certificates as one multi-document
// file, the shape of a generated fleet inventory (~270 bytes each).
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

// reportPerInputByte reports what one decode allocated and what its result
// holds, per byte of input: make bench quotes these.
func reportPerInputByte(b *testing.B, size int, decode func() any) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	result := decode()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(result)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(size), "alloc-B/in-B")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(size), "held-B/in-B")
}

// BenchmarkDecodeLargeFile decodes 20,000 small Certificates in one 5 MB file.
func BenchmarkDecodeLargeFile(b *testing.B) {
	const n = 20_000
	data := genSmallCertificates(n)
	decode := func() any {
		dec := Decode("inventory.yaml", data)
		if len(dec.Errors) > 0 || len(dec.Documents) != n {
			b.Fatalf("%d documents, errors: %v", len(dec.Documents), dec.Errors)
		}
		return dec
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		decode()
	}
	reportPerInputByte(b, len(data), decode)
}

// BenchmarkDecodeLargeMapping decodes a Certificate with 50,000 labels (1 MB).
func BenchmarkDecodeLargeMapping(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: api\n  labels:\n")
	for i := range 50_000 {
		fmt.Fprintf(&sb, "    example.com/label-%06d: value-%06d\n", i, i)
	}
	sb.WriteString("spec:\n  issuer: fleet\n  commonName: api\n")
	data := []byte(sb.String())
	decode := func() any {
		dec := Decode("labels.yaml", data)
		if len(dec.Errors) > 0 || len(dec.Documents) != 1 {
			b.Fatalf("errors: %v", dec.Errors)
		}
		return dec
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		decode()
	}
	reportPerInputByte(b, len(data), decode)
}

// BenchmarkDeclareLargeSet decodes and expands a CertificateSet of 2,000
// items of a realistic template.
func BenchmarkDeclareLargeSet(b *testing.B) {
	const n = 2_000
	var sb strings.Builder
	sb.WriteString(`apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata: {name: fleet, namespace: payments, labels: {team: payments}}
spec:
  nameTemplate: ${service}-tls
  template:
    issuer: fleet-internal
    commonName: ${service}.payments.svc
    dnsNames: ["${service}.payments.svc", "${service}.payments.svc.cluster.local"]
    uris: ["spiffe://fleet.test/ns/payments/sa/${service}"]
    usages: [digital signature, key encipherment, server auth]
    privateKey: {algorithm: ECDSA, size: 256}
    targets:
      - kubernetes: {cluster: prod, namespace: payments, secretName: "${service}-tls"}
  items:
`)
	for i := range n {
		fmt.Fprintf(&sb, "    - {service: svc-%05d}\n", i)
	}
	data := []byte(sb.String())
	declare := func() any {
		dec := Decode("set.yaml", data)
		if len(dec.Errors) > 0 || len(dec.Documents) != 1 {
			b.Fatalf("errors: %v", dec.Errors)
		}
		decl, errs := Declarations(dec.Documents[0])
		if len(errs) > 0 || len(decl) != n {
			b.Fatalf("%d certificates, errors: %v", len(decl), errs)
		}
		return decl
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		declare()
	}
	reportPerInputByte(b, len(data), declare)
}
