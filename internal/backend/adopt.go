package backend

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// AdoptAuthority records in the catalog, under name, the authority a PKI
// mount already holds — one certfleet did not create, such as a mount made
// with terraform-provider-vault — and changes nothing in the mount, so no
// certificate is reissued. The spec is read from the mount's default issuer
// (and, on Vault, its URLs). An intermediate's parent is the catalog
// authority whose certificate signed it: adopt the root first.
func AdoptAuthority(ctx context.Context, b Backend, name, mount string) (*schemas.Authority, error) {
	if _, err := GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, name); err == nil {
		return nil, fmt.Errorf("authority %q: %w in the catalog of %s", name, ErrExists, b.Describe())
	}
	cat, err := LoadCatalog(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	for _, other := range cat.Authorities {
		if other.Spec.Mount == mount {
			return nil, fmt.Errorf("mount %q: %w (%q); import that one instead", mount, ErrMountInUse, other.Metadata.Name)
		}
	}
	a := &schemas.Authority{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindAuthority},
		Metadata: schemas.ObjectMeta{Name: name},
		Spec:     schemas.AuthoritySpec{Mount: mount},
	}
	if err := b.DescribeAuthority(ctx, a); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("mount %q of %s holds no PKI issuer to adopt: %w", mount, b.Describe(), err)
		}
		return nil, fmt.Errorf("reading mount %q: %w", mount, err)
	}
	if a.Spec.Type == schemas.AuthorityIntermediate {
		cert, err := pki.ParseCertificate([]byte(a.Status.Certificate))
		if err != nil {
			return nil, err
		}
		a.Spec.Parent = signer(cert, cat.Authorities)
		if a.Spec.Parent == "" {
			return nil, fmt.Errorf("mount %q holds an intermediate (issued by %q) whose parent is not in the catalog: %w; import the parent first",
				mount, cert.Issuer.String(), ErrUnknownAuthority)
		}
	}
	if err := schemas.Validate(a).Err(); err != nil {
		return nil, fmt.Errorf("the authority in mount %q cannot be described by certfleet: %w", mount, err)
	}
	return a, PutObject(ctx, b, a)
}

// signer names the catalog authority whose current or earlier CA
// certificate signed cert.
func signer(cert *x509.Certificate, authorities map[string]*schemas.Authority) string {
	for _, name := range slices.Sorted(maps.Keys(authorities)) {
		p := authorities[name]
		pems := []string{p.Status.Certificate}
		for _, prev := range p.Status.PreviousIssuers {
			pems = append(pems, prev.Certificate)
		}
		for _, pemCert := range pems {
			if c, err := pki.ParseCertificate([]byte(pemCert)); err == nil && cert.CheckSignatureFrom(c) == nil {
				return p.Metadata.Name
			}
		}
	}
	return ""
}

// specFromCA describes a CA certificate as an AuthoritySpec (all but the
// name, the parent and the mount's URLs), the way the provider would have
// declared it.
func specFromCA(c *x509.Certificate) schemas.AuthoritySpec {
	s := schemas.AuthoritySpec{Type: schemas.AuthorityIntermediate, CommonName: c.Subject.CommonName}
	if c.CheckSignatureFrom(c) == nil && string(c.RawSubject) == string(c.RawIssuer) {
		s.Type = schemas.AuthorityRoot
	}
	sub := c.Subject
	if len(sub.Organization)+len(sub.OrganizationalUnit)+len(sub.Country)+len(sub.Locality)+len(sub.Province) > 0 {
		s.Subject = &schemas.Subject{Organizations: sub.Organization, OrganizationalUnits: sub.OrganizationalUnit,
			Countries: sub.Country, Localities: sub.Locality, Provinces: sub.Province}
	}
	alg, bits := pki.KeyAlgorithm(c.PublicKey)
	s.KeyType, s.KeyBits = map[string]string{"RSA": "rsa", "ECDSA": "ec", "Ed25519": "ed25519"}[alg], bits
	// Vault backdates a CA's notBefore (30 s by default); whole hours are how
	// its users write a CA's ttl.
	s.TTL = hours(c.NotAfter.Sub(c.NotBefore).Truncate(time.Minute))
	// What the provider's plan fills in when rotate_before is not set.
	s.RotateBefore = schemas.Duration(schemas.FormatDuration(s.RotationLead().Truncate(time.Second)))
	maxPath := -1
	if c.MaxPathLen > 0 || c.MaxPathLenZero {
		maxPath = c.MaxPathLen
	}
	s.MaxPathLength = &maxPath
	s.PermittedDNSDomains = c.PermittedDNSDomains
	s.IssuingCertificates, s.CRLDistributionPoints, s.OCSPServers = c.IssuingCertificateURL, c.CRLDistributionPoints, c.OCSPServer
	return s
}

// describe fills a's spec and status from its mount's current CA certificate.
func describe(ctx context.Context, p PKI, a *schemas.Authority) error {
	st, err := p.ReadAuthority(ctx, a)
	if err != nil {
		return err
	}
	c, err := pki.ParseCertificate([]byte(st.Certificate))
	if err != nil {
		return err
	}
	mount := a.Spec.Mount
	a.Spec, a.Status = specFromCA(c), st
	a.Spec.Mount = mount
	return nil
}

// AdoptIssuer records in the catalog, under name, a role certfleet did not
// create in the mount of a catalog authority, as the role is: nothing in
// Vault changes. Settings are spelled as the provider spells them (a key
// size Vault filled in is left to Vault, lifetimes in hours).
func AdoptIssuer(ctx context.Context, b Backend, name, authority, role string) (*schemas.Issuer, error) {
	if _, err := GetObject[schemas.Issuer](ctx, b, schemas.KindIssuer, name); err == nil {
		return nil, fmt.Errorf("issuer %q: %w in the catalog of %s", name, ErrExists, b.Describe())
	}
	a, err := GetObject[schemas.Authority](ctx, b, schemas.KindAuthority, authority)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("authority %q: %w of %s; import the authority (its mount) first", authority, ErrUnknownAuthority, b.Describe())
	}
	if err != nil {
		return nil, err
	}
	iss := &schemas.Issuer{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindIssuer},
		Metadata: schemas.ObjectMeta{Name: name},
		Spec:     schemas.IssuerSpec{Authority: authority, Role: role},
	}
	held, err := b.ReadRole(ctx, iss, a)
	if err != nil {
		return nil, fmt.Errorf("reading role %q in mount %q: %w", role, a.Spec.Mount, err)
	}
	if role == name {
		held.Role = ""
	}
	if held.KeyBits == map[string]int{"ec": 256, "rsa": 2048}[held.KeyType] {
		held.KeyBits = 0
	}
	iss.Spec = held
	if err := schemas.Validate(iss).Err(); err != nil {
		return nil, fmt.Errorf("role %q in mount %q cannot be described by certfleet: %w", role, a.Spec.Mount, err)
	}
	return iss, PutObject(ctx, b, iss)
}

// hours spells a lifetime as Vault's users write it: in whole hours when it
// is some ("8760h"), else as certfleet does.
func hours(d time.Duration) schemas.Duration {
	if d > 0 && d%time.Hour == 0 {
		return schemas.Duration(fmt.Sprintf("%dh", d/time.Hour))
	}
	return schemas.Duration(schemas.FormatDuration(d))
}
