package schemas

import (
	"strings"
	"sync"
)

// Effectives holds one copy of each distinct Effective. A fleet's
// certificates come to a handful of them (one per issuer, lifetime and
// common name — and most have none), while a pass holds one per
// certificate in its verdicts and another in its inventory: at 100,000
// certificates, tens of megabytes of copies. A shared Effective is
// read-only, like the usages it already shares. The zero value is ready.
type Effectives struct {
	mu sync.Mutex
	m  map[string]*Effective
}

// maxEffectives bounds an Effectives: past it (common names that differ
// certificate by certificate) values are returned unshared.
const maxEffectives = 4096

// Share returns the held copy equal to e, holding e when there is none.
func (s *Effectives) Share(e *Effective) *Effective {
	if e == nil {
		return nil
	}
	k := e.key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.m[k]; ok {
		return held
	}
	if s.m == nil {
		s.m = map[string]*Effective{}
	}
	if len(s.m) < maxEffectives {
		s.m[k] = e
	}
	return e
}

// key is e's value as a string: equal keys, equal Effectives (the
// separators cannot occur in durations, DNs, algorithm or usage names).
func (e *Effective) key() string {
	var b strings.Builder
	b.WriteString(e.TTL)
	b.WriteByte(0)
	b.WriteString(e.Subject)
	b.WriteByte(0)
	b.WriteString(e.SignatureAlgorithm)
	b.WriteByte(0)
	for _, u := range e.Usages {
		b.WriteString(string(u))
		b.WriteByte(1)
	}
	b.WriteByte(0)
	for _, c := range e.Changed {
		b.WriteString(c)
		b.WriteByte(1)
	}
	return b.String()
}
