package inventory

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"unique"

	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/internal/backend"
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

// page is one stored page.
type page struct {
	Entries []*Entry `json:"entries"`
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
// per entry still in the earlier format).
func Load(ctx context.Context, s backend.Store) (map[string]*Entry, error) {
	pages, err := s.List(ctx, pagePrefix)
	if err != nil {
		return nil, err
	}
	legacy, err := s.List(ctx, legacyPrefix)
	if err != nil {
		return nil, err
	}
	read := make([][]*Entry, len(pages)+len(legacy))
	var effectives schemas.Effectives
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ioConcurrency)
	for i, name := range legacy {
		g.Go(func() error {
			var e Entry
			if err := s.Get(gctx, legacyPrefix+name, &e); err != nil {
				if errors.Is(err, backend.ErrNotFound) {
					return nil // deleted since the list: skip it
				}
				return err
			}
			e.share(&effectives)
			read[i] = []*Entry{&e}
			return nil
		})
	}
	for i, name := range pages {
		g.Go(func() error {
			var pg page
			if err := s.Get(gctx, pagePrefix+name, &pg); err != nil {
				if errors.Is(err, backend.ErrNotFound) {
					return nil
				}
				return fmt.Errorf("reading inventory page %s: %w", name, err)
			}
			for _, e := range pg.Entries {
				if e != nil {
					e.share(&effectives)
				}
			}
			read[len(legacy)+i] = pg.Entries
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[string]*Entry, len(pages)+len(legacy))
	// Pages come last: an entry both in a page and in the earlier format
	// (a migration cut short) is the page's, which is newer.
	fromPage := map[string]bool{}
	for i, entries := range read {
		for _, e := range entries {
			if e == nil || e.ID == "" {
				continue
			}
			if i >= len(legacy) {
				if prev := out[e.ID]; prev != nil && fromPage[e.ID] {
					if !later(e, prev) {
						r := prev.Edit()
						r.elsewhere = append(r.elsewhere, e.Shard) // another shard's copy is newer
						continue
					}
					elsewhere := append(rareOf(prev).elsewhere, prev.Shard)
					e.Edit().elsewhere = elsewhere
				}
				fromPage[e.ID] = true
			}
			out[e.ID] = e
		}
	}
	return out, nil
}

// share replaces the values of e that repeat across a fleet's entries —
// issuer, file, revision, author, shard, target kinds and places, the
// Effective — by one shared copy each, right after a page is decoded: the
// decoder makes a copy per entry, and a pass holds every entry at once.
func (e *Entry) share(effectives *schemas.Effectives) {
	for _, s := range []*string{&e.Issuer, &e.File, &e.Revision, &e.Author, &e.Shard} {
		*s = unique.Make(*s).Value()
	}
	for i := range e.Targets {
		t := &e.Targets[i]
		t.Kind = render.TargetKind(unique.Make(string(t.Kind)).Value())
		for _, s := range []*string{&t.Cluster, &t.Namespace, &t.Mount} {
			*s = unique.Make(*s).Value()
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
		r.PermanentFor = unique.Make(r.PermanentFor).Value()
		r.FailureKind = FailureKind(unique.Make(string(r.FailureKind)).Value())
		for i := range r.Superseded {
			r.Superseded[i].Issuer = unique.Make(r.Superseded[i].Issuer).Value()
			r.Superseded[i].Reason = unique.Make(r.Superseded[i].Reason).Value()
		}
	}
	e.Effective = effectives.Share(e.Effective)
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
	dirty := map[string][]string{} // page → changed IDs in it
	for _, id := range changed {
		pg := ShardPageOf(id, shard)
		dirty[pg] = append(dirty[pg], id)
	}
	members := map[string][]*Entry{}
	for id, e := range inv {
		if pg := ShardPageOf(id, shard); dirty[pg] != nil && e != nil && e.Shard == shard {
			members[pg] = append(members[pg], e)
		}
	}
	failed := make(map[string]error)
	names := slices.Sorted(maps.Keys(dirty))
	errs := make([]error, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ioConcurrency)
	for i, name := range names {
		g.Go(func() error {
			errs[i] = writePage(gctx, s, name, members[name])
			return nil
		})
	}
	_ = g.Wait()
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
// entry) into their pages and deletes the old documents; inv is the
// inventory as Load read it. It costs one LIST when there is nothing to move.
func Migrate(ctx context.Context, s backend.Store, inv map[string]*Entry) error {
	legacy, err := s.List(ctx, legacyPrefix)
	if err != nil || len(legacy) == 0 {
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
