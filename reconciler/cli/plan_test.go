package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/schemas"
)

// Manifests of the test repository: three teams' certificates under the
// quickstart catalog's issuers and policies.
const (
	apiCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: api
  namespace: payments
spec:
  issuer: mtls
  dnsNames:
    - api.payments.svc.cluster.local
  uris: ["spiffe://fleet.example.com/ns/payments/sa/api"]
  usages: [digital signature, key encipherment, server auth, client auth]
  duration: 48h
  targets:
    - kubernetes: {cluster: prod-eu, namespace: payments, secretName: api-mtls}
`
	wwwCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: www
  namespace: web
spec:
  issuer: ingress
  dnsNames: [www.example.com]
  duration: 720h
  targets:
    - kubernetes:
        cluster: prod-us
        namespace: ingress-nginx
        secretName: www-tls
        secretTemplate:
          labels: {team: web}
`
	legacyCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: legacy
  namespace: web
spec:
  issuer: ingress
  dnsNames: [legacy.example.com]
  duration: 720h
  targets:
    - directory: {path: tls/legacy}
`
)

// planRepo pushes a base (main) and a pull-request branch (feature) to the
// test bed's Git server behind basic auth, and returns the repository URL.
func planRepo(t *testing.T, feature map[string]string, remove ...string) (url string, srv *testbed.GitServer) {
	t.Helper()
	srv = testbed.NewGitServer(t, testbed.WithBasicAuth("ci", "s3cret-pw"))
	url, err := srv.CreateRepo("fleet")
	if err != nil {
		t.Fatal(err)
	}
	w := testbed.NewWorktree(t)
	w.Write(t, map[string]string{
		"teams/payments/api.yaml": apiCert,
		"teams/web/www.yaml":      wwwCert,
		"teams/web/legacy.yaml":   legacyCert,
	})
	w.Commit(t, "alice", "base")
	w.Push(t, srv.PushURL("fleet"), "main")
	w.Git(t, "checkout", "--quiet", "-b", "feature")
	w.Write(t, feature)
	if len(remove) > 0 {
		w.Remove(t, remove...)
	}
	w.Commit(t, "bob", "the pull request")
	w.Push(t, srv.PushURL("fleet"), "feature")
	return url, srv
}

func passwordFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(p, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var hashes = regexp.MustCompile(`@[0-9a-f]{12}`)

// TestPlanOverHTTPWithAuth is a pull request that adds a SAN, changes a
// Secret label, removes a file, adds a certificate a policy denies and a
// broken file beside them.
func TestPlanOverHTTPWithAuth(t *testing.T) {
	snapshot, _ := quickstartCatalog(t)
	url, _ := planRepo(t, map[string]string{
		"teams/payments/api.yaml": strings.Replace(apiCert, "    - api.payments.svc.cluster.local\n",
			"    - api.payments.svc.cluster.local\n    - api-v2.payments.svc.cluster.local\n", 1),
		"teams/web/www.yaml": strings.Replace(wwwCert, "{team: web}", "{team: frontend}", 1),
		"teams/web/shop.yaml": `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: shop
  namespace: web
spec:
  issuer: ingress
  dnsNames:
    - shop.example.com
    - shop.example.net
  duration: 720h
  targets:
    - kubernetes: {cluster: prod-eu, namespace: ingress-nginx, secretName: shop-tls}
`,
		"teams/web/broken.yaml": "apiVersion: certfleet.dev/v1alpha1\nkind: Certificate\nmetadata:\n  name: broken\nspec:\n  issuer: ingress\n  dnsName: [a.example.com]\n",
	}, "teams/web/legacy.yaml")

	args := []string{"plan", "--source", url, "--base", "main", "--head", "feature", "--catalog", snapshot,
		"--git-username", "ci", "--git-password-file", passwordFile(t)}
	code, out, errOut := run(t, append(args, "-o", "json")...)
	if code != 3 {
		t.Fatalf("exit %d, want 3 (violations win over changes)\n%s\n%s", code, out, errOut)
	}
	var rep schemas.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-o json is not a report: %v\n%s", err, out)
	}
	matchesReportSchema(t, out)
	actions := map[string]schemas.Change{}
	for _, c := range rep.Changes {
		actions[c.ID] = c
	}
	if c := actions["payments/api"]; c.Action != schemas.ActionReissue || len(c.Fields) != 1 ||
		c.Fields[0].Field != "spec.dnsNames[1]" || c.Fields[0].New != "api-v2.payments.svc.cluster.local" || c.Fields[0].Old != "" {
		t.Errorf("a SAN added: got %+v, want a reissue with spec.dnsNames[1] added", c)
	}
	if c := actions["web/www"]; c.Action != schemas.ActionUpdate || len(c.Fields) != 1 ||
		c.Fields[0].Old != "web" || c.Fields[0].New != "frontend" || c.Fields[0].Reissue {
		t.Errorf("a secret label changed: got %+v, want an update web → frontend", c)
	}
	if c := actions["web/legacy"]; c.Action != schemas.ActionRemove || c.File != "teams/web/legacy.yaml" {
		t.Errorf("a file removed: got %+v, want a removal", c)
	}
	if c := actions["web/shop"]; c.Action != schemas.ActionAdd {
		t.Errorf("a new certificate: got %+v, want an addition", c)
	}
	var shop schemas.CertificateVerdict
	for _, v := range rep.Certificates {
		if v.ID == "web/shop" {
			shop = v
		}
	}
	if shop.Allowed || len(shop.Violations) != 1 {
		t.Fatalf("shop verdict = %+v, want one violation", shop)
	}
	if v := shop.Violations[0]; v.Policy != "ingress" || v.Field != "spec.dnsNames[1]" || v.Line != 10 || v.Reason != schemas.ReasonDNSNameNotAllowed {
		t.Errorf("violation = %+v, want policy ingress, spec.dnsNames[1] on line 10", v)
	}
	if len(rep.Errors) != 1 || rep.Errors[0].File != "teams/web/broken.yaml" || rep.Errors[0].Line != 7 || !strings.Contains(rep.Errors[0].Hint, "dnsNames") {
		t.Errorf("the broken file: errors %v, want one on teams/web/broken.yaml:7 suggesting dnsNames", rep.Errors)
	}
	if rep.Summary.Certificates != 3 {
		t.Errorf("%d certificates planned on the head, want the 3 good ones despite the broken file", rep.Summary.Certificates)
	}
	if strings.Contains(out+errOut, "s3cret-pw") {
		t.Error("the password appears in the output")
	}

	for _, format := range []string{"text", "markdown", "github"} {
		code, out, _ := run(t, append(args, "-o", format)...)
		if code != 3 {
			t.Errorf("-o %s: exit %d", format, code)
		}
		golden(t, "plan."+format, hashes.ReplaceAllString(out, "@<hash>"))
	}
}

func TestPlanExitCodes(t *testing.T) {
	snapshot, _ := quickstartCatalog(t)
	cases := []struct {
		name    string
		feature map[string]string
		want    int
	}{
		{"a pull request that changes nothing exits 0", map[string]string{"README.md": "docs only\n"}, 0},
		{"a pull request with allowed changes exits 2", map[string]string{"teams/web/www.yaml": strings.Replace(wwwCert, "720h", "360h", 1)}, 2},
		{"a pull request that breaks a manifest exits 3", map[string]string{"teams/web/www.yaml": "kind: [\n"}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url, _ := planRepo(t, c.feature)
			code, out, errOut := run(t, "plan", "--source", url, "--base", "main", "--head", "feature", "--catalog", snapshot,
				"--git-username", "ci", "--git-password-file", passwordFile(t))
			if code != c.want {
				t.Errorf("exit %d, want %d\n%s%s", code, c.want, out, errOut)
			}
		})
	}
}

func TestPlanReportsWhatCannotRunWithoutLeakingCredentials(t *testing.T) {
	snapshot, _ := quickstartCatalog(t)
	url, srv := planRepo(t, map[string]string{"README.md": "x\n"})
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"a base ref that does not exist", []string{"--base", "no-such-branch", "--git-username", "ci", "--git-password-file", passwordFile(t)}, `base: fetching .*no-such-branch`},
		{"wrong credentials", []string{"--base", "main", "--git-username", "ci", "--git-password-file", writeTemp(t, "wrong-pw")}, `base: fetching .*authentication required`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"plan", "--source", url, "--catalog", snapshot}, c.args...)...)
			if code != ExitError || !regexp.MustCompile(c.want).MatchString(errOut) {
				t.Errorf("exit %d, stderr %q, want 1 and %s", code, errOut, c.want)
			}
			if strings.Contains(out+errOut, "s3cret-pw") || strings.Contains(out+errOut, "wrong-pw") {
				t.Error("a password appears in the output")
			}
		})
	}
	// Credentials written into the URL are used, and never printed.
	withCreds := strings.Replace(url, "http://", "http://ci:s3cret-pw@", 1)
	code, out, errOut := run(t, "plan", "--source", withCreds, "--base", "no-such", "--catalog", snapshot)
	if code != ExitError || strings.Contains(out+errOut, "s3cret-pw") || !strings.Contains(errOut, srv.URL) {
		t.Errorf("exit %d, stderr %q: want 1, the URL without its password", code, errOut)
	}
}

func writeTemp(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// matchesReportSchema validates -o json output against the published
// schema, schemas/jsonschema/report.json.
func matchesReportSchema(t *testing.T, out string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../../schemas/jsonschema/report.json")
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("the JSON report does not match schemas/jsonschema/report.json: %v", err)
	}
}
