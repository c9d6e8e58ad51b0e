package reconcile

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
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
	InSync  int            `json:"inSync"`
	Counts  map[string]int `json:"counts"`
	Entries []DriftEntry   `json:"entries"`
	// Failures are targets or clusters that could not be observed.
	Failures []string `json:"failures"`
}

// DriftEntry is one target that differs.
type DriftEntry struct {
	Reason      string `json:"reason"`
	Certificate string `json:"certificate,omitempty"`
	Target      string `json:"target"`
	File        string `json:"file,omitempty"`
	// IssuedSerial is the inventory's; DeliveredSerial the target's.
	IssuedSerial    string    `json:"issuedSerial,omitempty"`
	DeliveredSerial string    `json:"deliveredSerial,omitempty"`
	NotAfter        time.Time `json:"notAfter,omitzero"`
	Message         string    `json:"message"`
	// Effective is what the issuer makes of the declaration (requested vs effective).
	Effective *schemas.Effective `json:"effective,omitempty"`
}

// driftNames renames decide's reasons where drift has its own word.
var driftNames = map[decide.Reason]string{decide.Renewing: "Expiring"}

// Drift observes and decides, changing nothing, and reports the differences.
func (p *Pass) Drift(ctx context.Context, res *render.Result, verdicts map[string]schemas.CertificateVerdict) (*DriftReport, error) {
	dry := *p
	dry.DryRun, dry.Prune = true, false
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

// DriftOf reads the drift out of a pass's report (the state after it).
func DriftOf(rep *Report) *DriftReport {
	r := &DriftReport{Revision: rep.Revision, Time: rep.Started, Counts: map[string]int{}, Entries: []DriftEntry{}, Failures: []string{}}
	r.Failures = append(r.Failures, rep.Unobservable...)
	for _, s := range rep.State {
		e := DriftEntry{Reason: s.Reason, Certificate: s.Certificate, Target: s.Target, File: s.File,
			IssuedSerial: s.IssuedSerial, DeliveredSerial: s.Serial, NotAfter: s.NotAfter}
		if name, ok := driftNames[decide.Reason(s.Reason)]; ok {
			e.Reason = name
		}
		if s.Reason == string(decide.InSync) {
			r.InSync++
			continue
		}
		e.Message = driftMessage(e, s, rep.Started)
		r.Counts[e.Reason]++
		r.Entries = append(r.Entries, e)
	}
	return r
}

func driftMessage(e DriftEntry, s TargetState, now time.Time) string {
	switch e.Reason {
	case string(decide.Missing):
		return "declared in " + s.File + " but not delivered"
	case string(decide.MissingData):
		return "the target lacks a readable tls.crt or tls.key"
	case string(decide.KeyMismatch):
		return "tls.key does not belong to tls.crt"
	case string(decide.ModifiedOutOfBand):
		return "the delivered data is not what certfleet wrote (edited by hand, or written by something else)"
	case string(decide.IssuerChanged):
		return "the certificate now names issuer " + s.Issuer
	case string(decide.SpecChanged):
		return "the declaration changed since the delivered certificate was issued"
	case string(decide.TemplateChanged):
		return "the Secret's labels or annotations (or the key's encoding) changed in Git"
	case "Expiring":
		return fmt.Sprintf("past its renewal time; expires %s (in %s)", e.NotAfter.UTC().Format(time.RFC3339), e.NotAfter.Sub(now).Round(time.Minute))
	case string(decide.Expired):
		return fmt.Sprintf("expired %s", e.NotAfter.UTC().Format(time.RFC3339))
	case string(decide.PolicyViolation):
		return "policies deny the declaration; the delivered certificate is left alone"
	case string(decide.Suspended):
		return "suspended in Git"
	case string(decide.Unreachable):
		return "could not be observed"
	case string(decide.NotRecorded):
		if e.IssuedSerial == "" {
			return fmt.Sprintf("the target holds serial %s, which the inventory does not record; the next pass records it", e.DeliveredSerial)
		}
		return fmt.Sprintf("the target holds serial %s but the inventory records %s; the next pass repairs it", e.DeliveredSerial, e.IssuedSerial)
	case string(decide.TakenOver):
		return "the target does not carry certfleet's marks for this certificate any more; it is left alone (`--adopt` takes it back)"
	case string(decide.Orphaned):
		return "certfleet manages this target but no certificate declares it; `certfleet reconcile --prune` deletes it"
	case string(decide.Unmanaged):
		if e.NotAfter.IsZero() {
			return "a TLS Secret certfleet does not manage, without a readable certificate"
		}
		return fmt.Sprintf("a TLS Secret certfleet does not manage, expiring %s", e.NotAfter.UTC().Format(time.RFC3339))
	case string(decide.BackingOff):
		return "the last attempts failed; retrying after a backoff"
	case string(decide.PermanentFailure):
		return "the issuer refused this certificate; it is not tried again until the declaration, the issuer or its authority changes"
	}
	return ""
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
		for k, v := range r.Counts {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(parts)
		fmt.Fprintf(b, "\ndrift: %s\n", strings.Join(parts, ", "))
	}
	for _, f := range r.Failures {
		fmt.Fprintf(b, "could not check: %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
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
	for _, f := range r.Failures {
		fmt.Fprintf(b, "\n> could not check: %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
