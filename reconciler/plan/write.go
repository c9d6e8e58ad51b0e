package plan

// Write and the writers below print the report Validate and Plan build, for
// people and machines: text for terminals, JSON (schemas.Report,
// versioned), Markdown for a pull-request comment, and GitHub workflow
// annotations.

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// Formats are the output formats, for flag help and validation.
var Formats = []string{"text", "json", "markdown", "github"}

// Write writes rep in format; color applies to text only.
func Write(w io.Writer, rep *schemas.Report, format string, color bool) error {
	switch format {
	case "text", "":
		return Text(w, rep, color)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "markdown":
		return Markdown(w, rep)
	case "github":
		return GitHub(w, rep)
	}
	return fmt.Errorf("unknown output format %q: use one of %s", format, strings.Join(Formats, ", "))
}

// summaryLine is the one sentence every format starts with.
func summaryLine(rep *schemas.Report) string {
	s := rep.Summary
	var parts []string
	if rep.Command == "plan" {
		parts = append(parts, fmt.Sprintf("%d to add, %d to reissue, %d to update, %d to remove, %d unchanged",
			s.Added, s.Reissued, s.Updated, s.Removed, s.Unchanged))
	} else {
		parts = append(parts, fmt.Sprintf("%d certificates", s.Certificates))
	}
	parts = append(parts, fmt.Sprintf("%d denied, %d invalid, %d warnings", s.Denied, s.Invalid, s.Warnings))
	return strings.Join(parts, "; ")
}

func verdictWord(rep *schemas.Report) string {
	s := rep.Summary
	switch {
	case s.Invalid > 0 || s.Denied > 0:
		return "fails"
	case rep.Command == "plan" && s.Added+s.Removed+s.Reissued+s.Updated > 0:
		return "passes, with changes"
	}
	return "passes"
}

// revisionString names a revision as the source does ("main@1a2b3c4d5e6f").
func revisionString(r *schemas.ReportRevision) string {
	if r == nil {
		return ""
	}
	return source.Revision{Ref: r.Ref, Hash: r.Hash}.String()
}

func describeChange(f schemas.FieldChange) string {
	show := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%s: %s → %s", f.Field, show(f.Old), show(f.New))
}

func violationLine(v schemas.LocatedViolation) string {
	who := string(v.Reason)
	if v.Policy != "" {
		who += " (policy " + v.Policy + ")"
	}
	return fmt.Sprintf("%s: %s", who, v.Message)
}

// ---------------------------------------------------------------------------
// text

type palette struct{ red, green, yellow, bold, dim, reset string }

func colors(on bool) palette {
	if !on {
		return palette{}
	}
	return palette{"\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[1m", "\x1b[2m", "\x1b[0m"}
}

var symbols = map[schemas.ChangeAction]string{
	schemas.ActionAdd: "+", schemas.ActionRemove: "-", schemas.ActionReissue: "~", schemas.ActionUpdate: "~", schemas.ActionNoop: "=",
}

// Text writes a report for a terminal.
func Text(w io.Writer, rep *schemas.Report, color bool) error {
	p := colors(color)
	b := &strings.Builder{}
	if rep.Base != nil {
		fmt.Fprintf(b, "%scertfleet %s%s: %s → %s\n", p.bold, rep.Command, p.reset, revisionString(rep.Base), revisionString(&rep.Head))
	} else {
		fmt.Fprintf(b, "%scertfleet %s%s: %s\n", p.bold, rep.Command, p.reset, revisionString(&rep.Head))
	}
	if len(rep.Changes) > 0 {
		fmt.Fprintf(b, "\nChanges:\n")
		for _, c := range rep.Changes {
			col := map[schemas.ChangeAction]string{schemas.ActionAdd: p.green, schemas.ActionRemove: p.red}[c.Action]
			if col == "" {
				col = p.yellow
			}
			fmt.Fprintf(b, "  %s%s %s%s  %s  %s%s:%d%s\n", col, symbols[c.Action], c.ID, p.reset, c.Action, p.dim, c.File, c.Line, p.reset)
			for _, r := range c.Restarts {
				fmt.Fprintf(b, "      restarts %s\n", r)
			}
			if c.Action == schemas.ActionAdd {
				continue // every field is new: the file says it better
			}
			for _, f := range c.Fields {
				fmt.Fprintf(b, "      %s\n", describeChange(f))
			}
		}
	}
	if len(rep.Waves) > 0 {
		fmt.Fprintf(b, "\nRollout (the reissues go out in waves):\n")
		for i, w := range rep.Waves {
			fmt.Fprintf(b, "  %d. %s: %d to reissue: %s\n", i+1, w.Name, len(w.Certificates), strings.Join(w.Certificates, ", "))
		}
	}
	var denied, warned []schemas.CertificateVerdict
	for _, c := range rep.Certificates {
		if !c.Allowed {
			denied = append(denied, c)
		}
		if len(c.Warnings) > 0 {
			warned = append(warned, c)
		}
	}
	if len(denied) > 0 {
		fmt.Fprintf(b, "\n%sDenied:%s\n", p.red, p.reset)
		for _, c := range denied {
			fmt.Fprintf(b, "  %s✗ %s%s (issuer %s)\n", p.red, c.ID, p.reset, c.Issuer)
			for _, v := range c.Violations {
				fmt.Fprintf(b, "      %s:%d:%d: %s: %s\n", c.File, v.Line, v.Column, v.Field, violationLine(v))
			}
		}
	}
	if len(warned) > 0 {
		fmt.Fprintf(b, "\n%sWarnings:%s\n", p.yellow, p.reset)
		for _, c := range warned {
			for _, v := range c.Warnings {
				fmt.Fprintf(b, "  ! %s: %s:%d:%d: %s: %s\n", c.ID, c.File, v.Line, v.Column, v.Field, violationLine(v))
			}
		}
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(b, "\n%sInvalid manifests:%s\n", p.red, p.reset)
		for _, e := range rep.Errors {
			fmt.Fprintf(b, "  %s\n", e.Error())
		}
	}
	fmt.Fprintf(b, "\n%s%s%s: %s\n", p.bold, verdictWord(rep), p.reset, summaryLine(rep))
	_, err := io.WriteString(w, b.String())
	return err
}

// ---------------------------------------------------------------------------
// markdown

// mdEscape keeps user text from breaking a table or a code span.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Markdown writes a pull-request comment: the verdict and counts first,
// problems open, changes folded.
func Markdown(w io.Writer, rep *schemas.Report) error {
	b := &strings.Builder{}
	icon := "✅"
	if rep.Summary.Invalid > 0 || rep.Summary.Denied > 0 {
		icon = "❌"
	}
	s := rep.Summary
	fmt.Fprintf(b, "### %s certfleet %s %s\n\n", icon, rep.Command, verdictWord(rep))
	if rep.Base != nil {
		fmt.Fprintf(b, "`%s` → `%s`\n\n", revisionString(rep.Base), revisionString(&rep.Head))
	} else {
		fmt.Fprintf(b, "`%s`\n\n", revisionString(&rep.Head))
	}
	if rep.Command == "plan" {
		fmt.Fprintf(b, "| add | reissue | update | remove | unchanged | denied | invalid | warnings |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(b, "| %d | %d | %d | %d | %d | %d | %d | %d |\n\n", s.Added, s.Reissued, s.Updated, s.Removed, s.Unchanged, s.Denied, s.Invalid, s.Warnings)
	} else {
		fmt.Fprintf(b, "| certificates | denied | invalid | warnings |\n|---:|---:|---:|---:|\n| %d | %d | %d | %d |\n\n", s.Certificates, s.Denied, s.Invalid, s.Warnings)
	}
	var violations []string
	for _, c := range rep.Certificates {
		for _, v := range c.Violations {
			violations = append(violations, fmt.Sprintf("| `%s` | `%s:%d` | `%s` | %s | %s |", mdEscape(c.ID), mdEscape(c.File), v.Line,
				mdEscape(v.Field), mdEscape(string(v.Reason)+policySuffix(v)), mdEscape(v.Message)))
		}
	}
	if len(violations) > 0 {
		fmt.Fprintf(b, "<details open><summary><b>Denied: %d violation(s)</b></summary>\n\n| certificate | where | field | reason | why |\n|---|---|---|---|---|\n%s\n\n</details>\n\n",
			len(violations), strings.Join(violations, "\n"))
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(b, "<details open><summary><b>Invalid manifests: %d</b></summary>\n\n| where | field | problem |\n|---|---|---|\n", len(rep.Errors))
		for _, e := range rep.Errors {
			problem := e.Problem
			if e.Hint != "" {
				problem += "; " + e.Hint
			}
			fmt.Fprintf(b, "| `%s:%d:%d` | `%s` | %s |\n", mdEscape(e.File), e.Line, e.Column, mdEscape(e.Field), mdEscape(problem))
		}
		fmt.Fprintf(b, "\n</details>\n\n")
	}
	var warnings []string
	for _, c := range rep.Certificates {
		for _, v := range c.Warnings {
			warnings = append(warnings, fmt.Sprintf("| `%s` | `%s:%d` | %s | %s |", mdEscape(c.ID), mdEscape(c.File), v.Line,
				mdEscape(string(v.Reason)+policySuffix(v)), mdEscape(v.Message)))
		}
	}
	if len(warnings) > 0 {
		fmt.Fprintf(b, "<details><summary>Warnings: %d</summary>\n\n| certificate | where | reason | why |\n|---|---|---|---|\n%s\n\n</details>\n\n",
			len(warnings), strings.Join(warnings, "\n"))
	}
	if len(rep.Waves) > 0 {
		fmt.Fprintf(b, "<details open><summary><b>Rollout: the reissues go out in %d waves</b></summary>\n\n| wave | reissues | certificates |\n|---|---:|---|\n", len(rep.Waves))
		for _, w := range rep.Waves {
			ids := make([]string, len(w.Certificates))
			for i, id := range w.Certificates {
				ids[i] = "`" + mdEscape(id) + "`"
			}
			fmt.Fprintf(b, "| %s | %d | %s |\n", mdEscape(w.Name), len(w.Certificates), strings.Join(ids, ", "))
		}
		fmt.Fprintf(b, "\n</details>\n\n")
	}
	if len(rep.Changes) > 0 {
		fmt.Fprintf(b, "<details><summary>Changes: %d</summary>\n\n| | certificate | action | where |\n|---|---|---|---|\n", len(rep.Changes))
		for _, c := range rep.Changes {
			action := string(c.Action)
			for _, r := range c.Restarts {
				action += ", restarts " + mdEscape(r)
			}
			fmt.Fprintf(b, "| %s | `%s` | %s | `%s:%d` |\n", symbols[c.Action], mdEscape(c.ID), action, mdEscape(c.File), c.Line)
		}
		fmt.Fprintf(b, "\n")
		for _, c := range rep.Changes {
			if c.Action == schemas.ActionAdd || len(c.Fields) == 0 {
				continue
			}
			fence := codeFence(c.Fields)
			fmt.Fprintf(b, "**`%s`** (%s)\n\n%sdiff\n", mdEscape(c.ID), c.Action, fence)
			for _, f := range c.Fields {
				if f.Old != "" {
					fmt.Fprintf(b, "- %s: %s\n", f.Field, strings.ReplaceAll(f.Old, "\n", " "))
				}
				if f.New != "" {
					fmt.Fprintf(b, "+ %s: %s\n", f.Field, strings.ReplaceAll(f.New, "\n", " "))
				}
			}
			fmt.Fprintf(b, "%s\n\n", fence)
		}
		fmt.Fprintf(b, "</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// codeFence is a fence longer than any run of backticks in the fields, so
// that a value (a secretTemplate annotation, say) cannot close the block.
func codeFence(fields []schemas.FieldChange) string {
	longest := 0
	for _, f := range fields {
		for _, s := range []string{f.Field, f.Old, f.New} {
			run := 0
			for _, r := range s {
				if r != '`' {
					run = 0
					continue
				}
				run++
				longest = max(longest, run)
			}
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

func policySuffix(v schemas.LocatedViolation) string {
	if v.Policy == "" {
		return ""
	}
	return " (policy " + v.Policy + ")"
}

// ---------------------------------------------------------------------------
// GitHub workflow annotations

// ghEscape escapes a workflow command's message; ghProp its properties.
func ghEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// GitHub writes workflow commands, so violations show on the changed lines.
func GitHub(w io.Writer, rep *schemas.Report) error {
	b := &strings.Builder{}
	for _, e := range rep.Errors {
		msg := e.Problem
		if e.Hint != "" {
			msg += "; " + e.Hint
		}
		if e.Field != "" {
			msg = e.Field + ": " + msg
		}
		kind := e.Kind
		if kind == "" {
			kind = "manifest" // invalid YAML: no kind was read
		}
		fmt.Fprintf(b, "::error file=%s,line=%d,col=%d,title=%s::%s\n", ghProp(e.File), e.Line, e.Column, ghProp("Invalid "+kind), ghEscape(msg))
	}
	for _, c := range rep.Certificates {
		for _, v := range c.Violations {
			fmt.Fprintf(b, "::error file=%s,line=%d,col=%d,title=%s::%s\n", ghProp(c.File), v.Line, v.Column,
				ghProp(string(v.Reason)+policySuffix(v)), ghEscape(c.ID+": "+v.Field+": "+v.Message))
		}
		for _, v := range c.Warnings {
			fmt.Fprintf(b, "::warning file=%s,line=%d,col=%d,title=%s::%s\n", ghProp(c.File), v.Line, v.Column,
				ghProp(string(v.Reason)+policySuffix(v)), ghEscape(c.ID+": "+v.Field+": "+v.Message))
		}
	}
	for _, c := range rep.Changes {
		if c.Action == schemas.ActionRemove {
			continue // the line is gone from the head: no place to annotate
		}
		fmt.Fprintf(b, "::notice file=%s,line=%d,title=%s::%s\n", ghProp(c.File), c.Line, ghProp("certfleet "+string(c.Action)),
			ghEscape(fmt.Sprintf("%s will be %s", c.ID, pastTense(c.Action))))
	}
	fmt.Fprintf(b, "certfleet %s %s: %s\n", rep.Command, verdictWord(rep), summaryLine(rep))
	_, err := io.WriteString(w, b.String())
	return err
}

func pastTense(a schemas.ChangeAction) string {
	switch a {
	case schemas.ActionAdd:
		return "issued"
	case schemas.ActionReissue:
		return "reissued"
	case schemas.ActionUpdate:
		return "updated (same certificate)"
	case schemas.ActionNoop:
		return "unchanged"
	}
	return string(a)
}
