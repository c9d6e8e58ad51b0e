package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/schemas"
)

func TestAHungAPIServerFailsTheCallWithinTheTimeout(t *testing.T) {
	addr := testbed.HungServer(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: hung, cluster: {server: "http://`+addr+`"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: hung, context: {cluster: hung, user: u}}]
current-context: hung
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cluster.Connector{Kubeconfig: kubeconfig, Timeout: 300 * time.Millisecond}
	k, err := c.Client(context.Background(), &schemas.Cluster{Metadata: schemas.ObjectMeta{Name: "hung"},
		Spec: schemas.ClusterSpec{Credentials: schemas.ClusterCredentials{KubeconfigContext: "hung"}}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := k.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{}); err == nil {
		t.Fatal("a LIST from a server that never answers succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the LIST took %s, want about its 300ms timeout", d)
	}
}
