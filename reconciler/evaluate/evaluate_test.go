package evaluate_test

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// now is the evaluation time; authority "short" expires 30 days later.
var now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

const catalogYAML = `apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: long}
spec: {type: root, mount: pki-long, commonName: Long}
status: {notAfter: "2040-01-01T00:00:00Z"}
---
apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: short}
spec: {type: root, mount: pki-short, commonName: Short}
status: {notAfter: "2030-01-31T00:00:00Z"}
---
apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: pending}
spec: {type: root, mount: pki-pending, commonName: Pending}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: fleet}
spec: {authority: long, maxTTL: 2160h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: tight}
spec: {authority: long, maxTTL: 720h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: ending}
spec: {authority: short, maxTTL: 2160h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: ending-unbounded}
spec: {authority: short}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: orphan}
spec: {authority: pending, maxTTL: 2160h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: lost}
spec: {authority: gone, maxTTL: 2160h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: internal}
spec:
  selector: {paths: ["teams/**"]}
  dnsNames: ["**.svc.cluster.local"]
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: month}
spec:
  selector: {issuers: [fleet]}
  maxDuration: 720h
  enforcement: warn
`

func catalog(t testing.TB) *schemas.Catalog {
	t.Helper()
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(catalogYAML))
	if len(errs) > 0 {
		t.Fatalf("catalog: %v", errs)
	}
	return cat
}

// desired renders one file and returns its only certificate.
func desired(t testing.TB, path, manifest string) *render.Desired {
	t.Helper()
	r := render.Render(&source.Snapshot{Files: []source.File{{Path: path, Data: []byte(manifest)}}}, nil)
	if len(r.Errors) > 0 || len(r.Desired) != 1 {
		t.Fatalf("want one certificate, got %d and errors %v", len(r.Desired), r.Errors)
	}
	return r.Desired[0]
}

// cert is a certificate of issuer with a duration ("" for the default).
func cert(issuer, duration string, dnsNames ...string) string {
	if len(dnsNames) == 0 {
		dnsNames = []string{"api.payments.svc.cluster.local"}
	}
	s := `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
  namespace: payments
spec:
  issuer: ` + issuer + `
  dnsNames:
`
	for _, n := range dnsNames {
		s += "    - " + n + "\n"
	}
	if duration != "" {
		s += "  duration: " + duration + "\n"
	}
	return s + "  targets:\n    - directory: {path: /etc/tls/api}\n"
}

func reasons(vs []schemas.LocatedViolation) []schemas.Reason {
	var out []schemas.Reason
	for _, v := range vs {
		out = append(out, v.Reason)
	}
	return out
}

func TestVerdict(t *testing.T) {
	cases := []struct {
		name       string
		path       string // default teams/payments/api.yaml
		manifest   string
		allowed    bool
		violations []schemas.Reason
		warnings   []schemas.Reason
		policies   []string
		// message is a substring of the first violation's (or warning's) message.
		message string
	}{
		{
			name:     "a certificate within every limit is allowed",
			manifest: cert("fleet", "720h"),
			allowed:  true, policies: []string{"internal", "month"},
		},
		{
			name:       "an issuer the catalog does not have is UnknownIssuer, listing the known ones",
			manifest:   cert("nope", "720h"),
			violations: []schemas.Reason{evaluate.ReasonUnknownIssuer}, policies: []string{"internal"},
			message: `issuer "nope" is not in the catalog; known issuers: [ending ending-unbounded fleet lost orphan tight]`,
		},
		{
			name:       "a duration beyond the issuer's max TTL is DurationBeyondIssuer",
			manifest:   cert("tight", "1440h"),
			violations: []schemas.Reason{evaluate.ReasonDurationBeyondIssuer}, policies: []string{"internal"},
			message: `duration 60d is longer than issuer "tight" allows (max TTL 30d)`,
		},
		{
			name:       "the default duration counts against the issuer's max TTL",
			manifest:   cert("tight", ""),
			violations: []schemas.Reason{evaluate.ReasonDurationBeyondIssuer}, policies: []string{"internal"},
			message: "duration 90d is longer",
		},
		{
			name:       "a duration that would outlive the authority is DurationBeyondAuthority",
			manifest:   cert("ending", "1440h"),
			violations: []schemas.Reason{evaluate.ReasonDurationBeyondAuthority},
			warnings:   []schemas.Reason{evaluate.ReasonIssuerBeyondAuthority}, policies: []string{"internal"},
			message: `would outlive authority "short", which expires 2030-01-31T00:00:00Z (in 30d)`,
		},
		{
			name:       "a duration one hour past the authority's expiry is DurationBeyondAuthority",
			manifest:   cert("ending-unbounded", "721h"),
			violations: []schemas.Reason{evaluate.ReasonDurationBeyondAuthority}, policies: []string{"internal"},
		},
		{
			name:     "a duration that ends exactly when the authority does is allowed",
			manifest: cert("ending-unbounded", "720h"),
			allowed:  true, policies: []string{"internal"},
		},
		{
			name:     "an issuer whose max TTL outlasts its authority is a warning, not a violation",
			manifest: cert("ending", "240h"),
			allowed:  true, warnings: []schemas.Reason{evaluate.ReasonIssuerBeyondAuthority}, policies: []string{"internal"},
			message: `issuer "ending"'s max TTL 90d outlasts authority "short"`,
		},
		{
			name:       "an authority without a certificate is AuthorityUnavailable",
			manifest:   cert("orphan", "240h"),
			violations: []schemas.Reason{evaluate.ReasonAuthorityUnavailable}, policies: []string{"internal"},
			message: `issuer "orphan" signs with authority "pending"`,
		},
		{
			name:       "an authority missing from the catalog is AuthorityUnavailable",
			manifest:   cert("lost", "240h"),
			violations: []schemas.Reason{evaluate.ReasonAuthorityUnavailable}, policies: []string{"internal"},
			message: `authority "gone"`,
		},
		{
			name:       "a name a policy does not allow is a violation of that policy",
			manifest:   cert("fleet", "720h", "api.payments.svc.cluster.local", "api.example.com"),
			violations: []schemas.Reason{schemas.ReasonDNSNameNotAllowed}, policies: []string{"internal", "month"},
		},
		{
			name:     "a warn policy's rule broken is a warning",
			manifest: cert("fleet", "1440h"),
			allowed:  true, warnings: []schemas.Reason{schemas.ReasonDurationTooLong}, policies: []string{"internal", "month"},
		},
		{
			name:       "a certificate no policy selects is denied",
			path:       "elsewhere/api.yaml",
			manifest:   cert("tight", "720h"),
			violations: []schemas.Reason{schemas.ReasonNoPolicy}, policies: []string{},
		},
		{
			name:       "policy and catalog violations are reported together, by line",
			manifest:   cert("tight", "1440h", "api.example.com"),
			violations: []schemas.Reason{schemas.ReasonDNSNameNotAllowed, evaluate.ReasonDurationBeyondIssuer}, policies: []string{"internal"},
		},
	}
	ev := evaluate.New(catalog(t), now)
	if len(ev.PolicyErrors) > 0 || !ev.HasCatalog() {
		t.Fatalf("evaluator: policy errors %v, has catalog %v", ev.PolicyErrors, ev.HasCatalog())
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "teams/payments/api.yaml"
			}
			d := desired(t, path, tc.manifest)
			v := ev.Verdict(d)
			if v.Allowed != tc.allowed {
				t.Errorf("Allowed = %v, want %v (violations %+v)", v.Allowed, tc.allowed, v.Violations)
			}
			if got := reasons(v.Violations); !reflect.DeepEqual(got, tc.violations) {
				t.Errorf("violations = %v, want %v", got, tc.violations)
			}
			if got := reasons(v.Warnings); !reflect.DeepEqual(got, tc.warnings) {
				t.Errorf("warnings = %v, want %v", got, tc.warnings)
			}
			if !reflect.DeepEqual(v.Policies, tc.policies) {
				t.Errorf("policies = %#v, want %#v", v.Policies, tc.policies)
			}
			if tc.message != "" {
				all := append(append([]schemas.LocatedViolation{}, v.Violations...), v.Warnings...)
				if len(all) == 0 || !strings.Contains(all[0].Message, tc.message) {
					t.Errorf("violations %+v, want the first to say %q", all, tc.message)
				}
			}
			if v.ID != "payments/api" || v.File != path || v.Line != 1 || v.Issuer != d.Certificate.Spec.Issuer {
				t.Errorf("verdict header = %s %s:%d issuer %s", v.ID, v.File, v.Line, v.Issuer)
			}
		})
	}
}

func TestNilCatalogAllowsEverything(t *testing.T) {
	ev := evaluate.New(nil, now)
	if ev.HasCatalog() || ev.PolicyErrors != nil {
		t.Errorf("HasCatalog = %v, PolicyErrors = %v; want false and none", ev.HasCatalog(), ev.PolicyErrors)
	}
	ds := []*render.Desired{
		desired(t, "a.yaml", cert("nope", "")),
		desired(t, "b.yaml", cert("tight", "8760h", "api.example.com")),
	}
	vs := ev.All(ds)
	if len(vs) != 2 {
		t.Fatalf("All returned %d verdicts, want 2", len(vs))
	}
	for i, v := range vs {
		if !v.Allowed || len(v.Violations)+len(v.Warnings) > 0 || v.Policies == nil || len(v.Policies) > 0 {
			t.Errorf("verdict %d = %+v, want allowed with an empty (non-nil) policy list", i, v)
		}
		if v.File != ds[i].File() {
			t.Errorf("verdict %d is for %s, want %s: All keeps the order", i, v.File, ds[i].File())
		}
	}
}

func TestViolationsCarryTheirPosition(t *testing.T) {
	ev := evaluate.New(catalog(t), now)
	cases := []struct {
		name       string
		manifest   string
		field      string
		line, col  int
		violations bool // false: look among warnings
	}{
		{
			name:     "a policy violation points at the offending list item",
			manifest: cert("fleet", "720h", "api.payments.svc.cluster.local", "api.example.com"),
			field:    "spec.dnsNames[1]", line: 10, col: 7, violations: true,
		},
		{
			name:     "a duration beyond the issuer points at the duration's value",
			manifest: cert("tight", "1440h"),
			field:    "spec.duration", line: 10, col: 13, violations: true,
		},
		{
			name:     "a duration left out points at the spec, where it would be written",
			manifest: cert("tight", ""),
			field:    "spec.duration", line: 6, col: 1, violations: true,
		},
		{
			name:     "a warning about the issuer points at the issuer",
			manifest: cert("ending", "240h"),
			field:    "spec.issuer", line: 7, col: 11,
		},
		{
			name: "a violation of a CertificateSet item points at the template",
			manifest: `apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata: {name: api, namespace: payments}
spec:
  nameTemplate: api
  template:
    issuer: tight
    dnsNames: ["${host}"]
    duration: 1440h
    targets: [{directory: {path: /etc/tls/api}}]
  items:
    - {host: api.payments.svc.cluster.local}
`,
			field: "spec.duration", line: 9, col: 15, violations: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := ev.Verdict(desired(t, "teams/payments/api.yaml", tc.manifest))
			list := v.Warnings
			if tc.violations {
				list = v.Violations
			}
			if len(list) != 1 {
				t.Fatalf("want one, got violations %+v warnings %+v", v.Violations, v.Warnings)
			}
			got := list[0]
			if got.Field != tc.field || got.Line != tc.line || got.Column != tc.col {
				t.Errorf("%s at %d:%d, want %s at %d:%d", got.Field, got.Line, got.Column, tc.field, tc.line, tc.col)
			}
		})
	}
}

func TestABrokenPolicyLeavesTheOthersInForce(t *testing.T) {
	cat := catalog(t)
	// A catalog snapshot read from disk rejects such a policy; one built in
	// Go (by the provider, or an older snapshot) may still hold it.
	if err := cat.Add(&schemas.Policy{
		TypeMeta: schemas.TypeMeta{APIVersion: schemas.APIVersion, Kind: schemas.KindPolicy},
		Metadata: schemas.ObjectMeta{Name: "broken"},
		Spec:     schemas.PolicySpec{DNSNames: []string{"[unclosed"}, IPRanges: []string{"10.0.0.0/33"}},
	}); err != nil {
		t.Fatal(err)
	}
	ev := evaluate.New(cat, now)
	if len(ev.PolicyErrors) != 1 || len(ev.PolicyErrors["broken"]) == 0 {
		t.Fatalf("PolicyErrors = %v, want errors of policy broken alone", ev.PolicyErrors)
	}
	v := ev.Verdict(desired(t, "teams/payments/api.yaml", cert("fleet", "1440h", "api.example.com")))
	if got := reasons(v.Violations); !reflect.DeepEqual(got, []schemas.Reason{schemas.ReasonDNSNameNotAllowed}) || v.Violations[0].Policy != "internal" {
		t.Errorf("violations = %+v, want policy internal's DNSNameNotAllowed", v.Violations)
	}
	if got := reasons(v.Warnings); !reflect.DeepEqual(got, []schemas.Reason{schemas.ReasonDurationTooLong}) || v.Warnings[0].Policy != "month" {
		t.Errorf("warnings = %+v, want policy month's DurationTooLong", v.Warnings)
	}
	if !reflect.DeepEqual(v.Policies, []string{"internal", "month"}) {
		t.Errorf("policies = %v, want internal and month: a broken policy selects nothing", v.Policies)
	}
}

// TestAClusterSelectorCannotReachAForbiddenCluster renders a certificate
// whose clusterSelector matches a production cluster by label, under a
// policy that allows only staging clusters: the verdict denies it at the
// selector's line, as it would deny the same cluster named outright.
func TestAClusterSelectorCannotReachAForbiddenCluster(t *testing.T) {
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(catalogYAML+`---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: staging-only}
spec:
  selector: {paths: ["teams/**"]}
  clusters: ["staging-*"]
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata: {name: staging-1, labels: {tier: web}}
spec: {credentials: {kubeconfigContext: staging-1}}
---
apiVersion: certfleet.dev/v1alpha1
kind: Cluster
metadata: {name: prod-eu, labels: {tier: web, env: prod}}
spec: {credentials: {kubeconfigContext: prod-eu}}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	manifest := strings.Replace(cert("fleet", "720h"), "    - directory: {path: /etc/tls/api}\n",
		"    - kubernetes:\n        clusterSelector: {matchLabels: {tier: web}}\n        namespace: payments\n        secretName: api-tls\n", 1)
	r := render.Render(&source.Snapshot{Files: []source.File{{Path: "teams/payments/api.yaml", Data: []byte(manifest)}}}, cat)
	if len(r.Errors) > 0 || len(r.Desired) != 1 {
		t.Fatalf("render: %v", r.Errors)
	}
	v := evaluate.New(cat, now).Verdict(r.Desired[0])
	if v.Allowed {
		t.Fatalf("a selector reaching prod-eu was allowed: %+v", v)
	}
	found := false
	for _, x := range v.Violations {
		if x.Reason == schemas.ReasonClusterNotAllowed && x.Value == "prod-eu" && x.Line > 0 {
			found = true
		}
		if x.Value == "staging-1" {
			t.Errorf("the allowed cluster was reported: %+v", x)
		}
	}
	if !found {
		t.Errorf("violations %+v, want ClusterNotAllowed for prod-eu with its line", v.Violations)
	}
}

func TestAVaultKVTargetInTheCatalogMountIsAlwaysRefused(t *testing.T) {
	manifest := func(mount string) *render.Desired {
		return desired(t, "teams/payments/api.yaml", strings.Replace(cert("fleet", "720h"), "    - directory: {path: /etc/tls/api}\n",
			"    - vaultKV: {mount: "+mount+", path: inventory/payments_api}\n", 1))
	}
	refused := func(e *evaluate.Evaluator, mount string) bool {
		for _, v := range e.Verdict(manifest(mount)).Violations {
			if v.Reason == evaluate.ReasonCatalogMount && v.Field == "spec.targets[0].vaultKV.mount" {
				return true
			}
		}
		return false
	}
	if !refused(evaluate.New(catalog(t), now), "certfleet") {
		t.Error("a target in the default catalog mount was not refused")
	}
	e := evaluate.New(catalog(t), now, evaluate.WithCatalogMount("fleet-catalog"))
	if !refused(e, "fleet-catalog") || refused(e, "certfleet") {
		t.Error("the configured catalog mount is not the one refused")
	}
}

// Certificates selected by the same policies share one list of their
// names (a pass keeps a verdict per certificate); another selection has
// its own list, and no selection is still an empty list.
func TestPolicyListsAreShared(t *testing.T) {
	ev := evaluate.New(catalog(t), now)
	a := ev.Verdict(desired(t, "teams/payments/api.yaml", cert("fleet", "")))
	b := ev.Verdict(desired(t, "teams/search/api.yaml", cert("fleet", "")))
	c := ev.Verdict(desired(t, "teams/search/api.yaml", cert("tight", "")))
	d := ev.Verdict(desired(t, "elsewhere/api.yaml", cert("tight", "")))
	if !reflect.DeepEqual(a.Policies, []string{"internal", "month"}) || !reflect.DeepEqual(c.Policies, []string{"internal"}) {
		t.Fatalf("policies %v and %v; want [internal month] and [internal]", a.Policies, c.Policies)
	}
	if unsafe.SliceData(a.Policies) != unsafe.SliceData(b.Policies) {
		t.Error("two certificates selected by the same policies hold two lists of their names")
	}
	if !reflect.DeepEqual(b.Policies, []string{"internal", "month"}) || !reflect.DeepEqual(c.Policies, []string{"internal"}) {
		t.Errorf("after sharing: policies %v and %v; want [internal month] and [internal]", b.Policies, c.Policies)
	}
	if d.Policies == nil || len(d.Policies) != 0 {
		t.Errorf("a certificate no policy selects has policies %#v; want an empty list", d.Policies)
	}
}
