package serve

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/certfleet/certfleet/schemas"
)

// Elector runs the daemon only while this replica holds the Lease: two
// replicas never act at once, and one that loses the lease stops at once.
type Elector struct {
	d        *Daemon
	identity string
	leading  atomic.Bool
	started  atomic.Bool

	// client-go starts OnStartedLeading in a goroutine of its own and
	// returns without waiting for it; Run waits on running so the process
	// does not exit under a pass. done (under mu) refuses a late start.
	mu      sync.Mutex
	done    bool
	running sync.WaitGroup
	// term is held by the pass loop of one leadership term at a time.
	term sync.Mutex
}

// NewElector prepares leader election for d; identity names this replica.
func NewElector(d *Daemon, identity string) *Elector {
	return &Elector{d: d, identity: identity}
}

// Standby reports whether the replica is waiting for the lease.
func (e *Elector) Standby() bool { return e.started.Load() && !e.leading.Load() }

// Leading reports whether the replica holds the lease.
func (e *Elector) Leading() bool { return e.leading.Load() }

func (e *Elector) client() (kubernetes.Interface, error) { return LeaseClient(e.d.cfg) }

// LeaseClient reaches the cluster holding the Leases (leaderElection.kubeconfigContext of kubeconfig, else in-cluster).
func LeaseClient(c *schemas.ServeConfig) (kubernetes.Interface, error) {
	le := c.LeaderElection
	var cfg *rest.Config
	var err error
	if le.KubeconfigContext == "" {
		if cfg, err = rest.InClusterConfig(); err == nil {
			return kubernetes.NewForConfig(cfg)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: le.KubeconfigContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

// Run campaigns for the lease until ctx is done; while leading it runs
// the daemon with a context that ends the moment the lease is lost. It
// returns once the daemon's pass in flight, if any, has returned.
func (e *Elector) Run(ctx context.Context) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	// The lease is held while a pass in flight uses its grace after ctx
	// ends (SIGTERM), as without election, and released only then: a
	// released lease lets another replica act at once.
	leCtx, stopLeading := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLeading()
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-quit: // Run failed
		}
		e.mu.Lock()
		e.done = true // no new term starts
		e.mu.Unlock()
		e.running.Wait()
		stopLeading()
	}()
	defer func() { close(quit); <-stopped }()
	le := e.d.cfg.LeaderElection
	ns, name := le.Namespace, le.Name
	if ns == "" {
		ns = DefaultLeaseNamespace
	}
	name = LeaseName(name, e.d.cfg.Shard) // each shard elects its leader on a Lease of its own
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: name},
		Client:     c.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.identity},
	}
	e.started.Store(true)
	for leCtx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			ReleaseOnCancel: true,
			LeaseDuration:   durationOr(le.LeaseDuration, DefaultLeaseDuration),
			RenewDeadline:   durationOr(le.RenewDeadline, 10*time.Second),
			RetryPeriod:     durationOr(le.RetryPeriod, 2*time.Second),
			Name:            name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(leadCtx context.Context) {
					e.mu.Lock()
					if e.done {
						e.mu.Unlock()
						return
					}
					e.running.Add(1)
					e.mu.Unlock()
					defer e.running.Done()
					// client-go runs this in a goroutine of its own and
					// returns from Run without waiting for it, so the loop
					// above may campaign, win and start another term while
					// this one is still stopping: the terms take turns, so
					// two pass loops never share the inventory, counters and
					// render cache.
					e.term.Lock()
					defer e.term.Unlock()
					if leadCtx.Err() != nil {
						return // lost before it began
					}
					// A standby reports no fleet: the leader does. Stale series
					// from this term's last pass would double (or contradict) the leader's.
					defer e.d.standby()
					e.leading.Store(true)
					e.d.log.Info("leading", "lease", ns+"/"+name, "identity", e.identity)
					// A lost lease stops the pass in flight at once; ctx's
					// end (SIGTERM) gives it the grace, holding the lease.
					runCtx, cancel := context.WithCancel(leadCtx)
					defer cancel()
					defer context.AfterFunc(ctx, cancel)()
					_ = e.d.run(runCtx, leadCtx, e.d.Grace)
				},
				OnStoppedLeading: func() {
					e.leading.Store(false)
					e.d.log.Info("stopped leading", "lease", ns+"/"+name, "identity", e.identity)
				},
			},
		})
		if err != nil {
			return err
		}
		elector.Run(leCtx) // returns when leadership is lost or leCtx ends; campaign again
	}
	return nil
}

// Identity is this replica's name in the lease: the pod's name where it runs in a cluster.
func Identity() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}
