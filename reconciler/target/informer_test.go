package target_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// With Watches, a cluster is observed from the informer's store: hand
// edits and deletions between passes reach it through the watch, and the
// passes' own writes and deletions are seen by the very next observation
// even while the store has not caught up (here: its events held back).
func TestKubeObservesThroughTheInformer(t *testing.T) {
	b := newKubeBed(t)
	ctx := context.Background()
	ws := target.NewWatches(nil)
	t.Cleanup(ws.Stop)
	gate := target.GateWatchEvents(ws)
	t.Cleanup(gate.Release)
	k := b.kube(false)
	k.Seen, k.Watches = target.NewSeen(), ws
	observe := func() map[string]*target.Observed {
		t.Helper()
		got, err := k.ObserveCluster(ctx, "alpha")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	tg := b.place(t)
	hand := b.handMade(t, tg, b.bundle(t), nil, nil)
	// The first observation waits for the informer's first sync.
	if o := observe()[tg.Key]; o == nil || o.Version != hand.ResourceVersion {
		t.Fatalf("first observation of a hand-made Secret: %+v, want resourceVersion %s", o, hand.ResourceVersion)
	}
	if !ws.Synced("alpha") {
		t.Fatal("the informer is not synced after the first observation")
	}
	first := observe()[tg.Key]

	// A hand edit between passes: drift still reaches the pass, by the watch.
	edited := b.bundle(t)
	s := b.get(t, tg)
	s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = edited.Cert, edited.Key
	s, err := b.cs.CoreV1().Secrets(tg.Namespace).Update(ctx, s, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 30*time.Second, "the hand edit is observed", func() bool {
		o := observe()[tg.Key]
		return o != nil && o.Version == s.ResourceVersion && o != first && o.Cert != nil &&
			o.Cert.SerialNumber.Cmp(first.Cert.SerialNumber) != 0
	})
	// A hand deletion, likewise.
	if err := b.cs.CoreV1().Secrets(tg.Namespace).Delete(ctx, tg.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 30*time.Second, "the hand deletion is observed", func() bool { return observe()[tg.Key] == nil })

	// certfleet's own writes while the store lags: the next observation
	// reads them through, so a pass never decides on their old state.
	gate.Hold()
	if err := k.Write(ctx, tg, b.bundle(t), meta("payments/api"), nil); err != nil {
		t.Fatal(err)
	}
	created := b.get(t, tg)
	o := observe()[tg.Key]
	if o == nil || o.UID != string(created.UID) || o.Version != created.ResourceVersion || !o.OwnedBy("payments/api") {
		t.Fatalf("right after certfleet created it, the Secret is observed as %+v; want uid %s, resourceVersion %s, owned",
			o, created.UID, created.ResourceVersion)
	}
	renewed := b.bundle(t)
	if err := k.Write(ctx, tg, renewed, meta("payments/api"), o); err != nil {
		t.Fatal(err)
	}
	applied := b.get(t, tg)
	if o := observe()[tg.Key]; o == nil || o.Version != applied.ResourceVersion || o.Cert == nil || !o.KeyMatches() ||
		o.Cert.SerialNumber.Cmp(parsed(t, renewed.Cert).SerialNumber) != 0 {
		t.Fatalf("right after certfleet renewed it, the Secret is observed as %+v; want resourceVersion %s and the renewed certificate", o, applied.ResourceVersion)
	}
	if target.Pending(ws, "alpha") != 1 {
		t.Errorf("%d writes pending with the events held, want 1", target.Pending(ws, "alpha"))
	}
	if err := k.Delete(ctx, tg, "payments/api", observe()[tg.Key]); err != nil {
		t.Fatal(err)
	}
	if o := observe()[tg.Key]; o != nil {
		t.Fatalf("right after certfleet pruned it, the Secret is observed as %+v", o)
	}
	// Once the store holds them, the writes are no longer read through.
	gate.Release()
	testbed.Eventually(t, 30*time.Second, "the store catches up with certfleet's writes", func() bool {
		return observe()[tg.Key] == nil && target.Pending(ws, "alpha") == 0
	})
}

// A watch that cannot start: passes LIST the cluster, as without Watches.
func TestKubeListsWhenTheWatchFails(t *testing.T) {
	cs := fake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api-tls", Namespace: "web"}, Type: corev1.SecretTypeTLS})
	cs.PrependWatchReactor("secrets", func(k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, errors.New("watching is forbidden")
	})
	ws := target.NewWatches(nil)
	t.Cleanup(ws.Stop)
	k := &target.Kube{Watches: ws, Clients: func(context.Context, string) (kubernetes.Interface, error) { return cs, nil }}
	got, err := k.ObserveCluster(context.Background(), "alpha")
	if err != nil {
		t.Fatal(err)
	}
	if got[render.KubernetesAddress("alpha", "web", "api-tls").Key] == nil {
		t.Errorf("the LIST's Secret is not observed: %v", got)
	}
	if ws.Synced("alpha") {
		t.Error("a store whose watch fails is reported synced")
	}
}

func parsed(t *testing.T, pem []byte) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCertificate(pem)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
