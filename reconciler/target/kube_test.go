package target_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// kubeBed is one API server shared by a test's cases, each in a namespace
// of its own.
type kubeBed struct {
	cs kubernetes.Interface
	is *issuer
	n  atomic.Int64
}

func newKubeBed(t *testing.T) *kubeBed {
	t.Helper()
	c := testbed.NewCluster(t, "alpha")
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return &kubeBed{cs: cs, is: newIssuer(t)}
}

// kube is the target as a pass has it; adopt sets its Adopt option.
func (b *kubeBed) kube(adopt bool) *target.Kube {
	return &target.Kube{Adopt: adopt, Clients: func(_ context.Context, name string) (kubernetes.Interface, error) {
		if name != "alpha" {
			return nil, fmt.Errorf("cluster %q is not in the catalog", name)
		}
		return b.cs, nil
	}}
}

// place makes a fresh namespace and the target of a Secret "api-tls" in it.
func (b *kubeBed) place(t *testing.T) render.Target {
	t.Helper()
	ns := fmt.Sprintf("ns%d", b.n.Add(1))
	if _, err := b.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return render.Target{Address: render.KubernetesAddress("alpha", ns, "api-tls")}
}

func (b *kubeBed) bundle(t *testing.T) target.Bundle {
	return b.is.bundle(t, pki.Request{CommonName: "api.example.test", DNSNames: []string{"api.example.test"}})
}

// observe is what a pass sees of tg: nil when the Secret is absent.
func (b *kubeBed) observe(t *testing.T, tg render.Target) *target.Observed {
	t.Helper()
	got, err := b.kube(false).ObserveCluster(context.Background(), "alpha")
	if err != nil {
		t.Fatal(err)
	}
	return got[tg.Key]
}

func (b *kubeBed) get(t *testing.T, tg render.Target) *corev1.Secret {
	t.Helper()
	s, err := b.cs.CoreV1().Secrets(tg.Namespace).Get(context.Background(), tg.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading Secret %s/%s: %v", tg.Namespace, tg.Name, err)
	}
	return s
}

// handMade creates a TLS Secret as someone other than certfleet would.
func (b *kubeBed) handMade(t *testing.T, tg render.Target, bundle target.Bundle, labels, annotations map[string]string) *corev1.Secret {
	t.Helper()
	s, err := b.cs.CoreV1().Secrets(tg.Namespace).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tg.Name, Labels: labels, Annotations: annotations},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: bundle.Cert, corev1.TLSPrivateKeyKey: bundle.Key},
	}, metav1.CreateOptions{FieldManager: "kubectl"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// written has certfleet write bundle for certificate id where nothing is, and
// returns the observation a later pass makes of it.
func (b *kubeBed) written(t *testing.T, tg render.Target, bundle target.Bundle, id string) *target.Observed {
	t.Helper()
	if err := b.kube(false).Write(context.Background(), tg, bundle, meta(id), nil); err != nil {
		t.Fatal(err)
	}
	o := b.observe(t, tg)
	if o == nil || !o.OwnedBy(id) || o.UID == "" || o.Version == "" {
		t.Fatalf("the written Secret is observed as %+v; want it owned by %s, with a uid and resourceVersion", o, id)
	}
	return o
}

// labelled has certfleet create a Secret with a template label team=a and
// returns its target and the observation a later pass makes of it.
func (b *kubeBed) labelled(t *testing.T) (render.Target, *target.Observed) {
	t.Helper()
	tg := b.place(t)
	tg.Template = &schemas.SecretTemplate{Labels: map[string]string{"team": "a"}}
	if err := b.kube(false).Write(context.Background(), tg, b.bundle(t), meta("team-a/api"), nil); err != nil {
		t.Fatal(err)
	}
	return tg, b.observe(t, tg)
}

func TestKubeWrite(t *testing.T) {
	b := newKubeBed(t)
	ctx := context.Background()

	t.Run("an absent Secret is created with certfleet's marks and owned by certfleet alone", func(t *testing.T) {
		tg := b.place(t)
		want := b.bundle(t)
		o := b.written(t, tg, want, "team-a/api")
		if !bytes.Equal(o.Bundle.Cert, want.Cert) || !o.KeyMatches() {
			t.Error("the Secret does not hold the bundle written")
		}
		s := b.get(t, tg)
		if s.Labels[target.LabelCertificate] != target.CertificateLabel("team-a/api") {
			t.Errorf("labels %v", s.Labels)
		}
		var managers []string
		for _, f := range s.ManagedFields {
			managers = append(managers, f.Manager+"/"+string(f.Operation))
		}
		// One write: the create's fields move to the apply manager only
		// when a later apply drops one (the next case).
		if len(managers) != 1 || managers[0] != target.FieldManager+"/Update" {
			t.Errorf("field managers %v, want only %s/Update", managers, target.FieldManager)
		}
		if !o.CreatedFields {
			t.Error("the observation does not say the fields are still the create's")
		}
	})

	t.Run("a Secret changed since observed is not overwritten when its fields would first move to the apply", func(t *testing.T) {
		tg, o := b.labelled(t)
		s := b.get(t, tg)
		s.Labels["edited"] = "by-hand"
		if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
			t.Fatal(err)
		}
		tg.Template = nil
		if err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-a/api"), o); !errors.Is(err, target.ErrConflict) {
			t.Errorf("Write over a Secret edited since observed: %v, want ErrConflict", err)
		}
		if b.get(t, tg).Labels["team"] != "a" {
			t.Error("the edited Secret was changed")
		}
	})

	t.Run("a template label certfleet stops setting is removed from a Secret it created", func(t *testing.T) {
		tg, o := b.labelled(t)
		tg.Template = nil
		if err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-a/api"), o); err != nil {
			t.Fatal(err)
		}
		s := b.get(t, tg)
		if l, ok := s.Labels["team"]; ok {
			t.Errorf("label team=%s is still there", l)
		}
		for _, f := range s.ManagedFields {
			if f.Manager == target.FieldManager && f.Operation != metav1.ManagedFieldsOperationApply {
				t.Errorf("certfleet still owns fields through a %s entry", f.Operation)
			}
		}
	})

	t.Run("a Secret observed and unchanged since is updated", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		renewed := b.bundle(t)
		if err := b.kube(false).Write(ctx, tg, renewed, meta("team-a/api"), o); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.get(t, tg).Data[corev1.TLSCertKey], renewed.Cert) {
			t.Error("the Secret does not hold the renewed certificate")
		}
	})

	t.Run("a Secret that appeared after it was observed absent is not overwritten", func(t *testing.T) {
		tg := b.place(t)
		if o := b.observe(t, tg); o != nil {
			t.Fatalf("observed %+v before anything was written", o)
		}
		theirs := b.bundle(t)
		b.handMade(t, tg, theirs, nil, nil)
		err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-a/api"), nil)
		if !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Write = %v, want ErrConflict", err)
		}
		s := b.get(t, tg)
		if !bytes.Equal(s.Data[corev1.TLSCertKey], theirs.Cert) || s.Labels[target.LabelManagedBy] != "" {
			t.Error("the Secret that appeared was overwritten")
		}
	})

	t.Run("a Secret modified between observe and write is not overwritten", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		s := b.get(t, tg)
		edited := b.bundle(t)
		s.Data[corev1.TLSCertKey] = edited.Cert
		s.Data[corev1.TLSPrivateKeyKey] = edited.Key
		if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-a/api"), o)
		if !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Write = %v, want ErrConflict", err)
		}
		if !bytes.Equal(b.get(t, tg).Data[corev1.TLSCertKey], edited.Cert) {
			t.Error("the hand edit was overwritten")
		}
	})

	t.Run("a Secret deleted and recreated with certfleet's marks since observed is not overwritten", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		old := b.get(t, tg)
		if err := b.cs.CoreV1().Secrets(tg.Namespace).Delete(ctx, tg.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		theirs := b.bundle(t)
		b.handMade(t, tg, theirs, old.Labels, old.Annotations)
		err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-a/api"), o)
		if !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Write = %v, want ErrConflict", err)
		}
		if !bytes.Equal(b.get(t, tg).Data[corev1.TLSCertKey], theirs.Cert) {
			t.Error("the recreated Secret was overwritten")
		}
	})

	t.Run("a Secret deleted since observed is not created again", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		if err := b.cs.CoreV1().Secrets(tg.Namespace).Delete(ctx, tg.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-a/api"), o)
		if !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Write = %v, want ErrConflict", err)
		}
		if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Get(ctx, tg.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the deleted Secret is back: %v", err)
		}
	})

	t.Run("a Secret without certfleet's marks is not overwritten unless adopted", func(t *testing.T) {
		tg := b.place(t)
		theirs := b.bundle(t)
		b.handMade(t, tg, theirs, map[string]string{"owner": "team-x"}, nil)
		o := b.observe(t, tg)
		if o == nil || o.Managed {
			t.Fatalf("the hand-made Secret is observed as %+v; want unmanaged", o)
		}
		err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-a/api"), o)
		if !errors.Is(err, target.ErrNotOwned) {
			t.Fatalf("Write = %v, want ErrNotOwned", err)
		}
		if !bytes.Equal(b.get(t, tg).Data[corev1.TLSCertKey], theirs.Cert) {
			t.Fatal("the unmarked Secret was overwritten")
		}

		ours := b.bundle(t)
		if err := b.kube(true).Write(ctx, tg, ours, meta("team-a/api"), o); err != nil {
			t.Fatalf("adopting: %v", err)
		}
		s := b.get(t, tg)
		if !bytes.Equal(s.Data[corev1.TLSCertKey], ours.Cert) || s.Labels[target.LabelManagedBy] != target.ManagedByValue ||
			s.Annotations[target.AnnCertificateID] != "team-a/api" {
			t.Errorf("the adopted Secret holds labels %v, annotations %v and not our certificate", s.Labels, s.Annotations)
		}
		if s.Labels["owner"] != "team-x" {
			t.Errorf("adopting dropped another manager's label: %v", s.Labels)
		}
	})

	t.Run("another certificate's Secret is not overwritten", func(t *testing.T) {
		tg := b.place(t)
		first := b.bundle(t)
		o := b.written(t, tg, first, "team-a/api")
		err := b.kube(false).Write(ctx, tg, b.bundle(t), meta("team-b/api"), o)
		if !errors.Is(err, target.ErrNotOwned) {
			t.Fatalf("Write = %v, want ErrNotOwned", err)
		}
		if !bytes.Equal(b.get(t, tg).Data[corev1.TLSCertKey], first.Cert) {
			t.Error("team-a/api's Secret was overwritten by team-b/api")
		}
	})
}

func TestKubeDelete(t *testing.T) {
	b := newKubeBed(t)
	ctx := context.Background()
	gone := func(t *testing.T, tg render.Target) bool {
		t.Helper()
		_, err := b.cs.CoreV1().Secrets(tg.Namespace).Get(ctx, tg.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return apierrors.IsNotFound(err)
	}

	t.Run("a Secret with certfleet's marks, unchanged since observed, is pruned", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		if err := b.kube(false).Delete(ctx, tg, "team-a/api", o); err != nil {
			t.Fatal(err)
		}
		if !gone(t, tg) {
			t.Error("the Secret is still there")
		}
		if err := b.kube(false).Delete(ctx, tg, "team-a/api", o); err != nil {
			t.Errorf("pruning a Secret that is gone already: %v", err)
		}
	})

	t.Run("a Secret whose managed-by label was removed by hand is taken over and survives", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		s := b.get(t, tg)
		delete(s.Labels, target.LabelManagedBy)
		if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: "kubectl-label"}); err != nil {
			t.Fatal(err)
		}
		err := b.kube(false).Delete(ctx, tg, "team-a/api", o)
		if !errors.Is(err, target.ErrTakenOver) {
			t.Fatalf("Delete = %v, want ErrTakenOver", err)
		}
		if gone(t, tg) {
			t.Error("the taken-over Secret was deleted")
		}
	})

	t.Run("a Secret that now names another certificate is taken over and survives", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		s := b.get(t, tg)
		s.Annotations[target.AnnCertificateID] = "team-b/api"
		if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := b.kube(false).Delete(ctx, tg, "team-a/api", o); !errors.Is(err, target.ErrTakenOver) {
			t.Fatalf("Delete = %v, want ErrTakenOver", err)
		}
		if gone(t, tg) {
			t.Error("team-b/api's Secret was deleted")
		}
	})

	t.Run("a Secret recreated by someone else with certfleet's marks copied is not deleted", func(t *testing.T) {
		tg := b.place(t)
		o := b.written(t, tg, b.bundle(t), "team-a/api")
		old := b.get(t, tg)
		if err := b.cs.CoreV1().Secrets(tg.Namespace).Delete(ctx, tg.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		theirs := b.bundle(t)
		b.handMade(t, tg, theirs, old.Labels, old.Annotations)
		err := b.kube(false).Delete(ctx, tg, "team-a/api", o)
		if !errors.Is(err, target.ErrConflict) {
			t.Fatalf("Delete = %v, want ErrConflict", err)
		}
		if gone(t, tg) || !bytes.Equal(b.get(t, tg).Data[corev1.TLSCertKey], theirs.Cert) {
			t.Error("the recreated Secret was deleted")
		}
	})

	t.Run("a Secret never observed as certfleet's is not pruned", func(t *testing.T) {
		// What a pass passes when the orphan's observation had no
		// certificate-id: no certificate to match.
		tg := b.place(t)
		b.handMade(t, tg, b.bundle(t), map[string]string{target.LabelManagedBy: target.ManagedByValue}, nil)
		if err := b.kube(false).Delete(ctx, tg, "", nil); !errors.Is(err, target.ErrTakenOver) {
			t.Fatalf("Delete = %v, want ErrTakenOver", err)
		}
		if gone(t, tg) {
			t.Error("the Secret was deleted")
		}
	})
}

// With a Seen cache, a Secret listed again unchanged is the observation
// made before (not parsed again); one that changed, or was deleted and
// made again under the same name, is observed afresh; one deleted drops out.
func TestKubeObserveReusesUnchangedSecrets(t *testing.T) {
	b := newKubeBed(t)
	k := b.kube(false)
	k.Seen = target.NewSeen()
	ctx := context.Background()
	tg := b.place(t)
	other := render.Target{Address: render.KubernetesAddress("alpha", tg.Namespace, "other-tls")}
	b.written(t, tg, b.bundle(t), "payments/api")
	b.written(t, other, b.bundle(t), "payments/other")
	first, err := k.ObserveCluster(ctx, "alpha")
	if err != nil || first[tg.Key] == nil || first[tg.Key].Cert == nil {
		t.Fatalf("first observation: %v, %+v", err, first[tg.Key])
	}
	again, _ := k.ObserveCluster(ctx, "alpha")
	if again[tg.Key] != first[tg.Key] {
		t.Error("an unchanged Secret was parsed again")
	}

	// A hand edit of tls.crt: a new resourceVersion, a new observation.
	renewed := b.bundle(t)
	s := b.get(t, tg)
	s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = renewed.Cert, renewed.Key
	if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.cs.CoreV1().Secrets(tg.Namespace).Delete(ctx, "other-tls", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	after, _ := k.ObserveCluster(ctx, "alpha")
	got := after[tg.Key]
	if got == first[tg.Key] || got == nil || !bytes.Equal(got.Bundle.Cert, renewed.Cert) || got.Cert == nil ||
		got.Cert.SerialNumber.Cmp(first[tg.Key].Cert.SerialNumber) == 0 {
		t.Errorf("a changed Secret was not observed afresh: %+v", got)
	}
	if after[other.Key] != nil {
		t.Error("a deleted Secret is still observed")
	}
}

// The LIST's observation leaves each Secret's key to be checked against
// its certificate later (target.CheckKeys, or on first use), certfleet's
// and others' alike: a tls.key of another certificate is a key mismatch
// (decide's KeyMismatch), whatever else the Secret holds.
func TestKubeObserveDetectsAKeyMismatch(t *testing.T) {
	b := newKubeBed(t)
	ctx := context.Background()
	for _, managed := range []bool{true, false} {
		t.Run(fmt.Sprintf("managed %v", managed), func(t *testing.T) {
			tg := b.place(t)
			good, other := b.bundle(t), b.bundle(t)
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tg.Name, Namespace: tg.Namespace}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: good.Cert, corev1.TLSPrivateKeyKey: other.Key}}
			if managed {
				s.Labels = map[string]string{target.LabelManagedBy: target.ManagedByValue}
				s.Annotations = meta("team-a/api").Annotations(good)
			}
			if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			o := b.observe(t, tg)
			if o == nil || o.Cert == nil || o.Managed != managed {
				t.Fatalf("observed %+v, want the Secret with its certificate parsed", o)
			}
			if target.KeyChecked(o) {
				t.Error("the LIST parsed the key, which it leaves for later")
			}
			if o.KeyMatches() {
				t.Error("a tls.key of another certificate is observed as matching tls.crt")
			}
			s.Data[corev1.TLSPrivateKeyKey] = good.Key
			if _, err := b.cs.CoreV1().Secrets(tg.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if o := b.observe(t, tg); o == nil || !o.KeyMatches() {
				t.Errorf("its own key is observed as not matching: %+v", o)
			}
		})
	}
}
