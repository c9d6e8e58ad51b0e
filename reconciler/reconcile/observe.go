package reconcile

import (
	"context"
	"maps"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/internal/intern"
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
	// strs shares the metadata values that repeat across the directory
	// observations, for as long as the pass holds them.
	strs *intern.Strings
}

// observe reads every target the desired certificates and the inventory
// name: each cluster with one LIST of its TLS Secrets, each Vault KV path
// and directory once. Failures are recorded per cluster or target, so one
// unreachable cluster does not stop the others.
func (p *Pass) observe(ctx context.Context, desired []*render.Desired, inv map[string]*inventory.Entry, inScope func(string) bool) observed {
	res := observed{byKey: map[string]*target.Observed{}, unobservable: map[string]error{}, clusters: map[string]bool{}, strs: new(intern.Strings)}
	p.observeMore(ctx, desired, inv, inScope, &res)
	return res
}

// observeMore observes what the desired certificates and the inventory
// name that res has not covered yet.
func (p *Pass) observeMore(ctx context.Context, desired []*render.Desired, inv map[string]*inventory.Entry, inScope func(string) bool, res *observed) {
	// Each target is observed as it is come to, not gathered into a list
	// first: a list of every target is a copy of each (~200 bytes), held
	// while all the observations are made — at 100,000 certificates tens
	// of megabytes at the pass's peak. f gets the desired target itself
	// (an observation points at it rather than holding a copy), nil for a
	// target only the inventory names.
	each := func(f func(a *render.Address, desired *render.Target)) {
		for _, d := range desired {
			for i := range d.Targets {
				f(&d.Targets[i].Address, &d.Targets[i])
			}
		}
		for _, e := range inv {
			if !inScope(e.File) {
				continue // another scope's certificate: this pass neither judges nor prunes it
			}
			for i := range e.Targets {
				f(&e.Targets[i], nil)
			}
		}
	}
	clusters := map[string]bool{}
	each(func(t *render.Address, _ *render.Target) {
		if t.Kind == render.Kubernetes && !res.clusters[t.Cluster] {
			clusters[t.Cluster] = true
		}
	})
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
	each(func(a *render.Address, t *render.Target) {
		if a.Kind == render.Kubernetes {
			return
		}
		mu.Lock()
		_, done := res.byKey[a.Key]
		_, failed := res.unobservable[a.Key]
		if !done && !failed {
			// Taken: a nil observation until this one is done (no map of
			// keys seen beside byKey, which holds every key anyway).
			res.byKey[a.Key] = nil
		}
		mu.Unlock()
		if done || failed {
			return
		}
		if t == nil {
			t = &render.Target{Address: *a}
		}
		g.Go(func() error {
			var o *target.Observed
			var err error
			switch t.Kind {
			case render.VaultKV:
				o, err = p.Vault.Observe(ctx, t)
			case render.Directory:
				o, err = p.Dir.ObserveSharing(t, res.strs)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				delete(res.byKey, t.Key)
				res.unobservable[t.Key] = err
				return nil
			}
			res.byKey[t.Key] = o
			return nil
		})
	})
	_ = g.Wait() // failures are recorded per cluster or target
}
