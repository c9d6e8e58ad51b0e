// Package inventory keeps a record of every certificate certfleet issued —
// serial, validity, renewal time, issuer, source revision and author,
// targets — in the backend, in pages (inventory/pages/<xx>, see pages.go),
// and an append-only audit log
// of every issuance, renewal, update and prune. Neither ever holds a key.
package inventory

import (
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// Entry is what the inventory knows of one certificate.
type Entry struct {
	ID        string    `json:"id"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	RenewAt   time.Time `json:"renewAt"`
	IssueHash string    `json:"issueHash"`
	// File is the repository path the certificate is declared in.
	File     string `json:"file"`
	Revision string `json:"revision"`
	// Author of the commit that the certificate was last issued from: its owner.
	Author     string   `json:"author,omitempty"`
	CommonName string   `json:"commonName,omitempty"`
	DNSNames   []string `json:"dnsNames,omitempty"`
	// The other names (IP addresses, URIs, email addresses) are in Rare.
	Targets []Target `json:"targets"`
	// Effective is what the issuer makes of the request (TTL, usages,
	// subject, signature algorithm), where it differs from what was asked.
	Effective *schemas.Effective `json:"effective,omitempty"`
	UpdatedAt time.Time          `json:"updatedAt"`
	// Shard is the shard that owns the certificate: the only one that acts
	// on it ("": the unsharded process). The entry is kept in that shard's
	// pages, which no other shard writes.
	Shard string `json:"shard,omitempty"`
	// Fingerprint is the target.Bundle.Fingerprint of the bundle certfleet
	// last wrote to the targets (its key checked against its leaf): a
	// target still holding exactly those bytes needs no key parsed
	// (target.Observed.Recorded). A hash of the whole bundle, not of the
	// key alone, which it reveals nothing of; kept out of reports and logs
	// all the same. Empty in entries recorded before it existed.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Rare holds what few entries carry — failures and retries, serials
	// waiting to be revoked, moves between shards — behind one pointer (nil
	// while all of it is zero): a pass holds every entry of the fleet at
	// once, and these fields were most of an entry's size. Its fields are
	// promoted, so the stored JSON is the same as when they were Entry's
	// own; read them through the methods below (a nil Rare reads as zero),
	// set them through Edit.
	*Rare
}

// Rare is the part of an Entry that few entries carry (see Entry.Rare).
type Rare struct {
	// IPAddresses, URIs and EmailAddresses are the certificate's names
	// besides its DNS names: most certificates have none, and the three
	// slices (72 bytes) put every Entry a size class up (416 bytes, not 320).
	IPAddresses    []string `json:"ipAddresses,omitempty"`
	URIs           []string `json:"uris,omitempty"`
	EmailAddresses []string `json:"emailAddresses,omitempty"`
	// FailingSince is set while issuing or delivering fails, with what
	// failed last time.
	FailingSince *time.Time `json:"failingSince,omitempty"`
	Failures     Failures   `json:"failures,omitempty"`
	// Attempts counts failed attempts in a row; RetryAt is when the daemon
	// tries again (capped exponential backoff).
	Attempts int        `json:"attempts,omitempty"`
	RetryAt  *time.Time `json:"retryAt,omitempty"`
	// FailureKind is Permanent (the issuer refused; retrying cannot help)
	// or Transient (retried with backoff) while the certificate fails.
	FailureKind FailureKind `json:"failureKind,omitempty"`
	// PermanentFor is what a permanent failure was for (decide.FailureKey):
	// the certificate is not tried again until that changes.
	PermanentFor string `json:"permanentFor,omitempty"`
	// Superseded are serials of this certificate replaced before they
	// expired for a superseding reason, not revoked yet: a probe of one of
	// its targets still saw one served (decide.RevocationWait). Each pass
	// revokes those no probe sees any more.
	Superseded []Superseded `json:"superseded,omitempty"`
	// Released is set by the owning shard once the certificate is no longer
	// its own (relabelled, resharded): it stopped acting on it, left every
	// target as it was, and the shard it now belongs to may adopt it.
	Released bool `json:"released,omitempty"`
	// Handoffs counts the certificate's moves between shards (each release,
	// adoption and takeover adds one): of two copies in two shards' pages
	// the one with more is current, whatever the clocks say.
	Handoffs int `json:"handoffs,omitempty"`
	// elsewhere names the other shards whose pages still hold an older copy
	// (set by Load).
	elsewhere []string
}

// Reported is the entry as reports show it (`certfleet inventory -o json`,
// `status`, the certificate page): without the fingerprint, which is the
// pass's bookkeeping — not secret, but nothing a reader needs.
func (e *Entry) Reported() *Entry {
	if e == nil || e.Fingerprint == "" {
		return e
	}
	r := *e
	r.Fingerprint = ""
	return &r
}

// Edit returns the entry's Rare part to set a field of, adding it if the
// entry has none. An entry copied by value shares its Rare part with the
// original: Clone it first when the two must differ.
func (e *Entry) Edit() *Rare {
	if e.Rare == nil {
		e.Rare = &Rare{}
	}
	return e.Rare
}

// Clone is a copy of e that shares nothing Edit changes with e.
func (e *Entry) Clone() *Entry {
	c := *e
	if e.Rare != nil {
		r := *e.Rare
		c.Rare = &r
	}
	return &c
}

// The readers of Rare's fields: zero when the entry has no Rare part. They
// shadow the promoted fields, so that no reader can forget the nil check.

// IPAddresses are the certificate's IP address names.
func (e *Entry) IPAddresses() []string { return rareOf(e).IPAddresses }

// URIs are the certificate's URI names.
func (e *Entry) URIs() []string { return rareOf(e).URIs }

// EmailAddresses are the certificate's email address names.
func (e *Entry) EmailAddresses() []string { return rareOf(e).EmailAddresses }

// FailingSince is set while issuing or delivering fails.
func (e *Entry) FailingSince() *time.Time { return rareOf(e).FailingSince }

// Failures are what failed last time, while the certificate fails.
func (e *Entry) Failures() Failures { return rareOf(e).Failures }

// Attempts counts failed attempts in a row.
func (e *Entry) Attempts() int { return rareOf(e).Attempts }

// RetryAt is when the daemon tries again (nil: not waiting).
func (e *Entry) RetryAt() *time.Time { return rareOf(e).RetryAt }

// FailureKind says whether the current failure is worth retrying.
func (e *Entry) FailureKind() FailureKind { return rareOf(e).FailureKind }

// PermanentFor is what a permanent failure was for.
func (e *Entry) PermanentFor() string { return rareOf(e).PermanentFor }

// Superseded are serials waiting to be revoked.
func (e *Entry) Superseded() []Superseded { return rareOf(e).Superseded }

// Released reports whether the owning shard let the certificate go.
func (e *Entry) Released() bool { return rareOf(e).Released }

// Handoffs counts the certificate's moves between shards.
func (e *Entry) Handoffs() int { return rareOf(e).Handoffs }

var noRare Rare

func rareOf(e *Entry) *Rare {
	if e.Rare == nil {
		return &noRare
	}
	return e.Rare
}

// Superseded is a serial waiting to be revoked.
type Superseded struct {
	Serial   string    `json:"serial"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"notAfter"`
	// Reason is the decide reason that superseded it (SpecChanged, …).
	Reason string `json:"reason"`
	// Since is when its replacement was delivered.
	Since time.Time `json:"since"`
}

// HeldElsewhere reports whether shard's pages hold an older copy of the
// entry than the one Load returned ("" is the unsharded process).
func (e *Entry) HeldElsewhere(shard string) bool { return slices.Contains(rareOf(e).elsewhere, shard) }

// Copies reports whether other shards' pages hold older copies of the entry.
func (e *Entry) Copies() bool { return len(rareOf(e).elsewhere) > 0 }

// FailureKind says whether trying an issuance or a delivery again can help.
type FailureKind string

const (
	// Transient failures (a timeout, a 5xx, a sealed Vault) are retried with backoff.
	Transient FailureKind = "Transient"
	// Permanent failures (the issuer's role refused, or it is gone) wait
	// for the declaration, the issuer or its authority to change.
	Permanent FailureKind = "Permanent"
)

// KindOf classifies an error ("" when there is none).
func KindOf(err error) FailureKind {
	switch {
	case err == nil:
		return ""
	case backend.Permanent(err):
		return Permanent
	}
	return Transient
}

// Target is a place the certificate was delivered: the address render
// resolved.
type Target = render.Address

// AuditPath is where the audit log goes when none is configured: beside
// the local backend's state, else certfleet-audit.log in the working
// directory.
func AuditPath(configured string, b backend.Backend) string {
	if configured != "" {
		return configured
	}
	if l, ok := b.(*backend.Local); ok {
		return filepath.Join(l.Root(), "audit.log")
	}
	return "certfleet-audit.log"
}

// Event is one line of the audit log: who did what, where and why.
type Event struct {
	Time        time.Time  `json:"time"`
	Action      string     `json:"action"`
	Certificate string     `json:"certificate"`
	Target      string     `json:"target,omitempty"`
	Reason      string     `json:"reason"`
	Serial      string     `json:"serial,omitempty"`
	NotAfter    *time.Time `json:"notAfter,omitempty"`
	Issuer      string     `json:"issuer,omitempty"`
	Revision    string     `json:"revision,omitempty"`
	Author      string     `json:"author,omitempty"`
	// Workload is the workload a restart line restarted (Kind namespace/name).
	Workload string `json:"workload,omitempty"`
	// Actor is the certfleet instance that acted (user@host).
	Actor string `json:"actor"`
	Error string `json:"error,omitempty"`
	// Authority names the authority of a rotation's events (a phase
	// change, a retired issuer tidied).
	Authority string `json:"authority,omitempty"`
}

// Audit appends events as JSON lines.
type Audit struct {
	mu sync.Mutex
	w  io.Writer
}

// NewAudit writes to w (nil discards).
func NewAudit(w io.Writer) *Audit {
	if w == nil {
		w = io.Discard
	}
	return &Audit{w: w}
}

// Log writes one event.
func (a *Audit) Log(e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err = a.w.Write(append(b, '\n'))
	return err
}
