// Package evaluate gives every desired certificate its verdict: the
// catalog's policies (schemas.PolicySet) and the catalog cross-checks —
// the issuer exists, the duration fits the issuer's max TTL, and both fit
// the authority's remaining lifetime.
package evaluate

import (
	"fmt"
	"github.com/certfleet/certfleet/internal/backend"
	"sort"
	"strings"
	"time"

	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// Reasons of the catalog cross-checks, beside the policies' own.
const (
	// ReasonUnknownIssuer: the certificate names an issuer the catalog does not have.
	ReasonUnknownIssuer schemas.Reason = "UnknownIssuer"
	// ReasonDurationBeyondIssuer: the duration exceeds the issuer's max TTL; Vault would silently shorten it.
	ReasonDurationBeyondIssuer schemas.Reason = "DurationBeyondIssuer"
	// ReasonDurationBeyondAuthority: the certificate would outlive its authority; Vault refuses it.
	ReasonDurationBeyondAuthority schemas.Reason = "DurationBeyondAuthority"
	// ReasonIssuerBeyondAuthority (a warning): the issuer's max TTL outlasts its authority.
	ReasonIssuerBeyondAuthority schemas.Reason = "IssuerBeyondAuthority"
	// ReasonAuthorityUnavailable: the issuer's authority is missing or has no certificate yet.
	ReasonAuthorityUnavailable schemas.Reason = "AuthorityUnavailable"
	// ReasonCatalogMount: a Vault KV target in the catalog's own mount, where
	// the catalog, the inventory and the locks live: always refused.
	ReasonCatalogMount schemas.Reason = "CatalogMount"
)

// Evaluator holds a catalog's compiled policies.
type Evaluator struct {
	cat      *schemas.Catalog
	policies *schemas.PolicySet
	// PolicyErrors are policies that did not compile, by name; they are left
	// out, and reported, so one bad policy does not stop the others.
	PolicyErrors map[string]schemas.Errors
	now          time.Time
	catalogMount string
}

// Option configures New.
type Option func(*Evaluator)

// WithCatalogMount names the catalog's KV v2 mount (default
// backend.DefaultCatalogMount), which no target may write into.
func WithCatalogMount(mount string) Option {
	return func(e *Evaluator) {
		if mount != "" {
			e.catalogMount = mount
		}
	}
}

// New compiles the catalog's policies. A nil catalog evaluates nothing
// beyond validation: every certificate is allowed and no policy applies.
func New(cat *schemas.Catalog, now time.Time, opts ...Option) *Evaluator {
	e := &Evaluator{cat: cat, now: now, catalogMount: backend.DefaultCatalogMount}
	for _, o := range opts {
		o(e)
	}
	if cat != nil {
		e.policies, e.PolicyErrors = schemas.CompilePolicies(cat.PolicyList())
	}
	return e
}

// HasCatalog reports whether policies and catalog checks apply.
func (e *Evaluator) HasCatalog() bool { return e.cat != nil }

// Verdict evaluates one desired certificate.
func (e *Evaluator) Verdict(d *render.Desired) schemas.CertificateVerdict {
	v := schemas.CertificateVerdict{ID: d.ID, File: d.File(), Line: d.Line(), Issuer: d.Certificate.Spec.Issuer,
		Allowed: true, Policies: []string{}}
	if e.cat == nil {
		return v
	}
	pv := e.policies.Evaluate(d.Certificate, d.File(), placement(d))
	v.Policies = pv.Policies
	viols, warns := pv.Violations, pv.Warnings
	for _, c := range catalogChecks {
		for _, x := range c(e, d) {
			if x.Reason == ReasonIssuerBeyondAuthority {
				warns = append(warns, x)
			} else {
				viols = append(viols, x)
			}
		}
	}
	v.Violations, v.Warnings = locate(d, viols), locate(d, warns)
	v.Allowed = len(v.Violations) == 0
	return v
}

// All evaluates every desired certificate, in order.
func (e *Evaluator) All(ds []*render.Desired) []schemas.CertificateVerdict {
	out := make([]schemas.CertificateVerdict, len(ds))
	for i, d := range ds {
		out[i] = e.Verdict(d)
	}
	return out
}

// ByID evaluates every desired certificate and returns the verdicts by ID,
// as a pass takes them.
func (e *Evaluator) ByID(ds []*render.Desired) map[string]schemas.CertificateVerdict {
	out := make(map[string]schemas.CertificateVerdict, len(ds))
	for _, d := range ds {
		out[d.ID] = e.Verdict(d)
	}
	return out
}

// placement is where render resolved the certificate's clusterSelectors.
func placement(d *render.Desired) schemas.Placement {
	out := schemas.Placement{}
	for _, t := range d.Targets {
		if t.Kind == render.Kubernetes {
			out[t.Index] = append(out[t.Index], t.Cluster)
		}
	}
	return out
}

func locate(d *render.Desired, vs []schemas.Violation) []schemas.LocatedViolation {
	out := make([]schemas.LocatedViolation, len(vs))
	for i, v := range vs {
		line, col := d.Pos(v.Field)
		out[i] = schemas.LocatedViolation{Violation: v, Line: line, Column: col}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// catalogCheck is one cross-check against the catalog.
type catalogCheck func(e *Evaluator, d *render.Desired) []schemas.Violation

var catalogChecks = []catalogCheck{checkIssuerExists, checkIssuerTTL, checkAuthorityLifetime, checkCatalogMount}

func checkCatalogMount(e *Evaluator, d *render.Desired) []schemas.Violation {
	var out []schemas.Violation
	for i, t := range d.Certificate.Spec.Targets {
		if kv := t.VaultKV; kv != nil && strings.Trim(kv.Mount, "/") == e.catalogMount {
			out = append(out, schemas.Violation{Reason: ReasonCatalogMount, Field: fmt.Sprintf("spec.targets[%d].vaultKV.mount", i), Value: kv.Mount,
				Message: fmt.Sprintf("mount %q holds certfleet's catalog, inventory and locks; deliver into another KV mount", kv.Mount)})
		}
	}
	return out
}

func checkIssuerExists(e *Evaluator, d *render.Desired) []schemas.Violation {
	name := d.Certificate.Spec.Issuer
	if _, ok := e.cat.Issuers[name]; ok {
		return nil
	}
	known := make([]string, 0, len(e.cat.Issuers))
	for n := range e.cat.Issuers {
		known = append(known, n)
	}
	sort.Strings(known)
	return []schemas.Violation{{Reason: ReasonUnknownIssuer, Field: "spec.issuer", Value: name,
		Message: fmt.Sprintf("issuer %q is not in the catalog; known issuers: %v", name, known)}}
}

func checkIssuerTTL(e *Evaluator, d *render.Desired) []schemas.Violation {
	l, ok := e.cat.Limits(d.Certificate.Spec.Issuer)
	if !ok || l.MaxTTL == 0 {
		return nil
	}
	if dur := d.Certificate.Spec.Lifetime(); dur > l.MaxTTL {
		return []schemas.Violation{{Reason: ReasonDurationBeyondIssuer, Field: "spec.duration", Value: schemas.FormatDuration(dur),
			Rule: "issuer max TTL " + schemas.FormatDuration(l.MaxTTL),
			Message: fmt.Sprintf("duration %s is longer than issuer %q allows (max TTL %s); Vault would shorten it silently — ask for at most %s",
				schemas.FormatDuration(dur), d.Certificate.Spec.Issuer, schemas.FormatDuration(l.MaxTTL), schemas.FormatDuration(l.MaxTTL))}}
	}
	return nil
}

func checkAuthorityLifetime(e *Evaluator, d *render.Desired) []schemas.Violation {
	l, ok := e.cat.Limits(d.Certificate.Spec.Issuer)
	if !ok {
		return nil
	}
	if l.AuthorityNotAfter == nil {
		return []schemas.Violation{{Reason: ReasonAuthorityUnavailable, Field: "spec.issuer", Value: d.Certificate.Spec.Issuer,
			Message: fmt.Sprintf("issuer %q signs with authority %q, which the catalog does not hold (or has no certificate yet)", d.Certificate.Spec.Issuer, l.Authority)}}
	}
	remaining := l.AuthorityNotAfter.Sub(e.now)
	var out []schemas.Violation
	if dur := d.Certificate.Spec.Lifetime(); dur > remaining {
		out = append(out, schemas.Violation{Reason: ReasonDurationBeyondAuthority, Field: "spec.duration", Value: schemas.FormatDuration(dur),
			Rule: "authority " + l.Authority + " expires " + l.AuthorityNotAfter.UTC().Format(time.RFC3339),
			Message: fmt.Sprintf("a %s certificate issued now would outlive authority %q, which expires %s (in %s)",
				schemas.FormatDuration(dur), l.Authority, l.AuthorityNotAfter.UTC().Format(time.RFC3339), schemas.FormatDuration(remaining.Truncate(time.Hour)))})
	}
	if l.MaxTTL > remaining {
		out = append(out, schemas.Violation{Reason: ReasonIssuerBeyondAuthority, Field: "spec.issuer", Value: d.Certificate.Spec.Issuer,
			Message: fmt.Sprintf("issuer %q's max TTL %s outlasts authority %q (expires %s); rotate the authority",
				d.Certificate.Spec.Issuer, schemas.FormatDuration(l.MaxTTL), l.Authority, l.AuthorityNotAfter.UTC().Format(time.RFC3339))})
	}
	return out
}
