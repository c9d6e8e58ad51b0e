// Package decide is the heart of a pass, and pure: from the desired
// certificates, their verdicts, what every target holds, the inventory and
// the time, it decides per target why it is not in sync — a chain of small
// checks, one reason each — and per certificate whether a new certificate
// is needed or a healthy one can be copied.
package decide

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// Reason says why a target is (or is not) in sync.
type Reason string

const (
	// Missing: the target holds nothing.
	Missing Reason = "Missing"
	// MissingData: the target exists but tls.crt or tls.key is absent or unreadable.
	MissingData Reason = "MissingData"
	// KeyMismatch: tls.key does not belong to tls.crt.
	KeyMismatch Reason = "KeyMismatch"
	// ModifiedOutOfBand: the delivered data is not what certfleet wrote (edited by hand, or not certfleet's).
	ModifiedOutOfBand Reason = "ModifiedOutOfBand"
	// IssuerChanged: the certificate now names another issuer.
	IssuerChanged Reason = "IssuerChanged"
	// AuthorityRotated: the delivered certificate is signed by a previous
	// CA of its issuer's authority, which has rotated, and every trust
	// bundle of the authority holds the new CA: it is reissued.
	AuthorityRotated Reason = "AuthorityRotated"
	// AwaitingTrust: the delivered certificate is signed by a previous CA
	// of its issuer's authority, but some trust bundle does not hold the
	// new CA yet: it is kept (reissuing now could break handshakes).
	AwaitingTrust Reason = "AwaitingTrust"
	// WaitingForWave: a mass reissue (an authority rotation, a spec or
	// issuer change touching many certificates) waits for its rollout wave
	// (see Waves); what is delivered stays until then.
	WaitingForWave Reason = "WaitingForWave"
	// SpecChanged: a field the certificate carries changed (SANs, subject, key, duration, usages).
	SpecChanged Reason = "SpecChanged"
	// Expired: the delivered certificate has expired.
	Expired Reason = "Expired"
	// RenewalRequested: an operator asked for this certificate to be
	// reissued (`certfleet renew`).
	RenewalRequested Reason = "RenewalRequested"
	// Expiring: the renewal time (with the certificate's jitter) has passed.
	Expiring Reason = "Expiring"
	// TemplateChanged: only the delivered object's labels, annotations or key encoding changed.
	TemplateChanged Reason = "TemplateChanged"
	// InSync: nothing to do.
	InSync Reason = "InSync"
	// Orphaned: certfleet manages the target but no certificate declares it any more.
	Orphaned Reason = "Orphaned"
	// Unmanaged: a TLS Secret in a target cluster that certfleet does not manage.
	Unmanaged Reason = "Unmanaged"
	// Unreachable: the target could not be observed (its cluster or Vault is down).
	Unreachable Reason = "Unreachable"
	// PolicyViolation: policies deny the certificate; what was delivered stays.
	PolicyViolation Reason = "PolicyViolation"
	// Suspended: the certificate is suspended; what was delivered stays.
	Suspended Reason = "Suspended"
	// BackingOff: the last attempts failed; the next one waits (capped exponential backoff).
	BackingOff Reason = "BackingOff"
	// PermanentFailure: the issuer refused the certificate (its role does not
	// allow it, or the role or authority is gone); it is not tried again
	// until the declaration, the issuer or its authority changes.
	PermanentFailure Reason = "PermanentFailure"
	// TakenOver: the target exists but does not carry certfleet's marks for
	// this certificate (someone else's, or its marks were removed): it is
	// left alone, never overwritten or pruned, unless adoption is asked for.
	TakenOver Reason = "TakenOver"
	// NotRecorded: the target holds a certificate certfleet issued (its marks,
	// signed by the issuer's authority) that the inventory does not record —
	// a pass stopped between delivery and record. The pass records it.
	NotRecorded Reason = "NotRecorded"
	// NotServed: the target holds the current certificate, but its probe
	// (the workload's TLS endpoint) still serves another one, or could not
	// be dialled, past the probe's grace since the delivery. Writing again
	// cannot fix it (the workload has not reloaded): it is reported only.
	NotServed Reason = "NotServed"
	// Unclaimed: no declared shard claims the certificate (its
	// certfleet.dev/shard label names an undeclared shard, or it has none
	// and sharding is by label without a default): no shard acts on it or
	// prunes it until one does.
	Unclaimed Reason = "Unclaimed"
	// AwaitingHandOff: the certificate now belongs to this shard, but the
	// shard that owns it has not released it yet (and its lease is live):
	// it is left alone until then, so two shards never act on it at once.
	AwaitingHandOff Reason = "AwaitingHandOff"
)

// needsNewCertificate lists the reasons a target's certificate cannot be
// kept; the others can be fixed by copying a healthy certificate.
var needsNewCertificate = map[Reason]bool{IssuerChanged: true, AuthorityRotated: true, SpecChanged: true, Expired: true, RenewalRequested: true, Expiring: true}

// Input is everything a decision depends on.
type Input struct {
	Desired  []*render.Desired
	Verdicts map[string]schemas.CertificateVerdict
	// Observed holds every observed target by key: the desired ones, and in
	// clusters every other TLS Secret (managed orphans and unmanaged ones).
	Observed map[string]*target.Observed
	// Unobservable holds targets (by key) and clusters (by "kubernetes/<cluster>/") that could not be read.
	Unobservable map[string]error
	Inventory    map[string]*inventory.Entry
	// Renewals are the operators' pending requests to reissue, by certificate ID.
	Renewals map[string]inventory.Renewal
	Now      time.Time
	// MaxJitter spreads renewals (schemas.JitteredRenewalTime); 0 disables it.
	MaxJitter time.Duration
	// Catalog holds the authorities a delivered certificate must chain to
	// before the inventory records it (nil: nothing unrecorded is trusted).
	Catalog *schemas.Catalog
	// Untrusted names the authorities some trust bundle place does not yet
	// hold the current CA of, with why: their rotated leaves wait.
	Untrusted map[string]string
	// Adopt lets certfleet write over targets that do not carry its marks
	// (TakenOver); without it they are left alone.
	Adopt bool
	// InScope reports whether a repository file lies inside what was
	// rendered (--path, .certfleetignore, shard): only the inventory entries
	// of such files can be orphaned. Nil means the whole repository.
	InScope func(file string) bool
	// Windows are the renewal windows ACME CAs suggest (ARI, RFC 9773), by
	// certificate serial (pki.Serial); a certificate without one renews at
	// its lifetime-based time alone.
	Windows map[string]Window
	// OutputDir is the root of relative directory targets. An inventory
	// record of a directory is matched by render.DirectoryKey of its path,
	// so one recorded under another spelling ("./web", or its absolute form
	// under OutputDir) is not taken for an orphan and deleted.
	OutputDir string
	// Served is what the probes of delivered targets saw, by target key.
	Served map[string]Served
	// Workloads are the workloads targets restart (restart:), as observed,
	// by target key; absent when it could not be read.
	Workloads map[string]*target.Workload
}

// Served is what a target's probe saw: the serial (pki.Serial) of the leaf
// its endpoint served, or why dialling it failed.
type Served struct {
	Serial string
	Err    error
}

// Target is the decision for one target.
type Target struct {
	Target *render.Target
	Reason Reason
	// Message explains Reason to people (drift, the report, the page).
	Message  string
	Observed *target.Observed
	// Write is true when the target must be (re)written.
	Write bool
	// TakeOver is true when the write replaces something without this
	// certificate's marks: adoption was asked for, or the inventory records
	// the target under another certificate (it moved between declarations).
	TakeOver bool
	// Certificate is the ID the inventory records an orphan or a taken-over
	// target under.
	Certificate string
	// Restart is set when the workload the target feeds (its restart:) is
	// to be restarted: after this pass's write when Write is set.
	Restart *Restart
}

// Restart is the decision to restart a target's workload for one serial.
type Restart struct {
	// Serial is the certificate it is restarted for: the one the target
	// holds or this pass copies to it; "" when it is the one this pass issues.
	Serial string
}

// Certificate is the decision for one desired certificate.
type Certificate struct {
	Desired *render.Desired
	// Reason is the certificate's own state: the most urgent of its targets'.
	Reason Reason
	// Message explains Reason.
	Message string
	Targets []Target
	// Issue is true when a new certificate is needed.
	Issue bool
	// Source is a target holding a healthy copy of the current certificate,
	// to deliver where it is missing (when Issue is false).
	Source *target.Observed
	// ReuseKey is the key to keep (rotationPolicy Never), when one exists.
	ReuseKey *target.Observed
	// Record is true when the source's certificate is delivered but not in
	// the inventory (NotRecorded): the pass records it without issuing.
	Record bool
	// RenewAt is when the current certificate renews (zero when there is none).
	RenewAt time.Time
	// DueAt is the earliest renewal time of the certificates its targets
	// hold (zero when none holds one): a rollout never holds a certificate
	// back past it.
	DueAt time.Time
	// Wave is the rollout wave a held mass reissue waits in ("": none).
	Wave string
}

// Window is the time span an ACME CA suggests renewing one certificate in
// (ACME Renewal Information, RFC 9773). A window in the past means now: a
// CA asks that of a certificate it revoked or is about to.
type Window = backend.RenewalWindow

// Decisions is the outcome of a pass's decide step.
type Decisions struct {
	Certificates []Certificate
	// Orphans are managed targets no certificate declares (pruned only with --prune).
	Orphans []Target
	// Unmanaged are TLS Secrets in target clusters certfleet does not manage.
	Unmanaged []Target
	// TakenOver are inventory targets (not declared any more) whose marks
	// no longer say they are certfleet's: never pruned.
	TakenOver []Target
	// Windows are Input.Windows, for reporting a renewal time as decided.
	Windows map[string]Window
}

// targetInput is what one target's checks see.
type targetInput struct {
	d       *render.Desired
	t       render.Target
	o       *target.Observed
	inv     map[string]*inventory.Entry
	adopt   bool
	now     time.Time
	renewAt time.Time
	// suggested is true when renewAt is the CA's suggestion (ARI).
	suggested bool
	// renewal is an operator's pending request to reissue (nil: none).
	renewal *inventory.Renewal
	// cas are the CA certificates of the issuer's authority (nil: none known).
	cas *authorityCAs
	// untrusted says why the authority's new CA is not trusted everywhere yet ("": it is).
	untrusted string
	// missing shares the messages of Missing targets within a decide.
	missing missingMessages
}

// missingMessages are the messages of Missing targets, one per file shared
// by the certificates it declares: a first pass finds every target of the
// fleet missing, and a message of its own each was ~64 bytes a target.
type missingMessages map[string]string

func (m missingMessages) of(file string) string {
	if msg, ok := m[file]; ok {
		return msg
	}
	msg := "declared in " + file + " but not delivered"
	if m != nil {
		m[file] = msg
	}
	return msg
}

// authorityCAs are an authority's CA certificates, parsed once per pass.
type authorityCAs struct {
	name     string
	current  *x509.Certificate
	previous []*x509.Certificate
}

// parseAuthorities parses each authority's current and previous CA
// certificates, by the name of each issuer signing through it.
func parseAuthorities(cat *schemas.Catalog) map[string]*authorityCAs {
	if cat == nil {
		return nil
	}
	byAuthority := map[string]*authorityCAs{}
	out := map[string]*authorityCAs{}
	for name, iss := range cat.Issuers {
		a, ok := cat.Authorities[iss.Spec.Authority]
		if !ok || iss.Spec.ACME != nil {
			continue
		}
		cas, ok := byAuthority[a.Metadata.Name]
		if !ok {
			cas = &authorityCAs{name: a.Metadata.Name}
			cas.current, _ = pki.ParseCertificate([]byte(a.Status.Certificate))
			for _, p := range a.Status.PreviousIssuers {
				if c, err := pki.ParseCertificate([]byte(p.Certificate)); err == nil {
					cas.previous = append(cas.previous, c)
				}
			}
			byAuthority[a.Metadata.Name] = cas
		}
		out[name] = cas
	}
	return out
}

// signedBy reports whether ca signed leaf: by their key identifiers when
// both carry one, else by the signature. The identifiers suffice here: the
// earlier checks of the chain have made sure the delivered data is what
// certfleet wrote, and a signature check per target per pass would cost a
// fleet's no-op pass an ECDSA verification per certificate.
func signedBy(leaf *target.Leaf, ca *x509.Certificate) bool {
	if len(leaf.AuthorityKeyId) > 0 && len(ca.SubjectKeyId) > 0 {
		return bytes.Equal(leaf.AuthorityKeyId, ca.SubjectKeyId)
	}
	c, err := leaf.X509()
	return err == nil && c.CheckSignatureFrom(ca) == nil
}

// owned reports whether an observed target carries certfleet's marks for
// certificate id, or for the certificate the inventory recorded it under (a
// target moved from one certificate to another stays certfleet's).
func owned(o *target.Observed, id string, inv map[string]*inventory.Entry) bool {
	if o == nil || !o.Managed {
		return false
	}
	holder := o.Annotation(target.AnnCertificateID)
	if holder == id {
		return true
	}
	if e := inv[holder]; e != nil {
		for _, t := range e.Targets {
			if t.Key == o.Target.Key {
				return true
			}
		}
	}
	return false
}

// check is one link of the chain: when it applies it returns its reason
// and the sentence that explains it to people.
type check func(in targetInput) (Reason, string, bool)

// chain is ordered: the first check that applies names the target's state.
var chain = []check{
	func(in targetInput) (Reason, string, bool) {
		if in.o != nil && in.o.Exists {
			return "", "", false
		}
		return Missing, in.missing.of(in.d.File()), true
	},
	func(in targetInput) (Reason, string, bool) {
		return TakenOver, takenOverMessage, !in.adopt && !owned(in.o, in.d.ID, in.inv)
	},
	func(in targetInput) (Reason, string, bool) {
		return MissingData, "the target lacks a readable tls.crt or tls.key", in.o.Cert == nil || !in.o.HasKey()
	},
	func(in targetInput) (Reason, string, bool) {
		return KeyMismatch, "tls.key does not belong to tls.crt", !in.o.KeyMatches()
	},
	func(in targetInput) (Reason, string, bool) {
		return ModifiedOutOfBand, modifiedMessage,
			!owned(in.o, in.d.ID, in.inv) || in.o.Annotation(target.AnnDataHash) != in.o.DataHash()
	},
	func(in targetInput) (Reason, string, bool) {
		if in.o.Annotation(target.AnnIssuer) == in.d.Certificate.Spec.Issuer {
			return "", "", false
		}
		return IssuerChanged, "the certificate now names issuer " + in.d.Certificate.Spec.Issuer, true
	},
	func(in targetInput) (Reason, string, bool) {
		// Decided from the delivered certificate's signature, not from an
		// annotation: a leaf of a rotated authority's previous CA.
		cas := in.cas
		if cas == nil || cas.current == nil || signedBy(in.o.Cert, cas.current) ||
			!slices.ContainsFunc(cas.previous, func(p *x509.Certificate) bool { return signedBy(in.o.Cert, p) }) {
			return "", "", false
		}
		if in.untrusted != "" {
			return AwaitingTrust, "signed by a previous CA of authority " + cas.name + "; reissued once every trust bundle holds the new one: " + in.untrusted, true
		}
		return AuthorityRotated, "signed by a previous CA of authority " + cas.name + ", which has rotated", true
	},
	func(in targetInput) (Reason, string, bool) {
		return SpecChanged, "the declaration changed since the delivered certificate was issued",
			in.o.Annotation(target.AnnSpecHash) != in.d.IssueHash
	},
	func(in targetInput) (Reason, string, bool) {
		if in.now.Before(in.o.Cert.NotAfter) {
			return "", "", false
		}
		return Expired, "expired " + in.o.Cert.NotAfter.UTC().Format(time.RFC3339), true
	},
	func(in targetInput) (Reason, string, bool) {
		// The request names the serial it was made against: a target
		// already holding a newer certificate has been renewed.
		r := in.renewal
		if r == nil || pki.Serial(in.o.Cert.SerialNumber) != r.Serial {
			return "", "", false
		}
		return RenewalRequested, fmt.Sprintf("renewal requested by %s at %s", r.By, r.At.UTC().Format(time.RFC3339)), true
	},
	func(in targetInput) (Reason, string, bool) {
		if in.now.Before(in.renewAt) {
			return "", "", false
		}
		na := in.o.Cert.NotAfter
		when := "past its renewal time"
		if in.suggested {
			when = "inside the renewal window its CA suggests (ARI)"
		}
		return Expiring, fmt.Sprintf("%s; expires %s (in %s)", when, na.UTC().Format(time.RFC3339), na.Sub(in.now).Round(time.Minute)), true
	},
	func(in targetInput) (Reason, string, bool) {
		return TemplateChanged, "the Secret's labels or annotations (or the key's encoding) changed in Git",
			in.o.Annotation(target.AnnTemplateHash) != in.t.TemplateHash
	},
}

// The messages of reasons found in more than one place.
const (
	modifiedMessage    = "the delivered data is not what certfleet wrote (edited by hand, or written by something else)"
	takenOverMessage   = "the target does not carry certfleet's marks for this certificate any more; it is left alone (`--adopt` takes it back)"
	unreachableMessage = "could not be observed"
	orphanedMessage    = "certfleet manages this target but no certificate declares it; `certfleet reconcile --prune` deletes it"
)

// certificateWide are the reasons that hold for every target of a
// certificate, whatever each one holds, with their messages.
var certificateWide = map[Reason]string{
	PolicyViolation:  "policies deny the declaration; the delivered certificate is left alone",
	Suspended:        "suspended in Git",
	BackingOff:       "the last attempts failed; retrying after a backoff",
	PermanentFailure: "the issuer refused this certificate; it is not tried again until the declaration, the issuer or its authority changes",
}

// urgency orders reasons for a certificate's own state.
var urgency = []Reason{Expired, Missing, MissingData, KeyMismatch, ModifiedOutOfBand, IssuerChanged, AuthorityRotated, SpecChanged, RenewalRequested, Expiring, TemplateChanged, NotRecorded, NotServed, WaitingForWave, AwaitingTrust, TakenOver, Unreachable, InSync}

func rank(r Reason) int {
	for i, u := range urgency {
		if u == r {
			return i
		}
	}
	return len(urgency)
}

// RenewAt is when a certificate valid from nb to na renews.
func RenewAt(d *render.Desired, nb, na time.Time, maxJitter time.Duration) time.Time {
	s := d.Certificate.Spec
	return schemas.JitteredRenewalTime(d.ID, nb, na, s.RenewBefore, s.RenewBeforePercentage, maxJitter)
}

// RenewAtWithin is RenewAt, or the time the certificate's ID picks inside
// the window its CA suggests (w, nil for none) when that comes first: a CA
// may want a certificate renewed early (a revocation ahead, load spreading),
// while a late suggestion never postpones the lifetime-based time. The pick
// is deterministic, spread over the window as RFC 9773 asks of clients, so
// certificates given one window do not all renew in the same second. The
// second result is true when the window decided.
func RenewAtWithin(d *render.Desired, nb, na time.Time, maxJitter time.Duration, w *Window) (time.Time, bool) {
	rt := RenewAt(d, nb, na, maxJitter)
	if w == nil || !w.End.After(w.Start) {
		return rt, false
	}
	at := w.Start.Add(schemas.Jitter(d.ID, w.End.Sub(w.Start))).Truncate(time.Second)
	if at.Before(rt) {
		return at, true
	}
	return rt, false
}

// WindowOf is the window suggested for cert (nil when there is none).
func WindowOf(windows map[string]Window, cert *target.Leaf) *Window {
	if w, ok := windows[pki.Serial(cert.SerialNumber)]; ok {
		return &w
	}
	return nil
}

// Decide decides a pass.
func Decide(in Input) Decisions {
	// Sized once: a decision per certificate of the fleet, not grown by doubling.
	out := Decisions{Windows: in.Windows, Certificates: make([]Certificate, 0, len(in.Desired))}
	cas := parseAuthorities(in.Catalog)
	missing := missingMessages{}
	desiredKeys := map[string]bool{}
	for _, d := range in.Desired {
		for _, t := range d.Targets {
			desiredKeys[t.Key] = true
		}
		out.Certificates = append(out.Certificates, decideCertificate(in, cas, missing, d))
	}
	// Orphans are what this certfleet delivered (its inventory says so) and
	// nobody declares any more. A Secret another certfleet manages is not
	// ours to judge; one nobody manages is sprawl (Unmanaged).
	ours := map[string]bool{}
	ids := make([]string, 0, len(in.Inventory))
	for id := range in.Inventory {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := in.Inventory[id]
		for _, t := range e.Targets {
			key := t.Key
			if t.Kind == render.Directory && t.Path != "" {
				key = render.DirectoryKey(in.OutputDir, t.Path)
			}
			// Two entries can name one place (a target moved between
			// certificates): it is one orphan, pruned once.
			if desiredKeys[key] || ours[key] {
				continue
			}
			ours[key] = true
			o, observed := in.Observed[t.Key]
			switch {
			case in.InScope != nil && !in.InScope(e.File):
				continue // declared outside what this pass rendered: not its to judge
			case unobservable(in, render.Target{Address: t}):
				continue // cannot tell this pass
			case observed && !o.Exists:
				continue // already gone
			case !observed && t.Kind == render.Kubernetes:
				continue // its cluster was listed and the Secret is not there
			case !owned(o, e.ID, in.Inventory):
				out.TakenOver = append(out.TakenOver, Target{Target: &render.Target{Address: t}, Reason: TakenOver, Message: takenOverMessage,
					Observed: o, Certificate: e.ID})
				continue
			}
			out.Orphans = append(out.Orphans, Target{Target: &render.Target{Address: t}, Reason: Orphaned, Message: orphanedMessage,
				Observed: o, Certificate: e.ID})
		}
	}
	for key, o := range in.Observed {
		if !desiredKeys[key] && !ours[key] && !o.Managed && o.Target.Kind == render.Kubernetes {
			out.Unmanaged = append(out.Unmanaged, Target{Target: o.Target, Reason: Unmanaged, Message: unmanagedMessage(o), Observed: o})
		}
	}
	sort.Slice(out.Orphans, func(i, j int) bool { return out.Orphans[i].Target.Key < out.Orphans[j].Target.Key })
	sort.Slice(out.Unmanaged, func(i, j int) bool { return out.Unmanaged[i].Target.Key < out.Unmanaged[j].Target.Key })
	sort.Slice(out.TakenOver, func(i, j int) bool { return out.TakenOver[i].Target.Key < out.TakenOver[j].Target.Key })
	return out
}

func unmanagedMessage(o *target.Observed) string {
	if o.Cert == nil {
		return "a TLS Secret certfleet does not manage, without a readable certificate"
	}
	return "a TLS Secret certfleet does not manage, expiring " + o.Cert.NotAfter.UTC().Format(time.RFC3339)
}

func notRecordedMessage(delivered, recorded string) string {
	if recorded == "" {
		return fmt.Sprintf("the target holds serial %s, which the inventory does not record; the next pass records it", delivered)
	}
	return fmt.Sprintf("the target holds serial %s but the inventory records %s; the next pass repairs it", delivered, recorded)
}

func unobservable(in Input, t render.Target) bool {
	if _, ok := in.Unobservable[t.Key]; ok {
		return true
	}
	if t.Kind == render.Kubernetes {
		_, ok := in.Unobservable["kubernetes/"+t.Cluster+"/"]
		return ok
	}
	return false
}

func decideCertificate(in Input, cas map[string]*authorityCAs, missing missingMessages, d *render.Desired) (c Certificate) {
	c = Certificate{Desired: d, Reason: InSync}
	defer func() {
		c.Message = certificateMessage(c)
		if c.Reason != Suspended && c.Reason != PolicyViolation {
			for i := range c.Targets {
				c.Targets[i].Restart = restartFor(c.Targets[i], c.Issue, c.Source, in.Workloads[c.Targets[i].Target.Key])
			}
		}
	}()
	entry := in.Inventory[d.ID]
	var healthy []int // targets holding a usable copy of a current certificate
	for i := range d.Targets {
		// A decision points at the desired target rather than copying it:
		// a pass holds a decision for every target of the fleet.
		t := d.Targets[i]
		o := in.Observed[t.Key]
		td := Target{Target: &d.Targets[i], Observed: o, Reason: InSync}
		if unobservable(in, t) {
			td.Reason, td.Message = Unreachable, unreachableMessage
		} else {
			ti := targetInput{d: d, t: t, o: o, inv: in.Inventory, adopt: in.Adopt, now: in.Now, missing: missing}
			if r, ok := in.Renewals[d.ID]; ok {
				ti.renewal = &r
			}
			if ti.cas = cas[d.Certificate.Spec.Issuer]; ti.cas != nil {
				ti.untrusted = in.Untrusted[ti.cas.name]
			}
			if o != nil && o.Cert != nil {
				ti.renewAt, ti.suggested = RenewAtWithin(d, o.Cert.NotBefore, o.Cert.NotAfter, in.MaxJitter, WindowOf(in.Windows, o.Cert))
				if c.DueAt.IsZero() || ti.renewAt.Before(c.DueAt) {
					c.DueAt = ti.renewAt
				}
			}
			for _, ch := range chain {
				if r, msg, applies := ch(ti); applies {
					td.Reason, td.Message = r, msg
					break
				}
			}
			if td.Reason == InSync || td.Reason == TemplateChanged || td.Reason == AwaitingTrust {
				healthy = append(healthy, len(c.Targets))
			}
		}
		c.Targets = append(c.Targets, td)
	}
	chooseSource(in, &c, entry, healthy)
	for i := range c.Targets {
		td := &c.Targets[i]
		if td.Reason != InSync {
			continue
		}
		if msg, ok := notServed(*td.Target, td.Observed, in.Served, entry, in.Now); ok {
			td.Reason, td.Message = NotServed, msg
		}
	}
	for _, td := range c.Targets {
		if rank(td.Reason) < rank(c.Reason) {
			c.Reason = td.Reason
		}
	}
	if d.Certificate.Spec.Suspend {
		c.Reason, c.Source, c.Record = Suspended, nil, false
		return c
	}
	if v, ok := in.Verdicts[d.ID]; ok && !v.Allowed {
		c.Reason, c.Source, c.Record = PolicyViolation, nil, false
		return c
	}
	// A renewal or a spec change replaces the certificate everywhere, even
	// where a target still holds a healthy copy of the old one.
	for _, td := range c.Targets {
		if needsNewCertificate[td.Reason] {
			c.Source, c.Record = nil, false
		}
	}
	c.Issue = c.Source == nil
	var sourceSerial string
	if c.Source != nil {
		sourceSerial = pki.Serial(c.Source.Cert.SerialNumber)
	}
	for i := range c.Targets {
		td := &c.Targets[i]
		switch td.Reason {
		case Unreachable, TakenOver:
			td.Write = false
		case AwaitingTrust, NotServed:
			// It holds the current certificate; only a new one may replace it.
			td.Write = c.Issue
		case NotRecorded:
			// Only a target holding another serial than the one recorded now needs the copy.
			td.Write = c.Issue || pki.Serial(td.Observed.Cert.SerialNumber) != sourceSerial
		default:
			td.Write = c.Issue || td.Reason != InSync
		}
	}
	for i := range c.Targets {
		td := &c.Targets[i]
		td.TakeOver = td.Write && td.Observed != nil && td.Observed.Exists && !td.Observed.OwnedBy(d.ID)
	}
	if c.Issue && d.Certificate.Spec.Key().RotationPolicy == schemas.RotationNever {
		c.ReuseKey = reusableKey(in, c, entry)
	}
	if c.Issue && !anyWrite(c.Targets) {
		c.Issue = false // every target is unreachable or taken over: issuing now would deliver nowhere
	}
	if entry != nil && c.Issue && entry.PermanentFor() != "" && entry.PermanentFor() == FailureKey(d, in.Catalog) {
		c.Reason, c.Issue, c.Source, c.Record = PermanentFailure, false, nil, false
		for i := range c.Targets {
			c.Targets[i].Write = false
		}
		return c
	}
	if entry != nil && entry.RetryAt() != nil && in.Now.Before(*entry.RetryAt()) && (c.Issue || anyWrite(c.Targets)) {
		c.Reason, c.Issue, c.Source, c.Record = BackingOff, false, nil, false
		for i := range c.Targets {
			c.Targets[i].Write = false
		}
	}
	return c
}

// chooseSource picks the healthy target whose certificate the others get:
// the one holding the serial the inventory records, else the first. A
// certificate the inventory does not record (a pass stopped between
// delivery and record) is trusted only when it chains to the issuer's
// authority; then the pass records it, otherwise it is treated as written
// by someone else and a new certificate is issued.
func chooseSource(in Input, c *Certificate, entry *inventory.Entry, healthy []int) {
	if len(healthy) == 0 {
		return
	}
	pick := healthy[0]
	if entry != nil {
		for _, i := range healthy {
			if pki.Serial(c.Targets[i].Observed.Cert.SerialNumber) == entry.Serial {
				pick = i
				break
			}
		}
	}
	src := c.Targets[pick].Observed
	serial := pki.Serial(src.Cert.SerialNumber)
	recorded := entry != nil && entry.Serial == serial
	if !recorded && !issuedBy(in.Catalog, c.Desired.Certificate.Spec.Issuer, src.Cert) {
		for _, i := range healthy {
			if pki.Serial(c.Targets[i].Observed.Cert.SerialNumber) == serial {
				c.Targets[i].Reason, c.Targets[i].Message = ModifiedOutOfBand, modifiedMessage
			}
		}
		return
	}
	c.Source, c.Record = src, !recorded
	c.RenewAt, _ = RenewAtWithin(c.Desired, src.Cert.NotBefore, src.Cert.NotAfter, in.MaxJitter, WindowOf(in.Windows, src.Cert))
	for _, i := range healthy {
		td := &c.Targets[i]
		// A healthy target holding another serial than the source (a pass
		// stopped halfway through a delivery) gets the source's copy.
		if s := pki.Serial(td.Observed.Cert.SerialNumber); s != serial || !recorded {
			if td.Reason == InSync {
				var inventorySerial string
				if entry != nil {
					inventorySerial = entry.Serial
				}
				td.Reason, td.Message = NotRecorded, notRecordedMessage(s, inventorySerial)
			}
		}
	}
}

// notServed reports whether an in-sync target's probe saw another
// certificate than the one delivered, or none, once the probe's grace has
// passed since the delivery, with why. The delivery time is the inventory
// entry's UpdatedAt — when certfleet last acted on the certificate (issued,
// copied or recorded it) — not the leaf's NotBefore: a leaf is backdated by
// its issuer, and a copy delivered to a new target can be months younger
// than it, so NotBefore would flag a workload before it had time to reload.
// UpdatedAt is never earlier than the target's delivery.
func notServed(t render.Target, o *target.Observed, served map[string]Served, entry *inventory.Entry, now time.Time) (string, bool) {
	if t.Probe == nil || o == nil || o.Cert == nil || entry == nil {
		return "", false
	}
	s, probed := served[t.Key]
	grace := t.Probe.EffectiveGrace()
	since := now.Sub(entry.UpdatedAt)
	if !probed || since < grace {
		return "", false
	}
	delivered := pki.Serial(o.Cert.SerialNumber)
	after := fmt.Sprintf("%s after the delivery (grace %s)", schemas.FormatDuration(since.Round(time.Second)), schemas.FormatDuration(grace))
	if s.Err != nil {
		return fmt.Sprintf("probing %s failed %s: %v", t.Probe.Address, after, s.Err), true
	}
	if s.Serial == delivered {
		return "", false
	}
	return fmt.Sprintf("%s serves serial %s, not the delivered %s, %s: the workload has not reloaded its certificate",
		t.Probe.Address, s.Serial, delivered, after), true
}

// restartFor decides whether a target's workload (its restart:) is
// restarted, and for which serial: once a write delivers another
// certificate than the one the target held — not when the same one is
// written again (a changed template or key encoding) — and, as the remedy,
// when the probe still sees the previous one past its grace (NotServed).
// Never twice for one serial: the workload records the serials it was
// restarted for, and a workload that could not be read (w nil) is not
// restarted for NotServed, so a rolling workload that still serves the old
// certificate for a while is not restarted again and again.
func restartFor(td Target, issue bool, source *target.Observed, w *target.Workload) *Restart {
	if td.Target.Restart == nil {
		return nil
	}
	held := ""
	if o := td.Observed; o != nil && o.Exists && o.Cert != nil {
		held = pki.Serial(o.Cert.SerialNumber)
	}
	var serial string
	switch {
	case td.Write && issue:
		return &Restart{}
	case td.Write && source != nil && source.Cert != nil:
		serial = pki.Serial(source.Cert.SerialNumber)
		if serial == held {
			return nil // the same certificate written again
		}
	case td.Reason == NotServed && w != nil:
		serial = held
	default:
		return nil
	}
	if w != nil && slices.Contains(w.RestartedFor, serial) {
		return nil
	}
	return &Restart{Serial: serial}
}

// RevocationWait says why a superseded serial of certificate d is not
// revoked yet ("" when it may be): a target with a probe was seen serving
// it, or its probe could not tell (not dialled this pass, or the dial
// failed). Revoking a certificate a workload still serves breaks the
// handshakes of every client that checks the CRL, and a certificate
// superseded by a change of declaration, issuer or authority is not
// compromised: it waits — past the probe's grace too, when the target is
// NotServed — until the probes see it no more, or it expires. A target
// without a probe is not waited for. (`certfleet revoke`, for a
// compromised key, never asks.) since is when the serial was superseded.
func RevocationWait(d *render.Desired, serial string, served map[string]Served, since, now time.Time) string {
	if d == nil {
		return "" // no longer declared: nothing of it is probed
	}
	for _, t := range d.Targets {
		if t.Probe == nil {
			continue
		}
		s, probed := served[t.Key]
		switch {
		case !probed:
			return fmt.Sprintf("%s (probe of %s) was not probed this pass", t.Probe.Address, t.Key)
		case s.Err != nil:
			return fmt.Sprintf("probing %s failed: %v", t.Probe.Address, s.Err)
		case s.Serial == serial:
			grace, after := t.Probe.EffectiveGrace(), now.Sub(since)
			if after < grace {
				return fmt.Sprintf("%s still serves it, %s after it was superseded (grace %s)", t.Probe.Address,
					schemas.FormatDuration(after.Round(time.Second)), schemas.FormatDuration(grace))
			}
			return fmt.Sprintf("%s still serves it, %s after it was superseded, past the grace (%s): the workload has not reloaded (NotServed)",
				t.Probe.Address, schemas.FormatDuration(after.Round(time.Second)), schemas.FormatDuration(grace))
		}
	}
	return ""
}

// issuedBy reports whether leaf was signed by the current or a previous
// certificate of the authority behind issuer.
func issuedBy(cat *schemas.Catalog, issuer string, observed *target.Leaf) bool {
	if cat == nil {
		return false
	}
	leaf, err := observed.X509()
	if err != nil {
		return false
	}
	iss, ok := cat.Issuers[issuer]
	if !ok {
		return false
	}
	a, ok := cat.Authorities[iss.Spec.Authority]
	if !ok {
		return false
	}
	cas := []string{a.Status.Certificate}
	for _, p := range a.Status.PreviousIssuers {
		cas = append(cas, p.Certificate)
	}
	for _, p := range cas {
		if ca, err := pki.ParseCertificate([]byte(p)); err == nil && leaf.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// reusableKey is the key rotationPolicy Never keeps: only from a target
// holding, unmodified and with its marks, the certificate the inventory
// records — never a key someone planted, which certfleet would certify.
func reusableKey(in Input, c Certificate, entry *inventory.Entry) *target.Observed {
	if entry == nil || entry.Serial == "" {
		return nil
	}
	for _, td := range c.Targets {
		o := td.Observed
		if o == nil || o.Cert == nil || !o.KeyMatches() || !owned(o, c.Desired.ID, in.Inventory) ||
			o.Annotation(target.AnnDataHash) != o.DataHash() || pki.Serial(o.Cert.SerialNumber) != entry.Serial {
			continue
		}
		return o
	}
	return nil
}

func anyWrite(ts []Target) bool {
	for _, t := range ts {
		if t.Write {
			return true
		}
	}
	return false
}

// FailureKey identifies what a permanent failure was for: the certificate's
// issuance fields, its issuer's settings and the authority's current
// certificate. Any of them changing is a reason to try again.
func FailureKey(d *render.Desired, cat *schemas.Catalog) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", d.IssueHash, d.Certificate.Spec.Issuer)
	if cat != nil {
		if iss, ok := cat.Issuers[d.Certificate.Spec.Issuer]; ok {
			b, _ := json.Marshal(iss.Spec)
			h.Write(b)
			if a, ok := cat.Authorities[iss.Spec.Authority]; ok {
				fmt.Fprintf(h, "\x00%s\x00%s", a.Status.SerialNumber, a.Status.Certificate)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// certificateMessage explains a certificate's own reason: a
// certificate-wide one's, else that of its first target in that state.
func certificateMessage(c Certificate) string {
	if msg, ok := certificateWide[c.Reason]; ok {
		return msg
	}
	for _, t := range c.Targets {
		if t.Reason == c.Reason {
			return t.Message
		}
	}
	return ""
}

// TargetReason is what a target of c is reported as, with its message: the
// certificate's own reason when it holds for all its targets, else the
// target's.
func (c *Certificate) TargetReason(t Target) (Reason, string) {
	if msg, ok := certificateWide[c.Reason]; ok {
		return c.Reason, msg
	}
	return t.Reason, t.Message
}

// Action names what a decision does, for reports and the audit log: issue
// (the first certificate), renew, reissue (the spec changed or the delivered
// copy is broken), update (a healthy copy delivered), record (a delivered
// certificate the inventory had missed), or "" (nothing).
// supersedingReasons replace a certificate that is still good in itself
// before it expires: its successor makes it obsolete, and where the issuer
// stores certificates the old serial is revoked (an ordinary renewal is not
// one: revoking every renewed certificate would only grow the CRL).
var supersedingReasons = map[Reason]bool{SpecChanged: true, IssuerChanged: true, AuthorityRotated: true}

// Supersedes reports whether the new certificate this decision issues
// replaces the old one for a superseding reason.
func (c *Certificate) Supersedes() bool {
	if !c.Issue {
		return false
	}
	for _, td := range c.Targets {
		if supersedingReasons[td.Reason] {
			return true
		}
	}
	return false
}

func (c *Certificate) Action() string {
	switch {
	case c.Issue:
	case anyWrite(c.Targets):
		return "update"
	case c.Record:
		return "record"
	default:
		return ""
	}
	switch c.Reason {
	case Expiring, Expired, RenewalRequested:
		return "renew"
	case Missing:
		for _, t := range c.Targets {
			if t.Observed != nil && t.Observed.Exists {
				return "reissue"
			}
		}
		return "issue"
	}
	return "reissue"
}

// RetryDelay is how long a certificate that failed attempts times in a row
// waits before the next attempt: base doubled per failure, capped at max
// (0: no cap); 0 when base is 0 (retry on every pass).
func RetryDelay(attempts int, base, max time.Duration) time.Duration {
	if base <= 0 || attempts <= 0 {
		return 0
	}
	delay := base << min(attempts-1, 20)
	if max > 0 && delay > max {
		delay = max
	}
	return delay
}

// ACMERetryBackoff is the first delay before ordering again after an ACME
// order failed, when nothing longer is configured: every order costs the
// CA's quota, so even one-shot runs (whose backoff is 0 by default) do not
// order again on every pass. It doubles per failure up to ACMEMaxRetryBackoff.
const (
	ACMERetryBackoff    = time.Minute
	ACMEMaxRetryBackoff = 6 * time.Hour
)

// RetryDelayFor is how long a certificate of iss waits after its
// attempts-th failure in a row: RetryDelay's doubling, with, for an ACME
// issuer, at least ACMERetryBackoff as the base and at least the CA's
// Retry-After.
func RetryDelayFor(iss *schemas.Issuer, attempts int, base, maxDelay, retryAfter time.Duration) time.Duration {
	if iss != nil && iss.Spec.ACME != nil {
		if base <= 0 {
			base = ACMERetryBackoff
		}
		if maxDelay <= 0 {
			maxDelay = ACMEMaxRetryBackoff
		}
	}
	return max(RetryDelay(attempts, base, maxDelay), retryAfter)
}

// DefaultMaxPruneShare is the largest share of managed targets one pass
// prunes unless forced.
const DefaultMaxPruneShare = 0.5

// RefusePrune says why deleting d's orphans looks like an accident ("" when
// it does not): nothing rendered, invalid manifests (their certificates look
// undeclared), or more than maxShare of the managed targets at once. force
// overrides all three.
func RefusePrune(d Decisions, rendered, invalid int, maxShare float64, force bool) string {
	orphans := len(d.Orphans)
	managed := orphans
	for _, c := range d.Certificates {
		managed += len(c.Targets)
	}
	if maxShare == 0 {
		maxShare = DefaultMaxPruneShare
	}
	switch {
	case force || orphans == 0:
		return ""
	case rendered == 0:
		return fmt.Sprintf("refusing to prune %d targets: the revision renders no certificate at all (use --force if that is intended)", orphans)
	case invalid > 0:
		return fmt.Sprintf("refusing to prune %d targets: %d manifests are invalid, and their certificates would look orphaned (fix them, or use --force)", orphans, invalid)
	case float64(orphans) > maxShare*float64(managed):
		return fmt.Sprintf("refusing to prune %d of %d managed targets (more than %.0f%%): use --force if that is intended", orphans, managed, maxShare*100)
	}
	return ""
}
