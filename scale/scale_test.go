package scale_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/memlimit"
	"github.com/certfleet/certfleet/internal/testbed"
)

// The fleet's size and form, from the environment so `make bench` and a
// person at a terminal can choose: CERTFLEET_SCALE_N certificates (default
// 100,000) declared as CERTFLEET_SCALE_FORM — "documents" (default: one
// Certificate document each, 1,000 to a file) or "sets" (one CertificateSet
// of 1,000 items per team) — managed by CERTFLEET_SCALE_SHARDS shard
// processes side by side (default 1: one unsharded process only; with more,
// the same fleet is also managed by one unsharded process, for comparison).
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
// only (s0 … s<k-1>, certificates spread by a hash of their IDs). One
// process (k = 1) needs none.
func shardArgs(i, k int) []string {
	if k == 1 {
		return nil
	}
	names := make([]string, k)
	for j := range k {
		names[j] = fmt.Sprintf("s%d", j)
	}
	return []string{"--shard", names[i], "--shards", strings.Join(names, ","), "--shard-by", "hash"}
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
	// env is added to the processes' environment (CERTFLEET_MEMORY_LIMIT=…).
	env []string
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
		Shard        *struct {
			Claimed []string `json:"claimed"`
		} `json:"shard"`
	}
	wall    time.Duration
	peakMiB float64
	// liveMiB is the largest live heap a collection marked (gctrace's
	// third figure): what the pass keeps, whatever the collector's pace.
	liveMiB float64
	// anonMiB and fileMiB split the largest resident set sampled
	// (/proc/<pid>/status every 20 ms): anonymous memory (the Go heap,
	// stacks, the runtime's own) and mapped files (the binary's text),
	// which the runtime's soft memory limit does not count.
	anonMiB, fileMiB float64
}

// gcLine is a GODEBUG=gctrace=1 line: "… A->B->C MB, …", C the heap
// marked live by that collection (MB meaning 2^20 bytes there).
var gcLine = regexp.MustCompile(`(?m)^gc \d+ @.* (\d+)->(\d+)->(\d+) MB.*$`)

// largestLive is the largest live heap in gctrace output, in MiB: what
// the pass keeps, whatever the collector's pace.
func largestLive(stderr string) float64 {
	var live float64
	for _, m := range gcLine.FindAllStringSubmatch(stderr, -1) {
		if v, err := strconv.ParseFloat(m[3], 64); err == nil {
			live = max(live, v)
		}
	}
	return live
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
	// gctrace reports each collection's live heap (largestLive) on stderr.
	cmd.Env = append(append(os.Environ(), "GODEBUG=gctrace=1"), f.env...)
	if extra := os.Getenv("CERTFLEET_SCALE_CHILD_ENV"); extra != "" {
		cmd.Env = append(cmd.Env, strings.Fields(extra)...) // e.g. GODEBUG=gctrace=1,madvdontneed=1
	}
	start := time.Now()
	var r run
	if err = cmd.Start(); err == nil {
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			pid := fmt.Sprint(cmd.Process.Pid)
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			var peak uint64
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				if rss, anon, file := procStatus(pid); rss > peak {
					peak, r.anonMiB, r.fileMiB = rss, mib(anon), mib(file)
				}
			}
		}()
		err = cmd.Wait()
		close(done)
		<-sampled
	}
	r.wall = time.Since(start)
	r.liveMiB = largestLive(stderr.String())
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

// remove deletes the fleet's files (its repository, state and targets), so
// a second fleet of the same size fits on the disk.
func (f *fleet) remove() {
	if err := os.RemoveAll(f.work); err != nil {
		f.tb.Fatal(err)
	}
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
	for i, r := range runs {
		f.tb.Logf("process %d of %d %v: peak RSS %.0f MiB, at the largest sampled %.0f MiB anonymous + %.0f MiB files; live heap %.0f MiB",
			i+1, k, f.env, r.peakMiB, r.anonMiB, r.fileMiB, r.liveMiB)
	}
	return wall, peakMiB, sumMiB, runs
}

// passes is what the passes of one way of running the fleet measured.
type passes struct {
	// first is the first pass (for shards: the round that claims and the
	// round that issues, wall times added); noop the pass after it.
	firstWall, noopWall time.Duration
	firstPeak, noopPeak float64 // MiB, the largest process's
	firstSum, noopSum   float64 // MiB, all processes' peaks added
	firstLive, noopLive float64 // MiB, the largest live heap of one process
	claimWall           time.Duration
}

// maxLive is the largest live heap of one of runs' processes.
func maxLive(runs []run) float64 {
	live := 0.0
	for _, r := range runs {
		live = max(live, r.liveMiB)
	}
	return live
}

// manage runs a fresh fleet of n certificates through a first pass and a
// no-op pass in k processes side by side, checking that each certificate
// is issued once and that the no-op pass finds every one in sync. A shard's
// first pass only claims its new certificates, and issues them from its
// next pass on (reconciler/shard: two shards whose views differ never both
// issue); the first pass of shards is these two rounds.
func manage(b *testing.B, f *fleet, n, k int) passes {
	var ps passes
	if k > 1 {
		wall, peak, sum, runs := f.pass(k)
		claimed := 0
		for _, r := range runs {
			if len(r.report.Actions) > 0 || r.report.Shard == nil {
				b.Fatalf("claiming round: actions %v, shard report %v", r.report.Actions, r.report.Shard)
			}
			claimed += len(r.report.Shard.Claimed)
		}
		if claimed != n {
			b.Fatalf("claiming round: %d of %d claimed", claimed, n)
		}
		ps.claimWall, ps.firstWall, ps.firstPeak, ps.firstSum = wall, wall, peak, sum
		ps.firstLive = maxLive(runs)
	}
	wall, peak, sum, runs := f.pass(k)
	ps.firstWall += wall
	ps.firstPeak, ps.firstSum = max(ps.firstPeak, peak), max(ps.firstSum, sum)
	ps.firstLive = max(ps.firstLive, maxLive(runs))
	issued, failures := 0, 0
	for _, r := range runs {
		issued += r.report.Actions["issue"]
		failures += len(r.report.Failures)
	}
	if issued != n || failures > 0 {
		b.Fatalf("first pass (%d processes): issued %d of %d, %d failures", k, issued, n, failures)
	}
	ps.noopWall, ps.noopPeak, ps.noopSum, runs = f.pass(k)
	inSync := 0
	for _, r := range runs {
		if len(r.report.Actions) > 0 || len(r.report.Failures) > 0 {
			b.Fatalf("no-op pass (%d processes) acted: %v, failures %v", k, r.report.Actions, r.report.Failures)
		}
		inSync += r.report.Reasons["InSync"]
	}
	if inSync != n {
		b.Fatalf("no-op pass (%d processes): %d targets InSync, want %d", k, inSync, n)
	}
	ps.noopLive = maxLive(runs)
	return ps
}

// report reports what the passes measured of the largest process, each
// metric's name between prefix ("shard-" for the shards' rows) and suffix
// ("-limit-512Mi" for a run under a layout's memory limit).
func (ps passes) report(b *testing.B, prefix, suffix string) {
	b.ReportMetric(ps.firstWall.Seconds(), prefix+"first-pass-s"+suffix)
	b.ReportMetric(ps.noopWall.Seconds(), prefix+"noop-pass-s"+suffix)
	b.ReportMetric(ps.firstPeak, prefix+"first-peak-RSS-MiB"+suffix)
	b.ReportMetric(ps.noopPeak, prefix+"noop-peak-RSS-MiB"+suffix)
	b.ReportMetric(ps.firstLive, prefix+"first-peak-live-MiB"+suffix)
	b.ReportMetric(ps.noopLive, prefix+"noop-peak-live-MiB"+suffix)
	if prefix == "shard-" {
		b.ReportMetric(ps.claimWall.Seconds(), prefix+"claim-s"+suffix)
		b.ReportMetric(ps.firstSum, prefix+"first-sum-RSS-MiB"+suffix)
		b.ReportMetric(ps.noopSum, prefix+"noop-sum-RSS-MiB"+suffix)
	}
}

// limited reports whether the passes run again under the example layouts'
// memory limits (CERTFLEET_SCALE_MEMORY_LIMIT=off: not).
func limited() bool { return os.Getenv("CERTFLEET_SCALE_MEMORY_LIMIT") != "off" }

// underLimit manages a fresh fleet of n certificates in k processes, each
// given the container memory limit of the layout at path as that layout
// hands it over (memlimit.Env; certfleet sets its soft limit from it), and
// reports the passes with the suffix -limit-<limit>. It returns the
// largest process's peak RSS.
func underLimit(b *testing.B, n, k int, path string) float64 {
	value, name := deployedLimit(b, path)
	f := newFleet(b, n, form())
	defer f.remove()
	// An inherited GOMEMLIMIT would win over the layout's limit.
	f.env = []string{memlimit.Env + "=" + value, "GOMEMLIMIT="}
	ps := manage(b, f, n, k)
	prefix := ""
	if k > 1 {
		prefix = "shard-"
	}
	ps.report(b, prefix, "-limit-"+name)
	return max(ps.firstPeak, ps.noopPeak)
}

// BenchmarkManaged100k: the real `certfleet reconcile --once` manages N
// certificates (default 100,000) — renders them from a repository on disk,
// issues them through the embedded local backend (ECDSA P-256, signed in
// process: the memory goal is about certfleet, and Vault at ~200/s would
// spend ~8 min signing), delivers each into its own directory (100,000
// Secrets would overload the test bed's single etcd), observes and records
// them — then runs a no-op pass over them. It reports both passes' wall
// time and peak RSS beside the goal (512 MiB) and a baseline process that
// only holds the rendered declarations (`certfleet validate` of the same
// repository, with the catalog). With CERTFLEET_SCALE_SHARDS=k > 1, k shard
// processes manage the fleet first (reported as shard-…: the largest
// process's peak RSS, beside the goal of 256 MiB per shard, and the sum),
// then, on a fresh copy, the one process does. Each process's largest live
// heap (from GODEBUG=gctrace=1) is reported beside its peak RSS, and its
// resident set at its largest is logged split into anonymous memory and
// mapped files. Then each runs again on a fresh fleet under the memory
// limit of its example layout (limited: the shards under
// examples/deploy-sharded's 256Mi, the one process under examples/deploy's
// 512Mi), as the layout hands it over: reported apart as …-limit-256Mi and
// …-limit-512Mi. The soft limit certfleet sets from it trades CPU for RSS
// and cannot make what the pass keeps alive any smaller.
func BenchmarkManaged100k(b *testing.B) {
	for b.Loop() {
		n, k := scaleN(), shards()
		f := newFleet(b, n, form())

		base := f.exec("validate", "--source", f.repo, "--backend", "local", "--state-dir", f.state)
		if k > 1 {
			sh := manage(b, f, n, k)
			b.ReportMetric(float64(k), "shards")
			sh.report(b, "shard-", "")
			b.ReportMetric(max(sh.firstPeak, sh.noopPeak)/256, "shard-ratio-to-256MiB")
			f.remove()
			if limited() {
				b.ReportMetric(underLimit(b, n, k, shardLayout)/256, "shard-ratio-to-256MiB-limit")
			}
			f = newFleet(b, n, form())
		}
		one := manage(b, f, n, 1)
		f.remove()
		b.ReportMetric(float64(n), "certificates")
		one.report(b, "", "")
		b.ReportMetric(base.peakMiB, "validate-peak-RSS-MiB")
		b.ReportMetric(base.wall.Seconds(), "validate-s")
		b.ReportMetric(max(one.firstPeak, one.noopPeak)/512, "ratio-to-512MiB")
		if limited() {
			b.ReportMetric(underLimit(b, n, 1, oneLayout)/512, "ratio-to-512MiB-limit")
		}
	}
}
