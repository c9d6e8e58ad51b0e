package schemas

import (
	"slices"
	"time"
)

// APIVersion is the apiVersion of every certfleet kind.
const APIVersion = "certfleet.dev/v1alpha1"

// The kinds. Catalog kinds are written by the Terraform provider and read by
// the reconciler; repository kinds are written by application teams in Git.
const (
	KindAuthority      = "Authority"
	KindIssuer         = "Issuer"
	KindPolicy         = "Policy"
	KindCluster        = "Cluster"
	KindRollout        = "Rollout"
	KindCertificate    = "Certificate"
	KindCertificateSet = "CertificateSet"
	KindTrustBundle    = "TrustBundle"
)

// TypeMeta names an object's kind and apiVersion.
type TypeMeta struct {
	// APIVersion must be certfleet.dev/v1alpha1.
	APIVersion string `json:"apiVersion"`
	// Kind is one of Authority, Issuer, Policy, Cluster, Rollout, Certificate, CertificateSet, TrustBundle.
	Kind string `json:"kind"`
}

// ObjectMeta is the metadata every object carries.
type ObjectMeta struct {
	// Name identifies the object within its kind (a DNS-1123 subdomain).
	Name string `json:"name"`
	// Namespace optionally groups repository objects (for example by team); part of a certificate's ID.
	Namespace string `json:"namespace,omitempty"`
	// Labels are matched by policy selectors and cluster selectors.
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are free-form notes; certfleet does not interpret them.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Subject holds the distinguished-name fields beyond the common name.
type Subject struct {
	Organizations       []string `json:"organizations,omitempty"`
	OrganizationalUnits []string `json:"organizationalUnits,omitempty"`
	Countries           []string `json:"countries,omitempty"`
	Localities          []string `json:"localities,omitempty"`
	Provinces           []string `json:"provinces,omitempty"`
	StreetAddresses     []string `json:"streetAddresses,omitempty"`
	PostalCodes         []string `json:"postalCodes,omitempty"`
}

// Duration is a Go duration ("720h", "90m") that also accepts days ("90d",
// "1d12h"). It is kept as written, so errors can quote it; Parse reads it.
type Duration string

// ---------------------------------------------------------------------------
// Catalog kinds

// Authority is a certificate authority in a Vault PKI mount (or the local
// backend). Its private key never leaves the backend.
type Authority struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     AuthoritySpec   `json:"spec"`
	Status   AuthorityStatus `json:"status,omitempty"`
}

// AuthorityType is root or intermediate.
type AuthorityType string

const (
	AuthorityRoot         AuthorityType = "root"
	AuthorityIntermediate AuthorityType = "intermediate"
)

// AuthoritySpec is what the platform team declares for an authority.
type AuthoritySpec struct {
	// Type is root (self-signed) or intermediate (signed by Parent).
	Type AuthorityType `json:"type"`
	// Parent names the authority that signs an intermediate; empty for a root.
	Parent string `json:"parent,omitempty"`
	// Mount is the Vault PKI mount path that holds the authority.
	Mount string `json:"mount"`
	// CommonName is the CA certificate's common name.
	CommonName string `json:"commonName"`
	// Subject holds further distinguished-name fields of the CA certificate.
	Subject *Subject `json:"subject,omitempty"`
	// KeyType is rsa, ec or ed25519 (Vault's names). Default ec.
	KeyType string `json:"keyType,omitempty"`
	// KeyBits is 2048/3072/4096 for rsa, 256/384/521 for ec, 0 for ed25519. Default 256 for ec, 2048 for rsa.
	KeyBits int `json:"keyBits,omitempty"`
	// TTL is the CA certificate's lifetime. Default 87600h (10 years) for a root, 43800h for an intermediate.
	TTL Duration `json:"ttl,omitempty"`
	// MaxPathLength limits how many intermediates may follow; -1 (default) means no limit.
	MaxPathLength *int `json:"maxPathLength,omitempty"`
	// PermittedDNSDomains constrains the names that certificates under this CA may carry.
	PermittedDNSDomains []string `json:"permittedDNSDomains,omitempty"`
	// IssuingCertificates are URLs where the CA certificate is published (AIA).
	IssuingCertificates []string `json:"issuingCertificates,omitempty"`
	// CRLDistributionPoints are URLs of the CRL. On Vault, a URL naming the mount's CRL (.../v1/<mount>/crl) is written as the CRL of the issuer that signs each certificate (.../v1/<mount>/issuer/<issuer id>/crl/der), which keeps listing its revoked serials after a rotation; other URLs are written as given.
	CRLDistributionPoints []string `json:"crlDistributionPoints,omitempty"`
	// OCSPServers are URLs of OCSP responders.
	OCSPServers []string `json:"ocspServers,omitempty"`
	// RotateBefore is how long before expiry the authority is rotated (a new issuer in the same mount). Default: a third of the TTL.
	RotateBefore Duration `json:"rotateBefore,omitempty"`
	// RetirePreviousIssuer says what becomes of an issuer rotation replaced
	// once no delivered certificate chains to it any more and it has left
	// every trust bundle: keep (default) leaves it in the mount until it
	// expires; disable leaves it signing only its CRL (Vault usage
	// read-only,crl-signing), so it can never issue again while the
	// serials it signed and certfleet revoked stay published; delete
	// removes it from the mount, after it has been disabled for as long as
	// a certificate it signed is revoked and not yet expired.
	RetirePreviousIssuer RetireMode `json:"retirePreviousIssuer,omitempty"`
}

// RetireMode is what becomes of a retired previous issuer: keep, disable or delete.
type RetireMode string

const (
	RetireKeep    RetireMode = "keep"
	RetireDisable RetireMode = "disable"
	RetireDelete  RetireMode = "delete"
)

// RetireModes lists the modes, in the order docs name them.
var RetireModes = []RetireMode{RetireKeep, RetireDisable, RetireDelete}

// Retire is the authority's RetirePreviousIssuer, keep when unset.
func (s AuthoritySpec) Retire() RetireMode {
	if s.RetirePreviousIssuer == "" {
		return RetireKeep
	}
	return s.RetirePreviousIssuer
}

// AuthorityStatus is what the backend reports about an authority: public data only.
type AuthorityStatus struct {
	// IssuerID is the backend's ID of the current issuer.
	IssuerID string `json:"issuerID,omitempty"`
	// Certificate is the current CA certificate, PEM.
	Certificate string `json:"certificate,omitempty"`
	// CAChain is the chain above the CA certificate up to the root, PEM, nearest first.
	CAChain []string `json:"caChain,omitempty"`
	// SerialNumber of the CA certificate, colon-separated hex as Vault prints it.
	SerialNumber string     `json:"serialNumber,omitempty"`
	NotBefore    *time.Time `json:"notBefore,omitempty"`
	NotAfter     *time.Time `json:"notAfter,omitempty"`
	// PreviousIssuers are issuers replaced by rotation that are still valid: workloads must keep trusting them.
	PreviousIssuers []PreviousIssuer `json:"previousIssuers,omitempty"`
}

// PreviousIssuer is a rotated-out issuer kept until it expires.
type PreviousIssuer struct {
	IssuerID    string    `json:"issuerID"`
	Certificate string    `json:"certificate"`
	NotAfter    time.Time `json:"notAfter"`
}

// Issuer is a named issuing profile: an authority and a Vault role with its constraints.
type Issuer struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     IssuerSpec `json:"spec"`
}

// IssuerSpec mirrors the Vault PKI role the issuer signs through, or,
// with acme set, names the ACME CA that issues instead.
type IssuerSpec struct {
	// Authority names the Authority that signs. Required unless acme is set; empty with acme.
	Authority string `json:"authority,omitempty"`
	// ACME makes this issuer order certificates from an ACME CA (Let's
	// Encrypt, ZeroSSL, step-ca, Vault's ACME) instead of an Authority. The
	// role fields below do not apply to it; policies do.
	ACME *ACMEIssuer `json:"acme,omitempty"`
	// Role is the Vault role's name. Default: the issuer's name.
	Role string `json:"role,omitempty"`
	// AllowedDomains are the domains the role may issue for.
	AllowedDomains []string `json:"allowedDomains,omitempty"`
	// AllowSubdomains allows names below AllowedDomains. Default false.
	AllowSubdomains bool `json:"allowSubdomains,omitempty"`
	// AllowGlobDomains lets AllowedDomains hold globs. Default false.
	AllowGlobDomains bool `json:"allowGlobDomains,omitempty"`
	// AllowBareDomains allows the AllowedDomains themselves. Default false.
	AllowBareDomains bool `json:"allowBareDomains,omitempty"`
	// AllowWildcardCertificates allows wildcard names. Default false.
	AllowWildcardCertificates bool `json:"allowWildcardCertificates,omitempty"`
	// AllowAnyName lets the role sign any name (policies still apply). Default false.
	AllowAnyName bool `json:"allowAnyName,omitempty"`
	// AllowedURISANs are URI SAN globs the role allows (SPIFFE IDs among them).
	AllowedURISANs []string `json:"allowedURISANs,omitempty"`
	// AllowIPSANs allows IP address SANs. Default false.
	AllowIPSANs bool `json:"allowIPSANs,omitempty"`
	// KeyType is rsa, ec, ed25519 or any. Default any.
	KeyType string `json:"keyType,omitempty"`
	// KeyBits is the minimum key size for the key type; 0 lets Vault choose.
	KeyBits int `json:"keyBits,omitempty"`
	// TTL is the default certificate lifetime.
	TTL Duration `json:"ttl,omitempty"`
	// MaxTTL is the longest certificate lifetime the role signs.
	MaxTTL Duration `json:"maxTTL,omitempty"`
	// ServerFlag allows server auth usage. Default true.
	ServerFlag *bool `json:"serverFlag,omitempty"`
	// ClientFlag allows client auth usage. Default true.
	ClientFlag *bool `json:"clientFlag,omitempty"`
	// ExtKeyUsage are further extended key usages, Vault's names (e.g. CodeSigning).
	ExtKeyUsage []string `json:"extKeyUsage,omitempty"`
	// NoStore keeps issued certificates out of Vault's storage. Default false.
	NoStore bool `json:"noStore,omitempty"`
}

// ACMEIssuer is where and how an ACME issuer orders certificates.
type ACMEIssuer struct {
	// Server is the ACME directory URL (https://acme-v02.api.letsencrypt.org/directory).
	Server string `json:"server"`
	// Email is the account's contact address. Optional.
	Email string `json:"email,omitempty"`
	// ExternalAccountBinding binds the account to one at the CA (ZeroSSL,
	// Sectigo, step-ca); required by some CAs. Its HMAC key is read from a
	// file or Vault KV, never written here.
	ExternalAccountBinding *ACMEExternalAccountBinding `json:"externalAccountBinding,omitempty"`
	// CABundle is PEM CA certificates to trust for the directory's TLS, on
	// top of the system's. Optional.
	CABundle string `json:"caBundle,omitempty"`
	// PreferredChain is the common name of the root to prefer when the CA
	// offers alternate chains. Default: the CA's default chain.
	PreferredChain string `json:"preferredChain,omitempty"`
	// Profile is the ACME profile to order (draft-ietf-acme-profiles). Default: the CA's default.
	Profile string `json:"profile,omitempty"`
	// Solvers say how certfleet proves control of the names. At least one.
	// With both, a name whose order offers HTTP-01 uses it, wildcards use DNS-01.
	Solvers ACMESolvers `json:"solvers"`
}

// ACMEExternalAccountBinding is a CA's account binding: a key ID and an
// HMAC key from exactly one of hmacKeyFile and hmacKeyVaultKV.
type ACMEExternalAccountBinding struct {
	// KeyID is the CA's EAB key identifier.
	KeyID string `json:"keyID"`
	// HMACKeyFile is a file holding the base64url HMAC key (a mounted Secret).
	HMACKeyFile string `json:"hmacKeyFile,omitempty"`
	// HMACKeyVaultKV is a KV v2 secret holding the key, as mount/path#field
	// (secret/acme/zerossl#hmac); read with the Vault backend's token.
	HMACKeyVaultKV string `json:"hmacKeyVaultKV,omitempty"`
}

// ACMESolvers are the challenge types an ACME issuer answers.
type ACMESolvers struct {
	// HTTP01 answers /.well-known/acme-challenge/ on certfleet's own listener
	// (serve's, or --acme-http01-listen for one-shot runs); port 80 of
	// every name must reach it.
	HTTP01 *ACMEHTTP01 `json:"http01,omitempty"`
	// DNS01 publishes TXT records through a DNS provider of the ACME library (lego).
	DNS01 *ACMEDNS01 `json:"dns01,omitempty"`
}

// ACMEHTTP01 is the HTTP-01 solver; it has no settings yet.
type ACMEHTTP01 struct{}

// ACMEDNS01 is the DNS-01 solver.
type ACMEDNS01 struct {
	// Provider is the lego DNS provider's name (exec, httpreq,
	// cloudflare, …); it reads its usual environment variables
	// (CLOUDFLARE_DNS_API_TOKEN, EXEC_PATH, …), so no credential is written here.
	Provider string `json:"provider"`
	// Nameservers are the resolvers (host:port) the propagation check asks
	// before the CA is told to look. Default: the system's.
	Nameservers []string `json:"nameservers,omitempty"`
	// PropagationTimeout bounds the wait for the record to be visible. Default: the provider's own (lego's 1m for most).
	PropagationTimeout Duration `json:"propagationTimeout,omitempty"`
	// SkipAuthoritativeCheck checks only the nameservers above, not the
	// zone's authoritative ones (split-horizon DNS). Default false.
	SkipAuthoritativeCheck bool `json:"skipAuthoritativeCheck,omitempty"`
}

// RoleName is the Vault role the issuer signs through.
func (s IssuerSpec) RoleName(issuer string) string {
	if s.Role != "" {
		return s.Role
	}
	return issuer
}

// Server reports whether server auth is allowed (default true).
func (s IssuerSpec) Server() bool { return s.ServerFlag == nil || *s.ServerFlag }

// Client reports whether client auth is allowed (default true).
func (s IssuerSpec) Client() bool { return s.ClientFlag == nil || *s.ClientFlag }

// Policy says which certificates it governs and what they may look like.
type Policy struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     PolicySpec `json:"spec"`
}

// Enforcement of a policy: deny (default) fails the certificate, warn reports.
type Enforcement string

const (
	EnforcementDeny Enforcement = "deny"
	EnforcementWarn Enforcement = "warn"
)

// PolicySpec is the selector and the rules of a policy. An empty rule list
// allows anything for that rule, except where the field says otherwise.
type PolicySpec struct {
	// Selector chooses the certificates the policy governs; an empty selector governs all.
	Selector PolicySelector `json:"selector,omitempty"`
	// DNSNames are allowed DNS name patterns: "*" matches one label, "**" one or more ("**.svc.cluster.local").
	DNSNames []string `json:"dnsNames,omitempty"`
	// IPRanges are allowed IP CIDRs ("10.0.0.0/8").
	IPRanges []string `json:"ipRanges,omitempty"`
	// URIs are allowed URI / SPIFFE ID patterns: "*" matches within one path segment, "**" across ("spiffe://fleet.test/ns/payments/**").
	URIs []string `json:"uris,omitempty"`
	// EmailAddresses are allowed e-mail patterns ("*@payments.example.com").
	EmailAddresses []string `json:"emailAddresses,omitempty"`
	// Subject constrains the subject's organizations and organizational units (patterns).
	Subject *SubjectRule `json:"subject,omitempty"`
	// KeyAlgorithms are the allowed private key algorithms, each with a minimum size.
	KeyAlgorithms []KeyAlgorithmRule `json:"keyAlgorithms,omitempty"`
	// MaxDuration is the longest lifetime allowed.
	MaxDuration Duration `json:"maxDuration,omitempty"`
	// MinRenewBefore is the shortest renewBefore allowed (renewal must leave at least this much time).
	MinRenewBefore Duration `json:"minRenewBefore,omitempty"`
	// AllowedUsages are the usages a certificate may ask for.
	AllowedUsages []KeyUsage `json:"allowedUsages,omitempty"`
	// RequiredUsages are usages a certificate must ask for.
	RequiredUsages []KeyUsage `json:"requiredUsages,omitempty"`
	// AllowWildcards allows "*." DNS names. Default false.
	AllowWildcards bool `json:"allowWildcards,omitempty"`
	// MaxSANs is the most subject alternative names (all kinds together) allowed; 0 means no limit.
	MaxSANs int `json:"maxSANs,omitempty"`
	// Clusters are allowed target cluster names (globs).
	Clusters []string `json:"clusters,omitempty"`
	// Namespaces are allowed target namespaces (globs).
	Namespaces []string `json:"namespaces,omitempty"`
	// VaultKVPaths are allowed Vault KV targets, "<mount>/<path>" globs ("*" within a segment, "**" across). Default: any but the catalog's mount, which is always refused.
	VaultKVPaths []string `json:"vaultKVPaths,omitempty"`
	// DirectoryPaths are allowed directory targets, globs over the cleaned path as written (relative to the output root, or absolute). Default: any.
	DirectoryPaths []string `json:"directoryPaths,omitempty"`
	// Enforcement is deny (default) or warn.
	Enforcement Enforcement `json:"enforcement,omitempty"`
}

// PolicySelector chooses certificates; every non-empty field must match.
type PolicySelector struct {
	// Issuers are the issuer names whose certificates the policy governs.
	Issuers []string `json:"issuers,omitempty"`
	// Paths are repository path globs ("teams/payments/**").
	Paths []string `json:"paths,omitempty"`
	// MatchLabels must all be among the certificate's labels.
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// SubjectRule constrains subject fields with patterns.
type SubjectRule struct {
	Organizations       []string `json:"organizations,omitempty"`
	OrganizationalUnits []string `json:"organizationalUnits,omitempty"`
}

// KeyAlgorithmRule allows one private key algorithm from a minimum size up.
type KeyAlgorithmRule struct {
	// Algorithm is RSA, ECDSA or Ed25519.
	Algorithm KeyAlgorithm `json:"algorithm"`
	// MinSize is the smallest key size allowed (RSA bits, ECDSA curve size); 0 means the floor.
	MinSize int `json:"minSize,omitempty"`
}

// Cluster is a Kubernetes cluster certificates are delivered to. It holds no
// token: credentials come from Vault KV or a kubeconfig context.
type Cluster struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     ClusterSpec `json:"spec"`
}

// ClusterSpec says where a cluster is and how to reach it.
type ClusterSpec struct {
	// Server is the API server's URL.
	Server string `json:"server,omitempty"`
	// CACertificate is the PEM certificate that verifies the API server.
	CACertificate string `json:"caCertificate,omitempty"`
	// Credentials says where the reconciler finds a token; exactly one field.
	Credentials ClusterCredentials `json:"credentials"`
}

// ClusterCredentials points at credentials; it never holds them.
type ClusterCredentials struct {
	// VaultKVPath is a KV v2 path ("<mount>/<path>") whose "token" field is a bearer token.
	VaultKVPath string `json:"vaultKVPath,omitempty"`
	// KubeconfigContext is a context in the reconciler's kubeconfig.
	KubeconfigContext string `json:"kubeconfigContext,omitempty"`
}

// Rollout paces mass reissues — an authority rotation, and a spec or issuer
// change touching many certificates — in waves of clusters chosen by label,
// so a bad new certificate reaches staging before production. Ordinary
// renewals never wait for it. A catalog holds at most one, because plan,
// drift, reconcile and the daemon must all follow the same waves.
type Rollout struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     RolloutSpec `json:"spec"`
}

// RolloutSpec says how a mass reissue proceeds.
type RolloutSpec struct {
	// Waves, in order: a wave starts once the one before it has finished and soaked. A certificate belongs to the latest wave any of its clusters falls in (a cluster falls in the first wave whose clusterSelector matches its labels); the last wave also takes what no wave selects, such as directory and Vault KV targets.
	Waves []RolloutWave `json:"waves"`
	// MaxSharePerPass is the largest share (0 < share <= 1) of a wave's certificates reissued by one pass; at least one is. Default 1: the whole wave at once.
	MaxSharePerPass float64 `json:"maxSharePerPass,omitempty"`
	// PauseOnFailures pauses the rollout when more than this many certificates of the running wave failed their last attempt: no further certificate starts (the failed ones retry on their backoff) until they succeed. Default 0: the first failure pauses it.
	PauseOnFailures int `json:"pauseOnFailures,omitempty"`
	// Soak is the least time between a wave's last reissue and the next wave's start. Default 0.
	Soak Duration `json:"soak,omitempty"`
	// MinCertificates is the fewest certificates a spec or issuer change must touch in one pass for the rollout to govern it; a smaller change (one team editing its certificate) is reissued at once. An authority rotation is always governed, and so is every such change while a rollout is under way. Default 10.
	MinCertificates int `json:"minCertificates,omitempty"`
}

// RolloutWave is one wave of a rollout.
type RolloutWave struct {
	// Name identifies the wave in drift, the report and plan.
	Name string `json:"name"`
	// ClusterSelector picks the wave's clusters by their labels. Only the last wave may omit it.
	ClusterSelector *LabelSelector `json:"clusterSelector,omitempty"`
}

// DefaultRolloutMinCertificates is MinCertificates when it is not set.
const DefaultRolloutMinCertificates = 10

// EffectiveMaxSharePerPass is MaxSharePerPass, 1 when unset.
func (s *RolloutSpec) EffectiveMaxSharePerPass() float64 {
	if s.MaxSharePerPass <= 0 {
		return 1
	}
	return s.MaxSharePerPass
}

// EffectiveMinCertificates is MinCertificates, DefaultRolloutMinCertificates when unset.
func (s *RolloutSpec) EffectiveMinCertificates() int {
	if s.MinCertificates <= 0 {
		return DefaultRolloutMinCertificates
	}
	return s.MinCertificates
}

// ---------------------------------------------------------------------------
// Repository kinds

// Certificate is a certificate an application team asks for.
type Certificate struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     CertificateSpec `json:"spec"`
}

// KeyUsage is a key usage in cert-manager's spelling ("server auth").
type KeyUsage string

// KeyAlgorithm is RSA, ECDSA or Ed25519.
type KeyAlgorithm string

const (
	RSA     KeyAlgorithm = "RSA"
	ECDSA   KeyAlgorithm = "ECDSA"
	Ed25519 KeyAlgorithm = "Ed25519"
)

// CertificateSpec is what a certificate looks like and where it goes.
type CertificateSpec struct {
	// Issuer names the catalog Issuer that signs. Required.
	Issuer string `json:"issuer"`
	// CommonName is the subject's common name.
	CommonName string `json:"commonName,omitempty"`
	// DNSNames are DNS SANs; a leading "*." makes a wildcard.
	DNSNames []string `json:"dnsNames,omitempty"`
	// IPAddresses are IP SANs.
	IPAddresses []string `json:"ipAddresses,omitempty"`
	// URIs are URI SANs, SPIFFE IDs ("spiffe://trust.domain/path") among them.
	URIs []string `json:"uris,omitempty"`
	// EmailAddresses are e-mail SANs.
	EmailAddresses []string `json:"emailAddresses,omitempty"`
	// Subject holds further distinguished-name fields.
	Subject *Subject `json:"subject,omitempty"`
	// Usages in cert-manager's names. Default: digital signature, key encipherment, server auth.
	Usages []KeyUsage `json:"usages,omitempty"`
	// Duration is the requested lifetime. Default 2160h (90d).
	Duration Duration `json:"duration,omitempty"`
	// RenewBefore is how long before expiry to renew. Default: at 2/3 of the lifetime.
	RenewBefore Duration `json:"renewBefore,omitempty"`
	// RenewBeforePercentage is renewBefore as a percentage of the lifetime (1-99); exclusive with RenewBefore.
	RenewBeforePercentage *int `json:"renewBeforePercentage,omitempty"`
	// SignatureAlgorithm optionally pins the signature algorithm (e.g. SHA256WithRSA, ECDSAWithSHA384); SHA-1 and MD5 are never allowed.
	SignatureAlgorithm string `json:"signatureAlgorithm,omitempty"`
	// PrivateKey is how the key is generated and encoded.
	PrivateKey *PrivateKey `json:"privateKey,omitempty"`
	// Targets are where the certificate is delivered.
	Targets []Target `json:"targets,omitempty"`
	// Suspend stops issuance and renewal; what was delivered stays. Default false.
	Suspend bool `json:"suspend,omitempty"`
}

// RotationPolicy says whether a renewal makes a new key.
type RotationPolicy string

const (
	RotationAlways RotationPolicy = "Always"
	RotationNever  RotationPolicy = "Never"
)

// PrivateKey is the key spec of a certificate.
type PrivateKey struct {
	// Algorithm is RSA, ECDSA (default) or Ed25519.
	Algorithm KeyAlgorithm `json:"algorithm,omitempty"`
	// Size is RSA bits (2048 default, 3072, 4096) or the ECDSA curve (256 default, 384, 521); ignored for Ed25519.
	Size int `json:"size,omitempty"`
	// RotationPolicy: Always (default) makes a new key on every issuance; Never reuses the delivered key.
	RotationPolicy RotationPolicy `json:"rotationPolicy,omitempty"`
	// Encoding of tls.key: PKCS1 (default for RSA; SEC1 for ECDSA) or PKCS8.
	Encoding string `json:"encoding,omitempty"`
}

// Target is one place a certificate is delivered; exactly one of
// kubernetes, vaultKV and directory is set.
type Target struct {
	Kubernetes *KubernetesTarget `json:"kubernetes,omitempty"`
	VaultKV    *VaultKVTarget    `json:"vaultKV,omitempty"`
	Directory  *DirectoryTarget  `json:"directory,omitempty"`
	// Probe dials the workload this target feeds, to check that it serves the certificate delivered (optional).
	Probe *Probe `json:"probe,omitempty"`
	// Restart names the workload a Kubernetes Secret target feeds, restarted (as `kubectl rollout restart` does) once per new certificate delivered, for workloads that do not reload their certificate (optional).
	Restart *Restart `json:"restart,omitempty"`
}

// Restart is a workload in a Kubernetes Secret target's namespace that
// reads the Secret only when it starts: after a delivery of a new
// certificate (or when the probe finds the old one still served past its
// grace) certfleet sets the annotation `kubectl rollout restart` sets on
// its pod template, once per serial.
type Restart struct {
	// Kind is Deployment, StatefulSet or DaemonSet. Required.
	Kind WorkloadKind `json:"kind"`
	// Name is the workload's name in the target's namespace. Required.
	Name string `json:"name"`
}

// WorkloadKind is a kind of apps/v1 workload certfleet can restart.
type WorkloadKind string

const (
	Deployment  WorkloadKind = "Deployment"
	StatefulSet WorkloadKind = "StatefulSet"
	DaemonSet   WorkloadKind = "DaemonSet"
)

// WorkloadKinds are the kinds a restart may name.
var WorkloadKinds = []WorkloadKind{Deployment, StatefulSet, DaemonSet}

// Probe is a TLS endpoint serving a target's certificate: after a delivery,
// passes dial it and compare the served leaf's serial with the delivered one.
type Probe struct {
	// Address is the endpoint's host:port. Required.
	Address string `json:"address"`
	// ServerName is the SNI name sent. Default: the address's host.
	ServerName string `json:"serverName,omitempty"`
	// Grace is how long after a delivery the workload may still serve the previous certificate (NotServed after). Default 5m.
	Grace Duration `json:"grace,omitempty"`
}

// DefaultProbeGrace is a probe's grace when it names none.
const DefaultProbeGrace = 5 * time.Minute

// EffectiveGrace is the probe's grace with the default filled in (an
// invalid one is rejected by validation; here it is the default).
func (p *Probe) EffectiveGrace() time.Duration {
	if g, err := p.Grace.Parse(); err == nil && g > 0 {
		return g
	}
	return DefaultProbeGrace
}

// KubernetesTarget is a kubernetes.io/tls Secret in one or more clusters.
type KubernetesTarget struct {
	// Cluster names a catalog Cluster; exclusive with ClusterSelector.
	Cluster string `json:"cluster,omitempty"`
	// ClusterSelector picks catalog Clusters by label; one Secret per cluster.
	ClusterSelector *LabelSelector `json:"clusterSelector,omitempty"`
	// Namespace of the Secret. Required.
	Namespace string `json:"namespace"`
	// SecretName of the Secret. Required.
	SecretName string `json:"secretName"`
	// SecretTemplate adds labels and annotations to the Secret.
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`
}

// LabelSelector matches labels exactly.
type LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// SecretTemplate is metadata copied onto a delivered Secret.
type SecretTemplate struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// VaultKVTarget is a KV v2 secret holding tls.crt, tls.key and ca.crt.
type VaultKVTarget struct {
	// Mount is the KV v2 mount. Required.
	Mount string `json:"mount"`
	// Path within the mount. Required.
	Path string `json:"path"`
}

// DirectoryTarget is a directory that receives tls.crt, tls.key and ca.crt.
type DirectoryTarget struct {
	// Path of the directory; relative paths are under the reconciler's output root.
	Path string `json:"path"`
}

// CertificateSet fans one certificate template out over a list of items.
type CertificateSet struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta         `json:"metadata"`
	Spec     CertificateSetSpec `json:"spec"`
}

// CertificateSetSpec is a template and the variables of each certificate.
type CertificateSetSpec struct {
	// NameTemplate names each certificate, with ${var} placeholders ("${service}-tls").
	NameTemplate string `json:"nameTemplate"`
	// Template is a Certificate spec whose strings may hold ${var} placeholders.
	Template map[string]any `json:"template"`
	// Items are the variables of each certificate; an undefined variable is an error.
	Items []map[string]string `json:"items"`
}

// TrustBundle publishes authorities' CA certificates where workloads read them.
type TrustBundle struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta      `json:"metadata"`
	Spec     TrustBundleSpec `json:"spec"`
}

// TrustBundleSpec names authorities and targets.
type TrustBundleSpec struct {
	// Authorities whose CA certificates (current and still-valid previous ones) are published.
	Authorities []string `json:"authorities"`
	// Targets where the bundle is written.
	Targets []TrustBundleTarget `json:"targets"`
}

// TrustBundleTarget is one place a bundle is written; exactly one field is set.
type TrustBundleTarget struct {
	Kubernetes *TrustBundleKubernetesTarget `json:"kubernetes,omitempty"`
	Directory  *DirectoryTarget             `json:"directory,omitempty"`
}

// TrustBundleKubernetesTarget is a ConfigMap or Secret holding the bundle.
type TrustBundleKubernetesTarget struct {
	Cluster         string         `json:"cluster,omitempty"`
	ClusterSelector *LabelSelector `json:"clusterSelector,omitempty"`
	Namespace       string         `json:"namespace"`
	// Kind is ConfigMap (default) or Secret.
	Kind string `json:"kind,omitempty"`
	// Name of the ConfigMap or Secret.
	Name string `json:"name"`
	// Key holding the PEM bundle. Default ca.crt.
	Key string `json:"key,omitempty"`
}

// WithRole is the declared spec with every role setting that held — the role
// as the backend holds it — does not match replaced by the held one: what a
// refresh shows as drift. Settings that mean the same are kept as declared:
// lifetimes equal in length ("72h", "3d", Vault's seconds), a key size of 0
// and the size Vault fills in for the key type, "" and "any", no list and an
// empty one.
func (s IssuerSpec) WithRole(held IssuerSpec) IssuerSpec {
	out := s
	sameList := func(a, b []string) bool { return slices.Equal(a, b) || len(a)+len(b) == 0 }
	if !sameList(s.AllowedDomains, held.AllowedDomains) {
		out.AllowedDomains = held.AllowedDomains
	}
	if !sameList(s.AllowedURISANs, held.AllowedURISANs) {
		out.AllowedURISANs = held.AllowedURISANs
	}
	if !sameList(s.ExtKeyUsage, held.ExtKeyUsage) {
		out.ExtKeyUsage = held.ExtKeyUsage
	}
	out.AllowSubdomains, out.AllowGlobDomains = held.AllowSubdomains, held.AllowGlobDomains
	out.AllowBareDomains, out.AllowWildcardCertificates = held.AllowBareDomains, held.AllowWildcardCertificates
	out.AllowAnyName, out.AllowIPSANs, out.NoStore = held.AllowAnyName, held.AllowIPSANs, held.NoStore
	if s.Server() != held.Server() {
		out.ServerFlag = held.ServerFlag
	}
	if s.Client() != held.Client() {
		out.ClientFlag = held.ClientFlag
	}
	keyType := func(t string) string {
		if t == "" {
			return "any"
		}
		return t
	}
	if keyType(s.KeyType) != keyType(held.KeyType) {
		out.KeyType = held.KeyType
	}
	// Vault stores the size it chose for a role that left it to Vault.
	keyBits := func(t string, bits int) int {
		if bits != 0 {
			return bits
		}
		return map[string]int{"ec": 256, "rsa": 2048}[keyType(t)]
	}
	if keyBits(s.KeyType, s.KeyBits) != keyBits(held.KeyType, held.KeyBits) {
		out.KeyBits = held.KeyBits
	}
	sameLength := func(a, b Duration) bool {
		x, errA := a.Parse()
		y, errB := b.Parse()
		return errA == nil && errB == nil && x == y
	}
	if !sameLength(s.TTL, held.TTL) {
		out.TTL = held.TTL
	}
	if !sameLength(s.MaxTTL, held.MaxTTL) {
		out.MaxTTL = held.MaxTTL
	}
	return out
}
