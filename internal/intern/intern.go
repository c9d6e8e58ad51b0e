// Package intern holds one copy of each string that repeats across what a
// pass or a load decodes (an issuer, a namespace, a revision): a pass holds
// every certificate, target and inventory entry at once, and a decoder
// makes a copy of every value for each of them.
package intern

import (
	"sync"
	"unique"
)

// Strings holds the canonical copies of the strings it shared, for as long
// as it is kept: one per pass or load. unique.Make(v).Value() alone is not
// enough: the unique package keeps a canonical copy only while a Handle to
// it is alive, so once the collector has run, an equal value made after it
// gets a copy of its own (the inventory's, the directory observations' and
// the decoder's sharing tests failed so under GOGC=1). Strings holds the
// Handles, up to Max of them. Its zero value is ready; a nil *Strings
// shares nothing. It is safe for concurrent use.
type Strings struct {
	mu   sync.Mutex
	held map[unique.Handle[string]]struct{}
}

// Max bounds the handles a Strings holds: values that differ item by item
// (names, serials) past it are shared only while the collector leaves their
// canonical copy, and the table stays a few hundred kilobytes at most.
const Max = 4096

// Share returns the canonical copy of v: equal to v, and the same bytes as
// every other equal value shared while s holds it ("" and a nil s: v as it
// is).
func (s *Strings) Share(v string) string {
	if s == nil || v == "" {
		return v
	}
	h := unique.Make(v)
	s.mu.Lock()
	if s.held == nil {
		s.held = map[unique.Handle[string]]struct{}{}
	}
	if len(s.held) < Max {
		s.held[h] = struct{}{}
	}
	s.mu.Unlock()
	return h.Value()
}
