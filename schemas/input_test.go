package schemas

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// within runs f and fails the test when it does not finish in limit. The
// inputs of these tests took minutes before decoding was bounded; the limit
// is generous so that a loaded machine does not fail them.
func within(t *testing.T, limit time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		t.Logf("took %v", time.Since(start))
	case <-time.After(limit):
		t.Fatalf("still running after %v", limit)
	}
}

func TestDecodeLargeMappingIsLinear(t *testing.T) {
	const keys = 200_000
	var b strings.Builder
	b.WriteString("apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: api\n  labels:\n")
	dupLine := 0
	for i := range keys {
		k := i
		if i == keys*3/4 {
			k, dupLine = keys/2, 6+i // a key of the middle, again
		}
		fmt.Fprintf(&b, "    label-%06d: v\n", k)
	}
	b.WriteString("spec:\n  issuer: fleet\n  commonName: api\n")
	var dec Decoded
	within(t, 15*time.Second, func() { dec = Decode("labels.yaml", []byte(b.String())) })
	want := fmt.Sprintf(`labels.yaml:%d:5: Certificate "api": metadata.labels["label-%06d"]: "label-%06d" appears twice; keep one of them (the first is on line %d)`,
		dupLine, keys/2, keys/2, 6+keys/2)
	if got := errorLines(dec.Errors); len(got) != 1 || got[0] != want {
		t.Errorf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

// aliasedSet is a CertificateSet whose template repeats an anchored map of
// labels in every target: small to write, but items × targets × labels
// values to expand.
func aliasedSet(items int) string {
	var b strings.Builder
	b.WriteString("apiVersion: certfleet.dev/v1alpha1\nkind: CertificateSet\nmetadata: {name: fleet}\nspec:\n  nameTemplate: svc-${i}\n  template:\n    issuer: fleet\n    commonName: svc-${i}\n    targets:\n")
	b.WriteString("      - kubernetes: {cluster: a, namespace: b, secretName: \"s-${i}\", secretTemplate: {labels: &l {")
	for i := range 1000 {
		fmt.Fprintf(&b, "k%d: v, ", i)
	}
	b.WriteString("k: v}, annotations: *l}}\n")
	for range 9 {
		b.WriteString("      - kubernetes: {cluster: a, namespace: b, secretName: \"s-${i}\", secretTemplate: {labels: *l, annotations: *l}}\n")
	}
	b.WriteString("  items:\n")
	for i := range items {
		fmt.Fprintf(&b, "    - {i: \"%d\"}\n", i)
	}
	return b.String()
}

func TestCertificateSetExpansionIsBounded(t *testing.T) {
	src := aliasedSet(1000)
	itemsLine := strings.Count(src[:strings.Index(src, "  items:")], "\n") + 1
	var all Errors
	within(t, 10*time.Second, func() {
		dec := Decode("set.yaml", []byte(src))
		all = dec.Errors
		for _, d := range dec.Documents {
			_, errs := Declarations(d)
			all = append(all, errs...)
		}
	})
	if len(all) != 1 {
		t.Fatalf("errors %v", all)
	}
	e := all[0]
	if e.File != "set.yaml" || e.Line != itemsLine || e.Field != "spec.items" ||
		!strings.Contains(e.Problem, "1000 items × 40198 values each (the template and the labels) make 40198000 values, more than the 512045 left of the file's limit (534160 for 27135 bytes)") ||
		!strings.Contains(e.Hint, "split the set into sets of at most") || strings.Contains(e.Error(), "alias") {
		t.Errorf("error %v", e)
	}

	// A few items of the same template are within the budget.
	dec := Decode("set.yaml", []byte(aliasedSet(3)))
	if len(dec.Errors) != 0 || len(dec.Documents) != 1 {
		t.Fatalf("a small set: %v", dec.Errors)
	}
	if decl, errs := Declarations(dec.Documents[0]); len(errs) != 0 || len(decl) != 3 {
		t.Errorf("a small set: %d certificates, errors %v", len(decl), errs)
	}
}

func TestDecodeBoundsMerges(t *testing.T) {
	// Each level merges the one below ten times: 10^9 merges of one key.
	// The anchors are defined under an unknown field, which is not decoded,
	// so only the merge itself is.
	var b strings.Builder
	b.WriteString("apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nanchors:\n  m0: &m0 {a: b}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "  m%d: &m%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("metadata:\n  name: merges\n  labels: {<<: *m9}\nspec: {issuer: fleet, commonName: x}\n")
	var dec Decoded
	within(t, 10*time.Second, func() { dec = Decode("merges.yaml", []byte(b.String())) })
	var budget *Error
	for _, e := range dec.Errors {
		if strings.Contains(e.Problem, "through its aliases") {
			budget = e
		}
	}
	// The error is on the field being decoded, at the anchor whose merges
	// repeat it (m1, line 5), not at "aliases" in general.
	if len(dec.Documents) != 0 || len(dec.Errors) != 2 || budget == nil || budget.Field != "metadata.labels" || budget.Line != 5 ||
		!strings.Contains(budget.Problem, "more than 112224 values, the limit for a file of 764 bytes") {
		t.Errorf("errors %v", dec.Errors)
	}
}

func TestDecodeLargeFileMemory(t *testing.T) {
	const n = 20_000
	data := genSmallCertificates(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	dec := Decode("inventory.yaml", data)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(dec.Errors) > 0 || len(dec.Documents) != n {
		t.Fatalf("%d documents, errors: %v", len(dec.Documents), dec.Errors)
	}
	allocated := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(data))
	retained := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(len(data))
	t.Logf("%d bytes: allocated %.1f and retained %.1f bytes per input byte", len(data), allocated, retained)
	runtime.KeepAlive(dec)
	// The decoded objects are kept; the YAML trees and the parser's buffers are not.
	if retained > 8 {
		t.Errorf("the decoded file holds %.1f bytes per input byte, want at most 8", retained)
	}
	// Most of what is allocated is yaml.v3's node trees (~17 bytes per byte
	// of YAML), garbage once a document is decoded; a parser per document
	// added as much again (55 bytes per byte in all).
	if allocated > 40 {
		t.Errorf("decoding allocated %.1f bytes per input byte, want at most 40", allocated)
	}
}

func TestDocumentPositionsAfterDecode(t *testing.T) {
	// Decoded documents do not keep their YAML trees; a position parses the
	// document again, and a CertificateSet's is kept for its items.
	src := posDoc + "---\n" + aliasedSet(3)
	dec := Decode("f.yaml", []byte(src))
	if len(dec.Errors) > 0 || len(dec.Documents) != 2 {
		t.Fatalf("decoding: %v", dec.Errors)
	}
	cert, set := dec.Documents[0], dec.Documents[1]
	if cert.node != nil || set.node != nil {
		t.Errorf("a decoded document keeps its tree")
	}
	if line, col := cert.Pos("spec.dnsNames[2]"); line != 13 || col != 9 {
		t.Errorf("spec.dnsNames[2] at %d:%d, want 13:9", line, col)
	}
	decl, errs := Declarations(set)
	if len(errs) > 0 || len(decl) != 3 {
		t.Fatalf("%d certificates, errors %v", len(decl), errs)
	}
	setLine := strings.Count(posDoc, "\n") + 2
	if line, col := decl[2].Origin.Pos("spec.targets[1].kubernetes.secretName"); line != setLine+10 || col != 60 {
		t.Errorf("an item's secretName at %d:%d, want %d:60", line, col, setLine+10)
	}
	if allocs := testing.AllocsPerRun(100, func() { decl[1].Origin.Pos("spec.commonName") }); allocs > 20 {
		t.Errorf("a position in a set allocates %.0f times: its tree is parsed again each time", allocs)
	}
}

func TestDecodeStopsAfterTheFileBudget(t *testing.T) {
	// The budget is the file's: once a document has spent it, the documents
	// after it are not decoded (each would be another chance to expand).
	src := aliasedSet(1000) + "---\n" + header + "  issuer: fleet\n"
	secondLine := strings.Count(aliasedSet(1000), "\n") + 1
	dec := Decode("set.yaml", []byte(src))
	got := errorLines(dec.Errors)
	if len(dec.Documents) != 0 || len(got) != 2 || !strings.Contains(got[0], "spec.items: 1000 items") ||
		got[1] != fmt.Sprintf("set.yaml:%d:1: not decoded: a document above goes over the file's limit of 535776 values; fix the document the limit is reported on first", secondLine) {
		t.Errorf("errors\n%s", strings.Join(got, "\n"))
	}
}

func TestCertificateSetFromAMergeIsCounted(t *testing.T) {
	// A template merged in has no template key to count the tree from.
	var b strings.Builder
	b.WriteString("apiVersion: certfleet.dev/v1alpha1\nkind: CertificateSet\nmetadata: {name: fleet}\nspec:\n  nameTemplate: svc-${i}\n")
	b.WriteString("  <<: {template: {issuer: fleet, commonName: \"svc-${i}\", targets: [&t {kubernetes: {cluster: a, namespace: b, secretName: \"s-${i}\", secretTemplate: {labels: &l {")
	for i := range 1000 {
		fmt.Fprintf(&b, "k%d: v, ", i)
	}
	b.WriteString("k: v}, annotations: *l}}}")
	b.WriteString(strings.Repeat(", *t", 9) + "]}}\n  items:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "    - {i: \"%d\"}\n", i)
	}
	var dec Decoded
	within(t, 10*time.Second, func() { dec = Decode("set.yaml", []byte(b.String())) })
	if got := errorLines(dec.Errors); len(got) != 1 || !strings.Contains(got[0], "set.yaml:7:3: CertificateSet \"fleet\": spec.items: 1000 items × 40198 values each") {
		t.Errorf("errors\n%s", strings.Join(got, "\n"))
	}
}
