package reconcile

import (
	"context"
	"sort"
	"sync"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// observed is what the observe step saw.
type observed struct {
	byKey        map[string]*target.Observed
	unobservable map[string]error
}

// observe reads every target the desired certificates and the inventory
// name: each cluster with one LIST of its TLS Secrets, each Vault KV path
// and directory once. Failures are recorded per cluster or target, so one
// unreachable cluster does not stop the others.
func (p *Pass) observe(ctx context.Context, desired []*render.Desired, inv map[string]*inventory.Entry, inScope func(string) bool) observed {
	var all []render.Target
	for _, d := range desired {
		all = append(all, d.Targets...)
	}
	for _, e := range inv {
		if !inScope(e.File) {
			continue // another scope's certificate: this pass neither judges nor prunes it
		}
		for _, t := range e.Targets {
			all = append(all, decide.FromInventory(t))
		}
	}
	clusters := map[string]bool{}
	seen := map[string]bool{}
	var singles []render.Target
	for _, t := range all {
		if t.Kind == render.Kubernetes {
			clusters[t.Cluster] = true
			continue
		}
		if !seen[t.Key] {
			seen[t.Key] = true
			singles = append(singles, t)
		}
	}
	res := observed{byKey: map[string]*target.Observed{}, unobservable: map[string]error{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, p.concurrency())
	names := make([]string, 0, len(clusters))
	for c := range clusters {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			got, err := p.Kube.ObserveCluster(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.unobservable["kubernetes/"+c+"/"] = err
				return
			}
			for k, o := range got {
				res.byKey[k] = o
			}
		}()
	}
	for _, t := range singles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
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
				return
			}
			res.byKey[t.Key] = o
		}()
	}
	wg.Wait()
	return res
}
