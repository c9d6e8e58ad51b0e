package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
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

	node *yaml.Node
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
	KindCertificate:    func() any { return &Certificate{} },
	KindCertificateSet: func() any { return &CertificateSet{} },
	KindTrustBundle:    func() any { return &TrustBundle{} },
}

// Kinds lists the kinds in a stable order.
var Kinds = []string{KindAuthority, KindIssuer, KindPolicy, KindCluster, KindCertificate, KindCertificateSet, KindTrustBundle}

const apiGroup = "certfleet.dev"

// Decode reads every YAML document of a file strictly: unknown fields, wrong
// types and YAML syntax errors are errors with their line and column. Each
// document is parsed on its own, so one broken document never hides the
// others. Decode does not validate; Validate does.
func Decode(file string, data []byte) Decoded {
	var out Decoded
	for i, chunk := range splitDocuments(data) {
		var root yaml.Node
		if err := yaml.Unmarshal(chunk.data, &root); err != nil {
			out.Errors = append(out.Errors, yamlSyntaxError(file, chunk.line, err))
			continue
		}
		if len(root.Content) == 0 {
			continue // empty document: only comments or whitespace
		}
		n := root.Content[0]
		line := n.Line + chunk.line - 1
		shift(n, chunk.line-1)
		if n.Kind != yaml.MappingNode {
			out.Errors = append(out.Errors, &Error{File: file, Line: n.Line, Column: n.Column,
				Problem: "a document must be a mapping with apiVersion, kind, metadata and spec",
				Hint:    "start the document with `apiVersion: " + APIVersion + "`"})
			continue
		}
		apiVersion, kind := scalar(n, "apiVersion"), scalar(n, "kind")
		group, _, _ := strings.Cut(apiVersion, "/")
		if group != apiGroup {
			out.Ignored = append(out.Ignored, Ignored{File: file, Line: line, APIVersion: apiVersion, Kind: kind})
			continue
		}
		d := &Document{File: file, Index: i, Line: line, Kind: kind, node: n}
		d.Name, d.Namespace = scalar(mapValue(n, "metadata"), "name"), scalar(mapValue(n, "metadata"), "namespace")
		if apiVersion != APIVersion {
			out.Errors = append(out.Errors, d.Locate(Errors{{Field: "apiVersion",
				Problem: fmt.Sprintf("unknown apiVersion %s", quote(apiVersion)),
				Hint:    "use " + APIVersion}})...)
			continue
		}
		mk, ok := newObject[kind]
		if !ok {
			hint := "use one of " + strings.Join(Kinds, ", ")
			if s := suggest(kind, Kinds); s != "" {
				hint = "did you mean " + s + "?"
			}
			out.Errors = append(out.Errors, d.Locate(Errors{{Field: "kind", Problem: fmt.Sprintf("unknown kind %s", quote(kind)), Hint: hint}})...)
			continue
		}
		obj := mk()
		var e errs
		checkNode(n, reflect.TypeOf(obj).Elem(), "", &e)
		if len(e.list) == 0 {
			if err := decodeInto(n, obj); err != nil {
				e.add("", err.Error(), "")
			}
		}
		if len(e.list) > 0 {
			out.Errors = append(out.Errors, d.Locate(e.list)...)
			continue
		}
		d.Object = obj
		out.Documents = append(out.Documents, d)
	}
	return out
}

// decodeInto converts the checked YAML tree to the typed object through JSON,
// the encoding the kinds' struct tags describe.
func decodeInto(n *yaml.Node, obj any) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, obj)
}

type chunk struct {
	data []byte
	line int // line of the chunk's first byte in the file
}

// splitDocuments cuts a multi-document YAML file at its "---" and "..."
// markers. A marker can only appear at column 0 outside block scalars (whose
// content is indented), so cutting lines is safe.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		l := bytes.TrimRight(data[pos:next], "\r\n")
		if isMarker(l, "---") || isMarker(l, "...") {
			out = append(out, chunk{data: data[start:pos], line: startLine})
			// The rest of a "--- " line can hold content ("--- {a: 1}"); keep it
			// in the next document by cutting just after the marker.
			start, startLine = pos+3, line
		}
		pos = next
		line++
	}
	return append(out, chunk{data: data[start:], line: startLine})
}

func isMarker(l []byte, m string) bool {
	return bytes.HasPrefix(l, []byte(m)) && (len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '#')
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlSyntaxError places a parser error on the file's line: the parser counts
// lines from the start of the document.
func yamlSyntaxError(file string, offset int, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := offset
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		line = n + offset - 1
		msg = msg[:m[0]] + "line " + strconv.Itoa(line) + msg[m[1]:]
	}
	return &Error{File: file, Line: line, Column: 1, Problem: "invalid YAML: " + msg,
		Hint: "fix the syntax; the other documents of the file are still checked"}
}

// shift moves every node's line by offset, so positions are the file's.
func shift(n *yaml.Node, offset int) {
	n.Line += offset
	for _, c := range n.Content {
		shift(c, offset)
	}
}

func mapValue(n *yaml.Node, k string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == k {
			return n.Content[i+1]
		}
	}
	return nil
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
	for _, e := range list {
		e.File, e.Kind, e.Name = d.File, d.Kind, d.Name
		if e.Line == 0 {
			e.Line, e.Column = d.Pos(e.Field)
		}
	}
	return list
}

// Pos returns the line and column of the field at path, e.g.
// spec.targets[0].kubernetes.namespace, or of its nearest existing parent.
func (d *Document) Pos(path string) (line, col int) {
	n := d.node
	if n == nil {
		return d.Line, 1
	}
	for _, seg := range splitPath(path) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		var next *yaml.Node
		switch {
		case seg.index >= 0 && n.Kind == yaml.SequenceNode && seg.index < len(n.Content):
			next = n.Content[seg.index]
		case seg.index < 0 && n.Kind == yaml.MappingNode:
			next = mapValue(n, seg.key)
		}
		if next == nil {
			break
		}
		n = next
	}
	return n.Line, n.Column
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
// Strict checking of the YAML tree against the Go types

var timeType = reflect.TypeOf(time.Time{})

// checkNode walks the YAML tree beside the Go type: unknown fields (with the
// nearest known one), duplicate keys and wrong node types become errors with
// exact paths, before anything is decoded.
func checkNode(n *yaml.Node, t reflect.Type, path string, e *errs) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	switch {
	case t == timeType:
		if n.Kind != yaml.ScalarNode {
			e.addf(path, "write an RFC 3339 time such as 2026-01-02T15:04:05Z", "expected a time, got %s", describe(n))
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			e.addf(path, "write it as a mapping of fields", "expected a mapping, got %s", describe(n))
			return
		}
		fields := structFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			p := key(path, k)
			if path == "" {
				p = k
			}
			if seen[k] {
				e.add(p, fmt.Sprintf("field %s appears twice", quote(k)), "keep one of them")
				continue
			}
			seen[k] = true
			f, ok := fields.byName[k]
			if !ok {
				hint := "known fields here: " + strings.Join(fields.names, ", ")
				if s := suggest(k, fields.names); s != "" {
					hint = "did you mean " + s + "?"
				}
				e.add(p, fmt.Sprintf("unknown field %s", quote(k)), hint)
				continue
			}
			checkNode(v, f, p, e)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			e.addf(path, "write it as a mapping of keys to values", "expected a mapping, got %s", describe(n))
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if seen[k] {
				e.add(key(path, k), fmt.Sprintf("key %s appears twice", quote(k)), "keep one of them")
			}
			seen[k] = true
			checkNode(n.Content[i+1], t.Elem(), key(path, k), e)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			e.addf(path, "write it as a list, one item per line starting with \"- \"", "expected a list, got %s", describe(n))
			return
		}
		for i, c := range n.Content {
			checkNode(c, t.Elem(), index(path, i), e)
		}
	case t.Kind() == reflect.Interface:
		// free-form (a CertificateSet template): checked after substitution
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			e.addf(path, "write a single value", "expected a string, got %s", describe(n))
		} else if n.ShortTag() != "!!str" && n.Style == 0 {
			e.addf(path, fmt.Sprintf("quote it: %q", n.Value), "expected a string, got %s", describe(n))
		}
	case t.Kind() == reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			e.addf(path, "write a whole number without quotes", "expected a number, got %s", describe(n))
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			e.addf(path, "write true or false without quotes", "expected true or false, got %s", describe(n))
		}
	}
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
	}
	return "the string " + quote(n.Value)
}

type fieldSet struct {
	byName map[string]reflect.Type
	names  []string
}

var fieldCache sync.Map // reflect.Type → *fieldSet

// structFields lists a struct's JSON field names, inlined embedded structs included.
func structFields(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{byName: map[string]reflect.Type{}}
	var add func(reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" {
				add(f.Type)
				continue
			}
			if name == "" {
				name = f.Name
			}
			fs.byName[name] = f.Type
			fs.names = append(fs.names, name)
		}
	}
	add(t)
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
