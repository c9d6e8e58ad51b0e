package target_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/target"
)

// BenchmarkObserveCluster times a one-shot observation of a cluster
// holding n of certfleet's TLS Secrets and n others, beside a plain LIST
// of them (CERTFLEET_BENCH_N, default 1,000).
func BenchmarkObserveCluster(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("CERTFLEET_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	c := testbed.NewCluster(b, "alpha")
	cs, err := c.Clientset()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	is := newIssuer(b)
	var bundles []target.Bundle
	for i := range 64 {
		bundles = append(bundles, is.bundle(b, pki.Request{DNSNames: []string{fmt.Sprintf("svc-%d.example.test", i)}}))
	}
	g := new(errgroup.Group)
	g.SetLimit(16)
	for i := range 2 * n {
		g.Go(func() error {
			bu := bundles[i%len(bundles)]
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", i), Namespace: "web"}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: bu.Cert, corev1.TLSPrivateKeyKey: bu.Key, "ca.crt": bu.CA}}
			if i%2 == 0 { // certfleet's; the others are unmanaged
				s.Labels = map[string]string{target.LabelManagedBy: target.ManagedByValue, target.LabelCertificate: fmt.Sprintf("web_svc-%d", i)}
				s.Annotations = meta(fmt.Sprintf("web/svc-%d", i)).Annotations(bu)
			}
			_, err := cs.CoreV1().Secrets("web").Create(ctx, s, metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	var observeT, listT time.Duration
	for b.Loop() {
		k := &target.Kube{Clients: func(context.Context, string) (kubernetes.Interface, error) { return cs, nil }}
		start := time.Now()
		got, err := k.ObserveCluster(ctx, "alpha")
		observe := time.Since(start)
		if err != nil || len(got) != 2*n {
			b.Fatalf("observed %d, %v", len(got), err)
		}
		start = time.Now()
		l, err := cs.CoreV1().Secrets("web").List(ctx, metav1.ListOptions{})
		list := time.Since(start)
		if err != nil || len(l.Items) != 2*n {
			b.Fatalf("listed %d, %v", len(l.Items), err)
		}
		observeT += observe
		listT += list
	}
	b.ReportMetric(observeT.Seconds()/float64(b.N), "observe-s")
	b.ReportMetric(listT.Seconds()/float64(b.N), "list-s")
	b.ReportMetric(observeT.Seconds()/listT.Seconds(), "ratio")
}
