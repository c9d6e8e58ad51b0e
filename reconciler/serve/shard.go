package serve

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// WithShard makes cfg shard name's (the --shard flag, over shard: in
// certfleet.yaml) and checks the sharding again.
func WithShard(cfg *schemas.ServeConfig, name string) error {
	if problems := Sharding(cfg).Check(name); len(problems) > 0 {
		return fmt.Errorf("--shard %s: %s", name, strings.Join(problems, "; "))
	}
	cfg.Shard = name
	return nil
}

// LeaseName is the Lease a shard's replicas elect their leader on: base
// for the unsharded process, base-<shard> for a shard.
func LeaseName(base, shardName string) string {
	if base == "" {
		base = DefaultLeaseName
	}
	if shardName == "" {
		return base
	}
	return base + "-" + shardName
}

// leaseNamespace is the namespace of the Leases.
func leaseNamespace(cfg *schemas.ServeConfig) string {
	if cfg.LeaderElection.Namespace != "" {
		return cfg.LeaderElection.Namespace
	}
	return DefaultLeaseNamespace
}

// sharding is what a pass of this daemon needs to act as its shard (nil
// when the fleet is not sharded). A shard's liveness is its Lease: alive
// while renewed within twice the lease duration. Without leader election
// there is no such signal, and no shard's certificates are ever taken
// over from it (a removed shard's certificates wait; see README "Shards").
func (d *Daemon) sharding(ctx context.Context) *reconcile.Sharding {
	cfg := Sharding(d.cfg)
	if len(cfg.Shards) == 0 {
		return nil
	}
	s := &reconcile.Sharding{Name: d.cfg.Shard, Config: cfg}
	if !d.cfg.LeaderElection.Enabled {
		return s
	}
	if d.leases == nil {
		c, err := LeaseClient(d.cfg)
		if err != nil {
			d.log.Warn("cannot read the shards' leases: no certificate of a gone shard is taken over", "err", err)
			return s
		}
		d.leases = c
	}
	window := 2 * durationOr(d.cfg.LeaderElection.LeaseDuration, DefaultLeaseDuration)
	known := map[string]bool{}
	s.Alive = func(name string) bool {
		if v, ok := known[name]; ok {
			return v
		}
		v := leaseAlive(ctx, d.leases, leaseNamespace(d.cfg), LeaseName(d.cfg.LeaderElection.Name, name), window, d.Now())
		known[name] = v
		return v
	}
	return s
}

// leaseAlive reports whether a Lease was renewed within window of now. A
// Lease that cannot be read (the API server is down) counts as alive:
// taking over is only ever done on the evidence that the owner is gone.
func leaseAlive(ctx context.Context, c kubernetes.Interface, ns, name string, window time.Duration, now time.Time) bool {
	l, err := c.CoordinationV1().Leases(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false
	case err != nil:
		return true
	}
	renewed := l.CreationTimestamp.Time
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.Time
	}
	return now.Sub(renewed) < window
}

// afterShardPass keeps what a sharded pass says for /report, and drops the
// daemon's copy of the inventory while a certificate waits for another
// shard to release it: the release is only seen in a fresh read.
func (d *Daemon) afterShardPass(rep *reconcile.Result) {
	if rep.Shard == nil {
		return
	}
	if len(rep.Shard.Waiting)+len(rep.Shard.Claimed) > 0 {
		d.inventory = nil
	}
	d.mu.Lock()
	d.status.Sharding = rep.Shard
	d.mu.Unlock()
}

// handOffNext brings the next pass forward to retryBackoff from now while
// a certificate waits for its owner's release, or a new one was claimed,
// so a hand-off or a first issuance takes a pass or two, not an interval.
func (d *Daemon) handOffNext(rep *reconcile.Result, now, next time.Time) time.Time {
	if rep.Shard == nil || len(rep.Shard.Waiting)+len(rep.Shard.Claimed) == 0 {
		return next
	}
	if soon := now.Add(durationOr(d.cfg.RetryBackoff, DefaultRetryBackoff)); soon.Before(next) {
		return soon
	}
	return next
}

// newRenderer is the daemon's renderer: a shard's holds only its share of
// each revision (its cache and its last good revision too), the others'
// certificates by ID and shard.
func newRenderer(cfg *schemas.ServeConfig) *render.Renderer {
	sh := &reconcile.Sharding{Name: cfg.Shard, Config: Sharding(cfg)}
	return render.NewRenderer(render.WithOutputDir(cfg.OutputDir), render.WithKeep(sh.Keep()))
}

// shardLabel is the value of the shard label of the metrics.
func shardLabel(cfg *schemas.ServeConfig) string { return cfg.Shard }
