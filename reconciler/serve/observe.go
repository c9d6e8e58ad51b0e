package serve

import "github.com/certfleet/certfleet/reconciler/target"

// The daemon observes its clusters through informers (target.Watches): a
// pass reads each cluster's TLS Secrets from a store the watch keeps
// current, instead of LISTing them all, so a no-op pass costs what changed.
// The informers live while the daemon leads: a new leader starts its own,
// listing afresh, and what the last pass no longer observes (a cluster
// gone from the catalog) is stopped after it.

// watchesForPass returns the daemon's informers, started lazily.
func (d *Daemon) watchesForPass() *target.Watches {
	if d.watches == nil {
		d.watches = target.NewWatches(d.log)
	}
	return d.watches
}

// afterPass stops the informers of clusters the pass did not observe.
func (d *Daemon) afterPass() {
	if d.watches != nil {
		d.watches.Sweep()
	}
}

// stopWatches ends every informer (the lease is lost, or the daemon stops).
func (d *Daemon) stopWatches() {
	if d.watches != nil {
		d.watches.Stop()
		d.watches = nil
	}
}
