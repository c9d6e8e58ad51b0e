package decide

import (
	"crypto/x509"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// Phase is where an authority's rotation stands. The phases follow each
// other in this order, and a phase is only reached when every earlier one
// holds: a leaf is reissued under a new CA only once every trust bundle
// place reads back holding it (decide.AwaitingTrust), and the old CA
// leaves the bundles only once nothing chains to it.
type Phase int

const (
	// PhaseIdle: the authority has no previous CA (none rotated out, or
	// the ones that were are gone from the backend or expired).
	PhaseIdle Phase = 0
	// PhaseNewIssuer: a new issuer is the default, and no trust bundle
	// place reads back holding its CA yet.
	PhaseNewIssuer Phase = 1
	// PhaseTrustPublishing: some trust bundle places read back holding
	// old and new CA, not all; leaves of the old CA wait (AwaitingTrust).
	PhaseTrustPublishing Phase = 2
	// PhaseReissuing: every place trusts the new CA; leaves signed by a
	// previous CA are being reissued (or were, and the old CA has not yet
	// been retired by a pass that sees the whole fleet).
	PhaseReissuing Phase = 3
	// PhaseRetired: no certificate chains to a previous CA any more; the
	// old CA has left every bundle, and its issuer is tidied per the
	// authority's retirePreviousIssuer. It lasts while the backend keeps
	// the old issuer (keep, disable; delete waiting on a revoked serial).
	PhaseRetired Phase = 4
)

var phaseNames = map[Phase]string{PhaseIdle: "Idle", PhaseNewIssuer: "NewIssuer", PhaseTrustPublishing: "TrustPublishing",
	PhaseReissuing: "Reissuing", PhaseRetired: "Retired"}

// String is the phase's name (NewIssuer, TrustPublishing, …).
func (p Phase) String() string { return phaseNames[p] }

// Trust is what a pass read back from the trust bundle places naming an
// authority: how many there are, how many hold its current CA, and why
// the first one that does not.
type Trust struct {
	Places, Trusting int
	Why              string
}

// AuthorityPhase is one authority's rotation after a pass.
type AuthorityPhase struct {
	Authority string `json:"authority"`
	Phase     Phase  `json:"phase"`
	PhaseName string `json:"phaseName"`
	// Since is when the authority entered the phase, as far as certfleet
	// recorded it (absent before the first pass that saw the phase).
	Since *time.Time `json:"since,omitempty"`
	// Places are the trust bundle places naming the authority;
	// PlacesTrusting those that read back holding its current CA.
	PlacesTrusting int `json:"placesTrusting"`
	Places         int `json:"places"`
	// LeavesRemaining are delivered targets still holding a leaf signed by
	// a previous CA after the pass (whatever holds them: trust, a wave,
	// a backoff, a failure); LeavesAwaitingTrust those of them held
	// because some place does not trust the new CA yet.
	LeavesRemaining     int `json:"leavesRemaining"`
	LeavesAwaitingTrust int `json:"leavesAwaitingTrust"`
	// Message says what the phase waits for, for people.
	Message string `json:"message,omitempty"`
	// Retire are the previous issuers a Retired phase tidies (by ID).
	Retire []schemas.PreviousIssuer `json:"-"`
}

// PhaseRecord is an authority's phase as the backend remembers it between
// passes (so since and changes survive one-shot runs).
type PhaseRecord struct {
	Phase Phase     `json:"phase"`
	Since time.Time `json:"since"`
}

// RotationInput is what the phases are computed from.
type RotationInput struct {
	Catalog   *schemas.Catalog
	Decisions Decisions
	// Trust is the pass's read-back of the trust bundles, by authority (an
	// authority no bundle names has no entry: nothing to wait for).
	Trust map[string]Trust
	// Rewritten are the target keys this pass delivered a newly issued
	// certificate to: they no longer hold the old CA's leaf.
	Rewritten map[string]bool
	// Retired says which previous CAs nothing depends on any more, as the
	// pass that removed them from the bundles decided (nil: none, the pass
	// did not see the whole fleet).
	Retired func(schemas.PreviousIssuer) bool
	// Previous is the last recorded phase per authority.
	Previous map[string]PhaseRecord
	Now      time.Time
}

// RotationPhases is the phase of every authority of the catalog (ACME
// issuers have none), by name. It is pure: the pass carries out what a
// phase asks (tidying a retired issuer) and records the changes.
func RotationPhases(in RotationInput) []AuthorityPhase {
	if in.Catalog == nil {
		return nil
	}
	names := make([]string, 0, len(in.Catalog.Authorities))
	// live are each authority's unexpired previous issuers, and their CAs parsed.
	live := map[string][]schemas.PreviousIssuer{}
	liveCAs := map[string][]*x509.Certificate{}
	current := map[string]*x509.Certificate{}
	for name, a := range in.Catalog.Authorities {
		names = append(names, name)
		current[name], _ = pki.ParseCertificate([]byte(a.Status.Certificate))
		for _, p := range a.Status.PreviousIssuers {
			if !p.NotAfter.After(in.Now) {
				continue
			}
			live[name] = append(live[name], p)
			if c, err := pki.ParseCertificate([]byte(p.Certificate)); err == nil {
				liveCAs[name] = append(liveCAs[name], c)
			}
		}
	}
	sort.Strings(names)
	type leaves struct{ remaining, awaiting int }
	count := map[string]*leaves{}
	for _, c := range in.Decisions.Certificates {
		iss := in.Catalog.Issuers[c.Desired.Certificate.Spec.Issuer]
		if iss == nil || len(liveCAs[iss.Spec.Authority]) == 0 {
			continue
		}
		name := iss.Spec.Authority
		for _, t := range c.Targets {
			o := t.Observed
			if o == nil || o.Cert == nil || in.Rewritten[t.Target.Key] || current[name] != nil && signedBy(o.Cert, current[name]) ||
				!slices.ContainsFunc(liveCAs[name], func(p *x509.Certificate) bool { return signedBy(o.Cert, p) }) {
				continue
			}
			l := count[name]
			if l == nil {
				l = &leaves{}
				count[name] = l
			}
			l.remaining++
			if t.Reason == AwaitingTrust {
				l.awaiting++
			}
		}
	}
	out := make([]AuthorityPhase, 0, len(names))
	for _, name := range names {
		a := in.Catalog.Authorities[name]
		ap := AuthorityPhase{Authority: name}
		tr := in.Trust[name]
		ap.Places, ap.PlacesTrusting = tr.Places, tr.Trusting
		if l := count[name]; l != nil {
			ap.LeavesRemaining, ap.LeavesAwaitingTrust = l.remaining, l.awaiting
		}
		live := live[name]
		allRetired := in.Retired != nil && !slices.ContainsFunc(live, func(p schemas.PreviousIssuer) bool { return !in.Retired(p) })
		switch {
		case len(live) == 0:
			ap.Phase = PhaseIdle
		case tr.Trusting < tr.Places && tr.Trusting == 0:
			ap.Phase, ap.Message = PhaseNewIssuer, fmt.Sprintf("no trust bundle place holds the new CA yet: %s", tr.Why)
		case tr.Trusting < tr.Places:
			ap.Phase, ap.Message = PhaseTrustPublishing, fmt.Sprintf("%d of %d trust bundle places hold the new CA: %s", tr.Trusting, tr.Places, tr.Why)
		case ap.LeavesRemaining > 0:
			ap.Phase, ap.Message = PhaseReissuing, fmt.Sprintf("%d delivered leaves still signed by a previous CA", ap.LeavesRemaining)
		case !allRetired:
			// No declared leaf is left, but something else may still chain
			// to the old CA (an unmanaged Secret, a CA of the catalog, a
			// target this pass did not see, or the leaves it just replaced).
			ap.Phase, ap.Message = PhaseReissuing, "no declared leaf signed by a previous CA is left; the old CA leaves the bundles once a pass that sees the whole fleet finds nothing signed by it"
		default:
			ap.Phase, ap.Retire = PhaseRetired, live
			ap.Message = fmt.Sprintf("nothing chains to the previous CA any more: it leaves every trust bundle (a dry run only reads them), and its issuer is tidied per retirePreviousIssuer (%s)", a.Spec.Retire())
		}
		ap.PhaseName = ap.Phase.String()
		if prev, ok := in.Previous[name]; ok && prev.Phase == ap.Phase {
			since := prev.Since
			ap.Since = &since
		}
		out = append(out, ap)
	}
	return out
}

// PhaseChanges are the authorities whose phase differs from the recorded
// one (an authority never recorded counts as Idle before), for the audit
// log; and the records to keep for the next pass.
func PhaseChanges(phases []AuthorityPhase, previous map[string]PhaseRecord, now time.Time) (changed []AuthorityPhase, records map[string]PhaseRecord) {
	records = map[string]PhaseRecord{}
	for _, ap := range phases {
		prev, ok := previous[ap.Authority]
		if ok && prev.Phase == ap.Phase {
			records[ap.Authority] = prev
			continue
		}
		if !ok && ap.Phase == PhaseIdle {
			continue
		}
		changed = append(changed, ap)
		if ap.Phase != PhaseIdle {
			records[ap.Authority] = PhaseRecord{Phase: ap.Phase, Since: now}
		}
	}
	return changed, records
}

// PreviousSerial is a previous issuer's CA serial (pki.Serial), for messages.
func PreviousSerial(p schemas.PreviousIssuer) string {
	c, err := pki.ParseCertificate([]byte(p.Certificate))
	if err != nil {
		return p.IssuerID
	}
	return pki.Serial(c.SerialNumber)
}
