package reconcile_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

var (
	vaultServer      *testbed.Vault
	alpha, beta      *testbed.Cluster
	kubeconfig       string
	runID            atomic.Int64
	testNamespaces   = []string{"payments", "web"}
	errNotConfigured = fmt.Errorf("cluster not in the catalog")
)

func TestMain(m *testing.M) {
	testbed.Main(m, func(w *testbed.World) {
		vaultServer, alpha, beta, kubeconfig = w.Vault, w.Clusters[0], w.Clusters[1], w.Kubeconfig
	}, "alpha", "beta")
}

// env is one test's world: its own catalog mount and PKI mount in the
// shared Vault, its own namespaces' worth of Secrets, its own directory.
type env struct {
	t       testing.TB
	id      string
	backend backend.Backend
	vault   *backend.Vault
	catalog *schemas.Catalog
	dir     string
	audit   bytes.Buffer
	now     time.Time
	prune   bool
	force   bool
}

func newEnv(t testing.TB) *env {
	t.Helper()
	id := fmt.Sprintf("r%d", runID.Add(1))
	ctx := context.Background()
	v := mustVault(t, vaultServer.Addr, id).(*backend.Vault)
	cat, errs := schemas.DecodeCatalog("pki.yaml", []byte(testbed.FleetPKI(id+"-pki")))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := backend.Apply(ctx, v, cat); err != nil {
		t.Fatal(err)
	}
	cat, err := backend.LoadCatalog(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*testbed.Cluster{alpha, beta} {
		cs := clientset(t, c)
		for _, ns := range namespaces(id) {
			_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
		}
	}
	return &env{t: t, id: id, backend: v, vault: v, catalog: cat, dir: t.TempDir(), now: time.Now()}
}

func namespaces(id string) []string {
	out := make([]string, len(testNamespaces))
	for i, n := range testNamespaces {
		out[i] = id + "-" + n
	}
	return out
}

func clientset(t testing.TB, c *testbed.Cluster) *kubernetes.Clientset {
	t.Helper()
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// manifests substitutes the test's ID into NS (namespaces are per test).
func (e *env) snapshot(files map[string]string) *source.Snapshot {
	s := &source.Snapshot{Revision: source.Revision{Ref: "main", Hash: strings.Repeat("a", 40), Author: "alice"}}
	for p, c := range files {
		s.Files = append(s.Files, source.File{Path: p, Data: []byte(strings.ReplaceAll(c, "NS-", e.id+"-"))})
	}
	return s
}

func (e *env) pass() *reconcile.Pass {
	conn := &cluster.Connector{Kubeconfig: kubeconfig}
	cat := e.catalog
	return &reconcile.Pass{
		Backend: e.backend, Catalog: cat,
		Kube: &target.Kube{Clients: func(ctx context.Context, name string) (kubernetes.Interface, error) {
			cl, ok := cat.Clusters[name]
			if !ok {
				return nil, errNotConfigured
			}
			return conn.Client(ctx, cl)
		}},
		Vault: &target.VaultKV{Client: e.vault.Client()}, Dir: &target.Directory{Root: e.dir},
		Audit: inventory.NewAudit(&e.audit), Actor: "test@host",
		Now: func() time.Time { return e.now }, Prune: e.prune, Force: e.force,
	}
}

// run renders files and runs one pass.
func (e *env) run(files map[string]string) *reconcile.Result {
	e.t.Helper()
	return e.runWith(e.pass(), files)
}

// runWith renders files and runs one pass of p; a shard's pass renders
// as the command does, holding only the shard's share (Sharding.Keep).
func (e *env) runWith(p *reconcile.Pass, files map[string]string) *reconcile.Result {
	e.t.Helper()
	res := render.NewRenderer(render.WithKeep(p.Shard.Keep())).Render(e.snapshot(files), e.catalog)
	if len(res.Errors) > 0 {
		e.t.Fatalf("render: %v", res.Errors)
	}
	rep, err := p.Run(context.Background(), res, verdicts(res, e.catalog, e.now))
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func (e *env) drift(files map[string]string) *reconcile.DriftReport {
	e.t.Helper()
	res := render.Render(e.snapshot(files), e.catalog)
	rep, err := e.pass().Drift(context.Background(), res, verdicts(res, e.catalog, e.now))
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func verdicts(res *render.Result, cat *schemas.Catalog, now time.Time) map[string]schemas.CertificateVerdict {
	return evaluate.New(cat, now).ByID(res.Desired)
}

func (e *env) secret(c *testbed.Cluster, ns, name string) *corev1.Secret {
	e.t.Helper()
	s, err := clientset(e.t, c).CoreV1().Secrets(e.id+"-"+ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("Secret %s/%s in %s: %v", ns, name, c.Name, err)
	}
	return s
}

// leaf parses a delivered bundle and checks it the way a TLS client would:
// the chain verifies to the root, and the key belongs to the certificate.
func (e *env) leaf(crt, key, ca []byte) *x509.Certificate {
	e.t.Helper()
	certs, err := pki.ParseCertificates(crt)
	if err != nil {
		e.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		e.t.Fatal("ca.crt holds no certificate")
	}
	if root := e.catalog.Authorities["root"].Status.Certificate; strings.TrimSpace(string(ca)) != strings.TrimSpace(root) {
		e.t.Error("ca.crt is not the authority's root certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		e.t.Errorf("the delivered certificate does not chain to the root: %v", err)
	}
	k, err := pki.ParseKey(key)
	if err != nil {
		e.t.Fatal(err)
	}
	if !pki.KeyMatches(k, certs[0]) {
		e.t.Error("tls.key does not belong to tls.crt")
	}
	return certs[0]
}

func (e *env) secretLeaf(c *testbed.Cluster, ns, name string) *x509.Certificate {
	e.t.Helper()
	s := e.secret(c, ns, name)
	return e.leaf(s.Data["tls.crt"], s.Data["tls.key"], s.Data["ca.crt"])
}

func (e *env) dirLeaf(path string) *x509.Certificate {
	e.t.Helper()
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(e.dir, path, n))
		if err != nil {
			e.t.Fatal(err)
		}
		return b
	}
	return e.leaf(read("tls.crt"), read("tls.key"), read("ca.crt"))
}

// A certificate for both prod clusters (by selector), a directory and Vault KV.
const apiCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: api, namespace: payments}
spec:
  issuer: mtls
  commonName: api.payments.svc.cluster.local
  dnsNames: [api.payments.svc.cluster.local]
  uris: ["spiffe://fleet.test/ns/payments/sa/api"]
  duration: 24h
  targets:
    - kubernetes:
        clusterSelector: {matchLabels: {env: prod}}
        namespace: NS-payments
        secretName: api-tls
        secretTemplate:
          labels: {team: payments}
    - directory: {path: api}
    - vaultKV: {mount: MOUNT, path: tls/api}
`

func (e *env) api(edit ...func(string) string) map[string]string {
	m := strings.ReplaceAll(apiCert, "MOUNT", e.id+"-catalog")
	for _, f := range edit {
		m = f(m)
	}
	return map[string]string{"teams/payments/api.yaml": m}
}

func serial(c *x509.Certificate) string { return pki.Serial(c.SerialNumber) }

func TestInitialIssuanceIntoTwoClustersADirectoryAndVaultKV(t *testing.T) {
	e := newEnv(t)
	rep := e.run(e.api())
	if rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("report: actions %v, failures %v", rep.Actions, rep.Failures)
	}
	a := e.secretLeaf(alpha, "payments", "api-tls")
	b := e.secretLeaf(beta, "payments", "api-tls")
	d := e.dirLeaf("api")
	if serial(a) != serial(b) || serial(a) != serial(d) {
		t.Errorf("targets hold different certificates: %s %s %s", serial(a), serial(b), serial(d))
	}
	if len(a.DNSNames) != 1 || a.DNSNames[0] != "api.payments.svc.cluster.local" || len(a.URIs) != 1 || a.URIs[0].String() != "spiffe://fleet.test/ns/payments/sa/api" {
		t.Errorf("SANs = %v %v", a.DNSNames, a.URIs)
	}
	if got := a.NotAfter.Sub(a.NotBefore); got < 24*time.Hour || got > 24*time.Hour+time.Minute {
		t.Errorf("lifetime %s, want 24h", got)
	}
	s := e.secret(alpha, "payments", "api-tls")
	if s.Type != corev1.SecretTypeTLS || s.Labels["app.kubernetes.io/managed-by"] != "certfleet" || s.Labels["team"] != "payments" ||
		s.Annotations["cert-manager.io/uri-sans"] != "spiffe://fleet.test/ns/payments/sa/api" || s.Annotations[target.AnnSerial] != serial(a) {
		t.Errorf("Secret metadata: type %s, labels %v, annotations %v", s.Type, s.Labels, s.Annotations)
	}
	owned := false
	for _, mf := range s.ManagedFields {
		owned = owned || mf.Manager == "certfleet"
	}
	if !owned {
		t.Error("the Secret's fields are not certfleet's (field manager certfleet)")
	}
	kv, err := e.vault.Client().KVv2(e.id+"-catalog").Get(context.Background(), "tls/api")
	if err != nil {
		t.Fatal(err)
	}
	v := e.leaf([]byte(kv.Data["tls.crt"].(string)), []byte(kv.Data["tls.key"].(string)), []byte(kv.Data["ca.crt"].(string)))
	if serial(v) != serial(a) {
		t.Error("Vault KV holds another certificate")
	}
	if info, err := os.Stat(filepath.Join(e.dir, "api", "tls.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode: %v %v", info, err)
	}
	inv, err := inventory.Load(context.Background(), e.backend)
	if err != nil {
		t.Fatal(err)
	}
	if en := inv["payments/api"]; en == nil || en.Serial != serial(a) || en.Author != "alice" || len(en.Targets) != 4 {
		t.Errorf("inventory entry = %+v", en)
	}
	if strings.Contains(e.audit.String(), "PRIVATE KEY") || !strings.Contains(e.audit.String(), `"action":"issue"`) {
		t.Errorf("audit log:\n%s", e.audit.String())
	}
	// A second pass has nothing to do.
	rep = e.run(e.api())
	if len(rep.Actions) != 0 || rep.Reasons["InSync"] != 4 {
		t.Errorf("second pass: actions %v, reasons %v", rep.Actions, rep.Reasons)
	}
}

func TestRenewalWhenTheRenewalTimePasses(t *testing.T) {
	e := newEnv(t)
	e.run(e.api())
	before := e.secretLeaf(alpha, "payments", "api-tls")
	e.now = e.now.Add(17 * time.Hour) // past 2/3 of 24h
	rep := e.run(e.api())
	if rep.Actions["renew"] != 1 {
		t.Fatalf("actions %v, want a renewal", rep.Actions)
	}
	after := e.secretLeaf(alpha, "payments", "api-tls")
	if serial(after) == serial(before) {
		t.Error("the certificate was not renewed")
	}
	if d := e.dirLeaf("api"); serial(d) != serial(after) {
		t.Error("the directory did not get the renewed certificate")
	}
}

func TestASANChangeReissuesAndALabelChangeUpdates(t *testing.T) {
	e := newEnv(t)
	e.run(e.api())
	first := e.secretLeaf(alpha, "payments", "api-tls")

	labelled := e.api(func(m string) string {
		return strings.Replace(m, "{team: payments}", "{team: payments, tier: gold}", 1)
	})
	rep := e.run(labelled)
	if rep.Actions["update"] != 1 || rep.Reasons["TemplateChanged"] != 2 {
		t.Fatalf("label change: actions %v reasons %v", rep.Actions, rep.Reasons)
	}
	s := e.secret(beta, "payments", "api-tls")
	if s.Labels["tier"] != "gold" || serial(e.secretLeaf(beta, "payments", "api-tls")) != serial(first) {
		t.Errorf("label change: labels %v, serial kept %v", s.Labels, serial(e.secretLeaf(beta, "payments", "api-tls")) == serial(first))
	}

	widened := e.api(func(m string) string {
		m = strings.Replace(m, "{team: payments}", "{team: payments, tier: gold}", 1)
		return strings.Replace(m, "dnsNames: [api.payments.svc.cluster.local]", "dnsNames: [api.payments.svc.cluster.local, api.example.test]", 1)
	})
	rep = e.run(widened)
	if rep.Actions["reissue"] != 1 {
		t.Fatalf("SAN change: actions %v", rep.Actions)
	}
	again := e.secretLeaf(alpha, "payments", "api-tls")
	if serial(again) == serial(first) || len(again.DNSNames) != 2 {
		t.Errorf("SAN change: serial %s (was %s), SANs %v", serial(again), serial(first), again.DNSNames)
	}
}

func TestASecretEditedByHandIsDriftAndTheNextPassHealsIt(t *testing.T) {
	e := newEnv(t)
	e.run(e.api())
	good := e.secretLeaf(alpha, "payments", "api-tls")
	// Someone pastes another (valid) certificate and key over the Secret.
	otherKey, _ := pki.GenerateKey("ECDSA", 256)
	ca, _ := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "rogue"}, TTL: time.Hour, MaxPathLength: -1, Now: time.Now()})
	csr, _ := pki.CSR(otherKey, pki.Request{DNSNames: []string{"api.payments.svc.cluster.local"}})
	parsed, _ := pki.ParseCSR(csr)
	rogue, _ := ca.Sign(parsed, pki.Profile{AllowAnyName: true}, time.Hour, time.Now())
	keyPEM, _ := pki.EncodeKey(otherKey, "PKCS8")
	s := e.secret(alpha, "payments", "api-tls")
	s.Data["tls.crt"], s.Data["tls.key"] = pki.EncodeCertificate(rogue), keyPEM
	if _, err := clientset(t, alpha).CoreV1().Secrets(s.Namespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	drift := e.drift(e.api())
	if drift.Counts["ModifiedOutOfBand"] != 1 || !drift.Drifted() {
		t.Fatalf("drift counts %v, want one ModifiedOutOfBand", drift.Counts)
	}
	for _, en := range drift.Entries {
		if en.Reason == "ModifiedOutOfBand" && !strings.Contains(en.Message, "not what certfleet wrote") {
			t.Errorf("drift of %s says %q, not why", en.Target, en.Message)
		}
	}
	rep := e.run(e.api())
	if rep.Reasons["ModifiedOutOfBand"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("healing pass: reasons %v failures %v", rep.Reasons, rep.Failures)
	}
	healed := e.secretLeaf(alpha, "payments", "api-tls")
	if serial(healed) != serial(good) {
		t.Errorf("healed with serial %s, want the healthy copy %s from the other targets", serial(healed), serial(good))
	}
	if d := e.drift(e.api()); d.Drifted() {
		t.Errorf("still drifted after healing: %+v", d.Entries)
	}
}

func TestARemovedManifestIsOrphanedAndPrunedOnlyWithPrune(t *testing.T) {
	e := newEnv(t)
	www := `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: www, namespace: web}
spec:
  issuer: mtls
  dnsNames: [www.example.test]
  duration: 24h
  targets:
    - kubernetes: {cluster: alpha, namespace: NS-web, secretName: www-tls}
    - directory: {path: www}
`
	both := e.api()
	both["teams/web/www.yaml"] = www
	e.run(both)
	e.secretLeaf(alpha, "web", "www-tls")

	rep := e.run(e.api())
	if rep.Reasons["Orphaned"] != 2 || rep.Pruned != 0 {
		t.Fatalf("without --prune: reasons %v, pruned %d", rep.Reasons, rep.Pruned)
	}
	e.secretLeaf(alpha, "web", "www-tls") // still there
	if d := e.drift(e.api()); d.Counts["Orphaned"] != 2 {
		t.Errorf("drift counts %v, want 2 Orphaned", d.Counts)
	}
	e.prune = true
	rep = e.run(e.api())
	if rep.Pruned != 2 || len(rep.Failures) != 0 {
		t.Fatalf("with --prune: pruned %d, failures %v", rep.Pruned, rep.Failures)
	}
	if _, err := clientset(t, alpha).CoreV1().Secrets(e.id+"-web").Get(context.Background(), "www-tls", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the orphaned Secret is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "www", "tls.crt")); !os.IsNotExist(err) {
		t.Errorf("the orphaned directory still holds tls.crt: %v", err)
	}
	e.secretLeaf(alpha, "payments", "api-tls") // the declared one stays
}

func TestAnEmptyRenderWithPruneIsRefused(t *testing.T) {
	e := newEnv(t)
	e.run(e.api())
	e.prune = true
	rep := e.run(map[string]string{})
	if rep.Pruned != 0 || !strings.Contains(rep.PruneRefused, "renders no certificate") {
		t.Fatalf("pruned %d, refused %q", rep.Pruned, rep.PruneRefused)
	}
	e.secretLeaf(alpha, "payments", "api-tls")
	e.dirLeaf("api")
}

func TestRotationPolicyNeverKeepsTheKey(t *testing.T) {
	e := newEnv(t)
	never := func(m string) string {
		return strings.Replace(m, "duration: 24h", "duration: 24h\n  privateKey: {rotationPolicy: Never}", 1)
	}
	e.run(e.api(never))
	before := e.secret(alpha, "payments", "api-tls")
	e.now = e.now.Add(17 * time.Hour)
	rep := e.run(e.api(never))
	if rep.Actions["renew"] != 1 {
		t.Fatalf("actions %v", rep.Actions)
	}
	after := e.secret(alpha, "payments", "api-tls")
	if !bytes.Equal(before.Data["tls.key"], after.Data["tls.key"]) || bytes.Equal(before.Data["tls.crt"], after.Data["tls.crt"]) {
		t.Error("rotationPolicy Never: want the same key and a new certificate")
	}
	// Always (the default) makes a new key.
	e.now = e.now.Add(17 * time.Hour)
	e.run(e.api())
	if again := e.secret(alpha, "payments", "api-tls"); bytes.Equal(after.Data["tls.key"], again.Data["tls.key"]) {
		t.Error("rotationPolicy Always kept the key")
	}
}

func TestUnmanagedSecretsAreReportedAsSprawl(t *testing.T) {
	e := newEnv(t)
	e.run(e.api())
	ca, _ := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "legacy"}, TTL: 48 * time.Hour, MaxPathLength: -1, Now: time.Now()})
	keyPEM, _ := pki.EncodeKey(ca.Key, "PKCS8")
	_, err := clientset(t, beta).CoreV1().Secrets(e.id+"-web").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hand-made", Namespace: e.id + "-web"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": pki.EncodeCertificate(ca.Cert), "tls.key": keyPEM}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := e.drift(e.api())
	found := false
	for _, en := range d.Entries {
		if en.Reason == "Unmanaged" && en.Target == "kubernetes/beta/"+e.id+"-web/hand-made" && !en.NotAfter.IsZero() {
			found = true
		}
	}
	if !found {
		t.Errorf("the hand-made TLS Secret is not reported as Unmanaged: %+v", d.Entries)
	}
}

func TestOneClusterDownTheOtherStillConverges(t *testing.T) {
	e := newEnv(t)
	down := *e.catalog
	down.Clusters = map[string]*schemas.Cluster{}
	for n, c := range e.catalog.Clusters {
		cp := *c
		if n == "beta" {
			cp.Spec.Credentials.KubeconfigContext = ""
			cp.Spec.Server = "https://127.0.0.1:1" // nothing listens there
			cp.Spec.Credentials.VaultKVPath = "nowhere/x"
		}
		down.Clusters[n] = &cp
	}
	e.catalog = &down
	rep := e.run(e.api())
	if rep.Actions["issue"] != 1 {
		t.Fatalf("actions %v, failures %v", rep.Actions, rep.Failures)
	}
	e.secretLeaf(alpha, "payments", "api-tls")
	e.dirLeaf("api")
	named := false
	for _, f := range rep.Failures {
		named = named || strings.Contains(f.String(), "kubernetes/beta")
	}
	if !named || rep.Reasons["Unreachable"] != 1 {
		t.Errorf("the report does not name the unreachable cluster: failures %v reasons %v", rep.Failures, rep.Reasons)
	}
}

// switchable is a proxy in front of Vault that can refuse signing requests
// after a number of them: Vault "stopping" in the middle of a pass.
type switchable struct {
	signs, allow atomic.Int64
}

func (s *switchable) start(t *testing.T) string {
	return vaultProxy(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/sign/") && s.signs.Add(1) > s.allow.Load() {
			http.Error(w, "vault is down", http.StatusServiceUnavailable)
			return false
		}
		return true
	})
}

// vaultProxy is a proxy in front of the test bed's Vault: pass sees each
// request first and says whether it goes on to Vault.
func vaultProxy(t testing.TB, pass func(w http.ResponseWriter, r *http.Request) bool) string {
	u, _ := url.Parse(vaultServer.Addr)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pass(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestVaultStoppingMidPassRemovesNothingAndTheNextPassConverges(t *testing.T) {
	var sw switchable
	sw.allow.Store(1 << 30)
	e := newEnv(t)
	e.backend = mustVault(t, sw.start(t), e.id) // the pass reaches Vault through the switch
	files := e.api()
	for i := 0; i < 4; i++ {
		files[fmt.Sprintf("teams/web/w%d.yaml", i)] = fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: w%d, namespace: web}
spec:
  issuer: mtls
  dnsNames: [w%d.example.test]
  duration: 24h
  targets:
    - kubernetes: {cluster: alpha, namespace: NS-web, secretName: w%d-tls}
`, i, i, i)
	}
	e.run(files)
	first := e.secretLeaf(alpha, "payments", "api-tls")
	// Everything is due for renewal; Vault signs two requests, then stops.
	e.now = e.now.Add(17 * time.Hour)
	sw.signs.Store(0)
	sw.allow.Store(2)
	rep := e.run(files)
	if len(rep.Failures) == 0 || rep.Actions["renew"] != 2 {
		t.Fatalf("actions %v failures %v: want two renewals and failures", rep.Actions, rep.Failures)
	}
	// Every certificate is still delivered and valid: old or renewed, none removed.
	e.secretLeaf(alpha, "payments", "api-tls")
	for i := 0; i < 4; i++ {
		e.secretLeaf(alpha, "web", fmt.Sprintf("w%d-tls", i))
	}
	inv, _ := inventory.Load(context.Background(), e.backend)
	failing := 0
	for _, en := range inv {
		if en.FailingSince() != nil {
			failing++
		}
	}
	if failing != 3 {
		t.Errorf("%d inventory entries say they are failing, want 3", failing)
	}
	sw.allow.Store(1 << 30)
	rep = e.run(files)
	// The three that failed are renewed now. (The test's clock runs 17h
	// ahead of Vault's, so the two renewed before are due again too.)
	if len(rep.Failures) != 0 || rep.Actions["renew"] < 3 {
		t.Fatalf("after Vault is back: actions %v failures %v", rep.Actions, rep.Failures)
	}
	if serial(e.secretLeaf(alpha, "payments", "api-tls")) == serial(first) {
		t.Error("the api certificate was never renewed")
	}
	inv, _ = inventory.Load(context.Background(), e.backend)
	for _, en := range inv {
		if en.FailingSince() != nil {
			t.Errorf("%s still failing after convergence: %s", en.ID, en.Failures())
		}
	}
}

func mustVault(t testing.TB, addr, id string) backend.Backend {
	v, err := backend.OpenVault(context.Background(), backend.VaultConfig{Address: addr, Token: vaultServer.Token, CatalogMount: id + "-catalog"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fleetTrustBundle publishes the root to both prod clusters and a directory.
const fleetTrustBundle = `apiVersion: certfleet.dev/v1alpha1
kind: TrustBundle
metadata: {name: fleet}
spec:
  authorities: [root]
  targets:
    - kubernetes: {clusterSelector: {matchLabels: {env: prod}}, namespace: NS-payments, name: fleet-ca}
    - directory: {path: trust}
`

func TestTrustBundlesArePublishedToClustersAndDirectories(t *testing.T) {
	e := newEnv(t)
	files := e.api()
	files["trust.yaml"] = fleetTrustBundle
	rep := e.run(files)
	if rep.TrustBundles != 3 || len(rep.Failures) != 0 {
		t.Fatalf("trust bundle targets written %d, failures %v", rep.TrustBundles, rep.Failures)
	}
	root := strings.TrimSpace(e.catalog.Authorities["root"].Status.Certificate)
	for _, c := range []*testbed.Cluster{alpha, beta} {
		cm, err := clientset(t, c).CoreV1().ConfigMaps(e.id+"-payments").Get(context.Background(), "fleet-ca", metav1.GetOptions{})
		if err != nil || strings.TrimSpace(cm.Data["ca.crt"]) != root {
			t.Errorf("cluster %s: ConfigMap fleet-ca: %v %q", c.Name, err, cm.Data["ca.crt"])
		}
	}
	b, err := os.ReadFile(filepath.Join(e.dir, "trust", "ca.crt"))
	if err != nil || strings.TrimSpace(string(b)) != root {
		t.Errorf("directory trust/ca.crt: %v", err)
	}
	// The delivered leaf verifies against the published bundle.
	e.dirLeaf("api")
}

// TestRotationReissuesOnlyOnceEveryBundleTrustsTheNewCA: after the fleet's
// authority rotates, a pass publishes old + new in every trust bundle and
// reads each back; while one bundle place cannot take the new CA, the
// leaves of the old CA are kept (AwaitingTrust), and once every place holds
// it they are reissued under the new CA (AuthorityRotated), once.
func TestRotationReissuesOnlyOnceEveryBundleTrustsTheNewCA(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	files := e.api()
	files["trust.yaml"] = fleetTrustBundle
	if rep := e.run(files); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("first pass: actions %v failures %v", rep.Actions, rep.Failures)
	}
	before := e.dirLeaf("api")
	oldCA := strings.TrimSpace(e.catalog.Authorities["root"].Status.Certificate)

	if err := backend.RotateAuthority(ctx, e.backend, e.catalog.Authorities["root"]); err != nil {
		t.Fatal(err)
	}
	cat, err := backend.LoadCatalog(ctx, e.backend)
	if err != nil {
		t.Fatal(err)
	}
	e.catalog = cat
	newCA := strings.TrimSpace(cat.Authorities["root"].Status.Certificate)
	if newCA == oldCA {
		t.Fatal("the rotation made no new CA")
	}

	// One bundle place cannot be written: a file sits where its directory goes.
	trust := filepath.Join(e.dir, "trust")
	if err := os.RemoveAll(trust); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trust, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := e.run(files)
	if rep.Reasons["AwaitingTrust"] == 0 || len(rep.Actions) != 0 {
		t.Fatalf("with a bundle place lacking the new CA: actions %v reasons %v, want AwaitingTrust and nothing issued", rep.Actions, rep.Reasons)
	}
	if got := rep.Failures.String(); !strings.Contains(got, "trust bundle fleet at directory trust") {
		t.Errorf("the failure does not name the bundle place that failed: %s", got)
	}
	held, err := os.ReadFile(filepath.Join(e.dir, "api", "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := pki.ParseCertificate(held); err != nil || serial(c) != serial(before) {
		t.Fatalf("a leaf was reissued under a CA some trust bundle does not hold (%v)", err)
	}
	for _, c := range []*testbed.Cluster{alpha, beta} {
		cm, err := clientset(t, c).CoreV1().ConfigMaps(e.id+"-payments").Get(ctx, "fleet-ca", metav1.GetOptions{})
		if err != nil || !strings.Contains(cm.Data["ca.crt"], newCA) || !strings.Contains(cm.Data["ca.crt"], oldCA) {
			t.Errorf("cluster %s: the bundle does not hold old and new: %v", c.Name, err)
		}
	}

	if err := os.Remove(trust); err != nil {
		t.Fatal(err)
	}
	rep = e.run(files)
	if rep.Reasons["AuthorityRotated"] == 0 || len(rep.Failures) != 0 {
		t.Fatalf("once every bundle holds the new CA: actions %v reasons %v failures %v", rep.Actions, rep.Reasons, rep.Failures)
	}
	after := e.dirLeaf("api") // verifies against the directory's ca.crt
	newCert, err := pki.ParseCertificate([]byte(newCA))
	if err != nil {
		t.Fatal(err)
	}
	if serial(after) == serial(before) || after.CheckSignatureFrom(newCert) != nil {
		t.Error("the leaf was not reissued under the new CA")
	}
	if b, err := os.ReadFile(filepath.Join(trust, "ca.crt")); err != nil || !strings.Contains(string(b), newCA) || !strings.Contains(string(b), oldCA) {
		t.Errorf("the directory bundle does not hold old and new: %v", err)
	}
	// No delivered leaf depends on the old CA any more: the next pass, which
	// sees every target, drops it from every bundle — the rotation is over.
	if rep := e.run(files); len(rep.Actions) != 0 || len(rep.Failures) != 0 {
		t.Errorf("the pass after the reissue: actions %v failures %v, want nothing", rep.Actions, rep.Failures)
	}
	if b, err := os.ReadFile(filepath.Join(trust, "ca.crt")); err != nil || !strings.Contains(string(b), newCA) || strings.Contains(string(b), oldCA) {
		t.Errorf("the directory bundle after the rotation: want the new CA only (%v)", err)
	}
	for _, c := range []*testbed.Cluster{alpha, beta} {
		cm, err := clientset(t, c).CoreV1().ConfigMaps(e.id+"-payments").Get(ctx, "fleet-ca", metav1.GetOptions{})
		if err != nil || !strings.Contains(cm.Data["ca.crt"], newCA) || strings.Contains(cm.Data["ca.crt"], oldCA) {
			t.Errorf("cluster %s: the bundle after the rotation: want the new CA only (%v)", c.Name, err)
		}
	}
	if rep := e.run(files); len(rep.Actions) != 0 || len(rep.Failures) != 0 || rep.Reasons["InSync"] == 0 {
		t.Errorf("a pass after the old CA left the bundles: actions %v failures %v reasons %v", rep.Actions, rep.Failures, rep.Reasons)
	}
}
