package target

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/reconciler/render"
)

// Clients returns the client of a catalog cluster by name.
type Clients func(ctx context.Context, cluster string) (kubernetes.Interface, error)

// Kube reads and writes kubernetes.io/tls Secrets.
type Kube struct {
	Clients Clients
}

// KubeKey is the key of a Secret target, as render makes it.
func KubeKey(cluster, namespace, name string) string {
	return "kubernetes/" + cluster + "/" + namespace + "/" + name
}

// ObserveCluster lists every TLS Secret of a cluster, in pages, once per
// pass: certfleet's (desired or orphaned) and the others (unmanaged: the
// sprawl drift reports).
func (k *Kube) ObserveCluster(ctx context.Context, cluster string) (map[string]*Observed, error) {
	c, err := k.Clients(ctx, cluster)
	if err != nil {
		return nil, err
	}
	out := map[string]*Observed{}
	opts := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeTLS), Limit: 500}
	for {
		list, err := c.CoreV1().Secrets("").List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: listing TLS Secrets: %w", cluster, err)
		}
		for i := range list.Items {
			s := &list.Items[i]
			o := &Observed{
				Target: render.Target{Kind: render.Kubernetes, Key: KubeKey(cluster, s.Namespace, s.Name),
					Cluster: cluster, Namespace: s.Namespace, SecretName: s.Name},
				Exists:  true,
				Bundle:  Bundle{Cert: s.Data[corev1.TLSCertKey], Key: s.Data[corev1.TLSPrivateKeyKey], CA: s.Data["ca.crt"]},
				Managed: s.Labels[LabelManagedBy] == ManagedByValue,
			}
			if o.Managed {
				o.Annotations = s.Annotations
			}
			o.parse()
			out[o.Target.Key] = o
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

// Write server-side applies the Secret with field manager certfleet: the
// fields certfleet owns are set, others' fields are left alone.
func (k *Kube) Write(ctx context.Context, t render.Target, b Bundle, m Meta) error {
	c, err := k.Clients(ctx, t.Cluster)
	if err != nil {
		return err
	}
	labels := map[string]string{}
	annotations := map[string]string{}
	if t.Template != nil {
		for k, v := range t.Template.Labels {
			labels[k] = v
		}
		for k, v := range t.Template.Annotations {
			annotations[k] = v
		}
	}
	labels[LabelManagedBy] = ManagedByValue
	labels[LabelCertificate] = CertificateLabel(m.CertificateID)
	for k, v := range m.Annotations(b) {
		annotations[k] = v
	}
	ac := corev1ac.Secret(t.SecretName, t.Namespace).
		WithType(corev1.SecretTypeTLS).
		WithLabels(labels).
		WithAnnotations(annotations).
		WithData(map[string][]byte{corev1.TLSCertKey: b.Cert, corev1.TLSPrivateKeyKey: b.Key, "ca.crt": b.CA})
	if _, err := c.CoreV1().Secrets(t.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying Secret %s/%s in cluster %s: %w", t.Namespace, t.SecretName, t.Cluster, err)
	}
	return nil
}

// Delete removes a Secret certfleet manages; a Secret that is gone already is fine.
func (k *Kube) Delete(ctx context.Context, t render.Target) error {
	c, err := k.Clients(ctx, t.Cluster)
	if err != nil {
		return err
	}
	err = c.CoreV1().Secrets(t.Namespace).Delete(ctx, t.SecretName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Secret %s/%s in cluster %s: %w", t.Namespace, t.SecretName, t.Cluster, err)
	}
	return nil
}

// WriteTrustBundle server-side applies a ConfigMap (or a Secret, kind
// "Secret") holding a PEM bundle of CA certificates under key.
func (k *Kube) WriteTrustBundle(ctx context.Context, cluster, namespace, name, kind, key, pem, bundle string) error {
	c, err := k.Clients(ctx, cluster)
	if err != nil {
		return err
	}
	labels := map[string]string{LabelManagedBy: ManagedByValue, "certfleet.dev/trust-bundle": CertificateLabel(bundle)}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if kind == "Secret" {
		ac := corev1ac.Secret(name, namespace).WithType(corev1.SecretTypeOpaque).WithLabels(labels).WithData(map[string][]byte{key: []byte(pem)})
		_, err = c.CoreV1().Secrets(namespace).Apply(ctx, ac, opts)
	} else {
		ac := corev1ac.ConfigMap(name, namespace).WithLabels(labels).WithData(map[string]string{key: pem})
		_, err = c.CoreV1().ConfigMaps(namespace).Apply(ctx, ac, opts)
	}
	if err != nil {
		return fmt.Errorf("applying trust bundle %s %s/%s in cluster %s: %w", kind, namespace, name, cluster, err)
	}
	return nil
}
