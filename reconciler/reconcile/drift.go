package reconcile

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// DriftReport compares three sides, changing nothing: what Git declares
// (desired), what certfleet issued (the inventory) and what the targets
// hold (delivered).
type DriftReport struct {
	Revision string    `json:"revision"`
	Time     time.Time `json:"time"`
	// InSync counts targets with nothing to report.
	InSync  int                   `json:"inSync"`
	Counts  map[decide.Reason]int `json:"counts"`
	Entries []DriftEntry          `json:"entries"`
	// Failures are targets or clusters that could not be observed.
	Failures inventory.Failures `json:"failures"`
	// Waves is where each wave of the catalog's Rollout stands (none without one).
	Waves []decide.Wave `json:"waves,omitempty"`
	// Rotations are the authorities in a rotation, with their phase.
	Rotations []decide.AuthorityPhase `json:"rotations,omitempty"`
}

// DriftEntry is one target that differs.
type DriftEntry struct {
	Reason      decide.Reason `json:"reason"`
	Certificate string        `json:"certificate,omitempty"`
	Target      string        `json:"target"`
	File        string        `json:"file,omitempty"`
	// IssuedSerial is the inventory's; DeliveredSerial the target's.
	IssuedSerial    string    `json:"issuedSerial,omitempty"`
	DeliveredSerial string    `json:"deliveredSerial,omitempty"`
	NotAfter        time.Time `json:"notAfter,omitzero"`
	Message         string    `json:"message"`
	// Wave is the rollout wave a WaitingForWave certificate waits in.
	Wave string `json:"wave,omitempty"`
	// Effective is what the issuer makes of the declaration (requested vs effective).
	Effective *schemas.Effective `json:"effective,omitempty"`
}

// Drift observes and decides, changing nothing, and reports the differences.
func (p *Pass) Drift(ctx context.Context, res *render.Result, verdicts map[string]schemas.CertificateVerdict) (*DriftReport, error) {
	dry := *p
	dry.DryRun, dry.Prune, dry.NoState = true, false, false // a drift is read from the state
	rep, err := dry.Run(ctx, res, verdicts)
	if err != nil {
		return nil, err
	}
	d := DriftOf(rep)
	for i := range d.Entries {
		if v, ok := verdicts[d.Entries[i].Certificate]; ok {
			d.Entries[i].Effective = v.Effective
		}
	}
	return d, nil
}

// DriftOf reads the drift out of a pass's result (the state after it).
func DriftOf(rep *Result) *DriftReport {
	r := &DriftReport{Revision: rep.Revision, Time: rep.Started, Counts: map[decide.Reason]int{}, Entries: []DriftEntry{}, Failures: inventory.Failures{}}
	r.Failures = append(r.Failures, rep.Unobservable...)
	r.Waves = rep.Waves
	r.Rotations = rep.Rotations
	for _, s := range rep.State {
		if s.Reason == decide.InSync {
			r.InSync++
			continue
		}
		r.Counts[s.Reason]++
		r.Entries = append(r.Entries, DriftEntry{Reason: s.Reason, Certificate: s.Certificate, Target: s.Target, File: s.File,
			IssuedSerial: s.IssuedSerial, DeliveredSerial: s.Serial, NotAfter: s.NotAfter, Message: s.Message, Wave: s.Wave})
	}
	return r
}

// Drifted reports whether anything differs.
func (r *DriftReport) Drifted() bool { return len(r.Entries) > 0 }

// Text writes the drift report for people.
func (r *DriftReport) Text(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "certfleet drift at %s: %d in sync, %d drifted\n", r.Revision, r.InSync, len(r.Entries))
	for _, e := range r.Entries {
		fmt.Fprintf(b, "  %-18s %-32s %s\n      %s\n", e.Reason, e.Certificate, e.Target, e.Message)
	}
	if len(r.Counts) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Counts)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Counts[k]))
		}
		fmt.Fprintf(b, "\ndrift: %s\n", strings.Join(parts, ", "))
	}
	if len(r.Waves) > 0 {
		fmt.Fprintf(b, "rollout: %s\n", wavesLine(r.Waves))
	}
	for _, f := range r.Failures {
		fmt.Fprintf(b, "could not check: %s\n", f)
	}
	writeRotations(b, r.Rotations)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRotations writes a line per authority in a rotation, for people.
func writeRotations(b *strings.Builder, rotations []decide.AuthorityPhase) {
	for _, ap := range rotations {
		since := ""
		if ap.Since != nil {
			since = " since " + ap.Since.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(b, "\nrotation of authority %s: phase %d/4 %s%s; trust bundle places holding the new CA %d/%d; leaves left %d (awaiting trust %d)\n      %s\n",
			ap.Authority, ap.Phase, ap.PhaseName, since, ap.PlacesTrusting, ap.Places, ap.LeavesRemaining, ap.LeavesAwaitingTrust, ap.Message)
	}
}

// Markdown writes the drift report as a table.
func (r *DriftReport) Markdown(w io.Writer) error {
	b := &strings.Builder{}
	icon := "✅"
	if r.Drifted() {
		icon = "⚠️"
	}
	fmt.Fprintf(b, "### %s certfleet drift: %d in sync, %d drifted\n\n`%s`\n\n", icon, r.InSync, len(r.Entries), r.Revision)
	if len(r.Entries) > 0 {
		fmt.Fprintf(b, "| reason | certificate | target | issued | delivered | expires | why |\n|---|---|---|---|---|---|---|\n")
		for _, e := range r.Entries {
			exp := ""
			if !e.NotAfter.IsZero() {
				exp = e.NotAfter.UTC().Format("2006-01-02")
			}
			fmt.Fprintf(b, "| %s | `%s` | `%s` | %s | %s | %s | %s |\n", e.Reason, e.Certificate, e.Target, e.IssuedSerial, e.DeliveredSerial, exp,
				strings.ReplaceAll(e.Message, "|", `\|`))
		}
	}
	if len(r.Waves) > 0 {
		fmt.Fprintf(b, "\nRollout: %s\n", wavesLine(r.Waves))
	}
	for _, f := range r.Failures {
		fmt.Fprintf(b, "\n> could not check: %s\n", f)
	}
	if len(r.Rotations) > 0 {
		fmt.Fprintf(b, "\n| authority | phase | trust bundle places holding the new CA | leaves left | awaiting trust | why |\n|---|---|---|---|---|---|\n")
		for _, ap := range r.Rotations {
			fmt.Fprintf(b, "| `%s` | %d %s | %d/%d | %d | %d | %s |\n", ap.Authority, ap.Phase, ap.PhaseName, ap.PlacesTrusting, ap.Places,
				ap.LeavesRemaining, ap.LeavesAwaitingTrust, strings.ReplaceAll(ap.Message, "|", `\|`))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wavesLine sums up a rollout's waves in one line: each wave's status and
// what it has left, and why the first one that waits does.
func wavesLine(ws []decide.Wave) string {
	parts := make([]string, len(ws))
	why := ""
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%s %s (%d of %d left)", w.Name, w.Status, w.Pending, w.Certificates)
		if why == "" && w.Message != "" {
			why = w.Message
		}
	}
	line := strings.Join(parts, " → ")
	if why != "" {
		line += "; " + why
	}
	return line
}
