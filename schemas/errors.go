package schemas

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/certfleet/certfleet/internal/intern"
)

// Error is one problem in a manifest: where it is (file, line, column, field
// path), which object, what is wrong and what would be right.
type Error struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Kind   string `json:"kind,omitempty"`
	Name   string `json:"name,omitempty"`
	// Field is the path of the offending field, e.g. spec.dnsNames[2].
	Field string `json:"field,omitempty"`
	// Problem says what is wrong, quoting the offending value.
	Problem string `json:"problem"`
	// Hint says what would be right.
	Hint string `json:"hint,omitempty"`
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Kind != "" {
		b.WriteString(e.Kind)
		if e.Name != "" {
			fmt.Fprintf(&b, " %q", e.Name)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Errors is a list of problems; it is an error when it is not empty.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Sort orders errors by file, line, column and field, so output is stable.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Field < b.Field
	})
}

// errs collects field errors during validation; positions are filled in
// afterwards from the document the object came from.
type errs struct {
	list Errors
	// budget counts the values decoded, aliases followed, against the
	// file's limit; nil when the cost was counted before.
	budget *nodeBudget
	// strs shares the interned values decoded (nil: none shared).
	strs *intern.Strings
}

// followed records that the document being decoded followed an alias, so
// that exceeding the budget is blamed on the aliases.
func (e *errs) followed() {
	if e.budget != nil {
		e.budget.aliased = true
	}
}

func (e *errs) add(field, problem, hint string) {
	e.list = append(e.list, &Error{Field: field, Problem: problem, Hint: hint})
}

func (e *errs) addf(field, hint, format string, args ...any) {
	e.add(field, fmt.Sprintf(format, args...), hint)
}

// quote shows a user's value in a message, shortened when long.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// index and key build field paths: index("spec.dnsNames", 2) is
// spec.dnsNames[2]; key("metadata.labels", "app.kubernetes.io/name") is
// metadata.labels["app.kubernetes.io/name"].
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func key(path, k string) string {
	if isIdent(k) {
		return path + "." + k
	}
	return fmt.Sprintf("%s[%q]", path, k)
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
