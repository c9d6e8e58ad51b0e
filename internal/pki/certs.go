package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
)

// Request is what a certificate should say: subject and SANs.
type Request struct {
	CommonName          string
	DNSNames            []string
	IPAddresses         []string
	URIs                []string
	EmailAddresses      []string
	Organizations       []string
	OrganizationalUnits []string
	Countries           []string
	Localities          []string
	Provinces           []string
	StreetAddresses     []string
	PostalCodes         []string
}

func (r Request) subject() pkix.Name {
	return pkix.Name{
		CommonName: r.CommonName, Organization: r.Organizations, OrganizationalUnit: r.OrganizationalUnits,
		Country: r.Countries, Locality: r.Localities, Province: r.Provinces,
		StreetAddress: r.StreetAddresses, PostalCode: r.PostalCodes,
	}
}

func (r Request) sans() ([]net.IP, []*url.URL, error) {
	var ips []net.IP
	for _, s := range r.IPAddresses {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, nil, fmt.Errorf("invalid IP address %q", s)
		}
		ips = append(ips, ip)
	}
	var uris []*url.URL
	for _, s := range r.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid URI %q", s)
		}
		uris = append(uris, u)
	}
	return ips, uris, nil
}

// CSR makes a PEM certificate signing request for key. The key itself never
// leaves the caller: only the CSR travels to the signer.
func CSR(key crypto.Signer, r Request) ([]byte, error) {
	ips, uris, err := r.sans()
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: r.subject(), DNSNames: r.DNSNames, IPAddresses: ips, URIs: uris, EmailAddresses: r.EmailAddresses,
	}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR reads a PEM certificate signing request and checks its signature.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no CERTIFICATE REQUEST PEM block")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	return csr, nil
}

// ParseCertificates reads every CERTIFICATE block of a PEM bundle, in order.
func ParseCertificates(pemBytes []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return out, nil
}

// ParseCertificate reads the first certificate of a PEM bundle.
func ParseCertificate(pemBytes []byte) (*x509.Certificate, error) {
	cs, err := ParseCertificates(pemBytes)
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// EncodeCertificate writes a certificate as PEM.
func EncodeCertificate(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Serial formats a serial number the way Vault prints it: colon-separated
// lower-case hex bytes.
// One allocation: a pass formats every target's serial a few times.
func Serial(n *big.Int) string {
	var buf [32]byte // RFC 5280 serials are at most 20 bytes
	var raw []byte
	if size := (n.BitLen() + 7) / 8; size > len(buf) {
		raw = n.Bytes()
	} else {
		raw = n.FillBytes(buf[:size])
	}
	if len(raw) == 0 {
		return "00"
	}
	const digits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(3*len(raw) - 1)
	for i, c := range raw {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0xf])
	}
	return b.String()
}

// randomSerial is a 128-bit positive serial, as RFC 5280 recommends (≥ 64 bits of entropy).
func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}
