// Package deploycheck checks Kubernetes manifests that run `certfleet
// serve` (examples/deploy, and what charts/certfleet renders): that they fit
// the daemon's configuration and each other, that a real kube-apiserver
// accepts them, and that their service account can do what the daemon does
// and no more.
package deploycheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/internal/memlimit"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/serve"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// Manifest is one object and the file it came from.
type Manifest struct {
	File string
	Obj  *unstructured.Unstructured
}

// Decode reads every YAML or JSON document of b, skipping empty ones.
func Decode(file string, b []byte) ([]Manifest, error) {
	var out []Manifest
	dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: a document without apiVersion, kind or name: %v", file, u.Object)
		}
		out = append(out, Manifest{file, &u})
	}
}

// One returns the only object of a kind, converted to its Go type.
func One[T any](t testing.TB, ms []Manifest, kind string) *T {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, m := range ms {
		if m.Obj.GetKind() == kind {
			found = append(found, m.Obj)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects of kind %s; want 1", len(found), kind)
	}
	v := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(found[0].Object, v); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	return v
}

// Config loads the ConfigMap's certfleet.yaml as the daemon does.
func Config(t testing.TB, ms []Manifest) (*schemas.ServeConfig, *corev1.ConfigMap) {
	t.Helper()
	cm := One[corev1.ConfigMap](t, ms, "ConfigMap")
	text, ok := cm.Data["certfleet.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no certfleet.yaml", cm.Name)
	}
	file := filepath.Join(t.TempDir(), "certfleet.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := serve.LoadConfig(file)
	if err != nil {
		t.Fatalf("the ConfigMap's certfleet.yaml does not load: %v", err)
	}
	return cfg, cm
}

// CheckConfiguration loads certfleet.yaml as `certfleet serve` does and
// checks that every file it names is mounted, the listen port is the
// container's, and the leader election Role is for its Lease. It returns
// the keys of the credentials Secret the configuration reads, which the
// Secret a user creates must have.
func CheckConfiguration(t testing.TB, ms []Manifest) (secretKeys []string) {
	t.Helper()
	cfg, cm := Config(t, ms)
	if cfg.Backend.Type != "vault" || cfg.Backend.Vault.TokenFile == "" || cfg.Source.URL == "" {
		t.Errorf("want a Vault backend with a token file and a source URL; got backend %q, tokenFile %q, source %q",
			cfg.Backend.Type, cfg.Backend.Vault.TokenFile, cfg.Source.URL)
	}
	// Two replicas without a Lease would both act.
	if dep := One[appsv1.Deployment](t, ms, "Deployment"); !cfg.LeaderElection.Enabled && (dep.Spec.Replicas == nil || *dep.Spec.Replicas > 1) {
		t.Error("leaderElection.enabled is false, with more than one replica")
	}

	dep := One[appsv1.Deployment](t, ms, "Deployment")
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers; want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	wantArgs := []string{"serve", "--config", "/etc/certfleet/certfleet.yaml", "--leader-elect", "--log-format", "json"}
	if !cfg.LeaderElection.Enabled {
		wantArgs = slices.DeleteFunc(wantArgs, func(a string) bool { return a == "--leader-elect" })
	}
	// A shard's Deployment ends its args with --shard <name>, one the
	// configuration declares, and advertises its pod's IP in its Lease.
	shard := ""
	if n := len(c.Args); n >= 2 && c.Args[n-2] == "--shard" {
		shard = c.Args[n-1]
		wantArgs = append(wantArgs, "--shard", shard)
		if err := serve.WithShard(cfg, shard); err != nil {
			t.Errorf("Deployment %s: %v", dep.Name, err)
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "POD_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP"
		}) {
			t.Errorf("Deployment %s: no env POD_IP from status.podIP, the address `certfleet fleet` reads the shard's /report at", dep.Name)
		}
	}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("args %q; want %q", c.Args, wantArgs)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	// mountOf finds the mount a file is under, and the file's name in it.
	mountOf := func(file string) (corev1.VolumeMount, string, bool) {
		for _, m := range c.VolumeMounts {
			if rel, ok := strings.CutPrefix(file, m.MountPath+"/"); ok {
				return m, rel, true
			}
		}
		return corev1.VolumeMount{}, "", false
	}
	keys := map[string]bool{}
	files := map[string]string{
		"--config": wantArgs[2], "kubeconfig": cfg.Kubeconfig, "backend.vault.tokenFile": cfg.Backend.Vault.TokenFile,
		"backend.vault.caCert": cfg.Backend.Vault.CACert, "source.auth.passwordFile": cfg.Source.Auth.PasswordFile,
		"source.auth.tokenFile": cfg.Source.Auth.TokenFile, "webhook.secretFile": cfg.Webhook.SecretFile,
	}
	for field, file := range files {
		if file == "" {
			continue
		}
		m, key, ok := mountOf(file)
		if !ok {
			t.Errorf("%s is %s, which no volume mount holds", field, file)
			continue
		}
		switch v := volumes[m.Name]; {
		case v.ConfigMap != nil:
			if v.ConfigMap.Name != cm.Name {
				t.Errorf("%s: volume %s mounts ConfigMap %s, not %s", field, m.Name, v.ConfigMap.Name, cm.Name)
			} else if _, ok := cm.Data[key]; !ok {
				t.Errorf("%s is %s, but ConfigMap %s has no key %s", field, file, cm.Name, key)
			}
		case v.Secret != nil:
			keys[key] = true
		default:
			t.Errorf("%s is %s, on volume %s, which is neither the ConfigMap nor a Secret", field, file, m.Name)
		}
	}
	// The audit log is written: a writable emptyDir, since the root is read-only.
	if m, _, ok := mountOf(cfg.AuditLog); !ok || m.ReadOnly || volumes[m.Name].EmptyDir == nil {
		t.Errorf("auditLog %s is not on a writable emptyDir mount", cfg.AuditLog)
	}
	if m, _, ok := mountOf("/tmp/certfleet-clone-x"); !ok || m.ReadOnly || volumes[m.Name].EmptyDir == nil {
		t.Error("/tmp, where the source is cloned, is not a writable emptyDir")
	}
	// The kubeconfig's context for delivery into this cluster.
	kc, err := clientcmd.Load([]byte(cm.Data[path.Base(cfg.Kubeconfig)]))
	if err != nil {
		t.Fatalf("the ConfigMap's kubeconfig: %v", err)
	}
	if ctx, ok := kc.Contexts["local"]; !ok || kc.AuthInfos[ctx.AuthInfo] == nil || kc.AuthInfos[ctx.AuthInfo].TokenFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
		t.Error(`the kubeconfig has no context "local" authenticating with the service account's token file`)
	}

	_, port, _ := strings.Cut(cfg.Listen, ":")
	listen, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("listen is %q: %v", cfg.Listen, err)
	}
	var portName string
	for _, p := range c.Ports {
		if p.ContainerPort == int32(listen) {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Fatalf("listen is %s, but the container exposes %v", cfg.Listen, c.Ports)
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != portName {
			t.Errorf("no probe GET %s on port %s", want, portName)
		}
	}

	if !cfg.LeaderElection.Enabled {
		return slices.Sorted(maps.Keys(keys))
	}
	role := One[rbacv1.Role](t, ms, "Role")
	ns, name := cfg.LeaderElection.Namespace, cfg.LeaderElection.Name
	if ns == "" {
		ns = serve.DefaultLeaseNamespace
	}
	name = serve.LeaseName(name, shard)
	if role.Namespace != ns || !slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.ResourceNames, name) }) {
		t.Errorf("Role %s/%s does not grant the Lease %s/%s", role.Namespace, role.Name, ns, name)
	}
	return slices.Sorted(maps.Keys(keys))
}

// CheckWiring checks the names and labels that tie the objects to each
// other, which the API server accepts even when they are wrong, and the
// pod's security context and resources. A ServiceMonitor is optional.
func CheckWiring(t testing.TB, ms []Manifest) {
	t.Helper()
	dep := One[appsv1.Deployment](t, ms, "Deployment")
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("the container's securityContext is not read-only root, no privilege escalation, drop ALL: %+v", sc)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("the pod does not run as non-root")
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	// The Go runtime's soft memory limit follows the container's, as Flux's
	// controllers set it: the collector works harder as the heap nears the
	// limit instead of letting the kernel kill the pod at it. certfleet sets
	// it itself from CERTFLEET_MEMORY_LIMIT (internal/memlimit), 80 MiB
	// below the container's limit, for the binary's mapped code that the
	// runtime does not count; a GOMEMLIMIT in the env would win over it and
	// leave no such room.
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		r := e.ValueFrom
		return e.Name == memlimit.Env && r != nil && r.ResourceFieldRef != nil && r.ResourceFieldRef.Resource == "limits.memory" &&
			(r.ResourceFieldRef.ContainerName == "" || r.ResourceFieldRef.ContainerName == c.Name) &&
			(r.ResourceFieldRef.Divisor.IsZero() || r.ResourceFieldRef.Divisor.Value() == 1)
	}) {
		t.Errorf("Deployment %s: no env %s from the container's limits.memory in bytes (resourceFieldRef, divisor 1)", dep.Name, memlimit.Env)
	}
	if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" }) {
		t.Errorf("Deployment %s: env GOMEMLIMIT overrides the soft limit certfleet sets from %s and leaves no room for the binary's mapped code", dep.Name, memlimit.Env)
	}

	sa := One[corev1.ServiceAccount](t, ms, "ServiceAccount")
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("the pod runs as %q, not ServiceAccount %s", pod.ServiceAccountName, sa.Name)
	}
	subject := rbacv1.Subject{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}
	crb := One[rbacv1.ClusterRoleBinding](t, ms, "ClusterRoleBinding")
	cr := One[rbacv1.ClusterRole](t, ms, "ClusterRole")
	// The Role is for leader election, which a single replica may go without.
	if slices.ContainsFunc(ms, func(m Manifest) bool { return m.Obj.GetKind() == "Role" }) {
		rb := One[rbacv1.RoleBinding](t, ms, "RoleBinding")
		role := One[rbacv1.Role](t, ms, "Role")
		if !slices.Contains(rb.Subjects, subject) || rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != role.Name || rb.Namespace != role.Namespace {
			t.Errorf("RoleBinding %s does not bind Role %s to %v", rb.Name, role.Name, subject)
		}
	}
	if !slices.Contains(crb.Subjects, subject) || crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != cr.Name {
		t.Errorf("ClusterRoleBinding %s does not bind ClusterRole %s to %v", crb.Name, cr.Name, subject)
	}

	podLabels := dep.Spec.Template.Labels
	svc := One[corev1.Service](t, ms, "Service")
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pods' labels %v", k, v, podLabels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http-metrics" || svc.Spec.Ports[0].Port != 8080 ||
		svc.Spec.Ports[0].TargetPort.String() != c.Ports[0].Name {
		t.Errorf("want one Service port http-metrics 8080 to the container's port; got %+v", svc.Spec.Ports)
	}
	var sm struct {
		Spec struct {
			Selector          metav1.LabelSelector `json:"selector"`
			NamespaceSelector struct {
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			Endpoints []struct {
				Port        string `json:"port"`
				Path        string `json:"path"`
				HonorLabels bool   `json:"honorLabels"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	found := false
	for _, m := range ms {
		if m.Obj.GetKind() == "ServiceMonitor" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m.Obj.Object, &sm); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		return
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service's labels %v", k, v, svc.Labels)
		}
	}
	if !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, svc.Namespace) {
		t.Errorf("the ServiceMonitor does not look in %s", svc.Namespace)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" || !sm.Spec.Endpoints[0].HonorLabels {
		t.Errorf("want one ServiceMonitor endpoint: port %s, /metrics, honorLabels; got %+v", svc.Spec.Ports[0].Name, sm.Spec.Endpoints)
	}
}

// serviceMonitorCRD is a cut of the Prometheus Operator's ServiceMonitor
// CRD: the fields the example uses, with their types and the duration
// pattern, so a misspelt or mistyped field is refused.
const serviceMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              required: [selector]
              properties:
                jobLabel: {type: string}
                selector:
                  type: object
                  properties:
                    matchLabels: {type: object, additionalProperties: {type: string}}
                    matchExpressions:
                      type: array
                      items:
                        type: object
                        required: [key, operator]
                        properties:
                          key: {type: string}
                          operator: {type: string}
                          values: {type: array, items: {type: string}}
                namespaceSelector:
                  type: object
                  properties:
                    any: {type: boolean}
                    matchNames: {type: array, items: {type: string}}
                endpoints:
                  type: array
                  items:
                    type: object
                    properties:
                      port: {type: string}
                      targetPort: {x-kubernetes-int-or-string: true}
                      path: {type: string}
                      scheme: {type: string, enum: [http, https, HTTP, HTTPS]}
                      interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      scrapeTimeout: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      honorLabels: {type: boolean}
                      honorTimestamps: {type: boolean}
`

// prometheusRuleCRD is a cut of the Prometheus Operator's PrometheusRule
// CRD, as serviceMonitorCRD is of its ServiceMonitor.
const prometheusRuleCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheusrules.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: PrometheusRule, listKind: PrometheusRuleList, plural: prometheusrules, singular: prometheusrule}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          required: [spec]
          properties:
            spec:
              type: object
              properties:
                groups:
                  type: array
                  items:
                    type: object
                    required: [name, rules]
                    properties:
                      name: {type: string, minLength: 1}
                      interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                      rules:
                        type: array
                        items:
                          type: object
                          required: [expr]
                          properties:
                            alert: {type: string}
                            record: {type: string}
                            expr: {x-kubernetes-int-or-string: true}
                            for: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                            keep_firing_for: {type: string}
                            labels: {type: object, additionalProperties: {type: string}}
                            annotations: {type: object, additionalProperties: {type: string}}
`

// createOrder is the order objects can be created in: what others refer to first.
var createOrder = []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "ConfigMap", "Secret",
	"ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", "Service", "Deployment", "PodDisruptionBudget",
	"ServiceMonitor", "PrometheusRule"}

func rank(kind string) int {
	if i := slices.Index(createOrder, kind); i >= 0 {
		return i
	}
	return len(createOrder)
}

// APIServer is a kube-apiserver of the test bed with the Prometheus
// Operator's ServiceMonitor and PrometheusRule kinds installed (cuts of
// their CRDs), so objects of those kinds are validated too.
type APIServer struct {
	Cluster *testbed.Cluster
	dyn     dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// NewAPIServer starts one, stopped when the test ends.
func NewAPIServer(t testing.TB, name string) *APIServer {
	t.Helper()
	cl := testbed.NewCluster(t, name)
	admin := cl.RESTConfig()
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	a := &APIServer{Cluster: cl, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
	ctx := context.Background()
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, text := range []string{serviceMonitorCRD, prometheusRuleCRD} {
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(text), &crd.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(crdGVR).Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating the CRD %s: %v", crd.GetName(), err)
		}
		eventually(t, 30*time.Second, "the CRD "+crd.GetName()+" to be established", func() bool {
			u, err := dyn.Resource(crdGVR).Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				if c, ok := c.(map[string]any); ok && c["type"] == "Established" && c["status"] == "True" {
					return true
				}
			}
			return false
		})
	}
	eventually(t, 30*time.Second, "discovery to serve monitoring.coreos.com/v1", func() bool {
		a.mapper.Reset()
		for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
			if _, err := a.mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: kind}, "v1"); err != nil {
				return false
			}
		}
		return true
	})
	return a
}

// Create creates an object as an administrator, with strict field
// validation, and with dryRun as a server-side dry run.
func (a *APIServer) Create(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	opts := metav1.CreateOptions{FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if u.GetNamespace() == "" {
			return errors.New("a namespaced object without metadata.namespace: kubectl apply would put it in the current namespace")
		}
		ri = a.dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
	} else if u.GetNamespace() != "" {
		return errors.New("a cluster-scoped object with metadata.namespace")
	}
	_, err = ri.Create(ctx, u, opts)
	return err
}

// CheckAccepted creates every object: a Namespace for real, the rest with
// server-side dry-run and strict field validation, so the server's
// defaulting, validation and admission (Pod Security of the namespace
// included) all run and a misspelt field is an error rather than dropped.
func (a *APIServer) CheckAccepted(t testing.TB, ms []Manifest) {
	t.Helper()
	ctx := context.Background()
	sorted := slices.Clone(ms)
	slices.SortStableFunc(sorted, func(a, b Manifest) int { return rank(a.Obj.GetKind()) - rank(b.Obj.GetKind()) })
	for _, m := range sorted {
		forReal := m.Obj.GetKind() == "Namespace"
		if err := a.Create(ctx, m.Obj.DeepCopy(), !forReal); err != nil {
			t.Errorf("%s: %s %s: %v", m.File, m.Obj.GetKind(), m.Obj.GetName(), err)
		}
	}
	for _, m := range ms {
		if m.Obj.GetKind() != "Deployment" {
			continue
		}
		// Pod Security admission judges Pods, not Deployments (those only
		// get warnings): a Pod of the template, in the Deployment's
		// namespace, meets the namespace's enforced level.
		pod := func(mutate func(c map[string]any)) *unstructured.Unstructured {
			spec, _, _ := unstructured.NestedMap(m.Obj.Object, "spec", "template", "spec")
			containers, _, _ := unstructured.NestedSlice(spec, "containers")
			if mutate != nil {
				mutate(containers[0].(map[string]any))
			}
			_ = unstructured.SetNestedSlice(spec, containers, "containers")
			u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod", "spec": spec}}
			u.SetNamespace(m.Obj.GetNamespace())
			u.SetName(m.Obj.GetName() + "-pod")
			return u
		}
		if err := a.Create(ctx, pod(nil), true); err != nil {
			t.Errorf("%s: a Pod of Deployment %s's template: %v", m.File, m.Obj.GetName(), err)
		}
		// The check is real: the namespace enforces Pod Security, so a
		// container that may escalate its privileges is refused.
		escalating := pod(func(c map[string]any) {
			c["securityContext"].(map[string]any)["allowPrivilegeEscalation"] = true
		})
		if err := a.Create(ctx, escalating, true); err == nil || !strings.Contains(err.Error(), "allowPrivilegeEscalation") {
			t.Errorf("a Pod allowing privilege escalation in %s: got %v; want Pod Security to refuse it (is the namespace enforcing restricted?)", m.Obj.GetNamespace(), err)
		}
		// And strict validation refuses a misspelt field.
		bad := m.Obj.DeepCopy()
		containers, _, _ := unstructured.NestedSlice(bad.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["readinesProbe"] = map[string]any{}
		_ = unstructured.SetNestedSlice(bad.Object, containers, "spec", "template", "spec", "containers")
		if err := a.Create(ctx, bad, true); err == nil || !strings.Contains(err.Error(), "readinesProbe") {
			t.Errorf("a Deployment with a misspelt readinesProbe: got %v, want an error naming it", err)
		}
	}
}

// CheckServiceAccount creates the ServiceAccount and RBAC objects for real
// and, acting as the service account, does what the daemon does (leader
// election with the configured Lease, one LIST of TLS Secrets in every
// namespace, apply and delete of a Secret, a workload's restart), then checks what the account
// must not do. Call it once per APIServer: it creates namespaces of its own.
func (a *APIServer) CheckServiceAccount(t testing.TB, ms []Manifest) {
	t.Helper()
	ctx := context.Background()
	sorted := slices.Clone(ms)
	slices.SortStableFunc(sorted, func(a, b Manifest) int { return rank(a.Obj.GetKind()) - rank(b.Obj.GetKind()) })
	for _, m := range sorted {
		switch m.Obj.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			if err := a.Create(ctx, m.Obj.DeepCopy(), false); err != nil {
				t.Fatalf("%s: %s %s: %v", m.File, m.Obj.GetKind(), m.Obj.GetName(), err)
			}
		}
	}
	sa := One[corev1.ServiceAccount](t, ms, "ServiceAccount")
	cfg, _ := Config(t, ms)
	asSA := rest.CopyConfig(a.Cluster.RESTConfig())
	user := "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace, "system:authenticated"}
	asSA.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	client, err := kubernetes.NewForConfig(asSA)
	if err != nil {
		t.Fatal(err)
	}
	adminClient, err := a.Cluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}

	// Leader election, by the daemon's own Elector, with the Lease the
	// configuration names, through a kubeconfig context that acts as
	// the service account.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	api := a.Cluster.KubeconfigAPI()
	api.AuthInfos[a.Cluster.Name].Impersonate, api.AuthInfos[a.Cluster.Name].ImpersonateGroups = user, groups
	if err := clientcmd.WriteToFile(*api, kubeconfig); err != nil {
		t.Fatal(err)
	}
	// Each shard's replicas elect on the shard's own Lease; an unsharded
	// daemon on the one the configuration names.
	shards := []string{""}
	if cfg.Sharding != nil {
		shards = cfg.Sharding.Shards
	}
	leaseNS := cfg.LeaderElection.Namespace
	for _, shard := range shards {
		local := &schemas.ServeConfig{
			Source:         schemas.ServeSource{URL: t.TempDir()},
			Backend:        schemas.ServeBackend{Type: "local", StateDir: t.TempDir()},
			Kubeconfig:     kubeconfig,
			AuditLog:       filepath.Join(t.TempDir(), "audit.log"),
			LeaderElection: cfg.LeaderElection,
			Sharding:       cfg.Sharding,
			Shard:          shard,
		}
		local.LeaderElection.KubeconfigContext = a.Cluster.Name
		local.LeaderElection.LeaseDuration, local.LeaderElection.RenewDeadline, local.LeaderElection.RetryPeriod = "4s", "3s", "500ms"
		d, err := serve.New(ctx, local, nil)
		if err != nil {
			t.Fatal(err)
		}
		elector := serve.NewElector(d, "deploy-test")
		electCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- elector.Run(electCtx) }()
		eventually(t, 30*time.Second, "the service account to take the lease of shard "+strconv.Quote(shard), elector.Leading)
		stop()
		if err := <-done; err != nil {
			t.Errorf("leader election (shard %q): %v", shard, err)
		}
		d.Close()
		name := serve.LeaseName(cfg.LeaderElection.Name, shard)
		lease, err := adminClient.CoordinationV1().Leases(leaseNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the Lease %s/%s: %v", leaseNS, name, err)
		}
		// Released on cancel: an update by the service account too.
		if lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
			t.Errorf("the lease %s is still held by %q after the elector stopped", name, *lease.Spec.HolderIdentity)
		}
	}
	if cfg.Sharding != nil {
		// `certfleet fleet` finds every shard's leader by listing the Leases.
		views, err := serve.ReadFleet(ctx, client, leaseNS, cfg.LeaderElection.Name, "", nil)
		if err != nil {
			t.Errorf("reading the shards' Leases as the service account: %v", err)
		}
		var got []string
		for _, v := range views {
			got = append(got, v.Lease)
		}
		var want []string
		for _, shard := range shards {
			want = append(want, serve.LeaseName(cfg.LeaderElection.Name, shard))
		}
		if !slices.Equal(got, want) {
			t.Errorf("certfleet fleet, as the service account, found the Leases %v; want %v", got, want)
		}
	}

	// Delivery: the Kubernetes target's own code, as the service account.
	for _, ns := range []string{"payments", "legacy"} {
		if _, err := adminClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, keyPEM := selfSigned(t, "api.payments.example.test")
	if _, err := adminClient.CoreV1().Secrets("legacy").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hand-made-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kube := &target.Kube{Clients: func(context.Context, string) (kubernetes.Interface, error) { return client, nil }}
	tgt := render.Target{Address: render.KubernetesAddress("local", "payments", "api-tls")}
	md := target.Meta{CertificateID: "payments/api", Issuer: "mtls", RenewAt: time.Now().Add(time.Hour), Revision: "main@sha1:0"}
	if err := kube.Write(ctx, tgt, target.Bundle{Cert: certPEM, Key: keyPEM, CA: certPEM}, md, nil); err != nil {
		t.Fatalf("writing a Secret as the service account: %v", err)
	}
	observed, err := kube.ObserveCluster(ctx, "local")
	if err != nil {
		t.Fatalf("listing TLS Secrets in every namespace as the service account: %v", err)
	}
	if o := observed[tgt.Key]; o == nil || !o.Managed || !o.KeyMatches() {
		t.Errorf("the written Secret observed as %+v; want managed, with its key", o)
	}
	if o := observed[render.KubernetesAddress("local", "legacy", "hand-made-tls").Key]; o == nil || o.Managed {
		t.Errorf("the hand-made Secret in another namespace observed as %+v; want unmanaged", o)
	}
	if err := kube.Write(ctx, tgt, target.Bundle{Cert: certPEM, Key: keyPEM}, md, observed[tgt.Key]); err != nil {
		t.Errorf("updating the Secret as the service account: %v", err)
	}
	if err := kube.Delete(ctx, tgt, md.CertificateID, nil); err != nil {
		t.Errorf("pruning the Secret as the service account: %v", err)
	}

	// A target's restart: read the workload, set its restart annotations.
	labels := map[string]string{"app": "api"}
	if _, err := adminClient.AppsV1().Deployments("payments").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "api:1"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	restart := schemas.Restart{Kind: schemas.Deployment, Name: "api"}
	w, err := kube.ObserveWorkload(ctx, "local", "payments", restart)
	if err != nil {
		t.Errorf("reading a Deployment as the service account: %v", err)
	} else if err := kube.Restart(ctx, "local", "payments", restart, "01:02", w.RestartedFor, time.Now()); err != nil {
		t.Errorf("restarting a Deployment as the service account: %v", err)
	} else if d, err := adminClient.AppsV1().Deployments("payments").Get(ctx, "api", metav1.GetOptions{}); err != nil ||
		d.Spec.Template.Annotations[target.AnnRestartedFor] != "01:02" {
		t.Errorf("the restarted Deployment (%v): template annotations %v", err, d.Spec.Template.Annotations)
	}
	for _, kind := range []schemas.WorkloadKind{schemas.StatefulSet, schemas.DaemonSet} {
		// Absent, but allowed: NotFound, not Forbidden.
		if _, err := kube.ObserveWorkload(ctx, "local", "payments", schemas.Restart{Kind: kind, Name: "api"}); !errors.Is(err, target.ErrNoWorkload) {
			t.Errorf("reading a %s as the service account: %v; want %v", kind, err, target.ErrNoWorkload)
		}
	}

	// And no more.
	denied := map[string]func() error{
		"list ConfigMaps in its own namespace": func() error {
			_, err := client.CoreV1().ConfigMaps(sa.Namespace).List(ctx, metav1.ListOptions{})
			return err
		},
		"list Pods": func() error { _, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); return err },
		"list Namespaces": func() error {
			_, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err
		},
		"delete its Lease": func() error {
			return client.CoordinationV1().Leases(leaseNS).Delete(ctx, serve.LeaseName(cfg.LeaderElection.Name, shards[0]), metav1.DeleteOptions{})
		},
		"take another Lease": func() error {
			_, err := client.CoordinationV1().Leases("kube-system").Get(ctx, "kube-controller-manager", metav1.GetOptions{})
			return err
		},
		"list the Leases of another namespace": func() error {
			_, err := client.CoordinationV1().Leases("kube-system").List(ctx, metav1.ListOptions{})
			return err
		},
		"delete a Deployment": func() error {
			return client.AppsV1().Deployments("payments").Delete(ctx, "api", metav1.DeleteOptions{})
		},
		"list Deployments": func() error {
			_, err := client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
			return err
		},
		"write a Role": func() error {
			_, err := client.RbacV1().Roles(sa.Namespace).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
			return err
		},
	}
	for what, do := range denied {
		if err := do(); !apierrors.IsForbidden(err) {
			t.Errorf("the service account may %s (err %v); want Forbidden", what, err)
		}
	}
}

func eventually(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func selfSigned(t testing.TB, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
