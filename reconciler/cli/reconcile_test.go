package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/schemas"
)

// TestReconcileFromAGitServerIntoAClusterAndADirectory is the main job end
// to end through the command line: a repository on the test bed's Git
// server (basic auth), the local backend, a real cluster reached by a
// kubeconfig context, and a directory.
func TestReconcileFromAGitServerIntoAClusterAndADirectory(t *testing.T) {
	c := testbed.NewCluster(t, "prod-eu")
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{"payments", "ingress-nginx"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	// The catalog's two clusters, prod-eu and prod-us, are two contexts of
	// one API server here.
	us := *c
	us.Name = "prod-us"
	if err := testbed.WriteKubeconfig(kubeconfig, c, &us); err != nil {
		t.Fatal(err)
	}
	_, state := quickstartCatalog(t) // its cluster prod-eu uses kubeconfig context prod-eu
	url, _ := planRepo(t, map[string]string{"README.md": "x\n"})
	out := filepath.Join(dir, "tls")
	base := []string{"--source", url, "--ref", "main", "--git-username", "ci", "--git-password-file", passwordFile(t),
		"--backend", "local", "--state-dir", state, "--kubeconfig", kubeconfig, "--output-dir", out}

	code, stdout, stderr := run(t, append([]string{"reconcile", "--once"}, base...)...)
	if code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "actions: issue 3") {
		t.Errorf("report:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(out, "tls/legacy", "tls.crt")); err != nil {
		t.Errorf("the directory target: %v", err)
	}
	s, err := cs.CoreV1().Secrets("payments").Get(ctx, "api-mtls", metav1.GetOptions{})
	if err != nil || len(s.Data["tls.key"]) == 0 {
		t.Fatalf("the Secret in the cluster: %v", err)
	}
	if code, stdout, _ := run(t, append([]string{"drift"}, base...)...); code != 0 {
		t.Errorf("drift after a pass: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, "inventory", "--state-dir", state, "-o", "json", "--san", "*.payments.svc.cluster.local")
	var entries []inventory.Entry
	if code != 0 || json.Unmarshal([]byte(stdout), &entries) != nil || len(entries) != 1 || entries[0].Author != "alice" {
		t.Errorf("inventory --san: exit %d, %s", code, stdout)
	}
	code, stdout, _ = run(t, "inventory", "--state-dir", state, "--owner", "ALICE")
	if code != 0 || strings.Count(stdout, "\n") != 4 { // the header and the three certificates
		t.Errorf("inventory --owner ALICE: exit %d, want the three certificates alice's commit issued:\n%s", code, stdout)
	}
	if code, stdout, _ = run(t, "inventory", "--state-dir", state, "--owner", "mallory"); code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Errorf("inventory --owner mallory: exit %d, want only the header:\n%s", code, stdout)
	}

	// status: one certificate's facts, with its history from the audit log.
	code, stdout, stderr = run(t, append([]string{"status", "payments/api", "-o", "json"}, base...)...)
	var facts struct {
		Entry   inventory.Entry
		Where   string
		Verdict *schemas.CertificateVerdict
		Targets []struct{ Reason string }
		History []inventory.Event
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &facts) != nil {
		t.Fatalf("status -o json: exit %d\n%s%s", code, stdout, stderr)
	}
	if facts.Entry.Author != "alice" || facts.Verdict == nil || !facts.Verdict.Allowed || !strings.Contains(facts.Where, ".yaml:") ||
		len(facts.Targets) == 0 || facts.Targets[0].Reason != "InSync" || len(facts.History) == 0 || facts.History[0].Serial == "" {
		t.Errorf("status -o json lacks the owner, the verdict, file:line, an in-sync target or the issuance:\n%s", stdout)
	}
	if code, stdout, _ = run(t, append([]string{"status", "payments/api"}, base...)...); code != 0 || !strings.Contains(stdout, "allowed by") ||
		!strings.Contains(stdout, facts.Entry.Serial) || !strings.Contains(stdout, "history:") {
		t.Errorf("status: exit %d\n%s", code, stdout)
	}
	if code, _, stderr = run(t, append([]string{"status", "payments/nope"}, base...)...); code == 0 || !strings.Contains(stderr, `"payments/nope" is neither declared`) {
		t.Errorf("status of an unknown certificate: exit %d, %s", code, stderr)
	}

	// drift -o html: one self-contained page naming the drifted target and where it is declared.
	if err := os.RemoveAll(filepath.Join(out, "tls/legacy")); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = run(t, append([]string{"drift", "-o", "html"}, base...)...)
	if code != 2 || !strings.HasPrefix(stdout, "<!doctype html>") || !strings.Contains(stdout, "<style>") ||
		strings.Contains(stdout, "<link") || strings.Contains(stdout, "src=") || !strings.Contains(stdout, "Missing") ||
		!strings.Contains(stdout, ".yaml:") || strings.Contains(stdout, "PRIVATE KEY") {
		t.Errorf("drift -o html after removing a directory target: exit %d (want 2), want a self-contained page with the Missing target and its file:line:\n%s", code, stdout)
	}

	// A source that cannot be fetched: nothing is decided, nothing pruned.
	bad := append([]string{"reconcile", "--once", "--prune"}, base...)
	for i, a := range bad {
		if a == url {
			bad[i] = strings.Replace(url, "fleet.git", "missing.git", 1)
		}
	}
	if code, _, stderr := run(t, bad...); code != ExitError || strings.Contains(stderr, "s3cret-pw") {
		t.Errorf("unfetchable source: exit %d, stderr %q", code, stderr)
	}
	if _, err := cs.CoreV1().Secrets("payments").Get(ctx, "api-mtls", metav1.GetOptions{}); err != nil {
		t.Errorf("a failed fetch removed a certificate: %v", err)
	}
}

func TestAllowDirRootMustBeAbsolute(t *testing.T) {
	for _, cmd := range []string{"reconcile", "drift"} {
		t.Run(cmd, func(t *testing.T) {
			args := []string{cmd, "--source", t.TempDir(), "--backend", "local", "--state-dir", t.TempDir(), "--allow-dir-root", "/etc/tls", "--allow-dir-root", "certs"}
			if cmd == "reconcile" {
				args = append(args, "--once")
			}
			code, _, stderr := run(t, args...)
			if code == 0 || !strings.Contains(stderr, `--allow-dir-root "certs" is not absolute`) {
				t.Errorf("exit %d, stderr %q; want a refusal naming the relative root", code, stderr)
			}
		})
	}
}
