// Package evaluate gives every desired certificate its verdict: the
// catalog's policies (schemas.PolicySet) and the catalog cross-checks —
// the issuer exists, the duration fits the issuer's max TTL, and both fit
// the authority's remaining lifetime; the issuer's role signs the key and
// gives the usages asked for; it keeps the subject; the authority's key
// makes the signature algorithm asked for — and the effective values the
// certificate will carry.
package evaluate

import (
	"crypto/x509/pkix"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
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
	// ReasonUsageNotProduced: a usage asked for (or a default one) is not
	// among those the issuer's role gives; Vault would leave it out silently.
	ReasonUsageNotProduced schemas.Reason = "UsageNotProduced"
	// ReasonUsagesWidened (a warning): spec.usages is set and the issuer's
	// role adds usages beyond it; the certificate will carry them.
	ReasonUsagesWidened schemas.Reason = "UsagesWidened"
	// ReasonSubjectDropped: a subject field beyond the common name, which
	// the issuer's role drops (Vault takes the subject from the role).
	ReasonSubjectDropped schemas.Reason = "SubjectDropped"
	// ReasonSignatureAlgorithmUnavailable: the authority's key signs with
	// another algorithm than spec.signatureAlgorithm.
	ReasonSignatureAlgorithmUnavailable schemas.Reason = "SignatureAlgorithmUnavailable"
	// ReasonKeyRefusedByIssuer: the issuer's role refuses the private key's
	// type or size; Vault would refuse to sign.
	ReasonKeyRefusedByIssuer schemas.Reason = "KeyRefusedByIssuer"
	// ReasonIdentifierNotACME: a URI or e-mail SAN asked of an ACME issuer,
	// which orders only DNS names and IP addresses.
	ReasonIdentifierNotACME schemas.Reason = "IdentifierNotACME"
)

// warningReasons are catalog findings that leave a certificate valid.
var warningReasons = map[schemas.Reason]bool{ReasonIssuerBeyondAuthority: true, ReasonUsagesWidened: true}

// Evaluator holds a catalog's compiled policies.
type Evaluator struct {
	cat      *schemas.Catalog
	policies *schemas.PolicySet
	// PolicyErrors are policies that did not compile, by name; they are left
	// out, and reported, so one bad policy does not stop the others.
	PolicyErrors map[string]schemas.Errors
	now          time.Time
	catalogMount string
	// usages are each issuer's usages, made once: every certificate's
	// Effective shares its issuer's slice (read-only) instead of holding a
	// copy, 100,000 times over in a large fleet.
	usages map[string][]schemas.KeyUsage
	// effectives shares the Effectives of certificates that come out alike
	// (most of a fleet): a pass keeps a verdict per certificate.
	effectives schemas.Effectives
	// policyLists shares the lists of selecting policies' names alike
	// (most certificates are selected by the same few policies), by the
	// names joined; read-only, as the Effectives are.
	policyMu    sync.Mutex
	policyLists map[string][]string
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
		e.usages = make(map[string][]schemas.KeyUsage, len(cat.Issuers))
		for name, iss := range cat.Issuers {
			e.usages[name] = iss.Spec.Usages()
		}
	}
	return e
}

// HasCatalog reports whether policies and catalog checks apply.
func (e *Evaluator) HasCatalog() bool { return e.cat != nil }

// Catalog is the catalog the evaluator checks against (nil: none).
func (e *Evaluator) Catalog() *schemas.Catalog { return e.cat }

// Verdict evaluates one desired certificate.
func (e *Evaluator) Verdict(d *render.Desired) schemas.CertificateVerdict {
	v := schemas.CertificateVerdict{ID: d.ID, File: d.File(), Line: d.Line(), Issuer: d.Certificate.Spec.Issuer,
		Allowed: true, Policies: []string{}}
	if e.cat == nil {
		return v
	}
	pv := e.policies.Evaluate(d.Certificate, d.File(), placement(d))
	v.Policies = e.sharePolicies(pv.Policies)
	viols, warns := pv.Violations, pv.Warnings
	for _, c := range catalogChecks {
		for _, x := range c(e, d) {
			if warningReasons[x.Reason] {
				warns = append(warns, x)
			} else {
				viols = append(viols, x)
			}
		}
	}
	v.Violations, v.Warnings = locate(d, viols), locate(d, warns)
	v.Allowed = len(v.Violations) == 0
	v.Effective = e.effectives.Share(e.effective(d))
	return v
}

// sharePolicies returns the held list equal to names, holding names when
// there is none (up to maxPolicyLists lists: past it, lists are not shared).
func (e *Evaluator) sharePolicies(names []string) []string {
	if len(names) == 0 {
		return names
	}
	k := strings.Join(names, "\x00")
	e.policyMu.Lock()
	defer e.policyMu.Unlock()
	if held, ok := e.policyLists[k]; ok {
		return held
	}
	if e.policyLists == nil {
		e.policyLists = map[string][]string{}
	}
	if len(e.policyLists) < maxPolicyLists {
		e.policyLists[k] = names
	}
	return names
}

// maxPolicyLists bounds the lists an Evaluator shares.
const maxPolicyLists = 1024

// effective is what the certificate will carry when its issuer signs it,
// or nil when the catalog lacks the issuer or its authority.
func (e *Evaluator) effective(d *render.Desired) *schemas.Effective {
	spec := d.Certificate.Spec
	iss, a, _ := e.issuer(spec.Issuer)
	if a == nil {
		return nil
	}
	usages, ok := e.usages[spec.Issuer]
	if !ok {
		usages = iss.Spec.Usages()
	}
	out := &schemas.Effective{Usages: usages,
		Subject:            pkix.Name{CommonName: spec.CommonName}.String(),
		SignatureAlgorithm: a.Spec.LeafSignatureAlgorithm(iss.Spec.KeyType, spec.Key().Algorithm)}
	ttl := spec.Lifetime()
	if maxTTL, _ := iss.Spec.MaxTTL.Parse(); maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
		out.Changed = append(out.Changed, "ttl")
	}
	out.TTL = schemas.FormatDuration(ttl)
	if !sameUsages(spec.EffectiveUsages(), out.Usages) {
		out.Changed = append(out.Changed, "usages")
	}
	if len(subjectFields(spec.Subject)) > 0 {
		out.Changed = append(out.Changed, "subject")
	}
	if spec.SignatureAlgorithm != "" && spec.SignatureAlgorithm != out.SignatureAlgorithm {
		out.Changed = append(out.Changed, "signatureAlgorithm")
	}
	return out
}

// issuer returns an issuer and its authority (nil when the catalog lacks
// it) from the catalog; found is false when the catalog lacks the issuer.
func (e *Evaluator) issuer(name string) (iss *schemas.Issuer, a *schemas.Authority, found bool) {
	iss, found = e.cat.Issuers[name]
	if !found {
		return nil, nil, false
	}
	return iss, e.cat.Authorities[iss.Spec.Authority], true
}

func sameUsages(asked, got []schemas.KeyUsage) bool {
	set := func(us []schemas.KeyUsage) map[schemas.KeyUsage]bool {
		m := map[schemas.KeyUsage]bool{}
		for _, u := range us {
			m[schemas.CanonicalUsage(u)] = true
		}
		return m
	}
	return maps.Equal(set(asked), set(got))
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

var catalogChecks = []catalogCheck{checkIssuerExists, roleCheck(checkIssuerTTL), roleCheck(checkAuthorityLifetime),
	roleCheck(checkIssuerKey), roleCheck(checkUsages), roleCheck(checkSubject), roleCheck(checkSignatureAlgorithm),
	checkCatalogMount, checkACMEIdentifiers}

// roleCheck runs a check of a Vault role or authority only for issuers
// that have them: an ACME issuer has neither, and its CA decides alone.
func roleCheck(c catalogCheck) catalogCheck {
	return func(e *Evaluator, d *render.Desired) []schemas.Violation {
		if iss, _, ok := e.issuer(d.Certificate.Spec.Issuer); ok && iss.Spec.ACME != nil {
			return nil
		}
		return c(e, d)
	}
}

// checkACMEIdentifiers refuses SANs an ACME order cannot carry.
func checkACMEIdentifiers(e *Evaluator, d *render.Desired) []schemas.Violation {
	iss, _, ok := e.issuer(d.Certificate.Spec.Issuer)
	if !ok || iss.Spec.ACME == nil {
		return nil
	}
	var out []schemas.Violation
	spec := d.Certificate.Spec
	for i, u := range spec.URIs {
		out = append(out, schemas.Violation{Reason: ReasonIdentifierNotACME, Field: fmt.Sprintf("spec.uris[%d]", i), Value: u,
			Message: fmt.Sprintf("issuer %q is an ACME issuer, which orders DNS names and IP addresses only; drop the URI or use a Vault issuer", iss.Metadata.Name)})
	}
	for i, m := range spec.EmailAddresses {
		out = append(out, schemas.Violation{Reason: ReasonIdentifierNotACME, Field: fmt.Sprintf("spec.emailAddresses[%d]", i), Value: m,
			Message: fmt.Sprintf("issuer %q is an ACME issuer, which orders DNS names and IP addresses only; drop the e-mail address or use a Vault issuer", iss.Metadata.Name)})
	}
	return out
}

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

// checkIssuerKey refuses a private key the issuer's role would not sign.
func checkIssuerKey(e *Evaluator, d *render.Desired) []schemas.Violation {
	iss, _, ok := e.issuer(d.Certificate.Spec.Issuer)
	if !ok {
		return nil
	}
	k := d.Certificate.Spec.Key()
	why := iss.Spec.KeyRefusal(k.Algorithm, k.Size)
	if why == "" {
		return nil
	}
	field, allow := "spec.privateKey.size", "ask for a larger key, or lower keyBits on the issuer"
	kt := iss.Spec.KeyType
	if want := map[string]schemas.KeyAlgorithm{"rsa": schemas.RSA, "ec": schemas.ECDSA, "ed25519": schemas.Ed25519}[kt]; want != "" && want != k.Algorithm {
		field, allow = "spec.privateKey.algorithm", fmt.Sprintf("set privateKey.algorithm: %s, or keyType: any on the issuer", want)
	}
	key := string(k.Algorithm)
	if k.Size > 0 {
		key += " " + strconv.Itoa(k.Size)
	}
	return []schemas.Violation{{Reason: ReasonKeyRefusedByIssuer, Field: field, Value: key,
		Rule:    fmt.Sprintf("issuer keyType %s, keyBits %d", orAny(kt), iss.Spec.KeyBits),
		Message: fmt.Sprintf("a %s key is refused by issuer %q: %s; %s", key, iss.Metadata.Name, why, allow)}}
}

func orAny(keyType string) string {
	if keyType == "" {
		return "any"
	}
	return keyType
}

// checkUsages refuses a usage the issuer's role does not give (Vault signs
// with the role's usages whatever the request says), and warns when
// spec.usages is set and the role gives more than it lists.
func checkUsages(e *Evaluator, d *render.Desired) []schemas.Violation {
	spec := d.Certificate.Spec
	iss, _, ok := e.issuer(spec.Issuer)
	if !ok {
		return nil
	}
	gives := iss.Spec.Usages()
	has := map[schemas.KeyUsage]bool{}
	for _, u := range gives {
		has[u] = true
	}
	adds := usageList(iss.Spec.Usages()[len(schemas.RoleKeyUsages):])
	var out []schemas.Violation
	asked := map[schemas.KeyUsage]bool{}
	for i, u := range spec.EffectiveUsages() {
		asked[schemas.CanonicalUsage(u)] = true
		if has[schemas.CanonicalUsage(u)] {
			continue
		}
		field, dflt := fmt.Sprintf("spec.usages[%d]", i), ""
		if len(spec.Usages) == 0 {
			field, dflt = "spec.usages", " (a default usage: spec.usages is not set)"
		}
		var allow string
		switch name, ext := schemas.VaultNameOfUsage(u); {
		case name == "ServerAuth":
			allow = "set serverFlag: true on the issuer"
		case name == "ClientAuth":
			allow = "set clientFlag: true on the issuer"
		case ext:
			allow = fmt.Sprintf("set extKeyUsage: [%s] on the issuer", name)
		default:
			allow = fmt.Sprintf("no issuer setting adds it: every role gives the key usages %s (Vault's default key_usage); drop it", usageList(schemas.RoleKeyUsages))
		}
		if len(spec.Usages) == 0 {
			allow += ", or set spec.usages to what the issuer gives"
		}
		out = append(out, schemas.Violation{Reason: ReasonUsageNotProduced, Field: field, Value: string(u),
			Rule: fmt.Sprintf("issuer %s gives %s", iss.Metadata.Name, usageList(gives)),
			Message: fmt.Sprintf("usage %q%s is not added by issuer %q (its role adds %s); %s",
				u, dflt, iss.Metadata.Name, adds, allow)})
	}
	if len(spec.Usages) > 0 {
		var extra []schemas.KeyUsage
		for _, u := range gives {
			if !asked[u] {
				extra = append(extra, u)
			}
		}
		if len(extra) > 0 {
			out = append(out, schemas.Violation{Reason: ReasonUsagesWidened, Field: "spec.usages", Value: usageList(extra),
				Rule: fmt.Sprintf("issuer %s gives %s", iss.Metadata.Name, usageList(gives)),
				Message: fmt.Sprintf("the certificate will also carry %s: issuer %q gives every certificate %s; add them to spec.usages to say so, or use an issuer that gives less",
					usageList(extra), iss.Metadata.Name, usageList(gives))})
		}
	}
	return out
}

func usageList(us []schemas.KeyUsage) string {
	if len(us) == 0 {
		return "none"
	}
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = string(u)
	}
	return strings.Join(s, ", ")
}

// subjectFields are the subject's fields beyond the common name that are set, by field name.
func subjectFields(s *schemas.Subject) [][2]string {
	if s == nil {
		return nil
	}
	var out [][2]string
	for _, f := range []struct {
		name string
		v    []string
	}{{"organizations", s.Organizations}, {"organizationalUnits", s.OrganizationalUnits}, {"countries", s.Countries},
		{"localities", s.Localities}, {"provinces", s.Provinces}, {"streetAddresses", s.StreetAddresses}, {"postalCodes", s.PostalCodes}} {
		if len(f.v) > 0 {
			out = append(out, [2]string{f.name, strings.Join(f.v, ", ")})
		}
	}
	return out
}

// checkSubject refuses subject fields beyond the common name: Vault's
// pki/sign takes only the common name from a request and the rest of the
// subject from the role, and certfleet's issuers set none.
func checkSubject(e *Evaluator, d *render.Desired) []schemas.Violation {
	spec := d.Certificate.Spec
	iss, _, ok := e.issuer(spec.Issuer)
	if !ok {
		return nil
	}
	var out []schemas.Violation
	for _, f := range subjectFields(spec.Subject) {
		out = append(out, schemas.Violation{Reason: ReasonSubjectDropped, Field: "spec.subject." + f[0], Value: f[1],
			Rule: fmt.Sprintf("issuer %s keeps only the common name", iss.Metadata.Name),
			Message: fmt.Sprintf("subject %s %q would be dropped: issuer %q's role keeps only the common name of a request (Vault takes the other subject fields from the role, and issuers set none); remove spec.subject.%s",
				f[0], f[1], iss.Metadata.Name, f[0])})
	}
	return out
}

// checkSignatureAlgorithm refuses a signatureAlgorithm the authority's key
// does not make: Vault picks the algorithm from the signing key, not from
// the request.
func checkSignatureAlgorithm(e *Evaluator, d *render.Desired) []schemas.Violation {
	spec := d.Certificate.Spec
	if spec.SignatureAlgorithm == "" {
		return nil
	}
	iss, a, _ := e.issuer(spec.Issuer)
	if a == nil {
		return nil
	}
	got := a.Spec.LeafSignatureAlgorithm(iss.Spec.KeyType, spec.Key().Algorithm)
	if got == spec.SignatureAlgorithm {
		return nil
	}
	kt, bits := a.Spec.CAKey()
	key := kt
	if bits > 0 {
		key += " " + strconv.Itoa(bits)
	}
	return []schemas.Violation{{Reason: ReasonSignatureAlgorithmUnavailable, Field: "spec.signatureAlgorithm", Value: spec.SignatureAlgorithm,
		Rule: fmt.Sprintf("authority %s (%s) signs %s", a.Metadata.Name, key, got),
		Message: fmt.Sprintf("signatureAlgorithm %s cannot be had through issuer %q: its authority %q has a %s key and signs %s; %s",
			spec.SignatureAlgorithm, iss.Metadata.Name, a.Metadata.Name, key, got, signatureHint(spec.SignatureAlgorithm, got))}}
}

// signatureHint says which authority key (or certificate key) gives an algorithm.
func signatureHint(want, got string) string {
	switch want {
	case "SHA256WithRSA":
		return "use an issuer whose authority has keyType: rsa, or drop signatureAlgorithm"
	case "SHA384WithRSA", "SHA512WithRSA":
		return "no authority signs it (Vault signs SHA256WithRSA with RSA keys); drop signatureAlgorithm"
	case "ECDSAWithSHA256":
		return "use an issuer whose authority has keyType: ec, keyBits: 256, or drop signatureAlgorithm"
	case "ECDSAWithSHA384", "ECDSAWithSHA512":
		bits := map[string]string{"ECDSAWithSHA384": "384", "ECDSAWithSHA512": "521"}[want]
		hint := "use an issuer whose authority has keyType: ec, keyBits: " + bits
		if got == "ECDSAWithSHA256" {
			hint += " and whose role is not for RSA keys (an RSA key's role makes it sign SHA-256)"
		}
		return hint + ", or drop signatureAlgorithm"
	case "PureEd25519":
		return "use an issuer whose authority has keyType: ed25519, or drop signatureAlgorithm"
	}
	return "drop signatureAlgorithm"
}
