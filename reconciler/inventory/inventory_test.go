package inventory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want inventory.FailureKind
	}{
		{name: "no error is no failure", err: nil, want: ""},
		{name: "a role that refuses is permanent", err: fmt.Errorf("signing: %w", pki.ErrNotAllowed), want: inventory.Permanent},
		{name: "an issuer that is gone is permanent", err: fmt.Errorf("issuer: %w", backend.ErrNotFound), want: inventory.Permanent},
		{name: "a timeout is transient", err: context.DeadlineExceeded, want: inventory.Transient},
		{name: "anything else is transient", err: errors.New("connection refused"), want: inventory.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inventory.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// Entries round-trip through pages; Save writes only the pages it is told
// changed, deletes an emptied page, and the earlier one-document-per-entry
// format is read and moved into pages.
func TestPagesRoundTripAndMigrate(t *testing.T) {
	ctx := t.Context()
	s, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	inv := map[string]*inventory.Entry{}
	var ids []string
	for i := 0; i < 600; i++ {
		id := fmt.Sprintf("web/svc-%d", i)
		inv[id] = &inventory.Entry{ID: id, Serial: fmt.Sprint(i)}
		ids = append(ids, id)
	}
	if failed := inventory.Save(ctx, s, "", inv, ids); failed != nil {
		t.Fatal(failed)
	}
	pages, _ := s.List(ctx, "inventory/pages/")
	if len(pages) == 0 || len(pages) > inventory.Pages {
		t.Fatalf("%d pages for 600 entries", len(pages))
	}
	got, err := inventory.Load(ctx, s)
	if err != nil || len(got) != 600 || got["web/svc-42"].Serial != "42" {
		t.Fatalf("loaded %d entries (err %v), want 600", len(got), err)
	}

	// A change saved without naming it is not written: Save trusts its list.
	inv["web/svc-1"] = &inventory.Entry{ID: "web/svc-1", Serial: "new"}
	inv["web/svc-2"] = &inventory.Entry{ID: "web/svc-2", Serial: "new"}
	delete(inv, "web/svc-3")
	if failed := inventory.Save(ctx, s, "", inv, []string{"web/svc-1", "web/svc-3"}); failed != nil {
		t.Fatal(failed)
	}
	got, _ = inventory.Load(ctx, s)
	if got["web/svc-1"].Serial != "new" || got["web/svc-3"] != nil || len(got) != 599 {
		t.Errorf("after saving svc-1 and deleting svc-3: svc-1 %q, svc-3 %v, %d entries", got["web/svc-1"].Serial, got["web/svc-3"], len(got))
	}
	if inventory.PageOf("web/svc-2") != inventory.PageOf("web/svc-1") && got["web/svc-2"].Serial != "2" {
		t.Errorf("svc-2's page was written though it was not named as changed")
	}

	// The earlier format: one document per entry at inventory/<id, / as _>.
	old := &inventory.Entry{ID: "payments/api", Serial: "legacy"}
	if err := s.Put(ctx, "inventory/payments_api", old); err != nil {
		t.Fatal(err)
	}
	got, _ = inventory.Load(ctx, s)
	if got["payments/api"] == nil || got["payments/api"].Serial != "legacy" {
		t.Fatalf("an entry in the earlier format was not read: %v", got["payments/api"])
	}
	if err := inventory.Migrate(ctx, s); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.List(ctx, "inventory/"); len(left) != 0 {
		t.Errorf("documents of the earlier format left after migrating: %v", left)
	}
	got, _ = inventory.Load(ctx, s)
	if got["payments/api"] == nil || got["payments/api"].Serial != "legacy" || len(got) != 600 {
		t.Errorf("after migrating: payments/api %v, %d entries", got["payments/api"], len(got))
	}

	// Put and Delete of one entry rewrite its page.
	if err := inventory.Delete(ctx, s, "payments/api"); err != nil {
		t.Fatal(err)
	}
	if err := inventory.Put(ctx, s, &inventory.Entry{ID: "web/svc-5", Serial: "put"}); err != nil {
		t.Fatal(err)
	}
	got, _ = inventory.Load(ctx, s)
	if got["payments/api"] != nil || got["web/svc-5"].Serial != "put" || len(got) != 599 {
		t.Errorf("after Delete and Put: payments/api %v, svc-5 %q, %d entries", got["payments/api"], got["web/svc-5"].Serial, len(got))
	}
}

// Each shard writes its own pages only; a certificate in two shards' pages
// (released by one and adopted by the other, or taken over from a shard
// that is gone) loads as the copy updated last, and a shard's next write
// of the page drops the copy it no longer owns.
func TestShardPages(t *testing.T) {
	ctx := t.Context()
	s, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	a := map[string]*inventory.Entry{
		"x": {ID: "x", Serial: "1", Shard: "a", UpdatedAt: t0},
		"y": {ID: "y", Serial: "2", Shard: "a", UpdatedAt: t0},
		"z": {ID: "z", Serial: "3", Shard: "b", UpdatedAt: t0}, // another shard's, in a's view
	}
	if failed := inventory.Save(ctx, s, "a", a, []string{"x", "y", "z"}); failed != nil {
		t.Fatal(failed)
	}
	got, _ := inventory.Load(ctx, s)
	if len(got) != 2 || got["z"] != nil {
		t.Fatalf("shard a wrote %v; want x and y only (z is b's)", keys(got))
	}
	if pages, _ := s.List(ctx, "inventory/pages/"); len(pages) == 0 || !strings.HasSuffix(pages[0], ".a") {
		t.Fatalf("shard a's pages are %v; want names ending in .a", pages)
	}

	// a releases x; b adopts it later: b's copy wins, whatever the order read.
	a["x"] = &inventory.Entry{ID: "x", Serial: "1", Shard: "a", UpdatedAt: t0.Add(time.Minute), Rare: &inventory.Rare{Released: true}}
	if failed := inventory.Save(ctx, s, "a", a, []string{"x"}); failed != nil {
		t.Fatal(failed)
	}
	if got, _ = inventory.Load(ctx, s); !got["x"].Released() || got["x"].Shard != "a" {
		t.Fatalf("after the release x is %+v", got["x"])
	}
	b := map[string]*inventory.Entry{"x": {ID: "x", Serial: "1", Shard: "b", UpdatedAt: t0.Add(2 * time.Minute)}}
	if failed := inventory.Save(ctx, s, "b", b, []string{"x"}); failed != nil {
		t.Fatal(failed)
	}
	got, _ = inventory.Load(ctx, s)
	if got["x"].Shard != "b" || got["x"].Released() || got["y"].Shard != "a" {
		t.Fatalf("after b adopted x: x %+v, y %+v", got["x"], got["y"])
	}
	// a's stale released copy goes the next time a writes that page.
	if failed := inventory.Save(ctx, s, "a", got, []string{"x"}); failed != nil {
		t.Fatal(failed)
	}
	var pg struct{ Entries []*inventory.Entry }
	if err := s.Get(ctx, "inventory/pages/"+inventory.ShardPageOf("x", "a"), &pg); err != nil && !errors.Is(err, backend.ErrNotFound) {
		t.Fatal(err)
	}
	for _, e := range pg.Entries {
		if e.ID == "x" {
			t.Fatalf("shard a's page still holds x after b adopted it: %+v", e)
		}
	}
	if got, _ = inventory.Load(ctx, s); got["x"].Shard != "b" || len(got) != 2 {
		t.Fatalf("after a's cleanup: x %+v, %d entries", got["x"], len(got))
	}
}

func keys(m map[string]*inventory.Entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A pass holds every entry at once, and the decoder makes a copy of every
// value per entry: Load shares what repeats across a fleet (issuer, file,
// revision, author, target kind, the Effective) — one copy, not 100,000 —
// also when the collector runs between pages (it runs many times in a
// Load of 100,000 entries; here before each read).
func TestLoadSharesWhatRepeats(t *testing.T) {
	// 600 entries over many pages: sharing crosses pages.
	inv := make(map[string]*inventory.Entry, 600)
	for i := range cap(ids600) {
		id := ids600[i]
		inv[id] = &inventory.Entry{ID: id, Serial: fmt.Sprint(i), Issuer: "mtls", File: "teams/web/certificates.yaml",
			CommonName: id + ".example.test", DNSNames: []string{id + ".example.test", "other.example.test"},
			Revision: "main@0123456789abcdef", Author: "dev@example.test", Targets: []inventory.Target{render.DirectoryAddress("/out", id)},
			Effective: &schemas.Effective{TTL: "48h", Usages: []schemas.KeyUsage{"digital signature", "server auth"}, SignatureAlgorithm: "ECDSAWithSHA256"}}
	}
	s, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if failed := inventory.Save(t.Context(), s, "", inv, ids600); failed != nil {
		t.Fatal(failed)
	}
	got, err := inventory.Load(t.Context(), collecting{s})
	if err != nil || len(got) != 600 {
		t.Fatalf("loaded %d entries (err %v)", len(got), err)
	}
	a, b := got["web/svc-1"], got["web/svc-599"]
	for _, id := range ids600 {
		b := got[id]
		for _, f := range []struct {
			name string
			a, b string
		}{{"issuer", a.Issuer, b.Issuer}, {"file", a.File, b.File}, {"revision", a.Revision, b.Revision},
			{"author", a.Author, b.Author}, {"target kind", string(a.Targets[0].Kind), string(b.Targets[0].Kind)}} {
			if f.a != f.b || unsafe.StringData(f.a) != unsafe.StringData(f.b) {
				t.Fatalf("%s and %s hold two copies of their %s %q", a.ID, id, f.name, f.a)
			}
		}
		if a.Effective == nil || a.Effective != b.Effective {
			t.Fatalf("%s and %s hold two copies of one Effective: %p, %p", a.ID, id, a.Effective, b.Effective)
		}
	}
	if a.Serial != "1" || b.Serial != "599" || a.Targets[0].Path != "web/svc-1" || b.Effective.TTL != "48h" ||
		a.DNSNames[0] != "web/svc-1.example.test" || a.DNSNames[1] != "other.example.test" {
		t.Errorf("entries read back wrong: %+v, %+v", a, b)
	}
	// Within an entry: the path is the end of the key, the common name the
	// first DNS name.
	key, path := a.Targets[0].Key, a.Targets[0].Path
	if unsafe.StringData(path) != unsafe.StringData(key[len(key)-len(path):]) {
		t.Errorf("the target's path %q is a copy, not the end of its key %q", path, key)
	}
	if unsafe.StringData(a.CommonName) != unsafe.StringData(a.DNSNames[0]) {
		t.Errorf("the common name and the equal first DNS name are two copies")
	}
}

// collecting is a Store that runs the collector (twice: what it frees
// goes at the second) before each read.
type collecting struct{ backend.Store }

func (c collecting) Get(ctx context.Context, key string, v any) error {
	runtime.GC()
	runtime.GC()
	return c.Store.Get(ctx, key, v)
}

// ids600 are web/svc-0 … web/svc-599.
var ids600 = func() []string {
	ids := make([]string, 600)
	for i := range ids {
		ids[i] = fmt.Sprintf("web/svc-%d", i)
	}
	return ids
}()

func TestReportedLeavesOutTheFingerprint(t *testing.T) {
	e := &inventory.Entry{ID: "payments/api", Serial: "01:02", Fingerprint: "0123456789abcdef0123456789abcdef"}
	b, err := json.Marshal(e.Reported())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "fingerprint") || strings.Contains(string(b), e.Fingerprint) {
		t.Errorf("reported as %s: holds the fingerprint", b)
	}
	if !strings.Contains(string(b), `"serial":"01:02"`) {
		t.Errorf("reported as %s: the rest is missing", b)
	}
	if e.Fingerprint == "" {
		t.Error("Reported cleared the entry's own fingerprint")
	}
	stored, err := json.Marshal(e)
	if err != nil || !strings.Contains(string(stored), e.Fingerprint) {
		t.Errorf("stored as %s (%v): the fingerprint is not kept", stored, err)
	}
}

// A shard reads its part of the inventory only (WithShare): its own pages
// whole — released entries and ones keep does not ask for included — and
// of the other pages the IDs keep asks for plus every copy of an ID its
// own pages hold, so that the current copy wins as in a whole read; the
// rest is dropped. Remove takes entries out of another shard's pages
// without losing the entries this shard never read.
func TestLoadWithShareKeepsAShardsPart(t *testing.T) {
	ctx := t.Context()
	s, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	save := func(shard string, entries ...*inventory.Entry) {
		inv := map[string]*inventory.Entry{}
		var ids []string
		for _, e := range entries {
			inv[e.ID], ids = e, append(ids, e.ID)
		}
		if failed := inventory.Save(ctx, s, shard, inv, ids); failed != nil {
			t.Fatal(failed)
		}
	}
	save("a",
		&inventory.Entry{ID: "own", Serial: "1", Shard: "a", UpdatedAt: t0},
		&inventory.Entry{ID: "released", Serial: "2", Shard: "a", Rare: &inventory.Rare{Released: true, Handoffs: 1}, UpdatedAt: t0},
		// a released moved, which b adopted since: b's copy is current.
		&inventory.Entry{ID: "moved", Serial: "3", Shard: "a", Rare: &inventory.Rare{Released: true, Handoffs: 1}, UpdatedAt: t0})
	save("b",
		&inventory.Entry{ID: "moved", Serial: "3", Shard: "b", Rare: &inventory.Rare{Handoffs: 2}, UpdatedAt: t0.Add(time.Minute)},
		&inventory.Entry{ID: "b-only", Serial: "4", Shard: "b", UpdatedAt: t0})
	save("c",
		&inventory.Entry{ID: "wanted", Serial: "5", Shard: "c", UpdatedAt: t0},
		&inventory.Entry{ID: "c-only", Serial: "6", Shard: "c", UpdatedAt: t0})
	save("", &inventory.Entry{ID: "unsharded", Serial: "7", UpdatedAt: t0},
		&inventory.Entry{ID: "old", Serial: "8", UpdatedAt: t0})

	var asked []string
	var mu sync.Mutex
	part, err := inventory.Load(ctx, s, inventory.WithShare("a", func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, id)
		return id == "wanted" || id == "unsharded"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(part)), []string{"moved", "own", "released", "unsharded", "wanted"}; !slices.Equal(got, want) {
		t.Fatalf("shard a's part holds %v; want %v", got, want)
	}
	if slices.Contains(asked, "own") || slices.Contains(asked, "released") {
		t.Errorf("keep was asked about shard a's own entries (%v): they are kept whole", asked)
	}
	whole, err := inventory.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for id, e := range part {
		w := whole[id]
		if e.Shard != w.Shard || e.Released() != w.Released() || e.Serial != w.Serial || e.HeldElsewhere("a") != w.HeldElsewhere("a") {
			t.Errorf("%s in shard a's part is %+v; a whole read has %+v", id, e, w)
		}
	}
	if m := part["moved"]; m.Shard != "b" || !m.HeldElsewhere("a") {
		t.Errorf("moved in shard a's part is %+v; want b's copy, with a's older one noted", m)
	}

	// Taking over from c (gone) removes wanted from c's pages, not c-only.
	if failed := inventory.Remove(ctx, s, "c", []string{"wanted"}); failed != nil {
		t.Fatal(failed)
	}
	after, _ := inventory.Load(ctx, s)
	if after["wanted"] != nil || after["c-only"] == nil || after["c-only"].Serial != "6" {
		t.Fatalf("after removing wanted from c's pages: wanted %+v, c-only %+v", after["wanted"], after["c-only"])
	}
}
