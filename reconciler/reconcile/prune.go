package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// prune deletes orphaned targets when asked to, unless decide.RefusePrune
// finds the pass looks like an accident (nothing rendered, invalid
// manifests, or more than MaxPruneShare of the managed targets at once).
func (p *Pass) prune(ctx context.Context, res *render.Result, dec decide.Decisions, inv map[string]*inventory.Entry, rep *Result) {
	if len(dec.Orphans) == 0 {
		return
	}
	if !p.Prune {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d orphaned targets kept: run with --prune to delete them", len(dec.Orphans)))
		return
	}
	if refused := decide.RefusePrune(dec, len(res.Desired), len(res.Errors), p.MaxPruneShare, p.Force); refused != "" {
		rep.refusePrune(refused)
		return
	}
	if p.DryRun {
		return
	}
	pruned := p.deleteOrphans(ctx, res, dec, rep)
	// What was pruned is gone: it leaves the state (and the daemon's metrics).
	rep.State = slices.DeleteFunc(rep.State, func(st TargetState) bool { return pruned[st.Target] })
	p.forget(ctx, res, inv, pruned, rep)
}

// deleteOrphans deletes the orphans, each only while it still carries the
// marks of the certificate the inventory records it under, and returns the
// keys of those deleted.
func (p *Pass) deleteOrphans(ctx context.Context, res *render.Result, dec decide.Decisions, rep *Result) map[string]bool {
	now := p.now()
	pruned := map[string]bool{}
	for i := range dec.Orphans {
		o := &dec.Orphans[i]
		id := o.Certificate // the inventory's: a prune deletes only what still carries its marks
		var err error
		switch o.Target.Kind {
		case render.Kubernetes:
			err = p.Kube.Delete(ctx, *o.Target, id, o.Observed)
		case render.VaultKV:
			err = p.Vault.Delete(ctx, *o.Target, id, o.Observed)
		case render.Directory:
			err = p.Dir.Delete(*o.Target)
		}
		ev := inventory.Event{Time: now, Action: "prune", Certificate: id, Target: o.Target.Key, Reason: string(decide.Orphaned),
			Revision: res.Revision.String(), Author: res.Revision.Author, Actor: p.Actor}
		switch {
		case errors.Is(err, target.ErrTakenOver):
			// Someone took it over between observe and prune: left alone, reported, never retried as a failure.
			ev.Action, ev.Reason, ev.Error = "prune-skipped", string(decide.TakenOver), err.Error()
			rep.Reasons[decide.TakenOver]++
			rep.Notes = append(rep.Notes, fmt.Sprintf("not pruned, taken over: %s: %v", o.Target.Key, err))
		case err != nil:
			ev.Action, ev.Error = "prune-failed", err.Error()
			rep.Failures = append(rep.Failures, inventory.Failed("pruning "+o.Target.Key, err))
		default:
			rep.Pruned++
			pruned[o.Target.Key] = true
		}
		if err := p.Audit.Log(ev); err != nil {
			rep.Failures = append(rep.Failures, inventory.Failed("writing the audit log", err))
		}
	}
	return pruned
}

// forget drops what was pruned from the inventory: an entry of a
// certificate no longer declared goes once all its targets have (and no
// other shard's pages hold an older copy, which would come back: it stays,
// without targets, until they are tidied); others lose the pruned targets.
// What failed stays recorded, to be pruned next time.
func (p *Pass) forget(ctx context.Context, res *render.Result, inv map[string]*inventory.Entry, pruned map[string]bool, rep *Result) {
	desired := map[string]bool{}
	for _, d := range res.Desired {
		desired[d.ID] = true
	}
	next := maps.Clone(inv)
	var changed []string
	for _, id := range slices.Sorted(maps.Keys(inv)) {
		e := inv[id]
		var kept []inventory.Target
		for _, t := range e.Targets {
			if !pruned[t.Key] {
				kept = append(kept, t)
			}
		}
		switch {
		case len(kept) == len(e.Targets):
			continue
		case !desired[id] && len(kept) == 0 && !e.Copies():
			delete(next, id)
		default:
			updated := *e
			updated.Targets = kept
			next[id] = &updated
		}
		changed = append(changed, id)
	}
	failed := inventory.Save(ctx, p.Backend, p.shardName(), next, changed)
	for _, id := range changed {
		if err := failed[id]; err != nil {
			rep.Failures = append(rep.Failures, inventory.Failed("updating "+id+" in the inventory", err))
		} else if e, ok := next[id]; ok {
			if !desired[id] && len(e.Targets) == 0 {
				p.revoke(ctx, inv[id], "pruned", rep) // kept only until other shards' copies are tidied
			}
			inv[id] = e
		} else {
			// Its last target is gone: nothing holds the certificate any more.
			p.revoke(ctx, inv[id], "pruned", rep)
			delete(inv, id)
		}
	}
}
