package serve_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/schemas"
)

// manyCertificates is enough directory certificates that one pass through
// Vault takes several seconds at concurrency 2.
const manyCertificates = 400

// pushMany pushes n certificates named <prefix>000…, each to a directory.
func (w *world) pushMany(prefix string, n int) {
	w.t.Helper()
	files := map[string]string{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s%03d", prefix, i)
		files["apps/"+name+".yaml"] = dirCert(name, "")
	}
	w.push(files)
}

// auditEvents reads the audit log (every line must be a whole event).
func (w *world) auditEvents(path string) []inventory.Event {
	w.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		w.t.Fatal(err)
	}
	var out []inventory.Event
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var e inventory.Event
		if err := json.Unmarshal(l, &e); err != nil {
			w.t.Fatalf("a torn audit line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// issuedOK are the successful issuances in events, by certificate.
func issuedOK(events []inventory.Event) map[string]inventory.Event {
	out := map[string]inventory.Event{}
	for _, e := range events {
		if e.Action == "issue" && e.Error == "" {
			out[e.Certificate] = e
		}
	}
	return out
}

// signalMidPass starts cmd, waits until its audit log shows a few
// issuances, and sends SIGTERM. It returns when the process exited: how
// long it took after the signal, the log's bytes at exit, and its error.
func (w *world) signalMidPass(cmd *exec.Cmd, audit string, stderr *strings.Builder) (time.Duration, []byte, error) {
	w.t.Helper()
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	w.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for len(issuedOK(w.auditEvents(audit))) < 10 {
		select {
		case err := <-done:
			w.t.Fatalf("exited before the pass was under way: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the pass did not get under way in 90 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		w.t.Fatal(err)
	}
	select {
	case err := <-done:
		took := time.Since(sent)
		at, _ := os.ReadFile(audit)
		return took, at, err
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		w.t.Fatalf("still running 60 s after SIGTERM:\n%s", stderr.String())
	}
	return 0, nil, nil
}

// checkStoppedMidPass checks what an interrupted pass left: it stopped
// before the end, wrote nothing more after the exit, and every target it
// delivered is a whole certificate and its key, the one the audit log names.
func (w *world) checkStoppedMidPass(audit string, atExit []byte, exited time.Time) {
	w.t.Helper()
	time.Sleep(time.Second)
	if now, _ := os.ReadFile(audit); !bytes.Equal(now, atExit) {
		w.t.Errorf("the audit log grew after the process exited: %d bytes at exit, %d a second later", len(atExit), len(now))
	}
	events := w.auditEvents(audit)
	for _, e := range events {
		if e.Time.After(exited) {
			w.t.Errorf("an audit event dated after the exit: %s %s at %s", e.Action, e.Certificate, e.Time)
		}
	}
	issued := issuedOK(events)
	if len(issued) >= manyCertificates {
		w.t.Errorf("all %d certificates were issued: the pass did not stop", len(issued))
	}
	crts, _ := filepath.Glob(filepath.Join(w.cfg.OutputDir, "*", "tls.crt"))
	for _, crt := range crts {
		dir := filepath.Dir(crt)
		c, err1 := os.ReadFile(crt)
		k, err2 := os.ReadFile(filepath.Join(dir, "tls.key"))
		cert, err3 := pki.ParseCertificate(c)
		key, err4 := pki.ParseKey(k)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || !pki.KeyMatches(key, cert) {
			w.t.Errorf("%s is not a matching certificate and key after the stop", dir)
			continue
		}
		e, ok := issued["apps/"+filepath.Base(dir)]
		if !ok {
			w.t.Errorf("%s holds a certificate the audit log does not record", dir)
		} else if e.Serial != pki.Serial(cert.SerialNumber) {
			w.t.Errorf("%s holds serial %s; the audit log recorded %s", dir, pki.Serial(cert.SerialNumber), e.Serial)
		}
	}
	for id := range issued {
		if _, err := os.Stat(filepath.Join(w.cfg.OutputDir, strings.TrimPrefix(id, "apps/"), "tls.crt")); err != nil {
			w.t.Errorf("the audit log records %s delivered, but its directory holds no certificate: %v", id, err)
		}
	}
	w.t.Logf("stopped after %d of %d certificates (%d delivered directories)", len(issued), manyCertificates, len(crts))
}

func TestServeStopsWithinTheGraceOnSIGTERMMidPass(t *testing.T) {
	bin := testbed.Certfleet(t)
	w := newWorld(t)
	w.pushMany("m", manyCertificates)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const grace = time.Second
	cfg := *w.cfg
	cfg.Listen, cfg.Concurrency, cfg.ShutdownGrace = addr, 2, schemas.Duration(grace.String())
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(w.dir, "certfleet.yaml")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", conf)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	took, atExit, err := w.signalMidPass(cmd, cfg.AuditLog, &stderr)
	exited := time.Now()
	if err != nil {
		t.Errorf("serve exited with %v after SIGTERM; want 0", err)
	}
	// The grace, then the calls in flight return and the records of what
	// they did are written: a second is ample even on a loaded machine.
	if took > grace+2*time.Second {
		t.Errorf("serve took %s to exit after SIGTERM; the grace is %s", took.Round(time.Millisecond), grace)
	}
	t.Logf("exited %s after SIGTERM (grace %s)", took.Round(time.Millisecond), grace)
	logs := stderr.String()
	i := strings.Index(logs, `msg=stopping`)
	if i < 0 {
		t.Fatalf("serve did not log that it was stopping:\n%s", logs)
	}
	if after := logs[i:]; strings.Contains(after, `msg="pass started"`) {
		t.Errorf("a pass started after SIGTERM:\n%s", after)
	}
	if !strings.Contains(logs, "cancelling the pass in flight") {
		t.Errorf("serve did not say it cancelled the pass:\n%s", logs)
	}
	w.checkStoppedMidPass(cfg.AuditLog, atExit, exited)
}

func TestReconcileOnceStopsOnSIGTERMAndSaysItWasInterrupted(t *testing.T) {
	bin := testbed.Certfleet(t)
	w := newWorld(t)
	w.pushMany("m", manyCertificates)
	cmd := exec.Command(bin, "reconcile", "--once", "--source", w.url, "--ref", "main",
		"--git-username", "ci", "--git-password-file", w.cfg.Source.Auth.PasswordFile,
		"--backend", "vault", "--vault-addr", vaultServer.Addr, "--vault-token-file", w.cfg.Backend.Vault.TokenFile,
		"--catalog-mount", w.cfg.Backend.Vault.CatalogMount, "--output-dir", w.cfg.OutputDir, "--audit-log", w.cfg.AuditLog,
		"--concurrency", "2", "--renewal-jitter", "1s")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	took, atExit, err := w.signalMidPass(cmd, w.cfg.AuditLog, &stderr)
	exited := time.Now()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("reconcile --once exited with %v after SIGTERM; want a non-zero exit code", err)
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("reconcile --once did not say it was interrupted:\n%s", stderr.String())
	}
	if took > 2*time.Second {
		t.Errorf("reconcile --once took %s to exit after SIGTERM", took.Round(time.Millisecond))
	}
	t.Logf("exited %s after SIGTERM: %v", took.Round(time.Millisecond), err)
	w.checkStoppedMidPass(w.cfg.AuditLog, atExit, exited)
}
