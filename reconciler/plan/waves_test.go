package plan_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/plan"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// clusterSet fans one template out over both test clusters: prod-us is
// labelled staging, prod-eu prod.
const clusterSet = `apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata:
  name: edge
  namespace: jobs
spec:
  nameTemplate: ${name}
  template:
    issuer: fleet
    dnsNames: ["${name}.jobs.svc.cluster.local"]
    targets:
      - kubernetes: {cluster: "${cluster}", namespace: jobs, secretName: "${name}-tls"}
  items:
    - {name: a, cluster: prod-us}
    - {name: b, cluster: prod-eu}
    - {name: c, cluster: prod-eu}
`

const rollout = `---
apiVersion: certfleet.dev/v1alpha1
kind: Rollout
metadata: {name: fleet}
spec:
  waves:
    - {name: staging, clusterSelector: {matchLabels: {env: staging}}}
    - {name: production}
  minCertificates: MIN
`

// TestPlanShowsTheWavesOfAMassReissue: a template change that reissues
// every certificate of a set shows, per wave, what the merge would reissue;
// one below the rollout's minCertificates shows no waves (it goes at once).
func TestPlanShowsTheWavesOfAMassReissue(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	base := map[string]string{"teams/jobs/edge.yaml": clusterSet}
	head := map[string]string{"teams/jobs/edge.yaml": edit(t, clusterSet, "jobs.svc.cluster.local", "edge.jobs.svc.cluster.local")}
	for _, tc := range []struct {
		min  string
		want []schemas.PlanWave
	}{
		{"3", []schemas.PlanWave{{Name: "staging", Certificates: []string{"jobs/a"}}, {Name: "production", Certificates: []string{"jobs/b", "jobs/c"}}}},
		{"4", nil},
	} {
		cat := mustCatalog(t, policyCatalog+strings.ReplaceAll(rollout, "MIN", tc.min))
		rr := render.NewRenderer()
		rb, rh := rr.Render(snapshot(base, "main"), cat), rr.Render(snapshot(head, "feature"), cat)
		if len(rh.Errors) > 0 {
			t.Fatal(rh.Errors)
		}
		rep := plan.Plan(rb, rh, evaluate.New(cat, now))
		if rep.Summary.Reissued != 3 {
			t.Fatalf("minCertificates %s: %d reissued, want 3 (%+v)", tc.min, rep.Summary.Reissued, rep.Changes)
		}
		if !reflect.DeepEqual(rep.Waves, tc.want) {
			t.Errorf("minCertificates %s: waves %+v, want %+v", tc.min, rep.Waves, tc.want)
		}
		if tc.want == nil {
			continue
		}
		var text, md bytes.Buffer
		if err := plan.Text(&text, rep, false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text.String(), "  1. staging: 1 to reissue: jobs/a\n  2. production: 2 to reissue: jobs/b, jobs/c\n") {
			t.Errorf("the text plan does not show the waves:\n%s", text.String())
		}
		if err := plan.Markdown(&md, rep); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.String(), "| production | 2 | `jobs/b`, `jobs/c` |") {
			t.Errorf("the Markdown plan does not show the waves:\n%s", md.String())
		}
	}
}
