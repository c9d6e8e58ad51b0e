package plan_test

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/plan"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// apiCert's lines are referred to by number in the cases below.
const apiCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
  namespace: payments
  labels: {team: payments}
spec:
  issuer: fleet
  dnsNames:
    - api.payments.svc.cluster.local
    - api.payments.svc
  duration: 720h
  renewBefore: 240h
  privateKey: {algorithm: ECDSA, size: 256}
  targets:
    - kubernetes:
        cluster: prod-eu
        namespace: payments
        secretName: api-tls
        secretTemplate:
          labels: {team: payments}
`

// restartLine gives apiCert's Secret a workload to restart, after restartAfter.
const restartAfter, restartLine = "          labels: {team: payments}\n", "      restart: {kind: Deployment, name: api}\n"

// webCert leaves every default out.
const webCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: web
  namespace: web
spec:
  issuer: fleet
  dnsNames: [web.web.svc.cluster.local]
  targets:
    - directory: {path: /etc/tls/web}
`

const setFile = `apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata:
  name: workers
  namespace: jobs
spec:
  nameTemplate: ${name}
  template:
    issuer: fleet
    dnsNames: ["${host}.jobs.svc.cluster.local"]
    targets:
      - vaultKV: {mount: secret, path: "jobs/${name}"}
  items:
    - {name: a, host: a}
    - {name: b, host: b}
`

const selectorCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: edge
spec:
  issuer: fleet
  dnsNames: [edge.svc.cluster.local]
  targets:
    - kubernetes: {clusterSelector: {matchLabels: {env: prod}}, namespace: edge, secretName: edge-tls}
`

const clusters = `apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: prod-eu
  labels: {env: prod}
spec:
  credentials: {kubeconfigContext: prod-eu}
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata:
  name: prod-us
  labels: {env: staging}
spec:
  credentials: {kubeconfigContext: prod-us}
`

func mustCatalog(t testing.TB, yaml string) *schemas.Catalog {
	t.Helper()
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(yaml))
	if len(errs) > 0 {
		t.Fatalf("catalog: %v", errs)
	}
	return cat
}

// edit replaces old (which must be there) by new in s.
func edit(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q is not in the manifest", old)
	}
	return strings.Replace(s, old, new, 1)
}

const (
	apiPath = "teams/payments/api.yaml"
	webPath = "teams/web/web.yaml"
	setPath = "teams/jobs/workers.yaml"
)

func TestDiff(t *testing.T) {
	base := map[string]string{apiPath: apiCert, webPath: webCert, setPath: setFile}
	with := func(changes map[string]string) map[string]string {
		out := map[string]string{}
		for p, c := range base {
			out[p] = c
		}
		for p, c := range changes {
			if c == "" {
				delete(out, p)
			} else {
				out[p] = c
			}
		}
		return out
	}
	cases := []struct {
		name             string
		base, head       map[string]string // base defaults to the three files above
		baseCat, headCat string            // default: clusters
		want             []schemas.Change
	}{
		{
			name: "nothing changes when nothing does",
			head: with(nil),
		},
		{
			name: "a new certificate is an add listing its fields",
			head: with(map[string]string{"teams/web/new.yaml": "# new\n" + edit(t, edit(t, webCert, "name: web", "name: new"), "/etc/tls/web", "/etc/tls/new")}),
			want: []schemas.Change{{ID: "web/new", Action: schemas.ActionAdd, File: "teams/web/new.yaml", Line: 2, Fields: []schemas.FieldChange{
				{Field: "spec.dnsNames[0]", New: "web.web.svc.cluster.local", Reissue: true},
				{Field: "spec.issuer", New: "fleet", Reissue: true},
				{Field: "spec.targets[0].directory.path", New: "/etc/tls/new"},
			}}},
		},
		{
			name: "a certificate no longer declared is a remove located in the base",
			head: with(map[string]string{webPath: ""}),
			want: []schemas.Change{{ID: "web/web", Action: schemas.ActionRemove, File: webPath, Line: 1}},
		},
		{
			name: "a SAN added is a reissue pointing at the new SAN",
			head: with(map[string]string{apiPath: edit(t, apiCert, "    - api.payments.svc\n", "    - api.payments.svc\n    - api.payments\n")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionReissue, File: apiPath, Line: 12, Fields: []schemas.FieldChange{
				{Field: "spec.dnsNames[2]", New: "api.payments", Reissue: true},
			}}},
		},
		{
			name: "a reissue names the workloads its delivery restarts",
			base: with(map[string]string{apiPath: edit(t, apiCert, restartAfter, restartAfter+restartLine)}),
			head: with(map[string]string{apiPath: edit(t, edit(t, apiCert, restartAfter, restartAfter+restartLine), "    - api.payments.svc\n", "    - api.payments.svc\n    - api.payments\n")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionReissue, File: apiPath, Line: 12, Fields: []schemas.FieldChange{
				{Field: "spec.dnsNames[2]", New: "api.payments", Reissue: true},
			}, Restarts: []string{"Deployment payments/api in prod-eu"}}},
		},
		{
			name: "an update (the same certificate) restarts nothing",
			base: with(map[string]string{apiPath: edit(t, apiCert, restartAfter, restartAfter+restartLine)}),
			head: with(map[string]string{apiPath: edit(t, edit(t, apiCert, restartAfter, restartAfter+restartLine), "renewBefore: 240h", "renewBefore: 360h")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 13, Fields: []schemas.FieldChange{
				{Field: "spec.renewBefore", Old: "240h", New: "360h"},
			}}},
		},
		{
			name: "a duration changed is a reissue",
			head: with(map[string]string{apiPath: edit(t, apiCert, "duration: 720h", "duration: 1440h")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionReissue, File: apiPath, Line: 12, Fields: []schemas.FieldChange{
				{Field: "spec.duration", Old: "720h", New: "1440h", Reissue: true},
			}}},
		},
		{
			name: "a duration written another way for the same time changes nothing",
			head: with(map[string]string{apiPath: edit(t, apiCert, "duration: 720h", "duration: 30d")}),
		},
		{
			name: "an issuer changed is a reissue",
			head: with(map[string]string{apiPath: edit(t, apiCert, "issuer: fleet", "issuer: fleet-ec")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionReissue, File: apiPath, Line: 8, Fields: []schemas.FieldChange{
				{Field: "spec.issuer", Old: "fleet", New: "fleet-ec", Reissue: true},
			}}},
		},
		{
			name: "a key size changed is a reissue",
			head: with(map[string]string{apiPath: edit(t, apiCert, "size: 256", "size: 384")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionReissue, File: apiPath, Line: 14, Fields: []schemas.FieldChange{
				{Field: "spec.privateKey.size", Old: "256", New: "384", Reissue: true},
			}}},
		},
		{
			name: "a reissue with a reordered SAN list lists the moved SANs with the change",
			head: with(map[string]string{apiPath: edit(t, edit(t, apiCert, "duration: 720h", "duration: 1440h"),
				"    - api.payments.svc.cluster.local\n    - api.payments.svc\n", "    - api.payments.svc\n    - api.payments.svc.cluster.local\n")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionReissue, File: apiPath, Line: 10, Fields: []schemas.FieldChange{
				{Field: "spec.dnsNames[0]", Old: "api.payments.svc.cluster.local", New: "api.payments.svc", Reissue: true},
				{Field: "spec.dnsNames[1]", Old: "api.payments.svc", New: "api.payments.svc.cluster.local", Reissue: true},
				{Field: "spec.duration", Old: "720h", New: "1440h", Reissue: true},
			}}},
		},
		{
			name: "a secretTemplate label changed is an update",
			head: with(map[string]string{apiPath: edit(t, apiCert, "          labels: {team: payments}", "          labels: {team: billing}")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 21, Fields: []schemas.FieldChange{
				{Field: "spec.targets[0].kubernetes.secretTemplate.labels.team", Old: "payments", New: "billing"},
			}}},
		},
		{
			name: "a renewBefore changed is an update",
			head: with(map[string]string{apiPath: edit(t, apiCert, "renewBefore: 240h", "renewBefore: 360h")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 13, Fields: []schemas.FieldChange{
				{Field: "spec.renewBefore", Old: "240h", New: "360h"},
			}}},
		},
		{
			name: "of two changed fields, Line is the first in the file",
			head: with(map[string]string{apiPath: edit(t, edit(t, apiCert, "renewBefore: 240h", "renewBefore: 360h"),
				"          labels: {team: payments}", "          labels: {team: billing}")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 13, Fields: []schemas.FieldChange{
				{Field: "spec.renewBefore", Old: "240h", New: "360h"},
				{Field: "spec.targets[0].kubernetes.secretTemplate.labels.team", Old: "payments", New: "billing"},
			}}},
		},
		{
			name: "a field removed points at the certificate",
			head: with(map[string]string{apiPath: edit(t, apiCert, "  renewBefore: 240h\n", "")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 1, Fields: []schemas.FieldChange{
				{Field: "spec.renewBefore", Old: "240h"},
			}}},
		},
		{
			name: "a label of the certificate changed is an update pointing at the label",
			head: with(map[string]string{apiPath: edit(t, apiCert, "  labels: {team: payments}\nspec", "  labels: {team: billing}\nspec")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 6, Fields: []schemas.FieldChange{
				{Field: "metadata.labels.team", Old: "payments", New: "billing"},
			}}},
		},
		{
			name: "a target added is an update listing the new target",
			head: with(map[string]string{apiPath: apiCert + "    - vaultKV: {mount: secret, path: tls/api}\n"}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 22, Fields: []schemas.FieldChange{
				{Field: "spec.targets[1].vaultKV.mount", New: "secret"},
				{Field: "spec.targets[1].vaultKV.path", New: "tls/api"},
				{Field: "targets", New: "vault-kv/secret/tls/api"},
			}}},
		},
		{
			name:    "a clusterSelector that matches another cluster after a catalog change is an update",
			base:    map[string]string{"edge.yaml": selectorCert},
			head:    map[string]string{"edge.yaml": selectorCert},
			headCat: edit(t, clusters, "labels: {env: staging}", "labels: {env: prod}"),
			want: []schemas.Change{{ID: "edge", Action: schemas.ActionUpdate, File: "edge.yaml", Line: 1, Fields: []schemas.FieldChange{
				{Field: "targets", New: "kubernetes/prod-us/edge/edge-tls"},
			}}},
		},
		{
			name: "a key encoding changed is an update",
			head: with(map[string]string{apiPath: edit(t, apiCert, "size: 256}", "size: 256, encoding: PKCS8}")}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionUpdate, File: apiPath, Line: 14, Fields: []schemas.FieldChange{
				{Field: "spec.privateKey.encoding", New: "PKCS8"},
			}}},
		},
		{
			name: "a file moved is a no-op naming both paths",
			head: with(map[string]string{apiPath: "", "teams/payments/certs/api.yaml": apiCert}),
			want: []schemas.Change{{ID: "payments/api", Action: schemas.ActionNoop, File: "teams/payments/certs/api.yaml", Line: 1,
				Fields: []schemas.FieldChange{{Field: "file", Old: apiPath, New: "teams/payments/certs/api.yaml"}}}},
		},
		{
			name: "a certificate moved down its file changes nothing",
			head: with(map[string]string{apiPath: "# the API's certificate\n\n" + apiCert}),
		},
		{
			name: "a SAN list only reordered changes nothing",
			head: with(map[string]string{apiPath: edit(t, apiCert, "    - api.payments.svc.cluster.local\n    - api.payments.svc\n",
				"    - api.payments.svc\n    - api.payments.svc.cluster.local\n")}),
		},
		{
			name: "defaults written out explicitly change nothing",
			head: with(map[string]string{webPath: webCert + `  duration: 2160h
  usages: [server auth, key encipherment, digital signature]
  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always, encoding: PKCS1}
`}),
		},
		{
			name: "an item of a CertificateSet changed reissues that item alone, pointing at the template",
			head: with(map[string]string{setPath: edit(t, setFile, "{name: b, host: b}", "{name: b, host: bee}")}),
			want: []schemas.Change{{ID: "jobs/b", Action: schemas.ActionReissue, File: setPath, Line: 10, Fields: []schemas.FieldChange{
				{Field: "spec.dnsNames[0]", Old: "b.jobs.svc.cluster.local", New: "bee.jobs.svc.cluster.local", Reissue: true},
			}}},
		},
		{
			name: "changes are sorted by ID",
			head: with(map[string]string{webPath: "", setPath: edit(t, setFile, "    - {name: b, host: b}\n", ""),
				apiPath: edit(t, apiCert, "duration: 720h", "duration: 1440h")}),
			want: []schemas.Change{
				{ID: "jobs/b", Action: schemas.ActionRemove, File: setPath, Line: 1},
				{ID: "payments/api", Action: schemas.ActionReissue, File: apiPath, Line: 12, Fields: []schemas.FieldChange{
					{Field: "spec.duration", Old: "720h", New: "1440h", Reissue: true},
				}},
				{ID: "web/web", Action: schemas.ActionRemove, File: webPath, Line: 1},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.base
			if b == nil {
				b = base
			}
			baseCat, headCat := tc.baseCat, tc.headCat
			if baseCat == "" {
				baseCat = clusters
			}
			if headCat == "" {
				headCat = clusters
			}
			rr := render.NewRenderer()
			rb, rh := rr.Render(snapshot(b, "main"), mustCatalog(t, baseCat)), rr.Render(snapshot(tc.head, "feature"), mustCatalog(t, headCat))
			if len(rb.Errors)+len(rh.Errors) > 0 {
				t.Fatalf("errors rendering the fixtures:\n%v\n%v", rb.Errors, rh.Errors)
			}
			got := plan.Diff(rb, rh)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff =\n%s\nwant\n%s", describe(got), describe(tc.want))
			}
		})
	}
}

func describe(cs []schemas.Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + c.ID + " " + string(c.Action) + " " + c.File + ":" + strconv.Itoa(c.Line) + "\n")
		for _, f := range c.Fields {
			r := ""
			if f.Reissue {
				r = " (reissue)"
			}
			b.WriteString("      " + f.Field + ": " + f.Old + " → " + f.New + r + "\n")
		}
	}
	if b.Len() == 0 {
		return "  (no changes)"
	}
	return b.String()
}

// policyCatalog allows names under svc.cluster.local through issuer fleet.
const policyCatalog = clusters + `---
apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata:
  name: fleet
spec:
  type: root
  mount: pki-fleet
  commonName: Fleet
status:
  notAfter: "2040-01-01T00:00:00Z"
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata:
  name: fleet
spec:
  authority: fleet
  maxTTL: 2160h
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: internal
spec:
  selector: {issuers: [fleet]}
  dnsNames: ["**.svc.cluster.local", "**.svc"]
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata:
  name: short
spec:
  selector: {issuers: [fleet]}
  maxDuration: 720h
  enforcement: warn
`

func TestPlan(t *testing.T) {
	cat := mustCatalog(t, policyCatalog)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	base := map[string]string{apiPath: apiCert, webPath: webCert, setPath: setFile, "broken.yaml": "kind: [\n"}
	head := map[string]string{
		apiPath:                edit(t, apiCert, "renewBefore: 240h", "renewBefore: 300h"),                                                                                   // updated
		"teams/web/moved.yaml": webCert,                                                                                                                                      // no-op (moved); warned: 90d > 720h
		setPath:                edit(t, setFile, "{name: b, host: b}", "{name: c, host: c}"),                                                                                 // b removed, c added
		"teams/ext.yaml":       edit(t, edit(t, edit(t, webCert, "name: web", "name: ext"), "web.web.svc.cluster.local", "ext.example.com"), "/etc/tls/web", "/etc/tls/ext"), // added, denied
		"teams/bad.yaml":       edit(t, webCert, "name: web", "name: Bad"),                                                                                                   // invalid
	}
	rr := render.NewRenderer()
	rb, rh := rr.Render(snapshot(base, "main"), cat), rr.Render(snapshot(head, "feature"), cat)
	rep := plan.Plan(rb, rh, evaluate.New(cat, now))

	want := schemas.ReportSummary{Certificates: 5, Added: 2, Removed: 1, Reissued: 0, Updated: 1, Unchanged: 2, Invalid: 1, Denied: 1, Warnings: 4}
	if rep.Summary != want {
		t.Errorf("summary = %+v, want %+v", rep.Summary, want)
	}
	if rep.Command != "plan" || rep.Version != schemas.ReportVersion || rep.Base == nil || rep.Base.Ref != "main" || rep.Head.Ref != "feature" {
		t.Errorf("report header = %s %s base %v head %v", rep.Version, rep.Command, rep.Base, rep.Head)
	}
	if len(rep.BaseErrors) != 1 || rep.BaseErrors[0].File != "broken.yaml" {
		t.Errorf("BaseErrors = %v, want broken.yaml's", rep.BaseErrors)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].File != "teams/bad.yaml" {
		t.Errorf("Errors = %v, want teams/bad.yaml's", rep.Errors)
	}
	var actions []string
	for _, c := range rep.Changes {
		actions = append(actions, c.ID+" "+string(c.Action))
	}
	wantActions := []string{"jobs/b remove", "jobs/c add", "payments/api update", "web/ext add", "web/web no-op"}
	if !reflect.DeepEqual(actions, wantActions) {
		t.Errorf("changes = %v, want %v", actions, wantActions)
	}
	if got := plan.ExitCode(rep); got != plan.ExitViolations {
		t.Errorf("ExitCode = %d, want %d", got, plan.ExitViolations)
	}

	v := plan.Validate(rh, evaluate.New(cat, now))
	if v.Command != "validate" || v.Base != nil || v.Changes != nil || v.BaseErrors != nil {
		t.Errorf("validate report has plan fields: %+v", v)
	}
	wantV := schemas.ReportSummary{Certificates: 5, Unchanged: 5, Invalid: 1, Denied: 1, Warnings: 4}
	if v.Summary != wantV {
		t.Errorf("validate summary = %+v, want %+v", v.Summary, wantV)
	}
}

func TestValidateOfACleanRevision(t *testing.T) {
	r := render.Render(snapshot(map[string]string{webPath: webCert}, "main"), nil)
	rep := plan.Validate(r, evaluate.New(nil, time.Now()))
	if rep.Errors == nil || len(rep.Errors) != 0 {
		t.Errorf("Errors = %#v, want an empty list (JSON [] rather than null)", rep.Errors)
	}
	if len(rep.Certificates) != 1 || !rep.Certificates[0].Allowed {
		t.Errorf("certificates = %+v, want web allowed", rep.Certificates)
	}
	if got := plan.ExitCode(rep); got != plan.ExitClean {
		t.Errorf("ExitCode = %d, want %d", got, plan.ExitClean)
	}
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		name    string
		summary schemas.ReportSummary
		want    int
	}{
		{"nothing to do is clean", schemas.ReportSummary{Certificates: 3, Unchanged: 3}, plan.ExitClean},
		{"warnings alone are clean", schemas.ReportSummary{Certificates: 3, Unchanged: 3, Warnings: 2}, plan.ExitClean},
		{"an addition is a change", schemas.ReportSummary{Added: 1}, plan.ExitChanges},
		{"a removal is a change", schemas.ReportSummary{Removed: 1}, plan.ExitChanges},
		{"a reissue is a change", schemas.ReportSummary{Reissued: 1}, plan.ExitChanges},
		{"an update is a change", schemas.ReportSummary{Updated: 1}, plan.ExitChanges},
		{"an invalid manifest is a violation", schemas.ReportSummary{Invalid: 1}, plan.ExitViolations},
		{"a denied certificate is a violation", schemas.ReportSummary{Denied: 1}, plan.ExitViolations},
		{"a violation wins over changes", schemas.ReportSummary{Added: 2, Updated: 1, Denied: 1}, plan.ExitViolations},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := plan.ExitCode(&schemas.Report{Summary: tc.summary}); got != tc.want {
				t.Errorf("ExitCode(%+v) = %d, want %d", tc.summary, got, tc.want)
			}
		})
	}
}
