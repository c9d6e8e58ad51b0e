package schemas

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of a certificate, as cert-manager users expect them.
const (
	DefaultDuration = 90 * 24 * time.Hour
	// MinDuration is the shortest lifetime accepted; shorter ones could not be
	// renewed in time by a reconciler that runs every minute.
	MinDuration = 2 * time.Minute
)

// DefaultUsages are a server certificate's usages.
var DefaultUsages = []KeyUsage{"digital signature", "key encipherment", "server auth"}

// Key returns the private key spec with its defaults filled in.
func (s CertificateSpec) Key() PrivateKey {
	var k PrivateKey
	if s.PrivateKey != nil {
		k = *s.PrivateKey
	}
	if k.Algorithm == "" {
		k.Algorithm = ECDSA
	}
	switch {
	case k.Algorithm == Ed25519:
		k.Size = 0 // an Ed25519 key has one size; a size written is ignored
	case k.Size == 0 && len(KeySizes[k.Algorithm]) > 0:
		k.Size = KeySizes[k.Algorithm][0]
	}
	if k.RotationPolicy == "" {
		k.RotationPolicy = RotationAlways
	}
	if k.Encoding == "" {
		// Ed25519 keys have no PKCS1 form.
		k.Encoding = "PKCS1"
		if k.Algorithm == Ed25519 {
			k.Encoding = "PKCS8"
		}
	}
	return k
}

// Lifetime returns the requested duration, or the default; an invalid
// duration (reported by Validate) also gives the default.
func (s CertificateSpec) Lifetime() time.Duration {
	if d, err := s.Duration.Parse(); err == nil && d > 0 {
		return d
	}
	return DefaultDuration
}

// EffectiveUsages returns the usages, or the defaults when none are given.
func (s CertificateSpec) EffectiveUsages() []KeyUsage {
	if len(s.Usages) == 0 {
		return DefaultUsages
	}
	return s.Usages
}

// SANCount is the number of subject alternative names of all kinds.
func (s CertificateSpec) SANCount() int {
	return len(s.DNSNames) + len(s.IPAddresses) + len(s.URIs) + len(s.EmailAddresses)
}

// Validate checks an object on its own: names, durations, SANs, keys,
// targets, patterns. Field paths are relative to the object; Document.Locate
// places them in the file. Cross-object checks (duplicate targets, unknown
// issuers) are elsewhere.
func Validate(obj any) Errors {
	var e errs
	switch o := obj.(type) {
	case *Certificate:
		validateMeta(&e, o.Metadata)
		validateCertificateSpec(&e, "spec", &o.Spec)
	case *CertificateSet:
		validateMeta(&e, o.Metadata)
		validateSetShape(&e, &o.Spec)
	case *Authority:
		validateMeta(&e, o.Metadata)
		validateAuthority(&e, &o.Spec)
	case *Issuer:
		validateMeta(&e, o.Metadata)
		validateIssuer(&e, &o.Spec)
	case *Policy:
		validateMeta(&e, o.Metadata)
		_, list := compilePolicy(o)
		e.list = append(e.list, list...)
	case *Cluster:
		validateMeta(&e, o.Metadata)
		validateCluster(&e, &o.Spec)
	case *TrustBundle:
		validateMeta(&e, o.Metadata)
		validateTrustBundle(&e, &o.Spec)
	case *Rollout:
		validateMeta(&e, o.Metadata)
		validateRollout(&e, &o.Spec)
	default:
		e.add("", fmt.Sprintf("cannot validate %T", obj), "")
	}
	return e.list
}

func validateMeta(e *errs, m ObjectMeta) {
	if p := checkObjectName(m.Name); p != "" {
		e.addf("metadata.name", "use lower-case letters, digits, \"-\" and \".\", as Kubernetes names", "name %s %s", quote(m.Name), p)
	}
	if m.Namespace != "" {
		if p := checkLabelName(m.Namespace); p != "" {
			e.addf("metadata.namespace", "use lower-case letters, digits and \"-\" (a DNS-1123 label)", "namespace %s %s", quote(m.Namespace), p)
		}
	}
}

func validateCertificateSpec(e *errs, path string, s *CertificateSpec) {
	if s.Issuer == "" {
		e.add(path+".issuer", "issuer is required", "name the catalog Issuer that signs this certificate")
	}
	if s.CommonName == "" && s.SANCount() == 0 {
		e.add(path, "no commonName and no subject alternative names",
			"add dnsNames, ipAddresses, uris or emailAddresses (or at least a commonName)")
	}
	if len(s.CommonName) > 64 {
		e.addf(path+".commonName", "keep it to 64 characters and put long names in dnsNames", "commonName is %d characters long, more than X.509's 64", len(s.CommonName))
	}
	validateSANs(e, path, s)
	validateUsages(e, path, s.Usages)
	validateLifetime(e, path, s)
	if s.SignatureAlgorithm != "" {
		if p, h := checkSignatureAlgorithm(s.SignatureAlgorithm); p != "" {
			e.add(path+".signatureAlgorithm", p, h)
		}
	}
	if s.PrivateKey != nil {
		validatePrivateKey(e, path+".privateKey", s.PrivateKey)
	}
	for i, t := range s.Targets {
		validateTarget(e, index(path+".targets", i), t)
	}
}

// validateSANs checks each subject alternative name's syntax.
func validateSANs(e *errs, path string, s *CertificateSpec) {
	for i, n := range s.DNSNames {
		if p := checkDNSName(n, true); p != "" {
			e.addf(index(path+".dnsNames", i), dnsHint, "%s is not a valid DNS name: it %s", quote(n), p)
		}
	}
	for i, ip := range s.IPAddresses {
		if p := checkIP(ip); p != "" {
			e.addf(index(path+".ipAddresses", i), "write an IPv4 (10.0.0.1) or IPv6 (fd00::1) address", "%s %s", quote(ip), p)
		}
	}
	for i, u := range s.URIs {
		if p, h := checkURI(u); p != "" {
			e.addf(index(path+".uris", i), h, "%s %s", quote(u), p)
		}
	}
	for i, m := range s.EmailAddresses {
		if p := checkEmail(m); p != "" {
			e.addf(index(path+".emailAddresses", i), "write user@example.com without a display name", "%s %s", quote(m), p)
		}
	}
}

// validateUsages checks that each usage is known and listed once.
func validateUsages(e *errs, path string, usages []KeyUsage) {
	seenUsage := map[KeyUsage]bool{}
	for i, u := range usages {
		if !usageSet[u] {
			unknownUsage(e, index(path+".usages", i), u)
		}
		if seenUsage[u] {
			e.addf(index(path+".usages", i), "list each usage once", "usage %s appears twice", quote(string(u)))
		}
		seenUsage[u] = true
	}
}

// checkUsageNames says which usages of a list are unknown.
func checkUsageNames(e *errs, field string, usages []KeyUsage) {
	for i, u := range usages {
		if !usageSet[u] {
			unknownUsage(e, index(field, i), u)
		}
	}
}

// unknownUsage reports u, unknown, at field, with the known name it is closest to.
func unknownUsage(e *errs, field string, u KeyUsage) {
	hint := "use cert-manager's names: " + strings.Join(usageNames(), ", ")
	if sug := suggest(string(u), usageNames()); sug != "" {
		hint = fmt.Sprintf("did you mean %q?", sug)
	}
	e.addf(field, hint, "unknown usage %s", quote(string(u)))
}

// validateLifetime checks the duration and when to renew within it.
func validateLifetime(e *errs, path string, s *CertificateSpec) {
	duration, err := s.Duration.Parse()
	if err != nil {
		e.add(path+".duration", err.Error(), durationHint)
	} else if s.Duration != "" && duration < MinDuration {
		e.addf(path+".duration", "ask for at least "+FormatDuration(MinDuration), "duration %s is shorter than %s", s.Duration, FormatDuration(MinDuration))
	}
	durationName := "the duration " + FormatDuration(duration)
	if duration == 0 {
		duration = DefaultDuration
		durationName = "the default duration " + FormatDuration(duration)
	}
	renewBefore, err := s.RenewBefore.Parse()
	if err != nil {
		e.add(path+".renewBefore", err.Error(), durationHint)
	} else if s.RenewBefore != "" && renewBefore == 0 {
		// RenewBefore would fall back to the default in silence.
		e.addf(path+".renewBefore", "give a positive duration, or leave it out to renew at 2/3 of the lifetime", "renewBefore %s is zero", s.RenewBefore)
	} else if s.RenewBefore != "" && renewBefore >= duration {
		e.addf(path+".renewBefore", "make renewBefore shorter than the duration, or leave it out to renew at 2/3 of the lifetime",
			"renewBefore %s is not shorter than %s: the certificate would be renewed as soon as it is issued", s.RenewBefore, durationName)
	}
	if p := s.RenewBeforePercentage; p != nil {
		if s.RenewBefore != "" {
			e.add(path+".renewBeforePercentage", "renewBefore and renewBeforePercentage are both set", "keep one of them")
		}
		if *p < 1 || *p > 99 {
			e.addf(path+".renewBeforePercentage", "use a percentage from 1 to 99", "renewBeforePercentage %d is out of range", *p)
		}
	}
}

// validatePrivateKey checks the key's algorithm and size, rotation policy and encoding.
func validatePrivateKey(e *errs, kp string, k *PrivateKey) {
	alg := k.Algorithm
	if alg == "" {
		alg = ECDSA
	}
	if p, h := checkKey(alg, k.Size); p != "" {
		field := kp + ".size"
		if _, ok := KeySizes[alg]; !ok {
			field = kp + ".algorithm"
		}
		e.add(field, p, h)
	}
	switch k.RotationPolicy {
	case "", RotationAlways, RotationNever:
	default:
		e.addf(kp+".rotationPolicy", "use Always (a new key on every issuance) or Never (keep the key)", "unknown rotationPolicy %s", quote(string(k.RotationPolicy)))
	}
	switch k.Encoding {
	case "", "PKCS1", "PKCS8":
	default:
		e.addf(kp+".encoding", "use PKCS1 or PKCS8", "unknown encoding %s", quote(k.Encoding))
	}
	if alg == Ed25519 && k.Encoding == "PKCS1" {
		e.add(kp+".encoding", "Ed25519 keys have no PKCS1 encoding", "use PKCS8, or leave it out")
	}
}

func validateTarget(e *errs, path string, t Target) {
	n := 0
	if t.Kubernetes != nil {
		n++
		k := t.Kubernetes
		kp := path + ".kubernetes"
		validateClusterRef(e, kp, k.Cluster, k.ClusterSelector)
		if p := checkLabelName(k.Namespace); p != "" {
			e.addf(kp+".namespace", "use a Kubernetes namespace name: lower-case letters, digits and \"-\"", "namespace %s %s", quote(k.Namespace), p)
		}
		if p := checkObjectName(k.SecretName); p != "" {
			e.addf(kp+".secretName", "use a Kubernetes Secret name: lower-case letters, digits, \"-\" and \".\"", "secretName %s %s", quote(k.SecretName), p)
		}
		if st := k.SecretTemplate; st != nil {
			for name := range st.Labels {
				if strings.HasPrefix(name, "certfleet.dev/") || name == "app.kubernetes.io/managed-by" {
					e.addf(key(kp+".secretTemplate.labels", name), "choose another label; certfleet sets this one itself", "label %s is reserved", quote(name))
				}
			}
			for name := range st.Annotations {
				if strings.HasPrefix(name, "certfleet.dev/") || strings.HasPrefix(name, "cert-manager.io/") {
					e.addf(key(kp+".secretTemplate.annotations", name), "choose another annotation; certfleet sets this one itself", "annotation %s is reserved", quote(name))
				}
			}
		}
	}
	if t.VaultKV != nil {
		n++
		if t.VaultKV.Mount == "" {
			e.add(path+".vaultKV.mount", "mount is required", "name the KV v2 mount, e.g. secret")
		}
		if t.VaultKV.Path == "" {
			e.add(path+".vaultKV.path", "path is required", "give the secret's path within the mount, e.g. tls/payments-api")
		}
		if slices.Contains(strings.Split(t.VaultKV.Path, "/"), "..") {
			e.add(path+".vaultKV.path", fmt.Sprintf("path %s contains \"..\"", quote(t.VaultKV.Path)), "write the path without \"..\"")
		}
	}
	if t.Directory != nil {
		n++
		validateDirectory(e, path+".directory", t.Directory)
	}
	if n != 1 {
		e.addf(path, "set one of kubernetes, vaultKV or directory per target", "a target must have exactly one of kubernetes, vaultKV, directory (found %d)", n)
	}
	if t.Probe != nil {
		validateProbe(e, path+".probe", t)
	}
	if t.Restart != nil {
		validateRestart(e, path+".restart", t)
	}
}

// validateRestart checks a target's restart: a workload kind certfleet
// restarts and a name, in a Kubernetes Secret's namespace.
func validateRestart(e *errs, path string, t Target) {
	r := t.Restart
	if t.Kubernetes == nil {
		e.add(path, "a restart names a workload in the Secret's namespace, and this target is not a Kubernetes Secret",
			"move the restart to a kubernetes target, or leave it out (a directory's or Vault KV's reader restarts by its own means)")
	}
	switch {
	case r.Kind == "":
		e.add(path+".kind", "kind is required", "use Deployment, StatefulSet or DaemonSet")
	case !slices.Contains(WorkloadKinds, r.Kind):
		e.addf(path+".kind", "use Deployment, StatefulSet or DaemonSet (the workloads `kubectl rollout restart` restarts)", "unknown kind %s", quote(string(r.Kind)))
	}
	if r.Name == "" {
		e.add(path+".name", "name is required", "give the workload's name in the target's namespace, e.g. payments-api")
	} else if p := checkObjectName(r.Name); p != "" {
		e.addf(path+".name", "use a Kubernetes object name: lower-case letters, digits, \"-\" and \".\"", "name %s %s", quote(r.Name), p)
	}
}

// validateProbe checks a target's probe: an address to dial, a name to
// send, a grace period.
func validateProbe(e *errs, path string, t Target) {
	p := t.Probe
	if k := t.Kubernetes; k != nil && k.ClusterSelector != nil {
		// Each selected cluster gets its own Secret: one address cannot
		// serve them all.
		e.add(path, "a probe dials one address, but a clusterSelector delivers to several clusters",
			"name one cluster (kubernetes.cluster) and give it the probe, one target per cluster")
	}
	host, port, err := net.SplitHostPort(p.Address)
	switch {
	case p.Address == "":
		e.add(path+".address", "address is required", "give the host:port the workload serves TLS on, e.g. payments.internal:443")
	case err != nil || host == "":
		e.addf(path+".address", "write host:port, e.g. payments.internal:443 or [fd00::1]:8443", "address %s is not host:port", quote(p.Address))
	default:
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			e.addf(path+".address", "use a port from 1 to 65535", "address %s has port %s", quote(p.Address), quote(port))
		}
	}
	if p.ServerName != "" {
		if problem := checkDNSName(p.ServerName, false); problem != "" {
			e.addf(path+".serverName", "give the DNS name the workload's certificate is for, e.g. payments.example.com", "serverName %s: %s", quote(p.ServerName), problem)
		}
	}
	if g, err := p.Grace.Parse(); err != nil {
		e.add(path+".grace", err.Error(), durationHint)
	} else if p.Grace != "" && g == 0 {
		e.addf(path+".grace", "give a positive duration, or leave it out for "+FormatDuration(DefaultProbeGrace), "grace %s is zero", p.Grace)
	}
}

func validateDirectory(e *errs, path string, d *DirectoryTarget) {
	if d.Path == "" {
		e.add(path+".path", "path is required", "give a directory such as /etc/tls/payments")
		return
	}
	if slices.Contains(strings.Split(d.Path, "/"), "..") {
		e.add(path+".path", fmt.Sprintf("path %s contains \"..\"", quote(d.Path)), "write the directory without \"..\"")
	}
	// The names certfleet uses inside a target directory: a target named
	// after one would write into another target's internals.
	for _, c := range strings.Split(d.Path, "/") {
		switch {
		case strings.HasPrefix(c, "..") && c != "..":
			e.add(path+".path", fmt.Sprintf("path %s has a component %s: names starting with \"..\" are reserved for certfleet's own entries (..data and its data directories)", quote(d.Path), quote(c)),
				"choose a directory name that does not start with \"..\"")
		case c == "tls.crt" || c == "tls.key" || c == "ca.crt" || c == ".certfleet.json":
			e.add(path+".path", fmt.Sprintf("path %s has a component %s: it is one of the files certfleet writes into a target directory", quote(d.Path), quote(c)),
				"choose another directory name")
		}
	}
}

func validateClusterRef(e *errs, path, cluster string, sel *LabelSelector) {
	switch {
	case cluster != "" && sel != nil:
		e.add(path, "both cluster and clusterSelector are set", "keep one: a cluster name, or a clusterSelector with matchLabels")
	case cluster == "" && sel == nil:
		e.add(path, "neither cluster nor clusterSelector is set", "name a catalog Cluster, or select clusters with clusterSelector.matchLabels")
	case sel != nil && len(sel.MatchLabels) == 0:
		e.add(path+".clusterSelector", "clusterSelector has no matchLabels", "add matchLabels; an empty selector would pick every cluster")
	case cluster != "":
		if p := checkObjectName(cluster); p != "" {
			e.addf(path+".cluster", "name a catalog Cluster", "cluster %s %s", quote(cluster), p)
		}
	}
}

func validateSetShape(e *errs, s *CertificateSetSpec) {
	if s.NameTemplate == "" {
		e.add("spec.nameTemplate", "nameTemplate is required", `name each certificate from its variables, e.g. "${service}-tls"`)
	}
	switch {
	case s.Template == nil:
		e.add("spec.template", "template is required", "give a Certificate spec with ${var} placeholders")
	case len(s.Template) == 0:
		e.add("spec.template", "template is empty", "give a Certificate spec with ${var} placeholders")
	}
	if len(s.Items) == 0 {
		e.add("spec.items", "items is empty: the set makes no certificates", "list one map of variables per certificate")
	}
}

func validateAuthority(e *errs, s *AuthoritySpec) {
	switch s.Type {
	case AuthorityRoot:
		if s.Parent != "" {
			e.add("spec.parent", "a root authority has no parent", "remove parent, or make the type intermediate")
		}
	case AuthorityIntermediate:
		if s.Parent == "" {
			e.add("spec.parent", "an intermediate authority needs a parent", "name the authority that signs it")
		}
	case "":
		e.add("spec.type", "type is required", "use root or intermediate")
	default:
		e.addf("spec.type", "use root or intermediate", "unknown type %s", quote(string(s.Type)))
	}
	if s.Mount == "" {
		e.add("spec.mount", "mount is required", "name the Vault PKI mount, e.g. pki-root")
	} else if strings.Trim(s.Mount, "/") != s.Mount || strings.Contains(s.Mount, "..") {
		e.addf("spec.mount", "write the mount path without leading or trailing \"/\" or \"..\"", "mount %s is not a clean path", quote(s.Mount))
	}
	if s.CommonName == "" {
		e.add("spec.commonName", "commonName is required", "name the CA, e.g. \"Fleet Root CA\"")
	}
	if p, h := checkVaultKey(s.KeyType, s.KeyBits, false); p != "" {
		e.add(vaultKeyField(s.KeyType, false), p, h)
	}
	if _, err := s.TTL.Parse(); err != nil {
		e.add("spec.ttl", err.Error(), durationHint)
	}
	ttl := s.Lifetime()
	if rb, err := s.RotateBefore.Parse(); err != nil {
		e.add("spec.rotateBefore", err.Error(), durationHint)
	} else if rb >= ttl {
		e.addf("spec.rotateBefore", "make it shorter than the ttl", "rotateBefore %s is not shorter than the ttl %s", s.RotateBefore, FormatDuration(ttl))
	}
	if m := s.RetirePreviousIssuer; m != "" && !slices.Contains(RetireModes, m) {
		e.addf("spec.retirePreviousIssuer", "use keep, disable or delete", "unknown value %s", quote(string(m)))
	}
	if s.MaxPathLength != nil && *s.MaxPathLength < -1 {
		e.add("spec.maxPathLength", fmt.Sprintf("maxPathLength %d is below -1", *s.MaxPathLength), "use -1 for no limit, or 0 and up")
	}
	for i, d := range s.PermittedDNSDomains {
		if p := checkDNSName(strings.TrimPrefix(d, "."), false); p != "" {
			e.addf(index("spec.permittedDNSDomains", i), dnsHint, "%s is not a valid DNS domain: it %s", quote(d), p)
		}
	}
	for field, urls := range map[string][]string{"spec.issuingCertificates": s.IssuingCertificates,
		"spec.crlDistributionPoints": s.CRLDistributionPoints, "spec.ocspServers": s.OCSPServers} {
		for i, u := range urls {
			if p, h := checkURI(u); p != "" {
				e.addf(index(field, i), h, "%s %s", quote(u), p)
			}
		}
	}
}

// Lifetime returns the authority's TTL or its default.
func (s AuthoritySpec) Lifetime() time.Duration {
	if d, err := s.TTL.Parse(); err == nil && d > 0 {
		return d
	}
	if s.Type == AuthorityIntermediate {
		return 5 * 365 * 24 * time.Hour
	}
	return 10 * 365 * 24 * time.Hour
}

// RotationLead returns how long before expiry the authority rotates (default: a third of its lifetime).
func (s AuthoritySpec) RotationLead() time.Duration {
	if d, err := s.RotateBefore.Parse(); err == nil && d > 0 {
		return d
	}
	return s.Lifetime() / 3
}

// RotatesAt is when the authority's current CA certificate is due to be
// replaced: its expiry minus the rotation lead; zero without a status.
func (a *Authority) RotatesAt() time.Time {
	if a.Status.NotAfter == nil {
		return time.Time{}
	}
	return a.Status.NotAfter.Add(-a.Spec.RotationLead())
}

// VaultKeySizes are the key_bits Vault accepts per key_type.
var VaultKeySizes = map[string][]int{"rsa": {2048, 3072, 4096}, "ec": {256, 384, 521}, "ed25519": {0}}

// checkVaultKey checks a Vault key_type/key_bits pair ("" type = ec;
// allowAny for roles, whose key_type may be "any").
func checkVaultKey(keyType string, bits int, allowAny bool) (problem, hint string) {
	if keyType == "" {
		keyType = "ec"
	}
	if keyType == "any" && allowAny {
		return "", ""
	}
	sizes, ok := VaultKeySizes[keyType]
	if !ok {
		if allowAny {
			return fmt.Sprintf("unknown key type %s", quote(keyType)), "use rsa, ec, ed25519 or any"
		}
		return fmt.Sprintf("unknown key type %s", quote(keyType)), "use rsa, ec or ed25519"
	}
	if bits == 0 || keyType == "ed25519" {
		return "", ""
	}
	for _, s := range sizes {
		if s == bits {
			return "", ""
		}
	}
	if keyType == "rsa" && bits < 2048 {
		return fmt.Sprintf("RSA key size %d is below 2048, a floor no policy can lower", bits), "use " + orList(sizes)
	}
	return fmt.Sprintf("key type %s does not come in %d bits", keyType, bits), "use " + orList(sizes)
}

// vaultKeyField is the field a key error is about: an unknown key type, or
// key bits the type does not come in.
func vaultKeyField(keyType string, allowAny bool) string {
	if _, ok := VaultKeySizes[keyType]; ok || keyType == "" || keyType == "any" && allowAny {
		return "spec.keyBits"
	}
	return "spec.keyType"
}

func validateIssuer(e *errs, s *IssuerSpec) {
	switch {
	case s.ACME != nil && s.Authority != "":
		e.add("spec.authority", "authority is set on an ACME issuer", "remove authority: the ACME CA signs")
	case s.ACME == nil && s.Authority == "":
		e.add("spec.authority", "authority is required", "name the Authority that signs, or set acme")
	}
	if s.ACME != nil {
		validateACME(e, s.ACME)
	}
	if p, h := checkVaultKey(s.KeyType, s.KeyBits, true); p != "" {
		e.add(vaultKeyField(s.KeyType, true), p, h)
	}
	ttl, err := s.TTL.Parse()
	if err != nil {
		e.add("spec.ttl", err.Error(), durationHint)
	}
	maxTTL, err := s.MaxTTL.Parse()
	if err != nil {
		e.add("spec.maxTTL", err.Error(), durationHint)
	}
	if ttl > 0 && maxTTL > 0 && ttl > maxTTL {
		e.addf("spec.ttl", "make ttl at most maxTTL", "ttl %s is longer than maxTTL %s", s.TTL, s.MaxTTL)
	}
	for i, d := range s.AllowedDomains {
		probe := d
		if s.AllowGlobDomains {
			probe = strings.ReplaceAll(d, "*", "x")
		} else if strings.Contains(d, "*") {
			e.addf(index("spec.allowedDomains", i), fmt.Sprintf("set allowGlobDomains: true, or allow %s with allowSubdomains: true", quote(strings.TrimLeft(d, "*."))),
				"%s is a glob, but allowGlobDomains is false", quote(d))
			continue
		}
		if p := checkDNSName(probe, false); p != "" {
			e.addf(index("spec.allowedDomains", i), dnsHint, "%s is not a valid domain: it %s", quote(d), p)
		}
	}
}

func validateCluster(e *errs, s *ClusterSpec) {
	if s.Server != "" {
		if p, h := checkURI(s.Server); p != "" || !strings.HasPrefix(s.Server, "https://") || hostless(s.Server) {
			if p == "" {
				p, h = "is not an https:// URL with a host", "write the API server's URL, e.g. https://10.0.0.1:6443"
			}
			e.addf("spec.server", h, "server %s %s", quote(s.Server), p)
		}
	}
	c := s.Credentials
	switch {
	case c.VaultKVPath != "" && c.KubeconfigContext != "":
		e.add("spec.credentials", "both vaultKVPath and kubeconfigContext are set", "keep one")
	case c.VaultKVPath == "" && c.KubeconfigContext == "":
		e.add("spec.credentials", "no credentials source", "set vaultKVPath (a KV v2 path with a token field) or kubeconfigContext")
	case c.VaultKVPath != "" && s.Server == "":
		e.add("spec.server", "server is required with vaultKVPath credentials", "give the API server's URL")
	}
	if s.CACertificate != "" && !strings.Contains(s.CACertificate, "-----BEGIN CERTIFICATE-----") {
		e.add("spec.caCertificate", "caCertificate is not a PEM certificate", "paste the PEM block, from -----BEGIN CERTIFICATE-----")
	}
}

func validateRollout(e *errs, s *RolloutSpec) {
	if len(s.Waves) == 0 {
		e.add("spec.waves", "waves is empty", "list the waves in order, e.g. {name: staging, clusterSelector: {matchLabels: {env: staging}}} then {name: production}")
	}
	seen := map[string]bool{}
	for i, w := range s.Waves {
		p := index("spec.waves", i)
		if q := checkLabelName(w.Name); q != "" {
			e.addf(p+".name", "use lower-case letters, digits and \"-\", e.g. staging", "wave name %s %s", quote(w.Name), q)
		} else if seen[w.Name] {
			e.addf(p+".name", "give each wave its own name", "wave name %s is used twice", quote(w.Name))
		}
		seen[w.Name] = true
		switch {
		case w.ClusterSelector == nil && i < len(s.Waves)-1:
			e.addf(p+".clusterSelector", "add clusterSelector.matchLabels; only the last wave may omit it (it takes the rest)", "wave %s has no clusterSelector", quote(w.Name))
		case w.ClusterSelector != nil && len(w.ClusterSelector.MatchLabels) == 0:
			e.add(p+".clusterSelector", "clusterSelector has no matchLabels", "add matchLabels, or leave clusterSelector out of the last wave to take every remaining cluster")
		}
	}
	if s.MaxSharePerPass < 0 || s.MaxSharePerPass > 1 {
		e.addf("spec.maxSharePerPass", "give a share between 0 and 1, e.g. 0.25 for a quarter of a wave per pass", "maxSharePerPass %g is not a share", s.MaxSharePerPass)
	}
	if s.PauseOnFailures < 0 {
		e.addf("spec.pauseOnFailures", "give 0 (pause on the first failure) or more", "pauseOnFailures %d is negative", s.PauseOnFailures)
	}
	if s.MinCertificates < 0 {
		e.addf("spec.minCertificates", "give 1 or more (default 10)", "minCertificates %d is negative", s.MinCertificates)
	}
	if d, err := s.Soak.Parse(); err != nil || d < 0 {
		e.addf("spec.soak", `write a duration such as "30m", "2h" or "1d"`, "soak %s is not a duration of 0 or more", quote(string(s.Soak)))
	}
}

func hostless(s string) bool {
	u, err := url.Parse(s)
	return err != nil || u.Host == ""
}

func validateTrustBundle(e *errs, s *TrustBundleSpec) {
	if len(s.Authorities) == 0 {
		e.add("spec.authorities", "authorities is empty", "name the Authorities whose CA certificates to publish")
	}
	if len(s.Targets) == 0 {
		e.add("spec.targets", "targets is empty", "add a kubernetes or directory target")
	}
	for i, t := range s.Targets {
		p := index("spec.targets", i)
		n := 0
		if k := t.Kubernetes; k != nil {
			n++
			kp := p + ".kubernetes"
			validateClusterRef(e, kp, k.Cluster, k.ClusterSelector)
			if pr := checkLabelName(k.Namespace); pr != "" {
				e.addf(kp+".namespace", "use a Kubernetes namespace name: lower-case letters, digits and \"-\"", "namespace %s %s", quote(k.Namespace), pr)
			}
			if pr := checkObjectName(k.Name); pr != "" {
				e.addf(kp+".name", "use a Kubernetes object name: lower-case letters, digits, \"-\" and \".\"", "name %s %s", quote(k.Name), pr)
			}
			switch k.Kind {
			case "", "ConfigMap", "Secret":
			default:
				e.addf(kp+".kind", "use ConfigMap or Secret", "unknown kind %s", quote(k.Kind))
			}
		}
		if t.Directory != nil {
			n++
			validateDirectory(e, p+".directory", t.Directory)
		}
		if n != 1 {
			e.addf(p, "set one of kubernetes or directory per target", "a target must have exactly one of kubernetes, directory (found %d)", n)
		}
	}
}

// parseCIDR accepts a CIDR or a bare IP (a /32 or /128).
func parseCIDR(s string) (*net.IPNet, error) {
	if ip := net.ParseIP(s); ip != nil {
		bits := 128
		if ip.To4() != nil {
			bits, ip = 32, ip.To4()
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	_, n, err := net.ParseCIDR(s)
	return n, err
}

// ACMEDNSProviders are the lego DNS providers built into certfleet. lego's
// factory of every provider cannot be built here (some of their SDKs are
// not served), so the list is explicit; adding one is a line in
// internal/backend.
var ACMEDNSProviders = []string{"exec", "httpreq", "cloudflare"}

func validateACME(e *errs, a *ACMEIssuer) {
	if p, h := checkURI(a.Server); a.Server == "" || p != "" || !strings.HasPrefix(a.Server, "https://") || hostless(a.Server) {
		if p == "" {
			p, h = "is not an https:// URL with a host", "write the CA's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory"
		}
		e.addf("spec.acme.server", h, "server %s %s", quote(a.Server), p)
	}
	if p := checkEmail(a.Email); a.Email != "" && p != "" {
		e.addf("spec.acme.email", "write an e-mail address, e.g. pki@example.com", "email %s %s", quote(a.Email), p)
	}
	if a.CABundle != "" && !strings.Contains(a.CABundle, "-----BEGIN CERTIFICATE-----") {
		e.add("spec.acme.caBundle", "caBundle is not PEM certificates", "paste the PEM blocks, from -----BEGIN CERTIFICATE-----")
	}
	if b := a.ExternalAccountBinding; b != nil {
		if b.KeyID == "" {
			e.add("spec.acme.externalAccountBinding.keyID", "keyID is required", "give the key ID the CA issued")
		}
		switch {
		case b.HMACKeyFile == "" && b.HMACKeyVaultKV == "":
			e.add("spec.acme.externalAccountBinding", "no HMAC key source", "set hmacKeyFile (a file) or hmacKeyVaultKV (mount/path#field); the key itself never goes in a manifest")
		case b.HMACKeyFile != "" && b.HMACKeyVaultKV != "":
			e.add("spec.acme.externalAccountBinding", "both hmacKeyFile and hmacKeyVaultKV are set", "keep one")
		case b.HMACKeyVaultKV != "" && !strings.Contains(b.HMACKeyVaultKV, "#"):
			e.addf("spec.acme.externalAccountBinding.hmacKeyVaultKV", "write mount/path#field, e.g. secret/acme/eab#hmac",
				"hmacKeyVaultKV %s names no field", quote(b.HMACKeyVaultKV))
		}
	}
	if a.Solvers.HTTP01 == nil && a.Solvers.DNS01 == nil {
		e.add("spec.acme.solvers", "no solver", "set http01: {} (certfleet answers on its listener) or dns01 with a provider")
	}
	if d := a.Solvers.DNS01; d != nil {
		if !slices.Contains(ACMEDNSProviders, d.Provider) {
			e.addf("spec.acme.solvers.dns01.provider", "use one of "+strings.Join(ACMEDNSProviders, ", "), "provider %s is not one certfleet carries", quote(d.Provider))
		}
		if _, err := d.PropagationTimeout.Parse(); err != nil {
			e.add("spec.acme.solvers.dns01.propagationTimeout", err.Error(), durationHint)
		}
		for i, ns := range d.Nameservers {
			if _, _, err := net.SplitHostPort(ns); err != nil {
				e.addf(index("spec.acme.solvers.dns01.nameservers", i), "write host:port, e.g. 10.0.0.53:53", "nameserver %s is not host:port", quote(ns))
			}
		}
	}
}
