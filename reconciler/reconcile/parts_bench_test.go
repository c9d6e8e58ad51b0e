package reconcile_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// BenchmarkIssuanceParts measures, each alone at the pass's concurrency
// (8), the parts the scaling model (docs/guides/scaling.md) is built on:
// Vault's pki/sign of an ECDSA P-256 CSR through a role that stores the
// certificate and through one with noStore, and a plain Secret create. Then
// it counts the requests certfleet makes to the API server per issued and
// per renewed certificate (from the API server's apiserver_request_total)
// and the size of one of its Secrets in the protobuf encoding the API
// server stores in etcd. Run it with -benchtime 1x.
func BenchmarkIssuanceParts(b *testing.B) {
	for b.Loop() {
		n := benchN()
		e := newEnv(b)
		ctx := context.Background()
		cs := clientset(b, alpha)
		auth := e.catalog.Authorities["root"]
		stored := e.catalog.Issuers["mtls"]
		noStore := *stored
		noStore.Metadata.Name = "mtls-nostore"
		noStore.Spec.NoStore = true
		if err := e.vault.PutRole(ctx, &noStore, auth); err != nil {
			b.Fatal(err)
		}

		signStored := concurrently(b, n, 8, func(i int) error { _, err := signOne(ctx, e.vault, stored, auth, i); return err })
		signNoStore := concurrently(b, n, 8, func(i int) error { _, err := signOne(ctx, e.vault, &noStore, auth, i); return err })
		// A TLS Secret as the floor loop creates it: one signed pair, n times.
		key, err := pki.GenerateKey(string(schemas.ECDSA), 256)
		if err != nil {
			b.Fatal(err)
		}
		signed, err := signOne(ctx, e.vault, stored, auth, -1, key)
		if err != nil {
			b.Fatal(err)
		}
		keyPEM, _ := pki.EncodeKey(key, "PKCS8")
		create := concurrently(b, n, 8, func(i int) error {
			_, err := cs.CoreV1().Secrets(e.id+"-web").Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("part-%d-tls", i)},
				Type:       corev1.SecretTypeTLS,
				Data:       map[string][]byte{corev1.TLSCertKey: []byte(signed.Certificate), corev1.TLSPrivateKeyKey: keyPEM},
			}, metav1.CreateOptions{})
			return err
		})

		// certfleet's own requests: one one-shot pass issuing n, one
		// renewing them; the pass reaches Vault through a counting proxy.
		var vc vaultCounts
		e.backend = mustVault(b, vc.start(b), e.id)
		files := e.fleet(n)
		res := render.Render(e.snapshot(files), e.catalog)
		before := secretRequests(b, cs)
		start := time.Now()
		rep, err := e.pass().Run(ctx, res, verdicts(res, e.catalog, e.now))
		issuePass := time.Since(start)
		if err != nil || rep.Actions["issue"] != n || len(rep.Failures) > 0 {
			b.Fatalf("issuing pass: %v, actions %v, failures %v", err, rep.Actions, rep.Failures)
		}
		issued, vaultIssued := secretRequests(b, cs), vc.take()
		e.now = e.now.Add(20 * time.Hour) // past two thirds of the 24 h lifetime
		start = time.Now()
		rep, err = e.pass().Run(ctx, res, verdicts(res, e.catalog, e.now))
		renewPass := time.Since(start)
		if err != nil || rep.Actions["renew"] != n || len(rep.Failures) > 0 {
			b.Fatalf("renewing pass: %v, actions %v, failures %v", err, rep.Actions, rep.Failures)
		}
		renewed, vaultRenewed := secretRequests(b, cs), vc.take()
		raw, err := cs.CoreV1().RESTClient().Get().Namespace(e.id+"-web").Resource("secrets").Name("svc-0-tls").
			SetHeader("Accept", "application/vnd.kubernetes.protobuf").DoRaw(ctx)
		if err != nil {
			b.Fatal(err)
		}

		b.ReportMetric(float64(n)/signStored.Seconds(), "sign-stored/s")
		b.ReportMetric(float64(n)/signNoStore.Seconds(), "sign-nostore/s")
		b.ReportMetric(float64(n)/create.Seconds(), "secret-create/s")
		for verb, count := range diff(before, issued) {
			b.ReportMetric(float64(count)/float64(n), "issue-"+verb+"/cert")
		}
		for verb, count := range diff(issued, renewed) {
			b.ReportMetric(float64(count)/float64(n), "renew-"+verb+"/cert")
		}
		for kind, count := range vaultIssued {
			b.ReportMetric(float64(count)/float64(n), "issue-vault-"+kind+"/cert")
		}
		for kind, count := range vaultRenewed {
			b.ReportMetric(float64(count)/float64(n), "renew-vault-"+kind+"/cert")
		}
		b.ReportMetric(float64(n)/issuePass.Seconds(), "issue-pass/s")
		b.ReportMetric(float64(n)/renewPass.Seconds(), "renew-pass/s")
		b.ReportMetric(float64(len(raw)), "secret-protobuf-B")
	}
}

// concurrently runs f(0..n-1), c at a time, and returns the wall time;
// the benchmark fails on the first error.
func concurrently(b *testing.B, n, c int, f func(i int) error) time.Duration {
	var g errgroup.Group
	g.SetLimit(c)
	start := time.Now()
	for i := range n {
		g.Go(func() error { return f(i) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// signOne has Vault sign a CSR of a P-256 key (a new one unless given).
func signOne(ctx context.Context, v *backend.Vault, iss *schemas.Issuer, auth *schemas.Authority, i int, key ...crypto.Signer) (*backend.Signed, error) {
	if len(key) == 0 {
		k, err := pki.GenerateKey(string(schemas.ECDSA), 256)
		if err != nil {
			return nil, err
		}
		key = append(key, k)
	}
	csr, err := pki.CSR(key[0], pki.Request{DNSNames: []string{fmt.Sprintf("part-%d.web.svc.cluster.local", i)}})
	if err != nil {
		return nil, err
	}
	return v.Sign(ctx, iss, auth, csr, 24*time.Hour)
}

// vaultCounts is a proxy in front of Vault that counts requests by kind:
// pki/sign, KV reads, KV writes, and the rest.
type vaultCounts struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *vaultCounts) start(t testing.TB) string {
	return vaultProxy(t, func(_ http.ResponseWriter, r *http.Request) bool {
		kind := "other"
		switch {
		case strings.Contains(r.URL.Path, "/sign/"):
			kind = "sign"
		case strings.Contains(r.URL.Path, "/data/") && r.Method == http.MethodGet:
			kind = "kv-read"
		case strings.Contains(r.URL.Path, "/data/") && (r.Method == http.MethodPut || r.Method == http.MethodPost):
			kind = "kv-write"
		}
		c.mu.Lock()
		if c.counts == nil {
			c.counts = map[string]int{}
		}
		c.counts[kind]++
		c.mu.Unlock()
		return true
	})
}

// take returns the counts so far and resets them.
func (c *vaultCounts) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = nil
	return out
}

// secretRequests reads the API server's apiserver_request_total for
// Secrets, summed by verb.
func secretRequests(b *testing.B, cs kubernetes.Interface) map[string]float64 {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="secrets"`) {
			continue
		}
		_, rest, _ := strings.Cut(line, `verb="`)
		verb, _, _ := strings.Cut(rest, `"`)
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			b.Fatalf("metric line %q: %v", line, err)
		}
		out[verb] += v
	}
	return out
}

func diff(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for verb, v := range after {
		if d := v - before[verb]; d > 0 {
			out[verb] = d
		}
	}
	return out
}
