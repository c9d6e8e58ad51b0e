package schemas

import (
	"reflect"
	"strings"
	"testing"
)

// declare decodes one document and returns its declarations and every error.
func declare(t *testing.T, src string) ([]Declared, []string) {
	t.Helper()
	dec := Decode("teams/payments/set.yaml", []byte(src))
	if len(dec.Errors) > 0 || len(dec.Documents) != 1 {
		t.Fatalf("decoding: %d documents, errors:\n%v", len(dec.Documents), dec.Errors)
	}
	decl, errs := Declarations(dec.Documents[0])
	return decl, errorLines(errs)
}

const setHeader = `apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata:
  name: services
  namespace: payments
  labels: {team: payments}
spec:
  nameTemplate: ${service}-tls
`

func TestCertificateSetExpands(t *testing.T) {
	src := setHeader + `  template:
    issuer: fleet
    dnsNames:
      - ${service}.payments.svc
      - ${service}.payments.svc.cluster.local
    uris: ["spiffe://fleet.test/ns/payments/sa/${service}"]
    privateKey:
      algorithm: RSA
      size: ${bits}
    renewBeforePercentage: ${pct:=25}
    commonName: "${port}"
    targets:
      - kubernetes:
          cluster: ${cluster}
          namespace: payments
          secretName: ${service}-tls
  items:
    - {service: api, bits: "2048", cluster: prod, port: "8443"}
    - {service: web, bits: "4096", cluster: staging, port: "443", pct: "10"}
`
	decl, errs := declare(t, src)
	if len(errs) > 0 {
		t.Fatalf("errors:\n%s", strings.Join(errs, "\n"))
	}
	if len(decl) != 2 {
		t.Fatalf("got %d certificates, want 2", len(decl))
	}
	api, web := decl[0].Certificate, decl[1].Certificate
	if api.Metadata.Name != "api-tls" || web.Metadata.Name != "web-tls" {
		t.Errorf("names %q %q, want api-tls web-tls", api.Metadata.Name, web.Metadata.Name)
	}
	wantAPI := CertificateSpec{
		Issuer:                "fleet",
		CommonName:            "8443",
		DNSNames:              []string{"api.payments.svc", "api.payments.svc.cluster.local"},
		URIs:                  []string{"spiffe://fleet.test/ns/payments/sa/api"},
		PrivateKey:            &PrivateKey{Algorithm: RSA, Size: 2048},
		RenewBeforePercentage: ptr(25),
		Targets:               []Target{{Kubernetes: &KubernetesTarget{Cluster: "prod", Namespace: "payments", SecretName: "api-tls"}}},
	}
	if !reflect.DeepEqual(api.Spec, wantAPI) {
		t.Errorf("api spec\n %+v\nwant\n %+v", api.Spec, wantAPI)
	}
	if web.Spec.PrivateKey.Size != 4096 || *web.Spec.RenewBeforePercentage != 10 || web.Spec.Targets[0].Kubernetes.Cluster != "staging" {
		t.Errorf("web spec %+v", web.Spec)
	}
	for i, d := range decl {
		c := d.Certificate
		if c.APIVersion != APIVersion || c.Kind != KindCertificate || c.Metadata.Namespace != "payments" || c.Metadata.Labels["team"] != "payments" {
			t.Errorf("certificate %d metadata %+v %+v", i, c.TypeMeta, c.Metadata)
		}
		if d.Origin.Item != i || d.Origin.Vars["service"] == "" || d.Origin.Doc.Kind != KindCertificateSet {
			t.Errorf("certificate %d origin %+v", i, d.Origin)
		}
	}
	// Each certificate has its own labels: changing one leaves the others.
	api.Metadata.Labels["team"] = "changed"
	if web.Metadata.Labels["team"] != "payments" {
		t.Errorf("the certificates of a set share one labels map")
	}
	// The origin places a certificate's fields in the set's template.
	if line, col := decl[1].Origin.Pos("spec.privateKey.size"); line != 17 || col != 13 {
		t.Errorf("Origin.Pos(spec.privateKey.size) = %d:%d, want 17:13", line, col)
	}
	if line, _ := decl[1].Origin.Pos("metadata.name"); line != 8 {
		t.Errorf("Origin.Pos(metadata.name) on line %d, want the nameTemplate's 8", line)
	}
}

func TestCertificateSetErrors(t *testing.T) {
	template := func(lines ...string) string {
		return setHeader + "  template:\n" + strings.Join(lines, "\n") + "\n"
	}
	const file = "teams/payments/set.yaml"
	tests := []struct {
		name      string
		yaml      string
		wantNames []string
		want      []string
	}{
		{
			name: "an undefined variable is an error naming the variable, the template line and the item",
			yaml: template(
				"    issuer: fleet",
				"    dnsNames: [\"${service}.payments.svc\"]",
				"    privateKey:",
				"      algorithm: RSA",
				"      size: ${bits}",
				"  items:",
				"    - {service: api, bits: \"2048\"}",
				"    - {service: web}",
			),
			wantNames: []string{"api-tls"},
			want:      []string{file + `:14:13: CertificateSet "services": spec.template.privateKey.size: item 1 (service=web): variable ${bits} is not defined; define the variable in every item, or give a default with ${var:=default}`},
		},
		{
			name: "an undefined variable in the name template is an error at the name template",
			yaml: template(
				"    issuer: fleet",
				"    dnsNames: [api.payments.svc]",
				"  items:",
				"    - {service: api}",
				"    - {svc: web}",
			),
			wantNames: []string{"api-tls"},
			want:      []string{file + `:8:17: CertificateSet "services": spec.nameTemplate: item 1 (svc=web): variable ${service} is not defined; define every variable of nameTemplate in each item`},
		},
		{
			name: "two items making the same name is an error at the second item",
			yaml: template(
				"    issuer: fleet",
				"    dnsNames: [\"${service}.payments.svc\"]",
				"  items:",
				"    - {service: api}",
				"    - {service: web}",
				"    - {service: api}",
			),
			wantNames: []string{"api-tls", "web-tls"},
			want:      []string{file + `:15:7: CertificateSet "services": spec.items[2]: item 2 (service=api): makes a certificate named "api-tls", like item 0; give each item variables that make a distinct name`},
		},
		{
			name: "an invalid value from one item does not drop the valid items",
			yaml: template(
				"    issuer: fleet",
				"    dnsNames:",
				"      - ${service}.payments.svc",
				"  items:",
				"    - {service: api}",
				"    - {service: Bad_Name}",
				"    - {service: web}",
			),
			wantNames: []string{"api-tls", "web-tls"},
			want: []string{
				file + `:8:17: CertificateSet "services": spec.nameTemplate: item 1 (service=Bad_Name): name "Bad_Name-tls" has upper-case letters in label "Bad_Name-tls"; use lower-case letters, digits, "-" and ".", as Kubernetes names`,
				file + `:12:9: CertificateSet "services": spec.template.dnsNames[0]: item 1 (service=Bad_Name): "Bad_Name.payments.svc" is not a valid DNS name: it has upper-case letters in label "Bad_Name"; ` + dnsHint,
			},
		},
		{
			name: "a mistake in the template is reported once, not once per item",
			yaml: template(
				"    issuer: fleet",
				"    dnsName: [\"${service}.payments.svc\"]",
				"  items:",
				"    - {service: api}",
				"    - {service: web}",
				"    - {service: db}",
			),
			want: []string{
				file + `:11:5: CertificateSet "services": spec.template.dnsName: unknown field "dnsName"; did you mean dnsNames?`,
			},
		},
		{
			name: "a placeholder that makes a string where a number belongs is an error of the items that do",
			yaml: template(
				"    issuer: fleet",
				"    dnsNames: [\"${service}.payments.svc\"]",
				"    privateKey:",
				"      size: ${bits}",
				"  items:",
				"    - {service: api, bits: \"256\"}",
				"    - {service: web, bits: large}",
				"    - {service: db, bits: huge}",
			),
			wantNames: []string{"api-tls"},
			want: []string{
				file + `:13:13: CertificateSet "services": spec.template.privateKey.size: item 1 (bits=large, service=web): expected a number, got the string "large"; write a whole number without quotes`,
				file + `:13:13: CertificateSet "services": spec.template.privateKey.size: item 2 (bits=huge, service=db): expected a number, got the string "huge"; write a whole number without quotes`,
			},
		},
		{
			name: "an error shared by some items names them",
			yaml: template(
				"    issuer: fleet",
				"    dnsNames: [\"${service}.payments.svc\"]",
				"    duration: ${duration}",
				"  items:",
				"    - {service: api, duration: 30d}",
				"    - {service: web, duration: 1m}",
				"    - {service: db, duration: 1m}",
			),
			wantNames: []string{"api-tls"},
			want: []string{
				file + `:12:15: CertificateSet "services": spec.template.duration: items 1, 2: duration 1m is shorter than 2m; ask for at least 2m`,
			},
		},
		{
			name: "an empty set names what is missing",
			yaml: "apiVersion: certfleet.dev/v1alpha1\nkind: CertificateSet\nmetadata:\n  name: services\nspec:\n  nameTemplate: x\n  template: {issuer: fleet}\n  items: []\n",
			want: []string{file + `:8:3: CertificateSet "services": spec.items: items is empty: the set makes no certificates; list one map of variables per certificate`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decl, errs := declare(t, tt.yaml)
			if !reflect.DeepEqual(errs, tt.want) {
				t.Errorf("errors:\n got %s\nwant %s", strings.Join(errs, "\n     "), strings.Join(tt.want, "\n     "))
			}
			var names []string
			for _, d := range decl {
				names = append(names, d.Certificate.Metadata.Name)
			}
			if !reflect.DeepEqual(names, tt.wantNames) {
				t.Errorf("certificates %q, want %q", names, tt.wantNames)
			}
		})
	}
}

func TestDeclarationsOfACertificate(t *testing.T) {
	valid := "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: api\nspec:\n  issuer: fleet\n  dnsNames:\n    - api.payments.svc\n    - api.payments.svc.cluster.local\n    - API_payments\n"
	decl, errs := declare(t, valid)
	want := []string{`teams/payments/set.yaml:10:7: Certificate "api": spec.dnsNames[2]: "API_payments" is not a valid DNS name: it has upper-case letters in label "API_payments"; ` + dnsHint}
	if len(decl) != 0 || !reflect.DeepEqual(errs, want) {
		t.Errorf("got %d declarations, errors:\n %q\nwant\n %q", len(decl), errs, want)
	}
	decl, errs = declare(t, strings.Replace(valid, "API_payments", "api.example.com", 1))
	if len(errs) != 0 || len(decl) != 1 || decl[0].Origin.Item != -1 || decl[0].Certificate.Metadata.Name != "api" {
		t.Errorf("a valid certificate: %d declarations %+v, errors %q", len(decl), decl, errs)
	}
	if line, col := decl[0].Origin.Pos("spec.dnsNames[2]"); line != 10 || col != 7 {
		t.Errorf("Origin.Pos = %d:%d, want 10:7", line, col)
	}
	// A policy violation is placed through Origin.Locate.
	located := decl[0].Origin.Locate(Errors{{Field: "spec.dnsNames[1]", Problem: "not allowed"}})
	if got := located.Error(); got != `teams/payments/set.yaml:9:7: Certificate "api": spec.dnsNames[1]: not allowed` {
		t.Errorf("Origin.Locate: %s", got)
	}
}

func TestDeclarationsOfOtherKinds(t *testing.T) {
	decl, errs := declare(t, "apiVersion: certfleet.dev/v1alpha1\nkind: Issuer\nmetadata: {name: fleet}\nspec: {authority: root}\n")
	if decl != nil || errs == nil || len(errs) != 0 {
		t.Errorf("an issuer declares no certificates: %v %v", decl, errs)
	}
}

func TestOriginLocateOfASetItem(t *testing.T) {
	decl, errs := declare(t, setHeader+"  template:\n    issuer: fleet\n    dnsNames: [\"${service}.payments.svc\"]\n  items:\n    - {service: api, team: payments}\n")
	if len(errs) > 0 || len(decl) != 1 {
		t.Fatalf("errors %q", errs)
	}
	got := decl[0].Origin.Locate(Errors{{Field: "spec.dnsNames[0]", Problem: "matches no policy"}, {Field: "metadata.name", Problem: "taken"}}).Error()
	want := `teams/payments/set.yaml:11:16: CertificateSet "services": spec.template.dnsNames[0]: item 0 (service=api, team=payments): matches no policy` + "\n" +
		`teams/payments/set.yaml:8:17: CertificateSet "services": spec.nameTemplate: item 0 (service=api, team=payments): taken`
	if got != want {
		t.Errorf("Locate:\n%s\nwant\n%s", got, want)
	}
}

func TestCertificateSetBuiltInGo(t *testing.T) {
	// A set that was not decoded has no YAML tree; it still expands.
	set := &CertificateSet{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindCertificateSet},
		Metadata: ObjectMeta{Name: "services"},
		Spec: CertificateSetSpec{
			NameTemplate: "${service}-tls",
			Template: map[string]any{
				"issuer":     "fleet",
				"dnsNames":   []any{"${service}.payments.svc"},
				"privateKey": map[string]any{"algorithm": "RSA", "size": "${bits}"},
			},
			Items: []map[string]string{{"service": "api", "bits": "3072"}, {"service": "web"}},
		},
	}
	d := &Document{File: "generated", Kind: KindCertificateSet, Name: "services", Object: set}
	decl, errs := Declarations(d)
	if len(decl) != 1 || decl[0].Certificate.Spec.DNSNames[0] != "api.payments.svc" {
		t.Errorf("declarations %+v", decl)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Problem, "variable ${bits} is not defined") || errs[0].File != "generated" {
		t.Errorf("errors %v", errs)
	}
}
