package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/fleetpage"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// passFlags configure a pass: where targets are and how to act.
type passFlags struct {
	src         sourceFlags
	cat         catalogFlags
	ref         string
	kubeconfig  string
	outputDir   string
	dirRoots    []string
	auditLog    string
	concurrency int
	issueRate   float64
	// keepSuperseded leaves superseded and pruned certificates unrevoked.
	keepSuperseded bool
	jitter         time.Duration
	// http01Listen is where one-shot runs answer ACME HTTP-01 challenges.
	http01Listen string
	// shard makes the pass one shard's (reconcile and drift register it).
	shard shardFlags
}

func (f *passFlags) register(cmd *cobra.Command) {
	f.src.register(cmd)
	f.cat.register(cmd, "local")
	fl := cmd.Flags()
	fl.StringVar(&f.ref, "ref", "", "the branch, tag or commit (default: the working tree of a local --source, main of a URL)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for clusters with kubeconfigContext credentials (default: $KUBECONFIG, then ~/.kube/config)")
	fl.StringVar(&f.outputDir, "output-dir", ".", "where relative directory targets are written")
	fl.StringArrayVar(&f.dirRoots, "allow-dir-root", nil, "an absolute directory that absolute directory target paths may lie under; repeatable (default: none, so absolute paths outside --output-dir are refused)")
	fl.StringVar(&f.auditLog, "audit-log", "", "JSON-lines audit log, appended to; - for standard output (default: audit.log in the local backend's directory, else certfleet-audit.log)")
	fl.IntVar(&f.concurrency, "concurrency", 8, "parallel issuances and writes")
	fl.StringVar(&f.http01Listen, "acme-http01-listen", "", "answer ACME issuers' HTTP-01 challenges on this address during the run, e.g. :80 (serve answers on its own listener)")
	fl.Float64Var(&f.issueRate, "issue-rate", 0, "cap issuances per second, so a renewal storm reaches the issuer at a pace it can take (default 0: unlimited)")
	fl.BoolVar(&f.keepSuperseded, "keep-superseded", false, "do not revoke certificates replaced for a spec or issuer change or an authority rotation, nor pruned ones (default false: revoked on the authority's CRL once the replacement is delivered, where the issuer stores certificates)")
	fl.DurationVar(&f.jitter, "renewal-jitter", schemas.MaxJitter, "spread renewals over at most this long (a tenth of renewBefore at most); 0 disables it")
}

// prepared is a pass ready to run on a rendered revision.
type prepared struct {
	pass     *reconcile.Pass
	result   *render.Result
	verdicts map[string]schemas.CertificateVerdict
	close    func()
	// catalog and auditLog are for status, which shows them.
	catalog  *schemas.Catalog
	auditLog string
}

// prepare opens the backend and the catalog, fetches and renders the
// source, and wires the targets. A fetch that fails stops here: nothing is
// decided, so nothing is pruned.
func (f *passFlags) prepare(cmd *cobra.Command) (*prepared, error) {
	ctx := cmd.Context()
	if f.cat.catalogFile != "" {
		return nil, fmt.Errorf("--catalog is for validate and plan; reconcile issues through a backend: use --backend")
	}
	if f.issueRate < 0 {
		return nil, fmt.Errorf("--issue-rate %g is negative: give issuances per second, such as 50 (or 0 for no limit)", f.issueRate)
	}
	for _, r := range f.dirRoots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("--allow-dir-root %q is not absolute: give an absolute directory, such as /etc/tls", r)
		}
	}
	sharding, err := f.shard.sharding()
	if err != nil {
		return nil, err
	}
	b, err := f.cat.openBackend(ctx)
	if err != nil {
		return nil, err
	}
	cat, err := backend.LoadCatalog(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog from %s: %w", b.Describe(), err)
	}
	snap, err := f.src.fetch(ctx, f.ref)
	if err != nil {
		return nil, err
	}
	// A shard holds only its share of what it renders (and evaluates that);
	// the snapshot is rendered once, so each file is let go once decoded.
	res := render.NewRenderer(render.WithOutputDir(f.outputDir), render.WithKeep(sharding.Keep()), render.WithRelease()).Render(snap, cat)
	ev := evaluate.New(cat, time.Now(), evaluate.WithCatalogMount(f.cat.vault.CatalogMount))
	verdicts := ev.ByID(res.Desired)
	notes(cmd, res, ev)

	audit, closeAudit, err := f.openAudit(cmd, b)
	if err != nil {
		return nil, err
	}
	if f.http01Listen != "" {
		stop, err := backend.ServeHTTP01(f.http01Listen)
		if err != nil {
			closeAudit()
			return nil, fmt.Errorf("--acme-http01-listen: %w", err)
		}
		closeAudit = func(close func()) func() { return func() { stop(); close() } }(closeAudit)
	}
	dir := &target.Directory{Root: f.outputDir, AllowedRoots: f.dirRoots}
	p := reconcile.NewPass(b, cat, &cluster.Connector{Kubeconfig: f.kubeconfig, Timeout: f.cat.vault.Timeout}, dir, audit)
	p.Actor, p.MaxJitter, p.Concurrency, p.IssueRate = actor(), f.jitter, f.concurrency, f.issueRate
	p.KeepSuperseded, p.Shard = f.keepSuperseded, sharding
	p.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if colorFor(cmd.ErrOrStderr()) {
		p.Progress = cmd.ErrOrStderr()
	}
	return &prepared{pass: p, result: res, verdicts: verdicts, close: closeAudit, catalog: cat, auditLog: inventory.AuditPath(f.auditLog, b)}, nil
}

func (f *passFlags) openAudit(cmd *cobra.Command, b backend.Backend) (*inventory.Audit, func(), error) {
	path := inventory.AuditPath(f.auditLog, b)
	if path == "-" {
		return inventory.NewAudit(cmd.OutOrStdout()), func() {}, nil
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return inventory.NewAudit(file), func() { file.Close() }, nil
}

func actor() string {
	name := "certfleet"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func reconcileCommand() *cobra.Command {
	var (
		f             passFlags
		once, dry     bool
		prune, force  bool
		adopt         bool
		destroyKV     bool
		maxPruneShare float64
		output        string
	)
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Issue, deliver and renew every declared certificate: one pass",
		Long: `One pass of certfleet's main job: render the certificates declared in --source,
observe every target (Kubernetes Secrets, Vault KV, directories), decide per
target why it is not in sync, issue through the backend (the private key is
made here and never travels), deliver, record the inventory and the audit log,
and report what was done, by reason.

A working certificate is never replaced by a failed result. A declared target
that holds something without certfleet's marks for that certificate (a Secret,
KV secret or directory someone else wrote) is reported as TakenOver and left
alone unless --adopt. Orphans (targets
certfleet manages that no certificate declares any more) are only deleted with
--prune, and never when the revision renders nothing or when more than
--max-prune-share of the managed targets would go, unless --force; only the
certificates declared inside --path (and not excluded by .certfleetignore) can
be pruned.

One acting pass runs per backend at a time: a second one is refused with the
name of the process holding the lock.

With --shard and --shards (as certfleet serve's --shard with sharding: in
certfleet.yaml), the pass is one shard's: it renders the whole revision but
holds, observes and acts on its shard's certificates only (label
certfleet.dev/shard, else a hash of the certificate's ID over --shards), and
takes its own lock, so the shards' passes run side by side. Every shard must
be given the same --shards. A one-shot shard takes nothing over from a shard
that is gone (only certfleet serve reads the shards' Leases).

Exit codes: 0 done, 1 something failed (the next pass retries it), 3 invalid
manifests or denied certificates were left out.`,
		Example: `  certfleet reconcile --once --source ./fleet --backend local --state-dir ./state --output-dir ./tls
  certfleet reconcile --once --source https://git.example.com/fleet.git --backend vault --prune`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !once {
				return fmt.Errorf("reconcile runs one pass: pass --once (the daemon is `certfleet serve`)")
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("unknown output format %q: use text or json", output)
			}
			ctx := cmd.Context()
			p, err := f.prepare(cmd)
			if err != nil {
				return interrupted(ctx, err)
			}
			defer p.close()
			p.pass.DryRun, p.pass.Prune, p.pass.Force, p.pass.MaxPruneShare = dry, prune, force, maxPruneShare
			p.pass.Adopt, p.pass.Vault.DestroyHistory = adopt, destroyKV
			p.pass.NoState = true // the report is printed; nothing reads the state of every target
			rep, err := p.pass.Run(ctx, p.result, p.verdicts)
			if err != nil {
				return interrupted(ctx, err)
			}
			for _, e := range p.result.Errors {
				rep.Notes = append(rep.Notes, "left out, invalid: "+e.Error())
			}
			denied := 0
			for _, v := range p.verdicts {
				if !v.Allowed {
					denied++
				}
			}
			if err := writeReport(cmd.OutOrStdout(), output, rep, rep.Text); err != nil {
				return err
			}
			switch {
			case ctx.Err() != nil:
				return interrupted(ctx, nil)
			case len(rep.Failures) > 0:
				return WithExitCode(ExitError)
			case len(p.result.Errors) > 0 || denied > 0:
				return WithExitCode(3)
			}
			return nil
		},
	}
	f.register(cmd)
	f.shard.register(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&once, "once", false, "run one pass and exit")
	fl.BoolVar(&dry, "dry-run", false, "decide and report, change nothing (default false)")
	fl.BoolVar(&prune, "prune", false, "delete orphaned targets (default false)")
	fl.BoolVar(&force, "force", false, "prune even when the safety limits refuse (default false)")
	fl.Float64Var(&maxPruneShare, "max-prune-share", 0.5, "the largest share of managed targets one pass may prune without --force")
	fl.BoolVar(&destroyKV, "prune-kv-history", false, "pruning a Vault KV target destroys its metadata and every version; without it only the checked current version is soft-deleted, and Vault keeps the history (default false)")
	fl.BoolVar(&adopt, "adopt", false, "write over declared targets that hold something certfleet did not write (TakenOver); without it they are left alone (default false)")
	fl.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// interrupted explains a pass cut short by a signal (SIGTERM, Ctrl-C); err
// is returned as it is when the command was not interrupted.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("interrupted (%v): the pass stopped before it finished; every target it wrote is complete, "+
		"and no issuance or write started after the signal; run it again to finish", context.Cause(ctx))
}

func writeReport(w io.Writer, format string, v any, text func(io.Writer) error) error {
	if format == "json" {
		if s, ok := v.(interface{ WriteJSON(io.Writer) error }); ok {
			return s.WriteJSON(w) // a large report, written a part at a time
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(w)
}

func driftCommand() *cobra.Command {
	var (
		f      passFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Compare what Git declares, what was issued and what the targets hold; change nothing",
		Long: `A three-way drift report, changing nothing: desired (the certificates Git
declares) against issued (the inventory) against delivered (what each target
holds): Missing, SpecChanged, ModifiedOutOfBand, Expiring (renewal time passed),
Expired, Orphaned, and Unmanaged — TLS Secrets in target clusters certfleet does
not manage (the sprawl), with their expiry. With --shard and --shards, the
drift of one shard's certificates (see reconcile --help).

Exit codes: 0 in sync, 2 drift, 1 could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" && output != "markdown" && output != "html" {
				return fmt.Errorf("unknown output format %q: use text, json, markdown or html", output)
			}
			p, err := f.prepare(cmd)
			if err != nil {
				return err
			}
			defer p.close()
			rep, err := p.pass.Drift(cmd.Context(), p.result, p.verdicts)
			if err != nil {
				return err
			}
			text := rep.Text
			switch output {
			case "markdown":
				text, output = rep.Markdown, "text"
			case "html":
				text = func(w io.Writer) error { return fleetpage.DriftPage(w, rep, p.verdicts) }
			}
			if err := writeReport(cmd.OutOrStdout(), output, rep, text); err != nil {
				return err
			}
			switch {
			case rep.Drifted():
				return WithExitCode(2)
			case len(rep.Failures) > 0:
				return WithExitCode(ExitError)
			}
			return nil
		},
	}
	f.register(cmd)
	f.shard.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json, markdown or html (one self-contained page, for CI artifacts)")
	return cmd
}
