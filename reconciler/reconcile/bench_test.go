package reconcile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// benchN is the fleet size of the benchmarks (CERTFLEET_BENCH_N, default 1,000).
func benchN() int {
	if n, err := strconv.Atoi(os.Getenv("CERTFLEET_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// fleet declares n ECDSA P-256 certificates, each delivered to alpha.
func (e *env) fleet(n int) map[string]string {
	return manifestFiles(n, func(i int) string { return fmt.Sprintf("svc-%d.web.svc.cluster.local", i) },
		func(i int) string {
			return fmt.Sprintf("kubernetes: {cluster: alpha, namespace: NS-web, secretName: svc-%d-tls}", i)
		})
}

// manifestFiles declares n ECDSA P-256 certificates web/svc-<i> with the
// DNS name and the one target given, 100 to a file.
func manifestFiles(n int, dns, target func(i int) string) map[string]string {
	files := map[string]string{}
	for f := 0; f*100 < n; f++ {
		var b strings.Builder
		for i := f * 100; i < min(n, (f+1)*100); i++ {
			fmt.Fprintf(&b, `---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: svc-%d, namespace: web}
spec:
  issuer: mtls
  dnsNames: [%s]
  duration: 24h
  privateKey: {algorithm: ECDSA, size: 256}
  targets:
    - %s
`, i, dns(i), target(i))
		}
		files[fmt.Sprintf("teams/web/f%02d.yaml", f)] = b.String()
	}
	return files
}

// BenchmarkFleet issues N certificates through the real Vault into a real
// cluster, beside the floor: a plain loop that signs through Vault's
// pki/sign and creates the Secret, at the same concurrency. Then it times
// no-op passes over them beside a plain LIST of their Secrets: the
// daemon's (inventory and parsed Secrets kept from the passes before) and
// a one-shot `reconcile --once` (reads the inventory from Vault). Run it
// with -benchtime 1x: each part reports seconds and the ratio.
func BenchmarkFleet(b *testing.B) {
	for b.Loop() {
		n := benchN()
		e := newEnv(b)
		files := e.fleet(n)
		res := render.Render(e.snapshot(files), e.catalog)
		if len(res.Errors) > 0 || len(res.Desired) != n {
			b.Fatalf("render: %d desired, errors %v", len(res.Desired), res.Errors)
		}
		v := verdicts(res, e.catalog, e.now)
		ctx := context.Background()
		p := e.pass()

		start := time.Now()
		rep, err := p.Run(ctx, res, v)
		passTime := time.Since(start)
		if err != nil || rep.Actions["issue"] != n || len(rep.Failures) > 0 {
			b.Fatalf("issuing pass: %v, actions %v, failures %v", err, rep.Actions, rep.Failures)
		}

		floor := floorLoop(b, e, n, p.Concurrency)

		// The daemon keeps the inventory and the parsed Secrets between
		// passes: the first pass after the issuing one parses what it
		// wrote, the one timed is the steady state after it.
		seen := target.NewSeen()
		warm := func() *reconcile.Pass {
			w := e.pass()
			w.Inventory, w.Kube.Seen = rep.Inventory, seen
			return w
		}
		if _, err := warm().Run(ctx, res, v); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		rep, err = warm().Run(ctx, res, v)
		noop := time.Since(start)
		if err != nil || len(rep.Actions) != 0 || rep.Reasons["InSync"] != n {
			b.Fatalf("no-op pass: %v, actions %v", err, rep.Actions)
		}
		// The daemon as it runs: each cluster observed from an informer's
		// store. The first pass waits for its sync; the one timed is a
		// pass where the watch said nothing changed.
		heapBefore := heapInUse()
		ws := target.NewWatches(nil)
		defer ws.Stop()
		clients := e.pass().Kube.Clients // one client: one informer
		watched := func() *reconcile.Pass {
			w := warm()
			w.Kube.Clients, w.Kube.Watches = clients, ws
			return w
		}
		if _, err := watched().Run(ctx, res, v); err != nil || !ws.Synced(alpha.Name) {
			b.Fatalf("first watched pass: %v (synced %v)", err, ws.Synced(alpha.Name))
		}
		// What the informer's store holds (the Secrets, their data and
		// metadata): the parsed observations were made before, by the LIST.
		informerMB := float64(heapInUse()-heapBefore) / (1 << 20)
		start = time.Now()
		rep, err = watched().Run(ctx, res, v)
		watchNoop := time.Since(start)
		if err != nil || len(rep.Actions) != 0 || rep.Reasons["InSync"] != n {
			b.Fatalf("no-op pass from the informer: %v, actions %v", err, rep.Actions)
		}
		// The one-shot pass and the plain LIST are timed in turns, three
		// times each, and the quickest of each kept: on a machine shared
		// with other work, load only ever adds time, and one timing of
		// each swung the ratio by 2× from run to run.
		var cold, listTime time.Duration
		for i := range 3 {
			start = time.Now()
			rep, err = e.pass().Run(ctx, res, v)
			took := time.Since(start)
			if err != nil || len(rep.Actions) != 0 {
				b.Fatalf("one-shot no-op pass: %v, actions %v", err, rep.Actions)
			}
			start = time.Now()
			list, err := clientset(b, alpha).CoreV1().Secrets(e.id+"-web").List(ctx, metav1.ListOptions{})
			listed := time.Since(start)
			if err != nil || len(list.Items) != 2*n {
				b.Fatalf("LIST: %v, %d items, want %d (certfleet's and the floor loop's)", err, len(list.Items), 2*n)
			}
			if i == 0 || took < cold {
				cold = took
			}
			if i == 0 || listed < listTime {
				listTime = listed
			}
		}
		profileNoops(b, map[string]func() *reconcile.Pass{"oneshot": e.pass, "list": warm, "watch": watched}, res, v)
		b.ReportMetric(passTime.Seconds(), "issue-pass-s")
		b.ReportMetric(float64(n)/passTime.Seconds(), "certs/s")
		b.ReportMetric(floor.Seconds(), "floor-s")
		b.ReportMetric(float64(n)/floor.Seconds(), "floor-certs/s")
		b.ReportMetric(passTime.Seconds()/floor.Seconds(), "issue-ratio")
		b.ReportMetric(noop.Seconds(), "noop-pass-s")
		b.ReportMetric(listTime.Seconds(), "list-s")
		b.ReportMetric(noop.Seconds()/listTime.Seconds(), "noop-ratio")
		b.ReportMetric(informerMB, "informer-heap-MB")
		b.ReportMetric(watchNoop.Seconds(), "watch-noop-s")
		b.ReportMetric(watchNoop.Seconds()/listTime.Seconds(), "watch-noop-ratio")
		b.ReportMetric(cold.Seconds(), "oneshot-noop-s")
		b.ReportMetric(cold.Seconds()/listTime.Seconds(), "oneshot-noop-ratio")
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// profileNoops writes a CPU profile of each kind of no-op pass, run
// several times, to $CERTFLEET_BENCH_PROFILE/<kind>.cpu when that is set
// (then without go test's -cpuprofile, which the issuing pass dominates).
func profileNoops(b *testing.B, passes map[string]func() *reconcile.Pass, res *render.Result, v map[string]schemas.CertificateVerdict) {
	dir := os.Getenv("CERTFLEET_BENCH_PROFILE")
	if dir == "" {
		return
	}
	for name, pass := range passes {
		f, err := os.Create(filepath.Join(dir, name+".cpu"))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		for range 5 {
			if rep, err := pass().Run(context.Background(), res, v); err != nil || len(rep.Actions) != 0 {
				b.Fatalf("%s no-op pass: %v, actions %v", name, err, rep.Actions)
			}
		}
		pprof.StopCPUProfile()
		f.Close()
	}
}

// floorLoop is the baseline: make a key and a CSR, call pki/sign and
// create the TLS Secret, n times, c at a time — what issuing into a
// cluster costs without certfleet. Its Secrets sit beside certfleet's, so
// the LIST after it reads 2n.
func floorLoop(b *testing.B, e *env, n, c int) time.Duration {
	if c == 0 {
		c = 8
	}
	iss := e.catalog.Issuers["mtls"]
	auth := e.catalog.Authorities["root"]
	cs := clientset(b, alpha)
	return concurrently(b, n, c, func(i int) error {
		key, _ := pki.GenerateKey(string(schemas.ECDSA), 256)
		csr, _ := pki.CSR(key, pki.Request{DNSNames: []string{fmt.Sprintf("loop-%d.web.svc.cluster.local", i)}})
		signed, err := e.backend.Sign(context.Background(), iss, auth, csr, 24*time.Hour)
		if err != nil {
			return err
		}
		keyPEM, _ := pki.EncodeKey(key, "PKCS8")
		_, err = cs.CoreV1().Secrets(e.id+"-web").Create(context.Background(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("loop-%d-tls", i)},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: []byte(signed.Certificate), corev1.TLSPrivateKeyKey: keyPEM},
		}, metav1.CreateOptions{})
		return err
	})
}
