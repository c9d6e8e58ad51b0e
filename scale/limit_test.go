package scale_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// deployedLimit is the GOMEMLIMIT the example deployment gives the one
// process (examples/deploy/deployment.yaml): its env sets GOMEMLIMIT from
// the container's limits.memory through the downward API (a
// resourceFieldRef, divisor 1: the limit in bytes, as deploycheck
// requires), so the limit is the container's memory limit itself, 512Mi.
// It returns the value the process gets (bytes) and a name for the
// metrics ("512MiB").
func deployedLimit(tb testing.TB) (value, name string) {
	tb.Helper()
	path := filepath.Join("..", "examples", "deploy", "deployment.yaml")
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
			if r := e.ValueFrom; e.Name == "GOMEMLIMIT" && r != nil && r.ResourceFieldRef != nil && r.ResourceFieldRef.Resource == "limits.memory" {
				if d := r.ResourceFieldRef.Divisor; !d.IsZero() && d.Value() != 1 {
					tb.Fatalf("%s: GOMEMLIMIT divides limits.memory by %s: the process would read a number of %s as bytes", path, d.String(), d.String())
				}
				limit, ok := c.Resources.Limits["memory"]
				if !ok {
					tb.Fatalf("%s: container %s sets GOMEMLIMIT from a memory limit it does not have", path, c.Name)
				}
				n := limit.Value()
				if n%(1<<20) == 0 {
					return fmt.Sprint(n), fmt.Sprintf("%dMiB", n>>20)
				}
				return fmt.Sprint(n), fmt.Sprint(n)
			}
		}
	}
	tb.Fatalf("%s: no container sets GOMEMLIMIT from limits.memory", path)
	return "", ""
}

// TestDeployedLimit: the limit the scale benchmark's one process runs
// under is the example deployment's, as the downward API hands it over.
func TestDeployedLimit(t *testing.T) {
	value, name := deployedLimit(t)
	if value != "536870912" || name != "512MiB" {
		t.Errorf("GOMEMLIMIT=%s (%s), want 536870912 (512MiB): the deployment's limits.memory is 512Mi", value, name)
	}
}
