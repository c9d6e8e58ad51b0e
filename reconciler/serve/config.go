// Package serve is certfleet's daemon: it watches the repository (a poll at
// its interval, or at once on a push webhook), runs reconcile passes,
// schedules the next one at the earliest of the interval, the earliest
// renewal and the earliest retry, keeps the last good revision when a fetch
// fails or a revision does not render, and serves /healthz, /readyz,
// /metrics, /report and /hooks/git. With leader election only the replica
// holding a Kubernetes Lease acts.
package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/reconciler/shard"
	"github.com/certfleet/certfleet/schemas"
)

// Defaults of certfleet.yaml.
const (
	DefaultInterval        = time.Minute
	DefaultListen          = ":8080"
	DefaultRetryBackoff    = 30 * time.Second
	DefaultMaxRetryBackoff = time.Hour
	DefaultLeaseNamespace  = "certfleet-system"
	DefaultLeaseName       = "certfleet"
	DefaultLeaseDuration   = 15 * time.Second
	// DefaultShutdownGrace fits under Kubernetes' default
	// terminationGracePeriodSeconds (30 s), leaving time to exit.
	DefaultShutdownGrace = 25 * time.Second

	// The listener's bounds (http in certfleet.yaml). A webhook or a scrape
	// takes milliseconds: these only cut off clients that stall.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxConnections    = 256
	// DefaultMaxBodyBytes is GitHub's cap on a webhook payload (25 MB).
	DefaultMaxBodyBytes = 25 << 20
)

// LoadConfig reads certfleet.yaml strictly: an unknown field is an error
// naming it.
func LoadConfig(path string) (*schemas.ServeConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c schemas.ServeConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := check(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func check(c *schemas.ServeConfig) error {
	var problems []string
	if c.Kind != "" && c.Kind != schemas.KindServeConfig {
		problems = append(problems, fmt.Sprintf("kind is %q; want %s", c.Kind, schemas.KindServeConfig))
	}
	if c.Source.URL == "" {
		problems = append(problems, "source.url is required: the repository to watch")
	}
	for field, d := range map[string]schemas.Duration{"source.interval": c.Source.Interval, "renewalJitter": c.RenewalJitter,
		"retryBackoff": c.RetryBackoff, "maxRetryBackoff": c.MaxRetryBackoff, "leaderElection.leaseDuration": c.LeaderElection.LeaseDuration,
		"leaderElection.renewDeadline": c.LeaderElection.RenewDeadline, "leaderElection.retryPeriod": c.LeaderElection.RetryPeriod,
		"shutdownGrace": c.ShutdownGrace, "http.readHeaderTimeout": c.HTTP.ReadHeaderTimeout, "http.readTimeout": c.HTTP.ReadTimeout,
		"http.writeTimeout": c.HTTP.WriteTimeout, "http.idleTimeout": c.HTTP.IdleTimeout} {
		if _, err := d.Parse(); err != nil {
			problems = append(problems, field+": "+err.Error())
		}
	}
	if c.IssueRate < 0 {
		problems = append(problems, fmt.Sprintf("issueRate is %g; want issuances per second, above 0 (or 0 for no limit)", c.IssueRate))
	}
	switch c.Backend.Type {
	case "", "local", "vault":
	default:
		problems = append(problems, fmt.Sprintf("backend.type is %q; use vault or local", c.Backend.Type))
	}
	for i, r := range c.AllowedDirRoots {
		if !filepath.IsAbs(r) {
			problems = append(problems, fmt.Sprintf("allowedDirRoots[%d] is %q; give an absolute directory, such as /etc/tls", i, r))
		}
	}
	if c.HTTP.MaxConnections < 0 {
		problems = append(problems, fmt.Sprintf("http.maxConnections is %d; use a positive number (default %d)", c.HTTP.MaxConnections, DefaultMaxConnections))
	}
	if c.HTTP.MaxBodyBytes < 0 {
		problems = append(problems, fmt.Sprintf("http.maxBodyBytes is %d; use a positive number of bytes (default %d)", c.HTTP.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	if c.MaxPruneShare < 0 || c.MaxPruneShare > 1 {
		problems = append(problems, "maxPruneShare must be between 0 and 1")
	}
	me := c.Shard
	if me == "" && c.Sharding != nil && len(c.Sharding.Shards) > 0 {
		me = c.Sharding.Shards[0] // --shard may name it; New refuses to start without one
	}
	problems = append(problems, Sharding(c).Check(me)...)
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// Sharding is the shard configuration of certfleet.yaml (empty: unsharded).
func Sharding(c *schemas.ServeConfig) shard.Config {
	if c.Sharding == nil {
		return shard.Config{}
	}
	return shard.Config{Shards: c.Sharding.Shards, By: c.Sharding.By, Default: c.Sharding.Default}
}

// durationOr parses a duration that check() accepted, or returns def.
func durationOr(d schemas.Duration, def time.Duration) time.Duration {
	if v, _ := d.Parse(); v > 0 {
		return v
	}
	return def
}
