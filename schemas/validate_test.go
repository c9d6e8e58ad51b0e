package schemas

import (
	"sort"
	"strings"
	"testing"
	"time"
)

// fieldErr is an expected validation error: its field and a part of its
// message (problem and hint).
type fieldErr struct{ field, contains string }

// checkErrors compares errors with the expected ones, field by field.
func checkErrors(t *testing.T, got Errors, want []fieldErr) {
	t.Helper()
	sort.SliceStable(got, func(i, j int) bool { return got[i].Field < got[j].Field })
	sort.SliceStable(want, func(i, j int) bool { return want[i].field < want[j].field })
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		msg := g.Problem + "; " + g.Hint
		if g.Field != w.field || !strings.Contains(msg, w.contains) {
			t.Errorf("error %d is %s: %s\nwant %s: …%s…", i, g.Field, msg, w.field, w.contains)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// validCertificate is a certificate every rule accepts; cases change one thing.
func validCertificate() *Certificate {
	return &Certificate{
		TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindCertificate},
		Metadata: ObjectMeta{Name: "api", Namespace: "payments"},
		Spec: CertificateSpec{
			Issuer:   "fleet",
			DNSNames: []string{"api.payments.svc"},
			Targets: []Target{{Kubernetes: &KubernetesTarget{
				Cluster: "prod", Namespace: "payments", SecretName: "api-tls",
			}}},
		},
	}
}

func TestValidateCertificate(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	tests := []struct {
		name   string
		change func(c *Certificate)
		want   []fieldErr
	}{
		{name: "the base certificate is valid", change: func(c *Certificate) {}},

		// metadata
		{name: "a missing name is an error", change: func(c *Certificate) { c.Metadata.Name = "" },
			want: []fieldErr{{"metadata.name", "is missing"}}},
		{name: "an upper-case name is an error", change: func(c *Certificate) { c.Metadata.Name = "API" },
			want: []fieldErr{{"metadata.name", "upper-case"}}},
		{name: "a name with a wildcard is an error", change: func(c *Certificate) { c.Metadata.Name = "*.api" },
			want: []fieldErr{{"metadata.name", `starts with "*"`}}},
		{name: "a dotted name is valid, as Kubernetes names are", change: func(c *Certificate) { c.Metadata.Name = "api.v2" }},
		{name: "a namespace with a dot is an error", change: func(c *Certificate) { c.Metadata.Namespace = "pay.ments" },
			want: []fieldErr{{"metadata.namespace", `has '.' in label`}}},

		// issuer and names
		{name: "a missing issuer is an error", change: func(c *Certificate) { c.Spec.Issuer = "" },
			want: []fieldErr{{"spec.issuer", "issuer is required"}}},
		{name: "a certificate without SANs and common name is an error", change: func(c *Certificate) { c.Spec.DNSNames = nil },
			want: []fieldErr{{"spec", "no commonName and no subject alternative names"}}},
		{name: "a common name alone is enough", change: func(c *Certificate) { c.Spec.DNSNames, c.Spec.CommonName = nil, "api" }},
		{name: "a URI alone is enough", change: func(c *Certificate) {
			c.Spec.DNSNames, c.Spec.URIs = nil, []string{"spiffe://fleet.test/ns/payments/sa/api"}
		}},
		{name: "a common name of 65 characters is an error", change: func(c *Certificate) { c.Spec.CommonName = strings.Repeat("c", 65) },
			want: []fieldErr{{"spec.commonName", "65 characters long, more than X.509's 64"}}},

		// DNS names
		{name: "a wildcard DNS name is valid", change: func(c *Certificate) { c.Spec.DNSNames = []string{"*.payments.example.com"} }},
		{name: "a DNS name with a 63-character label is valid", change: func(c *Certificate) { c.Spec.DNSNames = []string{label63 + ".example.com"} }},
		{name: "a DNS name with a 64-character label is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{label63 + "a.example.com"} },
			want: []fieldErr{{"spec.dnsNames[0]", "label of 64 characters, more than 63"}}},
		{name: "a DNS name of 254 characters is an error", change: func(c *Certificate) {
			c.Spec.DNSNames = []string{strings.Repeat(label63+".", 3) + strings.Repeat("b", 62)}
		}, want: []fieldErr{{"spec.dnsNames[0]", "254 characters long, more than 253"}}},
		{name: "an upper-case DNS name is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"api.Payments.svc"} },
			want: []fieldErr{{"spec.dnsNames[0]", `upper-case letters in label "Payments"`}}},
		{name: "a DNS name with an underscore is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"ok.example.com", "my_api.example.com"} },
			want: []fieldErr{{"spec.dnsNames[1]", `'_' in label "my_api"`}}},
		{name: "a DNS name with two dots in a row is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"api..example.com"} },
			want: []fieldErr{{"spec.dnsNames[0]", "empty label"}}},
		{name: "a DNS name with a trailing dot is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"api.example.com."} },
			want: []fieldErr{{"spec.dnsNames[0]", "empty label"}}},
		{name: "an empty DNS name is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{""} },
			want: []fieldErr{{"spec.dnsNames[0]", "is empty"}}},
		{name: "a label starting with a hyphen is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"-api.example.com"} },
			want: []fieldErr{{"spec.dnsNames[0]", `starts or ends with "-"`}}},
		{name: "a wildcard that is not leading is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"api.*.example.com"} },
			want: []fieldErr{{"spec.dnsNames[0]", `"*" where only a leading "*." is allowed`}}},
		{name: "a double wildcard is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"*.*.example.com"} },
			want: []fieldErr{{"spec.dnsNames[0]", `"*" where only a leading "*." is allowed`}}},
		{name: "a bare wildcard is an error", change: func(c *Certificate) { c.Spec.DNSNames = []string{"*"} },
			want: []fieldErr{{"spec.dnsNames[0]", `"*" where only a leading "*." is allowed`}}},

		// IP addresses
		{name: "IPv4 and IPv6 addresses are valid", change: func(c *Certificate) { c.Spec.IPAddresses = []string{"10.0.0.1", "fd00::1"} }},
		{name: "an IPv4 address out of range is an error", change: func(c *Certificate) { c.Spec.IPAddresses = []string{"10.0.0.256"} },
			want: []fieldErr{{"spec.ipAddresses[0]", "is not an IP address"}}},
		{name: "a CIDR is not an IP address", change: func(c *Certificate) { c.Spec.IPAddresses = []string{"10.0.0.0/8"} },
			want: []fieldErr{{"spec.ipAddresses[0]", "is not an IP address"}}},

		// URIs and SPIFFE IDs
		{name: "an https URI is valid", change: func(c *Certificate) { c.Spec.URIs = []string{"https://payments.example.com/api"} }},
		{name: "a SPIFFE ID is valid", change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://td/ns/x"} }},
		{name: "a SPIFFE ID with an upper-case trust domain is an error", change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://Trust.Domain/x"} },
			want: []fieldErr{{"spec.uris[0]", "is not a valid SPIFFE ID"}}},
		{name: "a SPIFFE ID with a dot-dot segment is an error", change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://td/a/../b"} },
			want: []fieldErr{{"spec.uris[0]", "is not a valid SPIFFE ID"}}},
		{name: "a SPIFFE ID with an empty segment is an error", change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://td/a//b"} },
			want: []fieldErr{{"spec.uris[0]", "is not a valid SPIFFE ID"}}},
		{name: "a SPIFFE ID with a query is an error", change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://td/a?b=c"} },
			want: []fieldErr{{"spec.uris[0]", "no query or fragment"}}},
		{name: "a relative URI is an error", change: func(c *Certificate) { c.Spec.URIs = []string{"/ns/payments"} },
			want: []fieldErr{{"spec.uris[0]", "not an absolute URI"}}},
		{name: "a URI that does not parse is an error", change: func(c *Certificate) { c.Spec.URIs = []string{"https://[::1"} },
			want: []fieldErr{{"spec.uris[0]", "is not a valid URI"}}},

		// e-mail addresses
		{name: "a bare e-mail address is valid", change: func(c *Certificate) { c.Spec.EmailAddresses = []string{"pki@example.com"} }},
		{name: "an e-mail address with a display name is an error", change: func(c *Certificate) { c.Spec.EmailAddresses = []string{"PKI <pki@example.com>"} },
			want: []fieldErr{{"spec.emailAddresses[0]", "is not a bare e-mail address"}}},
		{name: "a word is not an e-mail address", change: func(c *Certificate) { c.Spec.EmailAddresses = []string{"pki"} },
			want: []fieldErr{{"spec.emailAddresses[0]", "is not a bare e-mail address"}}},

		// usages
		{name: "known usages are valid", change: func(c *Certificate) { c.Spec.Usages = []KeyUsage{"server auth", "client auth", "digital signature"} }},
		{name: "an unknown usage suggests the nearest", change: func(c *Certificate) { c.Spec.Usages = []KeyUsage{"server auth", "clientauth"} },
			want: []fieldErr{{"spec.usages[1]", `unknown usage "clientauth"; did you mean "client auth"?`}}},
		{name: "an unknown usage near none lists cert-manager's names", change: func(c *Certificate) { c.Spec.Usages = []KeyUsage{"everything"} },
			want: []fieldErr{{"spec.usages[0]", "use cert-manager's names: signing, digital signature"}}},
		{name: "a usage listed twice is an error", change: func(c *Certificate) { c.Spec.Usages = []KeyUsage{"server auth", "server auth"} },
			want: []fieldErr{{"spec.usages[1]", `usage "server auth" appears twice`}}},

		// durations
		{name: "a duration in days is valid", change: func(c *Certificate) { c.Spec.Duration = "90d" }},
		{name: "a duration in days and hours is valid", change: func(c *Certificate) { c.Spec.Duration = "1d12h" }},
		{name: "a Go duration is valid", change: func(c *Certificate) { c.Spec.Duration = "2160h" }},
		{name: "a duration of fractional days is an error", change: func(c *Certificate) { c.Spec.Duration = "1.5d" },
			want: []fieldErr{{"spec.duration", `"1.5d" is not a duration`}}},
		{name: "a negative duration is an error", change: func(c *Certificate) { c.Spec.Duration = "-24h" },
			want: []fieldErr{{"spec.duration", `"-24h" is not a duration`}}},
		{name: "a duration without a unit is an error", change: func(c *Certificate) { c.Spec.Duration = "90" },
			want: []fieldErr{{"spec.duration", `"90" is not a duration; write a duration such as "2160h", "90d" or "1d12h"`}}},
		{name: "a duration shorter than two minutes is an error", change: func(c *Certificate) { c.Spec.Duration = "90s" },
			want: []fieldErr{{"spec.duration", "duration 90s is shorter than 2m"}}},
		{name: "a duration beyond what a time.Duration holds is an error, not an overflow", change: func(c *Certificate) { c.Spec.Duration = "300000d" },
			want: []fieldErr{{"spec.duration", "too long a duration"}}},
		{name: "renewBefore shorter than the duration is valid", change: func(c *Certificate) { c.Spec.Duration, c.Spec.RenewBefore = "30d", "10d" }},
		{name: "renewBefore equal to the duration is an error", change: func(c *Certificate) { c.Spec.Duration, c.Spec.RenewBefore = "30d", "720h" },
			want: []fieldErr{{"spec.renewBefore", "renewBefore 720h is not shorter than the duration 30d:"}}},
		{name: "renewBefore longer than the default duration is an error", change: func(c *Certificate) { c.Spec.RenewBefore = "91d" },
			want: []fieldErr{{"spec.renewBefore", "renewBefore 91d is not shorter than the default duration 90d:"}}},
		{name: "a renewBefore of zero is an error", change: func(c *Certificate) { c.Spec.RenewBefore = "0s" },
			want: []fieldErr{{"spec.renewBefore", "renewBefore 0s is zero"}}},
		{name: "a renewBefore that is not a duration is an error", change: func(c *Certificate) { c.Spec.RenewBefore = "soon" },
			want: []fieldErr{{"spec.renewBefore", `"soon" is not a duration`}}},
		{name: "renewBefore and renewBeforePercentage together are an error", change: func(c *Certificate) {
			c.Spec.RenewBefore, c.Spec.RenewBeforePercentage = "10d", ptr(25)
		}, want: []fieldErr{{"spec.renewBeforePercentage", "renewBefore and renewBeforePercentage are both set"}}},
		{name: "a percentage of 1 is valid", change: func(c *Certificate) { c.Spec.RenewBeforePercentage = ptr(1) }},
		{name: "a percentage of 99 is valid", change: func(c *Certificate) { c.Spec.RenewBeforePercentage = ptr(99) }},
		{name: "a percentage of 0 is out of range", change: func(c *Certificate) { c.Spec.RenewBeforePercentage = ptr(0) },
			want: []fieldErr{{"spec.renewBeforePercentage", "renewBeforePercentage 0 is out of range; use a percentage from 1 to 99"}}},
		{name: "a percentage of 100 is out of range", change: func(c *Certificate) { c.Spec.RenewBeforePercentage = ptr(100) },
			want: []fieldErr{{"spec.renewBeforePercentage", "renewBeforePercentage 100 is out of range"}}},

		// signature algorithms
		{name: "SHA256WithRSA is valid", change: func(c *Certificate) { c.Spec.SignatureAlgorithm = "SHA256WithRSA" }},
		{name: "PureEd25519 is valid", change: func(c *Certificate) { c.Spec.SignatureAlgorithm = "PureEd25519" }},
		{name: "SHA-1 with RSA is rejected as weak", change: func(c *Certificate) { c.Spec.SignatureAlgorithm = "SHA1WithRSA" },
			want: []fieldErr{{"spec.signatureAlgorithm", "is weak (SHA-1/MD5), a floor no policy can lower"}}},
		{name: "ECDSA with SHA-1 is rejected as weak", change: func(c *Certificate) { c.Spec.SignatureAlgorithm = "ECDSAWithSHA1" },
			want: []fieldErr{{"spec.signatureAlgorithm", "is weak"}}},
		{name: "MD5 with RSA is rejected as weak", change: func(c *Certificate) { c.Spec.SignatureAlgorithm = "MD5WithRSA" },
			want: []fieldErr{{"spec.signatureAlgorithm", "is weak"}}},
		{name: "an unknown signature algorithm lists the known ones", change: func(c *Certificate) { c.Spec.SignatureAlgorithm = "SHA256WithDSA" },
			want: []fieldErr{{"spec.signatureAlgorithm", "use one of SHA256WithRSA, SHA384WithRSA"}}},

		// private keys
		{name: "RSA 2048 is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 2048} }},
		{name: "RSA 3072 is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 3072} }},
		{name: "RSA 4096 is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 4096} }},
		{name: "RSA without a size is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA} }},
		{name: "ECDSA 256 is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: ECDSA, Size: 256} }},
		{name: "ECDSA 384 is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: ECDSA, Size: 384} }},
		{name: "ECDSA 521 is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: ECDSA, Size: 521} }},
		{name: "a size without an algorithm is an ECDSA size", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Size: 384} }},
		{name: "Ed25519 is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: Ed25519} }},
		{name: "a size given for Ed25519 is ignored", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: Ed25519, Size: 256} }},
		{name: "RSA 1024 is rejected as below the floor", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 1024} },
			want: []fieldErr{{"spec.privateKey.size", "RSA key size 1024 is below 2048, a floor no policy can lower; use 2048, 3072 or 4096"}}},
		{name: "RSA 8192 is not a size certfleet issues", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 8192} },
			want: []fieldErr{{"spec.privateKey.size", "RSA keys do not come in size 8192; use 2048, 3072 or 4096"}}},
		{name: "ECDSA 512 is not a curve", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: ECDSA, Size: 512} },
			want: []fieldErr{{"spec.privateKey.size", "ECDSA keys do not come in size 512; use 256, 384 or 521"}}},
		{name: "a size 2048 without an algorithm is an ECDSA error", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Size: 2048} },
			want: []fieldErr{{"spec.privateKey.size", "ECDSA keys do not come in size 2048"}}},
		{name: "an unknown algorithm is an error at the algorithm", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: "DSA", Size: 2048} },
			want: []fieldErr{{"spec.privateKey.algorithm", `unknown algorithm "DSA"; use RSA, ECDSA or Ed25519`}}},
		{name: "algorithms are case-sensitive", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: "rsa"} },
			want: []fieldErr{{"spec.privateKey.algorithm", `unknown algorithm "rsa"`}}},
		{name: "rotation policy Never is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{RotationPolicy: RotationNever} }},
		{name: "an unknown rotation policy is an error", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{RotationPolicy: "Sometimes"} },
			want: []fieldErr{{"spec.privateKey.rotationPolicy", `unknown rotationPolicy "Sometimes"`}}},
		{name: "PKCS8 encoding is valid", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Encoding: "PKCS8"} }},
		{name: "an unknown encoding is an error", change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Encoding: "PEM"} },
			want: []fieldErr{{"spec.privateKey.encoding", `unknown encoding "PEM"; use PKCS1 or PKCS8`}}},
		{name: "Ed25519 with PKCS1 encoding is an error", change: func(c *Certificate) {
			c.Spec.PrivateKey = &PrivateKey{Algorithm: Ed25519, Encoding: "PKCS1"}
		}, want: []fieldErr{{"spec.privateKey.encoding", "Ed25519 keys have no PKCS1 encoding"}}},

		// targets
		{name: "a certificate without targets is valid", change: func(c *Certificate) { c.Spec.Targets = nil }},
		{name: "a target with no kind is an error", change: func(c *Certificate) { c.Spec.Targets = []Target{{}} },
			want: []fieldErr{{"spec.targets[0]", "exactly one of kubernetes, vaultKV, directory (found 0)"}}},
		{name: "a target with two kinds is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Directory = &DirectoryTarget{Path: "/etc/tls"}
		}, want: []fieldErr{{"spec.targets[0]", "(found 2)"}}},
		{name: "a cluster selector is valid", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.Cluster = ""
			c.Spec.Targets[0].Kubernetes.ClusterSelector = &LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
		}},
		{name: "a cluster and a cluster selector together are an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.ClusterSelector = &LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
		}, want: []fieldErr{{"spec.targets[0].kubernetes", "both cluster and clusterSelector are set"}}},
		{name: "neither a cluster nor a cluster selector is an error", change: func(c *Certificate) { c.Spec.Targets[0].Kubernetes.Cluster = "" },
			want: []fieldErr{{"spec.targets[0].kubernetes", "neither cluster nor clusterSelector is set"}}},
		{name: "a cluster selector without labels is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.Cluster = ""
			c.Spec.Targets[0].Kubernetes.ClusterSelector = &LabelSelector{}
		}, want: []fieldErr{{"spec.targets[0].kubernetes.clusterSelector", "an empty selector would pick every cluster"}}},
		{name: "an invalid cluster name is an error", change: func(c *Certificate) { c.Spec.Targets[0].Kubernetes.Cluster = "Prod_EU" },
			want: []fieldErr{{"spec.targets[0].kubernetes.cluster", `cluster "Prod_EU"`}}},
		{name: "a missing namespace is an error", change: func(c *Certificate) { c.Spec.Targets[0].Kubernetes.Namespace = "" },
			want: []fieldErr{{"spec.targets[0].kubernetes.namespace", "is missing"}}},
		{name: "an upper-case namespace is an error", change: func(c *Certificate) { c.Spec.Targets[0].Kubernetes.Namespace = "Payments" },
			want: []fieldErr{{"spec.targets[0].kubernetes.namespace", "upper-case"}}},
		{name: "a missing secret name is an error", change: func(c *Certificate) { c.Spec.Targets[0].Kubernetes.SecretName = "" },
			want: []fieldErr{{"spec.targets[0].kubernetes.secretName", "is missing"}}},
		{name: "a secret name with an underscore is an error", change: func(c *Certificate) { c.Spec.Targets[0].Kubernetes.SecretName = "api_tls" },
			want: []fieldErr{{"spec.targets[0].kubernetes.secretName", `'_'`}}},
		{name: "ordinary secret template labels and annotations are valid", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.SecretTemplate = &SecretTemplate{
				Labels:      map[string]string{"app.kubernetes.io/name": "api", "team": "payments"},
				Annotations: map[string]string{"reloader.stakater.com/match": "true"},
			}
		}},
		{name: "certfleet's own labels are reserved", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.SecretTemplate = &SecretTemplate{Labels: map[string]string{
				"certfleet.dev/certificate": "x", "app.kubernetes.io/managed-by": "me", "team": "payments",
			}}
		}, want: []fieldErr{
			{`spec.targets[0].kubernetes.secretTemplate.labels["app.kubernetes.io/managed-by"]`, `label "app.kubernetes.io/managed-by" is reserved`},
			{`spec.targets[0].kubernetes.secretTemplate.labels["certfleet.dev/certificate"]`, `label "certfleet.dev/certificate" is reserved`},
		}},
		{name: "certfleet's and cert-manager's annotations are reserved", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.SecretTemplate = &SecretTemplate{Annotations: map[string]string{
				"certfleet.dev/issue-hash": "x", "cert-manager.io/issuer-name": "y",
			}}
		}, want: []fieldErr{
			{`spec.targets[0].kubernetes.secretTemplate.annotations["cert-manager.io/issuer-name"]`, "is reserved; choose another annotation"},
			{`spec.targets[0].kubernetes.secretTemplate.annotations["certfleet.dev/issue-hash"]`, "is reserved"},
		}},
		{name: "a Vault KV target is valid", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{VaultKV: &VaultKVTarget{Mount: "secret", Path: "tls/payments/api"}}}
		}},
		{name: "a Vault KV target needs a mount and a path", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{VaultKV: &VaultKVTarget{}}}
		}, want: []fieldErr{{"spec.targets[0].vaultKV.mount", "mount is required"}, {"spec.targets[0].vaultKV.path", "path is required"}}},
		{name: "a Vault KV path with a dot-dot segment is an error", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{VaultKV: &VaultKVTarget{Mount: "secret", Path: "tls/../admin"}}}
		}, want: []fieldErr{{"spec.targets[0].vaultKV.path", `path "tls/../admin" contains ".."`}}},
		{name: "a Vault KV path with two dots inside a name is valid", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{VaultKV: &VaultKVTarget{Mount: "secret", Path: "tls/api..v2"}}}
		}},
		{name: "a directory target is valid", change: func(c *Certificate) { c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "/etc/tls/api"}}} }},
		{name: "a directory target needs a path", change: func(c *Certificate) { c.Spec.Targets = []Target{{Directory: &DirectoryTarget{}}} },
			want: []fieldErr{{"spec.targets[0].directory.path", "path is required"}}},
		{name: "a directory path climbing out with dot-dot is an error", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "tls/../../etc"}}}
		}, want: []fieldErr{{"spec.targets[0].directory.path", `contains ".."; write the directory without ".."`}}},
		{name: "errors in the second target name its index", change: func(c *Certificate) {
			c.Spec.Targets = append(c.Spec.Targets, Target{Directory: &DirectoryTarget{Path: "../x"}})
		}, want: []fieldErr{{"spec.targets[1].directory.path", `contains ".."`}}},
		{name: "a directory path naming certfleet's ..data inside a target is an error", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "web/www/..data"}}}
		}, want: []fieldErr{{"spec.targets[0].directory.path", `component "..data": names starting with ".." are reserved`}}},
		{name: "a directory path naming a bundle file of a target is an error", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "web/tls.crt/x"}}}
		}, want: []fieldErr{{"spec.targets[0].directory.path", `component "tls.crt": it is one of the files certfleet writes`}}},
		{name: "a probe with an address, a server name and a grace is valid", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "/etc/tls/api"},
				Probe: &Probe{Address: "[fd00::1]:8443", ServerName: "api.example.com", Grace: "10m"}}}
		}},
		{name: "a probe on a single-cluster Secret is valid", change: func(c *Certificate) {
			c.Spec.Targets[0].Probe = &Probe{Address: "api.internal:443"}
		}},
		{name: "a probe needs an address", change: func(c *Certificate) {
			c.Spec.Targets[0].Probe = &Probe{ServerName: "api.example.com"}
		}, want: []fieldErr{{"spec.targets[0].probe.address", "address is required"}}},
		{name: "a probe address without a port is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Probe = &Probe{Address: "api.internal"}
		}, want: []fieldErr{{"spec.targets[0].probe.address", `address "api.internal" is not host:port`}}},
		{name: "a probe address with port 0 is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Probe = &Probe{Address: "api.internal:0"}
		}, want: []fieldErr{{"spec.targets[0].probe.address", `has port "0"; use a port from 1 to 65535`}}},
		{name: "a probe server name that is not a DNS name is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Probe = &Probe{Address: "api.internal:443", ServerName: "api example"}
		}, want: []fieldErr{{"spec.targets[0].probe.serverName", `serverName "api example"`}}},
		{name: "a probe grace that is not a duration is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Probe = &Probe{Address: "api.internal:443", Grace: "soon"}
		}, want: []fieldErr{{"spec.targets[0].probe.grace", `"soon" is not a duration`}}},
		{name: "a probe grace of zero is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Probe = &Probe{Address: "api.internal:443", Grace: "0s"}
		}, want: []fieldErr{{"spec.targets[0].probe.grace", "grace 0s is zero"}}},
		{name: "a probe on a clusterSelector target is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.Cluster = ""
			c.Spec.Targets[0].Kubernetes.ClusterSelector = &LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
			c.Spec.Targets[0].Probe = &Probe{Address: "api.internal:443"}
		}, want: []fieldErr{{"spec.targets[0].probe", "a probe dials one address, but a clusterSelector delivers to several clusters"}}},
		{name: "a restart of a Deployment, a StatefulSet or a DaemonSet is valid", change: func(c *Certificate) {
			c.Spec.Targets[0].Restart = &Restart{Kind: StatefulSet, Name: "api"}
		}},
		{name: "a restart on a clusterSelector target is valid: each selected cluster restarts its own", change: func(c *Certificate) {
			c.Spec.Targets[0].Kubernetes.Cluster = ""
			c.Spec.Targets[0].Kubernetes.ClusterSelector = &LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
			c.Spec.Targets[0].Restart = &Restart{Kind: DaemonSet, Name: "api"}
		}},
		{name: "a restart needs a kind and a name", change: func(c *Certificate) {
			c.Spec.Targets[0].Restart = &Restart{}
		}, want: []fieldErr{{"spec.targets[0].restart.kind", "kind is required"}, {"spec.targets[0].restart.name", "name is required"}}},
		{name: "a restart of another kind is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Restart = &Restart{Kind: "Pod", Name: "api"}
		}, want: []fieldErr{{"spec.targets[0].restart.kind", `unknown kind "Pod"`}}},
		{name: "a restart naming no Kubernetes object is an error", change: func(c *Certificate) {
			c.Spec.Targets[0].Restart = &Restart{Kind: Deployment, Name: "Payments API"}
		}, want: []fieldErr{{"spec.targets[0].restart.name", `name "Payments API"`}}},
		{name: "a restart on a directory target is an error", change: func(c *Certificate) {
			c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "/etc/tls/api"}, Restart: &Restart{Kind: Deployment, Name: "api"}}}
		}, want: []fieldErr{{"spec.targets[0].restart", "this target is not a Kubernetes Secret"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCertificate()
			tt.change(c)
			checkErrors(t, Validate(c), tt.want)
		})
	}
}

func TestValidateAuthority(t *testing.T) {
	valid := func() *Authority {
		return &Authority{Metadata: ObjectMeta{Name: "root"}, Spec: AuthoritySpec{Type: AuthorityRoot, Mount: "pki-root", CommonName: "Fleet Root CA"}}
	}
	tests := []struct {
		name   string
		change func(a *AuthoritySpec)
		want   []fieldErr
	}{
		{name: "a root authority is valid", change: func(a *AuthoritySpec) {}},
		{name: "an intermediate with a parent is valid", change: func(a *AuthoritySpec) { a.Type, a.Parent = AuthorityIntermediate, "root" }},
		{name: "a root with a parent is an error", change: func(a *AuthoritySpec) { a.Parent = "other" },
			want: []fieldErr{{"spec.parent", "a root authority has no parent"}}},
		{name: "an intermediate without a parent is an error", change: func(a *AuthoritySpec) { a.Type = AuthorityIntermediate },
			want: []fieldErr{{"spec.parent", "an intermediate authority needs a parent"}}},
		{name: "a missing type is an error", change: func(a *AuthoritySpec) { a.Type = "" },
			want: []fieldErr{{"spec.type", "type is required; use root or intermediate"}}},
		{name: "an unknown type is an error", change: func(a *AuthoritySpec) { a.Type = "subordinate" },
			want: []fieldErr{{"spec.type", `unknown type "subordinate"`}}},
		{name: "a missing mount is an error", change: func(a *AuthoritySpec) { a.Mount = "" },
			want: []fieldErr{{"spec.mount", "mount is required"}}},
		{name: "a mount with slashes around it is an error", change: func(a *AuthoritySpec) { a.Mount = "/pki/" },
			want: []fieldErr{{"spec.mount", `mount "/pki/" is not a clean path`}}},
		{name: "a nested mount is valid", change: func(a *AuthoritySpec) { a.Mount = "pki/fleet/root" }},
		{name: "a missing common name is an error", change: func(a *AuthoritySpec) { a.CommonName = "" },
			want: []fieldErr{{"spec.commonName", "commonName is required"}}},
		{name: "rsa 4096 is valid", change: func(a *AuthoritySpec) { a.KeyType, a.KeyBits = "rsa", 4096 }},
		{name: "ec 384 is valid", change: func(a *AuthoritySpec) { a.KeyType, a.KeyBits = "ec", 384 }},
		{name: "ed25519 ignores key bits", change: func(a *AuthoritySpec) { a.KeyType, a.KeyBits = "ed25519", 256 }},
		{name: "rsa 1024 is below the floor", change: func(a *AuthoritySpec) { a.KeyType, a.KeyBits = "rsa", 1024 },
			want: []fieldErr{{"spec.keyBits", "RSA key size 1024 is below 2048"}}},
		{name: "ec 512 is not a curve", change: func(a *AuthoritySpec) { a.KeyBits = 512 },
			want: []fieldErr{{"spec.keyBits", "key type ec does not come in 512 bits; use 256, 384 or 521"}}},
		{name: "an unknown key type is an error at the key type", change: func(a *AuthoritySpec) { a.KeyType = "ecdsa" },
			want: []fieldErr{{"spec.keyType", `unknown key type "ecdsa"; use rsa, ec or ed25519`}}},
		{name: "an authority may not use key type any", change: func(a *AuthoritySpec) { a.KeyType = "any" },
			want: []fieldErr{{"spec.keyType", `unknown key type "any"`}}},
		{name: "an invalid ttl is an error", change: func(a *AuthoritySpec) { a.TTL = "10y" },
			want: []fieldErr{{"spec.ttl", `"10y" is not a duration`}}},
		{name: "rotateBefore shorter than the ttl is valid", change: func(a *AuthoritySpec) { a.TTL, a.RotateBefore = "3650d", "365d" }},
		{name: "rotateBefore equal to the ttl is an error", change: func(a *AuthoritySpec) { a.TTL, a.RotateBefore = "365d", "8760h" },
			want: []fieldErr{{"spec.rotateBefore", "rotateBefore 8760h is not shorter than the ttl 365d"}}},
		{name: "rotateBefore is compared with an intermediate's default ttl", change: func(a *AuthoritySpec) {
			a.Type, a.Parent, a.RotateBefore = AuthorityIntermediate, "root", "2000d"
		}, want: []fieldErr{{"spec.rotateBefore", "not shorter than the ttl 1825d"}}},
		{name: "an invalid rotateBefore is an error", change: func(a *AuthoritySpec) { a.RotateBefore = "a while" },
			want: []fieldErr{{"spec.rotateBefore", "is not a duration"}}},
		{name: "maxPathLength -1 means no limit", change: func(a *AuthoritySpec) { a.MaxPathLength = ptr(-1) }},
		{name: "maxPathLength below -1 is an error", change: func(a *AuthoritySpec) { a.MaxPathLength = ptr(-2) },
			want: []fieldErr{{"spec.maxPathLength", "maxPathLength -2 is below -1"}}},
		{name: "permitted domains with a leading dot are valid", change: func(a *AuthoritySpec) { a.PermittedDNSDomains = []string{".fleet.test", "example.com"} }},
		{name: "a permitted domain with an underscore is an error", change: func(a *AuthoritySpec) { a.PermittedDNSDomains = []string{"ok.test", "bad_.test"} },
			want: []fieldErr{{"spec.permittedDNSDomains[1]", `"bad_.test" is not a valid DNS domain`}}},
		{name: "publication URLs must be absolute", change: func(a *AuthoritySpec) {
			a.IssuingCertificates = []string{"http://pki.example.com/ca"}
			a.CRLDistributionPoints = []string{"crl"}
			a.OCSPServers = []string{"ocsp.example.com"}
		}, want: []fieldErr{
			{"spec.crlDistributionPoints[0]", "not an absolute URI"},
			{"spec.ocspServers[0]", "not an absolute URI"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid()
			tt.change(&a.Spec)
			checkErrors(t, Validate(a), tt.want)
		})
	}
}

func TestAuthorityLifetimes(t *testing.T) {
	year := 365 * 24 * time.Hour
	tests := []struct {
		name             string
		spec             AuthoritySpec
		lifetime, rotate time.Duration
	}{
		{"a root lives ten years and rotates with a third left", AuthoritySpec{Type: AuthorityRoot}, 10 * year, 10 * year / 3},
		{"an intermediate lives five years", AuthoritySpec{Type: AuthorityIntermediate}, 5 * year, 5 * year / 3},
		{"a ttl and rotateBefore are honoured", AuthoritySpec{Type: AuthorityRoot, TTL: "100d", RotateBefore: "10d"}, 100 * 24 * time.Hour, 10 * 24 * time.Hour},
		{"an invalid ttl falls back to the default", AuthoritySpec{Type: AuthorityRoot, TTL: "x"}, 10 * year, 10 * year / 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.Lifetime(); got != tt.lifetime {
				t.Errorf("Lifetime() = %v, want %v", got, tt.lifetime)
			}
			if got := tt.spec.RotationLead(); got != tt.rotate {
				t.Errorf("RotationLead() = %v, want %v", got, tt.rotate)
			}
		})
	}
}

func TestValidateIssuer(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *IssuerSpec)
		want   []fieldErr
	}{
		{name: "an issuer naming its authority is valid", change: func(s *IssuerSpec) {}},
		{name: "a missing authority is an error", change: func(s *IssuerSpec) { s.Authority = "" },
			want: []fieldErr{{"spec.authority", "authority is required"}}},
		{name: "ttl within maxTTL is valid", change: func(s *IssuerSpec) { s.TTL, s.MaxTTL = "30d", "90d" }},
		{name: "ttl longer than maxTTL is an error", change: func(s *IssuerSpec) { s.TTL, s.MaxTTL = "90d", "720h" },
			want: []fieldErr{{"spec.ttl", "ttl 90d is longer than maxTTL 720h; make ttl at most maxTTL"}}},
		{name: "an invalid ttl is an error", change: func(s *IssuerSpec) { s.TTL = "1 month" },
			want: []fieldErr{{"spec.ttl", "is not a duration"}}},
		{name: "an invalid maxTTL is an error", change: func(s *IssuerSpec) { s.MaxTTL = "1y" },
			want: []fieldErr{{"spec.maxTTL", "is not a duration"}}},
		{name: "key type any is valid for a role", change: func(s *IssuerSpec) { s.KeyType = "any" }},
		{name: "rsa 3072 is valid", change: func(s *IssuerSpec) { s.KeyType, s.KeyBits = "rsa", 3072 }},
		{name: "rsa 1024 is below the floor", change: func(s *IssuerSpec) { s.KeyType, s.KeyBits = "rsa", 1024 },
			want: []fieldErr{{"spec.keyBits", "below 2048"}}},
		{name: "bad key bits for ec are an error", change: func(s *IssuerSpec) { s.KeyType, s.KeyBits = "ec", 255 },
			want: []fieldErr{{"spec.keyBits", "key type ec does not come in 255 bits"}}},
		{name: "an unknown key type is an error at the key type", change: func(s *IssuerSpec) { s.KeyType = "dsa" },
			want: []fieldErr{{"spec.keyType", `unknown key type "dsa"; use rsa, ec, ed25519 or any`}}},
		{name: "allowed domains are valid DNS names", change: func(s *IssuerSpec) { s.AllowedDomains = []string{"payments.svc", "example.com"} }},
		{name: "a glob domain needs allowGlobDomains", change: func(s *IssuerSpec) { s.AllowedDomains = []string{"*.payments.svc"} },
			want: []fieldErr{{"spec.allowedDomains[0]", `"*.payments.svc" is a glob, but allowGlobDomains is false; set allowGlobDomains: true, or allow "payments.svc" with allowSubdomains: true`}}},
		{name: "an invalid domain is an error", change: func(s *IssuerSpec) { s.AllowedDomains = []string{"payments..svc"} },
			want: []fieldErr{{"spec.allowedDomains[0]", `"payments..svc" is not a valid domain: it has an empty label`}}},
		{name: "a glob domain with allowGlobDomains is valid", change: func(s *IssuerSpec) {
			s.AllowedDomains, s.AllowGlobDomains = []string{"*.payments.svc", "api-*.example.com"}, true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := &Issuer{Metadata: ObjectMeta{Name: "fleet"}, Spec: IssuerSpec{Authority: "intermediate"}}
			tt.change(&i.Spec)
			checkErrors(t, Validate(i), tt.want)
		})
	}
}

func TestIssuerDefaults(t *testing.T) {
	s := IssuerSpec{}
	if s.RoleName("fleet") != "fleet" || !s.Server() || !s.Client() {
		t.Errorf("defaults: role %q server %v client %v", s.RoleName("fleet"), s.Server(), s.Client())
	}
	s = IssuerSpec{Role: "web", ServerFlag: ptr(false), ClientFlag: ptr(false)}
	if s.RoleName("fleet") != "web" || s.Server() || s.Client() {
		t.Errorf("set: role %q server %v client %v", s.RoleName("fleet"), s.Server(), s.Client())
	}
}

func TestValidateCluster(t *testing.T) {
	const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name string
		spec ClusterSpec
		want []fieldErr
	}{
		{name: "a server with Vault KV credentials is valid",
			spec: ClusterSpec{Server: "https://10.0.0.1:6443", CACertificate: pem, Credentials: ClusterCredentials{VaultKVPath: "secret/clusters/prod"}}},
		{name: "a kubeconfig context alone is valid",
			spec: ClusterSpec{Credentials: ClusterCredentials{KubeconfigContext: "prod"}}},
		{name: "both credentials are an error",
			spec: ClusterSpec{Server: "https://k8s.example.com", Credentials: ClusterCredentials{VaultKVPath: "secret/x", KubeconfigContext: "prod"}},
			want: []fieldErr{{"spec.credentials", "both vaultKVPath and kubeconfigContext are set"}}},
		{name: "no credentials are an error",
			spec: ClusterSpec{Server: "https://k8s.example.com"},
			want: []fieldErr{{"spec.credentials", "no credentials source"}}},
		{name: "Vault KV credentials need a server",
			spec: ClusterSpec{Credentials: ClusterCredentials{VaultKVPath: "secret/x"}},
			want: []fieldErr{{"spec.server", "server is required with vaultKVPath credentials"}}},
		{name: "a plain http server is an error",
			spec: ClusterSpec{Server: "http://10.0.0.1:6443", Credentials: ClusterCredentials{KubeconfigContext: "prod"}},
			want: []fieldErr{{"spec.server", `server "http://10.0.0.1:6443" is not an https:// URL`}}},
		{name: "a server without a host is an error",
			spec: ClusterSpec{Server: "https://", Credentials: ClusterCredentials{KubeconfigContext: "prod"}},
			want: []fieldErr{{"spec.server", "is not an https:// URL with a host"}}},
		{name: "a server that is not a URL is an error",
			spec: ClusterSpec{Server: "https://[::1", Credentials: ClusterCredentials{KubeconfigContext: "prod"}},
			want: []fieldErr{{"spec.server", "is not a valid URI"}}},
		{name: "a CA certificate that is not PEM is an error",
			spec: ClusterSpec{CACertificate: "MIIB...", Credentials: ClusterCredentials{KubeconfigContext: "prod"}},
			want: []fieldErr{{"spec.caCertificate", "caCertificate is not a PEM certificate"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, Validate(&Cluster{Metadata: ObjectMeta{Name: "prod"}, Spec: tt.spec}), tt.want)
		})
	}
}

func TestValidateTrustBundle(t *testing.T) {
	k8s := func(change func(k *TrustBundleKubernetesTarget)) []TrustBundleTarget {
		k := &TrustBundleKubernetesTarget{Cluster: "prod", Namespace: "payments", Name: "fleet-roots"}
		change(k)
		return []TrustBundleTarget{{Kubernetes: k}}
	}
	tests := []struct {
		name string
		spec TrustBundleSpec
		want []fieldErr
	}{
		{name: "a bundle to a ConfigMap is valid", spec: TrustBundleSpec{Authorities: []string{"root"}, Targets: k8s(func(k *TrustBundleKubernetesTarget) {})}},
		{name: "a bundle to a Secret with a key is valid", spec: TrustBundleSpec{Authorities: []string{"root"},
			Targets: k8s(func(k *TrustBundleKubernetesTarget) { k.Kind, k.Key = "Secret", "roots.pem" })}},
		{name: "a bundle to a directory is valid", spec: TrustBundleSpec{Authorities: []string{"root"}, Targets: []TrustBundleTarget{{Directory: &DirectoryTarget{Path: "/etc/ssl/fleet"}}}}},
		{name: "a bundle without authorities or targets is an error", spec: TrustBundleSpec{},
			want: []fieldErr{{"spec.authorities", "authorities is empty"}, {"spec.targets", "targets is empty"}}},
		{name: "a target with no kind is an error", spec: TrustBundleSpec{Authorities: []string{"root"}, Targets: []TrustBundleTarget{{}}},
			want: []fieldErr{{"spec.targets[0]", "exactly one of kubernetes, directory (found 0)"}}},
		{name: "a target with both kinds is an error", spec: TrustBundleSpec{Authorities: []string{"root"}, Targets: []TrustBundleTarget{{
			Kubernetes: &TrustBundleKubernetesTarget{Cluster: "prod", Namespace: "payments", Name: "roots"}, Directory: &DirectoryTarget{Path: "/etc/ssl"},
		}}}, want: []fieldErr{{"spec.targets[0]", "(found 2)"}}},
		{name: "a kubernetes target needs a cluster", spec: TrustBundleSpec{Authorities: []string{"root"},
			Targets: k8s(func(k *TrustBundleKubernetesTarget) { k.Cluster = "" })},
			want: []fieldErr{{"spec.targets[0].kubernetes", "neither cluster nor clusterSelector is set"}}},
		{name: "a kubernetes target needs a namespace and a name", spec: TrustBundleSpec{Authorities: []string{"root"},
			Targets: k8s(func(k *TrustBundleKubernetesTarget) { k.Namespace, k.Name = "", "" })},
			want: []fieldErr{{"spec.targets[0].kubernetes.name", "is missing"}, {"spec.targets[0].kubernetes.namespace", "is missing"}}},
		{name: "an unknown object kind is an error", spec: TrustBundleSpec{Authorities: []string{"root"},
			Targets: k8s(func(k *TrustBundleKubernetesTarget) { k.Kind = "Deployment" })},
			want: []fieldErr{{"spec.targets[0].kubernetes.kind", `unknown kind "Deployment"; use ConfigMap or Secret`}}},
		{name: "a directory with dot-dot is an error", spec: TrustBundleSpec{Authorities: []string{"root"}, Targets: []TrustBundleTarget{{Directory: &DirectoryTarget{Path: "/etc/../root"}}}},
			want: []fieldErr{{"spec.targets[0].directory.path", `contains ".."`}}},
		{name: "a directory naming a certificate's data directory is an error", spec: TrustBundleSpec{Authorities: []string{"root"}, Targets: []TrustBundleTarget{{Directory: &DirectoryTarget{Path: "web/..2026_01_01_00_00_00.1"}}}},
			want: []fieldErr{{"spec.targets[0].directory.path", `names starting with ".." are reserved`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, Validate(&TrustBundle{Metadata: ObjectMeta{Name: "fleet-roots"}, Spec: tt.spec}), tt.want)
		})
	}
}

func TestValidateCertificateSetShape(t *testing.T) {
	tests := []struct {
		name string
		spec CertificateSetSpec
		want []fieldErr
	}{
		{name: "a set with a name template, a template and items is valid", spec: CertificateSetSpec{
			NameTemplate: "${service}-tls", Template: map[string]any{"issuer": "fleet"}, Items: []map[string]string{{"service": "api"}},
		}},
		{name: "an empty template is an error", spec: CertificateSetSpec{
			NameTemplate: "${service}-tls", Template: map[string]any{}, Items: []map[string]string{{"service": "api"}},
		}, want: []fieldErr{{"spec.template", "template is empty"}}},
		{name: "an empty set names each missing part", spec: CertificateSetSpec{}, want: []fieldErr{
			{"spec.items", "items is empty: the set makes no certificates"},
			{"spec.nameTemplate", "nameTemplate is required"},
			{"spec.template", "template is required"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, Validate(&CertificateSet{Metadata: ObjectMeta{Name: "services"}, Spec: tt.spec}), tt.want)
		})
	}
}

func TestValidateOtherKinds(t *testing.T) {
	checkErrors(t, Validate(&Policy{Metadata: ObjectMeta{Name: "p"}, Spec: PolicySpec{MaxSANs: -1}}),
		[]fieldErr{{"spec.maxSANs", "maxSANs -1 is negative"}})
	checkErrors(t, Validate(&Policy{Metadata: ObjectMeta{Name: "P"}}), []fieldErr{{"metadata.name", "upper-case"}})
	checkErrors(t, Validate(&CertificateSpec{}), []fieldErr{{"", "cannot validate *schemas.CertificateSpec"}})
}

func TestDurationParse(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name    string
		in      Duration
		want    time.Duration
		wantErr string
	}{
		{name: "empty is zero", in: "", want: 0},
		{name: "Go's hours", in: "2160h", want: 2160 * time.Hour},
		{name: "Go's mixed units", in: "1h30m", want: 90 * time.Minute},
		{name: "days", in: "90d", want: 90 * day},
		{name: "days and hours", in: "1d12h", want: 36 * time.Hour},
		{name: "days, hours and minutes", in: "2d3h4m", want: 2*day + 3*time.Hour + 4*time.Minute},
		{name: "zero days", in: "0d", want: 0},
		{name: "zero", in: "0", want: 0},
		{name: "surrounding space is ignored", in: " 30d ", want: 30 * day},
		{name: "fractional hours", in: "1.5h", want: 90 * time.Minute},
		{name: "fractional days are not a duration", in: "1.5d", wantErr: `"1.5d" is not a duration`},
		{name: "days after hours are not a duration", in: "12h1d", wantErr: `"12h1d" is not a duration`},
		{name: "negative days are not a duration", in: "-1d", wantErr: `"-1d" is not a duration`},
		{name: "negative hours are not a duration", in: "-1h", wantErr: `"-1h" is not a duration`},
		{name: "days then negative hours are not a duration", in: "1d-1h", wantErr: `"1d-1h" is not a duration`},
		{name: "a bare d is not a duration", in: "d", wantErr: `"d" is not a duration`},
		{name: "a number without a unit is not a duration", in: "90", wantErr: `"90" is not a duration`},
		{name: "years are not a unit", in: "1y", wantErr: `"1y" is not a duration`},
		{name: "the most days a duration holds", in: "106751d", want: 106751 * day},
		{name: "more days than a duration holds", in: "106752d", wantErr: "too long a duration (at most 106751d)"},
		{name: "days and hours beyond what a duration holds", in: "106751d24h", wantErr: "too long a duration"},
		{name: "days far beyond an int64 of nanoseconds", in: "300000d", wantErr: "too long a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Parse()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{"whole days are written in days", 90 * 24 * time.Hour, "90d"},
		{"one day", 24 * time.Hour, "1d"},
		{"a day and a half is written in hours", 36 * time.Hour, "36h"},
		{"minutes", 2 * time.Minute, "2m"},
		{"hours and minutes", 90 * time.Minute, "1h30m"},
		{"seconds", 90 * time.Second, "1m30s"},
		{"zero", 0, "0s"},
		{"fractions of a second", 1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FormatDuration(tt.in)
			if got != tt.want {
				t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
			if back, err := Duration(got).Parse(); err != nil || back != tt.in {
				t.Errorf("Parse(%q) = %v, %v; the formatted duration does not read back", got, back, err)
			}
		})
	}
}

func TestCertificateSpecDefaults(t *testing.T) {
	tests := []struct {
		name string
		key  *PrivateKey
		want PrivateKey
	}{
		{"no key is ECDSA 256, rotated, PKCS1", nil, PrivateKey{Algorithm: ECDSA, Size: 256, RotationPolicy: RotationAlways, Encoding: "PKCS1"}},
		{"RSA defaults to 2048", &PrivateKey{Algorithm: RSA}, PrivateKey{Algorithm: RSA, Size: 2048, RotationPolicy: RotationAlways, Encoding: "PKCS1"}},
		{"Ed25519 defaults to PKCS8, having no PKCS1 form", &PrivateKey{Algorithm: Ed25519}, PrivateKey{Algorithm: Ed25519, RotationPolicy: RotationAlways, Encoding: "PKCS8"}},
		{"a size written for Ed25519 is dropped", &PrivateKey{Algorithm: Ed25519, Size: 256}, PrivateKey{Algorithm: Ed25519, RotationPolicy: RotationAlways, Encoding: "PKCS8"}},
		{"what is written is kept", &PrivateKey{Algorithm: RSA, Size: 4096, RotationPolicy: RotationNever, Encoding: "PKCS8"},
			PrivateKey{Algorithm: RSA, Size: 4096, RotationPolicy: RotationNever, Encoding: "PKCS8"}},
		{"an unknown algorithm keeps its size", &PrivateKey{Algorithm: "DSA"}, PrivateKey{Algorithm: "DSA", RotationPolicy: RotationAlways, Encoding: "PKCS1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (CertificateSpec{PrivateKey: tt.key}).Key(); got != tt.want {
				t.Errorf("Key() = %+v, want %+v", got, tt.want)
			}
		})
	}
	s := CertificateSpec{}
	if s.Lifetime() != DefaultDuration || len(s.EffectiveUsages()) != 3 || s.SANCount() != 0 {
		t.Errorf("defaults: lifetime %v usages %v SANs %d", s.Lifetime(), s.EffectiveUsages(), s.SANCount())
	}
	s = CertificateSpec{Duration: "bad", DNSNames: []string{"a"}, IPAddresses: []string{"b"}, URIs: []string{"c"}, EmailAddresses: []string{"d"}}
	if s.Lifetime() != DefaultDuration || s.SANCount() != 4 {
		t.Errorf("an invalid duration gives lifetime %v; SANs %d", s.Lifetime(), s.SANCount())
	}
}

func TestQuoteShortensLongValues(t *testing.T) {
	long := strings.Repeat("é", 60) // 120 bytes; byte 80 starts a rune
	got := quote(long)
	if !strings.HasSuffix(got, `…"`) || strings.Contains(got, `\x`) {
		t.Errorf("quote cut a rune or did not shorten: %s", got)
	}
	odd := "a" + strings.Repeat("é", 60) // byte 80 is inside a rune
	if got := quote(odd); strings.Contains(got, `\x`) {
		t.Errorf("quote cut a rune in half: %s", got)
	}
	if got := quote("short"); got != `"short"` {
		t.Errorf("quote(short) = %s", got)
	}
}
