package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/shard"
)

// shardFlags make a one-shot pass one shard's, as `certfleet serve --shard`
// with sharding: in certfleet.yaml makes the daemon's: the same
// shard.Config, checked by the same shard.Config.Check.
type shardFlags struct {
	name string
	cfg  shard.Config
}

func (f *shardFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "shard", "", "act as this shard of --shards: observe, decide and act on its certificates only (default: none, the whole fleet)")
	fl.StringSliceVar(&f.cfg.Shards, "shards", nil, "the fleet's shards, comma-separated (sharding.shards of certfleet serve's certfleet.yaml); with --shard")
	fl.StringVar(&f.cfg.By, "shard-by", shard.ByHash, "how certificates without the "+shard.Label+" label are spread: hash (over --shards) or label (to --shard-default)")
	fl.StringVar(&f.cfg.Default, "shard-default", "", "with --shard-by label: the shard of certificates without the label (default: none, they are unclaimed)")
}

// flagWords turns the words of certfleet.yaml in shard.Config.Check's
// messages into the flags' names.
var flagWords = strings.NewReplacer("sharding.shards", "--shards", "sharding.by", "--shard-by", "sharding.default", "--shard-default",
	"shard: in certfleet.yaml or --shard", "--shard")

// sharding is what a pass needs to act as the shard (nil: the whole fleet).
// It is not alive-aware: a one-shot pass has no Lease of its own to read
// others by, so it takes every owner to be alive and takes nothing over
// from a shard that is gone (certfleet serve with leader election does).
func (f *shardFlags) sharding() (*reconcile.Sharding, error) {
	switch {
	case f.name == "" && len(f.cfg.Shards) == 0:
		return nil, nil
	case f.name == "":
		return nil, fmt.Errorf("--shards is given without --shard: name the shard this pass acts as, one of %s", strings.Join(f.cfg.Shards, ", "))
	case len(f.cfg.Shards) == 0:
		return nil, fmt.Errorf("--shard %s needs the fleet's shards: add --shards, such as --shards %s,b,c (the sharding.shards of certfleet serve's certfleet.yaml; every shard must be given the same list)", f.name, f.name)
	}
	if problems := f.cfg.Check(f.name); len(problems) > 0 {
		return nil, fmt.Errorf("--shard %s: %s", f.name, flagWords.Replace(strings.Join(problems, "; ")))
	}
	return &reconcile.Sharding{Name: f.name, Config: f.cfg}, nil
}
