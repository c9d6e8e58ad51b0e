package serve_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestLosingAndRegainingTheLeaseRunsOnePassLoopAtATime takes the lease away
// from the leader again and again (another identity writes itself into the
// Lease, then stops renewing it): each time the replica stops, campaigns,
// wins the lease back and acts again. client-go returns from a term before
// the term's pass loop has, so two loops could overlap; run under -race this
// test catches them sharing the daemon's inventory, counters and caches, and
// it counts that every certificate is issued exactly once.
func TestLosingAndRegainingTheLeaseRunsOnePassLoopAtATime(t *testing.T) {
	w := newWorld(t)
	w.push(map[string]string{"apps/r0.yaml": w.cert("r0", "")})
	_, e := w.startElected("r.log")
	eventually(t, 30*time.Second, "r0 delivered", func() bool { return w.serial("r0") != "" })
	leases := clientset(t).CoordinationV1().Leases(w.ns)
	ctx := context.Background()
	for round := 1; round <= 4; round++ {
		l, err := leases.Get(ctx, "certfleet", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		intruder, now := "intruder", metav1.NewMicroTime(time.Now())
		l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.AcquireTime = &intruder, &now, &now
		if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("round %d: taking the lease: %v", round, err)
		}
		eventually(t, 15*time.Second, "the replica notices it lost the lease", func() bool { return !e.Leading() })
		name := fmt.Sprintf("r%d", round)
		w.push(map[string]string{"apps/" + name + ".yaml": w.cert(name, "")})
		// The intruder never renews: after the lease duration the replica wins it back.
		eventually(t, 30*time.Second, "the replica leads again", e.Leading)
		eventually(t, 30*time.Second, name+" delivered", func() bool { return w.serial(name) != "" })
	}
	time.Sleep(time.Second)
	for c, n := range w.issued("r.log") {
		if n != 1 {
			t.Errorf("%s issued %d times", c, n)
		}
	}
	if n := len(w.issued("r.log")); n != 5 {
		t.Errorf("%d certificates issued, want 5", n)
	}
}
