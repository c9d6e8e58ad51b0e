package reconcile

import (
	"slices"

	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
)

// shareDeclared makes the entries of an inventory just read use the
// render's copies of what they repeat of their declaration — the ID, the
// issue hash, the names, the targets' addresses — where the two are equal:
// a pass holds both for every certificate of the fleet, and these strings
// (~250 bytes a certificate) were each held twice. A value that differs
// (a declaration changed since) stays the entry's own. Only for entries
// no one else reads yet: a kept inventory (Pass.Inventory) is left alone.
func shareDeclared(inv map[string]*inventory.Entry, desired []*render.Desired) {
	for _, d := range desired {
		e := inv[d.ID]
		if e == nil {
			continue
		}
		spec := d.Certificate.Spec
		e.ID = d.ID
		if e.IssueHash == d.IssueHash {
			e.IssueHash = d.IssueHash
		}
		if e.CommonName == spec.CommonName {
			e.CommonName = spec.CommonName
		}
		// Sharing a declaration's slices is what a pass does already for
		// the entries it records (entryOf); neither side changes them.
		if len(e.DNSNames) > 0 && slices.Equal(e.DNSNames, spec.DNSNames) {
			e.DNSNames = spec.DNSNames
		}
		if r := e.Rare; r != nil {
			for _, p := range []struct {
				e *[]string
				d []string
			}{{&r.IPAddresses, spec.IPAddresses}, {&r.URIs, spec.URIs}, {&r.EmailAddresses, spec.EmailAddresses}} {
				if len(*p.e) > 0 && slices.Equal(*p.e, p.d) {
					*p.e = p.d
				}
			}
		}
		for i := range e.Targets {
			for _, t := range d.Targets {
				if t.Address == e.Targets[i] {
					e.Targets[i] = t.Address
					break
				}
			}
		}
	}
}
