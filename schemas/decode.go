package schemas

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certfleet/certfleet/internal/intern"
)

// Document is one YAML document of a file, decoded into its kind. It keeps
// the parsed YAML so that any later error can be placed on a line.
type Document struct {
	// File is the path the document was read from, as given to Decode.
	File string
	// Index is the document's place in its file, from 0.
	Index int
	// Line is the line the document's content starts on.
	Line int
	Kind string
	Name string
	// Namespace is metadata.namespace ("" when unset).
	Namespace string
	// Object is a pointer to the kind's type: *Certificate, *Authority, …
	Object any

	// src is the document's text, a slice of the file (not a copy), and
	// srcLine the file's line it starts on. The YAML tree is parsed again
	// from it when a position is asked for: trees take ~16 bytes per byte
	// of YAML, and a pass needs positions only for the few documents with
	// errors or changes.
	src     []byte
	srcLine int
	// packed, once PackText ran, holds the text instead of src (then
	// nil), srcLen bytes from packedAt.
	packed           *packedText
	packedAt, srcLen int32
	// node is the tree while Decode works on the document.
	node *yaml.Node
	// set is a CertificateSet's tree once parsed again: a pass asks for
	// positions in it for each of its items, and re-parsing a large set per
	// item would cost as much as the items.
	set atomic.Pointer[yaml.Node]
}

// text is the document's text (nil when it was not decoded from YAML).
func (d *Document) text() []byte {
	if d.packed == nil {
		return d.src
	}
	t := d.packed.text()
	if t == nil {
		return nil
	}
	return t[d.packedAt : d.packedAt+d.srcLen]
}

// tree returns the document's YAML tree with the file's lines, or nil
// when the document was not decoded from YAML.
func (d *Document) tree() *yaml.Node {
	if d.node != nil || d.src == nil && d.packed == nil {
		return d.node
	}
	if n := d.set.Load(); n != nil {
		return n
	}
	var root yaml.Node
	if err := yaml.Unmarshal(d.text(), &root); err != nil || len(root.Content) == 0 {
		return nil // cannot happen: the same text was parsed before
	}
	n := root.Content[0]
	shift(n, d.srcLine-1)
	if d.Kind == KindCertificateSet {
		d.set.Store(n) // two callers may both parse it; either tree is the same
	}
	return n
}

// Ignored is a document of another API group, left alone (a repository may
// hold Kubernetes manifests beside certfleet's).
type Ignored struct {
	File       string
	Line       int
	APIVersion string
	Kind       string
}

// Decoded is what Decode found in one file.
type Decoded struct {
	Documents []*Document
	Ignored   []Ignored
	Errors    Errors
}

// newObject maps each kind to a constructor of its type.
var newObject = map[string]func() any{
	KindAuthority:      func() any { return &Authority{} },
	KindIssuer:         func() any { return &Issuer{} },
	KindPolicy:         func() any { return &Policy{} },
	KindCluster:        func() any { return &Cluster{} },
	KindRollout:        func() any { return &Rollout{} },
	KindCertificate:    func() any { return &Certificate{} },
	KindCertificateSet: func() any { return &CertificateSet{} },
	KindTrustBundle:    func() any { return &TrustBundle{} },
}

// Kinds lists the kinds in a stable order.
var Kinds = []string{KindAuthority, KindIssuer, KindPolicy, KindCluster, KindRollout, KindCertificate, KindCertificateSet, KindTrustBundle}

const apiGroup = "certfleet.dev"

// Decode reads every YAML document of a file strictly: unknown fields, wrong
// types and YAML syntax errors are errors with their line and column. Each
// document is parsed on its own, so one broken document never hides the
// others. Decode does not validate; Validate does.
//
// The documents keep slices of data to place later errors; the caller must
// not modify data afterwards.
//
// What a file decodes to, aliases followed and CertificateSets expanded, is
// bounded by its size (see fileBudget): a small file cannot make the
// checker decode billions of values.
//
// The values most certificates of a fleet share (see interned) are one
// copy each within the file; DecodeSharing shares them across files.
func Decode(file string, data []byte) Decoded { return DecodeSharing(file, data, new(intern.Strings)) }

// DecodeSharing is Decode with the values most certificates share held in
// strs: one copy each across every file decoded with it while it is kept
// (a pass keeps one for all its files).
func DecodeSharing(file string, data []byte, strs *intern.Strings) Decoded {
	return decode(file, data, newStream(data), strs)
}

// decode is Decode with the documents taken from st where it has them; the
// fuzz test compares it with a decode that parses every chunk on its own.
func decode(file string, data []byte, st *stream, strs *intern.Strings) Decoded {
	var out Decoded
	b := fileBudget(len(data))
	chunks := splitDocuments(data)
	for i, chunk := range chunks {
		if b.exceeded && !blank(chunk.data) {
			// The file's budget is spent: parsing more would only add work.
			out.Errors = append(out.Errors, &Error{File: file, Line: chunk.line, Column: 1,
				Problem: fmt.Sprintf("not decoded: a document above goes over the file's limit of %d values", b.limit),
				Hint:    "fix the document the limit is reported on first"})
			continue
		}
		end := math.MaxInt
		if i+1 < len(chunks) {
			end = chunks[i+1].line
		}
		n := st.document(chunk.line, end)
		if n == nil {
			var root yaml.Node
			if err := yaml.Unmarshal(chunk.data, &root); err != nil {
				out.Errors = append(out.Errors, yamlSyntaxError(file, chunk, err))
				continue
			}
			if len(root.Content) == 0 || root.Content[0].ShortTag() == "!!null" {
				continue // empty document: only comments or whitespace
			}
			n = root.Content[0]
			shift(n, chunk.line-1)
		}
		line := n.Line
		if n.Kind != yaml.MappingNode {
			out.Errors = append(out.Errors, &Error{File: file, Line: n.Line, Column: n.Column,
				Problem: fmt.Sprintf("a document must be a mapping with apiVersion, kind, metadata and spec, got %s", describe(n)),
				Hint:    "start the document with `apiVersion: " + APIVersion + "`"})
			continue
		}
		apiVersion, kind := scalar(n, "apiVersion"), scalar(n, "kind")
		group, _, _ := strings.Cut(apiVersion, "/")
		_, certfleetKind := newObject[kind]
		if group != apiGroup && !(apiVersion == "" && certfleetKind) {
			out.Ignored = append(out.Ignored, Ignored{File: file, Line: line, APIVersion: apiVersion, Kind: kind})
			continue
		}
		d := &Document{File: file, Index: i, Line: line, Kind: strs.Share(kind), node: n, src: chunk.data, srcLine: chunk.line, srcLen: int32(len(chunk.data))}
		d.Name, d.Namespace = scalar(mapValue(n, "metadata"), "name"), strs.Share(scalar(mapValue(n, "metadata"), "namespace"))
		switch {
		case apiVersion == "":
			// A certfleet kind without apiVersion would otherwise be ignored
			// in silence, as if it were another tool's manifest.
			out.Errors = append(out.Errors, d.Locate(Errors{{Problem: "apiVersion is missing",
				Hint: "start the document with `apiVersion: " + APIVersion + "`"}})...)
			continue
		case apiVersion != APIVersion:
			out.Errors = append(out.Errors, d.Locate(Errors{{Field: "apiVersion",
				Problem: fmt.Sprintf("unknown apiVersion %s", quote(apiVersion)),
				Hint:    "use " + APIVersion}})...)
			continue
		case kind == "":
			out.Errors = append(out.Errors, d.Locate(Errors{{Problem: "kind is missing",
				Hint: "add `kind:` with one of " + strings.Join(Kinds, ", ")}})...)
			continue
		case !certfleetKind:
			hint := "use one of " + strings.Join(Kinds, ", ")
			if s := suggest(kind, Kinds); s != "" {
				hint = "did you mean " + s + "?"
			}
			out.Errors = append(out.Errors, d.Locate(Errors{{Field: "kind", Problem: fmt.Sprintf("unknown kind %s", quote(kind)), Hint: hint}})...)
			continue
		}
		obj := newObject[kind]()
		e := errs{budget: b, strs: strs}
		b.aliased = false
		decodeNode(n, nil, reflect.ValueOf(obj).Elem(), nil, &e)
		if set, ok := obj.(*CertificateSet); ok && len(e.list) == 0 {
			chargeExpansion(n, set, &e)
		}
		if len(e.list) > 0 {
			out.Errors = append(out.Errors, d.Locate(e.list)...)
			continue
		}
		d.Object = obj
		d.node = nil // parsed again if a position is needed
		out.Documents = append(out.Documents, d)
	}
	return out
}

// stream parses a file's documents with one parser. A parser per document
// allocates its buffers and token queue anew, more than the document's own
// tree for small documents; a file of many small Certificates is parsed
// this way at a third less. A document is taken from the stream only when
// it lies within its chunk: anything else — a syntax error (which ends the
// stream), an alias of another document's anchor (a parser per document
// refuses it), a document that spans chunks — leaves the chunk, and the
// rest, to be parsed on its own as before.
type stream struct {
	dec    *yaml.Decoder
	next   *yaml.Node // a document parsed ahead, for a later chunk
	lo, hi int        // the lines next spans, aliases' anchors included
}

func newStream(data []byte) *stream {
	// Directives (%YAML, %TAG) belong to the document after them, which
	// the cut at "---" separates from them; parse such files per chunk.
	if bytes.HasPrefix(data, []byte("%")) || bytes.Contains(data, []byte("\n%")) {
		return &stream{}
	}
	return &stream{dec: yaml.NewDecoder(bytes.NewReader(data))}
}

// document returns the tree of the chunk on lines [lo, hi), or nil when it
// must be parsed on its own.
func (s *stream) document(lo, hi int) *yaml.Node {
	for s.dec != nil {
		if s.next == nil {
			var root yaml.Node
			if err := s.dec.Decode(&root); err != nil {
				s.dec = nil // the end, or an error the chunk's own parse reports
				return nil
			}
			if len(root.Content) == 0 || root.Content[0].ShortTag() == "!!null" {
				continue // an empty document
			}
			s.next = root.Content[0]
			s.lo, s.hi = lineRange(s.next)
		}
		switch {
		case s.lo >= hi:
			return nil // the stream's next document is a later chunk's
		case s.lo >= lo && s.hi < hi:
			n := s.next
			s.next = nil
			return n
		}
		s.dec, s.next = nil, nil
	}
	return nil
}

// lineRange returns the first and last line of a tree's nodes and of the
// anchors its aliases refer to.
func lineRange(n *yaml.Node) (lo, hi int) {
	lo, hi = n.Line, n.Line
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		lo, hi = min(lo, n.Line), max(hi, n.Line)
		if n.Alias != nil {
			lo, hi = min(lo, n.Alias.Line), max(hi, n.Alias.Line)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return lo, hi
}

type chunk struct {
	data []byte
	line int // line of the chunk's first byte in the file
}

// splitDocuments cuts a multi-document YAML file at its "---" and "..."
// markers. A marker can only appear at column 0 outside block scalars (whose
// content is indented), so cutting lines is safe. A "---" stays at the start
// of its document: the rest of its line can hold content ("--- {a: 1}").
func splitDocuments(data []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	ended := false // the current chunk follows a "..." document end
	cut := func(end int) {
		c := chunk{data: data[start:end], line: startLine}
		// Between "..." and the next "---" there is no document.
		if !ended || !blank(c.data) {
			out = append(out, c)
		}
	}
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		l := bytes.TrimRight(data[pos:next], "\r\n")
		switch {
		case isMarker(l, "---"):
			cut(pos)
			start, startLine, ended = pos, line, false
		case isMarker(l, "..."):
			cut(pos)
			start, startLine, ended = next, line+1, true
		}
		pos = next
		line++
	}
	cut(len(data))
	// A "---" that opens the file starts the first document; the comments
	// before it are not a document of their own.
	if len(out) > 1 && blank(out[0].data) {
		out = out[1:]
	}
	return out
}

// blank reports whether YAML text holds only whitespace and comments.
func blank(data []byte) bool {
	for _, l := range bytes.Split(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

// isMarker reports whether a line is a document marker as the parser reads
// it: the marker, then the end of the line or a blank ("---#x" is a plain
// scalar, since a comment needs a blank before its "#").
func isMarker(l []byte, m string) bool {
	return bytes.HasPrefix(l, []byte(m)) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t')
}

var (
	yamlLine   = regexp.MustCompile(`line (\d+)`)
	yamlAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced`)
)

// yamlSyntaxError places a parser error on the file's line: the parser counts
// lines from the start of the document.
func yamlSyntaxError(file string, c chunk, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := c.line
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		if problem := strings.TrimPrefix(msg[m[1]:], ": "); parserProblem(problem) {
			n++ // yaml.v3 counts the lines of parser errors from 0, of scanner errors from 1
			if k := parserErrorLine(c.data, problem, n); k > 0 {
				n = k
			}
		}
		line = n + c.line - 1
		// The position says the line; the message need not.
		msg = msg[:m[0]] + strings.TrimPrefix(msg[m[1]:], ": ")
	} else if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		// The parser does not say where the alias is; find it.
		if i := bytes.Index(c.data, []byte("*"+m[1])); i >= 0 {
			line = c.line + bytes.Count(c.data[:i], []byte("\n"))
		}
	}
	hint := "fix the syntax; the other documents of the file are still checked"
	if tabIndented(c.data, line-c.line+1) {
		hint = "indent with spaces; YAML does not allow tabs in indentation; " + hint
	} else if flowPlaceholder(c.data, line-c.line+1) {
		// "[${service}.svc]" is not YAML: braces end a plain value in [ ] and { }.
		hint = `quote values with ${…} placeholders inside [ ] or { }, e.g. ["${service}.payments.svc"]; ` + hint
	}
	return &Error{File: file, Line: line, Column: 1, Problem: "invalid YAML: " + msg, Hint: hint}
}

// parserProblems are the problems yaml.v3's parser (not its scanner) reports.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'", "did not find expected '-' indicator",
	"did not find expected <document start>", "did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive", "found duplicate %YAML directive",
	"found incompatible YAML document", "found undefined tag handle",
}

func parserProblem(rest string) bool {
	for _, p := range parserProblems {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// parserErrorLine finds the line a parser error is on. yaml.v3 reports the
// line where the enclosing mapping or list starts, which can be far above;
// the shortest start of the document that fails with the same problem ends
// on the line. It returns 0 when it cannot tell.
func parserErrorLine(data []byte, problem string, from int) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 500 || len(data) > 64<<10 {
		return 0 // each try parses a prefix; keep the cost of an error bounded
	}
	for k := max(from, 1); k <= len(lines); k++ {
		var root yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:k], nil), &root)
		if err != nil && strings.HasSuffix(err.Error(), problem) {
			return k
		}
	}
	return 0
}

// tabIndented reports whether line n of a document is indented with a tab.
func tabIndented(data []byte, n int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if n < 1 || n > len(lines) {
		return false
	}
	l := lines[n-1]
	indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}

var flowPlaceholderRE = regexp.MustCompile(`[\[{,][^"'\n]*\$\{`)

// flowPlaceholder reports whether a line near line n of a document has an
// unquoted ${…} placeholder inside a flow list or mapping.
func flowPlaceholder(data []byte, n int) bool {
	lines := bytes.Split(data, []byte("\n"))
	for i := n - 2; i <= n; i++ { // the line before, the line, the line after
		if i >= 0 && i < len(lines) && flowPlaceholderRE.Match(lines[i]) {
			return true
		}
	}
	return false
}

// shift moves every node's line by offset, so positions are the file's.
func shift(n *yaml.Node, offset int) {
	n.Line += offset
	for _, c := range n.Content {
		shift(c, offset)
	}
}

func mapValue(n *yaml.Node, k string) *yaml.Node {
	_, v := mapEntry(n, k)
	return v
}

// mapEntry returns the key and value nodes of a mapping's key k.
func mapEntry(n *yaml.Node, k string) (key, value *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == k {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func scalar(n *yaml.Node, k string) string {
	if v := mapValue(n, k); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// Locate fills in the file, line, column and object of errors found in this
// document, from their field paths. A path that does not exist (a missing
// required field) points at its nearest parent.
func (d *Document) Locate(list Errors) Errors {
	var tree *yaml.Node
	parsed := false
	for _, e := range list {
		e.File, e.Kind, e.Name = d.File, d.Kind, d.Name
		if e.Line == 0 {
			if !parsed {
				tree, parsed = d.tree(), true
			}
			e.Line, e.Column = d.pos(tree, e.Field)
		}
	}
	return list
}

// Pos returns the line and column of the field at path, e.g.
// spec.targets[0].kubernetes.namespace, or of its nearest existing parent.
// A scalar is placed at its value, a list item at the item, and a mapping
// or list at its key, where the field is written.
func (d *Document) Pos(path string) (line, col int) { return d.pos(d.tree(), path) }

func (d *Document) pos(n *yaml.Node, path string) (line, col int) {
	if n == nil {
		return d.Line, 1
	}
	var k *yaml.Node // the key of n, when n is a mapping's value
	for _, seg := range splitPath(path) {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next, nextKey *yaml.Node
		switch {
		case seg.index >= 0 && n.Kind == yaml.SequenceNode && seg.index < len(n.Content):
			next = n.Content[seg.index]
		case seg.index < 0 && n.Kind == yaml.MappingNode:
			nextKey, next = mapEntry(n, seg.key)
		}
		if next == nil {
			break
		}
		n, k = next, nextKey
	}
	return at(n, k)
}

type segment struct {
	key   string
	index int // -1 for a key
}

// splitPath parses the paths index and key build.
func splitPath(path string) []segment {
	var out []segment
	for path != "" {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return out
			}
			inner := path[1:end]
			if strings.HasPrefix(inner, `"`) {
				// a quoted key may itself contain ']'
				if k, rest, err := unquotePrefix(path[1:]); err == nil {
					out = append(out, segment{key: k, index: -1})
					path = strings.TrimPrefix(rest, "]")
					continue
				}
			}
			i, _ := strconv.Atoi(inner)
			out = append(out, segment{index: i})
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			out = append(out, segment{key: path[:end], index: -1})
			path = path[end:]
		}
	}
	return out
}

func unquotePrefix(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", s, err
	}
	k, err := strconv.Unquote(q)
	return k, s[len(q):], err
}

// ---------------------------------------------------------------------------
// Strict decoding of the YAML tree into the Go types

var timeType = reflect.TypeOf(time.Time{})

// A file may decode to maxNodes values plus nodesPerByte per byte of it,
// counting every alias followed, every merge and every certificate a
// CertificateSet makes. YAML without aliases has at most one value per two
// bytes, so only repetition (anchors, or a set's items × its template) can
// reach the limit, and the work a file causes stays linear in its size.
const (
	maxNodes     = 100_000
	nodesPerByte = 16
)

// nodeBudget counts the values a file decodes to against its limit.
type nodeBudget struct {
	limit, size int // the limit and the file size it was made for
	used        int
	// aliased is set when the current document followed an alias or a merge.
	aliased  bool
	exceeded bool
}

func fileBudget(size int) *nodeBudget {
	return &nodeBudget{limit: maxNodes + nodesPerByte*size, size: size}
}

func (b *nodeBudget) left() int { return max(b.limit-b.used, 0) }

// spend counts one value, n of key k at p; once the budget is exceeded it
// reports that once, naming the limit and what reached it, and returns false.
func (e *errs) spend(n, k *yaml.Node, p *fieldPath) bool {
	b := e.budget
	if b == nil {
		return true // a set's items: expandSet's cost was charged by Decode
	}
	if b.used++; b.used <= b.limit {
		return true
	}
	if !b.exceeded {
		b.exceeded = true
		if b.aliased {
			e.at(n, k, p, "write the values out instead of repeating large anchors",
				"through its aliases, the document expands to more than %d values, the limit for a file of %d bytes", b.limit, b.size)
		} else {
			e.at(n, k, p, "split the file",
				"the file has more than %d values, the limit for a file of %d bytes", b.limit, b.size)
		}
	}
	return false
}

// chargeExpansion counts the values a CertificateSet's items will expand
// to — each item copies the template, aliases followed, and the set's
// labels — against the file's budget, so that a set is refused here with
// its item count rather than expanded for minutes later.
func chargeExpansion(n *yaml.Node, set *CertificateSet, e *errs) {
	b := e.budget
	items := len(set.Spec.Items)
	if items == 0 {
		return // Validate reports it
	}
	spec := mapValue(n, "spec")
	itemsKey, _ := mapEntry(spec, "items")
	tmplKey, tmpl := mapEntry(spec, "template")
	left := b.left()
	var size int
	if tmpl != nil {
		size = treeSize(tmpl, left)
	} else {
		// The template came from a merge; expandSet encodes the decoded one.
		size = valueSize(set.Spec.Template, left)
		tmpl, tmplKey = n, nil
	}
	if size > left {
		b.exceeded = true
		p := fieldPath{key: "spec", index: -1}
		fp := p.child("template")
		e.at(tmpl, tmplKey, &fp, "write the values out instead of repeating large anchors",
			"through its aliases, each item's copy of the template expands to more than the %d values left of the file's limit (%d for %d bytes)", left, b.limit, b.size)
		return
	}
	per := size + len(set.Metadata.Labels) + 1
	if cost := items * per; cost > left || cost/per != items {
		b.exceeded = true
		hint := "make the template smaller"
		if fit := left / per; fit > 0 {
			hint = fmt.Sprintf("split the set into sets of at most %d items", fit)
		}
		if b.aliased {
			hint += ", or write the template's values out instead of repeating large anchors"
		}
		p := fieldPath{key: "spec", index: -1}
		fp := p.child("items")
		line, col := n.Line, n.Column // items came from a merge
		if itemsKey != nil {
			line, col = itemsKey.Line, itemsKey.Column
		}
		e.list = append(e.list, &Error{Line: line, Column: col, Field: fp.String(), Hint: hint,
			Problem: fmt.Sprintf("%d items × %d values each (the template and the labels) make %d values, more than the %d left of the file's limit (%d for %d bytes)",
				items, per, cost, left, b.limit, b.size)})
		return
	}
	b.used += items * per
}

// valueSize counts the nodes a decoded free-form value encodes to, keys
// included; it stops counting past limit.
func valueSize(x any, limit int) int {
	count := 1
	switch x := x.(type) {
	case map[string]any:
		for _, v := range x {
			if count > limit {
				break
			}
			count += 1 + valueSize(v, limit-count)
		}
	case []any:
		for _, v := range x {
			if count > limit {
				break
			}
			count += valueSize(v, limit-count)
		}
	}
	return count
}

// treeSize counts the nodes of a tree, aliases followed, as substitute
// copies them; it stops counting past limit.
func treeSize(n *yaml.Node, limit int) int {
	count := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || count > limit {
			return
		}
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		count++
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return count
}

// fieldPath is a field path that is only written out when an error needs
// it: decoding thousands of documents must not format a path per node.
type fieldPath struct {
	parent *fieldPath
	key    string
	index  int // -1 for a key
}

func (p *fieldPath) child(k string) fieldPath { return fieldPath{parent: p, key: k, index: -1} }
func (p *fieldPath) item(i int) fieldPath     { return fieldPath{parent: p, index: i} }

// String writes the path as index and key do: spec.dnsNames[2],
// metadata.labels["app.kubernetes.io/name"].
func (p *fieldPath) String() string {
	if p == nil {
		return ""
	}
	s := p.parent.String()
	switch {
	case p.index >= 0:
		return index(s, p.index)
	case s == "" && isIdent(p.key):
		return p.key
	}
	return key(s, p.key)
}

// at is where an error about the value n of key k points: a scalar at
// itself, a mapping or list at its key (its content starts further down).
func at(n, k *yaml.Node) (line, col int) {
	if k != nil && n.Kind != yaml.ScalarNode && n.Kind != yaml.AliasNode {
		return k.Line, k.Column
	}
	return n.Line, n.Column
}

func (e *errs) at(n, k *yaml.Node, p *fieldPath, hint, format string, args ...any) {
	line, col := at(n, k)
	e.list = append(e.list, &Error{Line: line, Column: col, Field: p.String(), Problem: fmt.Sprintf(format, args...), Hint: hint})
}

// decodeNode decodes the YAML tree n into v strictly: unknown fields (with
// the nearest known one), duplicate keys, wrong node types and numbers out
// of range become errors with exact paths and positions. k is n's key node,
// or nil for a list item or the document. It decodes directly, without an
// intermediate map or JSON, because decoding is the hot path of a pass.
func decodeNode(n, k *yaml.Node, v reflect.Value, p *fieldPath, e *errs) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
		e.followed()
	}
	// Aliases of aliases can make a small file expand into a huge tree (the
	// "billion laughs"); a manifest under review must not exhaust the checker.
	if !e.spend(n, k, p) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	switch t := v.Type(); {
	case t == timeType:
		decodeTime(n, k, v, p, e)
	case t.Kind() == reflect.Struct:
		decodeStruct(n, k, v, p, e)
	case t.Kind() == reflect.Map:
		decodeMap(n, k, v, p, e)
	case t.Kind() == reflect.Slice:
		decodeSlice(n, k, v, p, e)
	case t.Kind() == reflect.Interface:
		// Free-form (a CertificateSet template): typed after substitution.
		if x := anyNode(n, k, p, e); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case t.Kind() == reflect.String, t.Kind() == reflect.Int, t.Kind() == reflect.Bool, t.Kind() == reflect.Float64:
		decodeScalar(n, k, v, p, e)
	default:
		e.at(n, k, p, "", "cannot decode into %s", t)
	}
}

func decodeTime(n, k *yaml.Node, v reflect.Value, p *fieldPath, e *errs) {
	if n.Kind != yaml.ScalarNode {
		e.at(n, k, p, "write an RFC 3339 time such as 2026-01-02T15:04:05Z", "expected a time, got %s", describe(n))
		return
	}
	tm, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		e.at(n, k, p, "write an RFC 3339 time such as 2026-01-02T15:04:05Z", "expected a time, got %s", describe(n))
		return
	}
	v.Set(reflect.ValueOf(tm))
}

// decodeStruct decodes a mapping into a struct's fields; an unknown key is
// an error with the field it was probably meant to be.
func decodeStruct(n, k *yaml.Node, v reflect.Value, p *fieldPath, e *errs) {
	if n.Kind != yaml.MappingNode {
		e.at(n, k, p, "write it as a mapping of fields", "expected a mapping, got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	forEachPair(n, p, e, func(kn, vn *yaml.Node) {
		f, ok := fields.byName[kn.Value]
		if !ok {
			hint := "known fields here: " + strings.Join(fields.names, ", ")
			if s := suggest(kn.Value, fields.names); s != "" {
				hint = "did you mean " + s + "?"
			}
			fp := p.child(kn.Value)
			e.at(kn, nil, &fp, hint, "unknown field %s", quote(kn.Value))
			return
		}
		fv := v.FieldByIndex(f.index)
		fv.SetZero() // a key overrides what a merge (<<) set
		fp := p.child(kn.Value)
		decodeNode(vn, kn, fv, &fp, e)
	})
}

func decodeMap(n, k *yaml.Node, v reflect.Value, p *fieldPath, e *errs) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		e.at(n, k, p, "write it as a mapping of keys to values", "expected a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(n.Content)/2))
	}
	forEachPair(n, p, e, func(kn, vn *yaml.Node) {
		elem := reflect.New(t.Elem()).Elem()
		fp := p.child(kn.Value)
		decodeNode(vn, kn, elem, &fp, e)
		v.SetMapIndex(reflect.ValueOf(kn.Value).Convert(t.Key()), elem)
	})
}

func decodeSlice(n, k *yaml.Node, v reflect.Value, p *fieldPath, e *errs) {
	if n.Kind != yaml.SequenceNode {
		e.at(n, k, p, "write it as a list, one item per line starting with \"- \"", "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		fp := p.item(i)
		decodeNode(c, nil, s.Index(i), &fp, e)
	}
	v.Set(s)
}

// decodeScalar decodes a string, a whole number or a boolean, strictly: a
// number where a string belongs must be quoted, and the other way round.
func decodeScalar(n, k *yaml.Node, v reflect.Value, p *fieldPath, e *errs) {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			e.at(n, k, p, "write a single value", "expected a string, got %s", describe(n))
		} else if n.ShortTag() != "!!str" {
			e.at(n, k, p, fmt.Sprintf("quote it: %q", n.Value), "expected a string, got %s", describe(n))
		} else if k != nil && interned[k.Value] {
			v.SetString(e.strs.Share(n.Value))
		} else {
			v.SetString(n.Value)
		}
	case reflect.Int:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			e.at(n, k, p, "write a whole number without quotes", "expected a number, got %s", describe(n))
		} else if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			e.at(n, k, p, "write a smaller number", "the number %s is out of range", n.Value)
		} else {
			v.SetInt(i)
		}
	case reflect.Float64:
		// A share such as a Rollout's maxSharePerPass: 0.25, or a whole 1.
		var f float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&f) != nil {
			e.at(n, k, p, "write a number without quotes, such as 0.25", "expected a number, got %s", describe(n))
		} else {
			v.SetFloat(f)
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			e.at(n, k, p, "write true or false without quotes", "expected true or false, got %s", describe(n))
		} else {
			v.SetBool(b)
		}
	}
}

// interned are the fields whose values most certificates of a fleet share
// (an issuer, a namespace, a duration): decoded as one copy of each value,
// not one per certificate, a fleet's decoded certificates hold a tenth less.
// Names, DNS names and paths are each certificate's own: interning them
// would only add a table entry.
var interned = map[string]bool{"apiVersion": true, "kind": true, "namespace": true, "issuer": true,
	"duration": true, "renewBefore": true, "algorithm": true, "rotationPolicy": true, "encoding": true,
	"signatureAlgorithm": true, "cluster": true, "mount": true, "authority": true}

// forEachPair calls f for each key and value of a mapping, merges (<<)
// first, so that the mapping's own keys override them as YAML says. A key
// that appears twice is an error at its second appearance.
func forEachPair(n *yaml.Node, p *fieldPath, e *errs, f func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if kn := n.Content[i]; kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			merge(n.Content[i+1], kn, p, e, f)
		}
	}
	// A short mapping is searched for an earlier key; a long one (a labels
	// map of thousands of keys) keeps them in a map, so that the check stays
	// linear.
	var seen map[string]*yaml.Node
	if len(n.Content) > 2*16 {
		seen = make(map[string]*yaml.Node, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			fp := p.child("")
			e.at(kn, nil, &fp, "write the key as a plain name", "a key must be a single value, got %s", describe(kn))
			continue
		}
		var first *yaml.Node
		if seen != nil {
			if first = seen[kn.Value]; first == nil {
				seen[kn.Value] = kn
			}
		} else {
			for j := 0; j < i && first == nil; j += 2 {
				if n.Content[j].Kind == yaml.ScalarNode && n.Content[j].Value == kn.Value {
					first = n.Content[j]
				}
			}
		}
		if first != nil {
			fp := p.child(kn.Value)
			e.at(kn, nil, &fp, fmt.Sprintf("keep one of them (the first is on line %d)", first.Line),
				"%s appears twice", quote(kn.Value))
			continue
		}
		f(kn, vn)
	}
}

// merge applies a merge key's value: a mapping, or a list of mappings of
// which earlier ones win.
func merge(v, k *yaml.Node, p *fieldPath, e *errs, f func(k, v *yaml.Node)) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
		e.followed()
	}
	// Merges of merges repeat keys without decoding values; each counts.
	if !e.spend(v, k, p) {
		return
	}
	switch v.Kind {
	case yaml.MappingNode:
		forEachPair(v, p, e, f)
		return
	case yaml.SequenceNode:
		ok := true
		for _, c := range v.Content {
			if c.Kind == yaml.AliasNode && c.Alias != nil {
				c = c.Alias
			}
			ok = ok && c.Kind == yaml.MappingNode
		}
		if ok {
			for i := len(v.Content) - 1; i >= 0; i-- {
				merge(v.Content[i], k, p, e, f)
			}
			return
		}
	}
	fp := p.child("<<")
	e.at(v, k, &fp, "merge an anchored mapping: <<: *name", "a merge needs a mapping or a list of mappings, got %s", describe(v))
}

// anyNode decodes free-form YAML into the shape JSON would give it (string
// keys), with the checks of typed fields: duplicate keys, merges, the limit
// on aliases.
func anyNode(n, k *yaml.Node, p *fieldPath, e *errs) any {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
		e.followed()
	}
	if !e.spend(n, k, p) {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		forEachPair(n, p, e, func(kn, vn *yaml.Node) {
			fp := p.child(kn.Value)
			m[kn.Value] = anyNode(vn, kn, &fp, e)
		})
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			fp := p.item(i)
			s[i] = anyNode(c, nil, &fp, e)
		}
		return s
	case yaml.ScalarNode:
		var x any
		if err := n.Decode(&x); err != nil {
			e.at(n, k, p, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return x
	}
	return nil
}

// describe names a YAML node's type and value for a message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!timestamp":
		return "the date " + n.Value
	}
	return "the string " + quote(n.Value)
}

type fieldSet struct {
	byName map[string]fieldInfo
	names  []string
}

type fieldInfo struct {
	typ   reflect.Type
	index []int
}

var fieldCache sync.Map // reflect.Type → *fieldSet

// structFields lists a struct's JSON field names, inlined embedded structs included.
func structFields(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{byName: map[string]fieldInfo{}}
	var add func(reflect.Type, []int)
	add = func(t reflect.Type, at []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			idx := append(slices.Clone(at), i)
			if f.Anonymous && name == "" {
				add(f.Type, idx)
				continue
			}
			if name == "" {
				name = f.Name
			}
			fs.byName[name] = fieldInfo{typ: f.Type, index: idx}
			fs.names = append(fs.names, name)
		}
	}
	add(t, nil)
	fieldCache.Store(t, fs)
	return fs
}

// suggest returns the candidate nearest to s when it is near enough to be a
// likely typo, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if strings.EqualFold(s, c) {
			return c
		}
		if d := levenshtein(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
