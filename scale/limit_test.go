package scale_test

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/internal/memlimit"
)

// The example layouts whose memory limits the benchmark's processes run
// under: the one process's and a shard's.
var (
	oneLayout   = filepath.Join("..", "examples", "deploy", "deployment.yaml")
	shardLayout = filepath.Join("..", "examples", "deploy-sharded", "shard", "deployment.yaml")
)

// deployedLimit is the container memory limit the layout at path hands its
// process: its env sets memlimit.Env from the container's limits.memory
// through the downward API (a resourceFieldRef, divisor 1: the limit in
// bytes, as deploycheck requires), and certfleet sets its soft memory limit
// from it (memlimit.Soft). It returns the value the process gets (bytes)
// and the limit's name for the metrics ("512Mi").
func deployedLimit(tb testing.TB, path string) (value, name string) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var dep appsv1.Deployment
	if err := yaml.Unmarshal(b, &dep); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if r := e.ValueFrom; e.Name == memlimit.Env && r != nil && r.ResourceFieldRef != nil && r.ResourceFieldRef.Resource == "limits.memory" {
				if d := r.ResourceFieldRef.Divisor; !d.IsZero() && d.Value() != 1 {
					tb.Fatalf("%s: %s divides limits.memory by %s: the process would read a number of %s as bytes", path, memlimit.Env, d.String(), d.String())
				}
				limit, ok := c.Resources.Limits["memory"]
				if !ok {
					tb.Fatalf("%s: container %s sets %s from a memory limit it does not have", path, c.Name, memlimit.Env)
				}
				return limit.AsDec().String(), limit.String()
			}
		}
	}
	tb.Fatalf("%s: no container sets %s from limits.memory", path, memlimit.Env)
	return "", ""
}

// TestDeployedLimit: the limits the scale benchmark's processes run under
// are the example layouts', as the downward API hands them over.
func TestDeployedLimit(t *testing.T) {
	for _, c := range []struct{ path, value, name string }{
		{oneLayout, "536870912", "512Mi"},
		{shardLayout, "268435456", "256Mi"},
	} {
		if value, name := deployedLimit(t, c.path); value != c.value || name != c.name {
			t.Errorf("%s: %s=%s (%s), want %s (%s)", c.path, memlimit.Env, value, name, c.value, c.name)
		}
	}
}
