// Package plan compares two rendered revisions: which certificates a merge
// adds, removes, reissues (a field the certificate carries changed) or
// updates (only the delivered objects change), field by field, and builds
// and writes (text, JSON, Markdown, GitHub annotations) the report validate
// and plan print.
package plan

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// issueFields are the fields of a certificate that IssueHash covers; a
// difference in them that leaves the hash alone (a reordered SAN list, a
// default written out) changes nothing.
var issueFields = []string{
	"spec.issuer", "spec.commonName", "spec.dnsNames", "spec.ipAddresses", "spec.uris", "spec.emailAddresses",
	"spec.subject", "spec.usages", "spec.duration", "spec.signatureAlgorithm", "spec.privateKey.algorithm", "spec.privateKey.size",
}

func isIssueField(f string) bool {
	for _, p := range issueFields {
		if f == p || strings.HasPrefix(f, p+".") || strings.HasPrefix(f, p+"[") {
			return true
		}
	}
	return false
}

// Diff lists the certificates that differ between base and head, by ID.
func Diff(base, head *render.Result) []schemas.Change {
	old := map[string]*render.Desired{}
	for _, d := range base.Desired {
		old[d.ID] = d
	}
	var out []schemas.Change
	for _, h := range head.Desired {
		b, ok := old[h.ID]
		delete(old, h.ID)
		if !ok {
			out = append(out, schemas.Change{ID: h.ID, Action: schemas.ActionAdd, File: h.File(), Line: h.Line(), Fields: fields(nil, h),
				Restarts: restarts(h)})
			continue
		}
		if c, changed := compare(b, h); changed {
			if c.Action == schemas.ActionReissue {
				c.Restarts = restarts(h)
			}
			out = append(out, c)
		}
	}
	for _, b := range old {
		out = append(out, schemas.Change{ID: b.ID, Action: schemas.ActionRemove, File: b.File(), Line: b.Line()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// compare classifies one certificate present on both sides.
func compare(b, h *render.Desired) (schemas.Change, bool) {
	c := schemas.Change{ID: h.ID, File: h.File(), Line: h.Line()}
	if b.Certificate == h.Certificate && sameTargets(b, h) {
		return c, false // the same declaration, from an unchanged file
	}
	reissue := b.IssueHash != h.IssueHash
	for _, f := range fields(b, h) {
		if f.Reissue && !reissue || keyDefault(f.Field, &b.Certificate.Spec, &h.Certificate.Spec) {
			continue // reordered or defaulted: the certificate would be the same
		}
		c.Fields = append(c.Fields, f)
	}
	// Point at the first changed line, so an annotation lands on it.
	for _, f := range c.Fields {
		if f.New != "" && (strings.HasPrefix(f.Field, "spec") || strings.HasPrefix(f.Field, "metadata")) {
			if line, _ := h.Pos(f.Field); line > 0 && (c.Line == h.Line() || line < c.Line) {
				c.Line = line
			}
		}
	}
	switch {
	case reissue:
		c.Action = schemas.ActionReissue
	case len(c.Fields) > 0:
		c.Action = schemas.ActionUpdate
	case b.File() != h.File():
		c.Action = schemas.ActionNoop
		c.Fields = []schemas.FieldChange{{Field: "file", Old: b.File(), New: h.File()}}
	default:
		return c, false
	}
	return c, true
}

// restarts are the workloads a delivery of h's new certificate restarts
// (its targets' restart:), each once.
func restarts(h *render.Desired) []string {
	var out []string
	for _, t := range h.Targets {
		if t.Restart == nil {
			continue
		}
		w := fmt.Sprintf("%s %s/%s in %s", t.Restart.Kind, t.Namespace, t.Restart.Name, t.Cluster)
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// keyDefault reports whether a field of the private key that IssueHash does
// not cover (the rotation policy, the encoding) differs only because one
// side writes out its default.
func keyDefault(field string, b, h *schemas.CertificateSpec) bool {
	switch field {
	case "spec.privateKey.rotationPolicy":
		return b.Key().RotationPolicy == h.Key().RotationPolicy
	case "spec.privateKey.encoding":
		return b.Key().Encoding == h.Key().Encoding
	}
	return false
}

// fields lists the differing fields of two declarations (b nil for an
// addition), and the resolved targets that appear or go.
func fields(b, h *render.Desired) []schemas.FieldChange {
	var before map[string]string
	if b != nil {
		before = flatten(b.Certificate)
	}
	after := flatten(h.Certificate)
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var out []schemas.FieldChange
	for k := range keys {
		if before[k] != after[k] {
			out = append(out, schemas.FieldChange{Field: k, Old: before[k], New: after[k], Reissue: isIssueField(k)})
		}
	}
	if b != nil {
		out = append(out, targetChanges(b, h)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func sameTargets(b, h *render.Desired) bool {
	if len(b.Targets) != len(h.Targets) {
		return false
	}
	for i := range b.Targets {
		if b.Targets[i].Key != h.Targets[i].Key || b.Targets[i].TemplateHash != h.Targets[i].TemplateHash {
			return false
		}
	}
	return true
}

// targetChanges reports resolved targets that appear or go (a
// clusterSelector that now matches another cluster shows here).
func targetChanges(b, h *render.Desired) []schemas.FieldChange {
	was := map[string]string{}
	for _, t := range b.Targets {
		was[t.Key] = t.TemplateHash
	}
	var out []schemas.FieldChange
	for _, t := range h.Targets {
		if _, ok := was[t.Key]; !ok {
			out = append(out, schemas.FieldChange{Field: "targets", New: t.Key})
		}
		delete(was, t.Key)
	}
	for k := range was {
		out = append(out, schemas.FieldChange{Field: "targets", Old: k})
	}
	return out
}

// flatten writes a certificate's labels and spec as field path → value.
func flatten(c *schemas.Certificate) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := prefix + "." + k
				if strings.ContainsAny(k, "./") {
					p = fmt.Sprintf("%s[%q]", prefix, k)
				}
				walk(p, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
		case string:
			out[prefix] = x
		default:
			b, _ := json.Marshal(x)
			out[prefix] = string(b)
		}
	}
	var spec, labels any
	b, _ := json.Marshal(c.Spec)
	_ = json.Unmarshal(b, &spec)
	walk("spec", spec)
	b, _ = json.Marshal(c.Metadata.Labels)
	_ = json.Unmarshal(b, &labels)
	if labels != nil {
		walk("metadata.labels", labels)
	}
	return out
}

func revision(r source.Revision) schemas.ReportRevision {
	return schemas.ReportRevision{Ref: r.Ref, Hash: r.Hash, Author: r.Author, Time: r.Time}
}

// Validate reports on one revision.
func Validate(head *render.Result, ev *evaluate.Evaluator) *schemas.Report {
	rep := &schemas.Report{Version: schemas.ReportVersion, Command: "validate", Head: revision(head.Revision),
		Certificates: ev.All(head.Desired), Errors: head.Errors}
	if rep.Errors == nil {
		rep.Errors = schemas.Errors{}
	}
	summarize(rep)
	return rep
}

// Plan reports on head and what merging it into base would change.
func Plan(base, head *render.Result, ev *evaluate.Evaluator) *schemas.Report {
	rep := Validate(head, ev)
	rep.Command = "plan"
	b := revision(base.Revision)
	rep.Base = &b
	rep.Changes = Diff(base, head)
	rep.BaseErrors = base.Errors
	if cat := ev.Catalog(); cat != nil {
		rep.Waves = decide.PlannedWaves(reissues(rep.Changes, head), cat.Rollout, cat.Clusters)
	}
	summarize(rep)
	return rep
}

// reissues are the head's certificates that changes reissue.
func reissues(changes []schemas.Change, head *render.Result) []*render.Desired {
	byID := map[string]*render.Desired{}
	for _, d := range head.Desired {
		byID[d.ID] = d
	}
	var out []*render.Desired
	for _, c := range changes {
		if d := byID[c.ID]; d != nil && c.Action == schemas.ActionReissue {
			out = append(out, d)
		}
	}
	return out
}

func summarize(rep *schemas.Report) {
	s := schemas.ReportSummary{Certificates: len(rep.Certificates), Invalid: len(rep.Errors)}
	for _, c := range rep.Certificates {
		if !c.Allowed {
			s.Denied++
		}
		s.Warnings += len(c.Warnings)
	}
	for _, c := range rep.Changes {
		switch c.Action {
		case schemas.ActionAdd:
			s.Added++
		case schemas.ActionRemove:
			s.Removed++
		case schemas.ActionReissue:
			s.Reissued++
		case schemas.ActionUpdate:
			s.Updated++
		}
	}
	s.Unchanged = s.Certificates - s.Added - s.Reissued - s.Updated
	rep.Summary = s
}

// Exit codes of validate and plan.
const (
	ExitClean      = 0
	ExitChanges    = 2
	ExitViolations = 3
)

// ExitCode is 3 when anything is invalid or denied (it wins), 2 when a plan
// changes something, else 0.
func ExitCode(rep *schemas.Report) int {
	s := rep.Summary
	switch {
	case s.Invalid > 0 || s.Denied > 0:
		return ExitViolations
	case s.Added+s.Removed+s.Reissued+s.Updated > 0:
		return ExitChanges
	}
	return ExitClean
}
