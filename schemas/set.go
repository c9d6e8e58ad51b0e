package schemas

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/envsubst"
	"go.yaml.in/yaml/v3"

	"github.com/certfleet/certfleet/internal/intern"
)

// Origin is where a certificate was declared: a Certificate document, or one
// item of a CertificateSet document.
type Origin struct {
	Doc *Document
	// Item is the CertificateSet item's index, or -1 for a Certificate.
	Item int
	// Vars are the item's variables (nil for a Certificate).
	Vars map[string]string
}

// Declared is a certificate as a repository declares it, with its origin.
type Declared struct {
	Certificate *Certificate
	Origin      Origin
}

// sourceField maps a field of an expanded certificate to the field of the
// CertificateSet that produced it.
func (o Origin) sourceField(field string) string {
	if o.Item < 0 {
		return field
	}
	switch {
	case field == "metadata.name":
		return "spec.nameTemplate"
	case strings.HasPrefix(field, "metadata"):
		return field
	case field == "spec":
		return "spec.template"
	case strings.HasPrefix(field, "spec."):
		return "spec.template." + strings.TrimPrefix(field, "spec.")
	}
	return field
}

// Pos is the line and column, in the declaring file, of a certificate's field.
func (o Origin) Pos(field string) (line, col int) { return o.Doc.Pos(o.sourceField(field)) }

// Locate places errors about a declared certificate in its file; for a set
// item it points at the template and says which item.
func (o Origin) Locate(list Errors) Errors {
	if o.Item >= 0 {
		for _, e := range list {
			e.Field = o.sourceField(e.Field)
			e.Problem = fmt.Sprintf("item %d (%s): %s", o.Item, varsString(o.Vars), e.Problem)
		}
	}
	return o.Doc.Locate(list)
}

func varsString(vars map[string]string) string {
	keys := slices.Sorted(maps.Keys(vars))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + vars[k]
	}
	return strings.Join(parts, ", ")
}

// Declarations returns the certificates a document declares, validated: the
// Certificate itself, or one per CertificateSet item. Invalid ones are left
// out and reported; the valid ones are returned.
func Declarations(d *Document) ([]Declared, Errors) {
	return DeclarationsSharing(d, new(intern.Strings))
}

// DeclarationsSharing is Declarations with the values a CertificateSet's
// items share held in strs, as DecodeSharing does.
func DeclarationsSharing(d *Document, strs *intern.Strings) ([]Declared, Errors) {
	switch o := d.Object.(type) {
	case *Certificate:
		origin := Origin{Doc: d, Item: -1}
		if errs := Validate(o); len(errs) > 0 {
			return nil, origin.Locate(errs)
		}
		return []Declared{{Certificate: o, Origin: origin}}, nil
	case *CertificateSet:
		return expandSet(d, o, strs)
	}
	return nil, nil
}

// expandSet makes one Certificate per item: ${var} placeholders in the name
// template and in every string of the template are replaced by the item's
// variables (fluxcd/pkg/envsubst, strict: an undefined variable is an error).
// Substitution happens on the parsed YAML, so a placeholder that becomes a
// number ("size: ${bits}") is read as one, and positions stay the file's.
// An error that every item shares (a typo in the template) is reported once.
func expandSet(d *Document, set *CertificateSet, strs *intern.Strings) ([]Declared, Errors) {
	if errs := Validate(set); len(errs) > 0 {
		return nil, d.Locate(errs)
	}
	// Decode counted what the items expand to against the file's budget.
	tmpl := mapValue(mapValue(d.tree(), "spec"), "template")
	if tmpl == nil {
		// A set built in Go rather than decoded: make the tree from the map.
		tmpl = &yaml.Node{}
		if err := tmpl.Encode(set.Spec.Template); err != nil {
			return nil, d.Locate(Errors{{Field: "spec.template", Problem: err.Error()}})
		}
	}
	var out []Declared
	var itemErrs []Errors
	var bad []int // items with errors, in order
	seen := map[string]int{}
	for i, vars := range set.Spec.Items {
		origin := Origin{Doc: d, Item: i, Vars: vars}
		var missing string
		lookup := func(k string) (string, bool) {
			v, ok := vars[k]
			if !ok {
				missing = k
			}
			return v, ok
		}
		// Every item is expanded even when its name fails, so that an error
		// of the template shows in every item and is reported once.
		var e errs
		name, nameErr := envsubst.Eval(set.Spec.NameTemplate, lookup)
		switch {
		case nameErr != nil:
			e.add("spec.nameTemplate", substError(nameErr, missing), "define every variable of nameTemplate in each item")
		case seen[name] > 0:
			e.add(index("spec.items", i), fmt.Sprintf("makes a certificate named %q, like item %d", name, seen[name]-1),
				"give each item variables that make a distinct name")
		default:
			seen[name] = i + 1
		}
		var subst errs
		node := substitute(tmpl, lookup, &missing, fieldPath{key: "spec", index: -1}, &subst)
		cert := &Certificate{
			TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindCertificate},
			Metadata: ObjectMeta{Name: name, Namespace: set.Metadata.Namespace, Labels: maps.Clone(set.Metadata.Labels)},
		}
		dec := errs{strs: strs}
		decodeNode(node, nil, reflect.ValueOf(&cert.Spec).Elem(), &fieldPath{key: "spec", index: -1}, &dec)
		for _, x := range dec.list {
			// A placeholder left in place by a substitution error says nothing more.
			if !slices.ContainsFunc(subst.list, func(s *Error) bool { return s.Field == x.Field }) {
				subst.list = append(subst.list, x)
			}
		}
		if len(subst.list) == 0 {
			for _, x := range Validate(cert) {
				if nameErr == nil || x.Field != "metadata.name" {
					subst.list = append(subst.list, x)
				}
			}
		}
		for _, x := range subst.list {
			x.Field = origin.sourceField(x.Field)
		}
		e.list = append(e.list, subst.list...)
		if len(e.list) == 0 {
			out = append(out, Declared{Certificate: cert, Origin: origin})
			continue
		}
		itemErrs = append(itemErrs, e.list)
		bad = append(bad, i)
	}
	return out, d.Locate(groupItemErrors(itemErrs, bad, set.Spec.Items))
}

// groupItemErrors reports each distinct error once, saying which items it
// concerns; one that every item of a set has needs no item at all.
func groupItemErrors(itemErrs []Errors, bad []int, items []map[string]string) Errors {
	type errKey struct {
		line, col            int
		field, problem, hint string
	}
	var order []errKey
	first := map[errKey]*Error{}
	which := map[errKey][]int{}
	for n, list := range itemErrs {
		for _, e := range list {
			k := errKey{e.Line, e.Column, e.Field, e.Problem, e.Hint}
			if _, ok := first[k]; !ok {
				first[k] = e
				order = append(order, k)
			}
			which[k] = append(which[k], bad[n])
		}
	}
	out := make(Errors, 0, len(order))
	for _, k := range order {
		e, idx := first[k], which[k]
		switch {
		case len(idx) == len(items) && len(items) > 1:
		case len(idx) == 1:
			e.Problem = fmt.Sprintf("item %d (%s): %s", idx[0], varsString(items[idx[0]]), e.Problem)
		default:
			s := make([]string, len(idx))
			for i, x := range idx {
				s[i] = fmt.Sprint(x)
			}
			e.Problem = fmt.Sprintf("items %s: %s", strings.Join(s, ", "), e.Problem)
		}
		out = append(out, e)
	}
	return out
}

// substError rewrites envsubst's strict-mode error so it names the variable
// the way it is written.
func substError(err error, missing string) string {
	if missing != "" && strings.Contains(err.Error(), "not set") {
		return fmt.Sprintf("variable ${%s} is not defined", missing)
	}
	return err.Error()
}

// substitute copies a YAML tree, replacing placeholders in every scalar. A
// plain scalar loses its resolved tag, so "${bits}" → "256" reads as a number.
func substitute(n *yaml.Node, lookup func(string) (string, bool), missing *string, p fieldPath, e *errs) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c := *n
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "$") {
			*missing = ""
			v, err := envsubst.Eval(n.Value, lookup)
			if err != nil {
				line, col := at(n, nil)
				e.list = append(e.list, &Error{Line: line, Column: col, Field: p.String(), Problem: substError(err, *missing),
					Hint: "define the variable in every item, or give a default with ${var:=default}"})
				return &c
			}
			c.Value = v
			if n.Style == 0 {
				c.Tag = ""
			}
		}
	case yaml.MappingNode, yaml.SequenceNode:
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				c.Content[i] = child
				continue
			}
			cp := p.item(i)
			if n.Kind == yaml.MappingNode {
				cp = p.child(n.Content[i-1].Value)
			}
			c.Content[i] = substitute(child, lookup, missing, cp, e)
		}
	}
	return &c
}
