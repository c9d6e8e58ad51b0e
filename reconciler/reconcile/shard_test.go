package reconcile_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/shard"
)

// shardPass is e's pass as shard me of shards; alive says which shards' leaders live.
func (e *env) shardPass(me string, shards []string, alive map[string]bool) *reconcile.Pass {
	p := e.pass()
	p.Prune = true
	p.Shard = &reconcile.Sharding{Name: me, Config: shard.Config{Shards: shards}, Alive: func(s string) bool { return alive[s] }}
	return p
}

// issuances counts the audit log's issuances per certificate.
func (e *env) issuances() map[string]int {
	out := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(e.audit.String()), "\n") {
		var ev inventory.Event
		if line == "" || json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		if ev.Action == "issue" || ev.Action == "renew" || ev.Action == "reissue" {
			out[ev.Certificate]++
		}
	}
	return out
}

func (e *env) owners() map[string]*inventory.Entry {
	e.t.Helper()
	inv, err := inventory.Load(e.t.(*testing.T).Context(), e.backend)
	if err != nil {
		e.t.Fatal(err)
	}
	return inv
}

func (e *env) serialOf(name string) string {
	e.t.Helper()
	return pki.Serial(e.dirLeaf(name).SerialNumber)
}

// Three shards share one repository and one backend: each certificate is
// issued exactly once, by its shard; one labelled for an undeclared shard
// is reported and issued by nobody; a relabelled certificate moves only
// once its owner has released it, and without a new certificate; a shard
// added takes its share without reissuing; a shard that is gone (its lease
// expired) has its certificates taken over; a shard prunes only what it owns.
func TestShardsShareTheFleetAndHandCertificatesOver(t *testing.T) {
	e := newEnv(t)
	labels := map[string]string{"la": "a", "lb": "b", "lc": "c", "stray": "z"}
	for i := range 9 {
		labels[fmt.Sprintf("h%d", i)] = ""
	}
	files := testbed.ShardFleet(labels)
	three := []string{"a", "b", "c"}
	alive := map[string]bool{"a": true, "b": true, "c": true, "d": true}
	shardOf := func(name string, shards []string) string {
		if l := labels[name]; l != "" {
			return l
		}
		return shard.Rendezvous("payments/"+name, shards)
	}

	// 1. Every shard claims its own share of the new certificates, then issues it, once.
	share := func(s string) int {
		n := 0
		for name := range labels {
			if shardOf(name, three) == s {
				n++
			}
		}
		return n
	}
	for _, s := range three {
		rep := e.runWith(e.shardPass(s, three, alive), files)
		if len(rep.Actions) != 0 || rep.Shard == nil || len(rep.Shard.Claimed) != share(s) {
			t.Fatalf("shard %s's first pass: actions %v, report %+v; want %d claims and no issuance", s, rep.Actions, rep.Shard, share(s))
		}
	}
	// The claims hold against a shard with another view (a shard list not
	// rolled out everywhere yet): x, alone in its list, takes every
	// unlabelled certificate for its own, and waits for their claimants.
	if rep := e.runWith(e.shardPass("x", []string{"x"}, alive), files); len(rep.Actions) != 0 || len(rep.Shard.Waiting) != 9 {
		t.Fatalf("a shard with another view issued claimed certificates: actions %v, waiting %v", rep.Actions, rep.Shard.Waiting)
	}
	for _, s := range three {
		rep := e.runWith(e.shardPass(s, three, alive), files)
		want := share(s)
		if rep.Actions["issue"] != want || rep.Shard == nil || rep.Shard.Owned != want {
			t.Fatalf("shard %s issued %d (owns %v); want %d: %v", s, rep.Actions["issue"], rep.Shard, want, rep.Failures)
		}
		if s == "a" {
			if len(rep.Shard.Unclaimed) != 1 || rep.Shard.Unclaimed[0].Certificate != "payments/stray" || rep.Reasons[decide.Unclaimed] != 1 {
				t.Fatalf("the reporter shard did not report payments/stray as unclaimed: %+v, reasons %v", rep.Shard.Unclaimed, rep.Reasons)
			}
			if d := reconcile.DriftOf(rep); d.Counts[decide.Unclaimed] != 1 {
				t.Errorf("drift does not show the unclaimed certificate: %v", d.Counts)
			}
		} else if rep.Reasons[decide.Unclaimed] != 0 {
			t.Errorf("shard %s counted the unclaimed certificate too: only the first shard reports it", s)
		}
	}
	issued := e.issuances()
	if len(issued) != len(labels)-1 || issued["payments/stray"] != 0 {
		t.Fatalf("issuances %v; want every certificate but payments/stray once", issued)
	}
	for id, n := range issued {
		if n != 1 {
			t.Fatalf("%s issued %d times", id, n)
		}
	}
	owners := e.owners()
	for name := range labels {
		if name == "stray" {
			continue
		}
		if got := owners["payments/"+name].Shard; got != shardOf(name, three) {
			t.Errorf("%s is recorded as shard %q's; want %q", name, got, shardOf(name, three))
		}
	}
	// A second round changes nothing.
	for _, s := range three {
		if rep := e.runWith(e.shardPass(s, three, alive), files); len(rep.Actions) != 0 {
			t.Fatalf("shard %s acted on a converged fleet: %v", s, rep.Actions)
		}
	}

	// 2. la is relabelled to b: b waits until a has released it, then adopts it.
	serial := e.serialOf("la")
	labels["la"] = "b"
	files = testbed.ShardFleet(labels)
	rep := e.runWith(e.shardPass("b", three, alive), files)
	if len(rep.Shard.Waiting) != 1 || rep.Shard.Waiting[0].From != "a" || len(rep.Actions) != 0 || rep.Reasons[decide.AwaitingHandOff] != 1 {
		t.Fatalf("b acted on la before a released it: waiting %+v, actions %v", rep.Shard.Waiting, rep.Actions)
	}
	rep = e.runWith(e.shardPass("a", three, alive), files)
	if len(rep.Shard.Released) != 1 || len(rep.Actions) != 0 || rep.Pruned != 0 {
		t.Fatalf("a's release: released %+v, actions %v, pruned %d", rep.Shard.Released, rep.Actions, rep.Pruned)
	}
	if e := e.owners()["payments/la"]; !e.Released() || e.Shard != "a" {
		t.Fatalf("after a's release the inventory says %+v", e)
	}
	rep = e.runWith(e.shardPass("b", three, alive), files)
	if len(rep.Shard.Adopted) != 1 || len(rep.Actions) != 0 {
		t.Fatalf("b's adoption: adopted %+v, actions %v", rep.Shard.Adopted, rep.Actions)
	}
	if got := e.owners()["payments/la"]; got.Shard != "b" || got.Released() || got.Serial != serial {
		t.Fatalf("after b adopted la the inventory says %+v (serial %s before)", got, serial)
	}
	if e.serialOf("la") != serial || e.issuances()["payments/la"] != 1 {
		t.Fatal("la was reissued when it moved between shards")
	}

	// 3. A fourth shard: the certificates that now hash to it move, unreissued.
	four := []string{"a", "b", "c", "d"}
	var moving []string
	for name, l := range labels {
		if l == "" && shardOf(name, four) == "d" {
			moving = append(moving, "payments/"+name)
		}
	}
	if len(moving) == 0 {
		t.Fatal("no certificate of the test hashes to the fourth shard: add some")
	}
	before := e.issuances()
	for _, s := range append(four, "d") { // d waits, the others release, d adopts
		e.runWith(e.shardPass(s, four, alive), files)
	}
	owners = e.owners()
	for _, id := range moving {
		if owners[id].Shard != "d" || owners[id].Released() {
			t.Errorf("%s did not move to the new shard d: %+v", id, owners[id])
		}
	}
	if after := e.issuances(); !maps.Equal(before, after) {
		t.Fatalf("adding a shard issued certificates: before %v, after %v", before, after)
	}

	// 4. Shard c is gone (removed, its lease expired): what hashes elsewhere now is taken over at once.
	abd := []string{"a", "b", "d"}
	alive["c"] = false
	delete(labels, "lc") // labelled for c: its manifest goes with the shard
	files = testbed.ShardFleet(labels)
	var fromC []string
	for id, en := range owners {
		if en.Shard == "c" && id != "payments/lc" {
			fromC = append(fromC, id)
		}
	}
	for _, s := range abd {
		e.runWith(e.shardPass(s, abd, alive), files)
	}
	owners = e.owners()
	for _, id := range fromC {
		if owners[id].Shard == "c" {
			t.Errorf("%s still belongs to the gone shard c", id)
		}
	}
	if after := e.issuances(); !maps.Equal(before, after) {
		t.Fatalf("taking over a gone shard's certificates issued some: before %v, after %v", before, after)
	}
	// lc was c's and nobody declares it: it hashes to some live shard, which takes it over and prunes it.
	if en := owners["payments/lc"]; en != nil {
		t.Errorf("payments/lc, orphaned with its gone shard, was neither taken over nor pruned: %+v", en)
	}

	// 5. A shard prunes only what it owns.
	victim := ""
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		if owners["payments/"+name] != nil && owners["payments/"+name].Shard == "a" {
			victim = name
			break
		}
	}
	delete(labels, victim)
	files = testbed.ShardFleet(labels)
	for _, s := range []string{"b", "d"} {
		if rep := e.runWith(e.shardPass(s, abd, alive), files); rep.Pruned != 0 {
			t.Fatalf("shard %s pruned %s, which shard a owns", s, victim)
		}
	}
	if rep := e.runWith(e.shardPass("a", abd, alive), files); rep.Pruned != 1 {
		t.Fatalf("shard a pruned %d targets of its removed certificate %s; want 1 (%v)", rep.Pruned, victim, rep.Failures)
	}
}

// A shard's pass reads only its part of the inventory (what it owns, and
// what it may claim, adopt or take over), and that part is enough: a
// no-op pass holds its own entries and no other shard's; a shard that is
// gone has its certificates taken over by the shards they hash to now —
// each keeping its serial, none reissued — the first taker leaving the
// gone shard's other entries in its pages for the next one, and one no
// longer declared is taken over and pruned.
func TestAShardReadsItsPartOfTheInventory(t *testing.T) {
	e := newEnv(t)
	labels := map[string]string{"la": "a", "lb": "b"}
	for i := range 12 {
		labels[fmt.Sprintf("h%d", i)] = ""
	}
	three := []string{"a", "b", "c"}
	// Two of c's certificates in one page of c's, one going to a and one
	// to b once c is gone: the first taker writes that page.
	byPage := map[string]map[string]string{} // page → next shard → name
	for i := 0; ; i++ {
		name := fmt.Sprintf("g%d", i)
		id := "payments/" + name
		if shard.Rendezvous(id, three) != "c" {
			continue
		}
		pg := inventory.PageOf(id)
		if byPage[pg] == nil {
			byPage[pg] = map[string]string{}
		}
		byPage[pg][shard.Rendezvous(id, []string{"a", "b"})] = name
		if len(byPage[pg]) == 2 {
			labels[byPage[pg]["a"]], labels[byPage[pg]["b"]] = "", ""
			break
		}
	}
	files := testbed.ShardFleet(labels)
	alive := map[string]bool{"a": true, "b": true, "c": true}
	for range 2 { // claim, then issue
		for _, s := range three {
			e.runWith(e.shardPass(s, three, alive), files)
		}
	}
	owners := e.owners()
	if len(owners) != len(labels) {
		t.Fatalf("the inventory holds %d entries; want %d", len(owners), len(labels))
	}
	for _, s := range three {
		rep := e.runWith(e.shardPass(s, three, alive), files)
		var want []string
		for id, en := range owners {
			if en.Shard == s {
				want = append(want, id)
			}
		}
		if got := slices.Sorted(maps.Keys(rep.Inventory)); len(rep.Actions) != 0 || !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Fatalf("shard %s's no-op pass held %v (actions %v); want its own entries %v", s, got, rep.Actions, want)
		}
	}

	// c is gone: its certificates hash to a or b now; one of them is no
	// longer declared, and is taken over by the shard it hashes to and pruned.
	var fromC []string
	for id, en := range owners {
		if en.Shard == "c" {
			fromC = append(fromC, id)
		}
	}
	slices.Sort(fromC)
	removed := "" // one of c's not in the g… pair
	for _, id := range fromC {
		if !strings.HasPrefix(id, "payments/g") {
			removed = id
			break
		}
	}
	if removed == "" || len(fromC) < 3 {
		t.Fatalf("shard c owns %v: the test needs one more than the pair (add certificates)", fromC)
	}
	delete(labels, strings.TrimPrefix(removed, "payments/"))
	files = testbed.ShardFleet(labels)
	alive["c"] = false
	before := e.issuances()
	for _, s := range []string{"a", "b"} {
		e.runWith(e.shardPass(s, []string{"a", "b"}, alive), files)
	}
	after := e.owners()
	for _, id := range fromC {
		if id == removed {
			continue
		}
		if got := after[id]; got == nil || got.Shard == "c" || got.Released() || got.Serial != owners[id].Serial {
			t.Errorf("%s, taken over from c, is %+v; want a's or b's with serial %s", id, got, owners[id].Serial)
		}
	}
	if after[removed] != nil {
		t.Errorf("%s, no longer declared and c gone, was not taken over and pruned: %+v", removed, after[removed])
	}
	if got := e.issuances(); !maps.Equal(before, got) {
		t.Fatalf("taking over c's certificates issued some: before %v, after %v", before, got)
	}
}
