package deploy_test

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/certfleet/certfleet/examples/deploy/deploycheck"
)

// sharded renders examples/deploy-sharded as `kubectl apply -k` does.
func sharded(t *testing.T) []deploycheck.Manifest {
	t.Helper()
	const dir = "../deploy-sharded"
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := deploycheck.Decode(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// all converts every object of a kind to its Go type.
func all[T any](t *testing.T, ms []deploycheck.Manifest, kind string) []*T {
	t.Helper()
	var out []*T
	for _, m := range ms {
		if m.Obj.GetKind() != kind {
			continue
		}
		v := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m.Obj.Object, v); err != nil {
			t.Fatalf("%s %s: %v", kind, m.Obj.GetName(), err)
		}
		out = append(out, v)
	}
	return out
}

// without drops the Deployments and PodDisruptionBudgets not named name:
// one shard's view of the layout, which the unsharded checks take.
func without(ms []deploycheck.Manifest, name string) []deploycheck.Manifest {
	return slices.DeleteFunc(slices.Clone(ms), func(m deploycheck.Manifest) bool {
		k := m.Obj.GetKind()
		return (k == "Deployment" || k == "PodDisruptionBudget") && m.Obj.GetName() != name
	})
}

// TestShardedLayout checks that the sharded layout runs every declared
// shard, and only those, with two replicas on its own Lease and its own
// disruption budget, and that each shard fits the configuration and the
// other objects as the unsharded Deployment does.
func TestShardedLayout(t *testing.T) {
	ms := sharded(t)
	cfg, _ := deploycheck.Config(t, ms)
	if cfg.Sharding == nil || !slices.Equal(cfg.Sharding.Shards, []string{"a", "b", "c"}) {
		t.Fatalf("sharding %+v; want the shards a, b, c", cfg.Sharding)
	}
	deps := all[appsv1.Deployment](t, ms, "Deployment")
	pdbs := all[policyv1.PodDisruptionBudget](t, ms, "PodDisruptionBudget")
	var shards []string
	for _, dep := range deps {
		args := dep.Spec.Template.Spec.Containers[0].Args
		shard := args[len(args)-1]
		shards = append(shards, shard)
		if dep.Name != "certfleet-"+shard || *dep.Spec.Replicas != 2 {
			t.Errorf("Deployment %s runs shard %s with %d replicas; want certfleet-%s with 2", dep.Name, shard, *dep.Spec.Replicas, shard)
		}
		t.Run(dep.Name, func(t *testing.T) {
			one := without(ms, dep.Name)
			deploycheck.CheckConfiguration(t, one)
			deploycheck.CheckWiring(t, one)
		})
		// The shard's budget counts its pods, and no other shard's.
		pods := labels.Set(dep.Spec.Template.Labels)
		for _, pdb := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if mine := pdb.Name == dep.Name; sel.Matches(pods) != mine {
				t.Errorf("PodDisruptionBudget %s selects the pods of %s: %v; want %v", pdb.Name, dep.Name, !mine, mine)
			}
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
				t.Errorf("PodDisruptionBudget %s: minAvailable %v; want 1", pdb.Name, pdb.Spec.MinAvailable)
			}
		}
	}
	if !slices.Equal(shards, cfg.Sharding.Shards) || len(pdbs) != len(deps) {
		t.Errorf("Deployments for the shards %v and %d PodDisruptionBudgets; want one of each for %v", shards, len(pdbs), cfg.Sharding.Shards)
	}
}

// TestShardedManifestsAreAcceptedByTheAPIServer is
// TestManifestsAreAcceptedByTheAPIServer for the sharded layout: the
// service account elects a leader on every shard's Lease and lists them
// as `certfleet fleet` does.
func TestShardedManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	acceptedByTheAPIServer(t, sharded(t), "deploy-sharded")
}
