package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// Daemon runs passes on a schedule and on pushes.
type Daemon struct {
	cfg      *schemas.ServeConfig
	backend  backend.Backend
	conn     *cluster.Connector
	srcOpts  source.Options
	audit    *inventory.Audit
	renderer *render.Renderer
	metrics  *Metrics
	log      *slog.Logger
	// Actor names this replica in the audit log.
	Actor string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Grace is how long a pass in flight may go on after the daemon is
	// told to stop (SIGTERM); past it, the pass's context is cancelled: the
	// calls in flight return, and no issuance or write starts. Every single
	// write is atomic, so a cancelled pass leaves every target valid.
	// Default: shutdownGrace of certfleet.yaml.
	Grace time.Duration

	trigger chan string

	// inventory is what the last pass left, so a pass needs not read every
	// entry from the backend; it is read afresh every reloadEvery passes and
	// whenever Run starts (a new leader must see what the old one wrote).
	inventory map[string]*inventory.Entry
	// seen keeps the Secrets parsed by earlier passes (target.Seen).
	seen *target.Seen
	// watches are the informers passes observe clusters from (observe.go).
	watches *target.Watches
	passes  int
	// failures counts passes in a row that could not run (the catalog or
	// the inventory unreadable): their retries back off like a failing
	// certificate's, within maxRetryBackoff.
	failures int

	mu        sync.Mutex
	snapshot  *source.Snapshot // the last fetched revision
	good      *render.Result   // the last revision that rendered cleanly
	status    Status
	report    *reconcile.Result
	drift     *reconcile.DriftReport
	ready     bool
	closeFunc func()
	// What the fleet page shows besides the report (see page.go).
	verdicts      map[string]schemas.CertificateVerdict
	catalog       *schemas.Catalog
	pageInventory map[string]*inventory.Entry
	revisionTime  time.Time
	auditPath     string
	// Token, when set, lets clients off loopback read the fleet page and
	// /report with "Authorization: Bearer <Token>".
	Token string
	// leases reads the shards' Leases (see shard.go).
	leases kubernetes.Interface
}

// Status is what /report and the logs say about the daemon itself.
type Status struct {
	// Revision is the revision reconciled; Latest the newest seen.
	Revision string `json:"revision"`
	Latest   string `json:"latest"`
	// SourceError is set while fetching fails, since SourceFailingSince.
	SourceError        string     `json:"sourceError,omitempty"`
	SourceFailingSince *time.Time `json:"sourceFailingSince,omitempty"`
	// RenderErrors lists why the latest revision does not render, when it does not.
	RenderErrors []string  `json:"renderErrors,omitempty"`
	LastPass     time.Time `json:"lastPass"`
	NextPass     time.Time `json:"nextPass"`
	// Failing lists certificates failing since a time, with their last error.
	Failing []inventory.Failure `json:"failing,omitempty"`
	Leader  bool                `json:"leader"`
	// Shard is the shard this daemon is ("": unsharded); Sharding what its
	// last pass did with the shard's share of the fleet.
	Shard    string                 `json:"shard,omitempty"`
	Sharding *reconcile.ShardReport `json:"sharding,omitempty"`
}

// New opens the backend and prepares the daemon.
func New(ctx context.Context, cfg *schemas.ServeConfig, log *slog.Logger) (*Daemon, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if problems := Sharding(cfg).Check(cfg.Shard); len(problems) > 0 {
		return nil, fmt.Errorf("certfleet.yaml: %s", strings.Join(problems, "; "))
	}
	v := cfg.Backend.Vault
	b, err := backend.Open(ctx, backend.Config{Type: cfg.Backend.Type, Local: backend.LocalConfig{Path: cfg.Backend.StateDir},
		Vault: backend.VaultConfig{Address: v.Address, Namespace: v.Namespace, CatalogMount: v.CatalogMount, CACert: v.CACert,
			TokenFile: v.TokenFile, Timeout: durationOr(cfg.Timeouts.Vault, 0)},
		Where: "backend.vault in certfleet.yaml"})
	if err != nil {
		return nil, err
	}
	opts, err := sourceOptions(cfg)
	if err != nil {
		return nil, err
	}
	auditPath := inventory.AuditPath(cfg.AuditLog, b)
	f, err := os.OpenFile(auditPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	d := &Daemon{cfg: cfg, backend: b, conn: &cluster.Connector{Kubeconfig: cfg.Kubeconfig, Timeout: durationOr(cfg.Timeouts.Kubernetes, 0)}, srcOpts: opts,
		audit: inventory.NewAudit(f), renderer: newRenderer(cfg), metrics: NewShardMetrics(shardLabel(cfg)), log: log,
		trigger: make(chan string, 1), closeFunc: func() { f.Close() }, Now: time.Now,
		Grace: durationOr(cfg.ShutdownGrace, DefaultShutdownGrace), auditPath: auditPath}
	d.status.Shard = cfg.Shard
	return d, nil
}

func sourceOptions(cfg *schemas.ServeConfig) (source.Options, error) {
	a := cfg.Source.Auth
	o := source.Options{Path: cfg.Source.Path, Timeout: durationOr(cfg.Timeouts.Git, 0)}
	if v := cfg.Source.Verify; v != nil {
		var err error
		if o.Verify, err = source.ReadVerification(v.TrustedKeyFiles); err != nil {
			return o, fmt.Errorf("source.verify in certfleet.yaml: %w", err)
		}
	}
	var err error
	o.Auth, err = source.Credentials{Username: a.Username, PasswordFile: a.PasswordFile, TokenFile: a.TokenFile, SSHKeyFile: a.SSHKeyFile,
		KnownHostsFile: a.KnownHostsFile, CAFile: a.CAFile, InsecureHTTP: a.InsecureHTTP}.Read()
	return o, err
}

// Close releases the audit log.
func (d *Daemon) Close() {
	d.stopWatches()
	d.closeFunc()
}

// Metrics are the daemon's metrics.
func (d *Daemon) Metrics() *Metrics { return d.metrics }

// Trigger asks for a pass now (a push); it never blocks.
func (d *Daemon) Trigger(why string) {
	select {
	case d.trigger <- why:
	default: // a pass is already asked for
	}
}

// Run reconciles until ctx is done: a pass at once, then at the earliest of
// the interval, the next renewal and the next retry, or on Trigger. When ctx
// ends, a pass in flight has Grace to finish, no new pass starts, and Run
// returns once the pass has.
func (d *Daemon) Run(ctx context.Context) error { return d.run(ctx, context.Background(), d.Grace) }

// reloadEvery is how many passes reuse the daemon's copy of the inventory
// before reading it from the backend again.
const reloadEvery = 10

// run is Run; hard, when it ends, cancels a pass at once (a lost lease),
// where the end of ctx gives it grace. ctx must end when hard does.
func (d *Daemon) run(ctx, hard context.Context, grace time.Duration) error {
	d.inventory = nil
	d.setLeader(true)
	defer d.setLeader(false)
	defer d.stopWatches()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// A due timer and a done ctx may both be ready; select picks at
		// random, so the stop is checked first: no pass starts after it.
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case why := <-d.trigger:
			d.log.Info("pass requested", "by", why)
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		next := d.passWithGrace(ctx, hard, grace)
		if ctx.Err() != nil {
			return nil
		}
		wait := max(next.Sub(d.Now()), 0)
		d.log.Info("next pass scheduled", "at", next.UTC().Format(time.RFC3339), "in", wait.Round(time.Second).String())
		timer.Reset(wait)
	}
}

// passWithGrace runs a pass that survives ctx's end by grace, so a SIGTERM
// lets it finish; past the grace its context is cancelled, which reaches
// every call in flight, and the pass returns without starting another
// issuance or write.
func (d *Daemon) passWithGrace(ctx, hard context.Context, grace time.Duration) time.Time {
	passCtx, cancel := context.WithCancel(hard)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			select {
			case <-done:
			case <-time.After(grace):
				d.log.Warn("cancelling the pass in flight: the grace is over", "grace", grace.String())
				cancel()
			}
		}
	}()
	return d.Pass(passCtx)
}

// Pass runs one pass and returns when the next one is due.
func (d *Daemon) Pass(ctx context.Context) time.Time {
	start := d.Now()
	d.log.Info("pass started")
	interval := durationOr(d.cfg.Source.Interval, DefaultInterval)
	next := start.Add(interval)
	cat, err := backend.LoadCatalog(ctx, d.backend)
	if err != nil {
		retry := d.retryAfterFailure(interval)
		d.log.Error("cannot read the catalog; retrying", "err", err, "in", retry.String())
		return start.Add(retry)
	}
	res := d.revision(ctx, cat)
	if ctx.Err() != nil {
		d.log.Warn("pass cancelled before it acted", "cause", context.Cause(ctx).Error())
		return next
	}
	if res == nil {
		return next // nothing has ever rendered: nothing to reconcile yet
	}
	verdicts := evaluate.New(cat, start).ByID(res.Desired)
	dir := &target.Directory{Root: d.cfg.OutputDir, AllowedRoots: d.cfg.AllowedDirRoots}
	p := reconcile.NewPass(d.backend, cat, d.conn, dir, d.audit)
	p.Actor, p.Now, p.Log = d.Actor, d.Now, d.log
	if d.seen == nil {
		d.seen = target.NewSeen()
	}
	p.Kube.Seen, p.Kube.Watches = d.seen, d.watchesForPass()
	p.MaxJitter = durationOr(d.cfg.RenewalJitter, schemas.MaxJitter)
	p.Concurrency, p.IssueRate, p.KeepSuperseded = d.cfg.Concurrency, d.cfg.IssueRate, d.cfg.KeepSuperseded
	p.DryRun, p.Prune, p.MaxPruneShare = d.cfg.ReportOnly, d.cfg.Prune && !d.cfg.ReportOnly, d.cfg.MaxPruneShare
	if d.passes++; d.passes%reloadEvery == 0 {
		d.inventory = nil
	}
	p.Inventory = d.inventory
	p.Shard = d.sharding(ctx)
	p.RetryBackoff = durationOr(d.cfg.RetryBackoff, DefaultRetryBackoff)
	p.MaxRetryBackoff = durationOr(d.cfg.MaxRetryBackoff, DefaultMaxRetryBackoff)
	rep, err := p.Run(ctx, res, verdicts)
	if err != nil {
		retry := d.retryAfterFailure(interval)
		d.log.Error("pass failed", "err", err, "in", retry.String())
		return start.Add(retry)
	}
	d.failures = 0
	d.afterPass()
	if ctx.Err() != nil {
		// What was done is recorded; what was not is left for the next
		// process. The inventory copy is dropped: the next run reloads it.
		d.inventory = nil
		d.log.Warn("pass cancelled: no issuance or write started after the cancellation", "took", d.Now().Sub(start).Round(time.Millisecond).String(),
			"actions", fmt.Sprint(rep.Actions), "failures", len(rep.Failures))
		return next
	}
	d.inventory = rep.Inventory
	d.afterShardPass(rep)
	took := d.Now().Sub(start)
	d.metrics.observePass(rep, took, cat)
	for _, f := range rep.Failures {
		d.log.Warn("pass failure", "failure", f.String())
	}
	// The next pass: the interval, the earliest renewal, the earliest retry.
	now := d.Now()
	for _, s := range rep.State {
		if !s.RenewAt.IsZero() && s.RenewAt.After(now) && s.RenewAt.Before(next) {
			next = s.RenewAt
		}
	}
	if !rep.NextRetry.IsZero() && rep.NextRetry.Before(next) {
		next = rep.NextRetry
	}
	next = d.handOffNext(rep, now, next)
	drift := reconcile.DriftOf(rep)
	d.mu.Lock()
	d.report, d.drift = rep, drift
	d.verdicts, d.catalog, d.pageInventory, d.revisionTime = verdicts, cat, copyInventory(rep.Inventory), res.Revision.Time
	d.status.Revision, d.status.LastPass, d.status.NextPass = rep.Revision, start, next
	d.status.Failing = nil
	for _, s := range rep.State {
		if s.FailingSince != nil {
			d.status.Failing = append(d.status.Failing, inventory.Failure{What: s.Certificate + " → " + s.Target,
				Err: "failing since " + s.FailingSince.UTC().Format(time.RFC3339)})
		}
	}
	d.status.Failing = append(d.status.Failing, rep.Failures...)
	d.ready = true
	d.mu.Unlock()
	d.log.Info("pass done", "revision", rep.Revision, "took", took.Round(time.Millisecond).String(),
		"actions", fmt.Sprint(rep.Actions), "failures", len(rep.Failures), "drift", len(drift.Entries))
	return next
}

// retryAfterFailure is how long to wait after a pass that could not run:
// retryBackoff doubled per failure in a row, within maxRetryBackoff and the
// interval.
func (d *Daemon) retryAfterFailure(interval time.Duration) time.Duration {
	d.failures++
	delay := decide.RetryDelay(d.failures, durationOr(d.cfg.RetryBackoff, DefaultRetryBackoff), durationOr(d.cfg.MaxRetryBackoff, DefaultMaxRetryBackoff))
	return min(interval, delay)
}

// revision fetches and renders the source, keeping the last good revision
// when the fetch fails or the new revision does not render cleanly. It
// returns what to reconcile (nil when nothing ever rendered).
func (d *Daemon) revision(ctx context.Context, cat *schemas.Catalog) *render.Result {
	d.mu.Lock()
	prev := d.snapshot
	d.mu.Unlock()
	opts := d.srcOpts
	if prev != nil {
		opts.LastCommit = prev.Revision.Hash
	}
	ref := d.cfg.Source.Ref
	snap, err := source.Fetch(ctx, d.cfg.Source.URL, ref, opts)
	switch {
	case errors.Is(err, source.ErrUnchanged):
		snap = prev
	case err != nil:
		d.metrics.fetchFailures.Inc()
		d.mu.Lock()
		if d.status.SourceFailingSince == nil {
			t := d.Now()
			d.status.SourceFailingSince = &t
		}
		d.status.SourceError = err.Error()
		d.mu.Unlock()
		d.log.Warn("fetching the source failed; keeping the last good revision", "err", err)
		snap = prev
	default:
		d.mu.Lock()
		d.snapshot, d.status.SourceError, d.status.SourceFailingSince = snap, "", nil
		d.mu.Unlock()
	}
	if snap == nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.good
	}
	res := d.renderer.Render(snap, cat)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.Latest = snap.Revision.String()
	d.status.RenderErrors = nil
	if len(res.Errors) == 0 {
		d.good = res
		d.metrics.setRevision(snap.Revision.String(), source.RefOrDefault(ref), "latest")
		return res
	}
	for _, e := range res.Errors {
		d.status.RenderErrors = append(d.status.RenderErrors, e.Error())
	}
	if d.good != nil {
		d.log.Warn("the latest revision does not render; keeping the last good one",
			"latest", snap.Revision.String(), "kept", d.good.Revision.String(), "errors", len(res.Errors))
		d.metrics.setRevision(d.good.Revision.String(), source.RefOrDefault(ref), "last-good")
		return d.good
	}
	// Nothing rendered cleanly yet: reconcile the valid certificates (pruning
	// is refused while manifests are invalid).
	d.metrics.setRevision(snap.Revision.String(), source.RefOrDefault(ref), "partial")
	return res
}

func (d *Daemon) setLeader(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.Leader = on
}

// Snapshot returns the status, the latest report and drift, under the lock.
func (d *Daemon) Snapshot() (Status, *reconcile.Result, *reconcile.DriftReport, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.status
	st.Failing = slices.Clone(st.Failing)
	st.RenderErrors = append([]string(nil), st.RenderErrors...)
	return st, d.report, d.drift, d.ready
}

// standby forgets the last pass's state when the lease is lost.
func (d *Daemon) standby() {
	d.metrics.fleet.set(nil, nil, nil)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.report, d.drift, d.ready = nil, nil, false
}
