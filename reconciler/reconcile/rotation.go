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

// phasesKey is where the backend keeps each authority's last rotation
// phase and since when: one-shot runs (`reconcile --once` from cron) see a
// change as well as the daemon does, and a restarted daemon does not log
// every phase again. Each shard keeps its own (it counts its share's
// leaves, and holds its own lock), as it keeps its own inventory pages.
func (p *Pass) phasesKey() string { return inventory.PerShard("rotation/phases", p.shardName()) }

// newlyIssued are the targets a pass delivered a newly issued certificate
// to: whatever they held before, they now hold a leaf of the current CA.
func newlyIssued(dec decide.Decisions, outcomes []*outcome) map[string]bool {
	out := map[string]bool{}
	for i, o := range outcomes {
		c := &dec.Certificates[i]
		if o == nil || o.err != nil || !c.Issue {
			continue
		}
		for _, w := range o.written {
			if w.err == nil {
				out[w.key] = true
			}
		}
	}
	return out
}

// rotations works out every authority's rotation phase after the pass
// (decide.RotationPhases), tidies the previous issuers of those Retired
// (per retirePreviousIssuer, where the backend keeps issuers), and, when
// the pass acts, writes an audit line per phase change and records the
// phases. A dry run (drift) reads the record for since, and writes nothing.
func (p *Pass) rotations(ctx context.Context, dec decide.Decisions, trust map[string]decide.Trust,
	retired func(schemas.PreviousIssuer) bool, rewritten map[string]bool, rep *Result) {
	now := p.now()
	var previous map[string]decide.PhaseRecord
	err := p.Backend.Get(ctx, p.phasesKey(), &previous)
	known := err == nil || errors.Is(err, backend.ErrNotFound)
	if !known {
		// Without the record a change cannot be told from a phase held
		// since long ago: nothing is logged or recorded this pass.
		rep.Failures = append(rep.Failures, inventory.Failed("reading the rotation phases", err))
	}
	phases := decide.RotationPhases(decide.RotationInput{Catalog: p.Catalog, Decisions: dec, Trust: trust,
		Rewritten: rewritten, Retired: retired, Previous: previous, Now: now})
	acting := !p.DryRun && ctx.Err() == nil
	if acting {
		for i := range phases {
			if phases[i].Phase == decide.PhaseRetired {
				p.retire(ctx, &phases[i], rep)
			}
		}
	}
	if acting && known {
		changed, records := decide.PhaseChanges(phases, previous, now)
		for _, ap := range changed {
			was := previous[ap.Authority].Phase
			ev := inventory.Event{Time: now, Action: "rotation-phase", Authority: ap.Authority, Actor: p.Actor,
				Reason: fmt.Sprintf("phase %d %s (was %d %s): %s", ap.Phase, ap.PhaseName, was, was, ap.Message)}
			if err := p.Audit.Log(ev); err != nil {
				rep.Failures = append(rep.Failures, inventory.Failed("writing the audit log", err))
			}
		}
		if len(changed) > 0 {
			if err := p.Backend.Put(ctx, p.phasesKey(), records); err != nil {
				rep.Failures = append(rep.Failures, inventory.Failed("recording the rotation phases", err))
			}
		}
		for i := range phases {
			if r, ok := records[phases[i].Authority]; ok {
				since := r.Since
				phases[i].Since = &since
			}
		}
	}
	for _, ap := range phases {
		if ap.Phase != decide.PhaseIdle {
			rep.Rotations = append(rep.Rotations, ap)
		}
	}
}

// retire tidies the previous issuers of a Retired authority per its
// retirePreviousIssuer, with an audit line for each thing done; once one
// is deleted, the catalog's record of the authority stops naming it, and
// the next pass finds the authority Idle.
func (p *Pass) retire(ctx context.Context, ap *decide.AuthorityPhase, rep *Result) {
	a := p.Catalog.Authorities[ap.Authority]
	r, ok := p.Backend.(backend.IssuerRetirer)
	mode := a.Spec.Retire()
	if !ok || mode == schemas.RetireKeep {
		return
	}
	changed := false
	for _, prev := range ap.Retire {
		did, err := r.RetireIssuer(ctx, a, prev.IssuerID, mode, p.now())
		if err == nil && did == "" {
			continue
		}
		ev := inventory.Event{Time: p.now(), Action: "retire-issuer", Authority: ap.Authority, Serial: decide.PreviousSerial(prev),
			Reason: "retirePreviousIssuer " + string(mode) + ": " + did, Actor: p.Actor}
		if err != nil {
			ev.Action, ev.Error = "retire-issuer-failed", err.Error()
			rep.Failures = append(rep.Failures, inventory.Failed(fmt.Sprintf("retiring issuer %s of authority %s", prev.IssuerID, ap.Authority), err))
		} else {
			ap.Message += "; " + did
			changed = true
		}
		if err := p.Audit.Log(ev); err != nil {
			rep.Failures = append(rep.Failures, inventory.Failed("writing the audit log", err))
		}
	}
	if changed {
		// A deleted issuer leaves the authority's status (a disabled one stays).
		if err := backend.RefreshAuthority(ctx, p.Backend, a); err != nil {
			rep.Failures = append(rep.Failures, inventory.Failed("recording authority "+ap.Authority, err))
		}
	}
}
