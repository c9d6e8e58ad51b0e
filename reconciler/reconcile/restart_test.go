package reconcile_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/target"
)

// restartedCert is delivered to two Secrets whose workloads read them only
// when they start: web's Deployment exists, api's does not yet; api's
// probe dials a server that keeps serving a certificate of its own.
const restartedCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: web, namespace: web}
spec:
  issuer: mtls
  dnsNames: [web.example.test]
  duration: 24h
  targets:
    - kubernetes: {cluster: alpha, namespace: NS-web, secretName: web-tls}
      restart: {kind: Deployment, name: web}
    - kubernetes: {cluster: alpha, namespace: NS-web, secretName: api-tls}
      restart: {kind: Deployment, name: api}
      probe: {address: "PROBE"}
`

// deployment makes a Deployment that mounts a Secret (no controller runs
// on the test bed: it stays as written, with no pods).
func deployment(name, secret string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"team": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "registry.example.test/web:1"}},
					Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}}}}}
}

// staticServer serves a certificate that is not certfleet's, forever: a
// workload still running with what it loaded before certfleet delivered.
func staticServer(t *testing.T) *tlsServer {
	t.Helper()
	ca, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "before certfleet"}, KeyType: "ec", TTL: 24 * time.Hour, MaxPathLength: -1, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.EncodeKey(ca.Key, "PKCS8")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"tls.crt": pki.EncodeCertificate(ca.Cert), "tls.key": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := listenTLS(t)
	s.serve(t, dir, false)
	return s
}

// TestARestartRollsTheWorkloadOncePerDeliveredSerial: a dry run shows the
// restarts and touches nothing; a delivery sets the annotation `kubectl
// rollout restart` sets (and the serial restarted for) on the Deployment's
// pod template, and nothing else of it; a pass with nothing new does not
// touch it again; a reissue restarts it once more. A missing workload is
// that target's reported failure and never stops the delivery; once it
// exists, a probe still seeing another certificate past the grace
// (NotServed) restarts it — once.
func TestARestartRollsTheWorkloadOncePerDeliveredSerial(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := e.id + "-web"
	deployments := clientset(t, alpha).AppsV1().Deployments(ns)
	if _, err := deployments.Create(ctx, deployment("web", "web-tls"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	get := func(name string) *appsv1.Deployment {
		t.Helper()
		d, err := deployments.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	probe := staticServer(t)
	files := func(dnsNames string) map[string]string {
		m := strings.NewReplacer("PROBE", probe.addr(), "dnsNames: [web.example.test]", "dnsNames: "+dnsNames).Replace(restartedCert)
		return map[string]string{"teams/web/web.yaml": m}
	}
	created := get("web")

	p := e.pass()
	p.DryRun = true
	rep := e.runWith(p, files("[web.example.test]"))
	if rep.Restarted != 2 || len(rep.Items) != 2 || rep.Items[1].Restart != "Deployment "+ns+"/web" || rep.Items[0].Restart != "Deployment "+ns+"/api" {
		t.Fatalf("dry run: restarted %d, items %+v; want both workloads shown", rep.Restarted, rep.Items)
	}
	var text strings.Builder
	if err := rep.Text(&text); err != nil || !strings.Contains(text.String(), "→ restart Deployment "+ns+"/web") {
		t.Errorf("the dry run's text does not show the restart (%v):\n%s", err, text.String())
	}
	if d := get("web"); d.ResourceVersion != created.ResourceVersion || strings.Contains(e.audit.String(), `"restart`) {
		t.Fatalf("the dry run touched the Deployment (resourceVersion %s → %s) or logged a restart:\n%s", created.ResourceVersion, d.ResourceVersion, e.audit.String())
	}

	// The delivery restarts web; api's Deployment is missing: reported, delivered anyway.
	rep = e.run(files("[web.example.test]"))
	first := serial(e.secretLeaf(alpha, "web", "web-tls"))
	if rep.Actions["issue"] != 1 || rep.Restarted != 1 || serial(e.secretLeaf(alpha, "web", "api-tls")) != first {
		t.Fatalf("first pass: actions %v restarted %d failures %v", rep.Actions, rep.Restarted, rep.Failures)
	}
	if len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].String(), "Deployment "+ns+"/api") ||
		!strings.Contains(rep.Failures[0].String(), target.ErrNoWorkload.Error()) {
		t.Errorf("the missing workload: failures %v, want one naming Deployment %s/api", rep.Failures, ns)
	}
	web := get("web")
	ann := web.Spec.Template.Annotations
	if at, err := time.Parse(time.RFC3339, ann[target.AnnRestartedAt]); err != nil || !at.Equal(e.now.UTC().Truncate(time.Second)) {
		t.Errorf("restartedAt %q (%v), want the pass's time %s", ann[target.AnnRestartedAt], err, e.now.UTC().Format(time.RFC3339))
	}
	if ann[target.AnnRestartedFor] != first || ann["team"] != "web" || web.Generation != created.Generation+1 {
		t.Errorf("template annotations %v generation %d: want restarted for %s, the owner's annotation kept, one new generation", ann, web.Generation, first)
	}
	// certfleet owns the two annotations and nothing else of the Deployment.
	owned := 0
	for _, f := range web.ManagedFields {
		if f.Manager != target.FieldManager {
			continue
		}
		owned++
		want := `{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:certfleet.dev/restarted-for-serial":{},"f:kubectl.kubernetes.io/restartedAt":{}}}}}}`
		var got, w any
		_ = json.Unmarshal(f.FieldsV1.GetRawBytes(), &got)
		_ = json.Unmarshal([]byte(want), &w)
		if g, _ := json.Marshal(got); string(g) != mustJSON(w) {
			t.Errorf("certfleet's fields on the Deployment: %s, want %s", g, want)
		}
	}
	if owned != 1 {
		t.Errorf("certfleet manages %d field sets of the Deployment, want 1: %+v", owned, web.ManagedFields)
	}
	audit := e.audit.String()
	if !strings.Contains(audit, `"action":"restart","certificate":"web/web","target":"kubernetes/alpha/`+ns+`/web-tls","reason":"Missing","serial":"`+first+`"`) ||
		!strings.Contains(audit, `"workload":"Deployment `+ns+`/web"`) || !strings.Contains(audit, `"action":"restart-failed"`) {
		t.Errorf("audit log: want a restart line for web and a restart-failed one for api:\n%s", audit)
	}

	// Nothing changed: the Deployment is not touched again.
	rep = e.run(files("[web.example.test]"))
	if again := get("web"); again.ResourceVersion != web.ResourceVersion || rep.Restarted != 0 || len(rep.Actions) != 0 {
		t.Fatalf("a pass with nothing new: resourceVersion %s → %s, restarted %d, actions %v", web.ResourceVersion, again.ResourceVersion, rep.Restarted, rep.Actions)
	}

	// The SAN change reissues: one restart for the new serial.
	e.now = e.now.Add(time.Minute)
	rep = e.run(files("[web.example.test, www.web.example.test]"))
	second := serial(e.secretLeaf(alpha, "web", "web-tls"))
	web2 := get("web")
	if rep.Actions["reissue"] != 1 || rep.Restarted != 1 || second == first || web2.Generation != web.Generation+1 ||
		web2.Spec.Template.Annotations[target.AnnRestartedFor] != second+","+first {
		t.Fatalf("reissue: actions %v restarted %d generation %d annotations %v", rep.Actions, rep.Restarted, web2.Generation, web2.Spec.Template.Annotations)
	}

	// api's Deployment appears; past the grace its probe still sees another
	// certificate: NotServed, and restarted for the delivered serial, once.
	if _, err := deployments.Create(ctx, deployment("api", "api-tls"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(10 * time.Minute)
	rep = e.run(files("[web.example.test, www.web.example.test]"))
	api := get("api")
	if rep.Reasons[decide.NotServed] != 1 || rep.Restarted != 1 || api.Spec.Template.Annotations[target.AnnRestartedFor] != second || len(rep.Failures) != 0 {
		t.Fatalf("NotServed: reasons %v restarted %d failures %v annotations %v", rep.Reasons, rep.Restarted, rep.Failures, api.Spec.Template.Annotations)
	}
	if !strings.Contains(e.audit.String(), `"action":"restart","certificate":"web/web","target":"kubernetes/alpha/`+ns+`/api-tls","reason":"NotServed","serial":"`+second+`"`) {
		t.Errorf("no restart line for NotServed:\n%s", e.audit.String())
	}
	e.now = e.now.Add(10 * time.Minute)
	rep = e.run(files("[web.example.test, www.web.example.test]"))
	if again := get("api"); rep.Reasons[decide.NotServed] != 1 || rep.Restarted != 0 || again.ResourceVersion != api.ResourceVersion {
		t.Errorf("still NotServed after the restart: reasons %v restarted %d resourceVersion %s → %s; want no second restart",
			rep.Reasons, rep.Restarted, api.ResourceVersion, again.ResourceVersion)
	}
	if web3 := get("web"); web3.ResourceVersion != web2.ResourceVersion {
		t.Errorf("web was touched again without a new certificate")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
