package reconcile

import (
	"errors"
	"fmt"
	"testing"

	"github.com/certfleet/certfleet/internal/memsize"
)

// A pass keeps every certificate's outcome until it ends (100,000 on a
// first pass over a large fleet): one with a target written was ~480
// bytes when its writes were a map; a slice of them keeps it near 180.
func TestOutcomeSize(t *testing.T) {
	const n, limit = 2000, 300
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("directory/team-a/svc-%d", i)
	}
	per := memsize.PerItem(n, func(i int) *outcome {
		o := &outcome{serial: "01:02"}
		o.written.set(keys[i], nil)
		return o
	})
	if per > limit {
		t.Errorf("one outcome keeps %d bytes, want at most %d", per, limit)
	} else {
		t.Logf("one outcome keeps %d bytes", per)
	}
}

func TestWrites(t *testing.T) {
	var w writes
	failed := errors.New("refused")
	w.set("a", nil)
	w.set("b", failed)
	w.set("a", failed) // a second write of a key replaces the first
	if len(w) != 2 || w.err("a") != failed || w.err("b") != failed || w.err("c") != nil {
		t.Errorf("writes %v", w)
	}
	if !w.tried("a") || w.tried("c") {
		t.Errorf("tried a %v, c %v", w.tried("a"), w.tried("c"))
	}
}
