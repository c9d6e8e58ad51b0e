package reconcile

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// Result is what a pass did (or, dry, would do), by reason, with counts.
type Result struct {
	Revision string    `json:"revision"`
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	DryRun   bool      `json:"dryRun"`
	// Certificates is the number of desired certificates.
	Certificates int `json:"certificates"`
	// Reasons counts targets by their state before the pass acted.
	Reasons map[decide.Reason]int `json:"reasons"`
	// Actions counts certificates by what was done: issue, renew, reissue, update.
	Actions map[string]int `json:"actions"`
	Pruned  int            `json:"pruned"`
	// Revoked counts serials put on a CRL: superseded or pruned certificates.
	Revoked int `json:"revoked"`
	// Restarted counts workloads restarted (restart:) for a new certificate
	// or because their probe still saw the old one; in a dry run, those
	// that would be.
	Restarted int `json:"restarted"`
	// TrustBundles counts trust bundle targets written.
	TrustBundles int `json:"trustBundles"`
	// Waves is where each wave of the catalog's Rollout stands after the
	// pass's decisions (none without a Rollout).
	Waves []decide.Wave `json:"waves,omitempty"`
	// Rotations are the authorities in a rotation (not Idle) after the pass.
	Rotations []decide.AuthorityPhase `json:"rotations,omitempty"`
	// Items lists every certificate and target that was not in sync.
	Items []Item `json:"items"`
	// Failures are what could not be done; the next pass retries them.
	Failures inventory.Failures `json:"failures"`
	Notes    []string           `json:"notes,omitempty"`
	// PruneRefused is set when pruning was refused for safety.
	PruneRefused string `json:"pruneRefused,omitempty"`
	// Shard is what a sharded pass did with its share of the fleet (nil: unsharded).
	Shard *ShardReport `json:"shard,omitempty"`
	// State is every target after the pass: what drift reports and the
	// daemon's metrics show.
	State []TargetState `json:"-"`
	// Unobservable lists the targets and clusters that could not be read
	// (also among Failures): drift cannot say anything about them.
	Unobservable inventory.Failures `json:"-"`
	// NextRetry is the earliest time a failing certificate is retried (zero: none).
	NextRetry time.Time `json:"-"`
	// Inventory is the inventory after the pass, for the next one (see Pass.Inventory).
	Inventory map[string]*inventory.Entry `json:"-"`
	// Issuances counts certificates issued (issue, renew, reissue) per issuer and result.
	Issuances map[Issuance]int `json:"-"`

	// noState leaves State empty (Pass.NoState).
	noState bool
}

// TargetState is one target after a pass.
type TargetState struct {
	Certificate string
	Target      string
	Kind        string
	Cluster     string
	Namespace   string
	Issuer      string
	File        string
	// Reason is decide's, after the pass: InSync once a write succeeded;
	// Message explains it.
	Reason  decide.Reason
	Message string
	// Wave is the rollout wave a WaitingForWave target waits in.
	Wave string
	// Serial is what the target holds; IssuedSerial what the inventory records.
	Serial, IssuedSerial         string
	NotBefore, NotAfter, RenewAt time.Time
	// Ready is true when the target holds a valid certificate with its key.
	Ready        bool
	FailingSince *time.Time
}

// Item is one target's state and what happened to it.
type Item struct {
	Certificate string        `json:"certificate"`
	Issuer      string        `json:"issuer,omitempty"`
	Target      string        `json:"target"`
	Reason      decide.Reason `json:"reason"`
	// Message explains Reason.
	Message string `json:"message,omitempty"`
	// Wave is the rollout wave a WaitingForWave target waits in.
	Wave   string `json:"wave,omitempty"`
	Action string `json:"action,omitempty"`
	// Restart names the workload restarted for this target (Kind
	// namespace/name), or in a dry run the one that would be.
	Restart  string    `json:"restart,omitempty"`
	Serial   string    `json:"serial,omitempty"`
	NotAfter time.Time `json:"notAfter,omitzero"`
	Error    string    `json:"error,omitempty"`
	// ErrorKind is Permanent (not retried until the declaration or the
	// catalog changes) or Transient (retried with backoff).
	ErrorKind inventory.FailureKind `json:"errorKind,omitempty"`
}

func newResult(res *render.Result, start time.Time, dry bool) *Result {
	return &Result{Revision: res.Revision.String(), Started: start, DryRun: dry, Certificates: len(res.Desired),
		Reasons: map[decide.Reason]int{}, Actions: map[string]int{}, Failures: inventory.Failures{}, Items: []Item{}}
}

func (r *Result) addObservationFailures(errs map[string]error) {
	for _, key := range slices.Sorted(maps.Keys(errs)) {
		f := inventory.Failed("observing "+strings.TrimSuffix(key, "/"), errs[key])
		r.Failures = append(r.Failures, f)
		r.Unobservable = append(r.Unobservable, f)
	}
}

// addDecisions counts the decisions and, when the pass acted, their
// outcomes, and records every target's state after the pass.
func (r *Result) addDecisions(dec decide.Decisions, outcomes []*outcome, inv map[string]*inventory.Entry, now time.Time, jitter time.Duration) {
	// The state has a line per target, and the items one per target acted
	// on or not in sync: sized once, not grown by doubling, which at a
	// fleet's size leaves the halves behind as garbage at the pass's end.
	states, items := len(dec.Orphans)+len(dec.Unmanaged)+len(dec.TakenOver), len(dec.Orphans)+len(dec.TakenOver)
	for _, c := range dec.Certificates {
		states += len(c.Targets)
		for _, t := range c.Targets {
			if reason, _ := c.TargetReason(t); reason != decide.InSync || t.Write {
				items++
			}
		}
	}
	if r.noState {
		states = 0
	}
	r.State, r.Items = slices.Grow(r.State, states), slices.Grow(r.Items, items)
	for i, c := range dec.Certificates {
		var o *outcome
		if outcomes != nil {
			o = outcomes[i]
		}
		if !r.noState {
			r.State = statesOf(r.State, c, o, inv[c.Desired.ID], now, jitter, dec.Windows)
		}
		action := c.Action()
		if action != "" && o != nil && o.err == nil {
			r.Actions[action]++
		}
		if o != nil && o.err != nil {
			r.Failures = append(r.Failures, inventory.Failed(c.Desired.ID, o.err))
		}
		if o != nil && o.recordErr != nil {
			r.Failures = append(r.Failures, inventory.Failed(c.Desired.ID, o.recordErr))
		}
		if o != nil && !o.retryAt.IsZero() && (r.NextRetry.IsZero() || o.retryAt.Before(r.NextRetry)) {
			r.NextRetry = o.retryAt
		}
		if o != nil && c.Issue {
			if r.Issuances == nil {
				r.Issuances = map[Issuance]int{}
			}
			r.Issuances[Issuance{Issuer: c.Desired.Certificate.Spec.Issuer, Result: resultOf(o.err)}]++
		}
		for _, t := range c.Targets {
			reason, msg := c.TargetReason(t)
			r.Reasons[reason]++
			if reason == decide.InSync && !t.Write {
				continue
			}
			it := Item{Certificate: c.Desired.ID, Issuer: c.Desired.Certificate.Spec.Issuer, Target: t.Target.Key, Reason: reason, Message: msg}
			if reason == decide.WaitingForWave {
				it.Wave = c.Wave
			}
			if t.Write {
				it.Action = action
			}
			if o != nil {
				it.Serial, it.NotAfter = o.serial, o.notAfter
				if o.err != nil {
					it.Error, it.ErrorKind = o.err.Error(), inventory.KindOf(o.err)
				} else if err := o.written.err(t.Target.Key); err != nil {
					it.Error = err.Error()
					r.Failures = append(r.Failures, inventory.Failed(c.Desired.ID+" → "+t.Target.Key, err))
				}
			}
			r.Items = append(r.Items, it)
		}
	}
	// Unmanaged targets are not certfleet's: in the state (drift, metrics), not counted or listed.
	for _, ts := range [][]decide.Target{dec.Orphans, dec.Unmanaged, dec.TakenOver} {
		for _, t := range ts {
			if t.Reason != decide.Unmanaged {
				r.Reasons[t.Reason]++
				r.Items = append(r.Items, Item{Target: t.Target.Key, Reason: t.Reason, Message: t.Message, Certificate: t.Certificate})
			}
			if !r.noState {
				r.State = append(r.State, observedState(t, now))
			}
		}
	}
}

// statesOf appends a certificate's targets after the pass to out.
func statesOf(out []TargetState, c decide.Certificate, o *outcome, entry *inventory.Entry, now time.Time, jitter time.Duration,
	windows map[string]decide.Window) []TargetState {
	d := c.Desired
	for _, t := range c.Targets {
		s := TargetState{Certificate: d.ID, Target: t.Target.Key, Kind: string(t.Target.Kind), Cluster: t.Target.Cluster,
			Namespace: t.Target.Namespace, Issuer: d.Certificate.Spec.Issuer, File: d.File()}
		s.Reason, s.Message = c.TargetReason(t)
		if s.Reason == decide.WaitingForWave {
			s.Wave = c.Wave
		}
		if entry != nil {
			s.IssuedSerial, s.FailingSince = entry.Serial, entry.FailingSince()
		}
		if o != nil && o.err == nil && o.entry != nil {
			// Recorded by this pass (a copy, or a delivery the inventory had missed).
			s.IssuedSerial = o.serial
			if t.Reason == decide.NotRecorded && !t.Write {
				s.Reason, s.Message = decide.InSync, ""
			}
		}
		written := o != nil && o.err == nil && t.Write && o.written.err(t.Target.Key) == nil
		if written {
			s.Reason, s.Message, s.Serial, s.IssuedSerial = decide.InSync, "", o.serial, o.serial
			s.NotBefore, s.NotAfter, s.RenewAt = o.notBefore, o.notAfter, o.renewAt
			s.Ready, s.FailingSince = true, nil
		} else if ob := t.Observed; ob != nil && ob.Cert != nil {
			s.Serial = pki.Serial(ob.Cert.SerialNumber)
			s.NotBefore, s.NotAfter = ob.Cert.NotBefore, ob.Cert.NotAfter
			s.RenewAt, _ = decide.RenewAtWithin(d, ob.Cert.NotBefore, ob.Cert.NotAfter, jitter, decide.WindowOf(windows, ob.Cert))
			s.Ready = ob.KeyMatches() && now.Before(ob.Cert.NotAfter)
		}
		if o != nil && (o.err != nil || o.written.err(t.Target.Key) != nil) && s.FailingSince == nil {
			n := now
			s.FailingSince = &n
		}
		out = append(out, s)
	}
	return out
}

// observedState is an orphaned, taken-over or unmanaged target as observed.
func observedState(t decide.Target, now time.Time) TargetState {
	s := TargetState{Certificate: t.Certificate, Target: t.Target.Key, Kind: string(t.Target.Kind), Cluster: t.Target.Cluster,
		Namespace: t.Target.Namespace, Reason: t.Reason, Message: t.Message}
	if ob := t.Observed; ob != nil && ob.Cert != nil {
		s.Serial, s.NotBefore, s.NotAfter = pki.Serial(ob.Cert.SerialNumber), ob.Cert.NotBefore, ob.Cert.NotAfter
		// Not for another's Secret (Unmanaged): nothing reads its readiness
		// (metrics and pages count only certfleet's), and finding it would
		// parse every such key on every pass.
		s.Ready = t.Reason != decide.Unmanaged && ob.KeyMatches() && now.Before(ob.Cert.NotAfter)
		s.Issuer = ob.Annotation(target.AnnIssuer)
	}
	return s
}

func (r *Result) refusePrune(msg string) {
	r.PruneRefused = msg
	r.Failures = append(r.Failures, inventory.Failure{Err: msg})
}

func (r *Result) finish(end time.Time) {
	r.Duration = end.Sub(r.Started).Round(time.Millisecond).String()
	slices.SortFunc(r.Failures, func(a, b inventory.Failure) int { return strings.Compare(a.String(), b.String()) })
	sort.SliceStable(r.Items, func(i, j int) bool {
		if r.Items[i].Certificate != r.Items[j].Certificate {
			return r.Items[i].Certificate < r.Items[j].Certificate
		}
		return r.Items[i].Target < r.Items[j].Target
	})
}

// Text writes the result for people.
func (r *Result) Text(w io.Writer) error {
	b := &strings.Builder{}
	verb := "reconciled"
	if r.DryRun {
		verb = "would reconcile (dry run)"
	}
	fmt.Fprintf(b, "certfleet %s %s: %d certificates in %s\n", verb, r.Revision, r.Certificates, r.Duration)
	if len(r.Items) > 0 {
		fmt.Fprintf(b, "\n")
		for _, it := range r.Items {
			line := fmt.Sprintf("  %-16s %-40s %s", it.Reason, it.Certificate, it.Target)
			if it.Action != "" {
				line += "  → " + it.Action
				if it.Serial != "" && it.Error == "" {
					line += " " + it.Serial
				}
			}
			if it.Restart != "" {
				line += "  → restart " + it.Restart
			}
			if it.Error != "" {
				line += "  FAILED: " + it.Error
			}
			fmt.Fprintln(b, line)
		}
	}
	fmt.Fprintf(b, "\n%s\n", r.summary())
	if len(r.Waves) > 0 {
		fmt.Fprintf(b, "rollout: %s\n", wavesLine(r.Waves))
	}
	writeRotations(b, r.Rotations)
	for _, n := range r.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(b, "\n%d failures (the next pass retries them):\n", len(r.Failures))
		for _, f := range r.Failures {
			fmt.Fprintf(b, "  %s\n", f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Result) summary() string {
	var parts []string
	for _, a := range []string{"issue", "renew", "reissue", "update", "record"} {
		if n := r.Actions[a]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", a, n))
		}
	}
	if r.Pruned > 0 {
		parts = append(parts, fmt.Sprintf("prune %d", r.Pruned))
	}
	if r.Revoked > 0 {
		parts = append(parts, fmt.Sprintf("revoke %d", r.Revoked))
	}
	if r.Restarted > 0 {
		parts = append(parts, fmt.Sprintf("restart %d", r.Restarted))
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to do")
	}
	var reasons []string
	for _, k := range slices.Sorted(maps.Keys(r.Reasons)) {
		reasons = append(reasons, fmt.Sprintf("%s %d", k, r.Reasons[k]))
	}
	return "actions: " + strings.Join(parts, ", ") + "; targets: " + strings.Join(reasons, ", ")
}
