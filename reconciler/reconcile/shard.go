package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/shard"
)

// Sharding makes a pass one shard's: it renders the whole revision but
// observes, decides and acts on the shard's certificates only, and hands
// certificates over to other shards through the inventory (shard.Decide).
type Sharding struct {
	// Name is this shard ("": the unsharded process).
	Name string
	// Config is the fleet's sharding, the same for every shard.
	Config shard.Config
	// Alive reports whether a shard's leader holds its lease now; a
	// certificate owned by a shard that is not alive may be taken over.
	// Nil takes every owner to be alive: nothing is taken over.
	Alive func(shard string) bool
}

// Keep is what a shard's render holds whole (render.WithKeep): its own
// certificates and those no shard claims (which the reporter reports);
// of every other one only its ID and the shard it belongs to (the tag),
// which is all a shard needs to release what it owned. Nil when the fleet
// is not sharded: everything is kept.
func (s *Sharding) Keep() render.Keep {
	if s == nil || len(s.Config.Shards) == 0 {
		return nil
	}
	return func(id string, labels map[string]string) (bool, string) {
		claimant, ok := s.Config.Of(id, labels)
		return !ok || claimant == s.Name, claimant
	}
}

// ShardReport is what a sharded pass says about its share of the fleet.
type ShardReport struct {
	// Shard is the shard that ran the pass.
	Shard string `json:"shard"`
	// Shards are the declared shards.
	Shards []string `json:"shards,omitempty"`
	// Owned counts the certificates this shard acts on.
	Owned int `json:"owned"`
	// Adopted are certificates this pass took over from another shard.
	Adopted []HandOff `json:"adopted,omitempty"`
	// Released are certificates this pass gave up: they belong elsewhere now.
	Released []HandOff `json:"released,omitempty"`
	// Waiting are this shard's certificates that their owner has not released yet.
	Waiting []HandOff `json:"waiting,omitempty"`
	// Unclaimed are certificates no declared shard claims.
	Unclaimed []HandOff `json:"unclaimed,omitempty"`
	// Claimed are new certificates this pass claimed: they are issued from
	// the next pass on, once a fresh read shows the claim holds.
	Claimed []string `json:"claimed,omitempty"`
}

// HandOff is one certificate between shards.
type HandOff struct {
	Certificate string `json:"certificate"`
	// From is the shard that owned it; To the one it belongs to now
	// (for an unclaimed certificate, the undeclared shard its label names).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

func (p *Pass) shardName() string {
	if p.Shard == nil {
		return ""
	}
	return p.Shard.Name
}

func (p *Pass) sharding() Sharding {
	if p.Shard == nil {
		return Sharding{}
	}
	return *p.Shard
}

// sharded reports whether the fleet is split between shards.
func (p *Pass) sharded() bool { return p.Shard != nil && len(p.Shard.Config.Shards) > 0 }

// reporter reports whether this shard reports what belongs to no shard
// (unclaimed certificates) and publishes the trust bundles: the first
// declared shard, so a merged view counts each once.
func (p *Pass) reporter() bool {
	return !p.sharded() || p.Shard.Config.Shards[0] == p.Shard.Name
}

// lockName is the backend lock of this shard's passes: shards run their
// passes side by side, each shard's one at a time.
func (p *Pass) lockName() string {
	if n := p.shardName(); n != "" {
		return "pass-" + n
	}
	return "pass"
}

// claimed is the part of a rendered revision this shard observes: the
// certificates that belong to it, whoever owns them now.
func (p *Pass) claimed(res *render.Result) []*render.Desired {
	if !p.sharded() {
		return res.Desired
	}
	cfg, me := p.Shard.Config, p.Shard.Name
	var out []*render.Desired
	for _, d := range res.Desired {
		if s, ok := cfg.Of(d.ID, d.Certificate.Metadata.Labels); ok && s == me {
			out = append(out, d)
		}
	}
	return out
}

// stale reports whether a kept copy of the inventory may hide another
// shard's work on this shard's certificates: one of them is unrecorded in
// it (another shard may have claimed it since the copy was read), claimed
// by this shard but not issued yet (the claim must still hold), or owned
// elsewhere (it may have been released since). The pass then reads the
// inventory afresh, so a shard never issues what another already has.
func (p *Pass) stale(claimed []*render.Desired, inv map[string]*inventory.Entry) bool {
	if !p.sharded() {
		return false
	}
	for _, d := range claimed {
		// A claim not yet issued on is confirmed on a fresh read too.
		if e := inv[d.ID]; e == nil || e.Shard != p.Shard.Name || e.Released() || e.Serial == "" {
			return true
		}
	}
	return false
}

// share is this shard's part of a pass.
type share struct {
	// res is the rendered revision with only the certificates this shard acts on.
	res *render.Result
	// inv is the inventory entries this shard may judge (its own, and those
	// it adopts): only they can be orphans it prunes.
	inv     map[string]*inventory.Entry
	adopt   map[string]string // ID → previous owner
	release []string
	claim   []*render.Desired
	report  ShardReport
	// unclaimed are the unclaimed certificates (reported by the reporter only).
	unclaimed []*render.Desired
	// declared are the IDs the revision declares.
	declared idSet
	// mine reports whether an ID is this shard's to act on.
	mine func(id string) bool
}

// shareOf splits a rendered revision and the inventory into what this
// shard acts on, adopts, releases, waits for, and what nobody claims.
func (p *Pass) shareOf(res *render.Result, inv map[string]*inventory.Entry, declared idSet) share {
	sh := p.sharding()
	me := sh.Name
	out := share{inv: map[string]*inventory.Entry{}, adopt: map[string]string{},
		report: ShardReport{Shard: me, Shards: sh.Config.Shards}}
	r := *res
	r.Desired = nil
	owner := func(id string) shard.Owner {
		if e := inv[id]; e != nil {
			return shard.Owner{Recorded: true, Shard: e.Shard, Released: e.Released()}
		}
		return shard.Owner{}
	}
	for _, d := range res.Desired {
		claimant, ok := sh.Config.Of(d.ID, d.Certificate.Metadata.Labels)
		if !ok {
			out.report.Unclaimed = append(out.report.Unclaimed, HandOff{Certificate: d.ID, From: ownerOf(inv[d.ID]), To: claimant})
			out.unclaimed = append(out.unclaimed, d)
		}
		o := owner(d.ID)
		switch shard.Decide(me, claimant, ok, o, sh.Alive) {
		case shard.Act:
			r.Desired = append(r.Desired, d)
			if e := inv[d.ID]; e != nil {
				out.inv[d.ID] = e
			}
		case shard.Adopt:
			r.Desired = append(r.Desired, d)
			out.inv[d.ID] = inv[d.ID]
			out.adopt[d.ID] = o.Shard
			out.report.Adopted = append(out.report.Adopted, HandOff{Certificate: d.ID, From: o.Shard, To: me})
		case shard.Release:
			out.release = append(out.release, d.ID)
			out.report.Released = append(out.report.Released, HandOff{Certificate: d.ID, From: me, To: claimant})
		case shard.Wait:
			out.report.Waiting = append(out.report.Waiting, HandOff{Certificate: d.ID, From: o.Shard, To: me})
		case shard.Claim:
			if p.DryRun {
				r.Desired = append(r.Desired, d) // reported as it stands (Missing): a dry run claims nothing
			}
			out.claim = append(out.claim, d)
			out.report.Claimed = append(out.report.Claimed, d.ID)
		}
	}
	// Other shards' certificates, which the render did not keep (Keep): this
	// shard only releases those it still owns.
	for _, o := range res.Others {
		if shard.Decide(me, o.Tag, true, owner(o.ID), sh.Alive) == shard.Release {
			out.release = append(out.release, o.ID)
			out.report.Released = append(out.report.Released, HandOff{Certificate: o.ID, From: me, To: o.Tag})
		}
	}
	// Certificates no longer declared: their owner prunes them; one whose
	// owner is gone (its lease expired) is taken over by the shard its ID
	// hashes to (or the default), which then prunes it.
	// In the map's order, the adoptions sorted after: a sorted list of
	// every ID of the fleet was garbage made at the pass's peak.
	adopted := len(out.report.Adopted)
	for id, e := range inv {
		if declared.has(id) {
			continue
		}
		if e.Shard == me && !e.Released() {
			out.inv[id] = e
			continue
		}
		claimant, ok := sh.Config.Of(id, nil)
		if shard.Decide(me, claimant, ok, owner(id), sh.Alive) == shard.Adopt {
			out.inv[id] = e
			out.adopt[id] = e.Shard
			out.report.Adopted = append(out.report.Adopted, HandOff{Certificate: id, From: e.Shard, To: me})
		}
	}
	slices.SortFunc(out.report.Adopted[adopted:], func(a, b HandOff) int { return strings.Compare(a.Certificate, b.Certificate) })
	out.res = &r
	out.declared = declared
	out.report.Owned = len(r.Desired)
	acts := newIDSet(len(r.Desired))
	for _, d := range r.Desired {
		acts.add(d.ID)
	}
	acts.done()
	// The closure holds the map, not out: out holds declared and the
	// report, which the pass drops once they are used.
	mineInv := out.inv
	out.mine = func(id string) bool { return acts.has(id) || mineInv[id] != nil }
	return out
}

// wholeInventory makes the unsharded process's share of the inventory the
// inventory itself when the two hold the same entries (every one the
// process's own, none adopted: always, unless the fleet was sharded
// before), so that a pass holds one map of the fleet's entries, not two.
// Called after handOff, which may still drop entries from inv: the two
// are the same then only if their lengths are (sh.inv's IDs are inv's).
func (sh *share) wholeInventory(p *Pass, inv map[string]*inventory.Entry) {
	if !p.sharded() && len(sh.adopt) == 0 && len(sh.inv) == len(inv) {
		sh.inv = inv
	}
}

// idSet is a set of IDs as a sorted slice: 16 bytes an ID, its strings
// shared with the render's, where a map[string]bool takes ~75 — and a
// pass holds a set of every declared ID of the fleet.
type idSet struct{ ids []string }

func newIDSet(n int) idSet { return idSet{ids: make([]string, 0, n)} }

func (s *idSet) add(id string) { s.ids = append(s.ids, id) }

// done sorts the IDs added; a render's come sorted already.
func (s *idSet) done() {
	if !slices.IsSorted(s.ids) {
		slices.Sort(s.ids)
	}
}

func (s idSet) has(id string) bool {
	_, ok := slices.BinarySearch(s.ids, id)
	return ok
}

// declaredOf is the set of IDs the revision declares: this shard's and
// the others' (render.Result.Others).
func declaredOf(res *render.Result) idSet {
	out := newIDSet(len(res.Desired) + len(res.Others))
	for _, d := range res.Desired {
		out.add(d.ID)
	}
	for _, o := range res.Others {
		out.add(o.ID)
	}
	out.done()
	return out
}

// inventoryShare is what a shard's pass reads of the inventory
// (inventory.WithShare): its own pages whole — what it owns, released or
// no longer declared, which it releases, prunes or tidies, and which its
// writes of those pages must keep — and of the other pages every copy of:
//   - a certificate of the revision that belongs to it, whoever owns it
//     now (to act, claim, wait for its owner or adopt it: shard.Decide);
//   - one no shard claims (the reporter says who owned it);
//   - one no longer declared whose ID belongs to it (by hash, or the
//     default shard): the one it takes over and prunes if its owner is gone;
//   - an ID its own pages also hold (inventory.Load's rule), so that of two
//     copies the current one wins as in a whole read.
//
// Nothing else in a pass reads other shards' entries: the prune share,
// rollout waves and rotation phases count the shard's own share (its
// render, its rollout state), and the trust bundles come from the render.
// Nil when the fleet is not sharded: the whole inventory.
func (p *Pass) inventoryShare(res *render.Result, declared idSet) []inventory.LoadOption {
	if !p.sharded() {
		return nil
	}
	cfg, me := p.Shard.Config, p.Shard.Name
	needed := newIDSet(len(res.Desired))
	for _, d := range res.Desired {
		if s, ok := cfg.Of(d.ID, d.Certificate.Metadata.Labels); !ok || s == me {
			needed.add(d.ID)
		}
	}
	needed.done()
	return []inventory.LoadOption{inventory.WithShare(me, func(id string) bool {
		if needed.has(id) {
			return true
		}
		if declared.has(id) {
			return false
		}
		s, ok := cfg.Of(id, nil)
		return ok && s == me
	})}
}

// ownerOf is the shard an entry records as the owner ("" without one).
func ownerOf(e *inventory.Entry) string {
	if e == nil {
		return ""
	}
	return e.Shard
}

// handOff records this pass's releases and adoptions before it acts, and
// tidies this shard's pages: one write of each page of this shard's
// holding a change. A release leaves every target as it is; the shard the
// certificate belongs to adopts it from its next pass on, keeping the
// delivered certificate while it is valid and matches. An adoption is
// recorded first, so that the shard it came from, should it come back,
// reads that it is no longer its own; one that could not be recorded is
// not acted on in this pass. A certificate taken over from a shard that is
// gone leaves that shard's pages too (nobody else writes them): otherwise
// its copy would come back once this shard prunes and forgets it.
func (p *Pass) handOff(ctx context.Context, sh *share, inv map[string]*inventory.Entry) inventory.Failures {
	now := p.now()
	me := p.shardName()
	// What changes, by ID (nil: deleted), the whole inventory cloned only
	// when something does: a pass with nothing to hand over (every pass of
	// the unsharded process) copies no map of the fleet.
	changes := map[string]*inventory.Entry{}
	var changed []string
	for _, id := range sh.release {
		if e := inv[id]; e != nil && e.Shard == me && !e.Released() {
			r := e.Clone()
			r.Edit().Released, r.UpdatedAt, r.Edit().Handoffs = true, now, e.Handoffs()+1
			changes[id] = r
			changed = append(changed, id)
		}
	}
	gone := map[string][]string{} // a gone shard → the IDs taken over from it
	for _, id := range slices.Sorted(maps.Keys(sh.adopt)) {
		e := inv[id]
		a := e.Clone()
		a.Shard, a.Edit().Released, a.UpdatedAt, a.Edit().Handoffs = me, false, now, e.Handoffs()+1
		changes[id] = a
		changed = append(changed, id)
		if !e.Released() && e.Shard != me {
			gone[e.Shard] = append(gone[e.Shard], id)
		}
	}
	// Tidying: this shard's copies another shard's have replaced, and its
	// own entries with nothing left to prune whose older copies are gone.
	var tidied []string
	for _, d := range sh.claim {
		changes[d.ID] = &inventory.Entry{ID: d.ID, Issuer: d.Certificate.Spec.Issuer, File: d.File(), Shard: me, UpdatedAt: now}
		changed = append(changed, d.ID)
	}
	for id, e := range inv {
		switch {
		case e.Shard != me && e.HeldElsewhere(me):
			tidied = append(tidied, id)
		case e.Shard == me && !e.Released() && !sh.declared.has(id) && len(e.Targets) == 0 && !e.Copies():
			changes[id] = nil
			tidied = append(tidied, id)
		}
	}
	if len(changed)+len(tidied) == 0 {
		return nil
	}
	next := maps.Clone(inv)
	for id, e := range changes {
		if e == nil {
			delete(next, id)
		} else {
			next[id] = e
		}
	}
	var failures inventory.Failures
	failed := inventory.Save(ctx, p.Backend, me, next, append(slices.Clone(changed), tidied...))
	for _, id := range changed {
		if err := failed[id]; err != nil {
			failures = append(failures, inventory.Failed("handing "+id+" over between shards", err))
			if _, adopting := sh.adopt[id]; adopting {
				sh.res.Desired = slices.DeleteFunc(sh.res.Desired, func(d *render.Desired) bool { return d.ID == id })
				delete(sh.inv, id)
			}
			continue
		}
		inv[id] = next[id]
		if _, adopting := sh.adopt[id]; adopting {
			sh.inv[id] = next[id]
		}
	}
	for _, id := range tidied {
		if failed[id] == nil && next[id] == nil {
			delete(inv, id)
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(gone)) {
		// Read and written afresh: this shard holds only its part of the
		// inventory (inventoryShare), not the rest of the gone shard's pages.
		for id, err := range inventory.Remove(ctx, p.Backend, owner, gone[owner]) {
			failures = append(failures, inventory.Failed("removing "+id+" from the pages of shard "+owner+", which is gone", err))
		}
	}
	return failures
}

// addUnclaimed reports the certificates no shard claims, target by
// target, so drift and the metrics show them (the reporter shard only, so
// a merged view counts each once).
func (r *Result) addUnclaimed(unclaimed []*render.Desired, report ShardReport) {
	to := map[string]string{}
	for _, h := range report.Unclaimed {
		to[h.Certificate] = h.To
	}
	for _, d := range unclaimed {
		msg := fmt.Sprintf("its %s label names shard %q, which sharding.shards does not declare: no shard acts on it or prunes it", shard.Label, to[d.ID])
		if to[d.ID] == "" {
			msg = fmt.Sprintf("it has no %s label and sharding by label has no default: no shard acts on it or prunes it", shard.Label)
		}
		for _, t := range d.Targets {
			r.Reasons[decide.Unclaimed]++
			r.Items = append(r.Items, Item{Certificate: d.ID, Issuer: d.Certificate.Spec.Issuer, Target: t.Key, Reason: decide.Unclaimed, Message: msg})
			if !r.noState {
				r.State = append(r.State, TargetState{Certificate: d.ID, Target: t.Key, Kind: string(t.Kind), Cluster: t.Cluster,
					Namespace: t.Namespace, Issuer: d.Certificate.Spec.Issuer, File: d.File(), Reason: decide.Unclaimed, Message: msg})
			}
		}
	}
}

// addWaiting reports this shard's certificates that wait for their owner
// to release them.
func (r *Result) addWaiting(waiting []HandOff) {
	for _, h := range waiting {
		r.Reasons[decide.AwaitingHandOff]++
		r.Items = append(r.Items, Item{Certificate: h.Certificate, Reason: decide.AwaitingHandOff,
			Message: fmt.Sprintf("belongs to shard %s now; shard %s owns it and has not released it yet", h.To, h.From)})
	}
}
