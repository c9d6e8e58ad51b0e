package schemas

import "time"

// ReportVersion is the version of the JSON shape of `certfleet validate -o
// json` and `certfleet plan -o json`; schemas/jsonschema/report.json
// describes it. Fields are only ever added within a version.
const ReportVersion = "certfleet.dev/report/v1"

// Report is what validate and plan print: the verdict on a revision (and for
// plan, what merging it would change relative to a base).
type Report struct {
	// Version is ReportVersion.
	Version string `json:"version"`
	// Command is validate or plan.
	Command string `json:"command"`
	// Base is the revision a plan compares against (absent for validate).
	Base *ReportRevision `json:"base,omitempty"`
	// Head is the revision checked.
	Head    ReportRevision `json:"head"`
	Summary ReportSummary  `json:"summary"`
	// Changes are the certificates that differ between base and head, by ID (plan only).
	Changes []Change `json:"changes,omitempty"`
	// Waves are the rollout waves the merge's reissues would go out in, in order (plan only; absent without a catalog Rollout, or when fewer certificates are reissued than its minCertificates, which go at once).
	Waves []PlanWave `json:"waves,omitempty"`
	// Certificates holds the verdict on every certificate of the head, by ID.
	Certificates []CertificateVerdict `json:"certificates"`
	// Errors are invalid manifests of the head, by file and line.
	Errors Errors `json:"errors"`
	// BaseErrors are invalid manifests of the base, for context: they do not fail a plan.
	BaseErrors Errors `json:"baseErrors,omitempty"`
}

// PlanWave is one rollout wave of a plan.
type PlanWave struct {
	Name string `json:"name"`
	// Certificates are the IDs the wave reissues.
	Certificates []string `json:"certificates"`
}

// ReportRevision names a revision.
type ReportRevision struct {
	Ref    string    `json:"ref"`
	Hash   string    `json:"hash,omitempty"`
	Author string    `json:"author,omitempty"`
	Time   time.Time `json:"time,omitzero"`
}

// ReportSummary counts, for a first line of a pull-request comment.
type ReportSummary struct {
	Certificates int `json:"certificates"`
	Added        int `json:"added"`
	Removed      int `json:"removed"`
	Reissued     int `json:"reissued"`
	Updated      int `json:"updated"`
	Unchanged    int `json:"unchanged"`
	// Invalid counts invalid manifests (errors) of the head.
	Invalid int `json:"invalid"`
	// Denied counts certificates that policies or catalog checks deny.
	Denied   int `json:"denied"`
	Warnings int `json:"warnings"`
}

// ChangeAction classifies a change.
type ChangeAction string

const (
	// ActionAdd: a new certificate will be issued.
	ActionAdd ChangeAction = "add"
	// ActionRemove: the certificate is no longer declared (pruned only when the reconciler prunes).
	ActionRemove ChangeAction = "remove"
	// ActionReissue: a field the certificate carries changed; a new certificate is needed.
	ActionReissue ChangeAction = "reissue"
	// ActionUpdate: only the delivered objects change; the certificate stays.
	ActionUpdate ChangeAction = "update"
	// ActionNoop: nothing that matters changed (e.g. the file moved).
	ActionNoop ChangeAction = "no-op"
)

// Change is one certificate that differs between base and head.
type Change struct {
	ID     string       `json:"id"`
	Action ChangeAction `json:"action"`
	// File and Line locate the certificate in the head (the base for a removal).
	File   string        `json:"file"`
	Line   int           `json:"line"`
	Fields []FieldChange `json:"fields,omitempty"`
	// Restarts are the workloads (restart:) a delivery of the new
	// certificate restarts, "Kind namespace/name in cluster" (issue and reissue only).
	Restarts []string `json:"restarts,omitempty"`
}

// FieldChange is one field's old and new value.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	// Reissue is true when this field alone needs a new certificate.
	Reissue bool `json:"reissue"`
}

// CertificateVerdict is the verdict on one certificate of the head.
type CertificateVerdict struct {
	ID      string `json:"id"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Issuer  string `json:"issuer"`
	Allowed bool   `json:"allowed"`
	// Policies are the policies that select the certificate.
	Policies   []string           `json:"policies"`
	Violations []LocatedViolation `json:"violations,omitempty"`
	Warnings   []LocatedViolation `json:"warnings,omitempty"`
	// Effective is what the issued certificate will carry, as the catalog
	// shows the issuer's role and authority decide it; absent when the
	// catalog does not know the issuer or its authority.
	Effective *Effective `json:"effective,omitempty"`
}

// Effective is what a certificate signed through its issuer carries, where
// that can differ from what the certificate asked for.
type Effective struct {
	// TTL is the lifetime: the requested duration, capped by the issuer's max TTL.
	TTL string `json:"ttl"`
	// Usages are the key usages and extended key usages the issuer's role gives every certificate.
	Usages []KeyUsage `json:"usages"`
	// Subject is the distinguished name (RFC 4514): the common name only, as the role keeps nothing else of a request.
	Subject string `json:"subject"`
	// SignatureAlgorithm is decided by the authority's key.
	SignatureAlgorithm string `json:"signatureAlgorithm"`
	// Changed names the fields (ttl, usages, subject, signatureAlgorithm) whose effective value differs from what was asked.
	Changed []string `json:"changed,omitempty"`
}

// LocatedViolation is a violation with the line and column of its field.
type LocatedViolation struct {
	Violation
	Line   int `json:"line"`
	Column int `json:"column"`
}
