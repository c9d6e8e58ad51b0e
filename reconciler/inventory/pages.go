package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/intern"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// The inventory is stored in pages, not one document per certificate: with
// Vault every document is a request, so a pass that read or wrote each entry
// paid one round trip per certificate (and a KV version per write). An entry
// lives in the page its ID hashes to; a pass reads every page once and
// writes only the pages holding entries it changed.
//
// Format (read it with Load, never by hand): the document at
// inventory/pages/<xx>, xx two hex digits, is {"entries": [Entry, …]}
// sorted by ID. Entries of the earlier format (one document per entry at
// inventory/<id>, "/" as "_") are still read; Migrate moves them into pages.
//
// A sharded fleet keeps each shard's entries in pages of its own,
// inventory/pages/<xx>.<shard>, written by that shard's leader only, so two
// shards never overwrite each other's page. While a certificate moves
// between shards it is in two shards' pages (released by one, adopted by
// the other; or held by a shard that is gone and taken over): Load keeps
// the entry updated last. A copy left behind is dropped the next time its
// shard writes that page.
const (
	pagePrefix = "inventory/pages/"
	// legacyPrefix is where the earlier format kept one entry per document.
	legacyPrefix = "inventory/"
	// Pages is how many pages entries spread over: 256 keeps a page of a
	// 100,000-certificate fleet near 400 entries (~300 KB), well inside a
	// Vault request, while a no-op pass costs at most 257 reads.
	Pages = 256
	// ioConcurrency bounds parallel page reads and writes.
	ioConcurrency = 32
)

// page is one stored page. Read with keep set, it decodes its entries one
// at a time and drops those keep turns down before the next is decoded.
type page struct {
	Entries []*Entry             `json:"entries"`
	keep    func(id string) bool `json:"-"`
}

// UnmarshalJSON decodes a page entry by entry, keeping what keep accepts
// (everything when keep is nil); a null entry is skipped.
func (p *page) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("an inventory page is a JSON object with an entries list; read %v (%v)", t, err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		if k != "entries" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if t, err := dec.Token(); err != nil {
			return err
		} else if t == nil {
			continue // "entries": null
		} else if t != json.Delim('[') {
			return fmt.Errorf("an inventory page's entries are a list; read %v", t)
		}
		for dec.More() {
			var e *Entry
			if err := dec.Decode(&e); err != nil {
				return err
			}
			if e != nil && e.ID != "" && (p.keep == nil || p.keep(e.ID)) {
				p.Entries = append(p.Entries, e)
			}
		}
		if _, err := dec.Token(); err != nil { // ]
			return err
		}
	}
	_, err := dec.Token() // }
	return err
}

// PageOf names the page an ID is kept in by the unsharded process.
func PageOf(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%02x", h.Sum32()%Pages)
}

// ShardPageOf names the page an ID is kept in by shard ("": unsharded).
func ShardPageOf(id, shard string) string { return PerShard(PageOf(id), shard) }

// PerShard is the name of shard's own copy of a document the unsharded
// process keeps at name ("": name itself). A shard writes only its own
// copies, under its own backend lock, so shards never write over each other.
func PerShard(name, shard string) string {
	if shard == "" {
		return name
	}
	return name + "." + shard
}

// later reports whether a should replace b, two copies of one entry from
// different shards' pages: the one moved between shards more often (a
// release, an adoption, a takeover each count one more than what they
// replace), then the one updated last, then the one not released, then
// the shard named first, so every reader picks the same.
func later(a, b *Entry) bool {
	if a.Handoffs() != b.Handoffs() {
		return a.Handoffs() > b.Handoffs()
	}
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return a.UpdatedAt.After(b.UpdatedAt)
	}
	if a.Released() != b.Released() {
		return !a.Released()
	}
	return a.Shard < b.Shard
}

// legacyKey is where the earlier format kept an entry: "/" cannot be in a
// flat key, "_" cannot be in an ID, so the mapping is one to one.
func legacyKey(id string) string { return legacyPrefix + strings.ReplaceAll(id, "/", "_") }

// Load reads every entry, by ID: one LIST and one read per page (plus one
// per entry still in the earlier format). With WithShare it keeps a
// shard's part only.
func Load(ctx context.Context, s backend.Store, opts ...LoadOption) (map[string]*Entry, error) {
	var o loadOptions
	for _, opt := range opts {
		opt(&o)
	}
	pages, err := s.List(ctx, pagePrefix)
	if err != nil {
		return nil, err
	}
	legacy, err := s.List(ctx, legacyPrefix)
	if err != nil {
		return nil, err
	}
	var sh sharing
	if o.keep == nil {
		read, err := readPages(ctx, s, legacy, pages, nil, &sh)
		if err != nil {
			return nil, err
		}
		return resolve(read, len(legacy)), nil
	}
	// A shard's own pages first, whole: every entry it owns (released ones,
	// ones no longer declared) is there, and Save rewrites those pages from
	// what Load returns, so dropping one would erase it. Then the other
	// pages, keeping what keep asks for and every copy of an ID the shard's
	// pages hold, so that of two copies the current one still wins.
	var own, rest []string
	for _, name := range pages {
		if _, sh, _ := strings.Cut(name, "."); sh == o.shard && sh != "" {
			own = append(own, name)
		} else {
			rest = append(rest, name)
		}
	}
	ownRead, err := readPages(ctx, s, nil, own, nil, &sh)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, entries := range ownRead {
		for _, e := range entries {
			held[e.ID] = true
		}
	}
	keep := func(id string) bool { return held[id] || o.keep(id) }
	restRead, err := readPages(ctx, s, legacy, rest, keep, &sh)
	if err != nil {
		return nil, err
	}
	// Legacy documents first, then pages (the order resolve expects).
	return resolve(slices.Concat(restRead[:len(legacy)], ownRead, restRead[len(legacy):]), len(legacy)), nil
}

// sharing is what one Load shares among its entries, held until the Load
// is done: strings (intern.Strings says why holding them matters) and
// Effectives.
type sharing struct {
	strs       intern.Strings
	effectives schemas.Effectives
}

// LoadOption changes what Load keeps.
type LoadOption func(*loadOptions)

type loadOptions struct {
	shard string
	keep  func(id string) bool
}

// WithShare makes Load keep shard's part of the inventory only: the
// entries in shard's own pages, whole, and of the others' pages (and the
// unsharded ones) the entries whose ID keep asks for, or that shard's
// pages also hold. keep is asked once per entry as each page is decoded,
// and what it turns down is dropped at once: a shard of a 100,000
// certificate fleet holds its own quarter, not every shard's entries.
// keep must answer the same for every copy of an ID (it is given the ID
// only), so that Load still picks the current one of two copies.
func WithShare(shard string, keep func(id string) bool) LoadOption {
	return func(o *loadOptions) { o.shard, o.keep = shard, keep }
}

// readPages reads the legacy documents and the pages named, in that order,
// keeping the entries keep accepts (nil: all).
func readPages(ctx context.Context, s backend.Store, legacy, pages []string, keep func(string) bool, sh *sharing) ([][]*Entry, error) {
	read := make([][]*Entry, len(legacy)+len(pages))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency(s))
	for i, name := range legacy {
		g.Go(func() error {
			var e Entry
			if err := s.Get(gctx, legacyPrefix+name, &e); err != nil {
				if errors.Is(err, backend.ErrNotFound) {
					return nil // deleted since the list: skip it
				}
				return err
			}
			if keep != nil && !keep(e.ID) {
				return nil
			}
			e.share(sh)
			read[i] = []*Entry{&e}
			return nil
		})
	}
	for i, name := range pages {
		g.Go(func() error {
			pg := page{keep: keep}
			if err := s.Get(gctx, pagePrefix+name, &pg); err != nil {
				if errors.Is(err, backend.ErrNotFound) {
					return nil
				}
				return fmt.Errorf("reading inventory page %s: %w", name, err)
			}
			for _, e := range pg.Entries {
				e.share(sh)
			}
			read[len(legacy)+i] = pg.Entries
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return read, nil
}

// readConcurrency bounds parallel page reads from s: ioConcurrency for a
// remote store, whose reads wait on round trips; as many as the process
// has cores for the local one, whose reads are decoding only — more would
// decode no faster and hold more pages' bytes at once (each read holds its
// whole page, ~0.5 MB at 100,000 certificates: 32 at once were 16 MB of
// garbage at the pass's peak).
func readConcurrency(s backend.Store) int {
	if _, local := s.(*backend.Local); local {
		return max(2, runtime.GOMAXPROCS(0))
	}
	return ioConcurrency
}

// resolve makes the inventory of what was read: the first nLegacy slices
// from legacy documents, the rest from pages.
func resolve(read [][]*Entry, nLegacy int) map[string]*Entry {
	n := 0
	for _, entries := range read {
		n += len(entries)
	}
	out := make(map[string]*Entry, n)
	// Pages come last: an entry both in a page and in the earlier format
	// (a migration cut short) is the page's, which is newer. fromLegacy
	// holds the IDs whose entry so far is a legacy document's: few or none,
	// where a set of the IDs read from pages would be one of the fleet.
	fromLegacy := map[string]bool{}
	for i, entries := range read {
		for _, e := range entries {
			if e == nil || e.ID == "" {
				continue
			}
			if i < nLegacy {
				fromLegacy[e.ID] = true
			} else {
				if prev := out[e.ID]; prev != nil && !fromLegacy[e.ID] {
					if !later(e, prev) {
						r := prev.Edit()
						r.elsewhere = append(r.elsewhere, e.Shard) // another shard's copy is newer
						continue
					}
					elsewhere := append(rareOf(prev).elsewhere, prev.Shard)
					e.Edit().elsewhere = elsewhere
				}
				delete(fromLegacy, e.ID)
			}
			out[e.ID] = e
		}
	}
	return out
}

// share replaces the values of e that repeat across a fleet's entries —
// issuer, file, revision, author, shard, target kinds and places, the
// Effective — by one shared copy each, right after a page is decoded: the
// decoder makes a copy per entry, and a pass holds every entry at once.
func (e *Entry) share(sh *sharing) {
	for _, s := range []*string{&e.Issuer, &e.File, &e.Revision, &e.Author, &e.Shard} {
		*s = sh.strs.Share(*s)
	}
	for i := range e.Targets {
		t := &e.Targets[i]
		t.Kind = render.TargetKind(sh.strs.Share(string(t.Kind)))
		for _, s := range []*string{&t.Cluster, &t.Namespace, &t.Mount} {
			*s = sh.strs.Share(*s)
		}
		// The key ends with the Secret's name or the path: keep one copy.
		for _, s := range []*string{&t.Name, &t.Path} {
			if strings.HasSuffix(t.Key, *s) {
				*s = t.Key[len(t.Key)-len(*s):]
			}
		}
	}
	if len(e.DNSNames) > 0 && e.DNSNames[0] == e.CommonName {
		e.DNSNames[0] = e.CommonName
	}
	if r := e.Rare; r != nil {
		r.PermanentFor = sh.strs.Share(r.PermanentFor)
		r.FailureKind = FailureKind(sh.strs.Share(string(r.FailureKind)))
		for i := range r.Superseded {
			r.Superseded[i].Issuer = sh.strs.Share(r.Superseded[i].Issuer)
			r.Superseded[i].Reason = sh.strs.Share(r.Superseded[i].Reason)
		}
	}
	e.Effective = sh.effectives.Share(e.Effective)
}

// Save writes shard's pages ("": the unsharded process's) holding the
// changed IDs, each once, from inv (the whole inventory after the change;
// an ID missing from it, or owned by another shard, leaves shard's pages).
// A page holds the entries of inv that shard owns (Entry.Shard), released
// ones included. It returns the IDs whose page could not be written, with
// the error; the pages of unchanged entries are not touched, so a pass
// that changed nothing writes nothing and KV versions grow with real
// changes only.
func Save(ctx context.Context, s backend.Store, shard string, inv map[string]*Entry, changed []string) map[string]error {
	if len(changed) == 0 {
		return nil
	}
	dirty := pagesOf(changed, shard)
	members := map[string][]*Entry{}
	for id, e := range inv {
		if pg := ShardPageOf(id, shard); dirty[pg] != nil && e != nil && e.Shard == shard {
			members[pg] = append(members[pg], e)
		}
	}
	return writeDirty(ctx, dirty, func(ctx context.Context, name string) error {
		return writePage(ctx, s, name, members[name])
	})
}

// pagesOf groups ids by the page of shard's they are kept in.
func pagesOf(ids []string, shard string) map[string][]string {
	out := map[string][]string{}
	for _, id := range ids {
		pg := ShardPageOf(id, shard)
		out[pg] = append(out[pg], id)
	}
	return out
}

// writeDirty writes each dirty page (page → the changed IDs in it) with
// write, in parallel, and returns the IDs whose page could not be written,
// with the error (nil when every write went through).
func writeDirty(ctx context.Context, dirty map[string][]string, write func(ctx context.Context, name string) error) map[string]error {
	names := slices.Sorted(maps.Keys(dirty))
	errs := make([]error, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ioConcurrency)
	for i, name := range names {
		g.Go(func() error {
			errs[i] = write(gctx, name)
			return nil
		})
	}
	_ = g.Wait()
	failed := make(map[string]error)
	for i, name := range names {
		if errs[i] != nil {
			for _, id := range dirty[name] {
				failed[id] = fmt.Errorf("writing inventory page %s: %w", name, errs[i])
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return failed
}

func writePage(ctx context.Context, s backend.Store, name string, entries []*Entry) error {
	if len(entries) == 0 {
		return s.Delete(ctx, pagePrefix+name)
	}
	slices.SortFunc(entries, func(a, b *Entry) int { return strings.Compare(a.ID, b.ID) })
	return s.Put(ctx, pagePrefix+name, page{Entries: entries})
}

// Migrate moves entries still kept in the earlier format (one document per
// entry) into their pages and deletes the old documents. It costs one LIST
// when there is nothing to move; otherwise it reads the whole inventory
// itself (a shard's pass holds only its part, and a page written from a
// part would lose the rest).
func Migrate(ctx context.Context, s backend.Store) error {
	legacy, err := s.List(ctx, legacyPrefix)
	if err != nil || len(legacy) == 0 {
		return err
	}
	inv, err := Load(ctx, s)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(legacy))
	for _, name := range legacy {
		ids = append(ids, strings.ReplaceAll(name, "_", "/"))
	}
	if failed := Save(ctx, s, "", inv, ids); len(failed) > 0 {
		return errors.Join(slices.Collect(maps.Values(failed))...)
	}
	for _, name := range legacy {
		if err := backend.Purge(ctx, s, legacyPrefix+name); err != nil {
			return err
		}
	}
	return nil
}

// Remove takes ids out of shard's pages ("": the unsharded process's),
// reading each page holding one and writing it back without them: for a
// shard taking certificates over from a shard that is gone, whose pages
// hold entries it did not read (WithShare). It returns the IDs whose page
// could not be written, with the error.
func Remove(ctx context.Context, s backend.Store, shard string, ids []string) map[string]error {
	dirty := pagesOf(ids, shard)
	return writeDirty(ctx, dirty, func(ctx context.Context, name string) error {
		return update(ctx, s, name, func(entries []*Entry) []*Entry {
			return slices.DeleteFunc(entries, func(e *Entry) bool { return slices.Contains(dirty[name], e.ID) })
		})
	})
}

// Put writes one entry into its owner's page: a read and a write of the
// page. A pass saves its changes with Save instead, each page once.
func Put(ctx context.Context, s backend.Store, e *Entry) error {
	return update(ctx, s, ShardPageOf(e.ID, e.Shard), func(entries []*Entry) []*Entry {
		entries = slices.DeleteFunc(entries, func(x *Entry) bool { return x.ID == e.ID })
		return append(entries, e)
	})
}

// Delete removes one entry from the unsharded process's page: a read and
// a write of the page.
func Delete(ctx context.Context, s backend.Store, id string) error {
	if err := update(ctx, s, PageOf(id), func(entries []*Entry) []*Entry {
		return slices.DeleteFunc(entries, func(x *Entry) bool { return x.ID == id })
	}); err != nil {
		return err
	}
	return backend.Purge(ctx, s, legacyKey(id))
}

func update(ctx context.Context, s backend.Store, name string, change func([]*Entry) []*Entry) error {
	var pg page
	if err := s.Get(ctx, pagePrefix+name, &pg); err != nil && !errors.Is(err, backend.ErrNotFound) {
		return err
	}
	return writePage(ctx, s, name, change(pg.Entries))
}
