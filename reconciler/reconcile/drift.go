package reconcile

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
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
}

// driftNames renames decide's reasons where drift has its own word.
var driftNames = map[decide.Reason]string{decide.Renewing: "Expiring"}

// Drift observes and decides, and reports the differences.
func (p *Pass) Drift(ctx context.Context, res *render.Result, verdicts map[string]schemas.CertificateVerdict) (*DriftReport, error) {
	now := p.now()
	inv, err := inventory.Load(ctx, p.Backend)
	if err != nil {
		return nil, fmt.Errorf("reading the inventory: %w", err)
	}
	obs := p.observe(ctx, res.Desired, inv)
	dec := decide.Decide(decide.Input{Desired: res.Desired, Verdicts: verdicts, Observed: obs.byKey,
		Unobservable: obs.unobservable, Inventory: inv, Now: now, MaxJitter: p.MaxJitter})
	r := &DriftReport{Revision: res.Revision.String(), Time: now, Counts: map[string]int{}, Entries: []DriftEntry{}, Failures: []string{}}
	for key, err := range obs.unobservable {
		r.Failures = append(r.Failures, fmt.Sprintf("observing %s: %v", strings.TrimSuffix(key, "/"), err))
	}
	add := func(e DriftEntry) {
		r.Counts[e.Reason]++
		r.Entries = append(r.Entries, e)
	}
	for _, c := range dec.Certificates {
		issued := ""
		if e, ok := inv[c.Desired.ID]; ok {
			issued = e.Serial
		}
		for _, t := range c.Targets {
			reason := t.Reason
			if c.Reason == decide.PolicyViolation {
				reason = decide.PolicyViolation
			}
			e := DriftEntry{Reason: string(reason), Certificate: c.Desired.ID, Target: t.Target.Key, File: c.Desired.File(), IssuedSerial: issued}
			if name, ok := driftNames[reason]; ok {
				e.Reason = name
			}
			if t.Observed != nil && t.Observed.Cert != nil {
				e.DeliveredSerial = t.Observed.Annotations[target.AnnSerial]
				if e.DeliveredSerial == "" || !t.Observed.Managed {
					e.DeliveredSerial = serialOf(t.Observed)
				}
				e.NotAfter = t.Observed.Cert.NotAfter
			}
			if reason == decide.InSync && (issued == "" || issued == e.DeliveredSerial) {
				r.InSync++
				continue
			}
			if reason == decide.InSync {
				// Delivered and issued disagree: the inventory missed a write, or the target was rolled back.
				e.Reason = "NotRecorded"
			}
			e.Message = driftMessage(e, c.Desired, now)
			add(e)
		}
	}
	for _, o := range dec.Orphans {
		e := DriftEntry{Reason: string(decide.Orphaned), Certificate: orphanID(o), Target: o.Target.Key}
		if o.Observed != nil && o.Observed.Cert != nil {
			e.DeliveredSerial, e.NotAfter = serialOf(o.Observed), o.Observed.Cert.NotAfter
		}
		e.Message = "certfleet manages this target but no certificate declares it; `certfleet reconcile --prune` deletes it"
		add(e)
	}
	for _, u := range dec.Unmanaged {
		e := DriftEntry{Reason: string(decide.Unmanaged), Target: u.Target.Key}
		if u.Observed != nil && u.Observed.Cert != nil {
			e.DeliveredSerial, e.NotAfter = serialOf(u.Observed), u.Observed.Cert.NotAfter
			e.Message = fmt.Sprintf("a TLS Secret certfleet does not manage, expiring %s", u.Observed.Cert.NotAfter.UTC().Format(time.RFC3339))
		} else {
			e.Message = "a TLS Secret certfleet does not manage, without a readable certificate"
		}
		add(e)
	}
	sort.Strings(r.Failures)
	return r, nil
}

func driftMessage(e DriftEntry, d *render.Desired, now time.Time) string {
	switch e.Reason {
	case string(decide.Missing):
		return "declared in " + d.File() + " but not delivered"
	case string(decide.MissingData):
		return "the target lacks a readable tls.crt or tls.key"
	case string(decide.KeyMismatch):
		return "tls.key does not belong to tls.crt"
	case string(decide.ModifiedOutOfBand):
		return "the delivered data is not what certfleet wrote (edited by hand, or written by something else)"
	case string(decide.IssuerChanged):
		return "the certificate now names issuer " + d.Certificate.Spec.Issuer
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
	case "NotRecorded":
		return fmt.Sprintf("the target holds serial %s but the inventory records %s", e.DeliveredSerial, e.IssuedSerial)
	}
	return ""
}

func serialOf(o *target.Observed) string {
	if o.Cert == nil {
		return ""
	}
	return pki.Serial(o.Cert.SerialNumber)
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
