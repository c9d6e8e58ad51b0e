package reconcile

import (
	"context"
	"fmt"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
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

// revoke puts an inventory entry's serial on its authority's CRL, when
// revocation is on, the backend publishes a CRL, the certificate has not
// expired, and its issuer stores certificates (Vault cannot revoke a serial
// a no_store role never kept). Each revocation, or its failure, goes into
// the audit log; a failure is reported, never the certificate's failure.
func (p *Pass) revoke(ctx context.Context, e *inventory.Entry, why string, rep *Result) {
	rev, ok := p.Backend.(backend.Revoker)
	if p.KeepSuperseded || !ok || !p.now().Before(e.NotAfter) {
		return
	}
	iss := p.Catalog.Issuers[e.Issuer]
	if iss == nil || iss.Spec.ACME != nil || iss.Spec.NoStore {
		return
	}
	a := p.Catalog.Authorities[iss.Spec.Authority]
	if a == nil {
		return
	}
	ev := inventory.Event{Time: p.now(), Action: "revoke", Certificate: e.ID, Reason: why, Serial: e.Serial, Issuer: e.Issuer, Actor: p.Actor}
	if err := rev.Revoke(ctx, a, e.Serial); err != nil {
		ev.Action, ev.Error = "revoke-failed", err.Error()
		rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("revoking %s serial %s", e.ID, e.Serial), err))
	} else {
		rep.Revoked++
	}
	if err := p.Audit.Log(ev); err != nil {
		rep.Failures = append(rep.Failures, inventory.Failed("writing the audit log", err))
	}
}
