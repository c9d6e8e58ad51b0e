// Package decide is the heart of a pass, and pure: from the desired
// certificates, their verdicts, what every target holds, the inventory and
// the time, it decides per target why it is not in sync — a chain of small
// checks, one reason each — and per certificate whether a new certificate
// is needed or a healthy one can be copied.
package decide

import (
	"sort"
	"time"

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
	// SpecChanged: a field the certificate carries changed (SANs, subject, key, duration, usages).
	SpecChanged Reason = "SpecChanged"
	// Expired: the delivered certificate has expired.
	Expired Reason = "Expired"
	// Renewing: the renewal time (with the certificate's jitter) has passed.
	Renewing Reason = "Renewing"
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
)

// needsNewCertificate lists the reasons a target's certificate cannot be
// kept; the others can be fixed by copying a healthy certificate.
var needsNewCertificate = map[Reason]bool{IssuerChanged: true, SpecChanged: true, Expired: true, Renewing: true}

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
	Now          time.Time
	// MaxJitter spreads renewals (schemas.JitteredRenewalTime); 0 disables it.
	MaxJitter time.Duration
	// OutputDir is the root of relative directory targets. An inventory
	// record of a directory is matched by render.DirectoryKey of its path,
	// so one recorded under another spelling ("./web", or its absolute form
	// under OutputDir) is not taken for an orphan and deleted.
	OutputDir string
}

// Target is the decision for one target.
type Target struct {
	Target   render.Target
	Reason   Reason
	Observed *target.Observed
	// Write is true when the target must be (re)written.
	Write bool
}

// Certificate is the decision for one desired certificate.
type Certificate struct {
	Desired *render.Desired
	// Reason is the certificate's own state: the most urgent of its targets'.
	Reason  Reason
	Targets []Target
	// Issue is true when a new certificate is needed.
	Issue bool
	// Source is a target holding a healthy copy of the current certificate,
	// to deliver where it is missing (when Issue is false).
	Source *target.Observed
	// ReuseKey is the key to keep (rotationPolicy Never), when one exists.
	ReuseKey *target.Observed
	// RenewAt is when the current certificate renews (zero when there is none).
	RenewAt time.Time
}

// Decisions is the outcome of a pass's decide step.
type Decisions struct {
	Certificates []Certificate
	// Orphans are managed targets no certificate declares (pruned only with --prune).
	Orphans []Target
	// Unmanaged are TLS Secrets in target clusters certfleet does not manage.
	Unmanaged []Target
}

// targetInput is what one target's checks see.
type targetInput struct {
	d       *render.Desired
	t       render.Target
	o       *target.Observed
	now     time.Time
	renewAt time.Time
}

// check is one link of the chain: it returns its reason when it applies.
type check func(in targetInput) (Reason, bool)

// chain is ordered: the first check that applies names the target's state.
var chain = []check{
	func(in targetInput) (Reason, bool) { return Missing, in.o == nil || !in.o.Exists },
	func(in targetInput) (Reason, bool) { return MissingData, in.o.Cert == nil || len(in.o.Bundle.Key) == 0 },
	func(in targetInput) (Reason, bool) { return KeyMismatch, !in.o.KeyMatches },
	func(in targetInput) (Reason, bool) {
		return ModifiedOutOfBand, !in.o.Managed || in.o.Annotations[target.AnnDataHash] != in.o.Bundle.DataHash()
	},
	func(in targetInput) (Reason, bool) {
		return IssuerChanged, in.o.Annotations[target.AnnIssuer] != in.d.Certificate.Spec.Issuer
	},
	func(in targetInput) (Reason, bool) {
		return SpecChanged, in.o.Annotations[target.AnnSpecHash] != in.d.IssueHash
	},
	func(in targetInput) (Reason, bool) { return Expired, !in.now.Before(in.o.Cert.NotAfter) },
	func(in targetInput) (Reason, bool) { return Renewing, !in.now.Before(in.renewAt) },
	func(in targetInput) (Reason, bool) {
		return TemplateChanged, in.o.Annotations[target.AnnTemplateHash] != in.t.TemplateHash
	},
}

// urgency orders reasons for a certificate's own state.
var urgency = []Reason{Expired, Missing, MissingData, KeyMismatch, ModifiedOutOfBand, IssuerChanged, SpecChanged, Renewing, TemplateChanged, Unreachable, InSync}

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

// Decide decides a pass.
func Decide(in Input) Decisions {
	var out Decisions
	desiredKeys := map[string]bool{}
	for _, d := range in.Desired {
		for _, t := range d.Targets {
			desiredKeys[t.Key] = true
		}
		out.Certificates = append(out.Certificates, decideCertificate(in, d))
	}
	// Orphans are what this certfleet delivered (its inventory says so) and
	// nobody declares any more. A Secret another certfleet manages is not
	// ours to judge; one nobody manages is sprawl (Unmanaged).
	ours := map[string]bool{}
	for _, e := range in.Inventory {
		for _, t := range e.Targets {
			key := t.Key
			if t.Kind == string(render.Directory) && t.Path != "" {
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
			case unobservable(in, FromInventory(t)):
				continue // cannot tell this pass
			case observed && !o.Exists:
				continue // already gone
			case !observed && t.Kind == string(render.Kubernetes):
				continue // its cluster was listed and the Secret is not there
			}
			out.Orphans = append(out.Orphans, Target{Target: FromInventory(t), Reason: Orphaned, Observed: o})
		}
	}
	for key, o := range in.Observed {
		if !desiredKeys[key] && !ours[key] && !o.Managed && o.Target.Kind == render.Kubernetes {
			out.Unmanaged = append(out.Unmanaged, Target{Target: o.Target, Reason: Unmanaged, Observed: o})
		}
	}
	sort.Slice(out.Orphans, func(i, j int) bool { return out.Orphans[i].Target.Key < out.Orphans[j].Target.Key })
	sort.Slice(out.Unmanaged, func(i, j int) bool { return out.Unmanaged[i].Target.Key < out.Unmanaged[j].Target.Key })
	return out
}

// FromInventory turns an inventory record of a target back into an address.
func FromInventory(t inventory.Target) render.Target {
	return render.Target{Key: t.Key, Kind: render.TargetKind(t.Kind), Cluster: t.Cluster, Namespace: t.Namespace,
		SecretName: t.Name, Mount: t.Mount, Path: t.Path, Dir: t.Path}
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

func decideCertificate(in Input, d *render.Desired) Certificate {
	c := Certificate{Desired: d, Reason: InSync}
	for _, t := range d.Targets {
		o := in.Observed[t.Key]
		td := Target{Target: t, Observed: o, Reason: InSync}
		if unobservable(in, t) {
			td.Reason = Unreachable
		} else {
			ti := targetInput{d: d, t: t, o: o, now: in.Now}
			if o != nil && o.Cert != nil {
				ti.renewAt = RenewAt(d, o.Cert.NotBefore, o.Cert.NotAfter, in.MaxJitter)
			}
			for _, ch := range chain {
				if r, applies := ch(ti); applies {
					td.Reason = r
					break
				}
			}
			if td.Reason == InSync || td.Reason == TemplateChanged {
				if c.Source == nil {
					c.Source, c.RenewAt = o, ti.renewAt
				}
			}
		}
		if rank(td.Reason) < rank(c.Reason) {
			c.Reason = td.Reason
		}
		c.Targets = append(c.Targets, td)
	}
	if d.Certificate.Spec.Suspend {
		c.Reason, c.Source = Suspended, nil
		return c
	}
	if v, ok := in.Verdicts[d.ID]; ok && !v.Allowed {
		c.Reason, c.Source = PolicyViolation, nil
		return c
	}
	// A renewal or a spec change replaces the certificate everywhere, even
	// where a target still holds a healthy copy of the old one.
	for _, td := range c.Targets {
		if needsNewCertificate[td.Reason] {
			c.Source = nil
		}
	}
	c.Issue = c.Source == nil
	for i := range c.Targets {
		td := &c.Targets[i]
		td.Write = td.Reason != Unreachable && (c.Issue || td.Reason != InSync)
	}
	if c.Issue && d.Certificate.Spec.Key().RotationPolicy == schemas.RotationNever {
		for _, td := range c.Targets {
			if td.Observed != nil && td.Observed.KeyMatches {
				c.ReuseKey = td.Observed
				break
			}
		}
	}
	if c.Issue && !anyWrite(c.Targets) {
		c.Issue = false // every target is unreachable: issuing now would deliver nowhere
	}
	if e := in.Inventory[d.ID]; e != nil && e.RetryAt != nil && in.Now.Before(*e.RetryAt) && (c.Issue || anyWrite(c.Targets)) {
		c.Reason, c.Issue, c.Source = BackingOff, false, nil
		for i := range c.Targets {
			c.Targets[i].Write = false
		}
	}
	return c
}

func anyWrite(ts []Target) bool {
	for _, t := range ts {
		if t.Write {
			return true
		}
	}
	return false
}
