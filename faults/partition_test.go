package faults_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
)

// secretSerials maps each certfleet Secret of a cluster's apps namespace
// to the serial it holds ("" when it does not hold a matching pair).
func secretSerials(t *testing.T, c *testbed.Cluster) map[string]string {
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Secrets("apps").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		if s.Type != corev1.SecretTypeTLS {
			continue
		}
		secrets.addPEM(s.Data["tls.key"])
		crt, err := pki.ParseCertificate(s.Data["tls.crt"])
		key, kerr := pki.ParseKey(s.Data["tls.key"])
		if err != nil || kerr != nil || !pki.KeyMatches(key, crt) {
			out[s.Name] = ""
			continue
		}
		out[s.Name] = pki.Serial(crt.SerialNumber)
	}
	return out
}

// vaultIssued counts the certificates Vault's PKI mount signed (it keeps
// every one it issued), less the authority's own.
func (f *vaultFleet) vaultIssued() int {
	c, err := f.v.Client()
	if err != nil {
		f.s.t.Fatal(err)
	}
	sec, err := c.Logical().List("faults-pki/certs")
	if err != nil || sec == nil {
		f.s.t.Fatalf("listing Vault's issued certificates: %v", err)
	}
	keys, _ := sec.Data["keys"].([]any)
	return len(keys) - 1
}

func kubeTarget(cluster string) func(string) string {
	return func(name string) string {
		return fmt.Sprintf("kubernetes: {cluster: %s, namespace: apps, secretName: %s-tls}", cluster, name)
	}
}

// TestClusterPartition stops one of three clusters' API servers, then
// restarts it on the same etcd, and restarts etcd itself, between passes
// that each add certificates to every cluster.
func TestClusterPartition(t *testing.T) {
	t.Parallel()
	n := size(4, 40) // new certificates per cluster per step
	s := newScenario(t, "Cluster partition", fmt.Sprintf("3 clusters; gamma's API server stopped, restarted on the same etcd; gamma's etcd restarted; %d new certificates per cluster at each of 4 passes (reconcile --once)", n))
	var clusters [3]*testbed.Cluster
	var wg sync.WaitGroup
	for i, name := range []string{"alpha", "beta", "gamma"} {
		wg.Go(func() { clusters[i] = testbed.NewCluster(t, name) })
	}
	wg.Wait()
	for _, c := range clusters {
		if c == nil {
			t.FailNow()
		}
		cs, err := c.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	alpha, beta, gamma := clusters[0], clusters[1], clusters[2]
	f := newVaultFleet(s, clusters[:]...)
	step := 0
	// grow declares n more certificates in every cluster and runs a pass.
	grow := func() (string, int) {
		step++
		for _, c := range clusters {
			files := certificates(fmt.Sprintf("%s%d", c.Name, step), n, "  duration: 24h", kubeTarget(c.Name))
			writeFiles(t, f.repo, files)
		}
		return s.run(f.env(), append([]string{"reconcile", "--once"}, f.passArgs()...)...)
	}
	want := func(c *testbed.Cluster) int { return n * step }
	converged := func(c *testbed.Cluster) bool {
		got := secretSerials(t, c)
		ok := 0
		for _, serial := range got {
			if serial != "" {
				ok++
			}
		}
		return ok == want(c) && len(got) == want(c)
	}
	if out, code := grow(); code != 0 || !converged(alpha) || !converged(beta) || !converged(gamma) {
		t.Fatalf("the first pass did not converge: exit %d\n%s", code, tail(out))
	}
	before := map[string]map[string]string{"alpha": secretSerials(t, alpha), "beta": secretSerials(t, beta)}

	gamma.StopAPIServer()
	out, code := grow()
	s.bar(code != 0 && strings.Contains(out, "gamma"), "a pass with gamma down fails and names gamma: exit %d\n%s", code, tail(out))
	s.bar(converged(alpha) && converged(beta), "alpha and beta converge in the pass where gamma is down")
	s.result("gamma's API server down: the pass exits %d naming gamma, alpha and beta converge in it", code)
	for _, c := range []*testbed.Cluster{alpha, beta} {
		now := secretSerials(t, c)
		for name, serial := range before[c.Name] {
			s.bar(now[name] == serial, "%s/%s was reissued while gamma was down", c.Name, name)
		}
	}
	if err := gamma.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, code = grow()
	s.bar(code == 0 && converged(gamma), "gamma converges in the first pass after its API server returns: exit %d\n%s", code, tail(out))
	s.result("gamma back: converged in 1 pass")

	if err := gamma.RestartEtcd(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, code = grow()
	passes := 4
	if code != 0 {
		// The API server may still be reconnecting to etcd: one more pass.
		out, code = s.run(f.env(), append([]string{"reconcile", "--once"}, f.passArgs()...)...)
		passes++
	}
	s.result("gamma's etcd restarted: converged in %d pass(es)", passes-3)
	s.bar(code == 0 && converged(alpha) && converged(beta) && converged(gamma), "every cluster converges after gamma's etcd restarts: exit %d\n%s", code, tail(out))

	issued := f.vaultIssued()
	s.reps = fmt.Sprintf("%d passes", passes)
	s.result("%d certificates declared, %d issued by Vault", 3*n*step, issued)
	s.bar(issued == 3*n*step, "no duplicate issuance: Vault issued %d certificates for %d declared", issued, 3*n*step)
	if out, code := s.run(f.env(), append([]string{"drift"}, f.passArgs()...)...); code != 0 {
		s.bar(false, "drift after converging: exit %d\n%s", code, tail(out))
	}
}
