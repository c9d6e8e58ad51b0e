package reconcile

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// observeWorkloads reads the workload of every desired Kubernetes target
// that names one (restart:) and holds a certificate, by target key, for
// decide: which serials it was restarted for. One GET per such target and
// pass; a workload that cannot be read (missing, forbidden) is a failure of
// that target, reported, and is never restarted blind for NotServed.
func (p *Pass) observeWorkloads(ctx context.Context, desired []*render.Desired, obs observed) (map[string]*target.Workload, inventory.Failures) {
	out := map[string]*target.Workload{}
	var failures inventory.Failures
	var mu sync.Mutex
	g := new(errgroup.Group)
	g.SetLimit(probeConcurrency)
	for _, d := range desired {
		for _, t := range d.Targets {
			o := obs.byKey[t.Key]
			if t.Restart == nil || t.Kind != render.Kubernetes || o == nil || !o.Exists || p.Kube == nil {
				continue
			}
			if _, blind := obs.unobservable["kubernetes/"+t.Cluster+"/"]; blind {
				continue
			}
			g.Go(func() error {
				w, err := p.Kube.ObserveWorkload(ctx, t.Cluster, t.Namespace, *t.Restart)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, inventory.Failed(d.ID+" → "+t.Key, err))
					return nil
				}
				out[t.Key] = w
				return nil
			})
		}
	}
	_ = g.Wait() // each workload's error is its own
	return out, failures
}

// restarted is what restarting one target's workload did.
type restarted struct {
	workload string
	serial   string
	err      error
}

// restartWorkloads carries out decide's restarts: a written target's once
// its write succeeded, for the serial written; a NotServed target's now.
// Each has an audit line (restart, or restart-failed) naming the workload
// and the serial; a failure is that target's, and never undoes the delivery.
func (p *Pass) restartWorkloads(ctx context.Context, dec decide.Decisions, outcomes []*outcome, workloads map[string]*target.Workload) map[string]restarted {
	out := map[string]restarted{}
	now := p.now()
	for i, c := range dec.Certificates {
		var o *outcome
		if outcomes != nil {
			o = outcomes[i]
		}
		for _, td := range c.Targets {
			if td.Restart == nil || ctx.Err() != nil {
				continue
			}
			serial := td.Restart.Serial
			if td.Write {
				if o == nil || o.err != nil || o.written.err(td.Target.Key) != nil {
					continue // nothing new delivered: nothing to restart for
				}
				serial = o.serial
			}
			t := td.Target
			r := restarted{workload: workloadName(t), serial: serial}
			var before []string
			if w := workloads[t.Key]; w != nil {
				before = w.RestartedFor
			}
			r.err = p.Kube.Restart(ctx, t.Cluster, t.Namespace, *t.Restart, serial, before, now)
			ev := inventory.Event{Time: now, Action: "restart", Certificate: c.Desired.ID, Target: t.Key, Reason: string(td.Reason),
				Serial: serial, Workload: r.workload, Actor: p.Actor}
			if r.err != nil {
				ev.Action, ev.Error = "restart-failed", r.err.Error()
			}
			if err := p.Audit.Log(ev); err != nil && r.err == nil {
				r.err = fmt.Errorf("writing the audit log: %w", err)
			}
			out[t.Key] = r
		}
	}
	return out
}

// workloadName is how a target's workload is written in reports and the
// audit log: Kind namespace/name (the cluster is the target's).
func workloadName(t *render.Target) string {
	return fmt.Sprintf("%s %s/%s", t.Restart.Kind, t.Namespace, t.Restart.Name)
}

// addRestarts puts the restarts in the report: done (or, in a dry run,
// decided) on each target's item, failures among the pass's failures.
func (r *Result) addRestarts(dec decide.Decisions, done map[string]restarted) {
	planned := map[string]string{}
	for _, c := range dec.Certificates {
		for _, td := range c.Targets {
			if td.Restart == nil {
				continue
			}
			if done == nil {
				planned[td.Target.Key] = workloadName(td.Target)
				continue
			}
			if rs, ok := done[td.Target.Key]; ok {
				if rs.err != nil {
					r.Failures = append(r.Failures, inventory.Failed(c.Desired.ID+" → "+td.Target.Key, rs.err))
					continue
				}
				planned[td.Target.Key] = rs.workload
				r.Restarted++
			}
		}
	}
	for i := range r.Items {
		if w, ok := planned[r.Items[i].Target]; ok && r.Items[i].Certificate != "" {
			r.Items[i].Restart = w
		}
	}
	if done == nil {
		r.Restarted = len(planned)
	}
}
