// Package render turns a repository snapshot into desired certificates: it
// decodes every manifest (one bad document never hides the others), fans
// CertificateSets out over their items and clusterSelectors out over the
// catalog's clusters, gives each certificate a stable ID, and rejects two
// certificates that would write the same place.
package render

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/certfleet/certfleet/internal/intern"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// TargetKind is where a target writes.
type TargetKind string

const (
	Kubernetes TargetKind = "kubernetes"
	VaultKV    TargetKind = "vaultKV"
	Directory  TargetKind = "directory"
)

// Address is where a certificate is delivered, one shape from the
// declaration to the targets that read and write it and the inventory that
// records it (as this JSON). Key identifies the place; KubernetesAddress,
// VaultKVAddress and DirectoryAddress derive it, nothing else does.
type Address struct {
	// Key is kubernetes/<cluster>/<namespace>/<secret>,
	// vault-kv/<mount>/<path> or directory/<path> (see DirectoryKey).
	Key  string     `json:"key"`
	Kind TargetKind `json:"kind"`
	// Cluster, Namespace and Name address a Secret.
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Mount and Path address a Vault KV secret; Path alone a directory.
	Mount string `json:"mount,omitempty"`
	Path  string `json:"path,omitempty"`
}

// KubernetesAddress is the address of a Secret.
func KubernetesAddress(cluster, namespace, name string) Address {
	return Address{Key: "kubernetes/" + cluster + "/" + namespace + "/" + name, Kind: Kubernetes,
		Cluster: cluster, Namespace: namespace, Name: name}
}

// VaultKVAddress is the address of a Vault KV secret.
func VaultKVAddress(mount, path string) Address {
	return Address{Key: "vault-kv/" + mount + "/" + strings.Trim(path, "/"), Kind: VaultKV, Mount: mount, Path: path}
}

// DirectoryAddress is the address of a directory; a relative path is
// below outputDir.
func DirectoryAddress(outputDir, path string) Address {
	return Address{Key: DirectoryKey(outputDir, path), Kind: Directory, Path: path}
}

// Target is one resolved place a certificate is delivered: a clusterSelector
// becomes one Target per selected cluster.
type Target struct {
	Address
	// Index is the target's place in spec.targets, for messages.
	Index int
	// Template is what a Secret carries besides the certificate.
	Template *schemas.SecretTemplate
	// TemplateHash changes when only the delivered object must be rewritten.
	TemplateHash string
	// Probe is the TLS endpoint serving this target's certificate (nil: none).
	Probe *schemas.Probe
	// Restart is the workload restarted after a new certificate is
	// delivered here (nil: none; Kubernetes targets only).
	Restart *schemas.Restart
}

// Desired is a certificate as the repository declares it, with its targets
// resolved.
type Desired struct {
	// ID is stable across renames of files: <namespace>/<name>, or <name>.
	ID          string
	Certificate *schemas.Certificate
	Origin      schemas.Origin
	Targets     []Target
	// IssueHash changes when a new certificate is needed.
	IssueHash string
}

// File is the repository path the certificate was declared in ("" when
// it was not read from a file).
func (d *Desired) File() string {
	if d.Origin.Doc == nil {
		return ""
	}
	return d.Origin.Doc.File
}

// Line is the line of the certificate's declaration (the document start).
func (d *Desired) Line() int { return d.Origin.Doc.Line }

// Pos is the line and column of a field of the certificate in its file.
func (d *Desired) Pos(field string) (int, int) { return d.Origin.Pos(field) }

// Result is a rendered revision.
type Result struct {
	Revision source.Revision
	// Scope is the part of the repository rendered (a pass prunes only
	// what was declared inside it).
	Scope source.Scope
	// Desired certificates, sorted by ID. Invalid ones are left out and reported.
	Desired []*Desired
	// TrustBundles declared in the repository.
	TrustBundles []*schemas.TrustBundle
	// Errors are invalid manifests, sorted by file and line.
	Errors  schemas.Errors
	Ignored []schemas.Ignored
	// Documents counts the certfleet documents read.
	Documents int
	// Unresolved counts clusterSelector targets left unresolved because no catalog was given.
	Unresolved int
	// Others are the valid certificates a Keep left out (WithKeep), sorted
	// by ID: only their IDs and tags are held.
	Others []Other

	// bundleDocs are the documents of TrustBundles, index for index.
	bundleDocs []*schemas.Document
	// othersAt are where Others were declared and the keys of their
	// targets, index for index, while the revision-wide checks run.
	othersAt []otherAt
}

type otherAt struct {
	file string
	line int
	keys []string
}

// Other is a certificate a Keep left out: its ID and the tag Keep gave it
// (such as the shard it belongs to).
type Other struct {
	ID, Tag string
}

// Render reads a snapshot with a fresh Renderer.
func Render(snap *source.Snapshot, cat *schemas.Catalog) *Result {
	return NewRenderer().Render(snap, cat)
}

// Renderer renders snapshots, remembering what each file decoded to: a file
// whose path and content are unchanged is not parsed again. Plan renders
// base and head with one Renderer; the daemon keeps one across passes, so a
// one-file commit re-reads one file.
type Renderer struct {
	files  map[fileKey]*fileResult
	parsed int
	// generation counts renders; a file unused by the last two is forgotten,
	// so a daemon that runs for months holds two revisions, not all of them.
	generation int
	// outputDir is the absolute directory relative directory targets are under.
	outputDir string
	// keep decides which certificates a Result holds whole (nil: all).
	keep Keep
	// release lets go of each snapshot file's data once decoded (WithRelease).
	release bool
}

// Keep says, from a certificate's ID and its manifest's labels, whether a
// Result holds the certificate whole; tag is what is remembered of one it
// does not hold (Result.Others).
type Keep func(id string, labels map[string]string) (keep bool, tag string)

// fileKey is a file's path and a hash of its content: the content itself,
// as a key, would hold a copy of the whole revision's text for as long as
// the Renderer lives.
type fileKey struct {
	path    string
	content [sha256.Size]byte
}

// fileResult is what one file declares, independent of the catalog.
type fileResult struct {
	lastUsed int // the generation that last read the file

	decoded    schemas.Decoded
	declared   []declared
	errs       schemas.Errors
	bundles    []*schemas.TrustBundle
	bundleDocs []*schemas.Document
	// documents counts decoded.Documents, which is not kept.
	documents int
}

type declared struct {
	schemas.Declared
	issueHash string
	// other, when a Keep left the certificate out, replaces the rest: the
	// decoded certificate is dropped with its file's other documents.
	other *other
}

// other is what a Renderer keeps of a certificate a Keep left out: enough
// to report it (Others) and to find conflicts with it (one ID or one target
// declared twice) across the whole revision.
type other struct {
	Other
	file    string
	line    int
	targets []schemas.Target
}

// Option configures a Renderer.
type Option func(*Renderer)

// WithOutputDir names the directory relative directory targets are written
// under (the reconciler's --output-dir), so an absolute path below it is the
// same target as its relative spelling. Default (and with ""): none;
// absolute and relative paths are then never the same target.
func WithOutputDir(dir string) Option {
	return func(rr *Renderer) {
		if dir == "" {
			return
		}
		if abs, err := filepath.Abs(dir); err == nil {
			rr.outputDir = abs
		}
	}
}

// WithKeep makes the Renderer hold only the certificates keep accepts (and
// the ID and tag of the others, Result.Others). keep is asked once per
// certificate as each file is decoded, so the others are dropped file by
// file: a shard that renders the whole revision holds about its share.
// Conflicts are still found across the whole revision; an invalid
// certificate keep would leave out is left out without an error (the
// Renderer that keeps it reports it). keep must give a file the same
// answers every time (it is asked once per cached file). Default: every
// certificate is kept.
func WithKeep(keep Keep) Option {
	return func(rr *Renderer) { rr.keep = keep }
}

// WithRelease makes Render let go of each file of the snapshot it renders
// (its source.File.Data set to nil) as soon as the file is decoded: what
// the Renderer keeps of a file holds its text packed, not the file's data,
// which is then garbage rather than held with every other file's until
// the caller drops the snapshot. For a caller that renders a snapshot once
// (reconcile --once): a shard renders the whole revision and holds a
// quarter of it, and the repository's text was a quarter of its peak
// heap. The snapshot cannot be rendered, or its files read, again.
func WithRelease() Option {
	return func(rr *Renderer) { rr.release = true }
}

// NewRenderer returns a Renderer with an empty cache.
func NewRenderer(opts ...Option) *Renderer {
	rr := &Renderer{files: map[fileKey]*fileResult{}}
	for _, o := range opts {
		o(rr)
	}
	return rr
}

// DirectoryKey is the key of a directory target: "directory/" and its
// path cleaned ("./web//www/" is web/www), relative to outputDir when it is
// absolute and lies below it. Two spellings of one directory get one key,
// so one directory has one owner.
func DirectoryKey(outputDir, path string) string {
	if outputDir != "" {
		if abs, err := filepath.Abs(outputDir); err == nil {
			outputDir = abs
		}
	}
	p := filepath.Clean(path)
	if filepath.IsAbs(p) && outputDir != "" {
		if rel, err := filepath.Rel(outputDir, p); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			p = rel
		}
	}
	return "directory/" + filepath.ToSlash(p)
}

// Parsed counts the files parsed since the Renderer was made (cache misses).
func (rr *Renderer) Parsed() int { return rr.parsed }

func (rr *Renderer) file(f source.File, strs *intern.Strings) *fileResult {
	k := fileKey{f.Path, sha256.Sum256(f.Data)}
	if fr, ok := rr.files[k]; ok {
		fr.lastUsed = rr.generation
		return fr
	}
	fr := &fileResult{decoded: schemas.DecodeSharing(f.Path, f.Data, strs)}
	for _, d := range fr.decoded.Documents {
		switch d.Kind {
		case schemas.KindCertificate, schemas.KindCertificateSet:
			decls, errs := schemas.DeclarationsSharing(d, strs)
			fr.errs = append(fr.errs, errs...)
			for _, decl := range decls {
				fr.declared = append(fr.declared, rr.declare(decl))
			}
		case schemas.KindTrustBundle:
			if errs := schemas.Validate(d.Object); len(errs) > 0 {
				fr.errs = append(fr.errs, d.Locate(errs)...)
				continue
			}
			fr.bundles = append(fr.bundles, d.Object.(*schemas.TrustBundle))
			fr.bundleDocs = append(fr.bundleDocs, d)
		default:
			fr.errs = append(fr.errs, d.Locate(schemas.Errors{{Field: "kind",
				Problem: fmt.Sprintf("%s is a catalog kind and does not belong in the repository", d.Kind),
				Hint:    "declare it with the certfleet Terraform provider (or `certfleet catalog apply`)"}})...)
		}
	}
	// The documents live on in what was kept; the count is all Render needs.
	fr.documents, fr.decoded.Documents = len(fr.decoded.Documents), nil
	// What is kept holds its text compressed, not the file's: a pass keeps
	// every certificate, and needs the text only to place a position.
	kept := slices.Clone(fr.bundleDocs)
	for _, d := range fr.declared {
		if d.other == nil {
			kept = append(kept, d.Origin.Doc)
		}
	}
	schemas.PackText(kept)
	fr.lastUsed = rr.generation
	rr.files[k] = fr
	rr.parsed++
	return fr
}

// declare is a declaration as the Renderer holds it: whole, or as an other.
func (rr *Renderer) declare(decl schemas.Declared) declared {
	c := decl.Certificate
	if rr.keep != nil {
		if keep, tag := rr.keep(ID(c), c.Metadata.Labels); !keep {
			return declared{other: &other{Other: Other{ID: ID(c), Tag: tag}, file: decl.Origin.Doc.File,
				line: decl.Origin.Doc.Line, targets: c.Spec.Targets}}
		}
	}
	return declared{Declared: decl, issueHash: schemas.IssueHash(&c.Spec)}
}

// forget drops the files neither of the last two renders read.
func (rr *Renderer) forget() {
	for k, fr := range rr.files {
		if fr.lastUsed < rr.generation-1 {
			delete(rr.files, k)
		}
	}
}

// Render reads a snapshot. With a catalog, cluster names are checked and
// clusterSelectors fanned out; without one (a validate with no catalog),
// selectors stay unresolved and are counted.
func (rr *Renderer) Render(snap *source.Snapshot, cat *schemas.Catalog) *Result {
	rr.generation++
	defer rr.forget()
	r := &Result{Revision: snap.Revision, Scope: snap.Scope}
	// Every file is decoded first, so that what the result holds per
	// certificate is sized once, not grown by doubling: at a fleet's size
	// the halves left behind, and a map of every ID grown step by step,
	// were garbage at the render's peak (a shard's peak).
	frs := make([]*fileResult, len(snap.Files))
	// One copy of each value the pass's certificates share, across files.
	var strs intern.Strings
	held, others := 0, 0
	for i, f := range snap.Files {
		frs[i] = rr.file(f, &strs)
		if rr.release {
			snap.Files[i].Data = nil
		}
		for _, decl := range frs[i].declared {
			if decl.other != nil {
				others++
			} else {
				held++
			}
		}
	}
	if held > 0 {
		r.Desired = make([]*Desired, 0, held)
	}
	if others > 0 {
		r.Others, r.othersAt = make([]Other, 0, others), make([]otherAt, 0, others)
	}
	byID := make(map[string]place, held+others)
	for _, fr := range frs {
		r.Errors = append(r.Errors, fr.decoded.Errors...)
		r.Errors = append(r.Errors, fr.errs...)
		r.Ignored = append(r.Ignored, fr.decoded.Ignored...)
		r.Documents += fr.documents
		r.TrustBundles = append(r.TrustBundles, fr.bundles...)
		r.bundleDocs = append(r.bundleDocs, fr.bundleDocs...)
		for _, decl := range fr.declared {
			if decl.other != nil {
				r.addOther(decl.other, cat, byID, rr.outputDir)
				continue
			}
			r.add(decl, cat, byID, rr.outputDir, &strs)
		}
	}
	r.checkTargets()
	r.checkTrustBundles(rr.outputDir)
	r.othersAt = nil
	sort.Slice(r.Desired, func(i, j int) bool { return r.Desired[i].ID < r.Desired[j].ID })
	sort.Slice(r.Others, func(i, j int) bool { return r.Others[i].ID < r.Others[j].ID })
	r.Errors.Sort()
	return r
}

// ID is a certificate's stable ID.
func ID(c *schemas.Certificate) string {
	if c.Metadata.Namespace != "" {
		return c.Metadata.Namespace + "/" + c.Metadata.Name
	}
	return c.Metadata.Name
}

// place is where a certificate, held or other, was declared, for the
// revision-wide checks.
type place struct {
	id, file string
	line     int
	// d is the certificate, or other the index of an Other.
	d     *Desired
	other int
}

func (d *Desired) place() place { return place{id: d.ID, file: d.File(), line: d.Line(), d: d} }

// addOther adds a certificate a Keep left out, unless it is invalid: its
// ID taken, or a target that does not resolve.
func (r *Result) addOther(o *other, cat *schemas.Catalog, byID map[string]place, outputDir string) {
	if _, dup := byID[o.ID]; dup {
		return
	}
	var keys []string
	for i, t := range o.targets {
		resolved, errs := resolve(i, t, cat, r, outputDir)
		if len(errs) > 0 {
			return
		}
		for _, rt := range resolved {
			keys = append(keys, rt.Key)
		}
	}
	byID[o.ID] = place{id: o.ID, file: o.file, line: o.line, other: len(r.Others)}
	r.Others = append(r.Others, o.Other)
	r.othersAt = append(r.othersAt, otherAt{o.file, o.line, keys})
}

func (r *Result) add(decl declared, cat *schemas.Catalog, byID map[string]place, outputDir string, strs *intern.Strings) {
	c := decl.Certificate
	id := ID(c)
	if prev, dup := byID[id]; dup {
		r.Errors = append(r.Errors, decl.Origin.Locate(schemas.Errors{{Field: "metadata.name",
			Problem: fmt.Sprintf("certificate %s is declared twice: here and at %s:%d", id, prev.file, prev.line),
			Hint:    "give one of them another name (or namespace)"}})...)
		return
	}
	d := &Desired{ID: id, Certificate: c, Origin: decl.Origin, IssueHash: decl.issueHash}
	if len(c.Spec.Targets) > 0 {
		d.Targets = make([]Target, 0, len(c.Spec.Targets)) // one each, but for clusterSelectors
	}
	var errs schemas.Errors
	for i, t := range c.Spec.Targets {
		resolved, es := resolve(i, t, cat, r, outputDir)
		errs = append(errs, es...)
		for _, rt := range resolved {
			// Most certificates of a fleet share a template hash: one copy.
			rt.TemplateHash = strs.Share(schemas.TemplateHash(&c.Spec, t))
			rt.Probe, rt.Restart = t.Probe, t.Restart
			d.Targets = append(d.Targets, rt)
		}
	}
	if len(errs) > 0 {
		r.Errors = append(r.Errors, decl.Origin.Locate(errs)...)
		return
	}
	byID[id] = d.place()
	r.Desired = append(r.Desired, d)
}

// resolve turns a declared target into resolved ones.
func resolve(i int, t schemas.Target, cat *schemas.Catalog, r *Result, outputDir string) ([]Target, schemas.Errors) {
	field := fmt.Sprintf("spec.targets[%d]", i)
	switch {
	case t.Kubernetes != nil:
		k := t.Kubernetes
		mk := func(cluster string) Target {
			return Target{Address: KubernetesAddress(cluster, k.Namespace, k.SecretName), Index: i, Template: k.SecretTemplate}
		}
		if k.Cluster != "" {
			if cat != nil {
				if _, ok := cat.Clusters[k.Cluster]; !ok {
					return nil, schemas.Errors{{Field: field + ".kubernetes.cluster",
						Problem: fmt.Sprintf("cluster %q is not in the catalog", k.Cluster),
						Hint:    "use one of: " + names(cat)}}
				}
			}
			return []Target{mk(k.Cluster)}, nil
		}
		if cat == nil {
			r.Unresolved++
			return nil, nil
		}
		matched := cat.ClustersMatching(k.ClusterSelector.MatchLabels)
		if len(matched) == 0 {
			return nil, schemas.Errors{{Field: field + ".kubernetes.clusterSelector",
				Problem: fmt.Sprintf("clusterSelector %v matches no cluster in the catalog", k.ClusterSelector.MatchLabels),
				Hint:    "check the labels of the catalog's clusters: " + names(cat)}}
		}
		out := make([]Target, 0, len(matched))
		for _, c := range matched {
			out = append(out, mk(c.Metadata.Name))
		}
		return out, nil
	case t.VaultKV != nil:
		return []Target{{Address: VaultKVAddress(t.VaultKV.Mount, t.VaultKV.Path), Index: i}}, nil
	case t.Directory != nil:
		return []Target{{Address: DirectoryAddress(outputDir, t.Directory.Path), Index: i}}, nil
	}
	return nil, nil
}

func names(cat *schemas.Catalog) string {
	var out []string
	for _, c := range cat.ClustersMatching(nil) {
		var labels []string
		for k, v := range c.Metadata.Labels {
			labels = append(labels, k+"="+v)
		}
		sort.Strings(labels)
		out = append(out, fmt.Sprintf("%s {%s}", c.Metadata.Name, strings.Join(labels, ", ")))
	}
	if len(out) == 0 {
		return "(the catalog has no clusters)"
	}
	return strings.Join(out, "; ")
}

// checkTargets rejects two certificates writing the same place, naming
// both files; the later one (by file and line) is left out. A certificate
// whose own targets reach one place twice (a clusterSelector and a named
// cluster, say) is left out too: the two writes would fight. Others take
// part, so every Renderer of a revision leaves out the same certificates;
// an Other left out is dropped without an error (its own Renderer has it).
func (r *Result) checkTargets() {
	all := make([]place, 0, len(r.Desired)+len(r.Others))
	for _, d := range r.Desired {
		all = append(all, d.place())
	}
	for i, o := range r.Others {
		all = append(all, place{id: o.ID, file: r.othersAt[i].file, line: r.othersAt[i].line, other: i})
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.file != b.file {
			return a.file < b.file
		}
		return a.line < b.line
	})
	// owner is the index in all of the certificate writing each key.
	owner := make(map[string]int, len(all))
	keptOthers := make([]bool, len(r.Others))
	kept := r.Desired[:0]
	for n, p := range all {
		var errs schemas.Errors
		mine := map[string]int{} // key → index of this certificate's target that writes it
		keys := p.keys(r)
		for j, key := range keys {
			index := j
			if p.d != nil {
				index = p.d.Targets[j].Index
			}
			field := fmt.Sprintf("spec.targets[%d]", index)
			if o, taken := owner[key]; taken {
				prev := all[o]
				errs = append(errs, &schemas.Error{Field: field,
					Problem: fmt.Sprintf("target %s is also written by certificate %s (%s:%d)", key, prev.id, prev.file, prev.line),
					Hint:    "give each certificate its own secretName, Vault path or directory"})
			} else if i, twice := mine[key]; twice {
				errs = append(errs, &schemas.Error{Field: field,
					Problem: fmt.Sprintf("target %s is also written by spec.targets[%d]", key, i),
					Hint:    "write each Secret, Vault path or directory from one target only"})
			} else {
				mine[key] = index
			}
		}
		if len(errs) > 0 {
			if p.d != nil {
				r.Errors = append(r.Errors, p.d.Origin.Locate(errs)...)
			}
			continue
		}
		for _, key := range keys {
			owner[key] = n
		}
		if p.d != nil {
			kept = append(kept, p.d)
		} else {
			keptOthers[p.other] = true
		}
	}
	r.Desired = kept
	others, at := r.Others[:0], r.othersAt[:0]
	for i, o := range r.Others {
		if keptOthers[i] {
			others, at = append(others, o), append(at, r.othersAt[i])
		}
	}
	r.Others, r.othersAt = others, at
}

// keys are the target keys of a place's certificate.
func (p place) keys(r *Result) []string {
	if p.d == nil {
		return r.othersAt[p.other].keys
	}
	keys := make([]string, len(p.d.Targets))
	for i, t := range p.d.Targets {
		keys[i] = t.Key
	}
	return keys
}

// checkTrustBundles rejects a TrustBundle writing into a directory a
// certificate (or an earlier TrustBundle) writes: its ca.crt would replace
// the certificate's, or the two bundles would fight. The TrustBundle is left
// out; the certificate keeps its directory.
func (r *Result) checkTrustBundles(outputDir string) {
	certs := map[string]place{}
	for _, d := range r.Desired {
		for _, t := range d.Targets {
			if t.Kind == Directory {
				certs[t.Key] = d.place()
			}
		}
	}
	for i, at := range r.othersAt {
		for _, key := range at.keys {
			if strings.HasPrefix(key, "directory/") { // DirectoryKey's
				certs[key] = place{id: r.Others[i].ID, file: at.file, line: at.line, other: i}
			}
		}
	}
	type owner struct {
		name string
		doc  *schemas.Document
	}
	bundles := map[string]owner{}
	var kept []*schemas.TrustBundle
	var keptDocs []*schemas.Document
	for i, tb := range r.TrustBundles {
		doc := r.bundleDocs[i]
		var errs schemas.Errors
		mine := map[string]bool{}
		for j, t := range tb.Spec.Targets {
			if t.Directory == nil {
				continue
			}
			key := DirectoryKey(outputDir, t.Directory.Path)
			field := fmt.Sprintf("spec.targets[%d].directory.path", j)
			if d, taken := certs[key]; taken {
				errs = append(errs, &schemas.Error{Field: field,
					Problem: fmt.Sprintf("target %s is certificate %s's directory (%s:%d): a trust bundle and a certificate cannot share a directory", key, d.id, d.file, d.line),
					Hint:    "give the trust bundle a directory of its own: its ca.crt would replace the certificate's"})
			} else if o, taken := bundles[key]; taken {
				errs = append(errs, &schemas.Error{Field: field,
					Problem: fmt.Sprintf("target %s is also written by trust bundle %s (%s:%d)", key, o.name, o.doc.File, o.doc.Line),
					Hint:    "give each trust bundle its own directory"})
			} else if mine[key] {
				errs = append(errs, &schemas.Error{Field: field,
					Problem: fmt.Sprintf("target %s is written twice by this trust bundle", key),
					Hint:    "write each directory from one target only"})
			}
			mine[key] = true
		}
		if len(errs) > 0 {
			r.Errors = append(r.Errors, doc.Locate(errs)...)
			continue
		}
		for key := range mine {
			bundles[key] = owner{tb.Metadata.Name, doc}
		}
		kept, keptDocs = append(kept, tb), append(keptDocs, doc)
	}
	r.TrustBundles, r.bundleDocs = kept, keptDocs
}
