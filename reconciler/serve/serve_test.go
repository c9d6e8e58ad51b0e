package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/serve"
	"github.com/certfleet/certfleet/schemas"
)

var (
	vaultServer *testbed.Vault
	alpha, beta *testbed.Cluster
	kubeconfig  string
	runID       atomic.Int64
)

func TestMain(m *testing.M) {
	testbed.Main(m, func(w *testbed.World) {
		vaultServer, alpha, beta, kubeconfig = w.Vault, w.Clusters[0], w.Clusters[1], w.Kubeconfig
	}, "alpha", "beta")
}

// world is one test's repository, backend and namespace.
type world struct {
	t      *testing.T
	id     string
	ns     string
	git    *testbed.GitServer
	url    string
	work   *testbed.Worktree
	secret []byte
	cfg    *schemas.ServeConfig
	dir    string
	// abandon makes started daemons stop a pass at once (no grace).
	abandon bool
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, id: fmt.Sprintf("s%d", runID.Add(1)), secret: []byte("hook-secret"), dir: t.TempDir()}
	w.ns = w.id + "-apps"
	ctx := context.Background()
	b, err := backend.OpenVault(ctx, backend.VaultConfig{Address: vaultServer.Addr, Token: vaultServer.Token, CatalogMount: w.id + "-catalog"})
	if err != nil {
		t.Fatal(err)
	}
	cat, errs := schemas.DecodeCatalog("pki.yaml", []byte(testbed.FleetPKI(w.id+"-pki")))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := backend.Apply(ctx, b, cat); err != nil {
		t.Fatal(err)
	}
	if _, err := clientset(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.git = testbed.NewGitServer(t, testbed.WithBasicAuth("ci", "pw"))
	if w.url, err = w.git.CreateRepo("fleet"); err != nil {
		t.Fatal(err)
	}
	w.work = testbed.NewWorktree(t)
	write := func(name, content string) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	w.cfg = &schemas.ServeConfig{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindServeConfig},
		Source: schemas.ServeSource{URL: w.url, Ref: "main", Interval: "1h",
			Auth: schemas.ServeSourceAuth{Username: "ci", PasswordFile: write("git-password", "pw")}},
		Backend: schemas.ServeBackend{Type: "vault", Vault: schemas.ServeVault{Address: vaultServer.Addr,
			CatalogMount: w.id + "-catalog", TokenFile: write("vault-token", vaultServer.Token)}},
		Kubeconfig: kubeconfig, OutputDir: filepath.Join(w.dir, "tls"), AuditLog: filepath.Join(w.dir, "audit.log"),
		RenewalJitter: "1s", Webhook: schemas.ServeWebhook{SecretFile: write("hook", string(w.secret))},
	}
	return w
}

func clientset(t testing.TB) *kubernetes.Clientset {
	cs, err := alpha.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// cert is a Certificate manifest delivered to alpha in the world's namespace.
func (w *world) cert(name, extra string) string {
	return fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: %[1]s, namespace: apps}
spec:
  issuer: mtls
  dnsNames: [%[1]s.apps.svc.cluster.local]
  duration: 24h%[3]s
  targets:
    - kubernetes: {cluster: alpha, namespace: %[2]s, secretName: %[1]s-tls}
`, name, w.ns, extra)
}

// push commits files (name → content; "" removes) and pushes main.
func (w *world) push(files map[string]string) {
	w.t.Helper()
	for name, content := range files {
		if content == "" {
			w.work.Remove(w.t, name)
			delete(files, name)
		}
	}
	w.work.Write(w.t, files)
	w.work.Commit(w.t, "alice", "change")
	w.work.Push(w.t, w.git.PushURL("fleet"), "main")
}

// daemon is a running daemon and its HTTP endpoints.
type daemon struct {
	d      *serve.Daemon
	http   *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *world) start(mutate ...func(*schemas.ServeConfig)) *daemon {
	w.t.Helper()
	cfg := *w.cfg
	for _, m := range mutate {
		m(&cfg)
	}
	d, err := serve.New(context.Background(), &cfg, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	d.Actor = "test"
	if w.abandon {
		d.Grace = 0 // abandon a pass at once, as after the grace of a SIGTERM
	}
	ctx, cancel := context.WithCancel(context.Background())
	dm := &daemon{d: d, http: httptest.NewServer(d.Handler(w.secret, nil)), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(dm.done); _ = d.Run(ctx) }()
	w.t.Cleanup(func() { dm.stop(); d.Close() })
	return dm
}

func (dm *daemon) stop() {
	dm.cancel()
	<-dm.done
	dm.http.Close()
}

func (dm *daemon) get(t *testing.T, path string) (int, string) {
	resp, err := http.Get(dm.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (dm *daemon) hook(t *testing.T, secret []byte) int {
	body := []byte(`{"ref":"refs/heads/main"}`)
	req, _ := http.NewRequest(http.MethodPost, dm.http.URL+"/hooks/git", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", serve.Sign(secret, body))
	req.Header.Set("X-GitHub-Event", "push")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testbed.Eventually(t, d, what, cond)
}

// serial is the serial of the certificate in a Secret ("" when absent or invalid).
func (w *world) serial(name string) string {
	s, err := clientset(w.t).CoreV1().Secrets(w.ns).Get(context.Background(), name+"-tls", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	c, err := pki.ParseCertificate(s.Data["tls.crt"])
	if err != nil {
		return ""
	}
	k, err := pki.ParseKey(s.Data["tls.key"])
	if err != nil || !pki.KeyMatches(k, c) {
		return ""
	}
	return pki.Serial(c.SerialNumber)
}

func TestAPushWebhookTriggersAPassWithinSeconds(t *testing.T) {
	w := newWorld(t)
	w.push(map[string]string{"apps/a.yaml": w.cert("a", "")})
	dm := w.start()
	eventually(t, 20*time.Second, "the first pass delivers a", func() bool { return w.serial("a") != "" })
	// The Secret is written before the pass ends (it still records and
	// observes the other cluster): ready follows once the pass is done.
	eventually(t, 20*time.Second, "/readyz is 200 after the first pass", func() bool {
		code, _ := dm.get(t, "/readyz")
		return code == 200
	})
	w.push(map[string]string{"apps/b.yaml": w.cert("b", "")})
	if code := dm.hook(t, []byte("wrong")); code != http.StatusUnauthorized {
		t.Errorf("a badly signed push: %d, want 401", code)
	}
	start := time.Now()
	if code := dm.hook(t, w.secret); code != http.StatusAccepted {
		t.Fatalf("a signed push: %d, want 202", code)
	}
	eventually(t, 10*time.Second, "the push delivers b", func() bool { return w.serial("b") != "" })
	t.Logf("push to delivery: %s", time.Since(start).Round(time.Millisecond))
}

func TestAShortLivedCertificateIsRenewedWithoutACommit(t *testing.T) {
	w := newWorld(t)
	// Two minutes long, renewed 110 s before expiry: ten seconds after issuance.
	w.push(map[string]string{"apps/short.yaml": strings.Replace(w.cert("short", ""), "duration: 24h", "duration: 2m\n  renewBefore: 110s", 1)})
	w.start()
	var first string
	eventually(t, 20*time.Second, "short is issued", func() bool { first = w.serial("short"); return first != "" })
	eventually(t, 40*time.Second, "short is renewed before expiry, with no commit", func() bool {
		s := w.serial("short")
		return s != "" && s != first
	})
}

func TestAFetchFailureOrABrokenRevisionKeepsTheLastGoodRevision(t *testing.T) {
	w := newWorld(t)
	w.push(map[string]string{"apps/a.yaml": w.cert("a", "")})
	dm := w.start(func(c *schemas.ServeConfig) { c.Prune = true })
	eventually(t, 20*time.Second, "a is delivered", func() bool { return w.serial("a") != "" })
	serial := w.serial("a")

	// A revision that does not render: a's file is gone and a broken file is
	// there. The daemon keeps the last good revision, so a is not pruned.
	w.push(map[string]string{"apps/a.yaml": "", "apps/broken.yaml": "kind: [\n"})
	dm.hook(t, w.secret)
	eventually(t, 10*time.Second, "the status names the render errors", func() bool {
		_, body := dm.get(t, "/report")
		return strings.Contains(body, "renderErrors") && strings.Contains(body, "broken.yaml")
	})
	if w.serial("a") != serial {
		t.Error("a broken revision changed or removed a working certificate")
	}
	// The Git server goes away: the daemon keeps reconciling the last good revision.
	w.git.Stop()
	dm.hook(t, w.secret)
	eventually(t, 10*time.Second, "the status names the fetch failure", func() bool {
		_, body := dm.get(t, "/report")
		return strings.Contains(body, "sourceError") && strings.Contains(body, "sourceFailingSince")
	})
	_, metrics := dm.get(t, "/metrics")
	if !strings.Contains(metrics, "certfleet_source_fetch_failures_total 1") || !strings.Contains(metrics, `state="last-good"`) {
		t.Errorf("metrics do not show the failure and the last good revision:\n%s", grep(metrics, "certfleet_source"))
	}
	if w.serial("a") != serial {
		t.Error("a fetch failure changed or removed a working certificate")
	}
}

func TestReportOnlyChangesNothingButReports(t *testing.T) {
	w := newWorld(t)
	w.push(map[string]string{"apps/a.yaml": w.cert("a", "")})
	dm := w.start(func(c *schemas.ServeConfig) { c.ReportOnly = true })
	eventually(t, 20*time.Second, "a report", func() bool {
		code, body := dm.get(t, "/report")
		return code == 200 && strings.Contains(body, `"reason": "Missing"`)
	})
	_, metrics := dm.get(t, "/metrics")
	if !strings.Contains(metrics, `reason="Missing"`) {
		t.Errorf("no drift series for the missing certificate:\n%s", grep(metrics, "certfleet_certificate_drift"))
	}
	if _, err := clientset(t).CoreV1().Secrets(w.ns).Get(context.Background(), "a-tls", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("reportOnly delivered a Secret: %v", err)
	}
}

func TestMetricsAppearAndDisappearWithCertificates(t *testing.T) {
	w := newWorld(t)
	w.push(map[string]string{"apps/a.yaml": w.cert("a", ""), "apps/b.yaml": w.cert("b", "")})
	dm := w.start(func(c *schemas.ServeConfig) { c.Prune = true })
	series := `certfleet_certificate_not_after_timestamp_seconds{certificate="apps/b"`
	eventually(t, 20*time.Second, "b's series", func() bool { _, m := dm.get(t, "/metrics"); return strings.Contains(m, series) })
	_, m := dm.get(t, "/metrics")
	for _, name := range []string{"certfleet_certificate_ready{", "certfleet_certificate_renewal_timestamp_seconds{", "certfleet_authority_not_after_timestamp_seconds{",
		`certfleet_issuance_total{issuer="mtls",result="success"} 2`, "certfleet_reconcile_duration_seconds_count", "certfleet_source_revision_info{"} {
		if !strings.Contains(m, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
	w.push(map[string]string{"apps/b.yaml": ""})
	dm.hook(t, w.secret)
	eventually(t, 10*time.Second, "b's series to go", func() bool {
		_, m := dm.get(t, "/metrics")
		return !strings.Contains(m, `certificate="apps/b"`) && strings.Contains(m, `certificate="apps/a"`)
	})
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// startElected runs a daemon behind leader election on a Lease in alpha.
func (w *world) startElected(audit string) (*daemon, *serve.Elector) {
	w.t.Helper()
	cfg := *w.cfg
	cfg.AuditLog = filepath.Join(w.dir, audit)
	cfg.LeaderElection = schemas.ServeLeaderElection{Enabled: true, Namespace: w.ns, Name: "certfleet", KubeconfigContext: "alpha",
		LeaseDuration: "3s", RenewDeadline: "2s", RetryPeriod: "300ms"}
	d, err := serve.New(context.Background(), &cfg, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	d.Actor = audit
	e := serve.NewElector(d, audit)
	ctx, cancel := context.WithCancel(context.Background())
	dm := &daemon{d: d, http: httptest.NewServer(d.Handler(w.secret, e.Standby)), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(dm.done); _ = e.Run(ctx) }()
	w.t.Cleanup(func() { dm.stop(); d.Close() })
	return dm, e
}

// issued counts issue events per certificate in an audit log.
func (w *world) issued(audit string) map[string]int {
	b, _ := os.ReadFile(filepath.Join(w.dir, audit))
	out := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"action":"issue"`) {
			i := strings.Index(l, `"certificate":"`)
			rest := l[i+len(`"certificate":"`):]
			out[rest[:strings.IndexByte(rest, '"')]]++
		}
	}
	return out
}

func TestTwoReplicasWithLeaderElectionIssueEachCertificateOnce(t *testing.T) {
	w := newWorld(t)
	files := map[string]string{}
	for i := 0; i < 5; i++ {
		files[fmt.Sprintf("apps/c%d.yaml", i)] = w.cert(fmt.Sprintf("c%d", i), "")
	}
	w.push(files)
	one, e1 := w.startElected("one.log")
	two, e2 := w.startElected("two.log")
	eventually(t, 30*time.Second, "all five delivered", func() bool {
		for i := 0; i < 5; i++ {
			if w.serial(fmt.Sprintf("c%d", i)) == "" {
				return false
			}
		}
		return true
	})
	if e1.Leading() == e2.Leading() {
		t.Fatalf("leading: one %v, two %v; want exactly one", e1.Leading(), e2.Leading())
	}
	if code, _ := two.get(t, "/readyz"); code != 200 {
		t.Errorf("a replica's /readyz = %d", code)
	}
	time.Sleep(2 * time.Second) // further passes of both replicas must not issue again
	count := func() map[string]int {
		total := map[string]int{}
		for _, log := range []string{"one.log", "two.log"} {
			for c, n := range w.issued(log) {
				total[c] += n
			}
		}
		return total
	}
	for c, n := range count() {
		if n != 1 {
			t.Errorf("%s issued %d times", c, n)
		}
	}
	if len(count()) != 5 {
		t.Errorf("issued: %v", count())
	}
	// The leader stops; the other takes the lease and acts.
	leader, standby := one, two
	if e2.Leading() {
		leader, standby = two, one
	}
	leader.stop()
	w.push(map[string]string{"apps/late.yaml": w.cert("late", "")})
	eventually(t, 20*time.Second, "the other replica takes over", func() bool { return e1.Leading() || e2.Leading() })
	standby.hook(t, w.secret)
	eventually(t, 20*time.Second, "late is delivered by the new leader", func() bool { return w.serial("late") != "" })
	// The audit line follows the delivery: wait for it, then make sure no second one comes.
	eventually(t, 10*time.Second, "late's issuance in the audit log", func() bool { return count()["apps/late"] > 0 })
	time.Sleep(time.Second)
	if n := count()["apps/late"]; n != 1 {
		t.Errorf("late issued %d times", n)
	}
}

func TestStoppingMidPassLeavesEveryTargetValid(t *testing.T) {
	w := newWorld(t)
	files := map[string]string{}
	const n = 40
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("m%02d", i)
		files["apps/"+name+".yaml"] = strings.Replace(w.cert(name, ""), "    - kubernetes:",
			"    - directory: {path: "+name+"}\n    - kubernetes:", 1)
	}
	w.push(files)
	w.abandon = true
	dm := w.start(func(c *schemas.ServeConfig) { c.Concurrency = 4 })
	eventually(t, 30*time.Second, "the pass starts delivering", func() bool {
		l, err := clientset(t).CoreV1().Secrets(w.ns).List(context.Background(), metav1.ListOptions{})
		return err == nil && len(l.Items) > 0
	})
	dm.stop()
	l, err := clientset(t).CoreV1().Secrets(w.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Items {
		if w.serial(strings.TrimSuffix(s.Name, "-tls")) == "" {
			t.Errorf("Secret %s is not a valid certificate and key after the stop", s.Name)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(w.cfg.OutputDir, "*", "tls.crt"))
	for _, crt := range dirs {
		c, err1 := os.ReadFile(crt)
		k, err2 := os.ReadFile(filepath.Join(filepath.Dir(crt), "tls.key"))
		cert, err3 := pki.ParseCertificate(c)
		key, err4 := pki.ParseKey(k)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !pki.KeyMatches(key, cert) {
			t.Errorf("%s is not a matching pair after the stop", filepath.Dir(crt))
		}
	}
	t.Logf("stopped after %d of %d Secrets and %d of %d directories", len(l.Items), n, len(dirs), n)
	// A new daemon finishes the job.
	w.abandon = false
	w.start()
	eventually(t, 60*time.Second, "all delivered after a restart", func() bool {
		for i := 0; i < n; i++ {
			if w.serial(fmt.Sprintf("m%02d", i)) == "" {
				return false
			}
		}
		return true
	})
}

func TestConfigAllowedDirRoots(t *testing.T) {
	tests := []struct {
		name, roots string
		// wantErr is a substring of LoadConfig's error; "" for none.
		wantErr string
	}{
		{name: "absolute allowed roots are read", roots: "[/etc/tls, /srv/certs]"},
		{name: "a relative allowed root is an error naming its index", roots: "[/etc/tls, certs]",
			wantErr: `allowedDirRoots[1] is "certs"; give an absolute directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "certfleet.yaml")
			data := "apiVersion: certfleet.dev/v1alpha1\nkind: ServeConfig\nsource: {url: ./repo}\nallowedDirRoots: " + tt.roots + "\n"
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := serve.LoadConfig(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.AllowedDirRoots) != 2 || cfg.AllowedDirRoots[1] != "/srv/certs" {
				t.Errorf("AllowedDirRoots = %v", cfg.AllowedDirRoots)
			}
		})
	}
}
