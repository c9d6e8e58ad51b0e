package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/schemas"
)

// revokeSuperseded revokes the serials this pass replaced for a superseding
// reason (decide.Certificate.Supersedes), once the replacement is delivered
// to every target and recorded: a workload is never left holding only a
// revoked certificate. prev is the inventory before the pass.
func (p *Pass) revokeSuperseded(ctx context.Context, dec decide.Decisions, prev map[string]*inventory.Entry, outcomes []*outcome, rep *Result) {
	for i, o := range outcomes {
		c := &dec.Certificates[i]
		if o == nil || o.err != nil || o.entry == nil || !c.Supersedes() {
			continue
		}
		delivered := true
		for _, err := range o.written {
			delivered = delivered && err == nil
		}
		old := prev[c.Desired.ID]
		if !delivered || old == nil || old.Serial == "" || old.Serial == o.serial {
			continue
		}
		p.revoke(ctx, old, "superseded: "+string(c.Reason), rep)
	}
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
	if _, ok := p.Backend.(backend.Revoker); p.KeepSuperseded || !ok || !p.now().Before(e.NotAfter) {
		return
	}
	if _, err := RevocationAuthority(p.Catalog, e.Issuer); err != nil {
		return
	}
	if err := p.Revoke(ctx, e, why); err != nil {
		rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("revoking %s serial %s", e.ID, e.Serial), err))
		return
	}
	rep.Revoked++
}
