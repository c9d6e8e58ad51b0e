package decide

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// RolloutInput is what a pass's waves depend on besides its decisions.
type RolloutInput struct {
	// Rollout is the catalog's (nil: no rollout; every reissue goes at once).
	Rollout *schemas.Rollout
	// Clusters are the catalog's: their labels place targets in waves.
	Clusters map[string]*schemas.Cluster
	// State is what the earlier passes of the rollout recorded.
	State inventory.RolloutState
	// Failing names the certificates whose last attempt failed (FailingIDs).
	Failing map[string]bool
	Now     time.Time
	// Partial is true when the pass does not see the whole fleet (--path,
	// .certfleetignore, a target it could not observe): a wave it sees
	// nothing left of may still have certificates elsewhere, so it never
	// finishes a wave nor ends the rollout.
	Partial bool
}

// WaveStatus is where a wave stands in a pass.
type WaveStatus string

const (
	// WaveDone: nothing of the wave is left to reissue (or nothing was).
	WaveDone WaveStatus = "Done"
	// WaveSoaking: the wave is done; the next one waits for its soak to end.
	WaveSoaking WaveStatus = "Soaking"
	// WaveRunning: the wave's certificates are being reissued.
	WaveRunning WaveStatus = "Running"
	// WavePaused: more of the wave's certificates failed than
	// pauseOnFailures allows; no further one starts.
	WavePaused WaveStatus = "Paused"
	// WaveWaiting: an earlier wave has not finished or soaked yet.
	WaveWaiting WaveStatus = "Waiting"
)

// Wave is one wave's part in a pass.
type Wave struct {
	Name   string     `json:"name"`
	Status WaveStatus `json:"status"`
	// Message says why a wave waits or is paused.
	Message string `json:"message,omitempty"`
	// Certificates counts the wave's certificates; Pending its mass
	// reissues left (those going this pass included); Failing those whose
	// last attempt failed.
	Certificates int `json:"certificates"`
	Pending      int `json:"pending"`
	Failing      int `json:"failing,omitempty"`
	// Reissue are the IDs reissued this pass; Held those that wait.
	Reissue []string `json:"reissue,omitempty"`
	Held    []string `json:"held,omitempty"`
	// Until is when a soaking wave's soak ends.
	Until *time.Time `json:"until,omitempty"`
}

// Hold is why one certificate's reissue waits.
type Hold struct {
	Wave    string
	Message string
}

// Rollout is a pass's waves: which mass reissues go and which wait.
type Rollout struct {
	Waves []Wave `json:"waves"`
	// Held are the waiting certificates, by ID.
	Held map[string]Hold `json:"-"`
	// WaveOf names the wave of every mass reissue, by ID.
	WaveOf map[string]string `json:"-"`
	// State is what to record for the next pass.
	State inventory.RolloutState `json:"-"`
}

// massReasons are the reasons a rollout governs: a new certificate that
// is not needed for the old one's sake (it is valid, and not yet due) but
// because something above it changed, often for many certificates at once.
var massReasons = map[Reason]bool{AuthorityRotated: true, IssuerChanged: true, SpecChanged: true}

// stuck are the certificate reasons nothing happens for until a person
// acts: they never hold a wave open.
var stuck = map[Reason]bool{Suspended: true, PolicyViolation: true, PermanentFailure: true}

// Waves decides which mass reissues of a pass go and which wait, and what
// the rollout records. A certificate belongs to the latest wave any of its
// targets' clusters falls in (a cluster falls in the first wave whose
// selector matches its labels; the last wave takes what none selects, and
// targets outside clusters), so a certificate that reaches production goes
// with production. Waves start in order: the next once the one before has
// none left and its soak (from its last reissue) has passed. A running wave
// reissues at most maxSharePerPass of its certificates per pass, and pauses
// — no further certificate starts, the failed ones retry on their backoff —
// while more than pauseOnFailures of them failed their last attempt.
//
// Only mass reissues wait: every rotated certificate, and spec or issuer
// changes once at least minCertificates are pending (or a rollout is under
// way). Renewals, repairs and first issuances never do, and neither does a
// mass reissue whose renewal time has come: it would be renewed now anyway,
// and holding it could let it expire before its wave.
//
// With no rollout it holds nothing and records nothing.
func Waves(d Decisions, in RolloutInput) Rollout {
	out := Rollout{Held: map[string]Hold{}, WaveOf: map[string]string{}}
	if in.Rollout == nil || len(in.Rollout.Spec.Waves) == 0 {
		return out
	}
	spec := &in.Rollout.Spec
	selectors := waveSelectors(spec)
	changes := 0
	for _, c := range d.Certificates {
		if _, changed := massOf(c); changed && !stuck[c.Reason] {
			changes++
		}
	}
	governChanges := changes >= spec.EffectiveMinCertificates() || in.State.Active()

	n := len(spec.Waves)
	members := make([]int, n)
	pending := make([][]string, n)
	releasable := make([][]string, n)
	failing := make([]map[string]bool, n)
	for i := range failing {
		failing[i] = map[string]bool{}
	}
	for _, c := range d.Certificates {
		w := waveOf(c.Desired.Targets, spec.Waves, selectors, in.Clusters)
		members[w]++
		rotated, changed := massOf(c)
		if !rotated && (!changed || !governChanges) || c.Reason == Suspended || c.Reason == PolicyViolation {
			continue
		}
		id := c.Desired.ID
		if in.Failing[id] {
			failing[w][id] = true
		}
		due := !c.DueAt.IsZero() && !in.Now.Before(c.DueAt)
		if stuck[c.Reason] || c.Issue && due {
			continue // waits for a person, or renews now whatever the wave
		}
		out.WaveOf[id] = spec.Waves[w].Name
		pending[w] = append(pending[w], id)
		if c.Issue {
			releasable[w] = append(releasable[w], id)
		}
	}

	soak, _ := spec.Soak.Parse()
	state := maps.Clone(in.State.Waves)
	if state == nil {
		state = map[string]inventory.WaveState{}
	}
	left := 0
	blocked := "" // why the later waves wait ("": they may start)
	for i, w := range spec.Waves {
		slices.Sort(releasable[i])
		wv := Wave{Name: w.Name, Certificates: members[i], Pending: len(pending[i]), Failing: len(failing[i])}
		left += len(pending[i])
		ws, started := state[w.Name]
		hold := func(ids []string, msg string) {
			for _, id := range ids {
				out.Held[id] = Hold{Wave: w.Name, Message: msg}
				wv.Held = append(wv.Held, id)
			}
		}
		switch {
		case blocked != "":
			wv.Status, wv.Message = WaveWaiting, "wave "+w.Name+" "+blocked
			hold(releasable[i], wv.Message)
		case len(pending[i]) == 0 && in.Partial && (!started || ws.FinishedAt == nil):
			wv.Status = WaveRunning
			wv.Message = "wave " + w.Name + " has nothing left in what this pass sees; only a pass over the whole fleet " +
				"(no --path or .certfleetignore, every target observed) can finish it"
			blocked = "starts after " + w.Name + " finishes in a pass over the whole fleet"
		case len(pending[i]) == 0:
			wv.Status = WaveDone
			if !started {
				break // nothing to reissue, nothing to soak
			}
			if ws.FinishedAt == nil {
				at := ws.LastIssuedAt
				ws.FinishedAt = &at
				state[w.Name] = ws
			}
			if until := ws.FinishedAt.Add(soak); in.Now.Before(until) {
				wv.Status, wv.Until = WaveSoaking, &until
				blocked = fmt.Sprintf("starts after %s soaks until %s", w.Name, clock(until, in.Now))
			}
		case len(failing[i]) > spec.PauseOnFailures:
			wv.Status = WavePaused
			wv.Message = fmt.Sprintf("the rollout is paused: %d certificates of wave %s failed their last attempt (pauseOnFailures %d); "+
				"they retry on their backoff, and the wave goes on once no more than %d fail",
				len(failing[i]), w.Name, spec.PauseOnFailures, spec.PauseOnFailures)
			var retry, rest []string
			for _, id := range releasable[i] {
				if failing[i][id] {
					retry = append(retry, id)
				} else {
					rest = append(rest, id)
				}
			}
			wv.Reissue = retry
			hold(rest, wv.Message)
			if len(retry) > 0 {
				ws.LastIssuedAt = in.Now
				state[w.Name] = ws
			}
			blocked = "waits: the rollout is paused at wave " + w.Name
		default:
			wv.Status = WaveRunning
			if !started {
				ws = inventory.WaveState{StartedAt: in.Now}
			}
			most := max(1, int(math.Ceil(spec.EffectiveMaxSharePerPass()*float64(members[i]))))
			goes := releasable[i][:min(most, len(releasable[i]))]
			wv.Reissue = goes
			hold(releasable[i][len(goes):], fmt.Sprintf("wave %s reissues at most %d of its %d certificates per pass (maxSharePerPass %s); this one follows on a later pass",
				w.Name, most, members[i], strconv.FormatFloat(spec.EffectiveMaxSharePerPass(), 'g', -1, 64)))
			if len(goes) > 0 {
				ws.LastIssuedAt = in.Now
			}
			state[w.Name] = ws
			blocked = fmt.Sprintf("starts after %s finishes (%d of its certificates left to reissue)", w.Name, len(pending[i]))
		}
		out.Waves = append(out.Waves, wv)
	}
	if left == 0 && in.Partial {
		out.State = in.State
		return out
	}
	if left == 0 {
		// The rollout is over: no soak is waited for, and the next mass
		// reissue starts again at the first wave.
		for i := range out.Waves {
			out.Waves[i] = Wave{Name: out.Waves[i].Name, Status: WaveDone, Certificates: out.Waves[i].Certificates}
		}
		return out
	}
	out.State = inventory.RolloutState{Waves: state}
	return out
}

// Apply holds the waiting certificates of d: they issue and write nothing
// this pass, and say which wave they wait for. Every mass reissue is
// marked with its wave.
func (r Rollout) Apply(d *Decisions) {
	for i := range d.Certificates {
		c := &d.Certificates[i]
		c.Wave = r.WaveOf[c.Desired.ID]
		h, ok := r.Held[c.Desired.ID]
		if !ok {
			continue
		}
		c.Reason, c.Message, c.Issue, c.Source, c.Record, c.ReuseKey = WaitingForWave, h.Message, false, nil, false, nil
		for j := range c.Targets {
			td := &c.Targets[j]
			if massReasons[td.Reason] {
				td.Reason, td.Message = WaitingForWave, h.Message
			}
			td.Write, td.TakeOver = false, false
		}
	}
}

// FailingIDs names the certificates whose last attempt failed, from the
// inventory: the failures a rollout pauses on.
func FailingIDs(inv map[string]*inventory.Entry) map[string]bool {
	out := map[string]bool{}
	for id, e := range inv {
		if e.Attempts() > 0 || e.PermanentFor() != "" {
			out[id] = true
		}
	}
	return out
}

// massOf reports whether some target of c is to be reissued because its
// authority rotated, or because its spec or issuer changed.
func massOf(c Certificate) (rotated, changed bool) {
	for _, t := range c.Targets {
		switch t.Reason {
		case AuthorityRotated:
			rotated = true
		case IssuerChanged, SpecChanged:
			changed = true
		}
	}
	return rotated, changed
}

// PlannedWaves are the waves a merge's reissues would go out in (plan):
// the certificates of each wave, in wave order, leaving out empty waves.
// None when there is no rollout, or when the merge reissues fewer than its
// minCertificates (those go at once). A rollout under way, which would
// govern even a smaller change, is not known to plan.
func PlannedWaves(reissues []*render.Desired, r *schemas.Rollout, clusters map[string]*schemas.Cluster) []schemas.PlanWave {
	if r == nil || len(r.Spec.Waves) == 0 || len(reissues) == 0 || len(reissues) < r.Spec.EffectiveMinCertificates() {
		return nil
	}
	selectors := waveSelectors(&r.Spec)
	ids := make([][]string, len(r.Spec.Waves))
	for _, d := range reissues {
		w := waveOf(d.Targets, r.Spec.Waves, selectors, clusters)
		ids[w] = append(ids[w], d.ID)
	}
	var out []schemas.PlanWave
	for i, w := range r.Spec.Waves {
		if len(ids[i]) > 0 {
			slices.Sort(ids[i])
			out = append(out, schemas.PlanWave{Name: w.Name, Certificates: ids[i]})
		}
	}
	return out
}

// waveSelectors are the waves' cluster selectors, nil for a wave without one.
func waveSelectors(spec *schemas.RolloutSpec) []labels.Selector {
	out := make([]labels.Selector, len(spec.Waves))
	for i, w := range spec.Waves {
		if w.ClusterSelector != nil {
			out[i] = labels.SelectorFromSet(w.ClusterSelector.MatchLabels)
		}
	}
	return out
}

// waveOf is the index of the wave a certificate with targets ts belongs
// to: the latest of its targets'.
func waveOf(ts []render.Target, waves []schemas.RolloutWave, selectors []labels.Selector, clusters map[string]*schemas.Cluster) int {
	last := len(waves) - 1
	w := -1
	for _, t := range ts {
		i := last
		if cl := clusters[t.Cluster]; t.Kind == render.Kubernetes && cl != nil {
			for j, s := range selectors {
				if s == nil || s.Matches(labels.Set(cl.Metadata.Labels)) {
					i = j
					break
				}
			}
		}
		w = max(w, i)
	}
	if w < 0 {
		return last
	}
	return w
}

// clock writes a time people read at a glance: the time of day when it is
// within a day of now, else the date too.
func clock(t, now time.Time) string {
	if t.Sub(now) < 24*time.Hour {
		return t.UTC().Format("15:04 UTC")
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
