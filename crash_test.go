package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
)

// crashPKI is a local backend's catalog: one root, one issuer.
const crashPKI = `apiVersion: certfleet.dev/v1alpha1
kind: Authority
metadata: {name: root}
spec: {type: root, mount: pki, commonName: Crash Root, keyType: ec, keyBits: 256, ttl: 8760h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Issuer
metadata: {name: mtls}
spec: {authority: root, allowedDomains: [svc.cluster.local], allowSubdomains: true, maxTTL: 72h}
---
apiVersion: certfleet.dev/v1alpha1
kind: Policy
metadata: {name: all}
spec: {dnsNames: ["**.svc.cluster.local"]}
`

// TestKillNineDuringIssuanceLeavesEveryTargetValidAndDriftClean kills
// `reconcile --once` with SIGKILL at random moments while it issues 300
// certificates, checks after every kill that each delivered pair is whole
// (parses, the key matches, it chains to the root), lets the last run
// finish, and expects drift to find nothing: crashes between delivery and
// record are repaired, stale data directories are cleaned.
func TestKillNineDuringIssuanceLeavesEveryTargetValidAndDriftClean(t *testing.T) {
	bin := testbed.Certfleet(t)
	work := t.TempDir()
	state, out, repo := filepath.Join(work, "state"), filepath.Join(work, "tls"), filepath.Join(work, "repo")
	write(t, filepath.Join(work, "pki.yaml"), crashPKI)
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		return cmd.CombinedOutput()
	}
	if out, err := run("catalog", "apply", "-f", filepath.Join(work, "pki.yaml"), "--backend", "local", "--state-dir", state); err != nil {
		t.Fatalf("catalog apply: %v\n%s", err, out)
	}
	const n = 300
	for f := range 10 {
		var b strings.Builder
		for i := range n / 10 {
			name := fmt.Sprintf("svc-%d-%d", f, i)
			fmt.Fprintf(&b, `---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: %[1]s, namespace: team%[2]d}
spec:
  issuer: mtls
  dnsNames: [%[1]s.team%[2]d.svc.cluster.local]
  duration: 24h
  # RSA keys take a while to make: a pass lasts long enough for kills to land mid-issuance.
  privateKey: {algorithm: RSA, size: 2048}
  targets:
    - directory: {path: team%[2]d/%[1]s}
`, name, f)
		}
		if err := os.MkdirAll(repo, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(repo, fmt.Sprintf("team%d.yaml", f)), b.String())
	}
	pass := []string{"--source", repo, "--backend", "local", "--state-dir", state, "--output-dir", out}
	kills := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := 0; kills < 12 && attempt < 200; attempt++ {
		cmd := exec.Command(bin, append([]string{"reconcile", "--once", "--concurrency", "2"}, pass...)...)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			// Finished before the kill: everything is issued, no later kill
			// can land mid-issuance.
			if err != nil {
				t.Fatalf("reconcile: %v\n%s", err, logs.String())
			}
			attempt = 200
			continue
		case <-time.After(time.Duration(200+rng.IntN(1000)) * time.Millisecond):
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		kills++
		checkDirectories(t, out)
	}
	t.Logf("%d kills", kills)
	if kills < 10 {
		t.Fatalf("only %d kills landed during issuance: the passes finished too fast for the test to mean anything", kills)
	}
	// Data directories a kill left behind are removed once they are older
	// than the stale age (10 s), whatever the pass does with their target.
	time.Sleep(11 * time.Second)
	if b, err := run(append([]string{"reconcile", "--once"}, pass...)...); err != nil {
		t.Fatalf("the pass after the kills: %v\n%s", err, b)
	}
	checkDirectories(t, out)
	b, err := run(append([]string{"drift"}, pass...)...)
	if err != nil {
		t.Fatalf("drift after the kills: %v\n%s", err, b)
	}
	issued := 0
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && strings.HasPrefix(d.Name(), ".."):
			// A data directory: the one ..data points at, never a stale one.
			if d.Name() != filepath.Base(mustReadlink(t, filepath.Join(filepath.Dir(p), "..data"))) {
				t.Errorf("a stale data directory is left: %s", p)
			}
			return filepath.SkipDir
		case d.Name() == "tls.crt":
			issued++
		}
		return nil
	})
	if issued != n {
		t.Errorf("%d targets hold a certificate, want %d", issued, n)
	}
}

func mustReadlink(t *testing.T, p string) string {
	l, err := os.Readlink(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
	}
	return l
}

// checkDirectories checks every delivered pair the way a TLS server
// reloading its files would read it.
func checkDirectories(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "..") {
			return filepath.SkipDir // read through the links, as a server does
		}
		if err != nil || d.Name() != "tls.crt" {
			return err
		}
		dir := filepath.Dir(p)
		crt, err1 := os.ReadFile(p)
		key, err2 := os.ReadFile(filepath.Join(dir, "tls.key"))
		if err := errors.Join(err1, err2); err != nil {
			t.Errorf("%s: %v", dir, err)
			return nil
		}
		c, err := pki.ParseCertificate(crt)
		if err != nil {
			t.Errorf("%s: tls.crt does not parse: %v", dir, err)
			return nil
		}
		k, err := pki.ParseKey(key)
		if err != nil || !pki.KeyMatches(k, c) {
			t.Errorf("%s: tls.key does not match tls.crt", dir)
		}
		ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		if root, perr := pki.ParseCertificate(ca); err != nil || perr != nil || c.CheckSignatureFrom(root) != nil {
			t.Errorf("%s: tls.crt does not chain to ca.crt", dir)
		}
		return nil
	})
}
