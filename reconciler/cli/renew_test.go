package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/pki"
)

// TestRenewReissuesOnceAtTheNextPassOrNow: `renew` records a request
// against the serial delivered now; the next pass issues a new certificate
// (new serial, new key) for it alone, the audit log says who asked, and the
// pass after that issues nothing (the request is met). --selector picks by
// label, --now runs the pass at once, and what cannot be renewed is refused
// with a reason.
func TestRenewReissuesOnceAtTheNextPassOrNow(t *testing.T) {
	_, state := quickstartCatalog(t)
	dir := t.TempDir()
	repo, out, audit := filepath.Join(dir, "repo"), filepath.Join(dir, "out"), filepath.Join(dir, "audit.log")
	for _, name := range []string{"api", "jobs"} {
		write(t, filepath.Join(repo, name+".yaml"), `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata:
  name: `+name+`
  namespace: payments
  labels: {app: `+name+`}
spec:
  issuer: mtls
  commonName: `+name+`.payments.svc.cluster.local
  dnsNames: [`+name+`.payments.svc.cluster.local]
  usages: [digital signature, server auth, client auth]
  duration: 72h
  renewBefore: 24h
  targets: [{directory: {path: `+name+`}}]
`)
	}
	flags := []string{"--source", repo, "--backend", "local", "--state-dir", state, "--output-dir", out, "--audit-log", audit}
	cli := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := run(t, append(args, flags...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
		return stdout
	}
	delivered := func(name string) (serial string, key []byte) {
		t.Helper()
		c, err := pki.ParseCertificate(must(os.ReadFile(filepath.Join(out, name, "tls.crt"))))
		if err != nil {
			t.Fatal(err)
		}
		return pki.Serial(c.SerialNumber), must(os.ReadFile(filepath.Join(out, name, "tls.key")))
	}

	if code, _, stderr := run(t, append([]string{"renew", "payments/api"}, flags...)...); code == 0 || !strings.Contains(stderr, "not issued yet") {
		t.Errorf("renewing a certificate never issued: exit %d, want a refusal saying so\n%s", code, stderr)
	}
	cli("reconcile", "--once")
	apiSerial, apiKey := delivered("api")
	jobsSerial, _ := delivered("jobs")

	if code, _, stderr := run(t, append([]string{"renew", "payments/nosuch"}, flags...)...); code == 0 || !strings.Contains(stderr, "not declared at this revision: payments/nosuch") {
		t.Errorf("renewing an undeclared certificate: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := run(t, append([]string{"renew", "--selector", "app in ("}, flags...)...); code == 0 || !strings.Contains(stderr, "--selector") {
		t.Errorf("a malformed selector: exit %d\n%s", code, stderr)
	}
	if got := cli("renew", "payments/api"); !strings.Contains(got, "payments/api: renewal of serial "+apiSerial+" requested") {
		t.Errorf("renew does not say what it asked for:\n%s", got)
	}
	if s, _ := delivered("api"); s != apiSerial {
		t.Fatal("renew without --now reissued at once")
	}
	report := cli("reconcile", "--once")
	if !strings.Contains(report, "actions: renew 1;") {
		t.Errorf("the pass after renew did not issue exactly one certificate:\n%s", report)
	}
	newSerial, newKey := delivered("api")
	if newSerial == apiSerial || string(newKey) == string(apiKey) {
		t.Errorf("renew did not reissue with a new serial and key (serial %s → %s)", apiSerial, newSerial)
	}
	if s, _ := delivered("jobs"); s != jobsSerial {
		t.Error("renewing payments/api reissued payments/jobs too")
	}
	if report := cli("reconcile", "--once"); !strings.Contains(report, "actions: nothing to do") {
		t.Errorf("a met request reissued again:\n%s", report)
	}
	if s, _ := delivered("api"); s != newSerial {
		t.Error("a met request reissued again")
	}

	cli("renew", "--selector", "app=jobs", "--now")
	if s, _ := delivered("jobs"); s == jobsSerial {
		t.Error("renew --selector app=jobs --now did not reissue payments/jobs")
	}
	if s, _ := delivered("api"); s != newSerial {
		t.Error("renew --selector app=jobs reissued payments/api")
	}

	// The audit log carries each request with who asked, and each issuance
	// that met one with its reason.
	var requested, met int
	f := must(os.Open(audit))
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var ev struct{ Action, Certificate, Reason, Actor string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Action == "renew-requested":
			requested++
			if ev.Actor != actor() {
				t.Errorf("the request's actor is %q, want %q", ev.Actor, actor())
			}
		case ev.Action == "renew" && ev.Reason == "RenewalRequested":
			met++
		}
	}
	if requested != 2 || met != 2 {
		t.Errorf("audit log: %d renew-requested and %d issues for RenewalRequested, want 2 and 2", requested, met)
	}
}
