package schemas

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// header is the start of a Certificate named api; the lines of a test's
// spec follow it, from line 6 on.
const header = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
spec:
`

// errorLines decodes data and returns each error as Error() writes it.
func errorLines(es Errors) []string {
	es.Sort()
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func TestDecodeReportsStrictErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "an unknown field suggests the nearest known one",
			yaml: header + "  issuer: fleet\n  dnsName:\n    - api.example.com\n",
			want: []string{`f.yaml:7:3: Certificate "api": spec.dnsName: unknown field "dnsName"; did you mean dnsNames?`},
		},
		{
			name: "an unknown field differing only in case suggests the right spelling",
			yaml: header + "  issuer: fleet\n  DNSNames: [api.example.com]\n",
			want: []string{`f.yaml:7:3: Certificate "api": spec.DNSNames: unknown field "DNSNames"; did you mean dnsNames?`},
		},
		{
			name: "an unknown field near no known one lists the fields of its place",
			yaml: header + "  issuer: fleet\n  frobnicate: true\n",
			want: []string{`f.yaml:7:3: Certificate "api": spec.frobnicate: unknown field "frobnicate"; known fields here: issuer, commonName, dnsNames, ipAddresses, uris, emailAddresses, subject, usages, duration, renewBefore, renewBeforePercentage, signatureAlgorithm, privateKey, targets, suspend`},
		},
		{
			name: "an unknown field deep in a target names its full path",
			yaml: header + "  issuer: fleet\n  targets:\n    - kubernetes:\n        cluster: prod\n        namespace: payments\n        secretNmae: api-tls\n",
			want: []string{`f.yaml:11:9: Certificate "api": spec.targets[0].kubernetes.secretNmae: unknown field "secretNmae"; did you mean secretName?`},
		},
		{
			name: "a string where a list is expected is an error at the value",
			yaml: header + "  issuer: fleet\n  dnsNames: api.example.com\n",
			want: []string{`f.yaml:7:13: Certificate "api": spec.dnsNames: expected a list, got the string "api.example.com"; write it as a list, one item per line starting with "- "`},
		},
		{
			name: "a number where a string is expected says to quote it",
			yaml: header + "  issuer: fleet\n  commonName: 42\n",
			want: []string{`f.yaml:7:15: Certificate "api": spec.commonName: expected a string, got the number 42; quote it: "42"`},
		},
		{
			name: "a boolean where a string is expected says to quote it",
			yaml: header + "  issuer: true\n  commonName: api\n",
			want: []string{`f.yaml:6:11: Certificate "api": spec.issuer: expected a string, got the boolean true; quote it: "true"`},
		},
		{
			name: "a date where a string is expected says to quote it",
			yaml: header + "  issuer: fleet\n  commonName: 2026-01-02\n",
			want: []string{`f.yaml:7:15: Certificate "api": spec.commonName: expected a string, got the date 2026-01-02; quote it: "2026-01-02"`},
		},
		{
			name: "a list where a string is expected points at the key",
			yaml: header + "  issuer:\n    - fleet\n  commonName: api\n",
			want: []string{`f.yaml:6:3: Certificate "api": spec.issuer: expected a string, got a list; write a single value`},
		},
		{
			name: "a mapping where a list is expected points at the key",
			yaml: header + "  issuer: fleet\n  dnsNames:\n    api: api.example.com\n",
			want: []string{`f.yaml:7:3: Certificate "api": spec.dnsNames: expected a list, got a mapping; write it as a list, one item per line starting with "- "`},
		},
		{
			name: "a quoted number where a number is expected says to drop the quotes",
			yaml: header + "  issuer: fleet\n  commonName: api\n  privateKey:\n    size: \"256\"\n",
			want: []string{`f.yaml:9:11: Certificate "api": spec.privateKey.size: expected a number, got the string "256"; write a whole number without quotes`},
		},
		{
			name: "a number beyond an int is out of range, not a JSON error",
			yaml: header + "  issuer: fleet\n  commonName: api\n  privateKey:\n    size: 18446744073709551616\n",
			want: []string{`f.yaml:9:11: Certificate "api": spec.privateKey.size: expected a number, got the number 18446744073709551616; write a whole number without quotes`},
		},
		{
			name: "a number just beyond int64 is out of range",
			yaml: header + "  issuer: fleet\n  commonName: api\n  privateKey:\n    size: 9223372036854775808\n",
			want: []string{`f.yaml:9:11: Certificate "api": spec.privateKey.size: the number 9223372036854775808 is out of range; write a smaller number`},
		},
		{
			name: "yes is not a boolean",
			yaml: header + "  issuer: fleet\n  commonName: api\n  suspend: yes\n",
			want: []string{`f.yaml:8:12: Certificate "api": spec.suspend: expected true or false, got the string "yes"; write true or false without quotes`},
		},
		{
			name: "a duplicate key is reported at its second appearance",
			yaml: header + "  issuer: fleet\n  commonName: api\n  issuer: other\n",
			want: []string{`f.yaml:8:3: Certificate "api": spec.issuer: "issuer" appears twice; keep one of them (the first is on line 6)`},
		},
		{
			name: "a duplicate label is reported with its quoted key",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: api\n  labels:\n    app.kubernetes.io/name: api\n    app.kubernetes.io/name: web\nspec:\n  issuer: fleet\n  commonName: api\n",
			want: []string{`f.yaml:7:5: Certificate "api": metadata.labels["app.kubernetes.io/name"]: "app.kubernetes.io/name" appears twice; keep one of them (the first is on line 6)`},
		},
		{
			name: "a label value that is a number says to quote it",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: api\n  labels:\n    app.kubernetes.io/version: 1.5\nspec:\n  issuer: fleet\n  commonName: api\n",
			want: []string{`f.yaml:6:32: Certificate "api": metadata.labels["app.kubernetes.io/version"]: expected a string, got the number 1.5; quote it: "1.5"`},
		},
		{
			name: "a scalar where the spec mapping is expected",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: api\nspec: api.example.com\n",
			want: []string{`f.yaml:5:7: Certificate "api": spec: expected a mapping, got the string "api.example.com"; write it as a mapping of fields`},
		},
		{
			name: "every error of a document is reported, not only the first",
			yaml: header + "  issuer: fleet\n  dnsName: [a.example.com]\n  usages: server auth\n  duration: 90\n",
			want: []string{
				`f.yaml:7:3: Certificate "api": spec.dnsName: unknown field "dnsName"; did you mean dnsNames?`,
				`f.yaml:8:11: Certificate "api": spec.usages: expected a list, got the string "server auth"; write it as a list, one item per line starting with "- "`,
				`f.yaml:9:13: Certificate "api": spec.duration: expected a string, got the number 90; quote it: "90"`,
			},
		},
		{
			name: "a duplicate key inside a free-form CertificateSet template is found too",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: CertificateSet\nmetadata:\n  name: s\nspec:\n  nameTemplate: x\n  template:\n    subject:\n      organizations: [a]\n      organizations: [b]\n  items: [{a: b}]\n",
			want: []string{`f.yaml:10:7: CertificateSet "s": spec.template.subject.organizations: "organizations" appears twice; keep one of them (the first is on line 9)`},
		},
		{
			name: "an unknown kind suggests the nearest kind",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Certficate\nmetadata:\n  name: api\n",
			want: []string{`f.yaml:2:7: Certficate "api": kind: unknown kind "Certficate"; did you mean Certificate?`},
		},
		{
			name: "an unknown kind near no kind lists the kinds",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Secret\nmetadata:\n  name: api\n",
			want: []string{`f.yaml:2:7: Secret "api": kind: unknown kind "Secret"; use one of Authority, Issuer, Policy, Cluster, Rollout, Certificate, CertificateSet, TrustBundle`},
		},
		{
			name: "a missing kind under certfleet's apiVersion is an error",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nmetadata:\n  name: api\n",
			want: []string{`f.yaml:1:1: kind is missing; add ` + "`kind:`" + ` with one of Authority, Issuer, Policy, Cluster, Rollout, Certificate, CertificateSet, TrustBundle`},
		},
		{
			name: "a wrong version of certfleet's API is an error",
			yaml: "apiVersion: certfleet.dev/v1alpha2\nkind: Certificate\nmetadata:\n  name: api\nspec:\n  issuer: fleet\n",
			want: []string{`f.yaml:1:13: Certificate "api": apiVersion: unknown apiVersion "certfleet.dev/v1alpha2"; use certfleet.dev/v1alpha1`},
		},
		{
			name: "a certfleet kind without apiVersion is an error, not another tool's manifest",
			yaml: "kind: Certificate\nmetadata:\n  name: api\nspec:\n  issuer: fleet\n",
			want: []string{`f.yaml:1:1: Certificate "api": apiVersion is missing; start the document with ` + "`apiVersion: certfleet.dev/v1alpha1`"},
		},
		{
			name: "a document that is a list is an error",
			yaml: "- apiVersion: certfleet.dev/v1alpha1\n  kind: Certificate\n",
			want: []string{`f.yaml:1:1: a document must be a mapping with apiVersion, kind, metadata and spec, got a list; start the document with ` + "`apiVersion: certfleet.dev/v1alpha1`"},
		},
		{
			name: "a time in an authority's status must be RFC 3339",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: Authority\nmetadata:\n  name: root\nspec:\n  type: root\nstatus:\n  notAfter: next year\n",
			want: []string{`f.yaml:8:13: Authority "root": status.notAfter: expected a time, got the string "next year"; write an RFC 3339 time such as 2026-01-02T15:04:05Z`},
		},
		{
			name: "a merge of a scalar is an error",
			yaml: header + "  issuer: fleet\n  <<: api\n",
			want: []string{`f.yaml:7:7: Certificate "api": spec["<<"]: a merge needs a mapping or a list of mappings, got the string "api"; merge an anchored mapping: <<: *name`},
		},
		{
			name: "a complex key is an error",
			yaml: header + "  issuer: fleet\n  ? [a, b]\n  : c\n",
			want: []string{`f.yaml:7:5: Certificate "api": spec[""]: a key must be a single value, got a list; write the key as a plain name`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := Decode("f.yaml", []byte(tt.yaml))
			got := errorLines(dec.Errors)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			if len(dec.Documents) != 0 {
				t.Errorf("a document with errors was returned: %+v", dec.Documents[0])
			}
			for _, e := range dec.Errors {
				if e.File != "f.yaml" || e.Line <= 0 || e.Column <= 0 {
					t.Errorf("error without a position: %#v", e)
				}
			}
		})
	}
}

func TestDecodeYAMLSyntaxErrors(t *testing.T) {
	valid := func(name string) string {
		return "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: " + name + "\nspec:\n  issuer: fleet\n  commonName: " + name + "\n"
	}
	tests := []struct {
		name      string
		yaml      string
		wantErr   string
		wantNames []string
	}{
		{
			name: "a syntax error in the second document does not hide the documents after it",
			// lines 1-7 a, 8 ---, 9-14 broken (line 14 is the bad one), 15 ---, 16-22 c
			yaml:      valid("a") + "---\napiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: b\nspec:\n  issuer: fleet\n   commonName: b\n---\n" + valid("c"),
			wantErr:   "f.yaml:15:1: invalid YAML: mapping values are not allowed in this context; fix the syntax; the other documents of the file are still checked",
			wantNames: []string{"a", "c"},
		},
		{
			name:      "a tab in the indentation of the first document is placed on its line",
			yaml:      "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n\tname: a\n---\n" + valid("b"),
			wantErr:   "f.yaml:4:1: invalid YAML: found character that cannot start any token; indent with spaces; YAML does not allow tabs in indentation; fix the syntax; the other documents of the file are still checked",
			wantNames: []string{"b"},
		},
		{
			name:      "an unclosed flow list in the last document is placed on its line",
			yaml:      valid("a") + "---\n" + valid("b") + "  dnsNames: [b.example.com\n",
			wantErr:   "f.yaml:16:1: invalid YAML: did not find expected ',' or ']'; fix the syntax; the other documents of the file are still checked",
			wantNames: []string{"a"},
		},
		{
			name:      "a misindented list item is placed on its own line, not where its mapping starts",
			yaml:      valid("a") + "---\n" + valid("b") + "  dnsNames:\n    - b.example.com\n   - c.example.com\n---\n" + valid("c"),
			wantErr:   "f.yaml:18:1: invalid YAML: did not find expected key; fix the syntax; the other documents of the file are still checked",
			wantNames: []string{"a", "c"},
		},
		{
			name:      "an unquoted placeholder in a flow list gets a hint",
			yaml:      valid("a") + "  dnsNames: [${service}.payments.svc]\n",
			wantErr:   `f.yaml:8:1: invalid YAML: did not find expected ',' or ']'; quote values with ${…} placeholders inside [ ] or { }, e.g. ["${service}.payments.svc"]; fix the syntax; the other documents of the file are still checked`,
			wantNames: nil,
		},
		{
			name:      "an unknown anchor is placed on the line of its alias",
			yaml:      valid("a") + "---\n" + valid("b") + "  dnsNames: *names\n",
			wantErr:   "f.yaml:16:1: invalid YAML: unknown anchor 'names' referenced; fix the syntax; the other documents of the file are still checked",
			wantNames: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := Decode("f.yaml", []byte(tt.yaml))
			got := errorLines(dec.Errors)
			if len(got) != 1 || got[0] != tt.wantErr {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wantErr)
			}
			var names []string
			for _, d := range dec.Documents {
				names = append(names, d.Name)
			}
			if !reflect.DeepEqual(names, tt.wantNames) {
				t.Errorf("documents %q, want %q", names, tt.wantNames)
			}
		})
	}
}

func TestDecodeSortsOutDocuments(t *testing.T) {
	src := `# certificates of the payments team
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
---
# nothing here
---

---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
  namespace: payments
spec:
  issuer: fleet
  commonName: api
...
---
apiVersion: v1
kind: ConfigMap
data:
  a: b
---
replicaCount: 3
---
apiVersion: certfleet.dev/v1alpha1
kind: TrustBundle
metadata: {name: fleet-roots}
spec:
  authorities: [root]
  targets: [{directory: {path: /etc/ssl/fleet}}]
`
	dec := Decode("teams/payments/all.yaml", []byte(src))
	if len(dec.Errors) > 0 {
		t.Fatalf("unexpected errors:\n%v", dec.Errors)
	}
	type doc struct {
		Index, Line           int
		Kind, Name, Namespace string
	}
	var got []doc
	for _, d := range dec.Documents {
		got = append(got, doc{d.Index, d.Line, d.Kind, d.Name, d.Namespace})
		if d.File != "teams/payments/all.yaml" {
			t.Errorf("document file %q", d.File)
		}
	}
	want := []doc{
		// Index counts the empty documents, but not the gap between "..." and "---".
		{Index: 3, Line: 12, Kind: KindCertificate, Name: "api", Namespace: "payments"},
		{Index: 6, Line: 29, Kind: KindTrustBundle, Name: "fleet-roots"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("documents:\n got %+v\nwant %+v", got, want)
	}
	wantIgnored := []Ignored{
		{File: "teams/payments/all.yaml", Line: 3, APIVersion: "apps/v1", Kind: "Deployment"},
		{File: "teams/payments/all.yaml", Line: 22, APIVersion: "v1", Kind: "ConfigMap"},
		{File: "teams/payments/all.yaml", Line: 27},
	}
	if !reflect.DeepEqual(dec.Ignored, wantIgnored) {
		t.Errorf("ignored:\n got %+v\nwant %+v", dec.Ignored, wantIgnored)
	}
	if c, ok := dec.Documents[0].Object.(*Certificate); !ok || c.Spec.Issuer != "fleet" {
		t.Errorf("the certificate decoded as %#v", dec.Documents[0].Object)
	}
}

func TestDecodeIndexesDocuments(t *testing.T) {
	doc := "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: a}\nspec: {issuer: fleet, commonName: a}\n"
	tests := []struct {
		name       string
		yaml       string
		wantIndex  int
		wantLine   int
		wantErrors int
	}{
		{name: "a file without markers holds document 0", yaml: doc, wantIndex: 0, wantLine: 1},
		{name: "a leading marker does not make an empty document 0", yaml: "---\n" + doc, wantIndex: 0, wantLine: 2},
		{name: "comments before a leading marker do not make a document", yaml: "# owned by payments\n\n---\n" + doc, wantIndex: 0, wantLine: 4},
		{name: "an empty document between markers keeps its place", yaml: "---\n---\n" + doc, wantIndex: 1, wantLine: 3},
		{name: "content on the marker line is part of the document", yaml: "--- {apiVersion: certfleet.dev/v1alpha1, kind: Certificate, metadata: {name: a}, spec: {issuer: fleet, commonName: a}}\n", wantIndex: 0, wantLine: 1},
		{name: "a document end marker does not make an empty document", yaml: "a: b\n...\n---\n" + doc, wantIndex: 1, wantLine: 4},
		{name: "content after a leading marker on the same line is not dropped", yaml: "--- a: 1\nb: 2\n---\n" + doc, wantIndex: 1, wantLine: 4, wantErrors: 1},
		{name: "a broken document keeps its place", yaml: "a: [\n---\n" + doc, wantIndex: 1, wantLine: 3, wantErrors: 1},
		{name: "CRLF line endings are read like LF", yaml: strings.ReplaceAll("---\n"+doc, "\n", "\r\n"), wantIndex: 0, wantLine: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := Decode("f.yaml", []byte(tt.yaml))
			if len(dec.Errors) != tt.wantErrors {
				t.Fatalf("got %d errors, want %d:\n%v", len(dec.Errors), tt.wantErrors, dec.Errors)
			}
			if len(dec.Documents) != 1 {
				t.Fatalf("got %d documents, want 1", len(dec.Documents))
			}
			if d := dec.Documents[0]; d.Index != tt.wantIndex || d.Line != tt.wantLine {
				t.Errorf("document index %d line %d, want index %d line %d", d.Index, d.Line, tt.wantIndex, tt.wantLine)
			}
		})
	}
}

// posDoc is a document whose fields' positions TestDocumentPos checks.
const posDoc = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
  labels:
    app.kubernetes.io/name: api
    "quoted key": yes
spec:
  issuer: fleet
  dnsNames:
    - api.example.com
    - api.payments.svc
    -   api.payments.svc.cluster.local
  ipAddresses: [10.0.0.1, 10.0.0.2]
  targets:
    - kubernetes:
        cluster: prod
        namespace: payments
        secretName: api-tls
    - vaultKV: {mount: secret, path: tls/api}
  privateKey: &key
    algorithm: ECDSA
`

func TestDocumentPos(t *testing.T) {
	dec := Decode("f.yaml", []byte(posDoc))
	if len(dec.Errors) > 0 || len(dec.Documents) != 1 {
		t.Fatalf("decoding the fixture: %v", dec.Errors)
	}
	d := dec.Documents[0]
	tests := []struct {
		name      string
		path      string
		line, col int
	}{
		{"the empty path is the document", "", 1, 1},
		{"a top-level scalar is at its value", "kind", 2, 7},
		{"a mapping is at its key", "metadata", 3, 1},
		{"a nested scalar is at its value", "metadata.name", 4, 9},
		{"a label with dots and a slash is found through its quoted key", `metadata.labels["app.kubernetes.io/name"]`, 6, 29},
		{"a key with a space is found through its quoted key", `metadata.labels["quoted key"]`, 7, 19},
		{"a block list is at its key", "spec.dnsNames", 10, 3},
		{"a list item is at the item", "spec.dnsNames[2]", 13, 9},
		{"the first list item is at the item", "spec.dnsNames[0]", 11, 7},
		{"a flow list item is at the item", "spec.ipAddresses[1]", 14, 27},
		{"a field of a list item is at its value", "spec.targets[0].kubernetes.namespace", 18, 20},
		{"a list item that is a mapping is at its first key", "spec.targets[1]", 20, 7},
		{"a field of a flow mapping is at its value", "spec.targets[1].vaultKV.path", 20, 38},
		{"a missing field is at its parent's key", "spec.targets[0].kubernetes.secretTemplate", 16, 7},
		{"a missing required field of the spec is at spec", "spec.commonName", 8, 1},
		{"an index past the end is at the list's key", "spec.dnsNames[7]", 10, 3},
		{"an index into a mapping is at the mapping's key", "metadata[0]", 3, 1},
		{"a key into a scalar is at the scalar", "kind.name", 2, 7},
		{"an anchored mapping is at its key", "spec.privateKey", 21, 3},
		{"a field under an anchored mapping is at its value", "spec.privateKey.algorithm", 22, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, col := d.Pos(tt.path)
			if line != tt.line || col != tt.col {
				t.Errorf("Pos(%q) = %d:%d, want %d:%d", tt.path, line, col, tt.line, tt.col)
			}
		})
	}
}

func TestDocumentPosAfterMarkers(t *testing.T) {
	src := "# first\n---\n" + posDoc + "---\n" + posDoc
	dec := Decode("f.yaml", []byte(src))
	if len(dec.Errors) > 0 || len(dec.Documents) != 2 {
		t.Fatalf("decoding: %v", dec.Errors)
	}
	// posDoc has 22 lines; the second copy starts after the first marker (line 2), 22 lines and a marker.
	for i, d := range dec.Documents {
		offset := 2 + i*23
		if line, col := d.Pos("spec.dnsNames[2]"); line != 13+offset || col != 9 {
			t.Errorf("document %d: spec.dnsNames[2] at %d:%d, want %d:9", i, line, col, 13+offset)
		}
		if d.Line != 1+offset {
			t.Errorf("document %d starts on line %d, want %d", i, d.Line, 1+offset)
		}
	}
}

func TestDocumentPosWithoutTree(t *testing.T) {
	d := &Document{File: "f.yaml", Line: 12}
	if line, col := d.Pos("spec.dnsNames[0]"); line != 12 || col != 1 {
		t.Errorf("a document without a YAML tree places fields at %d:%d, want its line 12:1", line, col)
	}
}

func TestDecodeFillsObjects(t *testing.T) {
	src := `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
  namespace: payments
  labels: {team: payments}
spec:
  issuer: fleet
  commonName: api.payments.svc
  dnsNames: [api.payments.svc, "*.api.example.com"]
  ipAddresses: ["fd00::1"]
  uris: [spiffe://fleet.test/ns/payments/sa/api]
  emailAddresses: [pki@example.com]
  subject:
    organizations: [Example]
  usages: [server auth, client auth]
  duration: 30d
  renewBeforePercentage: 0x19
  signatureAlgorithm: ECDSAWithSHA256
  privateKey: {algorithm: ECDSA, size: 384, rotationPolicy: Never, encoding: PKCS8}
  suspend: true
  targets:
    - kubernetes:
        clusterSelector: {matchLabels: {env: prod}}
        namespace: payments
        secretName: api-tls
        secretTemplate:
          labels: {app: api}
          annotations: {note: "1"}
    - vaultKV: {mount: secret, path: tls/api}
    - directory: {path: /etc/tls/api}
`
	dec := Decode("f.yaml", []byte(src))
	if len(dec.Errors) > 0 {
		t.Fatalf("errors: %v", dec.Errors)
	}
	pct := 25
	want := &Certificate{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindCertificate},
		Metadata: ObjectMeta{Name: "api", Namespace: "payments", Labels: map[string]string{"team": "payments"}},
		Spec: CertificateSpec{
			Issuer:                "fleet",
			CommonName:            "api.payments.svc",
			DNSNames:              []string{"api.payments.svc", "*.api.example.com"},
			IPAddresses:           []string{"fd00::1"},
			URIs:                  []string{"spiffe://fleet.test/ns/payments/sa/api"},
			EmailAddresses:        []string{"pki@example.com"},
			Subject:               &Subject{Organizations: []string{"Example"}},
			Usages:                []KeyUsage{"server auth", "client auth"},
			Duration:              "30d",
			RenewBeforePercentage: &pct,
			SignatureAlgorithm:    "ECDSAWithSHA256",
			PrivateKey:            &PrivateKey{Algorithm: ECDSA, Size: 384, RotationPolicy: RotationNever, Encoding: "PKCS8"},
			Suspend:               true,
			Targets: []Target{
				{Kubernetes: &KubernetesTarget{
					ClusterSelector: &LabelSelector{MatchLabels: map[string]string{"env": "prod"}},
					Namespace:       "payments", SecretName: "api-tls",
					SecretTemplate: &SecretTemplate{Labels: map[string]string{"app": "api"}, Annotations: map[string]string{"note": "1"}},
				}},
				{VaultKV: &VaultKVTarget{Mount: "secret", Path: "tls/api"}},
				{Directory: &DirectoryTarget{Path: "/etc/tls/api"}},
			},
		},
	}
	if got := dec.Documents[0].Object; !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n %#v\nwant\n %#v", got, want)
	}
}

func TestDecodeAnchorsAndMerges(t *testing.T) {
	src := `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
spec:
  issuer: fleet
  dnsNames: &names [api.payments.svc, api.payments.svc.cluster.local]
  targets:
    - kubernetes: &prod
        cluster: prod
        namespace: payments
        secretName: api-tls
    - kubernetes:
        <<: *prod
        cluster: prod-eu
    - kubernetes:
        <<: [*prod, {namespace: other, secretName: other}]
        secretName: mine
---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: web
spec:
  issuer: fleet
  dnsNames: [web.payments.svc]
  targets:
    - kubernetes: &prod
        cluster: prod
        namespace: payments
        secretName: web-tls
    - kubernetes:
        <<: *prod
        secretNme: typo
`
	dec := Decode("f.yaml", []byte(src))
	want := []string{`f.yaml:34:9: Certificate "web": spec.targets[1].kubernetes.secretNme: unknown field "secretNme"; did you mean secretName?`}
	if got := errorLines(dec.Errors); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	if len(dec.Documents) != 1 {
		t.Fatalf("got %d documents, want 1", len(dec.Documents))
	}
	c := dec.Documents[0].Object.(*Certificate)
	var got [][3]string
	for _, tg := range c.Spec.Targets {
		k := tg.Kubernetes
		got = append(got, [3]string{k.Cluster, k.Namespace, k.SecretName})
	}
	wantTargets := [][3]string{
		{"prod", "payments", "api-tls"},
		{"prod-eu", "payments", "api-tls"},
		{"prod", "payments", "mine"},
	}
	if !reflect.DeepEqual(got, wantTargets) {
		t.Errorf("targets after merges %q, want %q", got, wantTargets)
	}
	if len(c.Spec.DNSNames) != 2 {
		t.Errorf("dnsNames %q", c.Spec.DNSNames)
	}
}

func TestFieldPathString(t *testing.T) {
	spec := &fieldPath{key: "spec", index: -1}
	targets := spec.child("targets")
	item := targets.item(2)
	k8s := item.child("kubernetes")
	labels := k8s.child("labels")
	label := labels.child("app.kubernetes.io/name")
	odd := (&fieldPath{key: "odd key", index: -1}).child("x")
	tests := []struct {
		name string
		p    *fieldPath
		want string
	}{
		{"no path is empty", nil, ""},
		{"a root key is bare", spec, "spec"},
		{"an index follows its list", &item, "spec.targets[2]"},
		{"keys are joined by dots", &k8s, "spec.targets[2].kubernetes"},
		{"a key that is not an identifier is quoted", &label, `spec.targets[2].kubernetes.labels["app.kubernetes.io/name"]`},
		{"a root key that is not an identifier is quoted", &odd, `["odd key"].x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.want != "" && tt.want[0] != '[' {
				// splitPath reads back what String writes.
				var b strings.Builder
				for i, s := range splitPath(tt.want) {
					if s.index >= 0 {
						b.WriteString(index("", s.index))
					} else if i == 0 {
						b.WriteString(s.key)
					} else {
						b.WriteString(key("", s.key))
					}
				}
				if b.String() != tt.want {
					t.Errorf("splitPath round trip gave %q", b.String())
				}
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		name, s string
		want    string
	}{
		{"a missing letter is a typo", "dnsName", "dnsNames"},
		{"a different case is the same word", "DNSNAMES", "dnsNames"},
		{"a swapped pair is a typo", "isuser", "issuer"},
		{"a word far from every candidate suggests nothing", "frobnicate", ""},
		{"an empty word suggests nothing", "", ""},
	}
	candidates := []string{"issuer", "dnsNames", "uris", "usages"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := suggest(tt.s, candidates); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

func TestDecodeBoundsAliasExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: laughs\n  labels: &l {")
	for i := range 1000 {
		fmt.Fprintf(&b, "k%d: v, ", i)
	}
	b.WriteString("k: v}\nspec:\n  issuer: fleet\n  commonName: x\n  targets:\n    - &t {kubernetes: {cluster: a, namespace: b, secretName: c, secretTemplate: {labels: *l, annotations: *l}}}\n")
	for range 1000 {
		b.WriteString("    - *t\n")
	}
	start := time.Now()
	dec := Decode("laughs.yaml", []byte(b.String()))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("decoding took %v", took)
	}
	if len(dec.Documents) != 0 || len(dec.Errors) != 1 || !strings.Contains(dec.Errors[0].Problem, "through its aliases, the document expands to more than 390384 values, the limit for a file of 18149 bytes") {
		t.Errorf("errors %v", dec.Errors)
	}

	// The same in a CertificateSet's free-form template.
	b.Reset()
	b.WriteString("apiVersion: certfleet.dev/v1alpha1\nkind: CertificateSet\nmetadata: {name: laughs}\nspec:\n  nameTemplate: x-${i}\n  items: [{i: a}, {i: b}]\n  template:\n    issuer: fleet\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "    a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	start = time.Now()
	dec = Decode("laughs.yaml", []byte(b.String()))
	for _, d := range dec.Documents {
		Declarations(d)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("decoding a set took %v", took)
	}
	if len(dec.Errors) == 0 {
		t.Errorf("a billion laughs in a template was accepted")
	}
}
