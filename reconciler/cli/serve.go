package cli

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/memlimit"
	"github.com/certfleet/certfleet/reconciler/serve"
	"github.com/certfleet/certfleet/schemas"
)

func serveCommand() *cobra.Command {
	var (
		config      string
		leaderElect bool
		listen      string
		logFormat   string
		shardName   string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: watch the repository, reconcile on push and on time, serve metrics and health",
		Long: `Run certfleet as a long-lived process. It polls the source at its interval
(listing the ref; it transfers nothing when it has not moved), reconciles at
once on a push (POST /hooks/git, verified with the X-Hub-Signature-256 HMAC of
webhook.secretFile), and schedules each next pass at the earliest of the
interval, the earliest renewal and the earliest retry of a failing
certificate (capped exponential backoff). It keeps the last good revision when
a fetch fails or a revision does not render, and says so in /report and the
metrics. SIGTERM lets the pass in flight go on for shutdownGrace (25 s), then
cancels it: calls in flight return, no issuance or write starts, no new pass
starts, and the process exits. Every write is atomic, so no target is left
half-written.

With --leader-elect (or leaderElection.enabled), replicas share a Kubernetes
Lease and only its holder acts; one that loses the lease stops at once.

With --shard (or shard:, and sharding.shards), the process is one shard of a
larger fleet: it renders the whole revision but observes, decides and acts on
its shard's certificates only (label certfleet.dev/shard, else a hash of the
certificate's ID over sharding.shards), elects its leader on a Lease of its
own (<leaderElection.name>-<shard>), and hands certificates over to other
shards through the inventory without reissuing them.

Endpoints: /healthz, /readyz (after the first pass; standbys are ready),
/metrics, /report (JSON; ?format=markdown), /hooks/git, and the fleet page
(/, /certificate?id=): off loopback, / and /report need
"Authorization: Bearer <http.tokenFile>".`,
		Example: `  certfleet serve --config /etc/certfleet/certfleet.yaml --leader-elect`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := serve.LoadConfig(config)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("shard") {
				if err := serve.WithShard(cfg, shardName); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("leader-elect") {
				cfg.LeaderElection.Enabled = leaderElect
			}
			cfg.Listen = cmp.Or(listen, cfg.Listen, serve.DefaultListen)
			var handler slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			if logFormat == "json" {
				handler = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			}
			log := slog.New(handler)
			d, err := serve.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer d.Close()
			d.Actor = actor()
			return runDaemon(cmd.Context(), d, cfg, log)
		},
	}
	cmd.Flags().StringVar(&config, "config", "certfleet.yaml", "the daemon's configuration (schemas/jsonschema/serveconfig.json)")
	cmd.Flags().BoolVar(&leaderElect, "leader-elect", false, "act only while holding the Kubernetes Lease (default: leaderElection.enabled)")
	cmd.Flags().StringVar(&listen, "listen", "", "HTTP address (default: listen in the configuration, else :8080)")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&shardName, "shard", "", "act as this shard of sharding.shards (default: shard in the configuration; none: unsharded)")
	return cmd
}

// runDaemon serves HTTP and runs the daemon (under the lease, when leader
// election is on) until ctx is done.
func runDaemon(ctx context.Context, d *serve.Daemon, cfg *schemas.ServeConfig, log *slog.Logger) error {
	secret, err := backend.ReadSecretFile(cfg.Webhook.SecretFile)
	if err != nil {
		return err
	}
	if d.Token, err = backend.ReadSecretFile(cfg.HTTP.TokenFile); err != nil {
		return err
	}
	var elector *serve.Elector
	standby := func() bool { return false }
	if cfg.LeaderElection.Enabled {
		elector = serve.NewElector(d, serve.AdvertisedIdentity(cfg.Listen))
		standby = elector.Standby
	}
	ln, err := serve.Listen(cfg.Listen, cfg.HTTP)
	if err != nil {
		return err
	}
	srv := serve.NewServer(d.Handler([]byte(secret), standby), cfg.HTTP)
	defer backend.HTTP01.Serving()()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	// On the signal the listener closes at once and open requests
	// have the pass's grace to finish, so stopping the server adds
	// nothing to the time the process takes to exit.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		log.Info("stopping", "cause", context.Cause(ctx).Error(), "grace", d.Grace.String())
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.Grace)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("certfleet serve", "listen", ln.Addr().String(), "source", cfg.Source.URL, "leaderElection", cfg.LeaderElection.Enabled, "memoryLimit", memlimit.Current())
	if elector != nil {
		err = elector.Run(ctx)
	} else {
		err = d.Run(ctx)
	}
	select {
	case <-stopped:
	default:
		_ = srv.Close() // the pass is over: cut the requests still open
	}
	log.Info("stopped")
	return err
}
