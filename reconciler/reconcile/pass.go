// Package reconcile runs one pass of certfleet's main job: observe every
// target, decide (reconciler/decide, pure), act — issue through the
// backend, deliver, prune — record in the inventory and the audit log, and
// sum up what it did (Result). `certfleet reconcile`, `drift` and the daemon run it.
package reconcile

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// Pass holds what a pass needs. Backend, Catalog, Kube, Vault, Dir and Audit
// are required (NewPass wires them); the other fields have safe defaults.
type Pass struct {
	Backend backend.Backend
	Catalog *schemas.Catalog
	Kube    *target.Kube
	Vault   *target.VaultKV
	Dir     *target.Directory
	Audit   *inventory.Audit
	// Actor names this certfleet in the audit log (user@host).
	Actor string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxJitter spreads renewals (schemas.JitteredRenewalTime); 0 disables it.
	MaxJitter time.Duration
	// Concurrency bounds parallel issuances and writes (default 8).
	Concurrency int
	// IssueRate caps issuances per second across the pass, so a renewal
	// storm (thousands due together) reaches the issuer at a pace it can
	// take; 0 leaves them unlimited (bounded by Concurrency only).
	IssueRate float64
	// DryRun decides and reports, and changes nothing.
	DryRun bool
	// Prune deletes orphaned targets; Force prunes even past the safety limits.
	Prune, Force bool
	// Adopt writes over targets that do not carry certfleet's marks
	// (TakenOver); without it they are reported and left alone.
	Adopt bool
	// KeepSuperseded leaves superseded and pruned certificates unrevoked;
	// by default their serials go on the authority's CRL (Vault, where the
	// issuer stores certificates) once their replacement is delivered.
	KeepSuperseded bool
	// MaxPruneShare is the largest share of managed targets one pass may
	// prune without Force (default 0.5).
	MaxPruneShare float64
	// RetryBackoff is the first delay before retrying a failing certificate,
	// doubled per failure up to MaxRetryBackoff; 0 retries on every pass.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Inventory, when set, is the inventory as the previous pass left it:
	// the daemon keeps it between passes instead of reading every entry
	// from the backend again (it reloads now and then, and on taking the
	// lease). Nil reads the backend.
	Inventory map[string]*inventory.Entry
	// NoState leaves Result.State empty, for a pass whose report is only
	// printed (reconcile --once): drift, the daemon's metrics and the fleet
	// page read State, nothing else does. State is a line per target of the
	// fleet (~290 bytes each) made while all the pass holds is still live,
	// so it adds to the pass's peak heap.
	NoState bool
	// Shard, when set, makes the pass one shard's (see Sharding); nil is
	// the unsharded process, which still leaves alone the certificates a
	// shard owns.
	Shard *Sharding
	// Progress receives a line per step on a terminal (nil: quiet).
	Progress io.Writer
	Log      *slog.Logger
}

func (p *Pass) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// limiter paces issuances at IssueRate, in bursts of at most Concurrency;
// nil when unlimited.
func (p *Pass) limiter() *rate.Limiter {
	if p.IssueRate <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(p.IssueRate), p.concurrency())
}

func (p *Pass) concurrency() int {
	if p.Concurrency > 0 {
		return p.Concurrency
	}
	return 8
}

func (p *Pass) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Pass) progress(format string, args ...any) {
	if p.Progress != nil {
		fmt.Fprintf(p.Progress, format+"\n", args...)
	}
}

// Run reconciles a rendered revision. verdicts come from evaluate; a
// denied certificate is left as it is.
func (p *Pass) Run(ctx context.Context, res *render.Result, verdicts map[string]schemas.CertificateVerdict) (*Result, error) {
	start := p.now()
	if l, ok := p.Backend.(backend.Locker); ok && !p.DryRun {
		// One acting pass per backend at a time: a second one would issue
		// every certificate again and race on the inventory. Taken before
		// the inventory is read, so what this pass decides on is current.
		lease, err := l.Lock(ctx, p.lockName(), backend.Holder{Actor: p.Actor, PID: os.Getpid(), Scope: res.Scope.Path, Since: start})
		if err != nil {
			return nil, err
		}
		defer lease.Release()
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-lease.Lost():
				p.log().Error("the backend lock was lost: stopping the pass")
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	// A shard observes the certificates that belong to it; which of them it
	// acts on depends on who owns them (the inventory, read meanwhile).
	claimed := p.claimed(res)
	declared := declaredOf(res)
	part := p.inventoryShare(res, declared)
	p.progress("observing %d certificates' targets", len(claimed))
	var inv map[string]*inventory.Entry
	var obs observed
	if p.Inventory == nil {
		// The inventory is read while the desired targets are observed: the
		// two are independent, and each is round trips. What only the
		// inventory names (orphans) is observed after.
		var loadErr error
		loaded := make(chan struct{})
		go func() {
			defer close(loaded)
			if inv, loadErr = inventory.Load(ctx, p.Backend, part...); loadErr == nil {
				shareDeclared(inv, res.Desired)
			}
		}()
		obs = p.observe(ctx, claimed, nil, res.Scope.Covers)
		<-loaded
		if loadErr != nil {
			return nil, fmt.Errorf("reading the inventory: %w", loadErr)
		}
	} else {
		// The pass updates a copy: the caller's map stays as it was.
		inv = maps.Clone(p.Inventory)
		obs = p.observe(ctx, claimed, nil, res.Scope.Covers)
		if p.stale(claimed, inv) {
			var err error
			if inv, err = inventory.Load(ctx, p.Backend, part...); err != nil {
				return nil, fmt.Errorf("reading the inventory: %w", err)
			}
			shareDeclared(inv, res.Desired)
		}
	}
	all := res
	sh := p.shareOf(res, inv, declared)
	var handOffFailures inventory.Failures
	if !p.DryRun {
		handOffFailures = p.handOff(ctx, &sh, inv)
	}
	sh.wholeInventory(p, inv)
	res = sh.res
	p.observeMore(ctx, nil, sh.inv, res.Scope.Covers, &obs)
	if p.Inventory == nil && !p.DryRun && p.reporter() {
		// Entries still in the earlier one-document-each format move into
		// pages (the unsharded ones: in a sharded fleet, the reporter's job).
		if err := inventory.Migrate(ctx, p.Backend); err != nil {
			return nil, fmt.Errorf("moving the inventory into pages: %w", err)
		}
	}
	renewals, err := inventory.RenewalsOf(ctx, p.Backend, sh.inv, p.DryRun, sh.mine)
	if err != nil {
		return nil, err
	}
	// Used up: sh lives to the end of the pass, these sets of the fleet's
	// IDs need not.
	sh.declared, sh.mine = idSet{}, nil
	dirRoot := ""
	if p.Dir != nil {
		dirRoot = p.Dir.Root
	}
	rep := newResult(res, start, p.DryRun)
	rep.noState = p.NoState
	rep.Failures = append(rep.Failures, handOffFailures...)
	if p.sharded() {
		rep.Shard = &sh.report
		rep.addWaiting(sh.report.Waiting)
		if p.reporter() {
			rep.addUnclaimed(sh.unclaimed, sh.report)
		}
	}
	// Trust first: a leaf is reissued under a rotated authority's new CA
	// only once every bundle place reads back holding it.
	trust, retired := p.trustBundles(ctx, all, obs, rep)
	untrusted := untrustedOf(trust)
	windows := p.renewalWindows(ctx, res.Desired, obs.byKey, start)
	served := p.probeServed(ctx, res.Desired, obs.byKey)
	workloads, workloadFailures := p.observeWorkloads(ctx, res.Desired, obs)
	checkKeys(obs.byKey, res.Desired, inv)
	dec := decide.Decide(decide.Input{Desired: res.Desired, Verdicts: verdicts, Observed: obs.byKey,
		Unobservable: obs.unobservable, Inventory: sh.inv, Renewals: renewals, Now: start, MaxJitter: p.MaxJitter, OutputDir: dirRoot,
		Catalog: p.Catalog, Untrusted: untrusted, Adopt: p.Adopt, InScope: res.Scope.Covers, Windows: windows, Served: served,
		Workloads: workloads})
	rep.addObservationFailures(obs.unobservable)
	if err := p.rollout(ctx, &dec, inv, start, !res.Scope.Whole() || len(obs.unobservable) > 0, rep); err != nil {
		return nil, err
	}
	rep.Failures = append(rep.Failures, workloadFailures...)
	var rewritten map[string]bool
	if !p.DryRun {
		rewritten = p.act(ctx, res, dec, inv, verdicts, workloads, served, rep)
		p.sweep(ctx, dec, rep)
	} else {
		rep.addDecisions(dec, nil, inv, start, p.MaxJitter)
		rep.addRestarts(dec, nil)
	}
	// A cancelled pass (SIGTERM past the grace, a lost lease or lock) starts
	// no delete and no further write.
	if ctx.Err() == nil {
		p.prune(ctx, res, dec, inv, rep)
	}
	p.rotations(ctx, dec, trust, retired, rewritten, rep)
	rep.Inventory = inv
	rep.finish(p.now())
	return rep, nil
}

// checkKeys settles the key check of the observations a decision reads
// the key of — the declared targets and those the inventory records — on
// every core (target.CheckKeys), before deciding: a target holding exactly
// the bundle the inventory recorded writing to it needs no key parsed.
// Other observations (others' Secrets) keep theirs unparsed: nothing asks.
func checkKeys(obs map[string]*target.Observed, desired []*render.Desired, inv map[string]*inventory.Entry) {
	keys := make(map[string]string, len(obs))
	for _, e := range inv {
		for _, t := range e.Targets {
			keys[t.Key] = e.Fingerprint
		}
	}
	for _, d := range desired {
		for _, t := range d.Targets {
			if _, ok := keys[t.Key]; !ok {
				keys[t.Key] = ""
			}
		}
	}
	target.CheckKeys(obs, keys)
}

// rollout holds the mass reissues whose wave has not come (decide.Waves)
// and records the rollout's progress before anything is issued: were it
// recorded after, a pass stopped in between would leave a wave reissued
// with no record that it started, and the next pass would take it for a
// wave with nothing to do and start the next one without a soak. A dry run
// reads the state and records nothing.
func (p *Pass) rollout(ctx context.Context, dec *decide.Decisions, inv map[string]*inventory.Entry, now time.Time, partial bool, rep *Result) error {
	st, err := inventory.LoadRollout(ctx, p.Backend, p.shardName())
	if err != nil {
		return err
	}
	in := decide.RolloutInput{State: st, Failing: decide.FailingIDs(inv), Now: now, Partial: partial}
	if p.Catalog != nil {
		in.Rollout, in.Clusters = p.Catalog.Rollout, p.Catalog.Clusters
	}
	r := decide.Waves(*dec, in)
	r.Apply(dec)
	rep.Waves = r.Waves
	if p.DryRun || r.State.Equal(st) {
		return nil
	}
	return inventory.SaveRollout(ctx, p.Backend, p.shardName(), r.State)
}

// sweep cleans what interrupted writes left in the directories this pass
// did not write (a crash between a data directory and its swap).
func (p *Pass) sweep(ctx context.Context, dec decide.Decisions, rep *Result) {
	for _, c := range dec.Certificates {
		for _, t := range c.Targets {
			if ctx.Err() != nil {
				return
			}
			if t.Target.Kind != render.Directory || t.Write || t.Observed == nil || !t.Observed.Managed {
				continue
			}
			if err := p.Dir.Sweep(*t.Target); err != nil {
				rep.Failures = append(rep.Failures, inventory.Failed("cleaning "+t.Target.Key, err))
			}
		}
	}
}

// outcome is what acting on one certificate did. It keeps what the
// report and the inventory need (serial, validity), never the bundle or
// the parsed leaf: a pass's outcomes live until it ends, and at 100,000
// certificates those would be hundreds of megabytes.
type outcome struct {
	serial              string
	notBefore, notAfter time.Time
	// fingerprint is the bundle's written (target.FingerprintOf).
	fingerprint string
	err         error
	written     writes
	// recordErr is a failure to write the inventory or the audit log.
	recordErr error
	// retryAt is when a failing certificate is tried again (zero: next pass).
	retryAt time.Time
	// entry is the inventory entry recorded (nil when recording failed).
	entry *inventory.Entry
	// renewAt is the delivered certificate's renewal time.
	renewAt time.Time
}

// writes are the targets acting on a certificate wrote or tried to, each
// with its error (nil: written). A slice, not a map: a certificate has a
// target or two, and a pass keeps every outcome to its end — a map of one
// entry takes ~300 bytes, a slice's element 32.
type writes []write

type write struct {
	key string
	err error
}

// tried reports whether a write of key was tried.
func (w writes) tried(key string) bool {
	return slices.ContainsFunc(w, func(x write) bool { return x.key == key })
}

// err is the error of key's write (nil: written, or not tried).
func (w writes) err(key string) error {
	for _, x := range w {
		if x.key == key {
			return x.err
		}
	}
	return nil
}

// set records key's write.
func (w *writes) set(key string, err error) {
	for i := range *w {
		if (*w)[i].key == key {
			(*w)[i].err = err
			return
		}
	}
	*w = append(*w, write{key, err})
}

// recordGrace bounds recording the pass's outcomes once the pass is
// cancelled: long enough for the backend's writes, short enough to exit.
// It runs from the cancellation only: a save that is merely slow (a loaded
// backend, a 100,000-certificate inventory) is never cut short while the
// pass goes on — that would leave certificates delivered but unrecorded.
var recordGrace = 5 * time.Second

// graceAfter is a context that outlives ctx by grace: what was done is
// recorded even when the pass is cancelled meanwhile.
func graceAfter(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// A timer left running after done only cancels rctx a second time.
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return rctx, func() { stop(); cancel() }
}

// act issues and delivers, certificates in parallel, and records; it
// returns the targets it delivered a new certificate to. Once ctx
// is cancelled no certificate starts, and one in progress starts no
// further issuance or write.
func (p *Pass) act(ctx context.Context, res *render.Result, dec decide.Decisions, inv map[string]*inventory.Entry,
	verdicts map[string]schemas.CertificateVerdict, workloads map[string]*target.Workload, served map[string]decide.Served,
	rep *Result) (rewritten map[string]bool) {
	outcomes := make([]*outcome, len(dec.Certificates))
	acts := func(c *decide.Certificate) bool { return c.Action() != "" }
	todo := 0
	for i := range dec.Certificates {
		if acts(&dec.Certificates[i]) {
			todo++
		}
	}
	if todo > 0 {
		p.progress("issuing or delivering %d certificates", todo)
	}
	lim := p.limiter()
	g := new(errgroup.Group)
	g.SetLimit(p.concurrency())
	for i := range dec.Certificates {
		c := &dec.Certificates[i]
		if !acts(c) {
			continue
		}
		if ctx.Err() != nil {
			break // cancelled: the rest is left, unrecorded, for the next pass
		}
		g.Go(func() error {
			if ctx.Err() != nil {
				return nil
			}
			o := p.actOn(ctx, res, c, lim)
			rec := o
			if ctx.Err() != nil {
				if rec = withoutCancelled(o); rec == nil {
					return nil // the cancellation came before anything happened
				}
			}
			// What was done is recorded even when the pass was cancelled meanwhile.
			o.entry, o.retryAt, o.recordErr = p.record(res, c, rec, inv[c.Desired.ID], verdicts[c.Desired.ID].Effective)
			outcomes[i] = o
			return nil
		})
	}
	_ = g.Wait() // every failure is the certificate's own, in its outcome
	// Revoked before the save: the entries that stop listing a serial as
	// waiting are written with this pass's others, one write per page.
	dropped := p.revokeSuperseded(ctx, res, inv, outcomes, served, rep)
	failed := p.save(ctx, inv, outcomes, dropped)
	for _, id := range slices.Sorted(maps.Keys(dropped)) {
		if err := failed[id]; err != nil {
			// Revoked but still listed as waiting: the next pass revokes it again, which Vault accepts.
			rep.Failures = append(rep.Failures, inventory.Failed("updating "+id+" in the inventory", err))
			continue
		}
		inv[id] = dropped[id]
	}
	// Restarted once the new certificate is delivered (and recorded): a
	// workload restarted earlier would start with the old one.
	restarts := p.restartWorkloads(ctx, dec, outcomes, workloads)
	rep.addDecisions(dec, outcomes, inv, p.now(), p.MaxJitter)
	rep.addRestarts(dec, restarts)
	for _, o := range outcomes {
		if o != nil && o.entry != nil {
			inv[o.entry.ID] = o.entry
		}
	}
	return newlyIssued(dec, outcomes)
}

// save writes the inventory pages holding what this pass recorded, each
// page once, after every certificate was acted on (one round trip per
// changed page, not per certificate). An entry whose page could not be
// written is reported as not recorded; the next pass records it from what
// the target holds (decide.NotRecorded). Like record, it runs even when the
// pass was cancelled meanwhile. others are further entries to write
// (not acted on, changed all the same); it returns what failed to be written.
func (p *Pass) save(ctx context.Context, inv map[string]*inventory.Entry, outcomes []*outcome, others map[string]*inventory.Entry) map[string]error {
	var changed []string
	for _, o := range outcomes {
		if o != nil && o.entry != nil {
			changed = append(changed, o.entry.ID)
		}
	}
	for id := range others {
		changed = append(changed, id)
	}
	if len(changed) == 0 {
		return nil // a pass that changed nothing copies no map of the fleet
	}
	next := maps.Clone(inv)
	for _, o := range outcomes {
		if o != nil && o.entry != nil {
			next[o.entry.ID] = o.entry
		}
	}
	maps.Copy(next, others)
	rctx, cancel := graceAfter(ctx, recordGrace)
	defer cancel()
	failed := inventory.Save(rctx, p.Backend, p.shardName(), next, changed)
	for _, o := range outcomes {
		if o == nil || o.entry == nil {
			continue
		}
		if err := failed[o.entry.ID]; err != nil {
			o.recordErr = errors.Join(fmt.Errorf("recording in the inventory: %w", err), o.recordErr)
			o.entry = nil
		}
	}
	return failed
}

// withoutCancelled is o without what a cancellation stopped, which is no
// failure of the certificate (no backoff, no failed audit line); nil when
// nothing happened.
func withoutCancelled(o *outcome) *outcome {
	if o.err != nil {
		if errors.Is(o.err, context.Canceled) {
			return nil
		}
		return o
	}
	r := *o
	r.written = nil
	for _, w := range o.written {
		if !errors.Is(w.err, context.Canceled) {
			r.written = append(r.written, w)
		}
	}
	if len(r.written) == 0 {
		return nil
	}
	return &r
}

// actOn issues (when needed) and writes every target that needs it. A
// failed issuance writes nothing: a working certificate is never replaced
// by a failure.
func (p *Pass) actOn(ctx context.Context, res *render.Result, c *decide.Certificate, lim *rate.Limiter) *outcome {
	o := &outcome{}
	d := c.Desired
	spec := d.Certificate.Spec
	// The bundle lives only while this certificate is acted on.
	var bundle target.Bundle
	if c.Issue {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil && ctx.Err() == nil {
				// The pass's deadline comes before its turn: a transient failure, retried.
				o.err = fmt.Errorf("not issued: the issuance rate limit (%g/s) puts it past the pass's deadline", p.IssueRate)
				return o
			}
		}
		if ctx.Err() != nil {
			o.err = fmt.Errorf("not issued: the pass was cancelled (%w)", context.Cause(ctx))
			return o
		}
		bundle, o.err = p.issue(ctx, c)
		if o.err != nil {
			return o
		}
	} else {
		source, err := p.Dir.Bundle(c.Source)
		if err != nil {
			o.err = fmt.Errorf("reading the copy to deliver from %s: %w", c.Source.Target.Key, err)
			return o
		}
		b, err := reencode(source, spec.Key().Encoding)
		if err != nil {
			o.err = err
			return o
		}
		bundle = b
	}
	leaf, err := pki.ParseCertificate(bundle.Cert)
	if err != nil {
		o.err = err
		return o
	}
	o.serial, o.notBefore, o.notAfter = pki.Serial(leaf.SerialNumber), leaf.NotBefore, leaf.NotAfter
	o.fingerprint = target.FingerprintOf(bundle, leaf)
	o.renewAt = decide.RenewAt(d, leaf.NotBefore, leaf.NotAfter, p.MaxJitter)
	if !c.Issue && !c.RenewAt.IsZero() {
		o.renewAt = c.RenewAt // a copy keeps its renewal time, the CA's suggestion (ARI) included
	}
	if ctx.Err() != nil {
		// Nothing delivered: the certificate is dropped, not counted or recorded as issued.
		o.err = fmt.Errorf("not delivered: the pass was cancelled (%w)", context.Cause(ctx))
		return o
	}
	for _, td := range c.Targets {
		if !td.Write {
			continue
		}
		if ctx.Err() != nil {
			o.written.set(td.Target.Key, fmt.Errorf("not written: the pass was cancelled (%w)", context.Cause(ctx)))
			continue
		}
		m := target.Meta{CertificateID: d.ID, Issuer: spec.Issuer, IssueHash: d.IssueHash, TemplateHash: td.Target.TemplateHash,
			RenewAt: o.renewAt, Revision: res.Revision.String()}
		var err error
		switch td.Target.Kind {
		case render.Kubernetes:
			k := *p.Kube
			k.Adopt = k.Adopt || td.TakeOver
			err = k.Write(ctx, *td.Target, bundle, m, td.Observed)
		case render.VaultKV:
			v := *p.Vault
			v.Adopt = v.Adopt || td.TakeOver
			err = v.Write(ctx, *td.Target, bundle, m, td.Observed)
		case render.Directory:
			dir := *p.Dir
			dir.Adopt = dir.Adopt || td.TakeOver
			err = dir.Write(*td.Target, bundle, m)
		}
		o.written.set(td.Target.Key, err)
	}
	return o
}

// issue makes a key (or keeps one, rotationPolicy Never) and has the
// backend sign a CSR for it; the key never leaves this process.
func (p *Pass) issue(ctx context.Context, c *decide.Certificate) (target.Bundle, error) {
	d := c.Desired
	spec := d.Certificate.Spec
	iss, ok := p.Catalog.Issuers[spec.Issuer]
	if !ok {
		return target.Bundle{}, fmt.Errorf("issuer %q is not in the catalog: %w", spec.Issuer, backend.ErrNotFound)
	}
	auth, ok := p.Catalog.Authorities[iss.Spec.Authority]
	if !ok && iss.Spec.ACME == nil {
		return target.Bundle{}, fmt.Errorf("authority %q of issuer %q is not in the catalog: %w", iss.Spec.Authority, spec.Issuer, backend.ErrNotFound)
	}
	k := spec.Key()
	signer, err := p.key(c, k)
	if err != nil {
		return target.Bundle{}, err
	}
	req := pki.Request{CommonName: spec.CommonName, DNSNames: spec.DNSNames, IPAddresses: spec.IPAddresses,
		URIs: spec.URIs, EmailAddresses: spec.EmailAddresses}
	if s := spec.Subject; s != nil {
		req.Organizations, req.OrganizationalUnits, req.Countries = s.Organizations, s.OrganizationalUnits, s.Countries
		req.Localities, req.Provinces, req.StreetAddresses, req.PostalCodes = s.Localities, s.Provinces, s.StreetAddresses, s.PostalCodes
	}
	csr, err := pki.CSR(signer, req)
	if err != nil {
		return target.Bundle{}, fmt.Errorf("making the CSR: %w", err)
	}
	signed, err := p.Backend.Sign(ctx, iss, auth, csr, spec.Lifetime())
	if err != nil {
		return target.Bundle{}, fmt.Errorf("signing through issuer %s: %w", spec.Issuer, err)
	}
	keyPEM, err := pki.EncodeKey(signer, k.Encoding)
	if err != nil {
		return target.Bundle{}, err
	}
	return compose(signed, keyPEM), nil
}

// key generates a private key, or reuses the delivered one under rotationPolicy Never.
func (p *Pass) key(c *decide.Certificate, k schemas.PrivateKey) (crypto.Signer, error) {
	if c.ReuseKey != nil {
		// Read again where the observation did not keep it (a directory's):
		// failing that, this certificate fails this pass rather than
		// silently getting the new key rotationPolicy Never forbids.
		kept, err := p.Dir.Bundle(c.ReuseKey)
		if err != nil {
			return nil, fmt.Errorf("reading the key to keep from %s: %w", c.ReuseKey.Target.Key, err)
		}
		if signer, err := pki.ParseKey(kept.Key); err == nil {
			if alg, size := pki.KeyAlgorithm(signer.Public()); alg == string(k.Algorithm) && (size == k.Size || k.Algorithm == schemas.Ed25519) {
				return signer, nil
			}
		}
	}
	return pki.GenerateKey(string(k.Algorithm), k.Size)
}

// compose builds the delivered bundle: tls.crt is the leaf and the
// intermediates, ca.crt the root at the top of the chain.
func compose(s *backend.Signed, keyPEM []byte) target.Bundle {
	certs := strings.TrimSpace(s.Certificate) + "\n"
	var ca string
	for i, c := range s.Chain {
		c = strings.TrimSpace(c) + "\n"
		if i == len(s.Chain)-1 {
			if top, err := pki.ParseCertificate([]byte(c)); err == nil && isSelfSigned(top) {
				ca = c
				continue
			}
		}
		certs += c
	}
	if ca == "" && len(s.Chain) > 0 {
		ca = strings.TrimSpace(s.Chain[len(s.Chain)-1]) + "\n"
	}
	return target.Bundle{Cert: []byte(certs), Key: keyPEM, CA: []byte(ca)}
}

// reencode writes a copied bundle's key in the encoding the spec asks for
// (a changed encoding is a TemplateChanged, healed without a new certificate).
func reencode(b target.Bundle, encoding string) (target.Bundle, error) {
	k, err := pki.ParseKey(b.Key)
	if err != nil {
		return b, errors.New("the healthy copy's key is unreadable")
	}
	pemKey, err := pki.EncodeKey(k, encoding)
	if err != nil {
		return b, err
	}
	b.Key = pemKey
	return b, nil
}

// record makes the inventory entry and writes the audit events of one certificate.
func (p *Pass) record(res *render.Result, c *decide.Certificate, o *outcome, prev *inventory.Entry,
	effective *schemas.Effective) (*inventory.Entry, time.Time, error) {
	now := p.now()
	e := entryOf(res, c, o, prev, effective, now)
	if s, ok := p.superseded(c, o, prev, now); ok {
		e.Edit().Superseded = append(e.Superseded(), s)
	}
	e.Shard = p.shardName() // acting on it makes it this shard's (an adoption)
	failures := failuresOf(o)
	if len(failures) > 0 {
		p.markFailing(e, prev, c.Desired, o.err, failures, now)
	}
	// The entry is written with its page's others once the pass has acted (save).
	recordErrs := p.audit(res, c, o, now)
	p.log().Debug("certificate reconciled", "certificate", c.Desired.ID, "action", c.Action(), "serial", o.serial, "failures", len(failures))
	var retry time.Time
	if e.RetryAt() != nil {
		retry = *e.RetryAt()
	}
	return e, retry, errors.Join(recordErrs...)
}

// entryOf is the inventory entry of a certificate after acting on it: the
// declaration, its targets (and those dropped from it, until pruned) and
// the certificate delivered — or, when issuing failed, the one before.
func entryOf(res *render.Result, c *decide.Certificate, o *outcome, prev *inventory.Entry, effective *schemas.Effective,
	now time.Time) *inventory.Entry {
	d := c.Desired
	spec := d.Certificate.Spec
	e := &inventory.Entry{ID: d.ID, Issuer: spec.Issuer, IssueHash: d.IssueHash, File: d.File(),
		Revision: res.Revision.String(), Author: res.Revision.Author, CommonName: spec.CommonName,
		DNSNames: spec.DNSNames, UpdatedAt: now, Effective: effective}
	if len(spec.IPAddresses)+len(spec.URIs)+len(spec.EmailAddresses) > 0 {
		r := e.Edit()
		r.IPAddresses, r.URIs, r.EmailAddresses = spec.IPAddresses, spec.URIs, spec.EmailAddresses
	}
	if prev != nil && !c.Issue {
		// A copy keeps the certificate, its owner and its history.
		e.Author, e.Revision = prev.Author, prev.Revision
	}
	if prev != nil {
		e.Edit().Superseded = slices.Clone(prev.Superseded()) // still waiting to be revoked
	}
	declared := map[string]bool{}
	for _, t := range d.Targets {
		declared[t.Key] = true
		e.Targets = append(e.Targets, t.Address)
	}
	if prev != nil {
		// Targets dropped from the declaration stay recorded until pruned:
		// the inventory is how certfleet knows they are its orphans.
		for _, t := range prev.Targets {
			if !declared[t.Key] {
				e.Targets = append(e.Targets, t)
			}
		}
	}
	if o.err == nil {
		e.Serial, e.NotBefore, e.NotAfter, e.RenewAt = o.serial, o.notBefore, o.notAfter, o.renewAt
		e.Fingerprint = o.fingerprint
	} else if prev != nil {
		e.Serial, e.NotBefore, e.NotAfter, e.RenewAt = prev.Serial, prev.NotBefore, prev.NotAfter, prev.RenewAt
		e.Fingerprint = prev.Fingerprint
	}
	return e
}

// failuresOf is what acting on a certificate failed to do, by target key.
func failuresOf(o *outcome) inventory.Failures {
	var failures inventory.Failures
	if o.err != nil {
		failures = append(failures, inventory.Failure{Err: o.err.Error()})
	}
	sorted := slices.SortedFunc(slices.Values(o.written), func(a, b write) int { return strings.Compare(a.key, b.key) })
	for _, w := range sorted {
		if w.err != nil {
			failures = append(failures, inventory.Failed(w.key, w.err))
		}
	}
	return failures
}

// markFailing records a failure on e: since when, how often, and when to
// try again — never, for a permanent failure, until what it was for changes.
func (p *Pass) markFailing(e, prev *inventory.Entry, d *render.Desired, issueErr error, failures inventory.Failures, now time.Time) {
	since, r := now, e.Edit()
	if prev != nil && prev.FailingSince() != nil {
		since, r.Attempts = *prev.FailingSince(), prev.Attempts()
	}
	r.FailingSince, r.Failures = &since, failures
	r.Attempts++
	r.FailureKind = cmp.Or(inventory.KindOf(issueErr), inventory.Transient) // a failed write is transient
	if r.FailureKind == inventory.Permanent {
		// Retrying cannot help: wait for the declaration or the catalog to change.
		r.PermanentFor = decide.FailureKey(d, p.Catalog)
	} else if delay := decide.RetryDelayFor(p.Catalog.Issuers[d.Certificate.Spec.Issuer], r.Attempts, p.RetryBackoff,
		p.MaxRetryBackoff, backend.RetryAfter(issueErr)); delay > 0 {
		retry := now.Add(delay)
		r.RetryAt = &retry
	}
}

// audit logs one event per target acted on: what was done, or what failed.
func (p *Pass) audit(res *render.Result, c *decide.Certificate, o *outcome, now time.Time) []error {
	d := c.Desired
	action := c.Action()
	var errs []error
	for _, td := range c.Targets {
		werr, tried := o.written.err(td.Target.Key), o.written.tried(td.Target.Key)
		recordOnly := c.Record && td.Reason == decide.NotRecorded && !tried
		if !tried && o.err == nil && !recordOnly {
			continue
		}
		ev := inventory.Event{Time: now, Action: action, Certificate: d.ID, Target: td.Target.Key, Reason: string(td.Reason),
			Serial: o.serial, Issuer: d.Certificate.Spec.Issuer, Revision: res.Revision.String(), Author: res.Revision.Author, Actor: p.Actor}
		if o.err == nil {
			na := o.notAfter
			ev.NotAfter = &na
		}
		switch {
		case o.err != nil:
			ev.Action, ev.Error = action+"-failed", o.err.Error()
		case werr != nil:
			ev.Action, ev.Error = action+"-failed", werr.Error()
		case recordOnly:
			ev.Action = "record"
		case !c.Issue:
			ev.Action = "update"
		}
		if err := p.Audit.Log(ev); err != nil {
			errs = append(errs, fmt.Errorf("writing the audit log: %w", err))
		}
	}
	return errs
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}
