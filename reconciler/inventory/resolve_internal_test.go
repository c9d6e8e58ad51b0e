package inventory

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/certfleet/certfleet/internal/backend"
)

// TestResolveAllocatesOneMapOfTheFleet: resolving pages of 20,000 entries
// allocates the inventory's map and little else — it also kept a set of
// every ID read from a page (as large again) where only legacy documents'
// IDs need one.
func TestResolveAllocatesOneMapOfTheFleet(t *testing.T) {
	const n = 20_000
	page := make([]*Entry, n)
	for i := range page {
		page[i] = &Entry{ID: fmt.Sprintf("team/svc-%d", i)}
	}
	legacy := []*Entry{{ID: "team/svc-1"}, {ID: "team/old"}}
	read := [][]*Entry{legacy, page}
	// The bytes f allocates: the runtime's count of heap allocations
	// (this package's tests run no other goroutine meanwhile).
	alloc := func(f func()) uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(s)
		before := s[0].Value.Uint64()
		f()
		metrics.Read(s)
		return s[0].Value.Uint64() - before
	}
	var out map[string]*Entry
	got := alloc(func() { out = resolve(read, 1) })
	want := alloc(func() {
		m := make(map[string]*Entry, n+2)
		for _, e := range page {
			m[e.ID] = e
		}
		runtime.KeepAlive(m)
	})
	if got > want+want/4 {
		t.Errorf("resolve allocated %d bytes; the map it returns takes %d", got, want)
	}
	if len(out) != n+1 || out["team/svc-1"] != page[1] || out["team/old"] != legacy[1] {
		t.Errorf("resolved %d entries; team/svc-1 from the page: %v", len(out), out["team/svc-1"] == page[1])
	}
}

// TestReadConcurrency: pages of the local backend are read by as many
// goroutines as there are cores (at least 2), a remote store's by ioConcurrency.
func TestReadConcurrency(t *testing.T) {
	l, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readConcurrency(l), max(2, runtime.GOMAXPROCS(0)); got != want {
		t.Errorf("local: %d page reads at once, want %d", got, want)
	}
	var remote struct{ backend.Store } // any store but the local one
	if got := readConcurrency(remote); got != ioConcurrency {
		t.Errorf("remote: %d page reads at once, want %d", got, ioConcurrency)
	}
}
