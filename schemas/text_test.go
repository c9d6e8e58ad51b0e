package schemas

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"
	"weak"

	"github.com/certfleet/certfleet/internal/intern"
)

// Packed documents place every position as before, in a file of several
// documents, one of them a CertificateSet whose items are placed through
// their template; they no longer hold the file's text, and the packed text
// of a fleet's repetitive manifests is a small part of it.
func TestPackTextKeepsPositionsAndDropsTheFile(t *testing.T) {
	var b strings.Builder
	b.WriteString("# a fleet\n---\n" + posDoc + "---\n" + setDoc)
	for i := range 200 {
		fmt.Fprintf(&b, "---\n# service %d\n%smetadata:\n  name: svc-%d\nspec:\n  issuer: fleet\n  dnsNames: [svc-%d.example.com]\n", i, "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\n", i, i)
	}
	data := []byte(b.String())
	file := weak.Make(&data[0])
	dec, want := Decode("f.yaml", data), Decode("f.yaml", []byte(b.String()))
	if len(dec.Errors) > 0 || len(dec.Documents) != 202 {
		t.Fatalf("decoding the fixture: %d documents, %v", len(dec.Documents), dec.Errors)
	}
	fields := []string{"", "kind", "metadata.name", `metadata.labels["app.kubernetes.io/name"]`, "spec.dnsNames[2]", "spec.ipAddresses[1]",
		"spec.targets[0].kubernetes.namespace", "spec.targets[1].vaultKV.path", "spec.privateKey.algorithm", "spec.commonName", "spec.template.dnsNames[0]"}
	type at struct{ line, col int }
	positions := func(dec Decoded) (out []at) {
		for _, d := range dec.Documents {
			for _, f := range fields {
				l, c := d.Pos(f)
				out = append(out, at{l, c})
			}
		}
		decls, errs := Declarations(dec.Documents[1])
		if len(errs) > 0 || len(decls) == 0 {
			t.Fatalf("the set declares %d certificates: %v", len(decls), errs)
		}
		for _, d := range decls {
			l, c := d.Origin.Pos("spec.dnsNames[0]")
			out = append(out, at{l, c})
			for _, e := range d.Origin.Locate(Errors{{Field: "spec.issuer", Problem: "p"}}) {
				out = append(out, at{e.Line, e.Column})
			}
		}
		return out
	}
	text := len(data)
	// Given twice and with a nil: packed once, nothing breaks.
	PackText(append(append([]*Document{nil}, dec.Documents...), dec.Documents...))
	data = nil
	runtime.GC()
	if file.Value() != nil {
		t.Error("the file's text is still held once its documents are packed")
	}
	// The set's tree is parsed again from the packed text: Declarations
	// runs on the packed documents only now.
	if got, want := positions(dec), positions(want); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("positions after packing:\n%v\nwant (unpacked):\n%v", got, want)
	}
	p := dec.Documents[0].packed
	for _, d := range dec.Documents {
		if d.packed != p {
			t.Fatal("the documents of a file do not share one packed text")
		}
	}
	if len(p.z)*5 > text {
		t.Errorf("the packed text is %d bytes of %d: a fleet's manifests compress better than that", len(p.z), text)
	}
	// Packing again is a no-op.
	PackText(dec.Documents)
	if dec.Documents[0].packed != p {
		t.Error("packing a packed document again packed it anew")
	}
}

const setDoc = `apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata:
  name: services
spec:
  nameTemplate: ${service}-tls
  template:
    issuer: fleet
    dnsNames:
      - ${service}.payments.svc
    targets:
      - directory: {path: "${service}"}
  items:
    - {service: api}
    - {service: web}
`

// The values most certificates of a fleet share are one copy each, across
// files decoded with one intern.Strings (a pass's), also when the collector
// ran between them: a pass holds every certificate. A value that differs
// stays its own.
func TestDecodeInternsSharedValues(t *testing.T) {
	doc := func(name, issuer string) []byte {
		return []byte("apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: " + name + ", namespace: payments}\n" +
			"spec:\n  issuer: " + issuer + "\n  dnsNames: [" + name + ".example.com]\n  duration: 48h\n  privateKey: {algorithm: ECDSA, size: 256}\n" +
			"  targets:\n    - kubernetes: {cluster: prod, namespace: payments, secretName: " + name + "}\n")
	}
	var strs intern.Strings
	decode := func(file string, data []byte) (*Document, *Certificate) {
		runtime.GC()
		runtime.GC()
		dec := DecodeSharing(file, data, &strs)
		if len(dec.Errors) > 0 || len(dec.Documents) != 1 {
			t.Fatalf("decoding %s: %v", file, dec.Errors)
		}
		return dec.Documents[0], dec.Documents[0].Object.(*Certificate)
	}
	da, a := decode("a.yaml", doc("api", "fleet"))
	db, b := decode("b.yaml", doc("web", "fleet"))
	_, c := decode("c.yaml", doc("db", "other"))
	same := func(what, x, y string) {
		t.Helper()
		if x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: %q and %q are two copies", what, x, y)
		}
	}
	same("apiVersion", a.APIVersion, b.APIVersion)
	same("kind", a.Kind, b.Kind)
	same("the document's kind", da.Kind, db.Kind)
	same("namespace", a.Metadata.Namespace, b.Metadata.Namespace)
	same("the document's namespace", da.Namespace, a.Metadata.Namespace)
	same("issuer", a.Spec.Issuer, b.Spec.Issuer)
	same("duration", string(a.Spec.Duration), string(b.Spec.Duration))
	same("algorithm", string(a.Spec.PrivateKey.Algorithm), string(b.Spec.PrivateKey.Algorithm))
	same("cluster", a.Spec.Targets[0].Kubernetes.Cluster, b.Spec.Targets[0].Kubernetes.Cluster)
	if c.Spec.Issuer != "other" || a.Metadata.Name != "api" || b.Metadata.Name != "web" {
		t.Errorf("issuers %q, %q, names %q, %q: interning changed a value", a.Spec.Issuer, c.Spec.Issuer, a.Metadata.Name, b.Metadata.Name)
	}
}
