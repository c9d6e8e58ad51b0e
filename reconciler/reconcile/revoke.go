package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// superseded is the serial a certificate's new one replaced for a
// superseding reason (decide.Certificate.Supersedes), once the replacement
// is delivered to every target — a workload is never left holding only a
// revoked certificate — and when it can and is worth revoking: it joins
// the entry's serials waiting for revocation (revokeSuperseded).
func (p *Pass) superseded(c *decide.Certificate, o *outcome, prev *inventory.Entry, now time.Time) (inventory.Superseded, bool) {
	if o.err != nil || !c.Supersedes() || prev == nil || prev.Serial == "" || prev.Serial == o.serial || !p.revocable(prev, now) {
		return inventory.Superseded{}, false
	}
	for _, w := range o.written {
		if w.err != nil {
			return inventory.Superseded{}, false
		}
	}
	return inventory.Superseded{Serial: prev.Serial, Issuer: prev.Issuer, NotAfter: prev.NotAfter, Reason: string(c.Reason), Since: now}, true
}

// revokeSuperseded revokes the superseded serials waiting in the
// inventory (and in the entries this pass recorded, outcomes) that
// decide.RevocationWait lets go — in the pass that delivered their
// replacement when no target of theirs has a probe (its probes dialled
// before the delivery, so they still see the old serial), otherwise in a
// later one, once the probes see it no more — and reports those still
// waiting, with why. An expired one is dropped: revoking it is worth
// nothing. This pass's entries are changed in place; it returns the other
// entries that changed, for the caller to save.
func (p *Pass) revokeSuperseded(ctx context.Context, res *render.Result, inv map[string]*inventory.Entry, outcomes []*outcome,
	served map[string]decide.Served, rep *Result) map[string]*inventory.Entry {
	if p.KeepSuperseded {
		return nil
	}
	desired := map[string]*render.Desired{}
	for _, d := range res.Desired {
		desired[d.ID] = d
	}
	recorded := map[string]*inventory.Entry{}
	for _, o := range outcomes {
		if o != nil && o.entry != nil {
			recorded[o.entry.ID] = o.entry
		}
	}
	ids := slices.Collect(maps.Keys(inv))
	for id := range recorded {
		if inv[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	now := p.now()
	others := map[string]*inventory.Entry{}
	for _, id := range ids {
		e := recorded[id]
		if e == nil {
			e = inv[id]
		}
		if len(e.Superseded()) == 0 {
			continue
		}
		var kept []inventory.Superseded
		for _, s := range e.Superseded() {
			if !now.Before(s.NotAfter) {
				continue
			}
			if why := decide.RevocationWait(desired[id], s.Serial, served, s.Since, now); why != "" {
				rep.Notes = append(rep.Notes, fmt.Sprintf("revoking %s serial %s waits: %s", id, s.Serial, why))
				kept = append(kept, s)
				continue
			}
			old := &inventory.Entry{ID: id, Serial: s.Serial, Issuer: s.Issuer, NotAfter: s.NotAfter}
			if err := p.Revoke(ctx, old, "superseded: "+s.Reason); err != nil {
				rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("revoking %s serial %s", id, s.Serial), err))
				kept = append(kept, s)
				continue
			}
			rep.Revoked++
		}
		switch {
		case len(kept) == len(e.Superseded()):
		case recorded[id] != nil:
			e.Edit().Superseded = kept
		default:
			updated := e.Clone()
			updated.Edit().Superseded = kept
			others[id] = updated
		}
	}
	return others
}

// revocable reports whether revoking e's serial can be done — revocation
// on, a backend with a CRL, an issuer that stores certificates — and is
// worth it (not expired).
func (p *Pass) revocable(e *inventory.Entry, now time.Time) bool {
	if _, ok := p.Backend.(backend.Revoker); p.KeepSuperseded || !ok || !now.Before(e.NotAfter) {
		return false
	}
	_, err := RevocationAuthority(p.Catalog, e.Issuer)
	return err == nil
}

// RevocationAuthority is the authority a certificate of issuer is revoked
// through, or why there is none: an issuer gone from the catalog, an ACME
// issuer, or one that does not store certificates (Vault cannot revoke a
// serial a no_store role never kept).
func RevocationAuthority(cat *schemas.Catalog, issuer string) (*schemas.Authority, error) {
	iss := cat.Issuers[issuer]
	switch {
	case iss == nil:
		return nil, fmt.Errorf("issued by %q, which is not in the catalog any more: revoke it in its authority's mount", issuer)
	case iss.Spec.ACME != nil:
		return nil, fmt.Errorf("issued by the ACME issuer %q: certfleet revokes through Vault authorities only", issuer)
	case iss.Spec.NoStore:
		return nil, fmt.Errorf("issuer %q does not store certificates (noStore), so Vault cannot revoke its serials", issuer)
	}
	a := cat.Authorities[iss.Spec.Authority]
	if a == nil {
		return nil, fmt.Errorf("issuer %q names authority %q, which is not in the catalog", issuer, iss.Spec.Authority)
	}
	return a, nil
}

// Revoke puts an inventory entry's serial on its authority's CRL and
// writes the audit line (revoke, or revoke-failed) with why.
func (p *Pass) Revoke(ctx context.Context, e *inventory.Entry, why string) error {
	rev, ok := p.Backend.(backend.Revoker)
	if !ok {
		return fmt.Errorf("%s publishes no CRL", p.Backend.Describe())
	}
	a, err := RevocationAuthority(p.Catalog, e.Issuer)
	if err != nil {
		return err
	}
	ev := inventory.Event{Time: p.now(), Action: "revoke", Certificate: e.ID, Reason: why, Serial: e.Serial, Issuer: e.Issuer, Actor: p.Actor}
	err = rev.Revoke(ctx, a, e.Serial)
	if err != nil {
		ev.Action, ev.Error = "revoke-failed", err.Error()
	}
	if lerr := p.Audit.Log(ev); lerr != nil {
		err = errors.Join(err, fmt.Errorf("writing the audit log: %w", lerr))
	}
	return err
}

// revoke revokes a superseded or pruned certificate where that can be
// done (revocation on, a backend with a CRL, an issuer that stores
// certificates) and is worth it (not expired). A failure is reported,
// never the certificate's failure.
func (p *Pass) revoke(ctx context.Context, e *inventory.Entry, why string, rep *Result) {
	if !p.revocable(e, p.now()) {
		return
	}
	if err := p.Revoke(ctx, e, why); err != nil {
		rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("revoking %s serial %s", e.ID, e.Serial), err))
		return
	}
	rep.Revoked++
}
