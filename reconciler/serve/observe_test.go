package serve_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/reconciler/reconcile"
)

// pass triggers a pass and returns the report of the first pass to end
// after the call.
func (dm *daemon) pass(t *testing.T) *reconcile.Result {
	t.Helper()
	st, _, _, _ := dm.d.Snapshot()
	before := st.LastPass
	dm.d.Trigger("test")
	var rep *reconcile.Result
	eventually(t, 60*time.Second, "a pass ends", func() bool {
		st, r, _, _ := dm.d.Snapshot()
		rep = r
		return st.LastPass.After(before)
	})
	return rep
}

// The daemon observes its clusters through informers (target.Watches):
// the pass right after the one that issued does not act again on a store
// that has not caught up with those writes, and a Secret edited or deleted
// by hand between passes still reaches the pass, which repairs it.
func TestTheDaemonSeesItsOwnWritesAndHandChangesThroughItsInformers(t *testing.T) {
	w := newWorld(t)
	w.push(map[string]string{"apps/a.yaml": w.cert("a", ""), "apps/b.yaml": w.cert("b", "")})
	dm := w.start()
	eventually(t, 30*time.Second, "the first pass issues a and b", func() bool {
		_, rep, _, ready := dm.d.Snapshot()
		return ready && rep.Actions["issue"] == 2
	})
	a, b := w.serial("a"), w.serial("b")
	if a == "" || b == "" {
		t.Fatalf("after the first pass: serials %q and %q", a, b)
	}
	if rep := dm.pass(t); len(rep.Actions) != 0 || len(rep.Failures) != 0 {
		t.Errorf("the pass right after the issuing one acted: actions %v, failures %v", rep.Actions, rep.Failures)
	}
	if w.serial("a") != a || w.serial("b") != b {
		t.Error("the pass right after the issuing one changed a delivered certificate")
	}

	// By hand: a's Secret gets b's certificate and key (valid, but not
	// a's), b's Secret is deleted.
	ctx := context.Background()
	secrets := clientset(t).CoreV1().Secrets(w.ns)
	sa, err := secrets.Get(ctx, "a-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := secrets.Get(ctx, "b-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.Data = sb.Data
	if _, err := secrets.Update(ctx, sa, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	if err := secrets.Delete(ctx, "b-tls", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The watch brings both to the daemon; passes repair them.
	eventually(t, 90*time.Second, "passes repair a and deliver b again", func() bool {
		dm.pass(t)
		sa, sb := w.serial("a"), w.serial("b")
		return sa != "" && sa != b && sb != ""
	})
	if rep := dm.pass(t); len(rep.Actions) != 0 || len(rep.Failures) != 0 {
		t.Errorf("the pass after the repair acted again: actions %v, failures %v", rep.Actions, rep.Failures)
	}
}
