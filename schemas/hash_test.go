package schemas

import (
	"testing"
)

// hashSpec is the certificate spec the hash tests change one field of.
func hashSpec() *CertificateSpec {
	return &CertificateSpec{
		Issuer:         "fleet",
		CommonName:     "api",
		DNSNames:       []string{"api.payments.svc", "api.payments.svc.cluster.local"},
		IPAddresses:    []string{"10.0.0.1", "fd00::1"},
		URIs:           []string{"spiffe://fleet.test/ns/payments/sa/api"},
		EmailAddresses: []string{"pki@example.com"},
		Subject:        &Subject{Organizations: []string{"Example"}},
		Usages:         []KeyUsage{"server auth", "client auth"},
		Duration:       "30d",
		Targets: []Target{{Kubernetes: &KubernetesTarget{
			Cluster: "prod", Namespace: "payments", SecretName: "api-tls",
			SecretTemplate: &SecretTemplate{Labels: map[string]string{"app": "api"}, Annotations: map[string]string{"note": "x"}},
		}}},
	}
}

func TestIssueHash(t *testing.T) {
	base := IssueHash(hashSpec())
	tests := []struct {
		name    string
		change  func(s *CertificateSpec)
		changes bool
	}{
		{"another issuer needs a new certificate", func(s *CertificateSpec) { s.Issuer = "public" }, true},
		{"another common name needs a new certificate", func(s *CertificateSpec) { s.CommonName = "web" }, true},
		{"an added DNS name needs a new certificate", func(s *CertificateSpec) { s.DNSNames = append(s.DNSNames, "api.example.com") }, true},
		{"a DNS name moved to the common name needs a new certificate", func(s *CertificateSpec) { s.CommonName, s.DNSNames = s.DNSNames[0], []string{"api", s.DNSNames[1]} }, true},
		{"another IP address needs a new certificate", func(s *CertificateSpec) { s.IPAddresses[0] = "10.0.0.2" }, true},
		{"another URI needs a new certificate", func(s *CertificateSpec) { s.URIs[0] = "spiffe://fleet.test/ns/payments/sa/web" }, true},
		{"another e-mail address needs a new certificate", func(s *CertificateSpec) { s.EmailAddresses = nil }, true},
		{"another subject needs a new certificate", func(s *CertificateSpec) { s.Subject.Organizations = []string{"Other"} }, true},
		{"an added usage needs a new certificate", func(s *CertificateSpec) { s.Usages = append(s.Usages, "digital signature") }, true},
		{"dropping the usages for the defaults needs a new certificate", func(s *CertificateSpec) { s.Usages = nil }, true},
		{"another key algorithm needs a new certificate", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{Algorithm: RSA} }, true},
		{"another key size needs a new certificate", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{Size: 384} }, true},
		{"another duration needs a new certificate", func(s *CertificateSpec) { s.Duration = "60d" }, true},
		{"the default duration differs from 30d", func(s *CertificateSpec) { s.Duration = "" }, true},
		{"another signature algorithm needs a new certificate", func(s *CertificateSpec) { s.SignatureAlgorithm = "ECDSAWithSHA384" }, true},

		{"the order of the SANs does not matter", func(s *CertificateSpec) {
			s.DNSNames = []string{s.DNSNames[1], s.DNSNames[0]}
			s.IPAddresses = []string{s.IPAddresses[1], s.IPAddresses[0]}
		}, false},
		{"the order of the usages does not matter", func(s *CertificateSpec) { s.Usages = []KeyUsage{"client auth", "server auth"} }, false},
		{"writing the default key algorithm and size changes nothing", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{Algorithm: ECDSA, Size: 256} }, false},
		{"writing an empty private key changes nothing", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{} }, false},
		{"writing the duration in hours changes nothing", func(s *CertificateSpec) { s.Duration = "720h" }, false},
		{"writing the same IPv6 address another way changes nothing", func(s *CertificateSpec) { s.IPAddresses[1] = "FD00:0:0::1" }, false},
		{"an empty list of e-mail addresses is no list", func(s *CertificateSpec) {
			s.EmailAddresses = nil
			withNil := IssueHash(s)
			s.EmailAddresses = []string{}
			if IssueHash(s) != withNil {
				s.Issuer = "differs" // make the case fail below
			}
			s.EmailAddresses = []string{"pki@example.com"}
		}, false},
		{"secret template labels are not part of the certificate", func(s *CertificateSpec) {
			s.Targets[0].Kubernetes.SecretTemplate.Labels["team"] = "payments"
		}, false},
		{"targets are not part of the certificate", func(s *CertificateSpec) { s.Targets = nil }, false},
		{"renewBefore is not part of the certificate", func(s *CertificateSpec) { s.RenewBefore = "5d" }, false},
		{"the rotation policy is not part of the certificate", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{RotationPolicy: RotationNever} }, false},
		{"the key encoding is not part of the certificate", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{Encoding: "PKCS8"} }, false},
		{"suspending is not part of the certificate", func(s *CertificateSpec) { s.Suspend = true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := hashSpec()
			tt.change(s)
			got := IssueHash(s)
			if (got != base) != tt.changes {
				t.Errorf("IssueHash changed = %v, want %v", got != base, tt.changes)
			}
		})
	}
}

func TestIssueHashOfEd25519IgnoresSize(t *testing.T) {
	a := hashSpec()
	a.PrivateKey = &PrivateKey{Algorithm: Ed25519}
	b := hashSpec()
	b.PrivateKey = &PrivateKey{Algorithm: Ed25519, Size: 256}
	if IssueHash(a) != IssueHash(b) {
		t.Errorf("a size the spec ignores changed the hash of an Ed25519 certificate")
	}
}

func TestTemplateHash(t *testing.T) {
	target := func(s *CertificateSpec) Target { return s.Targets[0] }
	base := TemplateHash(hashSpec(), target(hashSpec()))
	tests := []struct {
		name    string
		change  func(s *CertificateSpec)
		changes bool
	}{
		{"an added label changes the delivered Secret", func(s *CertificateSpec) { s.Targets[0].Kubernetes.SecretTemplate.Labels["team"] = "payments" }, true},
		{"a changed annotation changes the delivered Secret", func(s *CertificateSpec) { s.Targets[0].Kubernetes.SecretTemplate.Annotations["note"] = "y" }, true},
		{"no secret template changes the delivered Secret", func(s *CertificateSpec) { s.Targets[0].Kubernetes.SecretTemplate = nil }, true},
		{"PKCS8 encoding changes the delivered key", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{Encoding: "PKCS8"} }, true},
		{"writing the default encoding changes nothing", func(s *CertificateSpec) { s.PrivateKey = &PrivateKey{Encoding: "PKCS1"} }, false},
		{"SANs are not part of the template", func(s *CertificateSpec) { s.DNSNames = []string{"web.payments.svc"} }, false},
		{"the issuer is not part of the template", func(s *CertificateSpec) { s.Issuer = "public" }, false},
		{"the namespace and secret name are not part of the template", func(s *CertificateSpec) { s.Targets[0].Kubernetes.Namespace = "other" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := hashSpec()
			tt.change(s)
			got := TemplateHash(s, target(s))
			if (got != base) != tt.changes {
				t.Errorf("TemplateHash changed = %v, want %v", got != base, tt.changes)
			}
		})
	}
}

func TestTemplateHashOfOtherTargets(t *testing.T) {
	s := hashSpec()
	vault := TemplateHash(s, Target{VaultKV: &VaultKVTarget{Mount: "secret", Path: "a"}})
	dir := TemplateHash(s, Target{Directory: &DirectoryTarget{Path: "/etc/tls"}})
	bare := TemplateHash(s, Target{Kubernetes: &KubernetesTarget{Cluster: "prod"}})
	if vault != dir || vault != bare {
		t.Errorf("targets without a template differ: %s %s %s", vault, dir, bare)
	}
	ed := &CertificateSpec{PrivateKey: &PrivateKey{Algorithm: Ed25519}}
	edPKCS8 := &CertificateSpec{PrivateKey: &PrivateKey{Algorithm: Ed25519, Encoding: "PKCS8"}}
	if TemplateHash(ed, Target{}) != TemplateHash(edPKCS8, Target{}) {
		t.Errorf("an Ed25519 key's default encoding is PKCS8; writing it must change nothing")
	}
}

// TestHashesAreStable pins the hashes of two specs: a change here reissues
// or rewrites every certificate of every fleet, so it must be deliberate.
func TestHashesAreStable(t *testing.T) {
	tmpl := Target{Kubernetes: &KubernetesTarget{SecretTemplate: &SecretTemplate{Labels: map[string]string{"a": "b"}}}}
	tests := []struct {
		name         string
		spec         CertificateSpec
		issue, templ string
	}{
		{name: "a minimal spec", spec: CertificateSpec{Issuer: "fleet", DNSNames: []string{"api.payments.svc"}},
			issue: "a0e952f046740047772d", templ: "d7c4821282caff1434c7"},
		{name: "a full spec", spec: CertificateSpec{Issuer: "fleet", CommonName: "api", DNSNames: []string{"b.example.com", "a.example.com"},
			IPAddresses: []string{"10.0.0.1"}, URIs: []string{"spiffe://fleet.test/ns/payments/sa/api"}, Usages: []KeyUsage{"server auth", "client auth"},
			Duration: "30d", RenewBeforePercentage: ptr(25), PrivateKey: &PrivateKey{Algorithm: RSA, Size: 3072, Encoding: "PKCS8"},
			Subject: &Subject{Organizations: []string{"Example"}}},
			issue: "7290e7ba9f96a3704422", templ: "4bde57397052272ada1c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IssueHash(&tt.spec); got != tt.issue {
				t.Errorf("IssueHash = %s, want %s", got, tt.issue)
			}
			if got := TemplateHash(&tt.spec, tmpl); got != tt.templ {
				t.Errorf("TemplateHash = %s, want %s", got, tt.templ)
			}
		})
	}
}
