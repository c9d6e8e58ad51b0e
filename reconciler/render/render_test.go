package render_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// clusters is a catalog of three clusters: two in prod, one in staging.
const clusters = `apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: prod-eu
  labels: {env: prod, region: eu}
spec:
  credentials: {kubeconfigContext: prod-eu}
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: prod-us
  labels: {env: prod, region: us}
spec:
  credentials: {kubeconfigContext: prod-us}
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: staging
  labels: {env: staging, region: eu}
spec:
  credentials: {kubeconfigContext: staging}
`

func catalog(t testing.TB, yaml string) *schemas.Catalog {
	t.Helper()
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(yaml))
	if len(errs) > 0 {
		t.Fatalf("catalog: %v", errs)
	}
	return cat
}

// file is a path and its content.
type file struct{ path, data string }

func snapshot(files ...file) *source.Snapshot {
	s := &source.Snapshot{Revision: source.Revision{Ref: "main"}}
	for _, f := range files {
		s.Files = append(s.Files, source.File{Path: f.path, Data: []byte(f.data)})
	}
	return s
}

// cert writes a Certificate manifest; targets is the YAML list under
// spec.targets, indented by four spaces.
func cert(namespace, name, targets string) string {
	ns := ""
	if namespace != "" {
		ns = "\n  namespace: " + namespace
	}
	return `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: ` + name + ns + `
spec:
  issuer: fleet
  dnsNames: [` + name + `.svc.cluster.local]
  targets:
` + targets
}

// bundle writes a TrustBundle manifest publishing into one directory.
func bundle(name, path string) string {
	return `apiVersion: certfleet.dev/v1alpha1
kind: TrustBundle
metadata:
  name: ` + name + `
spec:
  authorities: [fleet]
  targets:
    - directory: {path: ` + path + `}
`
}

func TestRender(t *testing.T) {
	type want struct {
		// targets maps each desired certificate's ID to its target keys.
		targets map[string][]string
		// errors are substrings of each error, in order (errors are sorted by file and line).
		errors     [][]string
		unresolved int
		ignored    int
		bundles    []string
		documents  int
	}
	cases := []struct {
		name  string
		files []file
		cat   string // catalog YAML; "" for none
		// outputDir is the renderer's output root; "" for none.
		outputDir string
		want      want
	}{
		{
			name:  "a namespaced certificate's ID is its namespace and name",
			files: []file{{"teams/payments/api.yaml", cert("payments", "api", "    - directory: {path: /etc/tls/api}\n")}},
			want:  want{targets: map[string][]string{"payments/api": {"directory//etc/tls/api"}}, documents: 1},
		},
		{
			name:  "a certificate without a namespace has its name as ID",
			files: []file{{"api.yaml", cert("", "api", "    - vaultKV: {mount: secret, path: tls/api}\n")}},
			want:  want{targets: map[string][]string{"api": {"vault-kv/secret/tls/api"}}, documents: 1},
		},
		{
			name: "the same name in two namespaces makes two certificates",
			files: []file{
				{"a.yaml", cert("payments", "api", "    - directory: {path: /etc/tls/payments}\n")},
				{"b.yaml", cert("web", "api", "    - directory: {path: /etc/tls/web}\n")},
			},
			want: want{targets: map[string][]string{
				"payments/api": {"directory//etc/tls/payments"},
				"web/api":      {"directory//etc/tls/web"},
			}, documents: 2},
		},
		{
			name: "a certificate declared twice is an error naming both files and lines",
			files: []file{
				{"teams/a.yaml", cert("payments", "api", "    - directory: {path: /etc/tls/a}\n")},
				{"teams/b.yaml", "# moved here\n---\n" + cert("payments", "api", "    - directory: {path: /etc/tls/b}\n")},
			},
			want: want{
				targets: map[string][]string{"payments/api": {"directory//etc/tls/a"}},
				errors: [][]string{{"teams/b.yaml:6:9", "metadata.name", "certificate payments/api is declared twice",
					"here and at teams/a.yaml:1"}},
				documents: 2,
			},
		},
		{
			name: "two certificates writing the same Secret: the first is kept, the second names it",
			files: []file{
				{"a.yaml", cert("payments", "api", "    - kubernetes: {cluster: prod-eu, namespace: payments, secretName: tls}\n")},
				{"b.yaml", cert("payments", "web", "    - directory: {path: /etc/tls/web}\n    - kubernetes: {cluster: prod-eu, namespace: payments, secretName: tls}\n")},
			},
			cat: clusters,
			want: want{
				targets: map[string][]string{"payments/api": {"kubernetes/prod-eu/payments/tls"}},
				errors: [][]string{{"b.yaml:11:7", "spec.targets[1]", "target kubernetes/prod-eu/payments/tls is also written by certificate payments/api (a.yaml:1)",
					"give each certificate its own"}},
				documents: 2,
			},
		},
		{
			name: "two certificates writing the same Vault KV path, spelt with other slashes, conflict",
			files: []file{
				{"a.yaml", cert("", "api", "    - vaultKV: {mount: secret, path: tls/api}\n")},
				{"b.yaml", cert("", "web", "    - vaultKV: {mount: secret, path: /tls/api/}\n")},
			},
			want: want{
				targets:   map[string][]string{"api": {"vault-kv/secret/tls/api"}},
				errors:    [][]string{{"b.yaml:9:7", "target vault-kv/secret/tls/api is also written by certificate api (a.yaml:1)"}},
				documents: 2,
			},
		},
		{
			name: "two certificates writing the same directory, one with a trailing slash, conflict",
			files: []file{
				{"a.yaml", cert("", "api", "    - directory: {path: /etc/tls/shared/}\n")},
				{"b.yaml", cert("", "web", "    - directory: {path: /etc/tls/shared}\n")},
			},
			want: want{
				targets:   map[string][]string{"api": {"directory//etc/tls/shared"}},
				errors:    [][]string{{"b.yaml:9:7", "target directory//etc/tls/shared is also written by certificate api (a.yaml:1)"}},
				documents: 2,
			},
		},
		{
			name: "two certificates writing ./web/www and web//www conflict",
			files: []file{
				{"a.yaml", cert("", "api", "    - directory: {path: ./web/www}\n")},
				{"b.yaml", cert("", "web", "    - directory: {path: web//www}\n")},
			},
			want: want{
				targets:   map[string][]string{"api": {"directory/web/www"}},
				errors:    [][]string{{"b.yaml:9:7", "target directory/web/www is also written by certificate api (a.yaml:1)"}},
				documents: 2,
			},
		},
		{
			name: "a relative directory and its absolute spelling under the output root conflict",
			files: []file{
				{"a.yaml", cert("", "api", "    - directory: {path: web/www}\n")},
				{"b.yaml", cert("", "web", "    - directory: {path: /srv/tls/web/www/}\n")},
			},
			outputDir: "/srv/tls",
			want: want{
				targets:   map[string][]string{"api": {"directory/web/www"}},
				errors:    [][]string{{"b.yaml:9:7", "target directory/web/www is also written by certificate api (a.yaml:1)"}},
				documents: 2,
			},
		},
		{
			name: "an absolute directory outside the output root keeps its absolute key",
			files: []file{
				{"a.yaml", cert("", "api", "    - directory: {path: /srv/tls-other/web}\n")},
				{"b.yaml", cert("", "web", "    - directory: {path: web}\n")},
			},
			outputDir: "/srv/tls",
			want: want{
				targets:   map[string][]string{"api": {"directory//srv/tls-other/web"}, "web": {"directory/web"}},
				documents: 2,
			},
		},
		{
			name: "a trust bundle writing a certificate's directory is left out, naming the certificate",
			files: []file{
				{"a.yaml", cert("", "api", "    - directory: {path: web/www}\n")},
				{"b.yaml", bundle("fleet-ca", "./web/www/") + "---\n" + bundle("other-ca", "trust")},
			},
			want: want{
				targets: map[string][]string{"api": {"directory/web/www"}},
				bundles: []string{"other-ca"},
				errors: [][]string{{"b.yaml:8:", "spec.targets[0].directory.path", "target directory/web/www is certificate api's directory (a.yaml:1)",
					"a trust bundle and a certificate cannot share a directory"}},
				documents: 3,
			},
		},
		{
			name: "two trust bundles writing one directory: the second names the first",
			files: []file{
				{"a.yaml", bundle("fleet-ca", "/etc/ssl/fleet")},
				{"b.yaml", bundle("other-ca", "/etc/ssl//fleet/")},
			},
			want: want{
				targets:   map[string][]string{},
				bundles:   []string{"fleet-ca"},
				errors:    [][]string{{"b.yaml:8:", "target directory//etc/ssl/fleet is also written by trust bundle fleet-ca (a.yaml:1)"}},
				documents: 2,
			},
		},
		{
			name: "of two certificates in one file writing the same place, the earlier line is kept",
			files: []file{{"a.yaml", cert("", "zz-first", "    - directory: {path: /etc/tls/x}\n") + "---\n" +
				cert("", "aa-second", "    - directory: {path: /etc/tls/x}\n")}},
			want: want{
				targets:   map[string][]string{"zz-first": {"directory//etc/tls/x"}},
				errors:    [][]string{{"a.yaml:19:7", "also written by certificate zz-first (a.yaml:1)"}},
				documents: 2,
			},
		},
		{
			name:  "a certificate writing the same Secret twice is an error",
			files: []file{{"a.yaml", cert("", "api", "    - kubernetes: {cluster: prod-eu, namespace: payments, secretName: tls}\n    - kubernetes: {cluster: prod-eu, namespace: payments, secretName: tls}\n")}},
			cat:   clusters,
			want: want{
				targets:   map[string][]string{},
				errors:    [][]string{{"a.yaml:10:7", "spec.targets[1]", "target kubernetes/prod-eu/payments/tls is also written by spec.targets[0]"}},
				documents: 1,
			},
		},
		{
			name: "a clusterSelector and a named cluster that reach the same Secret are an error",
			files: []file{{"a.yaml", cert("", "api", "    - kubernetes: {cluster: prod-us, namespace: payments, secretName: tls}\n"+
				"    - kubernetes: {clusterSelector: {matchLabels: {env: prod}}, namespace: payments, secretName: tls}\n")}},
			cat: clusters,
			want: want{
				targets:   map[string][]string{},
				errors:    [][]string{{"a.yaml:10:7", "spec.targets[1]", "target kubernetes/prod-us/payments/tls is also written by spec.targets[0]"}},
				documents: 1,
			},
		},
		{
			name:  "a clusterSelector that matches two clusters makes two targets",
			files: []file{{"a.yaml", cert("", "api", "    - kubernetes: {clusterSelector: {matchLabels: {env: prod}}, namespace: payments, secretName: tls}\n")}},
			cat:   clusters,
			want: want{targets: map[string][]string{"api": {"kubernetes/prod-eu/payments/tls", "kubernetes/prod-us/payments/tls"}},
				documents: 1},
		},
		{
			name:  "a clusterSelector that matches no cluster is an error listing the catalog's clusters and labels",
			files: []file{{"a.yaml", cert("", "api", "    - kubernetes:\n        clusterSelector: {matchLabels: {env: dev}}\n        namespace: payments\n        secretName: tls\n")}},
			cat:   clusters,
			want: want{
				targets: map[string][]string{},
				errors: [][]string{{"a.yaml:10:9", "spec.targets[0].kubernetes.clusterSelector", "matches no cluster in the catalog",
					"prod-eu {env=prod, region=eu}; prod-us {env=prod, region=us}; staging {env=staging, region=eu}"}},
				documents: 1,
			},
		},
		{
			name:  "a named cluster missing from the catalog is an error",
			files: []file{{"a.yaml", cert("", "api", "    - kubernetes: {cluster: prod-ap, namespace: payments, secretName: tls}\n")}},
			cat:   clusters,
			want: want{
				targets:   map[string][]string{},
				errors:    [][]string{{"a.yaml:9:29", "spec.targets[0].kubernetes.cluster", `cluster "prod-ap" is not in the catalog`, "use one of: prod-eu"}},
				documents: 1,
			},
		},
		{
			name: "without a catalog, named clusters are taken as written and selectors are counted as unresolved",
			files: []file{{"a.yaml", cert("", "api", "    - kubernetes: {cluster: prod-ap, namespace: payments, secretName: tls}\n"+
				"    - kubernetes: {clusterSelector: {matchLabels: {env: prod}}, namespace: payments, secretName: tls}\n"+
				"    - kubernetes: {clusterSelector: {matchLabels: {env: dev}}, namespace: payments, secretName: tls}\n")}},
			want: want{targets: map[string][]string{"api": {"kubernetes/prod-ap/payments/tls"}}, unresolved: 2, documents: 1},
		},
		{
			name: "each item of a CertificateSet becomes a desired certificate",
			files: []file{{"set.yaml", `apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata:
  name: services
  namespace: payments
spec:
  nameTemplate: ${svc}-tls
  template:
    issuer: fleet
    dnsNames: ["${svc}.payments.svc.cluster.local"]
    targets:
      - kubernetes: {cluster: prod-eu, namespace: payments, secretName: "${svc}-tls"}
  items:
    - {svc: api}
    - {svc: worker}
`}},
			cat: clusters,
			want: want{targets: map[string][]string{
				"payments/api-tls":    {"kubernetes/prod-eu/payments/api-tls"},
				"payments/worker-tls": {"kubernetes/prod-eu/payments/worker-tls"},
			}, documents: 1},
		},
		{
			name: "a catalog kind in the repository is an error",
			files: []file{{"teams/cluster.yaml", `apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: rogue
spec:
  credentials: {kubeconfigContext: rogue}
`}},
			want: want{
				targets:   map[string][]string{},
				errors:    [][]string{{"teams/cluster.yaml:2:7", "Cluster is a catalog kind and does not belong in the repository", "Terraform provider"}},
				documents: 1,
			},
		},
		{
			name: "trust bundles are collected, invalid ones reported",
			files: []file{{"bundles.yaml", `apiVersion: certfleet.dev/v1alpha1
kind: TrustBundle
metadata:
  name: fleet-ca
spec:
  authorities: [fleet]
  targets:
    - directory: {path: /etc/ssl/fleet}
---
apiVersion: certfleet.dev/v1alpha1
kind: TrustBundle
metadata:
  name: empty
spec:
  authorities: []
  targets:
    - directory: {path: /etc/ssl/empty}
`}},
			want: want{
				targets:   map[string][]string{},
				bundles:   []string{"fleet-ca"},
				errors:    [][]string{{"bundles.yaml:15:3", "authorities is empty"}},
				documents: 2,
			},
		},
		{
			name: "documents of other API groups are ignored",
			files: []file{{"deploy.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: api
---
` + cert("", "api", "    - directory: {path: /etc/tls/api}\n")}},
			want: want{targets: map[string][]string{"api": {"directory//etc/tls/api"}}, ignored: 2, documents: 1},
		},
		{
			name: "a broken file does not hide the good certificates of other files",
			files: []file{
				{"a.yaml", cert("", "api", "    - directory: {path: /etc/tls/api}\n")},
				{"b.yaml", "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata: {name: broken\n"},
				{"c.yaml", cert("", "bad", "    - directory: {path: ../escape}\n") + "---\n" + cert("", "web", "    - directory: {path: /etc/tls/web}\n")},
			},
			want: want{
				targets: map[string][]string{"api": {"directory//etc/tls/api"}, "web": {"directory//etc/tls/web"}},
				errors:  [][]string{{"b.yaml:"}, {"c.yaml:9:25", `path "../escape" contains ".."`}},
				// b.yaml's document does not decode, so it is not counted.
				documents: 3,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cat *schemas.Catalog
			if tc.cat != "" {
				cat = catalog(t, tc.cat)
			}
			r := render.NewRenderer(render.WithOutputDir(tc.outputDir)).Render(snapshot(tc.files...), cat)

			got := map[string][]string{}
			var ids []string
			for _, d := range r.Desired {
				ids = append(ids, d.ID)
				keys := []string{}
				for _, tg := range d.Targets {
					keys = append(keys, tg.Key)
				}
				got[d.ID] = keys
			}
			if !reflect.DeepEqual(got, tc.want.targets) {
				t.Errorf("desired targets = %v, want %v", got, tc.want.targets)
			}
			for i := 1; i < len(ids); i++ {
				if ids[i-1] >= ids[i] {
					t.Errorf("desired not sorted by ID: %v", ids)
				}
			}
			if len(r.Errors) != len(tc.want.errors) {
				t.Fatalf("%d errors, want %d:\n%v", len(r.Errors), len(tc.want.errors), r.Errors)
			}
			for i, parts := range tc.want.errors {
				for _, p := range parts {
					if !strings.Contains(r.Errors[i].Error(), p) {
						t.Errorf("error %d = %q, want it to contain %q", i, r.Errors[i].Error(), p)
					}
				}
			}
			if r.Unresolved != tc.want.unresolved {
				t.Errorf("Unresolved = %d, want %d", r.Unresolved, tc.want.unresolved)
			}
			if len(r.Ignored) != tc.want.ignored {
				t.Errorf("Ignored = %v, want %d", r.Ignored, tc.want.ignored)
			}
			var bundles []string
			for _, b := range r.TrustBundles {
				bundles = append(bundles, b.Metadata.Name)
			}
			if !reflect.DeepEqual(bundles, tc.want.bundles) {
				t.Errorf("trust bundles = %v, want %v", bundles, tc.want.bundles)
			}
			if r.Documents != tc.want.documents {
				t.Errorf("Documents = %d, want %d", r.Documents, tc.want.documents)
			}
			if r.Revision.Ref != "main" {
				t.Errorf("Revision = %v, want the snapshot's", r.Revision)
			}
		})
	}
}

func TestRenderTargets(t *testing.T) {
	cat := catalog(t, clusters)
	r := render.Render(snapshot(file{"a.yaml", cert("payments", "api", `    - kubernetes:
        clusterSelector: {matchLabels: {region: eu}}
        namespace: payments
        secretName: api-tls
        secretTemplate:
          labels: {team: payments}
      restart: {kind: Deployment, name: api}
    - vaultKV: {mount: secret, path: /tls/api}
      probe: {address: "api.internal:8443", serverName: api.example.com, grace: 10m}
`)}), cat)
	if len(r.Errors) > 0 || len(r.Desired) != 1 {
		t.Fatalf("want one certificate and no errors, got %d and %v", len(r.Desired), r.Errors)
	}
	d := r.Desired[0]
	if d.File() != "a.yaml" || d.Line() != 1 {
		t.Errorf("declared at %s:%d, want a.yaml:1", d.File(), d.Line())
	}
	tmpl := &schemas.SecretTemplate{Labels: map[string]string{"team": "payments"}}
	want := []render.Target{
		{Index: 0, Address: render.Address{Key: "kubernetes/prod-eu/payments/api-tls", Kind: render.Kubernetes, Cluster: "prod-eu", Namespace: "payments", Name: "api-tls"}, Template: tmpl,
			Restart: &schemas.Restart{Kind: schemas.Deployment, Name: "api"}},
		{Index: 0, Address: render.Address{Key: "kubernetes/staging/payments/api-tls", Kind: render.Kubernetes, Cluster: "staging", Namespace: "payments", Name: "api-tls"}, Template: tmpl,
			Restart: &schemas.Restart{Kind: schemas.Deployment, Name: "api"}},
		{Index: 1, Address: render.Address{Key: "vault-kv/secret/tls/api", Kind: render.VaultKV, Mount: "secret", Path: "/tls/api"},
			Probe: &schemas.Probe{Address: "api.internal:8443", ServerName: "api.example.com", Grace: "10m"}},
	}
	if len(d.Targets) != len(want) {
		t.Fatalf("targets = %+v, want %+v", d.Targets, want)
	}
	for i := range want {
		got := d.Targets[i]
		if got.TemplateHash == "" {
			t.Errorf("target %d has no TemplateHash", i)
		}
		got.TemplateHash = ""
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("target %d = %+v, want %+v", i, got, want[i])
		}
	}
	if d.Targets[0].TemplateHash != d.Targets[1].TemplateHash {
		t.Errorf("the targets of one clusterSelector have different template hashes")
	}
	if d.Targets[0].TemplateHash == d.Targets[2].TemplateHash {
		t.Errorf("a target with a secretTemplate hashes like one without")
	}
	if d.IssueHash != schemas.IssueHash(&d.Certificate.Spec) {
		t.Errorf("IssueHash = %s, want the spec's", d.IssueHash)
	}
	if line, col := d.Pos("spec.targets[1].vaultKV.path"); line != 17 || col != 38 {
		t.Errorf("Pos(spec.targets[1].vaultKV.path) = %d:%d, want 17:38", line, col)
	}
}

func TestIDIsStableWhenAFileMoves(t *testing.T) {
	manifest := cert("payments", "api", "    - directory: {path: /etc/tls/api}\n")
	rr := render.NewRenderer()
	before := rr.Render(snapshot(file{"teams/payments/api.yaml", manifest}), nil)
	after := rr.Render(snapshot(file{"teams/payments/certs/all.yaml", "# all of them\n---\n" + manifest}), nil)
	if len(before.Desired) != 1 || len(after.Desired) != 1 {
		t.Fatalf("want one certificate on each side, got %d and %d", len(before.Desired), len(after.Desired))
	}
	b, a := before.Desired[0], after.Desired[0]
	if b.ID != "payments/api" || a.ID != b.ID {
		t.Errorf("IDs = %q and %q, want payments/api for both", b.ID, a.ID)
	}
	if a.File() != "teams/payments/certs/all.yaml" || a.Line() != 3 {
		t.Errorf("moved certificate at %s:%d, want teams/payments/certs/all.yaml:3", a.File(), a.Line())
	}
	if a.IssueHash != b.IssueHash {
		t.Errorf("IssueHash changed with the move: %s → %s", b.IssueHash, a.IssueHash)
	}
}

func TestRendererParsesOnlyChangedFiles(t *testing.T) {
	cat := catalog(t, clusters)
	a := file{"a.yaml", cert("", "api", "    - kubernetes: {clusterSelector: {matchLabels: {env: prod}}, namespace: payments, secretName: api}\n")}
	b := file{"b.yaml", cert("", "web", "    - directory: {path: /etc/tls/web}\n")}
	changed := file{"b.yaml", cert("", "web", "    - directory: {path: /etc/tls/web2}\n")}
	moved := file{"c.yaml", b.data}

	rr := render.NewRenderer()
	steps := []struct {
		name       string
		files      []file
		wantParsed int
		wantKeys   []string // every target key, in order of Desired
	}{
		{"the first render parses every file", []file{a, b}, 2,
			[]string{"kubernetes/prod-eu/payments/api", "kubernetes/prod-us/payments/api", "directory//etc/tls/web"}},
		{"rendering the same snapshot again parses nothing new", []file{a, b}, 2,
			[]string{"kubernetes/prod-eu/payments/api", "kubernetes/prod-us/payments/api", "directory//etc/tls/web"}},
		{"a changed file is parsed again, the other is not", []file{a, changed}, 3,
			[]string{"kubernetes/prod-eu/payments/api", "kubernetes/prod-us/payments/api", "directory//etc/tls/web2"}},
		{"a file moved with the same content is parsed again under its new path", []file{a, moved}, 4,
			[]string{"kubernetes/prod-eu/payments/api", "kubernetes/prod-us/payments/api", "directory//etc/tls/web"}},
	}
	var first *render.Result
	for _, s := range steps {
		r := rr.Render(snapshot(s.files...), cat)
		if first == nil {
			first = r
		}
		if got := rr.Parsed(); got != s.wantParsed {
			t.Errorf("%s: Parsed() = %d, want %d", s.name, got, s.wantParsed)
		}
		var keys []string
		for _, d := range r.Desired {
			for _, tg := range d.Targets {
				keys = append(keys, tg.Key)
			}
		}
		if !reflect.DeepEqual(keys, s.wantKeys) || len(r.Errors) > 0 {
			t.Errorf("%s: keys %v, errors %v; want %v and none", s.name, keys, r.Errors, s.wantKeys)
		}
	}
	// A cached file is resolved against the catalog of each render.
	r := rr.Render(snapshot(a, moved), catalog(t, strings.Replace(clusters, "env: prod, region: us", "env: staging, region: us", 1)))
	if rr.Parsed() != 4 {
		t.Errorf("a new catalog made the renderer parse again: Parsed() = %d, want 4", rr.Parsed())
	}
	// b was last read three renders ago: forgotten, so parsed again.
	rr.Render(snapshot(a, b), cat)
	if rr.Parsed() != 5 {
		t.Errorf("a file unused by the last two renders was kept: Parsed() = %d, want 5", rr.Parsed())
	}
	if len(r.Desired) != 2 || len(r.Desired[0].Targets) != 1 || r.Desired[0].Targets[0].Cluster != "prod-eu" {
		t.Errorf("with prod-us relabelled, api's targets = %+v, want prod-eu alone", r.Desired[0].Targets)
	}
	if len(first.Desired[0].Targets) != 2 {
		t.Errorf("a later render changed an earlier result: %+v", first.Desired[0].Targets)
	}
}

// A broken file stays broken in the cache: a second render reports the same
// errors, not fewer.
func TestRendererRepeatsCachedErrors(t *testing.T) {
	snap := snapshot(
		file{"a.yaml", cert("", "api", "    - directory: {path: ../x}\n")},
		file{"b.yaml", cert("", "api", "    - directory: {path: /etc/tls/b}\n")},
		file{"c.yaml", cert("", "web", "    - directory: {path: /etc/tls/b}\n")},
	)
	rr := render.NewRenderer()
	first, second := rr.Render(snap, nil), rr.Render(snap, nil)
	if first.Errors.Error() != second.Errors.Error() || len(first.Errors) != 2 {
		t.Errorf("errors of the first render:\n%v\nof the second:\n%v\nwant the same two", first.Errors, second.Errors)
	}
	if len(second.Desired) != 1 || second.Desired[0].ID != "api" || second.Desired[0].File() != "b.yaml" {
		t.Errorf("second render desired %v, want api from b.yaml", second.Desired)
	}
}
