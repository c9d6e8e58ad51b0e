package testbed_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certfleet/certfleet/internal/testbed"
)

func TestVaultIssuesACertificateFromAPKIRole(t *testing.T) {
	v := testbed.NewVault(t)
	c, err := v.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Sys().MountWithContext(ctx, "pki", &vaultapi.MountInput{Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "87600h"}}); err != nil {
		t.Fatalf("enabling pki: %v", err)
	}
	root, err := c.Logical().WriteWithContext(ctx, "pki/root/generate/internal", map[string]any{
		"common_name": "testbed root", "ttl": "24h", "key_type": "ec", "key_bits": 256,
	})
	if err != nil {
		t.Fatalf("generating root: %v", err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "pki/roles/web", map[string]any{
		"allowed_domains": "example.test", "allow_subdomains": true, "max_ttl": "1h",
	}); err != nil {
		t.Fatalf("writing role: %v", err)
	}
	issued, err := c.Logical().WriteWithContext(ctx, "pki/issue/web", map[string]any{
		"common_name": "api.example.test", "ttl": "10m",
	})
	if err != nil {
		t.Fatalf("issuing: %v", err)
	}
	leaf := parseCert(t, issued.Data["certificate"].(string))
	ca := parseCert(t, root.Data["certificate"].(string))
	if got := leaf.DNSNames; len(got) != 1 || got[0] != "api.example.test" {
		t.Errorf("DNS names = %v, want [api.example.test]", got)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "api.example.test"}); err != nil {
		t.Errorf("issued certificate does not chain to the root: %v", err)
	}
	// A name outside the role is refused: the PKI engine is really enforcing it.
	if _, err := c.Logical().WriteWithContext(ctx, "pki/issue/web", map[string]any{"common_name": "evil.other.test"}); err == nil {
		t.Error("Vault issued a name outside the role's allowed domains")
	}
}

func TestAPIServerValidatesTLSSecretsAndClustersAreSeparate(t *testing.T) {
	a := testbed.NewCluster(t, "alpha")
	b := testbed.NewCluster(t, "beta")
	ca, err := a.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	certPEM, keyPEM := selfSigned(t, "web.example.test")

	bad := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "no-key", Namespace: "default"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM},
	}
	_, err = ca.CoreV1().Secrets("default").Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "tls.key") {
		t.Fatalf("creating a TLS Secret without tls.key: got %v, want an Invalid error naming tls.key", err)
	}

	good := bad.DeepCopy()
	good.Name = "web-tls"
	good.Data[corev1.TLSPrivateKeyKey] = keyPEM
	if _, err := ca.CoreV1().Secrets("default").Create(ctx, good, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a valid TLS Secret: %v", err)
	}
	got, err := ca.CoreV1().Secrets("default").Get(ctx, "web-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data[corev1.TLSPrivateKeyKey]) != string(keyPEM) {
		t.Error("stored Secret does not hold the key that was written")
	}
	if _, err := cb.CoreV1().Secrets("default").Get(ctx, "web-tls", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster beta sees alpha's Secret (err %v): the clusters share state", err)
	}
}

func TestGoGitClonesWhatWasPushedWithBasicAuth(t *testing.T) {
	srv := testbed.NewGitServer(t, testbed.WithBasicAuth("ci", "s3cret"))
	if _, err := srv.CreateRepo("fleet"); err != nil {
		t.Fatal(err)
	}
	w := testbed.NewWorktree(t)
	w.Write(t, map[string]string{"team-a/cert.yaml": "kind: Certificate\n"})
	head := w.Commit(t, "alice", "add a certificate")
	w.Push(t, srv.PushURL("fleet"), "main")
	w.Git(t, "checkout", "--quiet", "-b", "feature")
	w.Write(t, map[string]string{"team-b/cert.yaml": "kind: Certificate\n"})
	feature := w.Commit(t, "bob", "add another")
	w.Push(t, srv.PushURL("fleet"), "feature")

	dir := t.TempDir()
	repo, err := git.PlainClone(dir, false, &git.CloneOptions{
		URL:           srv.RepoURL("fleet"),
		Auth:          &http.BasicAuth{Username: "ci", Password: "s3cret"},
		ReferenceName: "refs/heads/feature",
		SingleBranch:  true,
		Depth:         1,
	})
	if err != nil {
		t.Fatalf("cloning over HTTP: %v", err)
	}
	ref, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	if ref.Hash().String() != feature {
		t.Errorf("cloned head %s, want pushed %s", ref.Hash(), feature)
	}
	for _, f := range []string{"team-a/cert.yaml", "team-b/cert.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("clone lacks %s: %v", f, err)
		}
	}
	if head == feature {
		t.Fatal("the two commits have the same hash")
	}

	_, err = git.PlainClone(t.TempDir(), false, &git.CloneOptions{URL: srv.RepoURL("fleet")})
	if err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("cloning without credentials: got %v, want authentication required", err)
	}
}

func TestTerraformAndOpenTofuInitAndApplyOffline(t *testing.T) {
	for _, cli := range testbed.MustCLIs(t) {
		t.Run(cli.Name, func(t *testing.T) {
			dir := t.TempDir()
			rc := filepath.Join(dir, "cli.tfrc")
			must(t, os.WriteFile(rc, nil, 0o644))
			must(t, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(`
resource "terraform_data" "greeting" {
  input = "hello from ${terraform.workspace}"
}
output "greeting" {
  value = terraform_data.greeting.output
}
`), 0o644))
			run := func(args ...string) string {
				cmd := exec.Command(cli.Path, args...)
				cmd.Dir = dir
				cmd.Env = cli.Env(dir, rc)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s %s: %v\n%s", cli.Name, strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			if v := run("version"); !strings.Contains(v, strings.TrimPrefix(cli.Version, "v")) {
				t.Errorf("%s version printed %q, want %s", cli.Name, v, cli.Version)
			}
			run("init", "-input=false", "-no-color")
			run("apply", "-auto-approve", "-input=false", "-no-color")
			if got := strings.TrimSpace(run("output", "-raw", "greeting")); got != "hello from default" {
				t.Errorf("output greeting = %q, want %q", got, "hello from default")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func parseCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM block in %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
