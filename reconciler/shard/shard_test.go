package shard

import (
	"fmt"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	abc := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name      string
		cfg       Config
		id        string
		labels    map[string]string
		want      string
		wantClaim bool
	}{
		{"an unsharded fleet gives everything to the one process", Config{}, "x", map[string]string{Label: "b"}, "", true},
		{"the label wins over the hash", Config{Shards: abc}, "x", map[string]string{Label: "c"}, "c", true},
		{"a label naming an undeclared shard is unclaimed", Config{Shards: abc}, "x", map[string]string{Label: "z"}, "z", false},
		{"without a label the hash decides", Config{Shards: abc}, "x", nil, Rendezvous("x", abc), true},
		{"by label: an unlabelled certificate goes to the default", Config{Shards: abc, By: ByLabel, Default: "b"}, "x", nil, "b", true},
		{"by label without a default: unlabelled is unclaimed", Config{Shards: abc, By: ByLabel}, "x", map[string]string{"team": "x"}, "", false},
		{"by label: the label still wins", Config{Shards: abc, By: ByLabel, Default: "b"}, "x", map[string]string{Label: "a"}, "a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.cfg.Of(tc.id, tc.labels)
			if got != tc.want || ok != tc.wantClaim {
				t.Fatalf("Of = %q, %v; want %q, %v", got, ok, tc.want, tc.wantClaim)
			}
		})
	}
}

// TestRendezvousSpreadsAndMovesLittle checks the two properties resharding
// relies on: the shards get even shares, and adding a fourth shard moves
// about a quarter of the certificates, each one to the newcomer only.
func TestRendezvousSpreadsAndMovesLittle(t *testing.T) {
	const n = 20000
	three := []string{"a", "b", "c"}
	four := []string{"a", "b", "c", "d"}
	counts := map[string]int{}
	moved := 0
	for i := range n {
		id := fmt.Sprintf("team-%d/svc-%d", i%97, i)
		before, after := Rendezvous(id, three), Rendezvous(id, four)
		counts[before]++
		if before != after {
			moved++
			if after != "d" {
				t.Fatalf("%s moved from %s to %s: only moves to the new shard are allowed", id, before, after)
			}
		}
	}
	for _, s := range three {
		if share := float64(counts[s]) / n; share < 0.30 || share > 0.37 {
			t.Errorf("shard %s holds %.3f of the certificates; want about 1/3", s, share)
		}
	}
	if frac := float64(moved) / n; frac < 0.22 || frac > 0.28 {
		t.Errorf("adding a fourth shard moved %.3f of the certificates; want about 1/4", frac)
	}
	// Removing a shard moves only its own certificates.
	for i := range 2000 {
		id := fmt.Sprintf("c%d", i)
		if before := Rendezvous(id, four); before != "b" && Rendezvous(id, []string{"a", "c", "d"}) != before {
			t.Fatalf("%s moved off %s although only b was removed", id, before)
		}
	}
}

func TestDecide(t *testing.T) {
	alive := func(s string) bool { return s != "gone" }
	for _, tc := range []struct {
		name     string
		me       string
		claimant string
		claimed  bool
		owner    Owner
		alive    func(string) bool
		want     Turn
	}{
		{"a new certificate of mine: claim it first", "a", "a", true, Owner{}, alive, Claim},
		{"a new certificate of the unsharded process: act", "", "", true, Owner{}, alive, Act},
		{"claimed by me, never issued: act", "a", "a", true, Owner{Recorded: true, Shard: "a"}, alive, Act},
		{"claimed by another live shard, mine by my view: wait", "a", "a", true, Owner{Recorded: true, Shard: "b"}, alive, Wait},
		{"a new certificate of another shard: skip", "a", "b", true, Owner{}, alive, Skip},
		{"an unclaimed new certificate: nobody acts", "a", "z", false, Owner{}, alive, Skip},
		{"mine and owned by me: act", "a", "a", true, Owner{Recorded: true, Shard: "a"}, alive, Act},
		{"owned by me but relabelled away: release", "a", "b", true, Owner{Recorded: true, Shard: "a"}, alive, Release},
		{"owned by me but now unclaimed: release", "a", "z", false, Owner{Recorded: true, Shard: "a"}, alive, Release},
		{"mine, owned by a live shard that has not released: wait", "b", "b", true, Owner{Recorded: true, Shard: "a"}, alive, Wait},
		{"mine, released by its previous owner: adopt", "b", "b", true, Owner{Recorded: true, Shard: "a", Released: true}, alive, Adopt},
		{"mine, owned by a shard whose lease expired: adopt", "b", "b", true, Owner{Recorded: true, Shard: "gone"}, alive, Adopt},
		{"mine, without liveness facts: wait", "b", "b", true, Owner{Recorded: true, Shard: "a"}, nil, Wait},
		{"mine again after I released it: adopt", "a", "a", true, Owner{Recorded: true, Shard: "a", Released: true}, alive, Adopt},
		{"released by me and someone else's: skip", "a", "b", true, Owner{Recorded: true, Shard: "a", Released: true}, alive, Skip},
		{"owned by the unsharded process, now mine: wait while it lives", "a", "a", true, Owner{Recorded: true}, alive, Wait},
		{"another shard's, owned by a third: skip", "a", "b", true, Owner{Recorded: true, Shard: "c"}, alive, Skip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.me, tc.claimant, tc.claimed, tc.owner, tc.alive); got != tc.want {
				t.Fatalf("Decide = %s; want %s", got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		me   string
		cfg  Config
		want string // a fragment of the problems; "" for none
	}{
		{"unsharded", "", Config{}, ""},
		{"a declared shard", "a", Config{Shards: []string{"a", "b"}}, ""},
		{"a shard without the list", "a", Config{}, "sharding.shards is empty"},
		{"the list without a shard", "", Config{Shards: []string{"a"}}, "shard is not"},
		{"an undeclared shard", "x", Config{Shards: []string{"a", "b"}}, `shard is "x", which sharding.shards (a, b) does not declare`},
		{"a bad name", "a", Config{Shards: []string{"a", "B_1"}}, `sharding.shards[1] is "B_1"; use a DNS label`},
		{"a duplicate", "a", Config{Shards: []string{"a", "a"}}, "a second time"},
		{"an unknown mode", "a", Config{Shards: []string{"a"}, By: "random"}, `sharding.by is "random"`},
		{"a default with hashing", "a", Config{Shards: []string{"a"}, Default: "a"}, "applies to by: label only"},
		{"an undeclared default", "a", Config{Shards: []string{"a"}, By: ByLabel, Default: "q"}, `sharding.default is "q"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(tc.cfg.Check(tc.me), "; ")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("Check = %q; want it to say %q", got, tc.want)
			}
		})
	}
}
