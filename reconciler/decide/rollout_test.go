package decide_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

var waveNow = time.Date(2030, 1, 1, 14, 0, 0, 0, time.UTC)

// twoWaves is the rollout of the README: staging first, then the rest.
func twoWaves(change func(*schemas.RolloutSpec)) *schemas.Rollout {
	r := &schemas.Rollout{Metadata: schemas.ObjectMeta{Name: "fleet"}, Spec: schemas.RolloutSpec{
		Waves: []schemas.RolloutWave{
			{Name: "staging", ClusterSelector: &schemas.LabelSelector{MatchLabels: map[string]string{"env": "staging"}}},
			{Name: "production"},
		},
		Soak: "1h",
	}}
	if change != nil {
		change(&r.Spec)
	}
	return r
}

var waveClusters = map[string]*schemas.Cluster{
	"stage-1": {Metadata: schemas.ObjectMeta{Name: "stage-1", Labels: map[string]string{"env": "staging"}}},
	"prod-1":  {Metadata: schemas.ObjectMeta{Name: "prod-1", Labels: map[string]string{"env": "production"}}},
	"prod-2":  {Metadata: schemas.ObjectMeta{Name: "prod-2", Labels: map[string]string{"env": "production"}}},
}

// waveCert is a decision for certificate id, delivered to a Secret in
// each cluster named, in state reason, due for renewal in 30 days.
func waveCert(id string, reason decide.Reason, clusters ...string) decide.Certificate {
	d := &render.Desired{ID: id}
	c := decide.Certificate{Desired: d, Reason: reason, DueAt: waveNow.Add(30 * 24 * time.Hour)}
	c.Issue = reason != decide.InSync && reason != decide.BackingOff && reason != decide.PermanentFailure
	for _, cl := range clusters {
		t := render.Target{Address: render.KubernetesAddress(cl, "app", id)}
		if cl == "" {
			t = render.Target{Address: render.Address{Key: "directory/" + id, Kind: render.Directory, Path: id}}
		}
		d.Targets = append(d.Targets, t)
		tr := reason
		if reason == decide.BackingOff || reason == decide.PermanentFailure {
			tr = decide.AuthorityRotated // the target's own reason stays under the certificate-wide one
		}
		c.Targets = append(c.Targets, decide.Target{Target: &t, Reason: tr, Write: c.Issue})
	}
	return c
}

func due(c decide.Certificate, at time.Time) decide.Certificate { c.DueAt = at; return c }

func started(waves ...string) inventory.RolloutState {
	st := inventory.RolloutState{Waves: map[string]inventory.WaveState{}}
	for _, w := range waves {
		st.Waves[w] = inventory.WaveState{StartedAt: waveNow.Add(-2 * time.Hour), LastIssuedAt: waveNow.Add(-10 * time.Minute)}
	}
	return st
}

func finished(waves ...string) inventory.RolloutState {
	st := started(waves...)
	for n, w := range st.Waves {
		w.FinishedAt = &w.LastIssuedAt
		st.Waves[n] = w
	}
	return st
}

func TestWaves(t *testing.T) {
	rotated := func(id string, clusters ...string) decide.Certificate {
		return waveCert(id, decide.AuthorityRotated, clusters...)
	}
	tests := []struct {
		name    string
		rollout *schemas.Rollout
		certs   []decide.Certificate
		state   inventory.RolloutState
		failing []string
		// issued are the certificates that issue this pass; held the
		// ones waiting, with a part of their message.
		issued []string
		held   map[string]string
		// status is each wave's, in order; active whether a rollout is
		// still recorded after the pass.
		status  []decide.WaveStatus
		active  bool
		partial bool
	}{
		{name: "without a rollout every reissue goes at once, as before",
			certs:  []decide.Certificate{rotated("a", "stage-1"), rotated("b", "prod-1")},
			issued: []string{"a", "b"}},
		{name: "a rotation starts with the first wave only", rollout: twoWaves(nil),
			certs:  []decide.Certificate{rotated("a", "stage-1"), rotated("b", "prod-1"), rotated("c", "prod-2")},
			issued: []string{"a"}, held: map[string]string{"b": "wave production starts after staging finishes (1 of its certificates left to reissue)", "c": "wave production"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a running wave reissues at most its share per pass", rollout: twoWaves(func(s *schemas.RolloutSpec) { s.MaxSharePerPass = 0.5 }),
			certs:  []decide.Certificate{rotated("a", "stage-1"), rotated("b", "stage-1"), rotated("c", "stage-1"), rotated("d", "stage-1"), rotated("e", "prod-1")},
			issued: []string{"a", "b"},
			held:   map[string]string{"c": "at most 2 of its 4 certificates per pass", "d": "maxSharePerPass 0.5", "e": "after staging finishes (4 of"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "the next wave waits while the one before soaks", rollout: twoWaves(nil), state: started("staging"),
			certs:  []decide.Certificate{waveCert("a", decide.InSync, "stage-1"), rotated("b", "prod-1")},
			held:   map[string]string{"b": "wave production starts after staging soaks until 14:50 UTC"},
			status: []decide.WaveStatus{decide.WaveSoaking, decide.WaveWaiting}, active: true},
		{name: "the next wave starts once the soak has passed", rollout: twoWaves(func(s *schemas.RolloutSpec) { s.Soak = "5m" }), state: started("staging"),
			certs:  []decide.Certificate{waveCert("a", decide.InSync, "stage-1"), rotated("b", "prod-1")},
			issued: []string{"b"}, status: []decide.WaveStatus{decide.WaveDone, decide.WaveRunning}, active: true},
		{name: "a wave with nothing to reissue is skipped without a soak", rollout: twoWaves(nil),
			certs:  []decide.Certificate{waveCert("a", decide.InSync, "stage-1"), rotated("b", "prod-1")},
			issued: []string{"b"}, status: []decide.WaveStatus{decide.WaveDone, decide.WaveRunning}, active: true},
		{name: "failures past the threshold pause the rollout; the failed ones retry", rollout: twoWaves(func(s *schemas.RolloutSpec) { s.PauseOnFailures = 1 }),
			state: started("staging"), failing: []string{"a", "b"},
			certs:  []decide.Certificate{rotated("a", "stage-1"), waveCert("b", decide.BackingOff, "stage-1"), rotated("c", "stage-1"), rotated("d", "prod-1")},
			issued: []string{"a"},
			held: map[string]string{"c": "the rollout is paused: 2 certificates of wave staging failed their last attempt (pauseOnFailures 1)",
				"d": "wave production waits: the rollout is paused at wave staging"},
			status: []decide.WaveStatus{decide.WavePaused, decide.WaveWaiting}, active: true},
		{name: "failures up to the threshold do not pause it", rollout: twoWaves(func(s *schemas.RolloutSpec) { s.PauseOnFailures = 1 }),
			state: started("staging"), failing: []string{"a"},
			certs:  []decide.Certificate{rotated("a", "stage-1"), rotated("c", "stage-1"), rotated("d", "prod-1")},
			issued: []string{"a", "c"}, held: map[string]string{"d": "after staging finishes"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a permanent failure counts as a failure but does not hold the wave open", rollout: twoWaves(func(s *schemas.RolloutSpec) { s.PauseOnFailures = 1; s.Soak = "" }),
			state: started("staging"), failing: []string{"a"},
			certs:  []decide.Certificate{waveCert("a", decide.PermanentFailure, "stage-1"), rotated("d", "prod-1")},
			issued: []string{"d"}, status: []decide.WaveStatus{decide.WaveDone, decide.WaveRunning}, active: true},
		{name: "an ordinary renewal in a waiting wave is not held", rollout: twoWaves(nil),
			certs:  []decide.Certificate{rotated("a", "stage-1"), waveCert("b", decide.Expiring, "prod-1"), waveCert("c", decide.Missing, "prod-1")},
			issued: []string{"a", "b", "c"}, status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a rotated certificate due for renewal goes before its wave, so it never expires waiting", rollout: twoWaves(nil),
			certs:  []decide.Certificate{rotated("a", "stage-1"), due(rotated("b", "prod-1"), waveNow.Add(-time.Minute)), rotated("c", "prod-1")},
			issued: []string{"a", "b"}, held: map[string]string{"c": "after staging finishes"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a spec change touching fewer than minCertificates is not held", rollout: twoWaves(nil),
			certs:  []decide.Certificate{waveCert("a", decide.SpecChanged, "stage-1"), waveCert("b", decide.IssuerChanged, "prod-1")},
			issued: []string{"a", "b"}, status: []decide.WaveStatus{decide.WaveDone, decide.WaveDone}},
		{name: "a spec change touching minCertificates goes in waves", rollout: twoWaves(func(s *schemas.RolloutSpec) { s.MinCertificates = 2 }),
			certs:  []decide.Certificate{waveCert("a", decide.SpecChanged, "stage-1"), waveCert("b", decide.IssuerChanged, "prod-1")},
			issued: []string{"a"}, held: map[string]string{"b": "wave production starts after staging"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "while a rollout is under way every spec change follows the waves", rollout: twoWaves(nil), state: started("staging"),
			certs:  []decide.Certificate{waveCert("a", decide.SpecChanged, "stage-1"), waveCert("b", decide.SpecChanged, "prod-1")},
			issued: []string{"a"}, held: map[string]string{"b": "after staging finishes"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a certificate in staging and production clusters goes with production", rollout: twoWaves(nil),
			certs:  []decide.Certificate{rotated("a", "stage-1"), rotated("b", "stage-1", "prod-1")},
			issued: []string{"a"}, held: map[string]string{"b": "wave production"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a directory target falls in the last wave", rollout: twoWaves(nil),
			certs:  []decide.Certificate{rotated("a", "stage-1"), rotated("b", "")},
			issued: []string{"a"}, held: map[string]string{"b": "wave production"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a pass that does not see the whole fleet does not finish a wave", rollout: twoWaves(nil), state: started("staging"), partial: true,
			certs:  []decide.Certificate{waveCert("a", decide.InSync, "stage-1"), rotated("b", "prod-1")},
			held:   map[string]string{"b": "wave production starts after staging finishes in a pass over the whole fleet"},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "a pass that does not see the whole fleet follows a wave finished before", rollout: twoWaves(func(s *schemas.RolloutSpec) { s.Soak = "" }),
			state: finished("staging"), partial: true,
			certs:  []decide.Certificate{waveCert("a", decide.InSync, "stage-1"), rotated("b", "prod-1")},
			issued: []string{"b"}, status: []decide.WaveStatus{decide.WaveDone, decide.WaveRunning}, active: true},
		{name: "a pass that does not see the whole fleet does not end the rollout", rollout: twoWaves(nil), state: started("staging"), partial: true,
			certs:  []decide.Certificate{waveCert("a", decide.InSync, "stage-1")},
			status: []decide.WaveStatus{decide.WaveRunning, decide.WaveWaiting}, active: true},
		{name: "the rollout ends when no wave has anything left", rollout: twoWaves(nil), state: started("staging", "production"),
			certs:  []decide.Certificate{waveCert("a", decide.InSync, "stage-1"), waveCert("b", decide.InSync, "prod-1")},
			status: []decide.WaveStatus{decide.WaveDone, decide.WaveDone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failing := map[string]bool{}
			for _, id := range tt.failing {
				failing[id] = true
			}
			dec := decide.Decisions{Certificates: slices.Clone(tt.certs)}
			r := decide.Waves(dec, decide.RolloutInput{Rollout: tt.rollout, Clusters: waveClusters, State: tt.state, Failing: failing, Now: waveNow, Partial: tt.partial})
			r.Apply(&dec)
			var issued []string
			held := map[string]string{}
			for _, c := range dec.Certificates {
				if c.Issue {
					issued = append(issued, c.Desired.ID)
				}
				if c.Reason == decide.WaitingForWave {
					held[c.Desired.ID] = c.Message
					for _, td := range c.Targets {
						if td.Write || td.Reason != decide.WaitingForWave {
							t.Errorf("%s: a held certificate's target is %s, write %v", c.Desired.ID, td.Reason, td.Write)
						}
					}
				}
			}
			if !slices.Equal(issued, tt.issued) {
				t.Errorf("issued %v, want %v", issued, tt.issued)
			}
			if len(held) != len(tt.held) {
				t.Errorf("held %v, want %v", held, tt.held)
			}
			for id, part := range tt.held {
				if !strings.Contains(held[id], part) {
					t.Errorf("%s is held with %q, want …%s…", id, held[id], part)
				}
			}
			var status []decide.WaveStatus
			for _, w := range r.Waves {
				status = append(status, w.Status)
			}
			if !slices.Equal(status, tt.status) {
				t.Errorf("waves %v, want %v", status, tt.status)
			}
			if r.State.Active() != tt.active {
				t.Errorf("the rollout is recorded as under way: %v, want %v (%+v)", r.State.Active(), tt.active, r.State)
			}
		})
	}
}

// TestWavesRecordWhenAWaveFinished: the soak runs from the wave's last
// reissue, not from the pass that noticed it was done, and a restarted
// process reading the state back goes on where it stopped.
func TestWavesRecordWhenAWaveFinished(t *testing.T) {
	in := decide.RolloutInput{Rollout: twoWaves(nil), Clusters: waveClusters, Now: waveNow}
	first := decide.Waves(decide.Decisions{Certificates: []decide.Certificate{
		waveCert("a", decide.AuthorityRotated, "stage-1"), waveCert("b", decide.AuthorityRotated, "prod-1")}}, in)
	st := first.State.Waves["staging"]
	if !st.StartedAt.Equal(waveNow) || !st.LastIssuedAt.Equal(waveNow) || st.FinishedAt != nil {
		t.Fatalf("after the first pass staging is %+v, want started and last issued at %s", st, waveNow)
	}
	in.State, in.Now = first.State, waveNow.Add(7*time.Minute)
	second := decide.Waves(decide.Decisions{Certificates: []decide.Certificate{
		waveCert("a", decide.InSync, "stage-1"), waveCert("b", decide.AuthorityRotated, "prod-1")}}, in)
	st = second.State.Waves["staging"]
	if st.FinishedAt == nil || !st.FinishedAt.Equal(waveNow) {
		t.Fatalf("staging finished at %v, want %s (its last reissue)", st.FinishedAt, waveNow)
	}
	if w := second.Waves[0]; w.Until == nil || !w.Until.Equal(waveNow.Add(time.Hour)) {
		t.Errorf("staging soaks until %v, want %s", w.Until, waveNow.Add(time.Hour))
	}
	if h := second.Held["b"]; h.Wave != "production" || h.Message != "wave production starts after staging soaks until 15:00 UTC" {
		t.Errorf("b is held as %+v", h)
	}
	if len(second.Waves[1].Held) != 1 || second.Waves[1].Pending != 1 {
		t.Errorf("production: %+v, want b pending and held", second.Waves[1])
	}
}
