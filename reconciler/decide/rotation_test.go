package decide_test

import (
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// TestRotationPhases is the phase machine: each case is a pass's view
// (the catalog, what the targets held, what the bundles read back, what
// the pass retired) and the phase it must report. A phase is only reached
// when every earlier one holds, whatever the later facts say.
func TestRotationPhases(t *testing.T) {
	old, next, older := newFixture(t), newFixture(t), newFixture(t)
	previous := func(fs ...*fixture) []schemas.PreviousIssuer {
		var out []schemas.PreviousIssuer
		for i, f := range fs {
			out = append(out, schemas.PreviousIssuer{IssuerID: "old-" + string(rune('a'+i)), Certificate: string(pki.EncodeCertificate(f.ca.Cert)), NotAfter: now.Add(400 * day)})
		}
		return out
	}
	rotated := func(prev ...schemas.PreviousIssuer) *schemas.Catalog {
		c := next.catalog()
		c.Authorities["root"].Status.PreviousIssuers = prev
		return c
	}
	expired := previous(old)
	expired[0].NotAfter = now.Add(-time.Hour)
	all := func(schemas.PreviousIssuer) bool { return true }
	onlyOld := func(p schemas.PreviousIssuer) bool { return p.IssuerID == "old-a" }
	a, b := dirTarget("/etc/tls/a"), dirTarget("/etc/tls/b")
	since := now.Add(-3 * time.Hour)

	tests := []struct {
		name      string
		cat       *schemas.Catalog
		leaves    [2]*fixture // who signed what targets a and b hold
		trust     decide.Trust
		rewritten map[string]bool
		retired   func(schemas.PreviousIssuer) bool
		backoff   bool
		record    *decide.PhaseRecord
		want      decide.AuthorityPhase
		message   string
	}{
		{name: "an authority that never rotated is Idle", cat: old.catalog(), leaves: [2]*fixture{old, old},
			trust: decide.Trust{Places: 3, Trusting: 3}, retired: all,
			want: decide.AuthorityPhase{Phase: decide.PhaseIdle, Places: 3, PlacesTrusting: 3}},
		{name: "a previous CA that has expired is no rotation", cat: rotated(expired...), leaves: [2]*fixture{old, old},
			trust: decide.Trust{Places: 3, Trusting: 0, Why: "…"},
			want:  decide.AuthorityPhase{Phase: decide.PhaseIdle, Places: 3}},
		{name: "right after the rotation no place holds the new CA: NewIssuer, every old leaf awaiting trust", cat: rotated(previous(old)...),
			leaves: [2]*fixture{old, old}, trust: decide.Trust{Places: 3, Why: "trust bundle fleet at directory trust does not hold the current CA of root yet"},
			want:    decide.AuthorityPhase{Phase: decide.PhaseNewIssuer, Places: 3, LeavesRemaining: 2, LeavesAwaitingTrust: 2},
			message: "does not hold the current CA of root yet"},
		{name: "some places hold it: TrustPublishing, saying how many of how many", cat: rotated(previous(old)...),
			leaves: [2]*fixture{old, old}, trust: decide.Trust{Places: 3, Trusting: 2, Why: "x"},
			want:    decide.AuthorityPhase{Phase: decide.PhaseTrustPublishing, Places: 3, PlacesTrusting: 2, LeavesRemaining: 2, LeavesAwaitingTrust: 2},
			message: "2 of 3 trust bundle places hold the new CA"},
		{name: "a pass never skips a phase: bundles not all verified is TrustPublishing even with no old leaf left and the old CA unused",
			cat: rotated(previous(old)...), leaves: [2]*fixture{next, next}, trust: decide.Trust{Places: 3, Trusting: 2, Why: "x"}, retired: all,
			want: decide.AuthorityPhase{Phase: decide.PhaseTrustPublishing, Places: 3, PlacesTrusting: 2}},
		{name: "every place trusts the new CA: Reissuing, counting the old leaves", cat: rotated(previous(old)...),
			leaves: [2]*fixture{old, next}, trust: decide.Trust{Places: 3, Trusting: 3},
			want:    decide.AuthorityPhase{Phase: decide.PhaseReissuing, Places: 3, PlacesTrusting: 3, LeavesRemaining: 1},
			message: "1 delivered leaves still signed by a previous CA"},
		{name: "an authority no bundle names has no trust to wait for", cat: rotated(previous(old)...),
			leaves: [2]*fixture{old, old}, want: decide.AuthorityPhase{Phase: decide.PhaseReissuing, LeavesRemaining: 2}},
		{name: "leaves held back (a backoff, a wave) still count as remaining", cat: rotated(previous(old)...),
			leaves: [2]*fixture{old, old}, trust: decide.Trust{Places: 1, Trusting: 1}, backoff: true,
			want: decide.AuthorityPhase{Phase: decide.PhaseReissuing, Places: 1, PlacesTrusting: 1, LeavesRemaining: 2}},
		{name: "leaves the pass reissued no longer count, but the old CA is only retired by the next pass: still Reissuing",
			cat: rotated(previous(old)...), leaves: [2]*fixture{old, old}, trust: decide.Trust{Places: 3, Trusting: 3},
			rewritten: map[string]bool{a.Key: true, b.Key: true},
			want:      decide.AuthorityPhase{Phase: decide.PhaseReissuing, Places: 3, PlacesTrusting: 3},
			message:   "once a pass that sees the whole fleet finds nothing signed by it"},
		{name: "no old leaf left, but a scoped or partly blind pass retires nothing: still Reissuing", cat: rotated(previous(old)...),
			leaves: [2]*fixture{next, next}, trust: decide.Trust{Places: 3, Trusting: 3},
			want: decide.AuthorityPhase{Phase: decide.PhaseReissuing, Places: 3, PlacesTrusting: 3}},
		{name: "two previous CAs, one still used (say by an unmanaged Secret): still Reissuing", cat: rotated(previous(old, older)...),
			leaves: [2]*fixture{next, next}, trust: decide.Trust{Places: 3, Trusting: 3}, retired: onlyOld,
			want: decide.AuthorityPhase{Phase: decide.PhaseReissuing, Places: 3, PlacesTrusting: 3}},
		{name: "nothing chains to the old CA and the pass retired it: Retired", cat: rotated(previous(old)...),
			leaves: [2]*fixture{next, next}, trust: decide.Trust{Places: 3, Trusting: 3}, retired: all,
			want:    decide.AuthorityPhase{Phase: decide.PhaseRetired, Places: 3, PlacesTrusting: 3},
			message: "tidied per retirePreviousIssuer (keep)"},
		{name: "the same phase keeps its recorded since", cat: rotated(previous(old)...),
			leaves: [2]*fixture{old, old}, trust: decide.Trust{Places: 3, Trusting: 3}, record: &decide.PhaseRecord{Phase: decide.PhaseReissuing, Since: since},
			want: decide.AuthorityPhase{Phase: decide.PhaseReissuing, Places: 3, PlacesTrusting: 3, LeavesRemaining: 2, Since: &since}},
		{name: "a new phase has no since yet (the acting pass records it)", cat: rotated(previous(old)...),
			leaves: [2]*fixture{old, old}, trust: decide.Trust{Places: 3, Trusting: 3}, record: &decide.PhaseRecord{Phase: decide.PhaseTrustPublishing, Since: since},
			want: decide.AuthorityPhase{Phase: decide.PhaseReissuing, Places: 3, PlacesTrusting: 3, LeavesRemaining: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			da, db := desired("team/a", nil, a), desired("team/b", nil, b)
			oa, ob := tt.leaves[0].delivered(da, a, tt.leaves[0].fresh()), tt.leaves[1].delivered(db, b, tt.leaves[1].fresh())
			inv := map[string]*inventory.Entry{}
			for id, o := range map[string]*target.Observed{da.ID: oa, db.ID: ob} {
				inv[id] = &inventory.Entry{ID: id, Serial: pki.Serial(o.Cert.SerialNumber)}
				if tt.backoff {
					retry := now.Add(time.Hour)
					inv[id].Edit().RetryAt = &retry
				}
			}
			var untrusted map[string]string
			if tt.trust.Trusting < tt.trust.Places {
				untrusted = map[string]string{"root": tt.trust.Why}
			}
			dec := decide.Decide(decide.Input{Desired: []*render.Desired{da, db}, Observed: observedBy(oa, ob), Now: now,
				Inventory: inv, Catalog: tt.cat, Untrusted: untrusted})
			prev := map[string]decide.PhaseRecord{}
			if tt.record != nil {
				prev["root"] = *tt.record
			}
			got := decide.RotationPhases(decide.RotationInput{Catalog: tt.cat, Decisions: dec, Trust: map[string]decide.Trust{"root": tt.trust},
				Rewritten: tt.rewritten, Retired: tt.retired, Previous: prev, Now: now})
			if len(got) != 1 {
				t.Fatalf("%d phases, want one per authority", len(got))
			}
			g, w := got[0], tt.want
			if g.Authority != "root" || g.Phase != w.Phase || g.PhaseName != w.Phase.String() || g.Places != w.Places || g.PlacesTrusting != w.PlacesTrusting ||
				g.LeavesRemaining != w.LeavesRemaining || g.LeavesAwaitingTrust != w.LeavesAwaitingTrust {
				t.Errorf("got phase %d %s, places %d/%d, leaves %d (awaiting %d); want phase %d, places %d/%d, leaves %d (awaiting %d) — %s",
					g.Phase, g.PhaseName, g.PlacesTrusting, g.Places, g.LeavesRemaining, g.LeavesAwaitingTrust,
					w.Phase, w.PlacesTrusting, w.Places, w.LeavesRemaining, w.LeavesAwaitingTrust, g.Message)
			}
			if (g.Since == nil) != (w.Since == nil) || g.Since != nil && !g.Since.Equal(*w.Since) {
				t.Errorf("since %v, want %v", g.Since, w.Since)
			}
			if !strings.Contains(g.Message, tt.message) {
				t.Errorf("message %q does not say %q", g.Message, tt.message)
			}
			if (len(g.Retire) > 0) != (w.Phase == decide.PhaseRetired) {
				t.Errorf("issuers to tidy %v: only a Retired phase tidies", g.Retire)
			}
		})
	}
}

// TestPhaseChanges: an authority's phase change is reported once (for the
// audit log), its record keeps the time it entered the phase, and an
// authority back to Idle leaves no record; one never out of Idle is no change.
func TestPhaseChanges(t *testing.T) {
	since := now.Add(-time.Hour)
	previous := map[string]decide.PhaseRecord{
		"moved":    {Phase: decide.PhaseTrustPublishing, Since: since},
		"stayed":   {Phase: decide.PhaseReissuing, Since: since},
		"finished": {Phase: decide.PhaseRetired, Since: since},
	}
	phases := []decide.AuthorityPhase{
		{Authority: "finished", Phase: decide.PhaseIdle}, {Authority: "idle", Phase: decide.PhaseIdle},
		{Authority: "moved", Phase: decide.PhaseReissuing}, {Authority: "started", Phase: decide.PhaseNewIssuer},
		{Authority: "stayed", Phase: decide.PhaseReissuing},
	}
	changed, records := decide.PhaseChanges(phases, previous, now)
	var names []string
	for _, c := range changed {
		names = append(names, c.Authority+":"+c.Phase.String())
	}
	if got, want := strings.Join(names, " "), "finished:Idle moved:Reissuing started:NewIssuer"; got != want {
		t.Errorf("changes %q, want %q", got, want)
	}
	want := map[string]decide.PhaseRecord{
		"moved":   {Phase: decide.PhaseReissuing, Since: now},
		"started": {Phase: decide.PhaseNewIssuer, Since: now},
		"stayed":  {Phase: decide.PhaseReissuing, Since: since},
	}
	if len(records) != len(want) {
		t.Errorf("records %v, want %v", records, want)
	}
	for k, w := range want {
		if g, ok := records[k]; !ok || g.Phase != w.Phase || !g.Since.Equal(w.Since) {
			t.Errorf("record of %s: %v, want %v", k, g, w)
		}
	}
}
