package schemas

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// policy makes a named policy.
func policy(name string, spec PolicySpec) *Policy {
	return &Policy{TypeMeta: TypeMeta{APIVersion: APIVersion, Kind: KindPolicy}, Metadata: ObjectMeta{Name: name}, Spec: spec}
}

// compile compiles policies that must be valid.
func compile(t testing.TB, ps ...*Policy) *PolicySet {
	t.Helper()
	set, bad := CompilePolicies(ps)
	if len(bad) > 0 {
		t.Fatalf("invalid policies: %v", bad)
	}
	return set
}

func reasons(vs []Violation) []Reason {
	out := []Reason{}
	for _, v := range vs {
		out = append(out, v.Reason)
	}
	return out
}

// TestEveryReason triggers each Reason and shows a certificate that passes
// the same rule.
func TestEveryReason(t *testing.T) {
	tests := []struct {
		name   string
		spec   PolicySpec
		change func(c *Certificate)
		want   []Reason // nil: allowed
		field  string   // the first violation's field
		placed Placement
	}{
		{name: "a DNS name matching a pattern is allowed",
			spec: PolicySpec{DNSNames: []string{"*.payments.svc"}}, change: func(c *Certificate) {}},
		{name: "a DNS name matching no pattern is denied",
			spec: PolicySpec{DNSNames: []string{"*.payments.svc"}}, change: func(c *Certificate) { c.Spec.DNSNames = []string{"api.payments.svc", "api.search.svc"} },
			want: []Reason{ReasonDNSNameNotAllowed}, field: "spec.dnsNames[1]"},
		{name: "a single star does not match across dots",
			spec: PolicySpec{DNSNames: []string{"*.svc"}}, change: func(c *Certificate) {},
			want: []Reason{ReasonDNSNameNotAllowed}, field: "spec.dnsNames[0]"},
		{name: "a double star matches several labels",
			spec: PolicySpec{DNSNames: []string{"**.svc.cluster.local"}}, change: func(c *Certificate) { c.Spec.DNSNames = []string{"api.payments.svc.cluster.local"} }},
		{name: "a wildcard DNS name under a policy without allowWildcards is denied",
			spec: PolicySpec{DNSNames: []string{"**.payments.svc"}}, change: func(c *Certificate) { c.Spec.DNSNames = []string{"*.payments.svc"} },
			want: []Reason{ReasonWildcardNotAllowed}, field: "spec.dnsNames[0]"},
		{name: "a wildcard DNS name under a policy with allowWildcards is allowed",
			spec: PolicySpec{DNSNames: []string{"*.payments.svc"}, AllowWildcards: true}, change: func(c *Certificate) { c.Spec.DNSNames = []string{"*.payments.svc"} }},
		{name: "a wildcard DNS name is denied under a policy without DNS patterns",
			spec: PolicySpec{}, change: func(c *Certificate) { c.Spec.DNSNames = []string{"*.payments.svc"} },
			want: []Reason{ReasonWildcardNotAllowed}, field: "spec.dnsNames[0]"},
		{name: "an IP address in a range is allowed",
			spec: PolicySpec{IPRanges: []string{"10.0.0.0/8", "fd00::/8"}}, change: func(c *Certificate) { c.Spec.IPAddresses = []string{"10.1.2.3", "fd00::1"} }},
		{name: "an IP address equal to a bare IP range is allowed",
			spec: PolicySpec{IPRanges: []string{"192.168.1.1"}}, change: func(c *Certificate) { c.Spec.IPAddresses = []string{"192.168.1.1"} }},
		{name: "an IP address outside every range is denied",
			spec: PolicySpec{IPRanges: []string{"10.0.0.0/8"}}, change: func(c *Certificate) { c.Spec.IPAddresses = []string{"10.0.0.1", "192.168.1.1"} },
			want: []Reason{ReasonIPAddressNotAllowed}, field: "spec.ipAddresses[1]"},
		{name: "an IPv6 address outside an IPv4 range is denied",
			spec: PolicySpec{IPRanges: []string{"10.0.0.0/8"}}, change: func(c *Certificate) { c.Spec.IPAddresses = []string{"fd00::1"} },
			want: []Reason{ReasonIPAddressNotAllowed}, field: "spec.ipAddresses[0]"},
		{name: "a SPIFFE ID under an allowed path is allowed",
			spec: PolicySpec{URIs: []string{"spiffe://fleet.test/ns/payments/**"}}, change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://fleet.test/ns/payments/sa/api"} }},
		{name: "a SPIFFE ID of another namespace is denied",
			spec: PolicySpec{URIs: []string{"spiffe://fleet.test/ns/payments/**"}}, change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://fleet.test/ns/search/sa/api"} },
			want: []Reason{ReasonURINotAllowed}, field: "spec.uris[0]"},
		{name: "a single star in a URI does not cross a slash",
			spec: PolicySpec{URIs: []string{"spiffe://fleet.test/ns/*"}}, change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://fleet.test/ns/payments/sa/api"} },
			want: []Reason{ReasonURINotAllowed}, field: "spec.uris[0]"},
		{name: "an e-mail address matching a pattern is allowed",
			spec: PolicySpec{EmailAddresses: []string{"*@payments.example.com"}}, change: func(c *Certificate) { c.Spec.EmailAddresses = []string{"pki@payments.example.com"} }},
		{name: "an e-mail address of another domain is denied",
			spec: PolicySpec{EmailAddresses: []string{"*@payments.example.com"}}, change: func(c *Certificate) { c.Spec.EmailAddresses = []string{"pki@evil.example.com"} },
			want: []Reason{ReasonEmailNotAllowed}, field: "spec.emailAddresses[0]"},
		{name: "a subject matching the patterns is allowed",
			spec: PolicySpec{Subject: &SubjectRule{Organizations: []string{"Example*"}, OrganizationalUnits: []string{"Payments"}}},
			change: func(c *Certificate) {
				c.Spec.Subject = &Subject{Organizations: []string{"Example Ltd"}, OrganizationalUnits: []string{"Payments"}}
			}},
		{name: "a subject organization matching no pattern is denied",
			spec:   PolicySpec{Subject: &SubjectRule{Organizations: []string{"Example*"}}},
			change: func(c *Certificate) { c.Spec.Subject = &Subject{Organizations: []string{"Evil Corp"}} },
			want:   []Reason{ReasonSubjectNotAllowed}, field: "spec.subject.organizations[0]"},
		{name: "a subject unit matching no pattern is denied",
			spec:   PolicySpec{Subject: &SubjectRule{OrganizationalUnits: []string{"Payments"}}},
			change: func(c *Certificate) { c.Spec.Subject = &Subject{OrganizationalUnits: []string{"Search"}} },
			want:   []Reason{ReasonSubjectNotAllowed}, field: "spec.subject.organizationalUnits[0]"},
		{name: "a key algorithm on the list is allowed",
			spec: PolicySpec{KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: ECDSA}, {Algorithm: Ed25519}}}, change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: Ed25519} }},
		{name: "the default key algorithm is checked as ECDSA",
			spec: PolicySpec{KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: RSA}}}, change: func(c *Certificate) {},
			want: []Reason{ReasonKeyAlgorithmNotAllowed}, field: "spec.privateKey.algorithm"},
		{name: "a key at the minimum size is allowed",
			spec: PolicySpec{KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: RSA, MinSize: 3072}}}, change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 3072} }},
		{name: "an RSA key below the minimum size is denied",
			spec: PolicySpec{KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: RSA, MinSize: 3072}}}, change: func(c *Certificate) { c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA} },
			want: []Reason{ReasonKeyTooSmall}, field: "spec.privateKey.size"},
		{name: "the default ECDSA curve below the minimum is denied",
			spec: PolicySpec{KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: ECDSA, MinSize: 384}}}, change: func(c *Certificate) {},
			want: []Reason{ReasonKeyTooSmall}, field: "spec.privateKey.size"},
		{name: "a duration at the maximum is allowed",
			spec: PolicySpec{MaxDuration: "30d"}, change: func(c *Certificate) { c.Spec.Duration = "720h" }},
		{name: "the default duration beyond the maximum is denied",
			spec: PolicySpec{MaxDuration: "30d"}, change: func(c *Certificate) {},
			want: []Reason{ReasonDurationTooLong}, field: "spec.duration"},
		{name: "the default renewal at 2/3 leaves enough time",
			spec: PolicySpec{MinRenewBefore: "10d"}, change: func(c *Certificate) { c.Spec.Duration = "30d" }},
		{name: "a renewBefore shorter than the minimum is denied",
			spec: PolicySpec{MinRenewBefore: "10d"}, change: func(c *Certificate) { c.Spec.RenewBefore = "5d" },
			want: []Reason{ReasonRenewBeforeTooShort}, field: "spec.renewBefore"},
		{name: "a renewBeforePercentage leaving too little time is denied at the percentage",
			spec: PolicySpec{MinRenewBefore: "10d"}, change: func(c *Certificate) { c.Spec.Duration, c.Spec.RenewBeforePercentage = "30d", ptr(10) },
			want: []Reason{ReasonRenewBeforeTooShort}, field: "spec.renewBeforePercentage"},
		{name: "allowed usages are allowed",
			spec: PolicySpec{AllowedUsages: []KeyUsage{"digital signature", "key encipherment", "server auth", "client auth"}}, change: func(c *Certificate) { c.Spec.Usages = []KeyUsage{"client auth"} }},
		{name: "a usage that is not allowed is denied",
			spec: PolicySpec{AllowedUsages: []KeyUsage{"digital signature", "key encipherment", "server auth"}}, change: func(c *Certificate) { c.Spec.Usages = []KeyUsage{"server auth", "client auth"} },
			want: []Reason{ReasonUsageNotAllowed}, field: "spec.usages[1]"},
		{name: "a default usage that is not allowed is denied at usages",
			spec: PolicySpec{AllowedUsages: []KeyUsage{"digital signature", "client auth"}}, change: func(c *Certificate) {},
			want: []Reason{ReasonUsageNotAllowed, ReasonUsageNotAllowed}, field: "spec.usages"},
		{name: "a required usage that is present is allowed",
			spec: PolicySpec{RequiredUsages: []KeyUsage{"server auth"}}, change: func(c *Certificate) {}},
		{name: "a required usage that is missing is denied",
			spec: PolicySpec{RequiredUsages: []KeyUsage{"client auth"}}, change: func(c *Certificate) {},
			want: []Reason{ReasonUsageRequired}, field: "spec.usages"},
		{name: "SANs up to the maximum are allowed",
			spec: PolicySpec{MaxSANs: 2}, change: func(c *Certificate) { c.Spec.URIs = []string{"spiffe://fleet.test/ns/payments/sa/api"} }},
		{name: "more SANs than the maximum, of all kinds together, are denied",
			spec: PolicySpec{MaxSANs: 2}, change: func(c *Certificate) {
				c.Spec.URIs, c.Spec.IPAddresses = []string{"spiffe://fleet.test/ns/payments/sa/api"}, []string{"10.0.0.1"}
			},
			want: []Reason{ReasonTooManySANs}, field: "spec"},
		{name: "a cluster matching a pattern is allowed",
			spec: PolicySpec{Clusters: []string{"prod*"}}, change: func(c *Certificate) {}},
		{name: "a cluster matching no pattern is denied",
			spec: PolicySpec{Clusters: []string{"staging-*"}}, change: func(c *Certificate) {},
			want: []Reason{ReasonClusterNotAllowed}, field: "spec.targets[0].kubernetes.cluster"},
		{name: "a cluster selector that selects a forbidden cluster is denied, naming the cluster",
			spec: PolicySpec{Clusters: []string{"staging-*"}}, change: func(c *Certificate) {
				c.Spec.Targets[0].Kubernetes.Cluster = ""
				c.Spec.Targets[0].Kubernetes.ClusterSelector = &LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
			}, placed: Placement{0: {"staging-1", "prod-eu"}},
			want: []Reason{ReasonClusterNotAllowed}, field: "spec.targets[0].kubernetes.clusterSelector"},
		{name: "a cluster selector whose clusters are all allowed is allowed",
			spec: PolicySpec{Clusters: []string{"staging-*"}}, change: func(c *Certificate) {
				c.Spec.Targets[0].Kubernetes.Cluster = ""
				c.Spec.Targets[0].Kubernetes.ClusterSelector = &LabelSelector{MatchLabels: map[string]string{"env": "staging"}}
			}, placed: Placement{0: {"staging-1", "staging-2"}}},
		{name: "a namespace matching a pattern is allowed",
			spec: PolicySpec{Namespaces: []string{"payments", "payments-*"}}, change: func(c *Certificate) {}},
		{name: "a namespace matching no pattern is denied",
			spec: PolicySpec{Namespaces: []string{"search"}}, change: func(c *Certificate) {},
			want: []Reason{ReasonNamespaceNotAllowed}, field: "spec.targets[0].kubernetes.namespace"},
		{name: "a Vault KV target under an allowed path is allowed",
			spec: PolicySpec{VaultKVPaths: []string{"secret/tls/**"}}, change: func(c *Certificate) {
				c.Spec.Targets = []Target{{VaultKV: &VaultKVTarget{Mount: "secret", Path: "tls/payments/api"}}}
			}},
		{name: "a Vault KV target outside the allowed paths is denied",
			spec: PolicySpec{VaultKVPaths: []string{"secret/tls/**"}}, change: func(c *Certificate) {
				c.Spec.Targets = []Target{{VaultKV: &VaultKVTarget{Mount: "secret", Path: "admin/root-token"}}}
			}, want: []Reason{ReasonVaultKVPathNotAllowed}, field: "spec.targets[0].vaultKV"},
		{name: "a directory under an allowed path is allowed",
			spec: PolicySpec{DirectoryPaths: []string{"payments/**"}}, change: func(c *Certificate) {
				c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "payments/api"}}}
			}},
		{name: "a directory outside the allowed paths is denied, however it is spelt",
			spec: PolicySpec{DirectoryPaths: []string{"payments/**"}}, change: func(c *Certificate) {
				c.Spec.Targets = []Target{{Directory: &DirectoryTarget{Path: "./web//www"}}}
			}, want: []Reason{ReasonDirectoryNotAllowed}, field: "spec.targets[0].directory.path"},
		{name: "targets other than Kubernetes are not checked against clusters and namespaces",
			spec: PolicySpec{Clusters: []string{"none"}, Namespaces: []string{"none"}}, change: func(c *Certificate) {
				c.Spec.Targets = []Target{{VaultKV: &VaultKVTarget{Mount: "secret", Path: "tls/api"}}, {Directory: &DirectoryTarget{Path: "/etc/tls"}}}
			}},
		{name: "a policy for another issuer leaves the certificate with no policy",
			spec: PolicySpec{Selector: PolicySelector{Issuers: []string{"public"}}}, change: func(c *Certificate) {},
			want: []Reason{ReasonNoPolicy}, field: "spec.issuer"},
		{name: "a policy for the certificate's issuer selects it",
			spec: PolicySpec{Selector: PolicySelector{Issuers: []string{"public", "fleet"}}}, change: func(c *Certificate) {}},
	}
	covered := map[Reason]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCertificate()
			tt.change(c)
			if errs := Validate(c); len(errs) > 0 {
				t.Fatalf("the certificate of the case is invalid: %v", errs)
			}
			v := compile(t, policy("rule", tt.spec)).Evaluate(c, "teams/payments/api.yaml", tt.placed)
			if got := reasons(v.Violations); !slices.Equal(got, tt.want) && !(len(got) == 0 && tt.want == nil) {
				t.Fatalf("violations %v, want %v: %+v", got, tt.want, v.Violations)
			}
			if v.Allowed != (len(tt.want) == 0) {
				t.Errorf("Allowed = %v with violations %v", v.Allowed, tt.want)
			}
			if len(v.Violations) > 0 {
				viol := v.Violations[0]
				if viol.Field != tt.field {
					t.Errorf("violation field %q, want %q", viol.Field, tt.field)
				}
				if viol.Message == "" || (viol.Reason != ReasonNoPolicy && (viol.Policy != "rule" || viol.Rule == "" || viol.Value == "")) {
					t.Errorf("violation lacks policy, rule, value or message: %+v", viol)
				}
				covered[viol.Reason] = true
			}
		})
	}
	for _, r := range []Reason{ReasonNoPolicy, ReasonDNSNameNotAllowed, ReasonWildcardNotAllowed, ReasonIPAddressNotAllowed,
		ReasonURINotAllowed, ReasonEmailNotAllowed, ReasonSubjectNotAllowed, ReasonKeyAlgorithmNotAllowed, ReasonKeyTooSmall,
		ReasonDurationTooLong, ReasonRenewBeforeTooShort, ReasonUsageNotAllowed, ReasonUsageRequired, ReasonTooManySANs,
		ReasonClusterNotAllowed, ReasonNamespaceNotAllowed, ReasonVaultKVPathNotAllowed, ReasonDirectoryNotAllowed} {
		if !covered[r] {
			t.Errorf("no case triggers %s", r)
		}
	}
}

func TestViolationsSayWhatAndWhy(t *testing.T) {
	set := compile(t, policy("payments", PolicySpec{
		DNSNames: []string{"*.payments.svc"}, MaxDuration: "30d",
		KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: RSA, MinSize: 3072}},
	}))
	c := validCertificate()
	c.Spec.DNSNames = []string{"api.search.svc"}
	c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 2048}
	v := set.Evaluate(c, "teams/payments/api.yaml", nil)
	want := []Violation{
		{Policy: "payments", Reason: ReasonDNSNameNotAllowed, Field: "spec.dnsNames[0]", Value: "api.search.svc",
			Rule: "dnsNames: [*.payments.svc]", Message: `DNS name "api.search.svc" matches none of [*.payments.svc]`},
		{Policy: "payments", Reason: ReasonKeyTooSmall, Field: "spec.privateKey.size", Value: "2048",
			Rule: "keyAlgorithms: RSA minSize 3072", Message: "RSA key size 2048 is below the minimum of 3072"},
		{Policy: "payments", Reason: ReasonDurationTooLong, Field: "spec.duration", Value: "90d",
			Rule: "maxDuration: 30d", Message: "duration 90d is longer than the maximum 30d"},
	}
	if !reflect.DeepEqual(v.Violations, want) {
		t.Errorf("violations:\n got %+v\nwant %+v", v.Violations, want)
	}
}

func TestPolicySelection(t *testing.T) {
	labelled := func(c *Certificate) { c.Metadata.Labels = map[string]string{"team": "payments", "tier": "critical"} }
	tests := []struct {
		name     string
		selector PolicySelector
		change   func(c *Certificate)
		path     string
		selected bool
	}{
		{name: "an empty selector governs every certificate", path: "anything.yaml", selected: true},
		{name: "an issuer selector governs the issuer's certificates", selector: PolicySelector{Issuers: []string{"fleet"}}, path: "a.yaml", selected: true},
		{name: "an issuer selector ignores other issuers", selector: PolicySelector{Issuers: []string{"public"}}, path: "a.yaml"},
		{name: "a double star path selects files at any depth", selector: PolicySelector{Paths: []string{"teams/payments/**"}}, path: "teams/payments/prod/eu/api.yaml", selected: true},
		{name: "a double star path selects files right below it", selector: PolicySelector{Paths: []string{"teams/payments/**"}}, path: "teams/payments/api.yaml", selected: true},
		{name: "a double star path ignores other directories", selector: PolicySelector{Paths: []string{"teams/payments/**"}}, path: "teams/search/api.yaml"},
		{name: "a double star path does not select a sibling with a longer name", selector: PolicySelector{Paths: []string{"teams/payments/**"}}, path: "teams/payments-eu/api.yaml"},
		{name: "a single star path stays in one directory", selector: PolicySelector{Paths: []string{"teams/*/certificates.yaml"}}, path: "teams/payments/certificates.yaml", selected: true},
		{name: "a single star path does not cross a slash", selector: PolicySelector{Paths: []string{"teams/*/certificates.yaml"}}, path: "teams/payments/eu/certificates.yaml"},
		{name: "any of several paths selects", selector: PolicySelector{Paths: []string{"teams/search/**", "teams/payments/**"}}, path: "teams/payments/api.yaml", selected: true},
		{name: "matching labels select", selector: PolicySelector{MatchLabels: map[string]string{"tier": "critical"}}, change: labelled, path: "a.yaml", selected: true},
		{name: "every label must match", selector: PolicySelector{MatchLabels: map[string]string{"tier": "critical", "team": "search"}}, change: labelled, path: "a.yaml"},
		{name: "a missing label does not match", selector: PolicySelector{MatchLabels: map[string]string{"tier": "critical"}}, path: "a.yaml"},
		{name: "every field of a selector must match", selector: PolicySelector{Issuers: []string{"fleet"}, Paths: []string{"teams/search/**"}}, path: "teams/payments/a.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCertificate()
			if tt.change != nil {
				tt.change(c)
			}
			// The policy denies everything it governs, so selection shows in the verdict.
			v := compile(t, policy("p", PolicySpec{Selector: tt.selector, MaxSANs: 0, Namespaces: []string{"none"}})).Evaluate(c, tt.path, nil)
			if got := len(v.Policies) == 1; got != tt.selected {
				t.Fatalf("selected = %v, want %v (verdict %+v)", got, tt.selected, v)
			}
			wantReason := ReasonNoPolicy
			if tt.selected {
				wantReason = ReasonNamespaceNotAllowed
			}
			if got := reasons(v.Violations); !slices.Equal(got, []Reason{wantReason}) {
				t.Errorf("violations %v, want [%s]", got, wantReason)
			}
		})
	}
}

func TestEverySelectingPolicyMustAllow(t *testing.T) {
	base := policy("base", PolicySpec{MaxDuration: "90d"})
	strict := policy("strict", PolicySpec{Selector: PolicySelector{Issuers: []string{"fleet"}}, MaxDuration: "30d"})
	other := policy("other", PolicySpec{Selector: PolicySelector{Issuers: []string{"public"}}, MaxDuration: "1d"})
	warn := policy("advice", PolicySpec{DNSNames: []string{"*.example.com"}, Enforcement: EnforcementWarn})
	c := validCertificate()

	v := compile(t, strict, base, other).Evaluate(c, "a.yaml", nil)
	if v.Allowed || !slices.Equal(v.Policies, []string{"base", "strict"}) || !slices.Equal(reasons(v.Violations), []Reason{ReasonDurationTooLong}) || v.Violations[0].Policy != "strict" {
		t.Errorf("one denying policy among two selecting ones must deny: %+v", v)
	}

	c.Spec.Duration = "30d"
	v = compile(t, strict, base, other).Evaluate(c, "a.yaml", nil)
	if !v.Allowed || len(v.Violations) != 0 {
		t.Errorf("a certificate every selecting policy allows must be allowed: %+v", v)
	}

	v = compile(t, base, warn).Evaluate(c, "a.yaml", nil)
	if !v.Allowed || len(v.Violations) != 0 || !slices.Equal(reasons(v.Warnings), []Reason{ReasonDNSNameNotAllowed}) || v.Warnings[0].Policy != "advice" {
		t.Errorf("a warn policy must warn and still allow: %+v", v)
	}
	if !slices.Equal(v.Policies, []string{"advice", "base"}) {
		t.Errorf("policies %v, want [advice base]", v.Policies)
	}

	v = compile(t, warn).Evaluate(c, "a.yaml", nil)
	if !v.Allowed || len(v.Warnings) != 1 {
		t.Errorf("a warn policy alone selects and allows: %+v", v)
	}

	c.Spec.Duration = ""
	v = compile(t, strict, warn).Evaluate(c, "a.yaml", nil)
	if v.Allowed || len(v.Violations) != 1 || len(v.Warnings) != 1 {
		t.Errorf("deny and warn together: %+v", v)
	}
}

func TestNoPolicySaysWhy(t *testing.T) {
	c := validCertificate()
	tests := []struct {
		name     string
		policies []*Policy
		path     string
		want     string
	}{
		{name: "no policy at all", path: "teams/payments/api.yaml",
			want: `no policy selects this certificate (issuer "fleet", path "teams/payments/api.yaml"), so nothing allows it; no policy names its issuer`},
		{name: "policies of other issuers only", path: "teams/payments/api.yaml",
			policies: []*Policy{policy("public", PolicySpec{Selector: PolicySelector{Issuers: []string{"public"}}})},
			want:     `no policy selects this certificate (issuer "fleet", path "teams/payments/api.yaml"), so nothing allows it; no policy names its issuer`},
		{name: "the issuer's policies, each with why it did not select", path: "teams/search/api.yaml",
			policies: []*Policy{
				policy("public", PolicySpec{Selector: PolicySelector{Issuers: []string{"public"}}}),
				policy("payments", PolicySpec{Selector: PolicySelector{Issuers: []string{"fleet"}, Paths: []string{"teams/payments/**"}}}),
				policy("critical", PolicySpec{Selector: PolicySelector{MatchLabels: map[string]string{"tier": "critical", "app": "api", "zone": "eu"}}}),
			},
			want: `no policy selects this certificate (issuer "fleet", path "teams/search/api.yaml"), so nothing allows it; policies for its issuer: ` +
				`critical: it needs label app=api; payments: it selects paths [teams/payments/**], not "teams/search/api.yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := compile(t, tt.policies...).Evaluate(c, tt.path, nil)
			if v.Allowed || len(v.Violations) != 1 {
				t.Fatalf("verdict %+v", v)
			}
			got := v.Violations[0]
			if got.Reason != ReasonNoPolicy || got.Field != "spec.issuer" || got.Value != "fleet" || got.Message != tt.want {
				t.Errorf("violation %+v\nwant message %s", got, tt.want)
			}
			// The message is the same every time, whatever the map order.
			for range 20 {
				if again := compile(t, tt.policies...).Evaluate(c, tt.path, nil); again.Violations[0].Message != got.Message {
					t.Fatalf("the message changed: %s", again.Violations[0].Message)
				}
			}
		})
	}
}

func TestCompilePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		spec PolicySpec
		want []fieldErr
	}{
		{name: "a policy of valid patterns compiles", spec: PolicySpec{
			Selector: PolicySelector{Paths: []string{"teams/**"}}, DNSNames: []string{"**.svc", "api-?.example.com", "{a,b}.example.com"},
			URIs: []string{"spiffe://fleet.test/**"}, EmailAddresses: []string{"*@example.com"}, IPRanges: []string{"10.0.0.0/8", "fd00::1"},
			Subject: &SubjectRule{Organizations: []string{"Ex*"}}, Clusters: []string{"prod-*"}, Namespaces: []string{"[a-z]*"},
			KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: RSA, MinSize: 3072}, {Algorithm: Ed25519}}, MaxDuration: "90d", MinRenewBefore: "1d",
			AllowedUsages: []KeyUsage{"server auth", "client auth"}, RequiredUsages: []KeyUsage{"server auth"}, MaxSANs: 10, Enforcement: EnforcementWarn,
		}},
		{name: "an unclosed class is a bad pattern with its field and value", spec: PolicySpec{DNSNames: []string{"ok.example.com", "[a-"}},
			want: []fieldErr{{"spec.dnsNames[1]", `invalid pattern "[a-"`}}},
		{name: "a DNS pattern with an underscore can never match", spec: PolicySpec{DNSNames: []string{"_acme.example.com"}},
			want: []fieldErr{{"spec.dnsNames[0]", `pattern "_acme.example.com" can never match a DNS name: it has '_' in label "_acme"`}}},
		{name: "an upper-case DNS pattern can never match", spec: PolicySpec{DNSNames: []string{"*.Example.com"}},
			want: []fieldErr{{"spec.dnsNames[0]", "can never match a DNS name: it has upper-case letters"}}},
		{name: "an empty pattern is an error", spec: PolicySpec{Namespaces: []string{""}},
			want: []fieldErr{{"spec.namespaces[0]", "empty pattern"}}},
		{name: "bad patterns are reported in every list", spec: PolicySpec{
			Selector: PolicySelector{Paths: []string{"teams/["}}, URIs: []string{"spiffe://{a"}, EmailAddresses: []string{"[@x"},
			Subject: &SubjectRule{Organizations: []string{"[z-"}, OrganizationalUnits: []string{"a}"}}, Clusters: []string{"[-"},
		}, want: []fieldErr{
			{"spec.clusters[0]", "invalid pattern"}, {"spec.emailAddresses[0]", "invalid pattern"},
			{"spec.selector.paths[0]", `invalid pattern "teams/["`}, {"spec.subject.organizationalUnits[0]", `invalid pattern "a}": "}" without "{"`},
			{"spec.subject.organizations[0]", "invalid pattern"}, {"spec.uris[0]", `invalid pattern "spiffe://{a": "{" without "}"`},
		}},
		{name: "a trailing backslash escapes nothing", spec: PolicySpec{Namespaces: []string{`payments\`}},
			want: []fieldErr{{"spec.namespaces[0]", `which escapes nothing`}}},
		{name: "escaped braces and braces in a class are balanced", spec: PolicySpec{Namespaces: []string{`a\{`, "[{]x", "{a,b}-{c,d}"}}},
		{name: "a range that is not a CIDR is an error", spec: PolicySpec{IPRanges: []string{"10.0.0.0/33"}},
			want: []fieldErr{{"spec.ipRanges[0]", `"10.0.0.0/33" is not a CIDR`}}},
		{name: "an unknown key algorithm is an error", spec: PolicySpec{KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: "DSA"}}},
			want: []fieldErr{{"spec.keyAlgorithms[0].algorithm", `unknown algorithm "DSA"`}}},
		{name: "a minimum RSA size below the floor is an error", spec: PolicySpec{KeyAlgorithms: []KeyAlgorithmRule{{Algorithm: RSA, MinSize: 1024}}},
			want: []fieldErr{{"spec.keyAlgorithms[0].minSize", "minSize 1024 is below the floor of 2048 for RSA, which no policy can lower"}}},
		{name: "invalid durations are errors", spec: PolicySpec{MaxDuration: "3 months", MinRenewBefore: "1w"},
			want: []fieldErr{{"spec.maxDuration", "is not a duration"}, {"spec.minRenewBefore", "is not a duration"}}},
		{name: "minRenewBefore not shorter than maxDuration is an error", spec: PolicySpec{MaxDuration: "30d", MinRenewBefore: "720h"},
			want: []fieldErr{{"spec.minRenewBefore", "no certificate could pass"}}},
		{name: "an unknown usage suggests the nearest", spec: PolicySpec{AllowedUsages: []KeyUsage{"server-auth"}, RequiredUsages: []KeyUsage{"codesigning"}},
			want: []fieldErr{{"spec.allowedUsages[0]", `did you mean "server auth"?`}, {"spec.requiredUsages[0]", `did you mean "code signing"?`}}},
		{name: "a required usage that is not allowed is an error", spec: PolicySpec{AllowedUsages: []KeyUsage{"server auth"}, RequiredUsages: []KeyUsage{"server auth", "client auth"}},
			want: []fieldErr{{"spec.requiredUsages[1]", `usage "client auth" is required but not allowed`}}},
		{name: "a negative maxSANs is an error", spec: PolicySpec{MaxSANs: -1},
			want: []fieldErr{{"spec.maxSANs", "maxSANs -1 is negative"}}},
		{name: "an unknown enforcement is an error", spec: PolicySpec{Enforcement: "audit"},
			want: []fieldErr{{"spec.enforcement", `unknown enforcement "audit"; use deny (the default) or warn`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs := compilePolicy(policy("p", tt.spec))
			checkErrors(t, errs, tt.want)
			if c == nil || c.Name() != "p" {
				t.Errorf("compilePolicy returned %v", c)
			}
		})
	}
}

func TestCompilePoliciesLeavesOutInvalidOnes(t *testing.T) {
	good := policy("good", PolicySpec{MaxDuration: "30d"})
	bad := policy("bad", PolicySpec{DNSNames: []string{"[a-"}})
	set, errs := CompilePolicies([]*Policy{bad, good})
	if set.Len() != 1 {
		t.Errorf("the set holds %d policies, want 1", set.Len())
	}
	if len(errs) != 1 || len(errs["bad"]) != 1 || errs["bad"][0].Field != "spec.dnsNames[0]" {
		t.Errorf("errors %v, want one for bad", errs)
	}
	v := set.Evaluate(validCertificate(), "a.yaml", nil)
	if v.Allowed || !slices.Equal(v.Policies, []string{"good"}) {
		t.Errorf("the valid policy must still be enforced: %+v", v)
	}
}

func TestEvaluateIsDeterministic(t *testing.T) {
	set := compileBenchPolicies(t)
	c := validCertificate()
	c.Metadata.Labels = map[string]string{"tier": "critical"}
	c.Spec.DNSNames = []string{"*.payments.svc", "api.example.org"}
	c.Spec.PrivateKey = &PrivateKey{Algorithm: RSA, Size: 4096}
	first := set.Evaluate(c, "teams/search/api.yaml", nil)
	for range 50 {
		if again := set.Evaluate(c, "teams/search/api.yaml", nil); !reflect.DeepEqual(again, first) {
			t.Fatalf("verdicts differ:\n%+v\n%+v", first, again)
		}
	}
	if first.Allowed || len(first.Violations) == 0 || !strings.Contains(first.Violations[0].Message, "*.payments.svc") {
		t.Errorf("verdict %+v", first)
	}
}

// TestPolicyErrorsInFieldOrder: a policy's errors come in the order of its
// fields, the same every time (not in the order a map yields them).
func TestPolicyErrorsInFieldOrder(t *testing.T) {
	p := &Policy{Spec: PolicySpec{AllowedUsages: []KeyUsage{"server auth", "sever auth"}, RequiredUsages: []KeyUsage{"client auth", "clientauth"}}}
	want := []string{"spec.allowedUsages[1]", "spec.requiredUsages[1]", "spec.requiredUsages[0]"}
	for range 20 {
		_, errs := compilePolicy(p)
		var got []string
		for _, e := range errs {
			got = append(got, e.Field)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("errors at %v, want %v", got, want)
		}
	}
}
