package serve_test

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// TestLosingAndRegainingTheLeaseRunsOnePassLoopAtATime takes the lease away
// from the leader again and again, mid-pass (another identity writes itself
// into the Lease, then stops renewing it): each time the replica stops,
// campaigns, wins the lease back and acts again. client-go returns from a
// term before the term's pass loop has, so a loop still finishing its pass
// could overlap the next term's; run under -race this test catches two
// loops sharing the daemon's inventory, counters and caches, and it checks
// that every certificate is issued exactly once.
func TestLosingAndRegainingTheLeaseRunsOnePassLoopAtATime(t *testing.T) {
	w := newWorld(t)
	const n = 120
	w.pushMany("r", n)
	_, e := w.startElected("r.log")
	leases := clientset(t).CoordinationV1().Leases(w.ns)
	ctx := context.Background()
	issued := func() int {
		total := 0
		for _, c := range w.issued("r.log") {
			total += c
		}
		return total
	}
	for round := 1; round <= 4; round++ {
		// Mid-pass: some issued, the rest still to do.
		eventually(t, 60*time.Second, "the replica leads and issues", func() bool { return e.Leading() && issued() >= round*5 })
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error { // the leader renews meanwhile
			l, err := leases.Get(ctx, "certfleet", metav1.GetOptions{})
			if err != nil {
				return err
			}
			intruder, now := "intruder", metav1.NewMicroTime(time.Now())
			l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.AcquireTime = &intruder, &now, &now
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("round %d: taking the lease: %v", round, err)
		}
		eventually(t, 15*time.Second, "the replica notices it lost the lease", func() bool { return !e.Leading() })
	}
	// The intruder never renews: the replica wins the lease back and finishes.
	eventually(t, 120*time.Second, "every certificate issued", func() bool { return len(w.issued("r.log")) == n })
	time.Sleep(time.Second)
	for c, k := range w.issued("r.log") {
		if k != 1 {
			t.Errorf("%s issued %d times", c, k)
		}
	}
}
