package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbed.RemoveCertfleet()
	os.Exit(code)
}

// TestTerraformPlansWithDevOverrides is what a developer does after `make
// install`: point dev_overrides at the binary and plan a configuration that
// names the provider, with both terraform and OpenTofu.
func TestTerraformPlansWithDevOverrides(t *testing.T) {
	bin := testbed.Certfleet(t)
	for _, cli := range testbed.MustCLIs(t) {
		t.Run(cli.Name, func(t *testing.T) {
			dir := t.TempDir()
			rc := filepath.Join(dir, "dev.tfrc")
			write(t, rc, `provider_installation {
  dev_overrides {
    "registry.terraform.io/certfleet/certfleet" = "`+filepath.Dir(bin)+`"
    "registry.opentofu.org/certfleet/certfleet" = "`+filepath.Dir(bin)+`"
  }
  direct {}
}
`)
			write(t, filepath.Join(dir, "main.tf"), `terraform {
  required_providers {
    certfleet = { source = "certfleet/certfleet" }
  }
}
provider "certfleet" {}
`)
			cmd := exec.Command(cli.Path, "plan", "-input=false", "-no-color")
			cmd.Dir = dir
			cmd.Env = cli.Env(dir, rc)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s plan: %v\n%s", cli.Name, err, out)
			}
			if !strings.Contains(string(out), "certfleet/certfleet in "+filepath.Dir(bin)) {
				t.Errorf("%s plan did not use the override:\n%s", cli.Name, out)
			}
			if !strings.Contains(string(out), "No changes") {
				t.Errorf("%s plan of an empty configuration should say No changes:\n%s", cli.Name, out)
			}
		})
	}
}

func TestProviderDebugModePrintsReattachSettings(t *testing.T) {
	bin := testbed.Certfleet(t)
	cmd := exec.Command(bin, "provider", "--debug")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "TF_REATTACH_PROVIDERS=") {
				found <- sc.Text()
				return
			}
		}
		close(found)
	}()
	select {
	case line, ok := <-found:
		if !ok || !strings.Contains(line, "registry.terraform.io/certfleet/certfleet") {
			t.Fatalf("debug mode printed no reattach line for the provider (got %q)", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("debug mode printed nothing in 30 s")
	}
}

func TestVersionCommand(t *testing.T) {
	out, err := exec.Command(testbed.Certfleet(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("certfleet version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "certfleet ") {
		t.Errorf("certfleet version printed %q", out)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestExamplePKIApplies applies examples/pki, the whole PKI the docs show,
// on the local backend with the real terraform, and checks that a second
// plan has nothing to do.
func TestExamplePKIApplies(t *testing.T) {
	bin := testbed.Certfleet(t)
	cli := testbed.MustCLIs(t)[0]
	dir := t.TempDir()
	example, err := os.ReadFile("examples/pki/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "main.tf"), string(example))
	rc := filepath.Join(dir, "dev.tfrc")
	write(t, rc, `provider_installation {
  dev_overrides {
    "registry.terraform.io/certfleet/certfleet" = "`+filepath.Dir(bin)+`"
  }
  direct {}
}
`)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(cli.Path, args...)
		cmd.Dir = dir
		cmd.Env = cli.Env(dir, rc)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	state := filepath.Join(dir, "state")
	if out, code := run("apply", "-auto-approve", "-input=false", "-no-color", "-var", "state_dir="+state); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	out, _ := run("output", "-raw", "trust_bundle")
	if n := strings.Count(out, "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("trust bundle has %d certificates, want the intermediate and the root", n)
	}
	if out, code := run("plan", "-detailed-exitcode", "-input=false", "-no-color", "-var", "state_dir="+state); code != 0 {
		t.Errorf("a second plan is not empty (exit %d):\n%s", code, out)
	}
}

// TestQuickstartDemo runs `make demo`'s script with the built binary: the
// main job on the local backend, the inventory, and drift catching a
// tampered file that the next pass heals.
func TestQuickstartDemo(t *testing.T) {
	bin := testbed.Certfleet(t)
	cmd := exec.Command("examples/quickstart/demo.sh")
	cmd.Env = append(os.Environ(), "CERTFLEET="+bin, "DEMO_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"actions: issue 4", "4 of 4 certificates", "1 drifted", "4 in sync, 0 drifted"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "PRIVATE KEY") {
		t.Error("the demo printed a private key")
	}
}

// TestServeStopsCleanlyOnSIGTERM runs the daemon as users do — a process —
// on the quickstart, waits for its first pass, and sends SIGTERM: it must
// exit 0 and leave every certificate in sync.
func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := testbed.Certfleet(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if out, err := exec.Command(bin, "catalog", "apply", "-f", "examples/quickstart/pki.yaml", "--state-dir", state).CombinedOutput(); err != nil {
		t.Fatalf("catalog apply: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	repo, _ := filepath.Abs("examples/quickstart/repo")
	write(t, filepath.Join(dir, "certfleet.yaml"), fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: ServeConfig
source: {url: %s, interval: 1h}
backend: {type: local, stateDir: %s}
outputDir: %s
listen: %s
`, repo, state, filepath.Join(dir, "tls"), addr))
	cmd := exec.Command(bin, "serve", "--config", filepath.Join(dir, "certfleet.yaml"))
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("not ready in 30 s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
	out, err := exec.Command(bin, "drift", "--source", repo, "--state-dir", state, "--output-dir", filepath.Join(dir, "tls")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "4 in sync, 0 drifted") {
		t.Errorf("after the stop: %v\n%s", err, out)
	}
}
