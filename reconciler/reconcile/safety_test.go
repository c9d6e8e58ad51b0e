package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
)

// dirCert is a certificate delivered to one directory only.
func dirCert(ns, name string) string {
	return fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  issuer: mtls
  dnsNames: [%[2]s.%[1]s.svc.cluster.local]
  duration: 24h
  targets:
    - directory: {path: %[1]s/%[2]s}
`, ns, name)
}

// runScoped renders only the files under path, as `--path path` reads them,
// and runs one pass.
func (e *env) runScoped(path string, files map[string]string) *reconcile.Result {
	e.t.Helper()
	scoped := map[string]string{}
	for p, c := range files {
		if strings.HasPrefix(p, path+"/") {
			scoped[p] = c
		}
	}
	snap := e.snapshot(scoped)
	snap.Scope = source.Scope{Path: path}
	res := render.Render(snap, e.catalog)
	rep, err := e.pass().Run(context.Background(), res, verdicts(res, e.catalog, e.now))
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func TestPruneWithAPathNeverTouchesOtherPaths(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{
		"teams/web/a.yaml": dirCert("web", "a"), "teams/web/b.yaml": dirCert("web", "b"),
		"teams/api/c.yaml": dirCert("api", "c"), "teams/api/d.yaml": dirCert("api", "d"),
	}
	e.run(files)
	e.prune = true
	// The other team's two certificates are exactly half of what is managed:
	// a share guard counting the whole fleet let this through.
	rep := e.runScoped("teams/web", files)
	if rep.Pruned != 0 || rep.Reasons["Orphaned"] != 0 {
		t.Fatalf("a pass scoped to teams/web: pruned %d, reasons %v", rep.Pruned, rep.Reasons)
	}
	e.dirLeaf("api/c")
	e.dirLeaf("api/d")

	// Inside the scope, a removed manifest is still pruned.
	delete(files, "teams/web/b.yaml")
	rep = e.runScoped("teams/web", files)
	if rep.Pruned != 1 || len(rep.Failures) != 0 {
		t.Fatalf("pruned %d (failures %v), want web/b only", rep.Pruned, rep.Failures)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "web", "b", "tls.crt")); !os.IsNotExist(err) {
		t.Errorf("web/b was not pruned: %v", err)
	}
	e.dirLeaf("web/a")
	e.dirLeaf("api/c")
	e.dirLeaf("api/d")
}

func TestASecondPassOnTheSameBackendIsRefusedAndNamesTheHolder(t *testing.T) {
	e := newEnv(t)
	lease, err := e.vault.Lock(context.Background(), "pass", backend.Holder{Actor: "ops@bastion", PID: 4242, Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	res := render.Render(e.snapshot(e.api()), e.catalog)
	_, err = e.pass().Run(context.Background(), res, verdicts(res, e.catalog, e.now))
	var locked *backend.LockedError
	if !errors.As(err, &locked) || !strings.Contains(err.Error(), "ops@bastion") || !strings.Contains(err.Error(), "4242") {
		t.Fatalf("a pass while another holds the lock: %v, want a LockedError naming ops@bastion pid 4242", err)
	}
	// A dry run (drift) changes nothing and needs no lock.
	if d := e.drift(e.api()); d.Counts["Missing"] == 0 {
		t.Errorf("drift while locked: %v", d.Counts)
	}
	lease.Release()
	if rep := e.run(e.api()); rep.Actions["issue"] != 1 {
		t.Errorf("after release: actions %v", rep.Actions)
	}
}

func TestTwoPassesAtOnceIssueEachCertificateOnce(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("teams/web/c%d.yaml", i)] = dirCert("web", fmt.Sprintf("c%d", i))
	}
	res := render.Render(e.snapshot(files), e.catalog)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	reps := make([]*reconcile.Result, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = e.pass().Run(context.Background(), res, verdicts(res, e.catalog, e.now))
		}()
	}
	wg.Wait()
	issued := 0
	for i := range 2 {
		var locked *backend.LockedError
		switch {
		case errs[i] == nil:
			issued += reps[i].Actions["issue"]
		case !errors.As(errs[i], &locked):
			t.Errorf("pass %d: %v", i, errs[i])
		}
	}
	if n := strings.Count(e.audit.String(), `"action":"issue"`); issued != 20 || n != 20 {
		t.Errorf("two passes at once issued %d certificates (%d audit lines), want each of the 20 once", issued, n)
	}
}

func TestACrashBetweenDeliveryAndRecordIsRepairedByTheNextPass(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.run(e.api())
	first := e.secretLeaf(alpha, "payments", "api-tls")
	recorded, err := inventory.Load(ctx, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	old := *recorded["payments/api"]

	// A renewal delivered everywhere, then the process died before it
	// recorded: the inventory still holds the first serial.
	e.now = e.now.Add(17 * time.Hour)
	e.run(e.api())
	renewed := e.secretLeaf(alpha, "payments", "api-tls")
	if serial(renewed) == serial(first) {
		t.Fatal("the second pass did not renew")
	}
	// Back to the real clock: the renewed certificate (issued now by Vault) is fresh.
	e.now = time.Now()
	if err := inventory.Put(ctx, e.backend, &old); err != nil {
		t.Fatal(err)
	}
	d := e.drift(e.api())
	if d.Counts["NotRecorded"] == 0 {
		t.Fatalf("drift after the lost record: %v, want NotRecorded", d.Counts)
	}
	for _, en := range d.Entries {
		if want := "the inventory records " + old.Serial; en.Reason == "NotRecorded" && !strings.Contains(en.Message, want) {
			t.Errorf("drift of %s says %q, want it to name the recorded serial (%s)", en.Target, en.Message, want)
		}
	}
	rep := e.run(e.api())
	if rep.Actions["record"] != 1 || rep.Actions["renew"]+rep.Actions["issue"]+rep.Actions["reissue"] != 0 || len(rep.Failures) != 0 {
		t.Fatalf("repairing pass: actions %v, failures %v; want one record and no issuance", rep.Actions, rep.Failures)
	}
	if d := e.drift(e.api()); drifted(d) {
		t.Errorf("drift after the repair: %+v", d.Entries)
	}
	now, err := inventory.Load(ctx, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	if got := now["payments/api"].Serial; got != serial(renewed) {
		t.Errorf("the inventory records %s, want the delivered %s", got, serial(renewed))
	}
	if !strings.Contains(e.audit.String(), `"action":"record"`) {
		t.Error("the repair is not in the audit log")
	}

	// The record lost entirely (a crash during the very first issuance).
	if err := inventory.Delete(ctx, e.backend, "payments/api"); err != nil {
		t.Fatal(err)
	}
	if d := e.drift(e.api()); d.Counts["NotRecorded"] == 0 {
		t.Fatalf("drift with no record at all: %v, want NotRecorded", d.Counts)
	}
	if rep := e.run(e.api()); rep.Actions["record"] != 1 || rep.Actions["issue"] != 0 {
		t.Fatalf("actions %v, want one record", rep.Actions)
	}
	if d := e.drift(e.api()); drifted(d) {
		t.Errorf("drift after the repair: %+v", d.Entries)
	}
}

func TestAPlantedKeyIsNeverCertified(t *testing.T) {
	e := newEnv(t)
	never := func(m string) string {
		return strings.Replace(m, "duration: 24h", "duration: 24h\n  privateKey: {rotationPolicy: Never}", 1)
	}
	e.run(e.api(never))
	// An attacker who can write the Secret plants a key of their own under a
	// self-signed certificate, keeping certfleet's labels and annotations.
	planted, _ := pki.GenerateKey("ECDSA", 256)
	rogue, _ := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "api.payments.svc.cluster.local"}, TTL: time.Hour, MaxPathLength: -1, Now: time.Now()})
	csr, _ := pki.CSR(planted, pki.Request{DNSNames: []string{"api.payments.svc.cluster.local"}})
	parsed, _ := pki.ParseCSR(csr)
	leaf, _ := rogue.Sign(parsed, pki.Profile{AllowAnyName: true}, time.Hour, time.Now())
	keyPEM, _ := pki.EncodeKey(planted, "PKCS8")
	for _, c := range []string{"alpha", "beta"} {
		cl := alpha
		if c == "beta" {
			cl = beta
		}
		s := e.secret(cl, "payments", "api-tls")
		s.Data["tls.crt"], s.Data["tls.key"] = pki.EncodeCertificate(leaf), keyPEM
		if _, err := clientset(t, cl).CoreV1().Secrets(s.Namespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The renewal time passes: rotationPolicy Never keeps a key — never this one.
	e.now = e.now.Add(17 * time.Hour)
	e.run(e.api(never))
	for _, got := range []string{"alpha", "beta"} {
		cl := alpha
		if got == "beta" {
			cl = beta
		}
		c := e.secretLeaf(cl, "payments", "api-tls")
		if pki.KeyMatches(planted, c) {
			t.Fatalf("%s: certfleet certified the planted key", got)
		}
	}
}

func TestASecretWithoutCertfleetsMarksIsLeftAloneUnlessAdopted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ca, _ := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "legacy"}, TTL: 48 * time.Hour, MaxPathLength: -1, Now: time.Now()})
	keyPEM, _ := pki.EncodeKey(ca.Key, "PKCS8")
	theirs := map[string][]byte{"tls.crt": pki.EncodeCertificate(ca.Cert), "tls.key": keyPEM}
	cs := clientset(t, alpha)
	if _, err := cs.CoreV1().Secrets(e.id+"-payments").Create(ctx, secretOf("api-tls", e.id+"-payments", theirs), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rep := e.run(e.api())
	if rep.Reasons["TakenOver"] != 1 {
		t.Errorf("reasons %v, want one TakenOver", rep.Reasons)
	}
	if s := e.secret(alpha, "payments", "api-tls"); string(s.Data["tls.crt"]) != string(theirs["tls.crt"]) {
		t.Fatal("certfleet overwrote a Secret it does not own")
	}
	e.secretLeaf(beta, "payments", "api-tls") // the other targets are delivered
	if d := e.drift(e.api()); d.Counts["TakenOver"] != 1 {
		t.Errorf("drift %v, want one TakenOver", d.Counts)
	}
	p := e.pass()
	p.Adopt = true
	res := render.Render(e.snapshot(e.api()), e.catalog)
	if _, err := p.Run(ctx, res, verdicts(res, e.catalog, e.now)); err != nil {
		t.Fatal(err)
	}
	if a, b := e.secretLeaf(alpha, "payments", "api-tls"), e.secretLeaf(beta, "payments", "api-tls"); serial(a) != serial(b) {
		t.Errorf("adopted target holds %s, the others %s", serial(a), serial(b))
	}
}

func secretOf(name, namespace string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Type: corev1.SecretTypeTLS, Data: data}
}

func TestARoleRefusalIsPermanentAndNotRetriedUntilTheIssuerChanges(t *testing.T) {
	e := newEnv(t)
	// The policy says nothing of URIs; the role allows only
	// spiffe://fleet.test/*: Vault refuses with a 400.
	bare := map[string]string{"teams/web/bare.yaml": `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: bare, namespace: web}
spec:
  issuer: mtls
  dnsNames: [bare.example.test]
  uris: ["spiffe://other.test/bare"]
  duration: 24h
  targets:
    - directory: {path: bare}
`}
	e.prune = false
	p := e.pass()
	p.RetryBackoff = time.Millisecond
	res := render.Render(e.snapshot(bare), e.catalog)
	rep, err := p.Run(context.Background(), res, verdicts(res, e.catalog, e.now))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 1 || rep.Items[0].ErrorKind != "Permanent" {
		t.Fatalf("first pass: items %+v, want one Permanent failure", rep.Items)
	}
	attempts := strings.Count(e.audit.String(), `"action":"issue-failed"`)
	for range 3 {
		e.now = e.now.Add(time.Hour) // long past any backoff
		rep = e.run(bare)
	}
	if n := strings.Count(e.audit.String(), `"action":"issue-failed"`); n != attempts {
		t.Errorf("a permanent refusal was retried: %d attempts after 3 more passes, want %d", n, attempts)
	}
	if rep.Reasons["PermanentFailure"] != 1 {
		t.Errorf("reasons %v, want PermanentFailure", rep.Reasons)
	}
	// The issuer changes: the certificate is tried again, and issued.
	iss := e.catalog.Issuers["mtls"]
	iss.Spec.AllowedURISANs = append(iss.Spec.AllowedURISANs, "spiffe://other.test/*")
	if err := e.backend.PutRole(context.Background(), iss, e.catalog.Authorities["root"]); err != nil {
		t.Fatal(err)
	}
	if rep := e.run(bare); rep.Actions["issue"] != 1 {
		t.Fatalf("after the issuer changed: actions %v, failures %v", rep.Actions, rep.Failures)
	}
	e.dirLeaf("bare")
}

// drifted reports drift of what the test declared: other tests' hand-made
// Secrets in the shared clusters show as Unmanaged, and are not its concern.
func drifted(d *reconcile.DriftReport) bool {
	for _, e := range d.Entries {
		if e.Reason != "Unmanaged" {
			return true
		}
	}
	return false
}

func TestDriftAndTheInventoryShowTheEffectiveValues(t *testing.T) {
	e := newEnv(t)
	d := e.drift(e.api())
	found := false
	for _, en := range d.Entries {
		if en.Certificate == "payments/api" {
			found = true
			if en.Effective == nil || en.Effective.TTL == "" || len(en.Effective.Usages) == 0 || en.Effective.SignatureAlgorithm == "" {
				t.Errorf("drift entry %s: effective %+v", en.Target, en.Effective)
			}
		}
	}
	if !found {
		t.Fatalf("no drift entry for payments/api: %+v", d.Entries)
	}
	e.run(e.api())
	inv, err := inventory.Load(context.Background(), e.backend)
	if err != nil {
		t.Fatal(err)
	}
	if eff := inv["payments/api"].Effective; eff == nil || eff.Subject == "" || len(eff.Usages) == 0 {
		t.Errorf("inventory effective values: %+v", eff)
	}
}

// slowPages is a backend whose inventory page writes take a while: a
// loaded Vault, or a 100,000-certificate inventory's pages.
type slowPages struct {
	backend.Backend
	delay time.Duration
}

func (s slowPages) Put(ctx context.Context, key string, v any) error {
	if strings.HasPrefix(key, "inventory/pages/") {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Backend.Put(ctx, key, v)
}

// A slow inventory save while the pass runs is waited for: only a
// cancelled pass bounds its recording (by a grace). Cut short, the pass
// left every certificate it delivered unrecorded.
func TestASlowInventorySaveIsNotCutShort(t *testing.T) {
	defer reconcile.SetRecordGrace(reconcile.SetRecordGrace(50 * time.Millisecond))
	e := newEnv(t)
	p := e.pass()
	p.Backend = slowPages{Backend: e.backend, delay: 500 * time.Millisecond}
	rep := e.runWith(p, e.api())
	if len(rep.Failures) != 0 || rep.Actions["issue"] == 0 {
		t.Fatalf("a pass whose inventory save took 10 graces: actions %v, failures %v; want issued and recorded", rep.Actions, rep.Failures)
	}
	inv, err := inventory.Load(context.Background(), e.backend)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := inv["payments/api"]; !ok || e.Serial == "" {
		t.Fatalf("payments/api is not recorded after the slow save: %+v", e)
	}
	if d := e.drift(e.api()); drifted(d) {
		t.Errorf("drift after the slow save: %+v", d.Entries)
	}
}
