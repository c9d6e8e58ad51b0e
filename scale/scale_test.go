package scale_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	// env is added to the processes' environment (GOMEMLIMIT=…).
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
	// which no GOMEMLIMIT counts.
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
	// limitPeak and limitLive are a second no-op pass's, each process
	// run with GOMEMLIMIT=limit (soft: the collector works harder near it).
	limit               string
	limitPeak, limitSum float64
	limitLive           float64
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
	if ps.limit = limitOf(k); ps.limit != "" {
		env := f.env
		f.env = append(slices.Clone(env), "GOMEMLIMIT="+ps.limit)
		_, ps.limitPeak, ps.limitSum, runs = f.pass(k)
		f.env = env
		ps.limitLive = maxLive(runs)
		for _, r := range runs {
			if len(r.report.Actions) > 0 || len(r.report.Failures) > 0 {
				b.Fatalf("no-op pass with GOMEMLIMIT=%s (%d processes) acted: %v, failures %v", ps.limit, k, r.report.Actions, r.report.Failures)
			}
		}
	}
	return ps
}

// report reports what the passes measured of the largest process, each
// metric's name after prefix ("shard-" for the shards' rows).
func (ps passes) report(b *testing.B, prefix string) {
	b.ReportMetric(ps.firstWall.Seconds(), prefix+"first-pass-s")
	b.ReportMetric(ps.noopWall.Seconds(), prefix+"noop-pass-s")
	b.ReportMetric(ps.firstPeak, prefix+"first-peak-RSS-MiB")
	b.ReportMetric(ps.noopPeak, prefix+"noop-peak-RSS-MiB")
	b.ReportMetric(ps.firstLive, prefix+"first-peak-live-MiB")
	b.ReportMetric(ps.noopLive, prefix+"noop-peak-live-MiB")
	if ps.limit != "" {
		b.ReportMetric(ps.limitPeak, prefix+"noop-peak-RSS-MiB-GOMEMLIMIT-"+ps.limit)
		b.ReportMetric(ps.limitLive, prefix+"noop-peak-live-MiB-GOMEMLIMIT-"+ps.limit)
	}
}

// limitOf is the soft memory limit of the extra no-op pass of k processes:
// CERTFLEET_SCALE_GOMEMLIMIT ("off": none), by default 230MiB for a shard
// (beneath its goal of 256 MiB, as a container limit of 256Mi would set
// it through the downward API less a margin) and none for one process.
func limitOf(k int) string {
	switch v := os.Getenv("CERTFLEET_SCALE_GOMEMLIMIT"); {
	case v == "off":
		return ""
	case v != "":
		return v
	case k > 1:
		return "230MiB"
	}
	return ""
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
// heap (from GODEBUG=gctrace=1) is reported beside its peak RSS; the
// shards then run one more no-op pass with a soft memory limit
// (GOMEMLIMIT, limitOf), reported apart: the limit trades CPU for RSS and
// cannot make what the pass keeps alive any smaller. Last, the one
// process's first and no-op passes run again on a fresh fleet under the
// GOMEMLIMIT the example deployment sets for its 512Mi limit
// (deployedLimit), reported apart as …-GOMEMLIMIT-512MiB
// (CERTFLEET_SCALE_GOMEMLIMIT=off skips them). Each process's resident
// set at its largest is logged split into anonymous memory and mapped
// files.
func BenchmarkManaged100k(b *testing.B) {
	for b.Loop() {
		n, k := scaleN(), shards()
		f := newFleet(b, n, form())

		base := f.exec("validate", "--source", f.repo, "--backend", "local", "--state-dir", f.state)
		if k > 1 {
			sh := manage(b, f, n, k)
			b.ReportMetric(float64(k), "shards")
			sh.report(b, "shard-")
			b.ReportMetric(sh.claimWall.Seconds(), "shard-claim-s")
			b.ReportMetric(sh.firstSum, "shard-first-sum-RSS-MiB")
			b.ReportMetric(sh.noopSum, "shard-noop-sum-RSS-MiB")
			if sh.limit != "" {
				b.ReportMetric(sh.limitSum, "shard-noop-sum-RSS-MiB-GOMEMLIMIT-"+sh.limit)
			}
			b.ReportMetric(max(sh.firstPeak, sh.noopPeak)/256, "shard-ratio-to-256MiB")
			f.remove()
			f = newFleet(b, n, form())
		}
		one := manage(b, f, n, 1)
		peak := max(one.firstPeak, one.noopPeak)
		b.ReportMetric(float64(n), "certificates")
		one.report(b, "")
		b.ReportMetric(base.peakMiB, "validate-peak-RSS-MiB")
		b.ReportMetric(base.wall.Seconds(), "validate-s")
		b.ReportMetric(peak/512, "ratio-to-512MiB")
		if os.Getenv("CERTFLEET_SCALE_GOMEMLIMIT") != "off" {
			// The one process's passes again, on a fresh fleet, under the
			// soft memory limit the example deployment sets (deployedLimit):
			// what the goal of 512 MiB is measured against in production.
			value, name := deployedLimit(b)
			f.remove()
			f = newFleet(b, n, form())
			f.env = []string{"GOMEMLIMIT=" + value}
			ltd := manage(b, f, n, 1)
			suffix := "-GOMEMLIMIT-" + name
			b.ReportMetric(ltd.firstWall.Seconds(), "first-pass-s"+suffix)
			b.ReportMetric(ltd.noopWall.Seconds(), "noop-pass-s"+suffix)
			b.ReportMetric(ltd.firstPeak, "first-peak-RSS-MiB"+suffix)
			b.ReportMetric(ltd.noopPeak, "noop-peak-RSS-MiB"+suffix)
			b.ReportMetric(ltd.firstLive, "first-peak-live-MiB"+suffix)
			b.ReportMetric(ltd.noopLive, "noop-peak-live-MiB"+suffix)
		}
	}
}
