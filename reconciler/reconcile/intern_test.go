package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"unsafe"

	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/shard"
	"github.com/certfleet/certfleet/schemas"
)

// sameString reports whether a and b share their bytes (not merely equal).
func sameString(a, b string) bool { return a == b && unsafe.StringData(a) == unsafe.StringData(b) }

// TestShareDeclaredSharesEqualValuesOnly: an entry read from a page holds
// its own copies of the ID, issue hash, names and addresses; afterwards it
// holds the declaration's where equal, and keeps its own where not (a
// declaration changed since: drift must still see the difference).
func TestShareDeclaredSharesEqualValuesOnly(t *testing.T) {
	c := &schemas.Certificate{Spec: schemas.CertificateSpec{CommonName: "a.example", DNSNames: []string{"a.example", "b.example"}}}
	kept := render.DirectoryAddress("/out", "team/a")
	moved := render.DirectoryAddress("/out", "team/a-new")
	d := &render.Desired{ID: "team/a", Certificate: c, IssueHash: "hash-1",
		Targets: []render.Target{{Address: kept}, {Address: moved}}}
	stored := &inventory.Entry{ID: "team/a", IssueHash: "hash-0", CommonName: "a.example", DNSNames: []string{"a.example", "b.example"},
		Targets: []inventory.Target{kept, render.DirectoryAddress("/out", "team/a-old")}}
	b, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	var e inventory.Entry // decoded: every string its own copy
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	shareDeclared(map[string]*inventory.Entry{e.ID: &e, "gone/x": {ID: "gone/x"}}, []*render.Desired{d})
	if !sameString(e.ID, d.ID) || !sameString(e.CommonName, c.Spec.CommonName) || !sameString(e.Targets[0].Key, kept.Key) {
		t.Error("the ID, common name or the kept target's key is still a copy of its own")
	}
	if &e.DNSNames[0] != &c.Spec.DNSNames[0] {
		t.Error("the DNS names are still a copy of their own")
	}
	if e.IssueHash != "hash-0" || sameString(e.IssueHash, d.IssueHash) {
		t.Errorf("issue hash %q: a differing one must stay the entry's", e.IssueHash)
	}
	if e.Targets[1] != render.DirectoryAddress("/out", "team/a-old") {
		t.Errorf("a target no longer declared became %+v", e.Targets[1])
	}
}

// TestIDSet: lookups in sorted and unsorted input, and Others counted as declared.
func TestIDSet(t *testing.T) {
	res := &render.Result{Desired: []*render.Desired{{ID: "b"}, {ID: "d"}}, Others: []render.Other{{ID: "a"}, {ID: "c"}}}
	s := declaredOf(res)
	for id, want := range map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": false, "": false, "bb": false} {
		if s.has(id) != want {
			t.Errorf("declared.has(%q) = %v, want %v", id, !want, want)
		}
	}
	var zero idSet
	if zero.has("a") {
		t.Error("the empty set has an ID")
	}
}

// allocated is the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestNoOpSaveAndHandOffCopyNoInventory: a pass that changed nothing, and
// the hand-over step of a pass with nothing to hand over, allocate no copy
// of the fleet's inventory (they did: a map of 20,000 entries, ~1 MB,
// on every pass).
func TestNoOpSaveAndHandOffCopyNoInventory(t *testing.T) {
	inv := map[string]*inventory.Entry{}
	for i := range 20_000 {
		id := fmt.Sprintf("team/svc-%d", i)
		inv[id] = &inventory.Entry{ID: id, Targets: []inventory.Target{render.DirectoryAddress("/out", id)}}
	}
	p := &Pass{}
	ids := newIDSet(len(inv))
	for id := range inv {
		ids.add(id)
	}
	ids.done()
	sh := share{inv: inv, declared: ids}
	if n := allocated(func() { p.save(context.Background(), inv, make([]*outcome, 10), nil) }); n > 4<<10 {
		t.Errorf("a save with nothing changed allocated %d bytes", n)
	}
	if n := allocated(func() { p.handOff(context.Background(), &sh, inv) }); n > 64<<10 {
		t.Errorf("a hand-over with nothing to hand over allocated %d bytes", n)
	}
}

// TestUnshardedShareIsTheInventory: the unsharded process's share of an
// inventory it owns whole is that map, not a copy of it; a shard's, or
// one with an entry adopted, stays a map of its own.
func TestUnshardedShareIsTheInventory(t *testing.T) {
	c := &schemas.Certificate{}
	res := &render.Result{Desired: []*render.Desired{{ID: "a", Certificate: c}, {ID: "b", Certificate: c}}}
	inv := map[string]*inventory.Entry{"a": {ID: "a"}, "c": {ID: "c"}} // c: no longer declared
	same := func(a, b map[string]*inventory.Entry) bool {
		return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
	}

	p := &Pass{}
	sh := p.shareOf(res, inv, declaredOf(res))
	sh.wholeInventory(p, inv)
	if !same(sh.inv, inv) || len(sh.inv) != 2 {
		t.Errorf("the unsharded share is a copy of the inventory (%d entries)", len(sh.inv))
	}

	released := &inventory.Entry{ID: "b", Shard: "s1"}
	released.Edit().Released = true // handed back to the unsharded process: adopted
	inv["b"] = released
	sh = p.shareOf(res, inv, declaredOf(res))
	sh.wholeInventory(p, inv)
	if same(sh.inv, inv) || len(sh.adopt) != 1 {
		t.Errorf("with an adoption (%v) the share is the inventory itself", sh.adopt)
	}

	delete(inv, "b")
	ps := &Pass{Shard: &Sharding{Name: "s0", Config: shard.Config{Shards: []string{"s0"}}}}
	sh = ps.shareOf(res, inv, declaredOf(res))
	sh.wholeInventory(ps, inv)
	if same(sh.inv, inv) {
		t.Error("a shard's share is the inventory itself")
	}
}

// TestShareOfSortsAdoptions: certificates adopted because they are no
// longer declared are reported sorted by ID, whatever the map's order.
func TestShareOfSortsAdoptions(t *testing.T) {
	inv := map[string]*inventory.Entry{}
	for i := range 50 {
		e := &inventory.Entry{ID: fmt.Sprintf("gone-%02d", i), Shard: "s1"}
		e.Edit().Released = true // released to the unsharded process, which adopts it
		inv[e.ID] = e
	}
	res := &render.Result{}
	sh := (&Pass{}).shareOf(res, inv, declaredOf(res))
	if len(sh.report.Adopted) != 50 {
		t.Fatalf("adopted %d, want 50", len(sh.report.Adopted))
	}
	for i, h := range sh.report.Adopted {
		if want := fmt.Sprintf("gone-%02d", i); h.Certificate != want {
			t.Fatalf("adoption %d is %s, want %s: not sorted", i, h.Certificate, want)
		}
	}
}
