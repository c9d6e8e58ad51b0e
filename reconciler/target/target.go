// Package target reads and writes the places certificates are delivered:
// kubernetes.io/tls Secrets (server-side apply, field manager certfleet),
// Vault KV v2 secrets and directories (swapped atomically). Each holds a
// bundle — tls.crt (leaf and intermediates), tls.key, ca.crt — and
// certfleet's metadata beside it.
package target

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/internal/intern"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/render"
)

// Bundle is what a target holds. Key is private: it is never logged,
// reported or recorded anywhere but the target.
type Bundle struct {
	Cert, Key, CA []byte
}

// Empty reports whether there is no certificate.
func (b Bundle) Empty() bool { return len(b.Cert) == 0 }

// DataHash identifies the public part of a bundle (tls.crt and ca.crt), so
// certfleet can tell later whether someone changed what it wrote. The key is
// not hashed: key changes show as a key that no longer matches.
func (b Bundle) DataHash() string {
	h := sha256.New()
	h.Write(b.Cert)
	h.Write([]byte{0})
	h.Write(b.CA)
	// The first 20 hex digits, encoded alone: a slice of the whole
	// encoding would keep its 64 bytes alive in every observation.
	return hex.EncodeToString(h.Sum(nil)[:10])
}

// Fingerprint identifies exactly the bytes of a bundle — tls.crt, ca.crt
// and tls.key — for the inventory to record when certfleet writes it
// (FingerprintOf): a target whose bundle hashes to the fingerprint
// recorded holds exactly what certfleet wrote, so its key belongs to its
// leaf without parsing the key (Observed.Recorded). The inventory is
// trusted; a Secret's own annotations are not (whoever may edit the Secret
// may edit them), so the fingerprint is never read from the target.
//
// The key is hashed with the rest, so a planted key (or a changed tls.crt
// or ca.crt) no longer hashes to it. Hashing it reveals nothing of the
// key: the fingerprint covers the whole bundle, and finding the key from
// it would mean inverting SHA-256 over the key's 256 bits or more of
// randomness. The parts are length-prefixed, so no shift of bytes between
// them hashes alike; 128 bits make a different bundle with the same
// fingerprint a second preimage (2^128 tries).
func (b Bundle) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("certfleet bundle v1"))
	var n [8]byte
	for _, part := range [][]byte{b.Cert, b.CA, b.Key} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// FingerprintOf is the fingerprint certfleet records for a bundle it
// writes: "" unless its key parses and belongs to leaf, so that a
// fingerprint vouches for a matching key.
func FingerprintOf(b Bundle, leaf *x509.Certificate) string {
	k, err := pki.ParseKey(b.Key)
	if err != nil || leaf == nil || !pki.KeyMatches(k, leaf) {
		return ""
	}
	return b.Fingerprint()
}

// Metadata keys certfleet writes on what it delivers.
const (
	LabelManagedBy     = "app.kubernetes.io/managed-by"
	ManagedByValue     = "certfleet"
	LabelCertificate   = "certfleet.dev/certificate"
	AnnCertificateID   = "certfleet.dev/certificate-id"
	AnnIssuer          = "certfleet.dev/issuer"
	AnnSerial          = "certfleet.dev/serial"
	AnnNotAfter        = "certfleet.dev/not-after"
	AnnRenewAt         = "certfleet.dev/renew-at"
	AnnSpecHash        = "certfleet.dev/spec-hash"
	AnnTemplateHash    = "certfleet.dev/template-hash"
	AnnDataHash        = "certfleet.dev/data-hash"
	AnnRevision        = "certfleet.dev/source-revision"
	AnnCommonName      = "cert-manager.io/common-name"
	AnnAltNames        = "cert-manager.io/alt-names"
	AnnIPSANs          = "cert-manager.io/ip-sans"
	AnnURISANs         = "cert-manager.io/uri-sans"
	AnnEmailSANs       = "cert-manager.io/email-sans"
	FieldManager       = "certfleet"
	timeLayout         = time.RFC3339
	certificateMaxName = 63
)

// Meta is what certfleet records about a delivery.
type Meta struct {
	CertificateID string
	Issuer        string
	RenewAt       time.Time
	IssueHash     string
	TemplateHash  string
	Revision      string
}

// Annotations are the metadata of a delivery of bundle b: certfleet's own,
// and cert-manager's names so tools that read those read ours.
func (m Meta) Annotations(b Bundle) map[string]string {
	a := map[string]string{
		AnnCertificateID: m.CertificateID,
		AnnIssuer:        m.Issuer,
		AnnRenewAt:       m.RenewAt.UTC().Format(timeLayout),
		AnnSpecHash:      m.IssueHash,
		AnnTemplateHash:  m.TemplateHash,
		AnnDataHash:      b.DataHash(),
		AnnRevision:      m.Revision,
	}
	if c, err := pki.ParseCertificate(b.Cert); err == nil {
		a[AnnSerial] = pki.Serial(c.SerialNumber)
		a[AnnNotAfter] = c.NotAfter.UTC().Format(timeLayout)
		a[AnnCommonName] = c.Subject.CommonName
		a[AnnAltNames] = strings.Join(c.DNSNames, ",")
		ips := make([]string, len(c.IPAddresses))
		for i, ip := range c.IPAddresses {
			ips[i] = ip.String()
		}
		a[AnnIPSANs] = strings.Join(ips, ",")
		uris := make([]string, len(c.URIs))
		for i, u := range c.URIs {
			uris[i] = u.String()
		}
		a[AnnURISANs] = strings.Join(uris, ",")
		a[AnnEmailSANs] = strings.Join(c.EmailAddresses, ",")
	}
	return a
}

// ownMeta is certfleet's own metadata observed on a directory: the seven
// keys a pass reads, in fields rather than a map (a Go map of seven
// entries takes ~330 bytes, these 112; a pass holds every target's
// observation at once). The serial and notAfter annotations are left out:
// a pass reads those of the parsed certificate; cert-manager's names too:
// they repeat fields of the certificate.
type ownMeta struct {
	certificateID, issuer, renewAt, specHash, templateHash, dataHash, revision string
}

// field is where key is held in m (nil for a key it does not hold).
func (m *ownMeta) field(key string) *string {
	switch key {
	case AnnCertificateID:
		return &m.certificateID
	case AnnIssuer:
		return &m.issuer
	case AnnRenewAt:
		return &m.renewAt
	case AnnSpecHash:
		return &m.specHash
	case AnnTemplateHash:
		return &m.templateHash
	case AnnDataHash:
		return &m.dataHash
	case AnnRevision:
		return &m.revision
	}
	return nil
}

// ownKeys are the keys ownMeta holds.
var ownKeys = []string{AnnCertificateID, AnnIssuer, AnnRenewAt, AnnSpecHash, AnnTemplateHash, AnnDataHash, AnnRevision}

// sharedValues are the keys whose values repeat across a fleet's targets
// (a handful of issuers, one revision, a template hash per template).
var sharedValues = map[string]bool{AnnIssuer: true, AnnRevision: true, AnnTemplateHash: true}

// ownMetaOf is certfleet's own entries of metadata m, with one shared
// copy (strs's) of each value that repeats: 100,000 copies of each cost
// megabytes.
func ownMetaOf(m map[string]string, strs *intern.Strings) *ownMeta {
	if m == nil {
		return nil
	}
	own := &ownMeta{}
	for _, k := range ownKeys {
		v := m[k]
		if sharedValues[k] {
			v = strs.Share(v)
		}
		*own.field(k) = v
	}
	return own
}

// sharedCAs holds one copy of each CA body observed, for shareCA.
var sharedCAs = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

// maxSharedCAs bounds sharedCAs: a fleet has a handful of authorities, and
// a stranger's CA bodies past the bound are simply not shared.
const maxSharedCAs = 64

// shareCA returns one shared copy of a CA body: every target of an
// authority holds the same ca.crt, and a pass observing 100,000 targets
// would otherwise hold it 100,000 times. The bytes are read-only, like
// every observed bundle's; CA certificates are public.
func shareCA(ca []byte) []byte {
	if len(ca) == 0 {
		return ca
	}
	sharedCAs.Lock()
	defer sharedCAs.Unlock()
	if s, ok := sharedCAs.m[string(ca)]; ok {
		return s
	}
	if len(sharedCAs.m) < maxSharedCAs {
		sharedCAs.m[string(ca)] = ca
	}
	return ca
}

// CertificateLabel is the label value naming a certificate: IDs hold a "/",
// which label values cannot; "_" cannot appear in names or namespaces, so
// the mapping is one to one. Long IDs are cut and suffixed with a hash.
func CertificateLabel(id string) string {
	v := strings.ReplaceAll(id, "/", "_")
	if len(v) > certificateMaxName {
		sum := sha256.Sum256([]byte(id))
		v = v[:certificateMaxName-11] + "-" + hex.EncodeToString(sum[:5])
	}
	return v
}

// Observed is what a target holds now. A pass holds every target's
// observation at once, so it is kept small (176 bytes, before what its
// pointers hold): the target it is of is the desired one, not a copy of
// it, and the fields are ordered so that none pads.
type Observed struct {
	// Target is the target observed: the desired one (shared, read-only)
	// where the pass observed a declared target.
	Target *render.Target
	// Cert is what a pass reads of the leaf; nil when tls.crt is absent or
	// unreadable.
	Cert *Leaf
	// Bundle is read-only: its CA body may be shared with other
	// observations of the same authority's targets.
	Bundle Bundle
	// Annotations are certfleet's metadata on a Secret or a Vault KV
	// secret (nil when unmanaged). A directory's, certfleet's own keys
	// only, are held apart (own): read them all through Annotation.
	Annotations map[string]string
	// own is a managed directory's metadata (nil otherwise).
	own *ownMeta
	// Labels are a managed Secret's labels (nil otherwise).
	Labels map[string]string
	// dataHash is the DataHash of the bundle observed, set where its
	// tls.crt is not kept (a directory's).
	dataHash string
	// UID and Version are what a write or delete based on this observation
	// makes its precondition: a Secret's metadata.uid and resourceVersion,
	// a Vault KV secret's current version (UID empty; "0" when there never
	// was a version). Empty for directories.
	UID, Version string
	// key is what is known of tls.key (keyUnknown until checked): see
	// KeyMatches.
	key atomic.Uint32
	// Exists is false when the target holds nothing.
	Exists bool
	// Managed is true when certfleet's managed-by mark is on the target;
	// OwnedBy also checks which certificate it is for.
	Managed bool
	// CreatedFields is true when a managed Secret's fields are still
	// recorded under certfleet's create (an Update entry), not its apply:
	// a later apply that drops a label or annotation first moves them.
	CreatedFields bool
	// keyOnDisk is set when a directory's tls.key was read and parsed but
	// not kept (Directory.Bundle reads it again).
	keyOnDisk bool
}

// OwnedBy reports whether the target carries certfleet's marks for the
// certificate id: the managed-by mark and id in its certificate-id
// annotation. Only such a target is certfleet's to overwrite or prune.
func (o *Observed) OwnedBy(id string) bool {
	return o != nil && o.Managed && id != "" && o.Annotation(AnnCertificateID) == id
}

// Annotation is the value of certfleet's metadata key on the target (""
// when absent): of Annotations, or of a directory's own keys.
func (o *Observed) Annotation(key string) string {
	if o.own != nil {
		if f := o.own.field(key); f != nil {
			return *f
		}
		return ""
	}
	return o.Annotations[key]
}

// owned is OwnedBy on raw metadata: labels (the managed-by mark; for Vault
// KV the custom metadata) and annotations.
func owned(labels map[string]string, annotations map[string]string, id string) bool {
	return labels[LabelManagedBy] == ManagedByValue && id != "" && annotations[AnnCertificateID] == id
}

// Errors a write or prune returns instead of touching a target that is not
// (or no longer) what the decision was based on. Test them with errors.Is.
var (
	// ErrConflict: the target changed, appeared or was replaced since it
	// was observed. Nothing was written or deleted; the next pass observes
	// it again and decides afresh.
	ErrConflict = errors.New("changed since it was observed")
	// ErrNotOwned: a write found the target without certfleet's marks for
	// the certificate (someone else's, or another certificate's) and
	// adoption was not asked for. Nothing was written.
	ErrNotOwned = errors.New("does not carry certfleet's marks for this certificate (adopt it to overwrite)")
	// ErrTakenOver: a prune re-read the target and found it no longer
	// carries certfleet's marks for the certificate: someone took it over.
	// It was left alone; report it, it is not a failure.
	ErrTakenOver = errors.New("no longer carries certfleet's marks for this certificate: taken over, left alone")
)

// What is known of an observation's tls.key.
const (
	keyUnknown uint32 = iota
	keyMatches
	keyMismatch
)

// parse fills the parsed fields of o (Cert, and the key check unless
// laterKey) from its bundle, and returns the leaf parsed (nil when there
// is none). laterKey leaves the key to KeyMatches (or Recorded): it is the
// costlier half, and certfleet's own targets mostly need no parsing of it.
func (o *Observed) parse(laterKey bool) *x509.Certificate {
	if o.Bundle.Empty() {
		o.setKey(false)
		return nil
	}
	c, err := pki.ParseCertificate(o.Bundle.Cert)
	if err != nil {
		o.setKey(false)
		return nil
	}
	o.Cert = leafOf(c, o.Bundle.Cert)
	if !laterKey {
		o.setKey(keyBelongsTo(o.Bundle.Key, c))
	}
	return c
}

func keyBelongsTo(key []byte, c *x509.Certificate) bool {
	k, err := pki.ParseKey(key)
	return err == nil && pki.KeyMatches(k, c)
}

func (o *Observed) setKey(matches bool) {
	if matches {
		o.key.Store(keyMatches)
	} else {
		o.key.Store(keyMismatch)
	}
}

// KeyMatches reports whether tls.key parses and belongs to the leaf
// (Cert). Where the observation left the key unchecked (a managed
// Secret's), it is checked on first use — unless Recorded settled it.
// Safe for concurrent use.
func (o *Observed) KeyMatches() bool {
	switch o.key.Load() {
	case keyMatches:
		return true
	case keyMismatch:
		return false
	}
	m := false
	if o.Cert != nil && len(o.Bundle.Key) > 0 {
		if c, err := o.Cert.X509(); err == nil {
			m = keyBelongsTo(o.Bundle.Key, c)
		}
	}
	o.setKey(m)
	return m
}

// Recorded settles the key check of an observation by the fingerprint
// the inventory recorded for the bundle certfleet last wrote to the target
// (Bundle.Fingerprint; "" when none was recorded): when the bundle
// observed is exactly those bytes, its key belongs to its leaf — certfleet
// checked that before writing it (FingerprintOf) — and need not be parsed.
// Anything else (another key, tls.crt or ca.crt; no fingerprint) is left
// to the full check, so Recorded only ever spares work: it never changes
// what KeyMatches answers. It reports whether it settled the check.
func (o *Observed) Recorded(fingerprint string) bool {
	if fingerprint == "" || o.key.Load() != keyUnknown || o.Cert == nil || len(o.Bundle.Key) == 0 {
		return false
	}
	if o.Bundle.Fingerprint() != fingerprint {
		return false
	}
	o.key.Store(keyMatches)
	return true
}

// CheckKeys settles, on every core, the key check of the observations at
// keys (by target key) that left it unchecked: by the fingerprint recorded
// for the target (keys' value: Recorded) where the bundle is what
// certfleet wrote, else by parsing the key. A pass calls it once the
// inventory is read, before deciding, for the targets a decision reads
// the key of (declared and recorded ones); any other observation's key is
// checked on first use, if ever (another's Secret's: nothing asks).
func CheckKeys(obs map[string]*Observed, keys map[string]string) {
	var g errgroup.Group
	g.SetLimit(goruntime.GOMAXPROCS(0))
	for key, fingerprint := range keys {
		if o := obs[key]; o != nil && o.key.Load() == keyUnknown {
			g.Go(func() error {
				if !o.Recorded(fingerprint) {
					o.KeyMatches()
				}
				return nil
			})
		}
	}
	_ = g.Wait() // nothing fails: each check settles its observation
}

// DataHash is the DataHash of the bundle observed.
func (o *Observed) DataHash() string {
	if o.dataHash != "" {
		return o.dataHash
	}
	return o.Bundle.DataHash()
}

// HasKey reports whether the target holds a tls.key (kept in Bundle, or
// read and not kept: a directory's).
func (o *Observed) HasKey() bool { return len(o.Bundle.Key) > 0 || o.keyOnDisk }

// Leaf is what a pass reads of an observed certificate. The parsed
// x509.Certificate is not kept: it takes ~2.8 KB, and a pass holds every
// target's observation at once (280 MB at 100,000 targets); X509 parses it
// again for the rare check that needs all of it.
type Leaf struct {
	SerialNumber        *big.Int
	NotBefore, NotAfter time.Time
	// AuthorityKeyId is the issuing CA's key ID (nil when absent).
	AuthorityKeyId []byte
	// pem is tls.crt as observed (the observation's own bytes, not a
	// copy). A directory's observation keeps no tls.crt, nor the leaf's
	// DER (~500 bytes a target, 50 MB at 100,000, for the rare check that
	// reads the whole certificate): X509 reads it again from dir, as
	// observed by from.
	pem  []byte
	dir  *Directory
	from *Observed
}

// leafOf keeps of c what a pass reads; the key ID is copied, so nothing
// points into c's DER.
func leafOf(c *x509.Certificate, pem []byte) *Leaf {
	return &Leaf{SerialNumber: c.SerialNumber, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		AuthorityKeyId: bytes.Clone(c.AuthorityKeyId), pem: pem}
}

// NewLeaf parses a PEM certificate (tls.crt) into what a pass reads of it.
func NewLeaf(certPEM []byte) (*Leaf, error) {
	c, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	return leafOf(c, certPEM), nil
}

// X509 parses the certificate again, whole: for a signature check, or an
// ACME renewal-information request.
//
// A directory's leaf is read again from the directory, and refused
// (ErrConflict) unless tls.crt and ca.crt are still what was observed: the
// certificate returned is always the one the observation describes.
func (l *Leaf) X509() (*x509.Certificate, error) {
	if l.dir != nil {
		return l.dir.leaf(l.from)
	}
	return pki.ParseCertificate(l.pem)
}

// Time reads a time annotation; zero when absent or malformed.
func (o *Observed) Time(key string) time.Time {
	t, _ := time.Parse(timeLayout, o.Annotation(key))
	return t
}
