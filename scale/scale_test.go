package scale_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
)

// The fleet's size and form, from the environment so `make bench` and a
// person at a terminal can choose: CERTFLEET_SCALE_N certificates (default
// 100,000) declared as CERTFLEET_SCALE_FORM — "documents" (default: one
// Certificate document each, 1,000 to a file) or "sets" (one CertificateSet
// of 1,000 items per team) — managed by CERTFLEET_SCALE_SHARDS processes
// (default 1; see shardArgs).
func scaleN() int { return envInt("CERTFLEET_SCALE_N", 100_000) }
func shards() int { return envInt("CERTFLEET_SCALE_SHARDS", 1) }
func form() string {
	if f := os.Getenv("CERTFLEET_SCALE_FORM"); f != "" {
		return f
	}
	return "documents"
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// shardArgs are the arguments that make process i of k act on its shard
// only. One process (k = 1) needs none. Sharding (issue 18) fills this in
// with its flag, e.g. []string{"--shard", fmt.Sprintf("%d/%d", i, k)}; the
// benchmark then runs the k processes of a pass side by side and reports
// the largest peak RSS of one and their sum.
var shardArgs = func(i, k int) []string {
	if k == 1 {
		return nil
	}
	return []string{"--shard", fmt.Sprintf("%d/%d", i, k)}
}

// perFile is how many certificates one manifests file (or set) declares.
const perFile = 1000

// writeRepository writes n certificates under dir, perFile to a team.
func writeRepository(tb testing.TB, dir string, n int, form string) {
	tb.Helper()
	for f := 0; f*perFile < n; f++ {
		team := fmt.Sprintf("team-%03d", f)
		var b strings.Builder
		switch form {
		case "documents":
			for i := f * perFile; i < min(n, (f+1)*perFile); i++ {
				fmt.Fprintf(&b, `---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: svc-%[1]d, namespace: %[2]s}
spec:
  issuer: mtls
  dnsNames: [svc-%[1]d.%[2]s.svc.cluster.local]
  duration: 48h
  privateKey: {algorithm: ECDSA, size: 256}
  targets:
    - directory: {path: %[2]s/svc-%[1]d}
`, i, team)
			}
		case "sets":
			fmt.Fprintf(&b, `apiVersion: certfleet.dev/v1alpha1
kind: CertificateSet
metadata: {name: services, namespace: %[1]s}
spec:
  nameTemplate: svc-${i}
  template:
    issuer: mtls
    dnsNames: ["svc-${i}.%[1]s.svc.cluster.local"]
    duration: 48h
    privateKey: {algorithm: ECDSA, size: 256}
    targets:
      - directory: {path: "%[1]s/svc-${i}"}
  items:
`, team)
			for i := f * perFile; i < min(n, (f+1)*perFile); i++ {
				fmt.Fprintf(&b, "    - {i: \"%d\"}\n", i)
			}
		default:
			tb.Fatalf("CERTFLEET_SCALE_FORM=%q: use documents or sets", form)
		}
		p := filepath.Join(dir, "teams", team, "certificates.yaml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// fleet is a repository, a local backend and an output root.
type fleet struct {
	tb                     testing.TB
	bin                    string
	repo, state, out, work string
}

func newFleet(tb testing.TB, n int, form string) *fleet {
	tb.Helper()
	work := os.Getenv("CERTFLEET_SCALE_DIR") // a disk of one's choice; default a temporary directory
	if work == "" {
		work = tb.TempDir()
	} else {
		var err error
		if work, err = os.MkdirTemp(work, "certfleet-scale-"); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(work) })
	}
	f := &fleet{tb: tb, bin: testbed.Certfleet(tb), work: work, repo: filepath.Join(work, "repo"),
		state: filepath.Join(work, "state"), out: filepath.Join(work, "tls")}
	pki := filepath.Join(work, "pki.yaml")
	if err := os.WriteFile(pki, []byte(testbed.LocalPKI), 0o644); err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command(f.bin, "catalog", "apply", "-f", pki, "--backend", "local", "--state-dir", f.state).CombinedOutput(); err != nil {
		tb.Fatalf("catalog apply: %v\n%s", err, out)
	}
	writeRepository(tb, f.repo, n, form)
	return f
}

// run is one certfleet process: its report, wall time and peak RSS.
type run struct {
	report struct {
		Certificates int            `json:"certificates"`
		Actions      map[string]int `json:"actions"`
		Reasons      map[string]int `json:"reasons"`
		Failures     []any          `json:"failures"`
	}
	wall    time.Duration
	peakMiB float64
}

// exec runs the binary with args, its JSON report to a file, and measures
// it: getrusage's ru_maxrss of the child is its peak resident set.
func (f *fleet) exec(args ...string) run {
	f.tb.Helper()
	stdout, err := os.CreateTemp(f.work, "report-*.json")
	if err != nil {
		f.tb.Fatal(err)
	}
	defer os.Remove(stdout.Name())
	defer stdout.Close()
	var stderr strings.Builder
	cmd := exec.Command(f.bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if extra := os.Getenv("CERTFLEET_SCALE_CHILD_ENV"); extra != "" {
		cmd.Env = append(os.Environ(), strings.Fields(extra)...) // e.g. GODEBUG=gctrace=1
	}
	start := time.Now()
	err = cmd.Run()
	var r run
	r.wall = time.Since(start)
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.peakMiB = float64(ru.Maxrss) / 1024 // kilobytes on Linux
		}
	}
	if err != nil && !strings.Contains(strings.Join(args, " "), "validate") {
		f.tb.Fatalf("certfleet %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String()))
	}
	if _, err := stdout.Seek(0, 0); err == nil && strings.Contains(strings.Join(args, " "), "-o json") {
		if err := json.NewDecoder(stdout).Decode(&r.report); err != nil {
			f.tb.Fatalf("certfleet %s: reading its report: %v", strings.Join(args, " "), err)
		}
	}
	if s := stderr.String(); s != "" && os.Getenv("CERTFLEET_SCALE_CHILD_ENV") != "" {
		f.tb.Logf("certfleet %s, standard error:\n%s", args[0], tail(s))
	}
	return r
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// pass runs one `reconcile --once` over the fleet in k processes side by
// side (shardArgs): the longest wall time, the largest peak RSS of one
// process and the sum of them, and the reports.
func (f *fleet) pass(k int) (wall time.Duration, peakMiB, sumMiB float64, runs []run) {
	runs = make([]run, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Go(func() {
			args := append([]string{"reconcile", "--once", "-o", "json", "--source", f.repo, "--backend", "local",
				"--state-dir", f.state, "--output-dir", f.out, "--audit-log", filepath.Join(f.work, "audit.log")}, shardArgs(i, k)...)
			runs[i] = f.exec(args...)
		})
	}
	wg.Wait()
	for _, r := range runs {
		wall, peakMiB, sumMiB = max(wall, r.wall), max(peakMiB, r.peakMiB), sumMiB+r.peakMiB
	}
	return wall, peakMiB, sumMiB, runs
}

// BenchmarkManaged100k: the real `certfleet reconcile --once` manages N
// certificates (default 100,000) — renders them from a repository on disk,
// issues them through the embedded local backend (ECDSA P-256, signed in
// process: the memory goal is about certfleet, and Vault at ~200/s would
// spend ~8 min signing), delivers each into its own directory, observes
// and records them — then runs a no-op pass over them. It reports both
// passes' wall time and peak RSS beside the goal (512 MiB) and a baseline
// process that only holds the rendered declarations (`certfleet validate`
// of the same repository, with the catalog).
func BenchmarkManaged100k(b *testing.B) {
	for b.Loop() {
		n, k := scaleN(), shards()
		f := newFleet(b, n, form())

		base := f.exec("validate", "--source", f.repo, "--backend", "local", "--state-dir", f.state)

		firstWall, firstPeak, firstSum, runs := f.pass(k)
		issued, failures := 0, 0
		for _, r := range runs {
			issued += r.report.Actions["issue"]
			failures += len(r.report.Failures)
		}
		if issued != n || failures > 0 {
			b.Fatalf("first pass: issued %d of %d, %d failures", issued, n, failures)
		}
		noopWall, noopPeak, noopSum, runs := f.pass(k)
		inSync := 0
		for _, r := range runs {
			if len(r.report.Actions) > 0 || len(r.report.Failures) > 0 {
				b.Fatalf("no-op pass acted: %v, failures %v", r.report.Actions, r.report.Failures)
			}
			inSync += r.report.Reasons["InSync"]
		}
		if inSync != n {
			b.Fatalf("no-op pass: %d targets InSync, want %d", inSync, n)
		}
		peak := max(firstPeak, noopPeak)
		b.ReportMetric(float64(n), "certificates")
		b.ReportMetric(float64(k), "processes")
		b.ReportMetric(firstWall.Seconds(), "first-pass-s")
		b.ReportMetric(noopWall.Seconds(), "noop-pass-s")
		b.ReportMetric(firstPeak, "first-peak-RSS-MiB")
		b.ReportMetric(noopPeak, "noop-peak-RSS-MiB")
		b.ReportMetric(max(firstSum, noopSum), "sum-peak-RSS-MiB")
		b.ReportMetric(base.peakMiB, "validate-peak-RSS-MiB")
		b.ReportMetric(base.wall.Seconds(), "validate-s")
		b.ReportMetric(peak/512, "ratio-to-512MiB")
	}
}
