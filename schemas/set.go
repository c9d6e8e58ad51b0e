package schemas

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/envsubst"
	"go.yaml.in/yaml/v3"
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
	switch o := d.Object.(type) {
	case *Certificate:
		origin := Origin{Doc: d, Item: -1}
		if errs := Validate(o); len(errs) > 0 {
			return nil, origin.Locate(errs)
		}
		return []Declared{{Certificate: o, Origin: origin}}, nil
	case *CertificateSet:
		return expandSet(d, o)
	}
	return nil, nil
}

var specType = reflect.TypeOf(CertificateSpec{})

// expandSet makes one Certificate per item: ${var} placeholders in the name
// template and in every string of the template are replaced by the item's
// variables (fluxcd/pkg/envsubst, strict: an undefined variable is an error).
// Substitution happens on the parsed YAML, so a placeholder that becomes a
// number ("size: ${bits}") is read as one, and positions stay the file's.
func expandSet(d *Document, set *CertificateSet) ([]Declared, Errors) {
	if errs := Validate(set); len(errs) > 0 {
		return nil, d.Locate(errs)
	}
	tmpl := mapValue(mapValue(d.node, "spec"), "template")
	var out []Declared
	var all Errors
	seen := map[string]int{}
	for i, vars := range set.Spec.Items {
		origin := Origin{Doc: d, Item: i, Vars: vars}
		lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
		name, err := envsubst.Eval(set.Spec.NameTemplate, lookup)
		if err != nil {
			all = append(all, origin.Locate(Errors{{Field: "metadata.name", Problem: err.Error(), Hint: "define every variable of nameTemplate in each item"}})...)
			continue
		}
		if j, dup := seen[name]; dup {
			all = append(all, d.Locate(Errors{{Field: index("spec.items", i),
				Problem: fmt.Sprintf("item %d makes a certificate named %q, like item %d", i, name, j),
				Hint:    "give each item variables that make a distinct name"}})...)
			continue
		}
		seen[name] = i
		var e errs
		node := substitute(tmpl, lookup, "spec", &e)
		if len(e.list) == 0 {
			checkNode(node, specType, "spec", &e)
		}
		cert := &Certificate{
			TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindCertificate},
			Metadata: ObjectMeta{Name: name, Namespace: set.Metadata.Namespace, Labels: set.Metadata.Labels},
		}
		if len(e.list) == 0 {
			if err := decodeInto(node, &cert.Spec); err != nil {
				e.add("spec", err.Error(), "")
			}
		}
		if len(e.list) == 0 {
			e.list = Validate(cert)
		}
		if len(e.list) > 0 {
			all = append(all, origin.Locate(e.list)...)
			continue
		}
		out = append(out, Declared{Certificate: cert, Origin: origin})
	}
	return out, all
}

// substitute copies a YAML tree, replacing placeholders in every scalar. A
// plain scalar loses its resolved tag, so "${bits}" → "256" reads as a number.
func substitute(n *yaml.Node, lookup func(string) (string, bool), path string, e *errs) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	c := *n
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.Contains(n.Value, "$") {
			v, err := envsubst.Eval(n.Value, lookup)
			if err != nil {
				e.add(path, err.Error(), "define the variable in every item, or give a default with ${var:=default}")
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
			p := index(path, i)
			if n.Kind == yaml.MappingNode {
				if i%2 == 0 {
					c.Content[i] = child
					continue
				}
				p = key(path, n.Content[i-1].Value)
			}
			c.Content[i] = substitute(child, lookup, p, e)
		}
	}
	return &c
}
