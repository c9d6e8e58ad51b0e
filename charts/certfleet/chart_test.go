package certfleet_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/examples/deploy/deploycheck"
	"github.com/certfleet/certfleet/internal/testbed"
)

// valueSet is one way a user installs the chart.
type valueSet struct {
	name, release, namespace string
	set                      []string
	// values is a values file, as a user writes one.
	values string
	// check makes the assertions particular to the set.
	check func(t *testing.T, ms []deploycheck.Manifest)
}

var required = []string{"source.url=https://git.example.com/platform/certificates.git", "vault.address=https://vault.vault.svc:8200"}

var valueSets = []valueSet{
	{
		name: "defaults", release: "fleet", namespace: "certfleet-system", set: required,
		check: func(t *testing.T, ms []deploycheck.Manifest) {
			dep := deploycheck.One[appsv1.Deployment](t, ms, "Deployment")
			if *dep.Spec.Replicas != 2 || !slices.Contains(dep.Spec.Template.Spec.Containers[0].Args, "--leader-elect") {
				t.Errorf("replicas %d, args %q; want 2 replicas electing a leader", *dep.Spec.Replicas, dep.Spec.Template.Spec.Containers[0].Args)
			}
			if img := dep.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/certfleet/certfleet:"+appVersion(t) {
				t.Errorf("image %s; want make image's repository with the chart's appVersion", img)
			}
			cfg, _ := deploycheck.Config(t, ms)
			if cfg.Webhook.SecretFile != "/var/run/secrets/certfleet/webhook-secret" || cfg.Backend.Vault.CACert == "" || cfg.Source.Auth.PasswordFile == "" {
				t.Errorf("webhook %q, Vault CA %q, Git password %q: want all three from the credentials Secret",
					cfg.Webhook.SecretFile, cfg.Backend.Vault.CACert, cfg.Source.Auth.PasswordFile)
			}
			deploycheck.One[map[string]any](t, ms, "PodDisruptionBudget")
			for _, m := range ms {
				if k := m.Obj.GetKind(); k == "ServiceMonitor" || k == "PrometheusRule" {
					t.Errorf("a %s by default, where the Prometheus Operator may not be installed", k)
				}
			}
		},
	},
	{
		name: "one replica without leader election or webhook from a public repository", release: "solo", namespace: "solo",
		set: append(slices.Clone(required), "replicas=1", "leaderElection.enabled=false", "webhook.enabled=false",
			"credentials.keys.gitPassword=", "credentials.keys.vaultCACert="),
		check: func(t *testing.T, ms []deploycheck.Manifest) {
			cfg, _ := deploycheck.Config(t, ms)
			if cfg.LeaderElection.Enabled || cfg.Webhook.SecretFile != "" || cfg.Source.Auth.PasswordFile != "" || cfg.Backend.Vault.CACert != "" {
				t.Errorf("config %+v; want no leader election, webhook, Git password or Vault CA", cfg)
			}
			for _, m := range ms {
				if k := m.Obj.GetKind(); k == "Role" || k == "RoleBinding" || k == "PodDisruptionBudget" {
					t.Errorf("a %s %s for a single replica without leader election", k, m.Obj.GetName())
				}
			}
		},
	},
	{
		name: "monitoring and a named lease and more configuration", release: "certfleet", namespace: "platform",
		set: append(slices.Clone(required), "serviceMonitor.enabled=true", "prometheusRule.enabled=true",
			"prometheusRule.labels.release=kube-prometheus", "leaderElection.leaseName=certfleet-lease", "replicas=3",
			"image.repository=registry.example.com/certfleet", "image.tag=v9.9.9", "resources.limits.memory=1Gi",
			"source.path=teams"),
		values: "extraConfig:\n  maxPruneShare: 0.3\n  timeouts:\n    vault: 45s\n",
		check: func(t *testing.T, ms []deploycheck.Manifest) {
			cfg, _ := deploycheck.Config(t, ms)
			if cfg.LeaderElection.Name != "certfleet-lease" || cfg.LeaderElection.Namespace != "platform" {
				t.Errorf("lease %s/%s; want platform/certfleet-lease", cfg.LeaderElection.Namespace, cfg.LeaderElection.Name)
			}
			if cfg.MaxPruneShare != 0.3 || cfg.Timeouts.Vault != "45s" || cfg.Source.Path != "teams" {
				t.Errorf("maxPruneShare %v, timeouts.vault %v, source.path %q: extraConfig and source.path not applied", cfg.MaxPruneShare, cfg.Timeouts.Vault, cfg.Source.Path)
			}
			dep := deploycheck.One[appsv1.Deployment](t, ms, "Deployment")
			c := dep.Spec.Template.Spec.Containers[0]
			if *dep.Spec.Replicas != 3 || c.Image != "registry.example.com/certfleet:v9.9.9" || c.Resources.Limits.Memory().String() != "1Gi" {
				t.Errorf("replicas %d, image %s, memory limit %s; want 3, registry.example.com/certfleet:v9.9.9, 1Gi", *dep.Spec.Replicas, c.Image, c.Resources.Limits.Memory())
			}
			// The alerts select job="certfleet": the ServiceMonitor takes the
			// job from the Service's app.kubernetes.io/name label.
			sm := deploycheck.One[map[string]any](t, ms, "ServiceMonitor")
			svc := deploycheck.One[corev1.Service](t, ms, "Service")
			if spec, _ := (*sm)["spec"].(map[string]any); spec["jobLabel"] != "app.kubernetes.io/name" || svc.Labels["app.kubernetes.io/name"] != "certfleet" {
				t.Errorf("ServiceMonitor jobLabel %v, Service label %q; want the job to be certfleet", spec["jobLabel"], svc.Labels["app.kubernetes.io/name"])
			}
			// The PrometheusRule holds examples/monitoring/alerts.yaml's groups.
			pr := deploycheck.One[map[string]any](t, ms, "PrometheusRule")
			var alerts map[string]any
			b, err := os.ReadFile("../../examples/monitoring/alerts.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &alerts); err != nil {
				t.Fatal(err)
			}
			if spec, _ := (*pr)["spec"].(map[string]any); !reflect.DeepEqual(spec["groups"], alerts["groups"]) {
				t.Error("the PrometheusRule's groups differ from examples/monitoring/alerts.yaml's")
			}
			if md, _ := (*pr)["metadata"].(map[string]any); md["labels"].(map[string]any)["release"] != "kube-prometheus" {
				t.Errorf("PrometheusRule labels %v; want prometheusRule.labels added", md["labels"])
			}
		},
	},
}

func appVersion(t *testing.T) string {
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	b, err := os.ReadFile("Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.AppVersion
}

// helm runs the test bed's helm CLI on this chart, with its own
// configuration and cache directories.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := testbed.Binary("helm")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		return stdout.String(), &helmError{err, stderr.String()}
	}
	return stdout.String(), nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + ": " + e.stderr }

// valueArgs gives helm the set's values. helm splits --values on commas, so
// the file's path (under the subtest's name) must have none.
func valueArgs(t *testing.T, vs valueSet) []string {
	out := []string{"--namespace", vs.namespace}
	if vs.values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(vs.values), 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, "--values", f)
	}
	return append(out, setArgs(vs.set)...)
}

func setArgs(set []string) []string {
	var out []string
	for _, s := range set {
		out = append(out, "--set", s)
	}
	return out
}

// render runs helm lint and helm template with a value set.
func render(t *testing.T, vs valueSet) []deploycheck.Manifest {
	t.Helper()
	if out, err := helm(t, append([]string{"lint", ".", "--strict"}, valueArgs(t, vs)...)...); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	out, err := helm(t, append([]string{"template", vs.release, "."}, valueArgs(t, vs)...)...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	ms, err := deploycheck.Decode("helm template "+vs.release, []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestChartRendersWhatTheDaemonNeeds lints and renders the chart with
// several value sets and checks what examples/deploy's tests check: the
// configuration loads as `certfleet serve` loads it and fits the
// Deployment, and the objects fit together.
func TestChartRendersWhatTheDaemonNeeds(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			ms := render(t, vs)
			keys := deploycheck.CheckConfiguration(t, ms)
			deploycheck.CheckWiring(t, ms)
			vs.check(t, ms)
			// Every key the configuration reads is one values.yaml names,
			// which README.md's kubectl create secret creates.
			for _, k := range keys {
				if !slices.Contains([]string{"git-token", "vault-token", "vault-ca.crt", "webhook-secret"}, k) {
					t.Errorf("the configuration reads key %s of the credentials Secret, which the README does not create", k)
				}
			}
			for _, m := range ms {
				if ns := m.Obj.GetNamespace(); ns != "" && ns != vs.namespace {
					t.Errorf("%s %s in namespace %s; want the release's, %s", m.Obj.GetKind(), m.Obj.GetName(), ns, vs.namespace)
				}
			}
		})
	}
}

// TestChartRefusesBrokenValues: a value set that would deploy something
// broken fails to render, with a message naming the value.
func TestChartRefusesBrokenValues(t *testing.T) {
	for _, c := range []struct {
		name string
		set  []string
		want string
	}{
		{"no repository", []string{"vault.address=https://vault:8200"}, "source.url is required"},
		{"no Vault", []string{"source.url=https://git.example.com/x.git"}, "vault.address is required"},
		{"two replicas without a lease", append(slices.Clone(required), "leaderElection.enabled=false"), "leaderElection.enabled is false"},
		{"a webhook without a secret", append(slices.Clone(required), "webhook.secretKey="), "webhook.secretKey is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := helm(t, append([]string{"template", "x", "."}, setArgs(c.set)...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v; want an error saying %q", err, c.want)
			}
		})
	}
}

// TestChartIsAcceptedByTheAPIServer creates every rendered object of every
// value set on a real kube-apiserver with server-side dry-run and strict
// field validation, in a namespace enforcing Pod Security "restricted";
// then, with the defaults' RBAC created for real, acts as the service
// account as the daemon does and checks what it must not do.
func TestChartIsAcceptedByTheAPIServer(t *testing.T) {
	api := deploycheck.NewAPIServer(t, "chart")
	admin, err := api.Cluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	for _, vs := range valueSets {
		ms := render(t, vs)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: vs.namespace,
			Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
		if _, err := admin.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Run("dry-run: "+vs.name, func(t *testing.T) { api.CheckAccepted(t, ms) })
		if vs.name == "defaults" && !t.Failed() {
			t.Run("the service account can do what the daemon does, and no more", func(t *testing.T) {
				api.CheckServiceAccount(t, ms)
			})
		}
	}
}
