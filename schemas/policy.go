package schemas

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gobwas/glob"
	"k8s.io/apimachinery/pkg/labels"
)

// Reason is why a policy denies (or warns about) a certificate. One constant
// per check, so reports and metrics can group by it.
type Reason string

const (
	// ReasonNoPolicy: no policy selects the certificate, so nothing allows it.
	ReasonNoPolicy Reason = "NoPolicy"
	// ReasonDNSNameNotAllowed: a DNS name matches none of the policy's dnsNames patterns.
	ReasonDNSNameNotAllowed Reason = "DNSNameNotAllowed"
	// ReasonWildcardNotAllowed: a "*." DNS name under a policy without allowWildcards.
	ReasonWildcardNotAllowed Reason = "WildcardNotAllowed"
	// ReasonIPAddressNotAllowed: an IP SAN outside every allowed range.
	ReasonIPAddressNotAllowed Reason = "IPAddressNotAllowed"
	// ReasonURINotAllowed: a URI SAN (SPIFFE ID) matches no allowed pattern.
	ReasonURINotAllowed Reason = "URINotAllowed"
	// ReasonEmailNotAllowed: an e-mail SAN matches no allowed pattern.
	ReasonEmailNotAllowed Reason = "EmailNotAllowed"
	// ReasonSubjectNotAllowed: an organization or unit matches no allowed pattern.
	ReasonSubjectNotAllowed Reason = "SubjectNotAllowed"
	// ReasonKeyAlgorithmNotAllowed: the key algorithm is not on the policy's list.
	ReasonKeyAlgorithmNotAllowed Reason = "KeyAlgorithmNotAllowed"
	// ReasonKeyTooSmall: the key is smaller than the policy's minimum for its algorithm.
	ReasonKeyTooSmall Reason = "KeyTooSmall"
	// ReasonDurationTooLong: the lifetime exceeds maxDuration.
	ReasonDurationTooLong Reason = "DurationTooLong"
	// ReasonRenewBeforeTooShort: renewal would leave less than minRenewBefore.
	ReasonRenewBeforeTooShort Reason = "RenewBeforeTooShort"
	// ReasonUsageNotAllowed: a usage is not among allowedUsages.
	ReasonUsageNotAllowed Reason = "UsageNotAllowed"
	// ReasonUsageRequired: a usage in requiredUsages is missing.
	ReasonUsageRequired Reason = "UsageRequired"
	// ReasonTooManySANs: more SANs than maxSANs.
	ReasonTooManySANs Reason = "TooManySANs"
	// ReasonClusterNotAllowed: a target cluster matches no allowed pattern.
	ReasonClusterNotAllowed Reason = "ClusterNotAllowed"
	// ReasonNamespaceNotAllowed: a target namespace matches no allowed pattern.
	ReasonNamespaceNotAllowed Reason = "NamespaceNotAllowed"
	// ReasonVaultKVPathNotAllowed: a Vault KV target matches no allowed pattern.
	ReasonVaultKVPathNotAllowed Reason = "VaultKVPathNotAllowed"
	// ReasonDirectoryNotAllowed: a directory target matches no allowed pattern.
	ReasonDirectoryNotAllowed Reason = "DirectoryNotAllowed"
)

// Violation is one rule a certificate breaks.
type Violation struct {
	// Policy is the policy's name ("" for NoPolicy).
	Policy string `json:"policy,omitempty"`
	Reason Reason `json:"reason"`
	// Field is the certificate's offending field, e.g. spec.dnsNames[1].
	Field string `json:"field,omitempty"`
	// Value is the offending value.
	Value string `json:"value,omitempty"`
	// Rule is the policy rule, as written, e.g. dnsNames: [*.payments.svc].
	Rule string `json:"rule,omitempty"`
	// Message is a sentence for people.
	Message string `json:"message"`
}

// Verdict is the outcome of evaluating a certificate against the policies.
type Verdict struct {
	// Allowed is false when any deny policy is violated or no policy selects the certificate.
	Allowed bool `json:"allowed"`
	// Policies are the names of the policies that select the certificate.
	Policies   []string    `json:"policies"`
	Violations []Violation `json:"violations,omitempty"`
	// Warnings are violations of warn policies; they do not deny.
	Warnings []Violation `json:"warnings,omitempty"`
}

type pattern struct {
	raw string
	g   glob.Glob
}

type patterns []pattern

func (ps patterns) match(s string) bool {
	for _, p := range ps {
		if p.g.Match(s) {
			return true
		}
	}
	return false
}

func (ps patterns) String() string {
	raw := make([]string, len(ps))
	for i, p := range ps {
		raw[i] = p.raw
	}
	return "[" + strings.Join(raw, ", ") + "]"
}

// CompiledPolicy is a Policy with its patterns compiled, ready to evaluate
// many certificates.
type CompiledPolicy struct {
	Policy *Policy

	issuers        map[string]bool
	paths          patterns
	dns, uris      patterns
	emails         patterns
	orgs, ous      patterns
	clusters, nss  patterns
	kvPaths, dirs  patterns
	ips            []*net.IPNet
	keys           map[KeyAlgorithm]int
	maxDuration    time.Duration
	minRenewBefore time.Duration
	allowedUsages  map[KeyUsage]bool
	deny           bool
}

// compilePatterns compiles globs; sep is the separator "*" does not cross
// (0 for none). Bad patterns are errors at their index.
func compilePatterns(e *errs, field string, raw []string, sep ...rune) patterns {
	out := make(patterns, 0, len(raw))
	for i, r := range raw {
		if r == "" {
			e.add(index(field, i), "empty pattern", "remove it, or write a pattern such as *.example.com")
			continue
		}
		err := checkBraces(r)
		var g glob.Glob
		if err == nil {
			g, err = glob.Compile(r, sep...)
		}
		if err != nil {
			e.addf(index(field, i), `write a glob: "*" matches within a segment, "**" across segments, "?" one character, [a-z] a class, {a,b} alternatives`,
				"invalid pattern %s: %v", quote(r), err)
			continue
		}
		out = append(out, pattern{raw: r, g: g})
	}
	return out
}

// checkBraces finds what glob.Compile accepts but reads oddly: an unclosed
// "{" ("{a,b" matches "a") and a trailing "\".
func checkBraces(s string) error {
	depth, inClass := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			if i+1 == len(s) {
				return errors.New(`it ends with "\", which escapes nothing`)
			}
			i++
		case inClass:
			inClass = c != ']'
		case c == '[':
			inClass = true
		case c == '{':
			depth++
		case c == '}':
			if depth == 0 {
				return errors.New(`"}" without "{"`)
			}
			depth--
		}
	}
	if depth > 0 {
		return errors.New(`"{" without "}"`)
	}
	return nil
}

// compileKeys reads the allowed key algorithms and their minimum sizes.
func (c *CompiledPolicy) compileKeys(e *errs, algorithms []KeyAlgorithmRule) {
	if len(algorithms) > 0 {
		c.keys = map[KeyAlgorithm]int{}
	}
	for i, k := range algorithms {
		f := index("spec.keyAlgorithms", i)
		sizes, ok := KeySizes[k.Algorithm]
		if !ok {
			e.addf(f+".algorithm", "use RSA, ECDSA or Ed25519", "unknown algorithm %s", quote(string(k.Algorithm)))
			continue
		}
		if k.MinSize != 0 && k.Algorithm != Ed25519 && k.MinSize < sizes[0] {
			e.addf(f+".minSize", fmt.Sprintf("use %d or more", sizes[0]), "minSize %d is below the floor of %d for %s, which no policy can lower", k.MinSize, sizes[0], k.Algorithm)
		}
		c.keys[k.Algorithm] = k.MinSize
	}
}

// compileUsages reads the allowed and required usages; a required usage
// that is not allowed is a policy nothing could pass.
func (c *CompiledPolicy) compileUsages(e *errs, allowed, required []KeyUsage) {
	checkUsageNames(e, "spec.allowedUsages", allowed)
	checkUsageNames(e, "spec.requiredUsages", required)
	if len(allowed) == 0 {
		return
	}
	c.allowedUsages = map[KeyUsage]bool{}
	for _, u := range allowed {
		c.allowedUsages[u] = true
	}
	for i, u := range required {
		if usageSet[u] && !c.allowedUsages[u] {
			e.addf(index("spec.requiredUsages", i), "add it to allowedUsages, or drop it here", "usage %s is required but not allowed: no certificate could pass", quote(string(u)))
		}
	}
}

// compilePolicy validates a policy and compiles its patterns. Every bad
// pattern is reported with its field and value.
func compilePolicy(p *Policy) (*CompiledPolicy, Errors) {
	var e errs
	s := &p.Spec
	c := &CompiledPolicy{Policy: p, issuers: map[string]bool{}}
	for _, i := range s.Selector.Issuers {
		c.issuers[i] = true
	}
	c.paths = compilePatterns(&e, "spec.selector.paths", s.Selector.Paths, '/')
	c.dns = compilePatterns(&e, "spec.dnsNames", s.DNSNames, '.')
	for i, d := range s.DNSNames {
		// A pattern that could never match a valid name is a mistake worth saying.
		probe := strings.NewReplacer("**", "x", "*", "x", "?", "x").Replace(d)
		if !strings.ContainsAny(d, "[{") && probe != "" {
			if pr := checkDNSName(probe, false); pr != "" {
				e.addf(index("spec.dnsNames", i), dnsHint+`; "*" matches one label, "**" several`, "pattern %s can never match a DNS name: it %s", quote(d), pr)
			}
		}
	}
	c.uris = compilePatterns(&e, "spec.uris", s.URIs, '/')
	c.emails = compilePatterns(&e, "spec.emailAddresses", s.EmailAddresses)
	if s.Subject != nil {
		c.orgs = compilePatterns(&e, "spec.subject.organizations", s.Subject.Organizations)
		c.ous = compilePatterns(&e, "spec.subject.organizationalUnits", s.Subject.OrganizationalUnits)
	}
	c.clusters = compilePatterns(&e, "spec.clusters", s.Clusters)
	c.nss = compilePatterns(&e, "spec.namespaces", s.Namespaces)
	c.kvPaths = compilePatterns(&e, "spec.vaultKVPaths", s.VaultKVPaths, '/')
	c.dirs = compilePatterns(&e, "spec.directoryPaths", s.DirectoryPaths, '/')
	for i, r := range s.IPRanges {
		n, err := parseCIDR(r)
		if err != nil {
			e.addf(index("spec.ipRanges", i), "write a CIDR such as 10.0.0.0/8 or fd00::/8", "%s is not a CIDR", quote(r))
			continue
		}
		c.ips = append(c.ips, n)
	}
	c.compileKeys(&e, s.KeyAlgorithms)
	var err error
	if c.maxDuration, err = s.MaxDuration.Parse(); err != nil {
		e.add("spec.maxDuration", err.Error(), durationHint)
	}
	if c.minRenewBefore, err = s.MinRenewBefore.Parse(); err != nil {
		e.add("spec.minRenewBefore", err.Error(), durationHint)
	}
	if c.maxDuration > 0 && c.minRenewBefore >= c.maxDuration {
		e.addf("spec.minRenewBefore", "make it shorter than maxDuration", "minRenewBefore %s is not shorter than maxDuration %s: no certificate could pass", s.MinRenewBefore, s.MaxDuration)
	}
	c.compileUsages(&e, s.AllowedUsages, s.RequiredUsages)
	if s.MaxSANs < 0 {
		e.add("spec.maxSANs", fmt.Sprintf("maxSANs %d is negative", s.MaxSANs), "use 0 for no limit, or a positive number")
	}
	switch s.Enforcement {
	case "", EnforcementDeny:
		c.deny = true
	case EnforcementWarn:
	default:
		e.addf("spec.enforcement", "use deny (the default) or warn", "unknown enforcement %s", quote(string(s.Enforcement)))
	}
	return c, e.list
}

// Name is the policy's name.
func (c *CompiledPolicy) Name() string { return c.Policy.Metadata.Name }

// selects says whether the policy governs a certificate.
func (c *CompiledPolicy) selects(cert *Certificate, path string) bool {
	if len(c.issuers) > 0 && !c.issuers[cert.Spec.Issuer] {
		return false
	}
	if len(c.paths) > 0 && !c.paths.match(path) {
		return false
	}
	return labels.SelectorFromSet(c.Policy.Spec.Selector.MatchLabels).Matches(labels.Set(cert.Metadata.Labels))
}

// whyNot says why the policy does not select a certificate.
func (c *CompiledPolicy) whyNot(cert *Certificate, path string) string {
	sel := c.Policy.Spec.Selector
	if len(c.issuers) > 0 && !c.issuers[cert.Spec.Issuer] {
		return fmt.Sprintf("it selects issuers %v, not %q", sel.Issuers, cert.Spec.Issuer)
	}
	if len(c.paths) > 0 && !c.paths.match(path) {
		return fmt.Sprintf("it selects paths %s, not %q", c.paths, path)
	}
	for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
		if got, ok := cert.Metadata.Labels[k]; !ok || got != sel.MatchLabels[k] {
			return fmt.Sprintf("it needs label %s=%s", k, sel.MatchLabels[k])
		}
	}
	return ""
}

// PolicySet is every policy of a catalog, compiled.
type PolicySet struct {
	policies []*CompiledPolicy
}

// CompilePolicies compiles policies; invalid ones are reported and left out,
// so one bad policy does not stop the others from being enforced.
func CompilePolicies(policies []*Policy) (*PolicySet, map[string]Errors) {
	set := &PolicySet{}
	bad := map[string]Errors{}
	for _, p := range policies {
		c, errs := compilePolicy(p)
		if len(errs) > 0 {
			bad[p.Metadata.Name] = errs
			continue
		}
		set.policies = append(set.policies, c)
	}
	sort.Slice(set.policies, func(i, j int) bool { return set.policies[i].Name() < set.policies[j].Name() })
	return set, bad
}

// Len is the number of policies in the set.
func (s *PolicySet) Len() int { return len(s.policies) }

// check is one rule of a policy; it returns every violation it finds.
type check func(p *CompiledPolicy, c *Certificate) []Violation

// checks run in order; each is small and documented by its Reason.
var checks = []check{
	checkDNSNames, checkIPAddresses, checkURIs, checkEmails, checkSubject,
	checkKeyAlgorithm, checkDuration, checkRenewBefore, checkUsages, checkSANCount, checkTargets,
}

// Evaluate decides whether the policies allow a certificate declared at the
// repository path. Every policy that selects the certificate must allow it;
// a certificate no policy selects is denied with ReasonNoPolicy.
//
// placed holds the clusters each clusterSelector target resolved to (render
// resolves them against the catalog): the clusters rule applies to them as
// to a named cluster, so a label can never carry a certificate to a cluster
// the policy forbids.
func (s *PolicySet) Evaluate(cert *Certificate, path string, placed Placement) Verdict {
	v := Verdict{Allowed: true, Policies: []string{}}
	for _, p := range s.policies {
		if !p.selects(cert, path) {
			continue
		}
		v.Policies = append(v.Policies, p.Name())
		found := checkPlacement(p, cert, placed)
		for _, ch := range checks {
			found = append(found, ch(p, cert)...)
		}
		for _, viol := range found {
			viol.Policy = p.Name()
			if p.deny {
				v.Violations = append(v.Violations, viol)
			} else {
				v.Warnings = append(v.Warnings, viol)
			}
		}
	}
	if len(v.Policies) == 0 {
		var why []string
		for _, p := range s.policies {
			if len(p.issuers) == 0 || p.issuers[cert.Spec.Issuer] {
				why = append(why, fmt.Sprintf("%s: %s", p.Name(), p.whyNot(cert, path)))
			}
		}
		msg := fmt.Sprintf("no policy selects this certificate (issuer %q, path %q), so nothing allows it", cert.Spec.Issuer, path)
		if len(why) > 0 {
			msg += "; policies for its issuer: " + strings.Join(why, "; ")
		} else {
			msg += "; no policy names its issuer"
		}
		v.Violations = append(v.Violations, Violation{Reason: ReasonNoPolicy, Field: "spec.issuer", Value: cert.Spec.Issuer, Message: msg})
	}
	v.Allowed = len(v.Violations) == 0
	return v
}

func checkDNSNames(p *CompiledPolicy, c *Certificate) []Violation {
	var out []Violation
	for i, n := range c.Spec.DNSNames {
		f := index("spec.dnsNames", i)
		if strings.HasPrefix(n, "*.") && !p.Policy.Spec.AllowWildcards {
			out = append(out, Violation{Reason: ReasonWildcardNotAllowed, Field: f, Value: n, Rule: "allowWildcards: false",
				Message: fmt.Sprintf("wildcard name %q is not allowed; list the names one by one", n)})
			continue
		}
		if len(p.dns) > 0 && !p.dns.match(n) {
			out = append(out, Violation{Reason: ReasonDNSNameNotAllowed, Field: f, Value: n, Rule: "dnsNames: " + p.dns.String(),
				Message: fmt.Sprintf("DNS name %q matches none of %s", n, p.dns)})
		}
	}
	return out
}

func checkIPAddresses(p *CompiledPolicy, c *Certificate) []Violation {
	if len(p.ips) == 0 {
		return nil
	}
	var out []Violation
	for i, s := range c.Spec.IPAddresses {
		ip := net.ParseIP(s)
		ok := false
		for _, n := range p.ips {
			if ip != nil && n.Contains(ip) {
				ok = true
				break
			}
		}
		if !ok {
			out = append(out, Violation{Reason: ReasonIPAddressNotAllowed, Field: index("spec.ipAddresses", i), Value: s,
				Rule:    fmt.Sprintf("ipRanges: %v", p.Policy.Spec.IPRanges),
				Message: fmt.Sprintf("IP address %s is in none of %v", s, p.Policy.Spec.IPRanges)})
		}
	}
	return out
}

func checkURIs(p *CompiledPolicy, c *Certificate) []Violation {
	return matchAll(c.Spec.URIs, p.uris, "spec.uris", "uris", ReasonURINotAllowed, "URI")
}

func checkEmails(p *CompiledPolicy, c *Certificate) []Violation {
	return matchAll(c.Spec.EmailAddresses, p.emails, "spec.emailAddresses", "emailAddresses", ReasonEmailNotAllowed, "e-mail address")
}

func checkSubject(p *CompiledPolicy, c *Certificate) []Violation {
	if c.Spec.Subject == nil {
		return nil
	}
	return append(
		matchAll(c.Spec.Subject.Organizations, p.orgs, "spec.subject.organizations", "subject.organizations", ReasonSubjectNotAllowed, "organization"),
		matchAll(c.Spec.Subject.OrganizationalUnits, p.ous, "spec.subject.organizationalUnits", "subject.organizationalUnits", ReasonSubjectNotAllowed, "organizational unit")...)
}

// matchAll reports every value that no pattern matches; no patterns allow anything.
func matchAll(values []string, ps patterns, field, rule string, reason Reason, what string) []Violation {
	if len(ps) == 0 {
		return nil
	}
	var out []Violation
	for i, v := range values {
		if !ps.match(v) {
			out = append(out, Violation{Reason: reason, Field: index(field, i), Value: v, Rule: rule + ": " + ps.String(),
				Message: fmt.Sprintf("%s %q matches none of %s", what, v, ps)})
		}
	}
	return out
}

func checkKeyAlgorithm(p *CompiledPolicy, c *Certificate) []Violation {
	if p.keys == nil {
		return nil
	}
	k := c.Spec.Key()
	min, ok := p.keys[k.Algorithm]
	if !ok {
		allowed := make([]string, 0, len(p.keys))
		for _, r := range p.Policy.Spec.KeyAlgorithms {
			allowed = append(allowed, string(r.Algorithm))
		}
		return []Violation{{Reason: ReasonKeyAlgorithmNotAllowed, Field: "spec.privateKey.algorithm", Value: string(k.Algorithm),
			Rule:    fmt.Sprintf("keyAlgorithms: %v", allowed),
			Message: fmt.Sprintf("key algorithm %s is not allowed; use one of %v", k.Algorithm, allowed)}}
	}
	if k.Algorithm != Ed25519 && k.Size < min {
		return []Violation{{Reason: ReasonKeyTooSmall, Field: "spec.privateKey.size", Value: fmt.Sprint(k.Size),
			Rule:    fmt.Sprintf("keyAlgorithms: %s minSize %d", k.Algorithm, min),
			Message: fmt.Sprintf("%s key size %d is below the minimum of %d", k.Algorithm, k.Size, min)}}
	}
	return nil
}

func checkDuration(p *CompiledPolicy, c *Certificate) []Violation {
	if p.maxDuration == 0 {
		return nil
	}
	if d := c.Spec.Lifetime(); d > p.maxDuration {
		return []Violation{{Reason: ReasonDurationTooLong, Field: "spec.duration", Value: FormatDuration(d),
			Rule:    "maxDuration: " + string(p.Policy.Spec.MaxDuration),
			Message: fmt.Sprintf("duration %s is longer than the maximum %s", FormatDuration(d), p.Policy.Spec.MaxDuration)}}
	}
	return nil
}

func checkRenewBefore(p *CompiledPolicy, c *Certificate) []Violation {
	if p.minRenewBefore == 0 {
		return nil
	}
	rb := RenewBefore(c.Spec.Lifetime(), c.Spec.RenewBefore, c.Spec.RenewBeforePercentage)
	if rb < p.minRenewBefore {
		field := "spec.renewBefore"
		if c.Spec.RenewBefore == "" && c.Spec.RenewBeforePercentage != nil {
			field = "spec.renewBeforePercentage"
		}
		return []Violation{{Reason: ReasonRenewBeforeTooShort, Field: field, Value: FormatDuration(rb),
			Rule:    "minRenewBefore: " + string(p.Policy.Spec.MinRenewBefore),
			Message: fmt.Sprintf("renewal %s before expiry is later than the policy's minimum of %s before expiry", FormatDuration(rb), p.Policy.Spec.MinRenewBefore)}}
	}
	return nil
}

func checkUsages(p *CompiledPolicy, c *Certificate) []Violation {
	var out []Violation
	usages := c.Spec.EffectiveUsages()
	if p.allowedUsages != nil {
		for i, u := range usages {
			if !p.allowedUsages[u] {
				field := index("spec.usages", i)
				if len(c.Spec.Usages) == 0 {
					field = "spec.usages" // defaults: point at where they would be written
				}
				out = append(out, Violation{Reason: ReasonUsageNotAllowed, Field: field, Value: string(u),
					Rule:    fmt.Sprintf("allowedUsages: %v", p.Policy.Spec.AllowedUsages),
					Message: fmt.Sprintf("usage %q is not allowed; allowed: %v", u, p.Policy.Spec.AllowedUsages)})
			}
		}
	}
	have := map[KeyUsage]bool{}
	for _, u := range usages {
		have[u] = true
	}
	for _, u := range p.Policy.Spec.RequiredUsages {
		if !have[u] {
			out = append(out, Violation{Reason: ReasonUsageRequired, Field: "spec.usages", Value: string(u),
				Rule:    fmt.Sprintf("requiredUsages: %v", p.Policy.Spec.RequiredUsages),
				Message: fmt.Sprintf("usage %q is required; add it to usages", u)})
		}
	}
	return out
}

func checkSANCount(p *CompiledPolicy, c *Certificate) []Violation {
	max := p.Policy.Spec.MaxSANs
	if n := c.Spec.SANCount(); max > 0 && n > max {
		return []Violation{{Reason: ReasonTooManySANs, Field: "spec", Value: fmt.Sprint(n), Rule: fmt.Sprintf("maxSANs: %d", max),
			Message: fmt.Sprintf("%d subject alternative names, more than the maximum of %d", n, max)}}
	}
	return nil
}

func checkTargets(p *CompiledPolicy, c *Certificate) []Violation {
	var out []Violation
	for i, t := range c.Spec.Targets {
		if kv := t.VaultKV; kv != nil && len(p.kvPaths) > 0 {
			if at := path.Join(kv.Mount, kv.Path); !p.kvPaths.match(at) {
				out = append(out, Violation{Reason: ReasonVaultKVPathNotAllowed, Field: index("spec.targets", i) + ".vaultKV", Value: at,
					Rule: "vaultKVPaths: " + p.kvPaths.String(), Message: fmt.Sprintf("Vault KV path %q matches none of %s", at, p.kvPaths)})
			}
		}
		if d := t.Directory; d != nil && len(p.dirs) > 0 {
			if at := path.Clean(d.Path); !p.dirs.match(at) {
				out = append(out, Violation{Reason: ReasonDirectoryNotAllowed, Field: index("spec.targets", i) + ".directory.path", Value: at,
					Rule: "directoryPaths: " + p.dirs.String(), Message: fmt.Sprintf("directory %q matches none of %s", at, p.dirs)})
			}
		}
		k := t.Kubernetes
		if k == nil {
			continue
		}
		f := index("spec.targets", i) + ".kubernetes"
		// A clusterSelector is checked on the clusters it resolved to (checkPlacement).
		if len(p.clusters) > 0 && k.Cluster != "" && !p.clusters.match(k.Cluster) {
			out = append(out, Violation{Reason: ReasonClusterNotAllowed, Field: f + ".cluster", Value: k.Cluster, Rule: "clusters: " + p.clusters.String(),
				Message: fmt.Sprintf("cluster %q matches none of %s", k.Cluster, p.clusters)})
		}
		if len(p.nss) > 0 && !p.nss.match(k.Namespace) {
			out = append(out, Violation{Reason: ReasonNamespaceNotAllowed, Field: f + ".namespace", Value: k.Namespace, Rule: "namespaces: " + p.nss.String(),
				Message: fmt.Sprintf("namespace %q matches none of %s", k.Namespace, p.nss)})
		}
	}
	return out
}

// Placement is where a certificate's clusterSelector targets resolved to:
// cluster names by the target's index in spec.targets.
type Placement map[int][]string

// checkPlacement applies the clusters rule to every cluster a
// clusterSelector selected.
func checkPlacement(p *CompiledPolicy, c *Certificate, placed Placement) []Violation {
	if len(p.clusters) == 0 {
		return nil
	}
	var out []Violation
	for i, t := range c.Spec.Targets {
		if t.Kubernetes == nil || t.Kubernetes.ClusterSelector == nil {
			continue
		}
		f := index("spec.targets", i) + ".kubernetes.clusterSelector"
		for _, name := range placed[i] {
			if !p.clusters.match(name) {
				out = append(out, Violation{Reason: ReasonClusterNotAllowed, Field: f, Value: name, Rule: "clusters: " + p.clusters.String(),
					Message: fmt.Sprintf("the selector selects cluster %q, which matches none of %s; narrow the selector or name allowed clusters", name, p.clusters)})
			}
		}
	}
	return out
}
