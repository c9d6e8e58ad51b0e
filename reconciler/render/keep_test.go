package render_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"
	"weak"

	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
)

// keepM keeps the certificates whose names start with m, tagging the
// others "elsewhere".
func keepM(id string, _ map[string]string) (bool, string) {
	return strings.HasPrefix(id, "m"), "elsewhere"
}

// A Renderer with a Keep holds the certificates it keeps and only the ID
// and tag of the others, yet finds conflicts across the whole revision as
// a Renderer that keeps everything does: a kept certificate declared after
// another one writing its place is left out with the same error; another
// one declared after a kept one is left out of Others without an error
// (its own Renderer reports it); a trust bundle in another one's directory
// is refused.
func TestKeepHoldsItsShareAndChecksTheWholeRevision(t *testing.T) {
	dir := func(p string) string { return "    - directory: {path: " + p + "}\n" }
	snap := snapshot(
		file{"1.yaml", cert("", "o1", dir("shared")) + "---\n" + cert("", "m1", dir("m1"))},
		file{"2.yaml", cert("", "m2", dir("shared"))},
		file{"3.yaml", cert("", "o2", dir("m1"))},
		file{"4.yaml", cert("", "o3", dir("o3")) + "---\n" + cert("", "o1", dir("again"))},
		file{"5.yaml", bundle("roots", "o3")},
		file{"6.yaml", cert("", "m1", dir("twice"))},
	)
	cat := catalog(t, clusters)
	whole := render.NewRenderer().Render(snap, cat)
	share := render.NewRenderer(render.WithKeep(keepM)).Render(snap, cat)

	var ids []string
	for _, d := range share.Desired {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"m1"}) {
		t.Errorf("the share holds %v; want [m1] (m2 writes o1's directory after it)", ids)
	}
	if want := []render.Other{{ID: "o1", Tag: "elsewhere"}, {ID: "o3", Tag: "elsewhere"}}; !slices.Equal(share.Others, want) {
		t.Errorf("Others are %v; want %v (o2 writes m1's directory after it, the second o1 is a duplicate)", share.Others, want)
	}
	// The share's errors are the whole render's, but for those of the
	// certificates it does not hold (o2's conflict, o1's second declaration).
	var want []string
	for _, e := range whole.Errors {
		if e.File != "3.yaml" && e.File != "4.yaml" {
			want = append(want, e.Error())
		}
	}
	var got []string
	for _, e := range share.Errors {
		got = append(got, e.Error())
	}
	if len(want) != 3 || !slices.Equal(got, want) {
		t.Errorf("the share's errors:\n%s\nwant (the whole render's for m2, the bundle and the second m1):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if share.Documents != whole.Documents {
		t.Errorf("the share counts %d documents; the whole render %d", share.Documents, whole.Documents)
	}
}

// A Renderer with a Keep drops the others as it decodes each file: what it
// holds afterwards (its cache and its result, as a daemon holds them) is
// about its share. Measured as live heap per certificate after a GC (the
// snapshot's text is live before and after: neither holds a copy of it);
// keeping everything and dropping only the result's others would hold the
// whole render's and more.
func TestKeepDropsTheOthersAsFilesAreRendered(t *testing.T) {
	const n, perFile = 4000, 500
	snap := &source.Snapshot{Revision: source.Revision{Ref: "main"}}
	for f := 0; f*perFile < n; f++ {
		var b strings.Builder
		for i := f * perFile; i < (f+1)*perFile; i++ {
			name := fmt.Sprintf("o%d", i)
			if i%4 == 0 {
				name = fmt.Sprintf("m%d", i)
			}
			fmt.Fprintf(&b, "---\n%s", cert("team", name, "    - directory: {path: "+name+"}\n"))
		}
		snap.Files = append(snap.Files, source.File{Path: fmt.Sprintf("team-%d.yaml", f), Data: []byte(b.String())})
	}
	text := 0
	for _, f := range snap.Files {
		text += len(f.Data)
	}
	cat := catalog(t, clusters)
	keepTeamM := func(id string, labels map[string]string) (bool, string) {
		return strings.HasPrefix(id, "team/m"), "elsewhere"
	}
	// gc collects twice: the flate writers that pack kept text sit in a
	// sync.Pool, whose victim cache outlives one collection (one writer,
	// ~1.2 MB, held or not made the figures bimodal and the test flaky).
	gc := func() { runtime.GC(); runtime.GC() }
	held := func(opts ...render.Option) (perCert float64, res *render.Result) {
		var before, after runtime.MemStats
		gc()
		runtime.ReadMemStats(&before)
		rr := render.NewRenderer(opts...)
		res = rr.Render(snap, cat)
		gc()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(rr)
		runtime.KeepAlive(snap)
		return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n, res
	}
	wholeB, whole := held()
	shareB, share := held(render.WithKeep(keepTeamM))
	if len(whole.Desired) != n || len(share.Desired) != n/4 || len(share.Others) != n-n/4 {
		t.Fatalf("whole %d, share %d + %d others; want %d, %d + %d", len(whole.Desired), len(share.Desired), len(share.Others), n, n/4, n-n/4)
	}
	t.Logf("held per certificate of the revision (its text: %d B): whole %.0f B, a quarter's share %.0f B", text/n, wholeB, shareB)
	if shareB > 0.6*wholeB {
		t.Errorf("a Renderer keeping a quarter holds %.0f B per certificate of the revision, the whole one %.0f B: the others are not dropped", shareB, wholeB)
	}
}

// A certificate a Keep holds keeps its document's text packed with the
// other kept ones of its file, not its file's: once the snapshot goes, no
// file's text stays alive (a shard would otherwise hold the whole source,
// most of it other shards').
func TestKeepHoldsNoFilesText(t *testing.T) {
	snap, texts := quarterSnapshot(4, 40)
	rr := render.NewRenderer(render.WithKeep(func(id string, _ map[string]string) (bool, string) {
		return strings.HasPrefix(id, "team/m"), "elsewhere"
	}))
	res := rr.Render(snap, catalog(t, clusters))
	if len(res.Desired) != 40 {
		t.Fatalf("kept %d certificates; want 40", len(res.Desired))
	}
	snap = nil
	runtime.GC()
	for i, p := range texts {
		if p.Value() != nil {
			t.Errorf("file %d's text is still held after the snapshot went", i)
		}
	}
	if line, _ := res.Desired[0].Pos("spec.issuer"); line == 0 {
		t.Error("a kept certificate lost its positions")
	}
	runtime.KeepAlive(rr)
	runtime.KeepAlive(res)
}

// TestTemplateHashIsOneCopy: certificates whose targets carry the same
// template share one copy of its hash (a pass holds every target of the
// fleet), and a different template still hashes differently.
func TestTemplateHashIsOneCopy(t *testing.T) {
	snap := &source.Snapshot{Revision: source.Revision{Ref: "main"}, Files: []source.File{{Path: "team.yaml", Data: []byte(
		cert("team", "a", "    - directory: {path: a}\n") + "---\n" + cert("team", "b", "    - directory: {path: b}\n") + "---\n" +
			strings.Replace(cert("team", "c", "    - directory: {path: c}\n"), "spec:\n", "spec:\n  privateKey: {encoding: PKCS8}\n", 1))}}}
	res := render.NewRenderer().Render(snap, catalog(t, clusters))
	if len(res.Desired) != 3 || len(res.Errors) > 0 {
		t.Fatalf("rendered %d, errors %v", len(res.Desired), res.Errors)
	}
	a, b, c := res.Desired[0].Targets[0].TemplateHash, res.Desired[1].Targets[0].TemplateHash, res.Desired[2].Targets[0].TemplateHash
	if a == "" || a != b || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("two equal template hashes %q, %q are two copies", a, b)
	}
	if c == a {
		t.Errorf("another key encoding hashes as the default one: %q", c)
	}
}

// A Renderer that keeps every certificate lets go of every file's text
// too, cache and result alive, as a daemon holds them: what it keeps holds
// its text packed (a pass needs it only to place a position), and its
// positions and errors are placed as before: a certificate declared twice
// is reported on its file's line after its file was packed.
func TestRenderHoldsNoFilesText(t *testing.T) {
	dir := func(p string) string { return "    - directory: {path: " + p + "}\n" }
	snap := snapshot(
		file{"1.yaml", cert("team", "a", dir("a")) + "---\n" + cert("team", "b", dir("b"))},
		file{"2.yaml", "# b again\n\n---\n" + cert("team", "b", dir("b2"))},
		file{"3.yaml", bundle("roots", "roots")},
	)
	var texts []weak.Pointer[byte]
	for _, f := range snap.Files {
		texts = append(texts, weak.Make(&f.Data[0]))
	}
	rr := render.NewRenderer()
	res := rr.Render(snap, catalog(t, clusters))
	if len(res.Desired) != 2 || len(res.TrustBundles) != 1 {
		t.Fatalf("rendered %d certificates, %d bundles; want 2 and 1 (errors %v)", len(res.Desired), len(res.TrustBundles), res.Errors)
	}
	if len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0].Error(), "2.yaml:7:9: ") || !strings.Contains(res.Errors[0].Error(), "declared twice: here and at 1.yaml:12") {
		t.Errorf("errors %v; want b's second declaration at 2.yaml:7:9 (metadata.name), the first at 1.yaml:12", res.Errors)
	}
	snap = nil
	runtime.GC()
	for i, p := range texts {
		if p.Value() != nil {
			t.Errorf("file %d's text is still held after the snapshot went", i+1)
		}
	}
	b := res.Desired[1]
	if line, col := b.Pos("spec.targets[0].directory.path"); b.File() != "1.yaml" || b.Line() != 12 || line != 21 || col != 25 {
		t.Errorf("b is at %s:%d, its directory path at %d:%d; want 1.yaml:12, 21:25", b.File(), b.Line(), line, col)
	}
	runtime.KeepAlive(rr)
	runtime.KeepAlive(res)
}

// A Renderer's cache knows a file by a hash of its content, not by a copy
// of it: a daemon keeps its Renderer for months, and a copy of every file
// would be a second copy of the revision's text. The manifests here are
// mostly comments (2 KB a certificate); the Renderer and its result hold
// less than that per certificate.
func TestRendererHoldsNoCopyOfTheText(t *testing.T) {
	const n, perFile = 2000, 250
	comment := "# " + strings.Repeat("rotated by the platform team; ask #pki before changing. ", 36) + "\n"
	snap := &source.Snapshot{Revision: source.Revision{Ref: "main"}}
	for f := 0; f*perFile < n; f++ {
		var b strings.Builder
		for i := f * perFile; i < (f+1)*perFile; i++ {
			name := fmt.Sprintf("c%d", i)
			fmt.Fprintf(&b, "---\n%s%s", comment, cert("team", name, "    - directory: {path: "+name+"}\n"))
		}
		snap.Files = append(snap.Files, source.File{Path: fmt.Sprintf("team-%d.yaml", f), Data: []byte(b.String())})
	}
	cat := catalog(t, clusters)
	// Collected twice before each reading: PackText's pooled flate writer
	// (~1.2 MB) outlives one collection in sync.Pool's victim cache, and
	// counted or not it made the figure 1061, 1669 or 2275 B (failing).
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	rr := render.NewRenderer()
	res := rr.Render(snap, cat)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(res.Desired) != n {
		t.Fatalf("rendered %d certificates; want %d (errors %v)", len(res.Desired), n, res.Errors)
	}
	// Cached: the second render parses nothing.
	if rr.Render(snap, cat); rr.Parsed() != n/perFile {
		t.Errorf("parsed %d files in two renders of %d unchanged files", rr.Parsed(), n/perFile)
	}
	held := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	t.Logf("held per certificate: %.0f B (its text: %d B)", held, len(comment)+len(cert("team", "c1000", "    - directory: {path: c1000}\n")))
	if held > float64(len(comment)) {
		t.Errorf("the Renderer and its result hold %.0f B per certificate, more than its comment (%d B): the text is copied", held, len(comment))
	}
	runtime.KeepAlive(snap)
	runtime.KeepAlive(rr)
	runtime.KeepAlive(res)
}

// A Renderer WithRelease lets go of each file of the snapshot as soon as
// it is decoded, the snapshot alive: while the last file is decoded, the
// files before it are garbage already (a shard renders the whole revision,
// and held all its text to the end of the render). What it renders is what
// a Renderer without it renders, positions included.
func TestReleaseLetsGoOfEachFileOnceDecoded(t *testing.T) {
	const files, perFile = 4, 40
	keep := func(id string, _ map[string]string) (bool, string) {
		return strings.HasPrefix(id, "team/m"), "elsewhere"
	}
	cat := catalog(t, clusters)
	snap, texts := quarterSnapshot(files, perFile)
	var held []int // the files before the last one still held while it is decoded
	checked := false
	rr := render.NewRenderer(render.WithRelease(), render.WithKeep(func(id string, labels map[string]string) (bool, string) {
		if !checked && strings.HasPrefix(id, fmt.Sprintf("team/m%d-", files-1)) {
			checked = true
			runtime.GC()
			for i := range files - 1 {
				if texts[i].Value() != nil {
					held = append(held, i)
				}
			}
		}
		return keep(id, labels)
	}))
	res := rr.Render(snap, cat)
	if !checked {
		t.Fatal("the last file's certificates were never asked about")
	}
	if len(held) > 0 {
		t.Errorf("files %v are still held while the last one is decoded", held)
	}
	for i, f := range snap.Files {
		if f.Data != nil {
			t.Errorf("file %d's data is still in the snapshot after the render", i)
		}
	}
	runtime.KeepAlive(snap)
	other, _ := quarterSnapshot(files, perFile)
	want := render.NewRenderer(render.WithKeep(keep)).Render(other, cat)
	if len(res.Desired) != files*perFile/4 || len(res.Desired) != len(want.Desired) || !slices.Equal(res.Others, want.Others) {
		t.Fatalf("rendered %d certificates and %d others; want %d and %d", len(res.Desired), len(res.Others), len(want.Desired), len(want.Others))
	}
	for i, d := range res.Desired {
		w := want.Desired[i]
		line, col := d.Pos("spec.targets[0].directory.path")
		wl, wc := w.Pos("spec.targets[0].directory.path")
		if d.ID != w.ID || d.File() != w.File() || d.Line() != w.Line() || line != wl || col != wc || line == 0 {
			t.Errorf("%s at %s:%d, its path at %d:%d; want %s at %s:%d, %d:%d", d.ID, d.File(), d.Line(), line, col, w.ID, w.File(), w.Line(), wl, wc)
		}
	}
}

// quarterSnapshot is files files of perFile certificates each, a quarter
// of them named team/m…, the others team/o…, with a weak pointer to each
// file's data.
func quarterSnapshot(files, perFile int) (*source.Snapshot, []weak.Pointer[byte]) {
	snap := &source.Snapshot{Revision: source.Revision{Ref: "main"}}
	var texts []weak.Pointer[byte]
	for f := range files {
		var b strings.Builder
		for i := range perFile {
			name := fmt.Sprintf("o%d-%d", f, i)
			if i%4 == 0 {
				name = fmt.Sprintf("m%d-%d", f, i)
			}
			fmt.Fprintf(&b, "---\n%s", cert("team", name, "    - directory: {path: "+name+"}\n"))
		}
		data := []byte(b.String())
		texts = append(texts, weak.Make(&data[0]))
		snap.Files = append(snap.Files, source.File{Path: fmt.Sprintf("team-%d.yaml", f), Data: data})
	}
	return snap, texts
}

// A render sizes what it holds per certificate once, from the files it
// decoded, rather than growing it by doubling: at a fleet's size the
// halves grown out of were garbage at the render's peak, a shard's.
func TestRenderSizesWhatItHoldsOnce(t *testing.T) {
	snap, _ := quarterSnapshot(4, 250)
	res := render.NewRenderer(render.WithKeep(func(id string, _ map[string]string) (bool, string) {
		return strings.HasPrefix(id, "team/m"), "elsewhere"
	})).Render(snap, catalog(t, clusters))
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	// 63 of each file's 250 are team/m… (every fourth, from the first).
	if len(res.Desired) != 252 || cap(res.Desired) != 252 || len(res.Others) != 748 || cap(res.Others) != 748 {
		t.Errorf("%d certificates in room for %d, %d others in room for %d; want 252 and 748, each in room for as many",
			len(res.Desired), cap(res.Desired), len(res.Others), cap(res.Others))
	}
}
