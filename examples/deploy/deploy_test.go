package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/examples/deploy/deploycheck"
)

// manifests decodes every document of every *.yaml here but the
// Kustomization, which is kustomize's input and no API object.
func manifests(t *testing.T) []deploycheck.Manifest {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []deploycheck.Manifest
	for _, f := range files {
		if f == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := deploycheck.Decode(f, b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ms...)
	}
	if len(out) == 0 {
		t.Fatal("no manifests in examples/deploy")
	}
	return out
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	var k struct {
		Resources []string `json:"resources"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, m := range manifests(t) {
		files[m.File] = true
	}
	var want []string
	for f := range files {
		want = append(want, f)
	}
	sort.Strings(want)
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml lists %v; the manifests are %v", got, want)
	}
}

// TestConfigurationFitsTheDeployment loads certfleet.yaml as `certfleet
// serve` does and checks that every file it names is mounted, the listen
// port is the container's, and the leader election Role is for its Lease;
// and that the README's command creates the Secret with every key the
// configuration reads.
func TestConfigurationFitsTheDeployment(t *testing.T) {
	ms := manifests(t)
	keys := deploycheck.CheckConfiguration(t, ms)
	if cfg, _ := deploycheck.Config(t, ms); cfg.Webhook.SecretFile == "" {
		t.Error("no webhook.secretFile")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		if !strings.Contains(string(readme), "--from-file="+key+"=") {
			t.Errorf("README.md's kubectl create secret lacks --from-file=%s=", key)
		}
	}
}

// TestManifestsFitTogether checks the names and labels that tie the objects
// to each other, which the API server accepts even when they are wrong.
func TestManifestsFitTogether(t *testing.T) {
	ms := manifests(t)
	deploycheck.CheckWiring(t, ms)
	dep := deploycheck.One[appsv1.Deployment](t, ms, "Deployment")
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d; want 2", *dep.Spec.Replicas)
	}
	// The image make image builds.
	if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "ghcr.io/certfleet/certfleet:v") {
		t.Errorf("image %s; want the one make image builds, ghcr.io/certfleet/certfleet:<version>", img)
	}
	// examples/monitoring/alerts.yaml finds the daemon by the job label the
	// ServiceMonitor gives it: the Service's name.
	svc := deploycheck.One[corev1.Service](t, ms, "Service")
	alerts, err := os.ReadFile("../monitoring/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(alerts), `job="`+svc.Name+`"`) {
		t.Errorf(`examples/monitoring/alerts.yaml does not select job="%s"`, svc.Name)
	}
}

// TestManifestsAreAcceptedByTheAPIServer creates every object on a real
// kube-apiserver: the Namespace for real, the rest with server-side dry-run
// and strict field validation. Then, with the RBAC objects created for
// real, it does as the service account what the daemon does (leader
// election, one LIST, apply and delete of a Secret) and checks what the
// account must not do.
func TestManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	acceptedByTheAPIServer(t, manifests(t), "deploy")
}

func acceptedByTheAPIServer(t *testing.T, ms []deploycheck.Manifest, name string) {
	api := deploycheck.NewAPIServer(t, name)
	t.Run("dry-run", func(t *testing.T) { api.CheckAccepted(t, ms) })
	if t.Failed() {
		return
	}
	t.Run("the service account can do what the daemon does, and no more", func(t *testing.T) {
		api.CheckServiceAccount(t, ms)
	})
}
