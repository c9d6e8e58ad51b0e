// Package shard says which shard of a sharded fleet a certificate belongs
// to, and when a shard may act on it: pure functions, no I/O. Every shard
// renders the whole revision; these decide which share it observes,
// decides and acts on, and how a certificate moves between shards without
// a second issuance and without two shards acting on it at once.
//
// Membership is Flux-like: the label certfleet.dev/shard on the manifest
// wins; otherwise, with by: hash, rendezvous (highest random weight)
// hashing of the certificate's ID over the declared shards, so adding a
// shard moves about 1/n of the certificates and no certificate moves
// between two shards that were there before; with by: label, an unlabelled
// certificate goes to the default shard. A certificate no declared shard
// claims is Unclaimed: reported, never dropped silently, never pruned.
package shard

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
)

// Label names a certificate's shard on its manifest (as Flux's
// sharding.fluxcd.io/key).
const Label = "certfleet.dev/shard"

// The ways certificates without the label are spread.
const (
	// ByHash spreads them over the declared shards by rendezvous hashing of their IDs.
	ByHash = "hash"
	// ByLabel gives them to the default shard (unclaimed when there is none).
	ByLabel = "label"
)

// Config is the sharding every shard of a fleet is given (the same for all).
type Config struct {
	// Shards are the declared shards.
	Shards []string
	// By is ByHash or ByLabel (default ByHash).
	By string
	// Default takes unlabelled certificates with ByLabel ("": none does).
	Default string
}

// Check reports what is wrong with a sharding configuration for shard me,
// in the words of certfleet.yaml ("" when me is unsharded and c is empty).
func (c Config) Check(me string) []string {
	var problems []string
	if me == "" && len(c.Shards) == 0 {
		return nil
	}
	if me != "" && len(c.Shards) == 0 {
		problems = append(problems, fmt.Sprintf("shard is %q but sharding.shards is empty; declare the fleet's shards, such as sharding: {shards: [%s, b, c]}", me, me))
	}
	if me == "" && len(c.Shards) > 0 {
		problems = append(problems, "sharding.shards is set but shard is not; name this process's shard (shard: in certfleet.yaml or --shard)")
	}
	seen := map[string]bool{}
	for i, s := range c.Shards {
		if !ValidName(s) {
			problems = append(problems, fmt.Sprintf("sharding.shards[%d] is %q; use a DNS label: lower-case letters, digits and '-', at most 50 characters", i, s))
		}
		if seen[s] {
			problems = append(problems, fmt.Sprintf("sharding.shards[%d] is %q a second time; declare each shard once", i, s))
		}
		seen[s] = true
	}
	if me != "" && len(c.Shards) > 0 && !seen[me] {
		problems = append(problems, fmt.Sprintf("shard is %q, which sharding.shards (%s) does not declare; add it there", me, strings.Join(c.Shards, ", ")))
	}
	switch c.By {
	case "", ByHash:
		if c.Default != "" {
			problems = append(problems, "sharding.default applies to by: label only; with by: hash every unlabelled certificate is hashed over the shards")
		}
	case ByLabel:
		if c.Default != "" && !seen[c.Default] {
			problems = append(problems, fmt.Sprintf("sharding.default is %q, which sharding.shards does not declare", c.Default))
		}
	default:
		problems = append(problems, fmt.Sprintf("sharding.by is %q; use hash or label", c.By))
	}
	return problems
}

// ValidName reports whether s can name a shard: it becomes part of a Lease
// name and of inventory page names, so a short DNS label.
func ValidName(s string) bool {
	if s == "" || len(s) > 50 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// Of is the shard a certificate belongs to, from its ID and its manifest's
// labels; ok is false when no declared shard claims it (the label names an
// undeclared shard, or by: label without a default and no label). An
// unsharded configuration (no shards) gives every certificate to "".
func (c Config) Of(id string, labels map[string]string) (shard string, ok bool) {
	if len(c.Shards) == 0 {
		return "", true
	}
	if l, has := labels[Label]; has {
		return l, slices.Contains(c.Shards, l)
	}
	if c.By == ByLabel {
		return c.Default, c.Default != ""
	}
	return Rendezvous(id, c.Shards), true
}

// Rendezvous is the shard with the highest weight for id: the weight of a
// pair is a hash of both, so each certificate's order of preference over
// the shards is fixed, and adding a shard takes from each other shard only
// the certificates that now prefer the newcomer (about 1/n of them).
func Rendezvous(id string, shards []string) string {
	best, bestW := "", uint64(0)
	for _, s := range shards {
		w := weight(s, id)
		if best == "" || w > bestW || (w == bestW && s < best) {
			best, bestW = s, w
		}
	}
	return best
}

// weight mixes FNV-1a of shard and id through a 64-bit finaliser
// (splitmix64), so nearby names still spread evenly.
func weight(shard, id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(shard))
	h.Write([]byte{0})
	h.Write([]byte(id))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Turn is what shard may do with one certificate in this pass.
type Turn string

const (
	// Act: the shard owns the certificate, or takes it over (Adopt).
	Act Turn = "Act"
	// Adopt: the certificate is the shard's and its previous owner
	// released it (or is gone): the shard records itself as the owner and
	// acts. A delivered certificate that is still valid is kept, not reissued.
	Adopt Turn = "Adopt"
	// Release: the shard owns it, but it belongs elsewhere now: the shard
	// stops acting and records the release, leaving every target as it is.
	Release Turn = "Release"
	// Wait: the certificate is the shard's, but its owner has not released
	// it yet and is alive: nothing is done until it does.
	Wait Turn = "Wait"
	// Skip: another shard's business.
	Skip Turn = "Skip"
	// Claim: a certificate of the shard's that the inventory does not know
	// yet (never issued): the shard records a claim and issues from its
	// next pass on, once a fresh read shows its claim still holds. Two
	// shards whose views differ for a while (a revision that moved a new
	// certificate's label, a rollout of a new shard list) may both claim
	// it; only the claim read back as current goes on to issue.
	Claim Turn = "Claim"
)

// Owner is what the inventory records of a certificate's ownership.
type Owner struct {
	// Recorded is false when the inventory has no entry (never issued).
	Recorded bool
	// Shard owns the certificate ("": the unsharded process).
	Shard string
	// Released is true once Shard gave it up.
	Released bool
}

// Decide is shard me's turn on a certificate that belongs to claimant
// (claimed false: to no shard) and is recorded as owner. alive reports
// whether a shard has a live leader (its Lease is held and current): a
// shard that is gone never releases, so its certificates are taken over
// once its lease has expired — before that, waiting is what keeps two
// shards from acting on one certificate.
func Decide(me, claimant string, claimed bool, owner Owner, alive func(shard string) bool) Turn {
	mine := claimed && claimant == me
	switch {
	case !owner.Recorded:
		switch {
		case mine && me == "":
			return Act // unsharded: nobody to race with
		case mine:
			return Claim
		}
		return Skip
	case owner.Shard == me && !owner.Released:
		if mine {
			return Act
		}
		return Release
	case !mine:
		return Skip
	case owner.Released:
		return Adopt
	case owner.Shard != me && alive != nil && !alive(owner.Shard):
		return Adopt
	}
	// owner.Shard == me && Released is handled above (Adopt: it came back);
	// here another live shard still owns it.
	return Wait
}
