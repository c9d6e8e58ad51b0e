package reconcile

import (
	"context"
	"maps"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// observed is what the observe step saw.
type observed struct {
	byKey        map[string]*target.Observed
	unobservable map[string]error
	// clusters are those listed (or that failed to list).
	clusters map[string]bool
}

// observe reads every target the desired certificates and the inventory
// name: each cluster with one LIST of its TLS Secrets, each Vault KV path
// and directory once. Failures are recorded per cluster or target, so one
// unreachable cluster does not stop the others.
func (p *Pass) observe(ctx context.Context, desired []*render.Desired, inv map[string]*inventory.Entry, inScope func(string) bool) observed {
	res := observed{byKey: map[string]*target.Observed{}, unobservable: map[string]error{}, clusters: map[string]bool{}}
	p.observeMore(ctx, desired, inv, inScope, &res)
	return res
}

// observeMore observes what the desired certificates and the inventory
// name that res has not covered yet.
func (p *Pass) observeMore(ctx context.Context, desired []*render.Desired, inv map[string]*inventory.Entry, inScope func(string) bool, res *observed) {
	var all []render.Target
	for _, d := range desired {
		all = append(all, d.Targets...)
	}
	for _, e := range inv {
		if !inScope(e.File) {
			continue // another scope's certificate: this pass neither judges nor prunes it
		}
		for _, t := range e.Targets {
			all = append(all, render.Target{Address: t})
		}
	}
	clusters := map[string]bool{}
	seen := map[string]bool{}
	var singles []render.Target
	for _, t := range all {
		if t.Kind == render.Kubernetes {
			if !res.clusters[t.Cluster] {
				clusters[t.Cluster] = true
			}
			continue
		}
		_, done := res.byKey[t.Key]
		_, failed := res.unobservable[t.Key]
		if !seen[t.Key] && !done && !failed {
			seen[t.Key] = true
			singles = append(singles, t)
		}
	}
	var mu sync.Mutex
	g := new(errgroup.Group)
	g.SetLimit(p.concurrency())
	for _, c := range slices.Sorted(maps.Keys(clusters)) {
		res.clusters[c] = true
		g.Go(func() error {
			got, err := p.Kube.ObserveCluster(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.unobservable["kubernetes/"+c+"/"] = err
				return nil // one unreachable cluster never stops the others
			}
			for k, o := range got {
				res.byKey[k] = o
			}
			return nil
		})
	}
	for _, t := range singles {
		g.Go(func() error {
			var o *target.Observed
			var err error
			switch t.Kind {
			case render.VaultKV:
				o, err = p.Vault.Observe(ctx, t)
			case render.Directory:
				o, err = p.Dir.Observe(t)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.unobservable[t.Key] = err
				return nil
			}
			res.byKey[t.Key] = o
			return nil
		})
	}
	_ = g.Wait() // failures are recorded per cluster or target
}
