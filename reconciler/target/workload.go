package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/schemas"
)

const (
	// AnnRestartedAt is the pod template annotation `kubectl rollout
	// restart` sets: changing it rolls the workload's pods.
	AnnRestartedAt = "kubectl.kubernetes.io/restartedAt"
	// AnnRestartedFor lists, newest first, the serials certfleet restarted
	// a workload for (comma-separated, at most restartedForKept): a
	// workload is restarted at most once per serial, even when several
	// certificates feed it.
	AnnRestartedFor = "certfleet.dev/restarted-for-serial"
	// restartedForKept bounds AnnRestartedFor; a workload fed by more
	// certificates than this could be restarted once more for an old serial.
	restartedForKept = 8
)

// Workload is what a pass knows of a workload a target restarts.
type Workload struct {
	// RestartedFor are the serials certfleet restarted it for, newest first.
	RestartedFor []string
}

// ErrNoWorkload is returned for a workload that does not exist.
var ErrNoWorkload = errors.New("the workload does not exist")

// templateAnnotations reads a workload's pod template annotations.
func templateAnnotations(ctx context.Context, c kubernetes.Interface, kind schemas.WorkloadKind, namespace, name string) (map[string]string, error) {
	apps := c.AppsV1()
	switch kind {
	case schemas.Deployment:
		w, err := apps.Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return w.Spec.Template.Annotations, nil
	case schemas.StatefulSet:
		w, err := apps.StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return w.Spec.Template.Annotations, nil
	case schemas.DaemonSet:
		w, err := apps.DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return w.Spec.Template.Annotations, nil
	}
	return nil, fmt.Errorf("certfleet restarts Deployments, StatefulSets and DaemonSets, not %s", kind)
}

// ObserveWorkload reads which serials certfleet restarted a workload in a
// cluster for. A missing workload is ErrNoWorkload, named.
func (k *Kube) ObserveWorkload(ctx context.Context, cluster, namespace string, r schemas.Restart) (*Workload, error) {
	c, err := k.Clients(ctx, cluster)
	if err != nil {
		return nil, err
	}
	ann, err := templateAnnotations(ctx, c, r.Kind, namespace, r.Name)
	if err != nil {
		return nil, workloadErr(cluster, namespace, r, "reading", err)
	}
	w := &Workload{}
	if v := ann[AnnRestartedFor]; v != "" {
		w.RestartedFor = strings.Split(v, ",")
	}
	return w, nil
}

// Restart rolls a workload's pods as `kubectl rollout restart` does — the
// restartedAt annotation on its pod template, now — and adds serial to the
// serials it was restarted for. The patch (a strategic merge patch, field
// manager certfleet) holds these two pod template annotations and nothing
// else: the rest of the workload stays its owners'. A missing workload is
// ErrNoWorkload (a patch never creates one).
func (k *Kube) Restart(ctx context.Context, cluster, namespace string, r schemas.Restart, serial string, before []string, now time.Time) error {
	c, err := k.Clients(ctx, cluster)
	if err != nil {
		return err
	}
	serials := append([]string{serial}, slices.DeleteFunc(slices.Clone(before), func(s string) bool { return s == serial || s == "" })...)
	if len(serials) > restartedForKept {
		serials = serials[:restartedForKept]
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnRestartedAt: now.UTC().Format(time.RFC3339), AnnRestartedFor: strings.Join(serials, ",")},
	}}}})
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	apps := c.AppsV1()
	switch r.Kind {
	case schemas.Deployment:
		_, err = apps.Deployments(namespace).Patch(ctx, r.Name, types.StrategicMergePatchType, patch, opts)
	case schemas.StatefulSet:
		_, err = apps.StatefulSets(namespace).Patch(ctx, r.Name, types.StrategicMergePatchType, patch, opts)
	case schemas.DaemonSet:
		_, err = apps.DaemonSets(namespace).Patch(ctx, r.Name, types.StrategicMergePatchType, patch, opts)
	default:
		err = fmt.Errorf("certfleet restarts Deployments, StatefulSets and DaemonSets, not %s", r.Kind)
	}
	if err != nil {
		return workloadErr(cluster, namespace, r, "restarting", err)
	}
	return nil
}

func workloadErr(cluster, namespace string, r schemas.Restart, doing string, err error) error {
	if apierrors.IsNotFound(err) {
		err = ErrNoWorkload
	}
	return fmt.Errorf("%s %s %s/%s in cluster %s: %w", doing, r.Kind, namespace, r.Name, cluster, err)
}
