package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"slices"
)

// IssueHash hashes the fields of a certificate spec that need a new
// certificate when they change: issuer, subject, SANs, usages, key spec,
// lifetime and signature algorithm. Order does not matter where it does not
// matter in a certificate (SANs, usages), and defaults are filled in, so
// writing a default explicitly changes nothing.
func IssueHash(s *CertificateSpec) string {
	k := s.Key()
	var subj Subject
	if s.Subject != nil {
		subj = *s.Subject
	}
	usages := make([]string, 0, len(s.EffectiveUsages()))
	for _, u := range s.EffectiveUsages() {
		usages = append(usages, string(u))
	}
	return hashOf(struct {
		Issuer, CN, SigAlg string
		DNS, IP, URI, Mail []string
		Usages             []string
		Subject            Subject
		Alg                KeyAlgorithm
		Size               int
		Seconds            int64
	}{
		Issuer: s.Issuer, CN: s.CommonName, SigAlg: s.SignatureAlgorithm,
		DNS: sorted(s.DNSNames), IP: sorted(canonicalIPs(s.IPAddresses)), URI: sorted(s.URIs), Mail: sorted(s.EmailAddresses),
		Usages: sorted(usages), Subject: subj, Alg: k.Algorithm, Size: k.Size,
		Seconds: int64(s.Lifetime().Seconds()),
	})
}

// TemplateHash hashes what only changes the object delivered to one target:
// the key's encoding and the target's secret template. A change here is an
// update of the delivered object with the same certificate.
func TemplateHash(s *CertificateSpec, t Target) string {
	var tmpl SecretTemplate
	if t.Kubernetes != nil && t.Kubernetes.SecretTemplate != nil {
		tmpl = *t.Kubernetes.SecretTemplate
	}
	return hashOf(struct {
		Encoding string
		Template SecretTemplate
	}{s.Key().Encoding, tmpl})
}

// hashOf is a short, stable hash of a value's JSON (maps are written with
// sorted keys by encoding/json).
func hashOf(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:10])
}

// canonicalIPs writes each address in its canonical form, so "FD00:0::1"
// and "fd00::1" hash alike.
func canonicalIPs(ips []string) []string {
	if len(ips) == 0 {
		return nil
	}
	out := make([]string, len(ips))
	for i, s := range ips {
		out[i] = s
		if ip := net.ParseIP(s); ip != nil {
			out[i] = ip.String()
		}
	}
	return out
}

// sorted returns a sorted copy; an empty list is nil, so "dnsNames: []"
// hashes like no dnsNames at all.
func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
