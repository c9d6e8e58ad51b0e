package reconcile_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

// waveCerts are one certificate in each test cluster: alpha is labelled
// staging, beta production.
const waveCerts = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: api, namespace: staging}
spec:
  issuer: mtls
  dnsNames: [api.staging.svc.cluster.local]
  duration: 24h
  targets: [{kubernetes: {cluster: alpha, namespace: NS-payments, secretName: api-staging}}]
---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: api, namespace: production}
spec:
  issuer: mtls
  dnsNames: [api.production.svc.cluster.local]
  duration: 24h
  targets: [{kubernetes: {cluster: beta, namespace: NS-payments, secretName: api-production}}]
`

// heldSerial is the serial of the leaf a Secret holds, whichever CA signed it.
func (e *env) heldSerial(c *testbed.Cluster, name string) string {
	e.t.Helper()
	crt, err := pki.ParseCertificate(e.secret(c, "payments", name).Data["tls.crt"])
	if err != nil {
		e.t.Fatal(err)
	}
	return serial(crt)
}

// TwoWaves is the rollout of the README, as a test writes it into the
// catalog: staging first, the rest after a 30-minute soak.
var twoWaves = &schemas.Rollout{
	TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindRollout},
	Metadata: schemas.ObjectMeta{Name: "fleet"},
	Spec: schemas.RolloutSpec{Waves: []schemas.RolloutWave{
		{Name: "staging", ClusterSelector: &schemas.LabelSelector{MatchLabels: map[string]string{"env": "staging"}}},
		{Name: "production"},
	}, Soak: "30m"},
}

// TestARotationIsReissuedInWaves: after an authority rotation the first
// pass reissues the staging cluster's leaf only, passes during the soak
// hold production's (drift says which wave it waits for and until when),
// and the first pass after the soak reissues it. The rollout's progress
// lives in the backend: every pass here is a new Pass, as after a restart.
func TestARotationIsReissuedInWaves(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.catalog.Clusters["alpha"].Metadata.Labels = map[string]string{"env": "staging"}
	e.catalog.Clusters["beta"].Metadata.Labels = map[string]string{"env": "production"}
	for _, o := range []any{e.catalog.Clusters["alpha"], e.catalog.Clusters["beta"], twoWaves} {
		if err := backend.PutObject(ctx, e.backend, o); err != nil {
			t.Fatal(err)
		}
	}
	reload := func() {
		t.Helper()
		cat, err := backend.LoadCatalog(ctx, e.backend)
		if err != nil {
			t.Fatal(err)
		}
		e.catalog = cat
	}
	reload()
	files := map[string]string{"waves.yaml": waveCerts}
	if rep := e.run(files); rep.Actions["issue"] != 2 || len(rep.Failures) != 0 {
		t.Fatalf("first issuance: actions %v failures %v (a first issuance never waits for a wave)", rep.Actions, rep.Failures)
	}
	stagingBefore := e.heldSerial(alpha, "api-staging")
	productionBefore := e.heldSerial(beta, "api-production")

	if err := backend.RotateAuthority(ctx, e.backend, e.catalog.Authorities["root"]); err != nil {
		t.Fatal(err)
	}
	reload()
	start := e.now.Add(time.Minute)
	e.now = start
	rep := e.run(files)
	if rep.Actions["reissue"] != 1 || rep.Reasons[decide.WaitingForWave] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("the first pass after the rotation: actions %v reasons %v failures %v, want staging reissued and production waiting",
			rep.Actions, rep.Reasons, rep.Failures)
	}
	stagingAfter := e.heldSerial(alpha, "api-staging")
	if stagingAfter == stagingBefore || e.heldSerial(beta, "api-production") != productionBefore {
		t.Fatal("the first wave's pass did not reissue staging only")
	}
	if len(rep.Waves) != 2 || rep.Waves[0].Status != decide.WaveRunning || rep.Waves[1].Status != decide.WaveWaiting ||
		strings.Join(rep.Waves[0].Reissue, ",") != "staging/api" || strings.Join(rep.Waves[1].Held, ",") != "production/api" {
		t.Errorf("the report's waves: %+v", rep.Waves)
	}

	e.now = start.Add(10 * time.Minute) // inside the soak
	until := start.Add(30 * time.Minute).UTC().Format("15:04 UTC")
	d := e.drift(files)
	// Only this test's certificates: the clusters also hold other tests' Secrets.
	d.Entries = slices.DeleteFunc(d.Entries, func(en reconcile.DriftEntry) bool { return en.Reason == decide.Unmanaged })
	if len(d.Entries) != 1 || d.Entries[0].Reason != decide.WaitingForWave || d.Entries[0].Certificate != "production/api" ||
		d.Entries[0].Message != "wave production starts after staging soaks until "+until {
		t.Errorf("drift during the soak: %+v", d.Entries)
	}
	var text strings.Builder
	if err := d.Text(&text); err != nil {
		t.Fatal(err)
	}
	if d.Entries[0].Wave != "production" || !strings.Contains(text.String(),
		"rollout: staging Soaking (0 of 1 left) → production Waiting (1 of 1 left); wave production starts after staging soaks until "+until) {
		t.Errorf("drift does not show the held certificate's wave (%q):\n%s", d.Entries[0].Wave, text.String())
	}
	if rep := e.run(files); len(rep.Actions) != 0 || rep.Reasons[decide.WaitingForWave] != 1 || rep.Waves[0].Status != decide.WaveSoaking {
		t.Fatalf("a pass during the soak: actions %v reasons %v waves %+v, want production still waiting", rep.Actions, rep.Reasons, rep.Waves)
	}
	if e.heldSerial(beta, "api-production") != productionBefore {
		t.Fatal("production was reissued during staging's soak")
	}

	e.now = start.Add(31 * time.Minute) // the soak is over
	if rep := e.run(files); rep.Actions["reissue"] != 1 || rep.Reasons[decide.AuthorityRotated] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("the pass after the soak: actions %v reasons %v failures %v, want production reissued", rep.Actions, rep.Reasons, rep.Failures)
	}
	if e.heldSerial(beta, "api-production") == productionBefore {
		t.Fatal("production was not reissued after the soak")
	}
	if e.heldSerial(alpha, "api-staging") != stagingAfter {
		t.Fatal("staging was reissued a second time")
	}
	// Both now verify against the new CA, with it as their ca.crt.
	e.secretLeaf(alpha, "payments", "api-staging")
	e.secretLeaf(beta, "payments", "api-production")

	e.now = start.Add(32 * time.Minute)
	if rep := e.run(files); len(rep.Actions) != 0 || rep.Reasons[decide.InSync] != 2 {
		t.Errorf("the pass after the rollout: actions %v reasons %v, want nothing", rep.Actions, rep.Reasons)
	}
	if st, err := inventory.LoadRollout(ctx, e.backend); err != nil || st.Active() {
		t.Errorf("after the rollout the backend still records %+v (%v)", st, err)
	}
	// Each leaf was reissued exactly once.
	for _, id := range []string{"staging/api", "production/api"} {
		if n := strings.Count(e.audit.String(), `"action":"reissue","certificate":"`+id+`"`); n != 1 {
			t.Errorf("%s was reissued %d times, want once:\n%s", id, n, e.audit.String())
		}
	}
}
