package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// Local is the embedded backend: a directory. It mirrors Vault's layout, one
// folder per PKI mount, so both behave alike:
//
//	store/<key>.json                         catalog objects and records
//	pki/<mount>/default                      the default issuer's ID
//	pki/<mount>/issuers/<id>/certificate.pem the CA certificate
//	pki/<mount>/issuers/<id>/chain.pem       the certificates above it
//	pki/<mount>/issuers/<id>/key.pem         its private key, mode 0600
//	pki/<mount>/roles/<role>.json            an issuer's role
type Local struct {
	root string
	now  func() time.Time

	acmeOnce sync.Once
	acme     *acmeSigner
}

// acmeSigner orders ACME certificates with the accounts in this directory.
func (l *Local) acmeSigner() *acmeSigner {
	l.acmeOnce.Do(func() { l.acme = &acmeSigner{store: l} })
	return l.acme
}

// OpenLocal opens (creating it if needed) a local backend directory.
func OpenLocal(path string) (*Local, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("creating the local backend directory: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return &Local{root: abs, now: time.Now}, nil
}

// Root is the backend's directory.
func (l *Local) Root() string { return l.root }

func (l *Local) Describe() string { return "local at " + l.root }

// ---------------------------------------------------------------------------
// Store

func (l *Local) file(key string) string {
	return filepath.Join(l.root, "store", filepath.FromSlash(key)+".json")
}

func (l *Local) Get(_ context.Context, key string, v any) error {
	if err := checkKey(key); err != nil {
		return err
	}
	b, err := os.ReadFile(l.file(key))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (l *Local) Put(_ context.Context, key string, v any) error {
	if err := checkKey(key); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(l.file(key), append(b, '\n'), 0o600)
}

func (l *Local) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	err := os.Remove(l.file(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (l *Local) List(_ context.Context, prefix string) ([]string, error) {
	dir := filepath.Join(l.root, "store", filepath.FromSlash(prefix))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			out = append(out, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	sort.Strings(out)
	return out, nil
}

// writeAtomic writes through a temporary file, fsynced, and a rename
// (renameio): a reader never sees half a file, and a crash never leaves an
// empty one where the old one was.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, mode)
}

// ---------------------------------------------------------------------------
// PKI

func (l *Local) mountDir(a *schemas.Authority) string {
	return filepath.Join(l.root, "pki", filepath.FromSlash(a.Spec.Mount))
}

func caOptions(a *schemas.Authority, now time.Time) pki.CAOptions {
	o := pki.CAOptions{
		KeyType: a.Spec.KeyType, KeyBits: a.Spec.KeyBits, TTL: a.Spec.Lifetime(), MaxPathLength: -1,
		PermittedDNSDomains: a.Spec.PermittedDNSDomains, IssuingCertificates: a.Spec.IssuingCertificates,
		CRLDistributionPoints: a.Spec.CRLDistributionPoints, OCSPServers: a.Spec.OCSPServers, Now: now,
	}
	o.Subject.CommonName = a.Spec.CommonName
	if s := a.Spec.Subject; s != nil {
		o.Subject.Organizations, o.Subject.OrganizationalUnits = s.Organizations, s.OrganizationalUnits
		o.Subject.Countries, o.Subject.Localities, o.Subject.Provinces = s.Countries, s.Localities, s.Provinces
		o.Subject.StreetAddresses, o.Subject.PostalCodes = s.StreetAddresses, s.PostalCodes
	}
	if a.Spec.MaxPathLength != nil {
		o.MaxPathLength = *a.Spec.MaxPathLength
	}
	return o
}

func (l *Local) CreateAuthority(ctx context.Context, a, parent *schemas.Authority) (schemas.AuthorityStatus, error) {
	if _, err := os.Stat(filepath.Join(l.mountDir(a), "default")); err == nil {
		return schemas.AuthorityStatus{}, fmt.Errorf("mount %s already holds an authority", a.Spec.Mount)
	}
	return l.RotateAuthority(ctx, a, parent)
}

// RotateAuthority creates a new key and CA certificate and makes it the
// default; the previous issuers stay on disk until they expire.
func (l *Local) RotateAuthority(ctx context.Context, a, parent *schemas.Authority) (schemas.AuthorityStatus, error) {
	opts := caOptions(a, l.now())
	var ca *pki.CA
	var err error
	switch a.Spec.Type {
	case schemas.AuthorityRoot:
		ca, err = pki.NewRoot(opts)
	case schemas.AuthorityIntermediate:
		if parent == nil {
			return schemas.AuthorityStatus{}, fmt.Errorf("intermediate authority %s needs its parent", a.Metadata.Name)
		}
		var p *pki.CA
		if p, err = l.loadCA(parent); err != nil {
			return schemas.AuthorityStatus{}, fmt.Errorf("loading parent %s: %w", parent.Metadata.Name, err)
		}
		ca, err = p.NewIntermediate(opts)
	default:
		err = fmt.Errorf("unknown authority type %q", a.Spec.Type)
	}
	if err != nil {
		return schemas.AuthorityStatus{}, err
	}
	id, err := newID()
	if err != nil {
		return schemas.AuthorityStatus{}, err
	}
	dir := filepath.Join(l.mountDir(a), "issuers", id)
	key, err := pki.EncodeKey(ca.Key, "PKCS8")
	if err != nil {
		return schemas.AuthorityStatus{}, err
	}
	var chain []byte
	for _, c := range ca.Chain {
		chain = append(chain, pki.EncodeCertificate(c)...)
	}
	for name, data := range map[string][]byte{"key.pem": key, "certificate.pem": pki.EncodeCertificate(ca.Cert), "chain.pem": chain} {
		if err := writeAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
			return schemas.AuthorityStatus{}, err
		}
	}
	if err := writeAtomic(filepath.Join(l.mountDir(a), "default"), []byte(id+"\n"), 0o600); err != nil {
		return schemas.AuthorityStatus{}, err
	}
	return l.ReadAuthority(ctx, a)
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (l *Local) defaultIssuer(a *schemas.Authority) (string, error) {
	b, err := os.ReadFile(filepath.Join(l.mountDir(a), "default"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("authority %s (mount %s): %w", a.Metadata.Name, a.Spec.Mount, ErrNotFound)
	}
	return strings.TrimSpace(string(b)), err
}

// loadCA reads the default issuer of an authority with its key.
func (l *Local) loadCA(a *schemas.Authority) (*pki.CA, error) {
	id, err := l.defaultIssuer(a)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.mountDir(a), "issuers", id)
	certPEM, err := os.ReadFile(filepath.Join(dir, "certificate.pem"))
	if err != nil {
		return nil, err
	}
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, err
	}
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	ca := &pki.CA{Cert: cert, Key: key}
	if chainPEM, err := os.ReadFile(filepath.Join(dir, "chain.pem")); err == nil && len(chainPEM) > 0 {
		if ca.Chain, err = pki.ParseCertificates(chainPEM); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

func (l *Local) ReadAuthority(_ context.Context, a *schemas.Authority) (schemas.AuthorityStatus, error) {
	id, err := l.defaultIssuer(a)
	if err != nil {
		return schemas.AuthorityStatus{}, err
	}
	issuers := filepath.Join(l.mountDir(a), "issuers")
	read := func(id, name string) string {
		b, _ := os.ReadFile(filepath.Join(issuers, id, name))
		return string(b)
	}
	var chain []string
	if cs, err := pki.ParseCertificates([]byte(read(id, "chain.pem"))); err == nil {
		for _, c := range cs {
			chain = append(chain, string(pki.EncodeCertificate(c)))
		}
	}
	st, err := statusFromPEM(id, read(id, "certificate.pem"), chain)
	if err != nil {
		return st, err
	}
	entries, err := os.ReadDir(issuers)
	if err != nil {
		return st, err
	}
	now := l.now()
	for _, e := range entries {
		if e.Name() == id {
			continue
		}
		p := read(e.Name(), "certificate.pem")
		c, err := pki.ParseCertificate([]byte(p))
		if err != nil || c.NotAfter.Before(now) {
			continue
		}
		st.PreviousIssuers = append(st.PreviousIssuers, schemas.PreviousIssuer{IssuerID: e.Name(), Certificate: p, NotAfter: c.NotAfter.UTC()})
	}
	sort.Slice(st.PreviousIssuers, func(i, j int) bool { return st.PreviousIssuers[i].NotAfter.After(st.PreviousIssuers[j].NotAfter) })
	return st, nil
}

// ConfigureAuthority has nothing to change in place locally: the URLs are
// written into CA certificates when they are created.
func (l *Local) ConfigureAuthority(context.Context, *schemas.Authority) error { return nil }

// DescribeAuthority reads the URLs from the CA certificate, where the
// local backend writes them.
func (l *Local) DescribeAuthority(ctx context.Context, a *schemas.Authority) error {
	return describe(ctx, l, a)
}

func (l *Local) DeleteAuthority(_ context.Context, a *schemas.Authority) error {
	return os.RemoveAll(l.mountDir(a))
}

func (l *Local) roleFile(iss *schemas.Issuer, a *schemas.Authority) string {
	return filepath.Join(l.mountDir(a), "roles", iss.Spec.RoleName(iss.Metadata.Name)+".json")
}

func (l *Local) PutRole(_ context.Context, iss *schemas.Issuer, a *schemas.Authority) error {
	if iss.Spec.ACME != nil {
		return nil // an ACME issuer has no role: its CA decides
	}
	if _, err := l.defaultIssuer(a); err != nil {
		return err
	}
	b, err := json.MarshalIndent(iss.Spec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(l.roleFile(iss, a), b, 0o600)
}

func (l *Local) ReadRole(_ context.Context, iss *schemas.Issuer, a *schemas.Authority) (schemas.IssuerSpec, error) {
	if iss.Spec.ACME != nil {
		// An ACME issuer has no role: the CA's own policy stands in for it.
		return iss.Spec, nil
	}
	b, err := os.ReadFile(l.roleFile(iss, a))
	if errors.Is(err, fs.ErrNotExist) {
		return schemas.IssuerSpec{}, fmt.Errorf("role %s of %s: %w", iss.Spec.RoleName(iss.Metadata.Name), a.Spec.Mount, ErrNotFound)
	}
	if err != nil {
		return schemas.IssuerSpec{}, err
	}
	var role schemas.IssuerSpec
	if err := json.Unmarshal(b, &role); err != nil {
		return schemas.IssuerSpec{}, fmt.Errorf("reading role %s: %w", l.roleFile(iss, a), err)
	}
	return role, nil
}

func (l *Local) DeleteRole(_ context.Context, iss *schemas.Issuer, a *schemas.Authority) error {
	if iss.Spec.ACME != nil {
		return nil
	}
	err := os.Remove(l.roleFile(iss, a))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Sign signs with the authority's default issuer under the role as stored,
// with Vault's role semantics (pki.Profile, pki.CA.Sign): the same key
// checks, subject (the common name alone), key usage, extended key usages
// and signature algorithm as Vault's pki/sign/<role>. The role's noStore
// has no effect here: the local backend never stores issued certificates.
func (l *Local) Sign(ctx context.Context, iss *schemas.Issuer, a *schemas.Authority, csrPEM []byte, ttl time.Duration) (*Signed, error) {
	if iss.Spec.ACME != nil {
		return l.acmeSigner().Sign(ctx, iss, csrPEM)
	}
	role, err := l.ReadRole(ctx, iss, a)
	if err != nil {
		return nil, err
	}
	ca, err := l.loadCA(a)
	if err != nil {
		return nil, err
	}
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	roleTTL, _ := role.TTL.Parse()
	maxTTL, _ := role.MaxTTL.Parse()
	cert, err := ca.Sign(csr, pki.Profile{
		AllowedDomains: role.AllowedDomains, AllowSubdomains: role.AllowSubdomains, AllowGlobDomains: role.AllowGlobDomains,
		AllowBareDomains: role.AllowBareDomains, AllowWildcardCertificates: role.AllowWildcardCertificates,
		AllowAnyName: role.AllowAnyName, AllowedURISANs: role.AllowedURISANs, AllowIPSANs: role.AllowIPSANs,
		KeyType: role.KeyType, KeyBits: role.KeyBits,
		ServerFlag: role.Server(), ClientFlag: role.Client(), ExtKeyUsage: role.ExtKeyUsage, TTL: roleTTL, MaxTTL: maxTTL,
	}, ttl, l.now())
	if err != nil {
		return nil, err
	}
	chain := []string{string(pki.EncodeCertificate(ca.Cert))}
	for _, c := range ca.Chain {
		chain = append(chain, string(pki.EncodeCertificate(c)))
	}
	return &Signed{Certificate: string(pki.EncodeCertificate(cert)), Chain: chain, SerialNumber: pki.Serial(cert.SerialNumber),
		NotBefore: cert.NotBefore.UTC(), NotAfter: cert.NotAfter.UTC()}, nil
}
