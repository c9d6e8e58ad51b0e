package intern

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// same reports whether a and b are equal and share their bytes.
func same(a, b string) bool { return a == b && unsafe.StringData(a) == unsafe.StringData(b) }

// A value shared before a collection and an equal one shared after it are
// one copy while the Strings is kept: with unique.Make(v).Value() alone,
// the collections drop the canonical copy (no Handle is alive) and the
// second value gets its own.
func TestShareKeepsOneCopyThroughCollections(t *testing.T) {
	var s Strings
	a := s.Share(strings.Clone("issuer-mtls"))
	runtime.GC()
	runtime.GC()
	b := s.Share(strings.Clone("issuer-mtls"))
	if !same(a, b) {
		t.Errorf("%q shared before two collections and after them are two copies", a)
	}
	if c := s.Share(strings.Clone("issuer-other")); c != "issuer-other" || same(a, c) {
		t.Errorf("another value shared as %q", c)
	}
	runtime.KeepAlive(&s)
}

// Past Max, values are still returned equal, and not held: the table of a
// pass whose values differ item by item stays bounded.
func TestShareHoldsAtMostMax(t *testing.T) {
	var s Strings
	for i := range Max + 100 {
		v := fmt.Sprintf("name-%d", i)
		if got := s.Share(v); got != v {
			t.Fatalf("Share(%q) = %q", v, got)
		}
	}
	if len(s.held) != Max {
		t.Errorf("holds %d handles, want %d", len(s.held), Max)
	}
	// What it holds stays shared.
	a := s.Share(strings.Clone("name-7"))
	runtime.GC()
	runtime.GC()
	if b := s.Share(strings.Clone("name-7")); !same(a, b) {
		t.Errorf("a held value %q is two copies once the table is full", a)
	}
}

// A nil Strings shares nothing, and "" is never held.
func TestShareOfNothing(t *testing.T) {
	var none *Strings
	v := strings.Clone("team-a")
	if got := none.Share(v); !same(got, v) {
		t.Errorf("a nil Strings returned %q, not the value itself", got)
	}
	var s Strings
	if got := s.Share(""); got != "" || len(s.held) != 0 {
		t.Errorf(`Share("") = %q, holding %d`, got, len(s.held))
	}
}

// Passes and loads share from many goroutines (run with -race): every one
// gets the one copy.
func TestShareConcurrently(t *testing.T) {
	var s Strings
	want := s.Share(strings.Clone("main@0123456789abcdef"))
	var wg sync.WaitGroup
	got := make([]string, 8)
	for g := range got {
		wg.Go(func() {
			for i := range 200 {
				s.Share(fmt.Sprintf("target-%d-%d", g, i))
				got[g] = s.Share(strings.Clone("main@0123456789abcdef"))
			}
		})
	}
	wg.Wait()
	for g, v := range got {
		if !same(v, want) {
			t.Errorf("goroutine %d got its own copy of %q", g, v)
		}
	}
}
