package schemas

// ServeConfig is certfleet.yaml, the configuration of `certfleet serve`
// (kind ServeConfig). Secrets are never written in it: it names the files
// that hold them.
type ServeConfig struct {
	TypeMeta `json:",inline"`
	// Source is the repository the daemon watches.
	Source ServeSource `json:"source"`
	// Backend holds the PKI, the catalog and the inventory.
	Backend ServeBackend `json:"backend"`
	// Kubeconfig is the kubeconfig for clusters with kubeconfigContext credentials. Default: $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// OutputDir is where relative directory targets are written. Default: the working directory.
	OutputDir string `json:"outputDir,omitempty"`
	// AllowedDirRoots are absolute directories that absolute directory target paths may lie under. Default: none, so absolute paths outside outputDir are refused.
	AllowedDirRoots []string `json:"allowedDirRoots,omitempty"`
	// AuditLog is the JSON-lines audit log. Default: audit.log in the local backend's directory, else certfleet-audit.log.
	AuditLog string `json:"auditLog,omitempty"`
	// Prune deletes orphaned targets. Default false.
	Prune bool `json:"prune,omitempty"`
	// MaxPruneShare is the largest share of managed targets one pass may prune. Default 0.5.
	MaxPruneShare float64 `json:"maxPruneShare,omitempty"`
	// ReportOnly observes and reports drift and changes nothing. Default false.
	ReportOnly bool `json:"reportOnly,omitempty"`
	// RenewalJitter spreads renewals over at most this long. Default 1h.
	RenewalJitter Duration `json:"renewalJitter,omitempty"`
	// Concurrency bounds parallel issuances and writes. Default 8.
	Concurrency int `json:"concurrency,omitempty"`
	// IssueRate caps issuances per second, so that a renewal storm (thousands of certificates due together, spread over renewalJitter) reaches Vault at a pace it can take. Keep it above the fleet size divided by the shortest renewBefore. Default 0: unlimited (bounded by concurrency only).
	IssueRate float64 `json:"issueRate,omitempty"`
	// KeepSuperseded leaves certificates replaced for a superseding reason (spec or issuer change, authority rotation) and pruned ones unrevoked. Default false: their serials go on the authority's CRL (Vault, where the issuer stores certificates) once the replacement is delivered.
	KeepSuperseded bool `json:"keepSuperseded,omitempty"`
	// Listen is the HTTP address of /healthz, /readyz, /metrics, /report and /hooks/git. Default :8080.
	Listen string `json:"listen,omitempty"`
	// Webhook verifies push notifications.
	Webhook ServeWebhook `json:"webhook,omitempty"`
	// LeaderElection lets several replicas run with one acting.
	LeaderElection ServeLeaderElection `json:"leaderElection,omitempty"`
	// RetryBackoff is the first retry delay of a failing certificate, doubled up to MaxRetryBackoff. Default 30s.
	RetryBackoff Duration `json:"retryBackoff,omitempty"`
	// MaxRetryBackoff caps the retry delay. Default 1h.
	MaxRetryBackoff Duration `json:"maxRetryBackoff,omitempty"`
	// ShutdownGrace is how long a pass in flight may go on after SIGTERM before it is cancelled; no new issuance or write starts after that, and the process exits. Default 25s (under Kubernetes' default terminationGracePeriodSeconds of 30).
	ShutdownGrace Duration `json:"shutdownGrace,omitempty"`
	// HTTP bounds the listener of Listen, so slow or stalled clients cannot hold the daemon's connections.
	HTTP ServeHTTP `json:"http,omitempty"`
	// Timeouts bound every call to an outside server, so a hung one fails that call, never the daemon.
	Timeouts ServeTimeouts `json:"timeouts,omitempty"`
	// Shard names this process's shard of a sharded fleet (--shard overrides it): it observes, decides and acts on that shard's certificates only, and elects its leader on a Lease of its own (leaderElection.name-<shard>). Default: unsharded, acting on every certificate.
	Shard string `json:"shard,omitempty"`
	// Sharding declares the fleet's shards; give every shard the same. Required with shard.
	Sharding *ServeSharding `json:"sharding,omitempty"`
}

// ServeSharding declares how certificates are spread over shards. The label certfleet.dev/shard on a Certificate or CertificateSet always wins; a label naming an undeclared shard leaves the certificate unclaimed (reported, never acted on or pruned).
type ServeSharding struct {
	// Shards are the fleet's shards: DNS labels, each declared once.
	Shards []string `json:"shards"`
	// By is how unlabelled certificates are spread: hash (rendezvous hashing of the certificate's ID over shards, so adding a shard moves about 1/n of them) or label (they go to default). Default hash.
	By string `json:"by,omitempty"`
	// Default is the shard of unlabelled certificates with by: label. Default: none, so they are unclaimed.
	Default string `json:"default,omitempty"`
}

// ServeTimeouts bound the daemon's calls to the servers it talks to.
type ServeTimeouts struct {
	// Git bounds one fetch of the repository (the ref listing and the clone). Default 2m.
	Git Duration `json:"git,omitempty"`
	// Vault bounds one request to Vault. Default 30s.
	Vault Duration `json:"vault,omitempty"`
	// Kubernetes bounds one request to a cluster's API server. Default 30s.
	Kubernetes Duration `json:"kubernetes,omitempty"`
}

// ServeHTTP bounds the daemon's HTTP listener.
type ServeHTTP struct {
	// ReadHeaderTimeout is how long a client may take to send a request's headers. Default 10s.
	ReadHeaderTimeout Duration `json:"readHeaderTimeout,omitempty"`
	// ReadTimeout is how long a client may take to send a whole request, headers and body. Default 30s.
	ReadTimeout Duration `json:"readTimeout,omitempty"`
	// WriteTimeout is how long writing a response may take, counted from the end of the request's headers. Default 60s.
	WriteTimeout Duration `json:"writeTimeout,omitempty"`
	// IdleTimeout is how long a kept-alive connection may wait for its next request. Default 60s.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// MaxConnections is how many connections are served at once; more wait to be accepted. Default 256.
	MaxConnections int `json:"maxConnections,omitempty"`
	// MaxBodyBytes is the largest webhook body accepted; a larger one is refused with 413 and never verified. Default 26214400 (25 MiB, GitHub's cap on webhook payloads).
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// TokenFile holds the bearer token that clients off loopback must send for the fleet page (/) and /report. Without it, only loopback clients are served them.
	TokenFile string `json:"tokenFile,omitempty"`
}

// ServeSource is the watched repository.
type ServeSource struct {
	// URL of the repository (https://, ssh://), or a local directory.
	URL string `json:"url"`
	// Ref is the branch, tag or commit. Default main.
	Ref string `json:"ref,omitempty"`
	// Path scopes the repository to a folder. Default: all of it.
	Path string `json:"path,omitempty"`
	// Interval between polls. Default 1m.
	Interval Duration `json:"interval,omitempty"`
	// Auth names the files holding credentials.
	Auth ServeSourceAuth `json:"auth,omitempty"`
	// Verify, when set, applies only revisions signed by a trusted key. Default: off.
	Verify *ServeSourceVerify `json:"verify,omitempty"`
}

// ServeSourceAuth names credential files.
type ServeSourceAuth struct {
	Username       string `json:"username,omitempty"`
	PasswordFile   string `json:"passwordFile,omitempty"`
	TokenFile      string `json:"tokenFile,omitempty"`
	SSHKeyFile     string `json:"sshKeyFile,omitempty"`
	KnownHostsFile string `json:"knownHostsFile,omitempty"`
	CAFile         string `json:"caFile,omitempty"`
	// InsecureHTTP allows credentials over plain HTTP to hosts other than loopback. Default false.
	InsecureHTTP bool `json:"insecureHTTP,omitempty"`
}

// ServeSourceVerify requires signed revisions.
type ServeSourceVerify struct {
	// TrustedKeyFiles are armored OpenPGP public key rings or authorized_keys files of SSH keys. A revision whose head commit none of them signed is never applied; the daemon keeps the last good one and reports why.
	TrustedKeyFiles []string `json:"trustedKeyFiles"`
}

// ServeBackend selects the backend.
type ServeBackend struct {
	// Type is vault or local. Default local.
	Type string `json:"type,omitempty"`
	// StateDir is the local backend's directory.
	StateDir string `json:"stateDir,omitempty"`
	// Vault settings; empty fields fall back to VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT, VAULT_TOKEN.
	Vault ServeVault `json:"vault,omitempty"`
}

// ServeVault reaches Vault.
type ServeVault struct {
	Address      string `json:"address,omitempty"`
	Namespace    string `json:"namespace,omitempty"`
	CatalogMount string `json:"catalogMount,omitempty"`
	CACert       string `json:"caCert,omitempty"`
	// TokenFile holds the token (a Vault agent sink, a mounted Secret). Default: $VAULT_TOKEN.
	TokenFile string `json:"tokenFile,omitempty"`
}

// ServeWebhook verifies pushes.
type ServeWebhook struct {
	// SecretFile holds the shared secret of the X-Hub-Signature-256 HMAC. Without it, /hooks/git is off.
	SecretFile string `json:"secretFile,omitempty"`
}

// ServeLeaderElection configures a Kubernetes Lease.
type ServeLeaderElection struct {
	Enabled bool `json:"enabled,omitempty"`
	// Namespace and Name of the Lease. Default certfleet-system / certfleet.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// KubeconfigContext of the cluster holding the Lease. Default: in-cluster configuration, else the current context.
	KubeconfigContext string `json:"kubeconfigContext,omitempty"`
	// LeaseDuration, RenewDeadline, RetryPeriod as client-go's leader election. Defaults 15s, 10s, 2s.
	LeaseDuration Duration `json:"leaseDuration,omitempty"`
	RenewDeadline Duration `json:"renewDeadline,omitempty"`
	RetryPeriod   Duration `json:"retryPeriod,omitempty"`
}

// KindServeConfig is the kind of certfleet.yaml.
const KindServeConfig = "ServeConfig"
