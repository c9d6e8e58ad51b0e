package faults_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/inventory"
)

// full selects the sizes of `make faults`; without it the scenarios run
// at the reduced sizes CI affords.
var full = os.Getenv("CERTFLEET_FAULTS") == "full"

// size is n in the full form, reduced otherwise.
func size(reduced, n int) int {
	if full {
		return n
	}
	return reduced
}

// artifacts holds every log line, report, audit log, metrics scrape and
// page the suite produces: the secrets sweep reads all of it.
var artifacts string

func TestMain(m *testing.M) {
	var err error
	if artifacts, err = os.MkdirTemp("", "certfleet-faults-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	sweepSecrets()
	failed := printTable(os.Stdout)
	if p := os.Getenv("CERTFLEET_FAULTS_TABLE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			printMarkdown(f)
			f.Close()
		}
	}
	testbed.RemoveCertfleet()
	if os.Getenv("CERTFLEET_FAULTS_KEEP") == "" {
		os.RemoveAll(artifacts)
	} else {
		fmt.Println("artifacts kept in", artifacts)
	}
	if failed && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// row is one line of the table.
type row struct {
	scenario, reps, measured, result string
	pass                             bool
}

var table struct {
	sync.Mutex
	rows []row
}

func addRow(r row) {
	table.Lock()
	defer table.Unlock()
	table.rows = append(table.rows, r)
}

// printTable prints the table and reports whether a bar failed.
func printTable(w io.Writer) (failed bool) {
	table.Lock()
	defer table.Unlock()
	size := "reduced (CERTFLEET_FAULTS unset)"
	if full {
		size = "full (CERTFLEET_FAULTS=full)"
	}
	fmt.Fprintf(w, "\ncertfleet faults, %s sizes, %s, %d cores\n\n", size, time.Now().UTC().Format("2006-01-02 15:04 UTC"), numCPU())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tREPS\tMEASURED\tRESULT\tBAR")
	for _, r := range table.rows {
		bar := "pass"
		if !r.pass {
			bar, failed = "FAIL", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.scenario, r.reps, r.measured, r.result, bar)
	}
	tw.Flush()
	fmt.Fprintln(w)
	return failed
}

// printMarkdown writes the table as the README carries it.
func printMarkdown(w io.Writer) {
	table.Lock()
	defer table.Unlock()
	fmt.Fprintln(w, "| scenario | repetitions | measured | result | bar |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range table.rows {
		bar := "pass"
		if !r.pass {
			bar = "**FAIL**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.scenario, r.reps, md(r.measured), md(r.result), bar)
	}
}

func md(s string) string { return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s) }

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// scenario is one row being measured: a test says what it measures, adds
// results, and checks bars; the row is added when the test ends, failed
// when any bar (or anything else in the test) failed.
type scenario struct {
	t        *testing.T
	name     string
	reps     string
	measured string
	results  []string
	dir      string // the scenario's artifacts
}

func newScenario(t *testing.T, name, measured string) *scenario {
	s := &scenario{t: t, name: name, measured: measured, dir: filepath.Join(artifacts, t.Name())}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		addRow(row{scenario: s.name, reps: s.reps, measured: s.measured, result: strings.Join(s.results, "; "), pass: !t.Failed()})
	})
	return s
}

func (s *scenario) result(format string, args ...any) {
	s.results = append(s.results, fmt.Sprintf(format, args...))
	s.t.Logf("%s: "+format, append([]any{s.name}, args...)...)
}

// bar checks one bar of the issue; a miss fails the row.
func (s *scenario) bar(ok bool, format string, args ...any) {
	s.t.Helper()
	if !ok {
		s.t.Errorf("bar missed: "+format, args...)
	}
}

// keep stores an output of the run (a report, a page, a scrape) for the sweep.
func (s *scenario) keep(name string, data []byte) {
	if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o644); err != nil {
		s.t.Error(err)
	}
}

// path is a file in the scenario's artifacts (an audit log, a log).
func (s *scenario) path(name string) string { return filepath.Join(s.dir, name) }

var seq atomic.Int64

// proc is a certfleet process whose output goes to the artifacts.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs the certfleet binary with args; env adds to the environment.
func (s *scenario) start(env []string, args ...string) *proc {
	s.t.Helper()
	bin := testbed.Certfleet(s.t)
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.log = s.path(fmt.Sprintf("%04d-%s.log", seq.Add(1), args[0]))
	f, err := os.Create(p.log)
	if err != nil {
		s.t.Fatal(err)
	}
	p.cmd.Env = append(append(os.Environ(), "NO_COLOR=1"), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.done) }()
	s.t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

func (p *proc) wait() (string, int) {
	<-p.done
	b, _ := os.ReadFile(p.log)
	code := 0
	if p.err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			code = ee.ExitCode()
		}
	}
	return string(b), code
}

// run runs certfleet to the end and returns its output and exit code.
func (s *scenario) run(env []string, args ...string) (string, int) {
	s.t.Helper()
	return s.start(env, args...).wait()
}

// mustRun runs certfleet and fails the test unless it exits 0.
func (s *scenario) mustRun(env []string, args ...string) string {
	s.t.Helper()
	out, code := s.run(env, args...)
	if code != 0 {
		s.t.Fatalf("certfleet %s: exit %d\n%s", strings.Join(args, " "), code, tail(out))
	}
	return out
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// get fetches a page of a daemon and keeps it.
func (s *scenario) get(url string) (int, []byte) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s.keep(fmt.Sprintf("%04d-page.txt", seq.Add(1)), b)
	return resp.StatusCode, b
}

// metric is the value of an unlabelled series in a Prometheus scrape.
func metric(scrape []byte, name string) float64 {
	for _, l := range strings.Split(string(scrape), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

// audit reads an audit log; every line must be a whole event.
func audit(t *testing.T, path string) []inventory.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []inventory.Event
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var e inventory.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Errorf("a torn audit line %q: %v", l, err)
			continue
		}
		out = append(out, e)
	}
	return out
}

// countIssued counts issuance lines in an audit log without decoding it:
// cheap enough to poll while a pass runs.
func countIssued(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), `"action":"issue"`)
}

// pair is what a directory target holds, read as one snapshot through its
// ..data link, the way a server reloading its files would see it.
type pair struct {
	dir      string
	serial   string
	notAfter time.Time
	err      error
}

// readPair reads a directory target. A data directory can be swapped and
// removed between reads; then the link names the new one and the read is
// tried again.
func readPair(dir string) pair {
	var last error
	for range 5 {
		link, err := os.Readlink(filepath.Join(dir, "..data"))
		if err != nil {
			return pair{dir: dir, err: fmt.Errorf("no ..data link: %w", err)}
		}
		data := filepath.Join(dir, link)
		crt, err1 := os.ReadFile(filepath.Join(data, "tls.crt"))
		key, err2 := os.ReadFile(filepath.Join(data, "tls.key"))
		ca, err3 := os.ReadFile(filepath.Join(data, "ca.crt"))
		if err := errors.Join(err1, err2, err3); err != nil {
			if now, _ := os.Readlink(filepath.Join(dir, "..data")); now != link {
				last = err
				continue // swapped under the read
			}
			return pair{dir: dir, err: err}
		}
		secrets.addPEM(key)
		c, err := pki.ParseCertificate(crt)
		if err != nil {
			return pair{dir: dir, err: fmt.Errorf("tls.crt does not parse: %w", err)}
		}
		k, err := pki.ParseKey(key)
		if err != nil || !pki.KeyMatches(k, c) {
			return pair{dir: dir, err: errors.New("tls.key does not match tls.crt")}
		}
		root, err := pki.ParseCertificate(ca)
		if err != nil || c.CheckSignatureFrom(root) != nil {
			return pair{dir: dir, err: errors.New("tls.crt does not chain to ca.crt")}
		}
		// What a server opens: the top-level names must lead to the same files.
		if l, err := os.Readlink(filepath.Join(dir, "tls.crt")); err != nil || l != filepath.Join("..data", "tls.crt") {
			return pair{dir: dir, err: fmt.Errorf("tls.crt is not a link into ..data: %q %v", l, err)}
		}
		return pair{dir: dir, serial: pki.Serial(c.SerialNumber), notAfter: c.NotAfter}
	}
	return pair{dir: dir, err: last}
}

// pairs reads every directory target under root: the directories holding
// a tls.crt.
func pairs(root string) []pair {
	var out []pair
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // removed while walking
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), "..") {
			return filepath.SkipDir
		}
		if d.Name() == "tls.crt" {
			out = append(out, readPair(filepath.Dir(p)))
		}
		return nil
	})
	return out
}

// watcher reads every target under a root over and over while faults are
// injected, and counts every observation that is not a whole valid pair.
type watcher struct {
	obs, bad, expired atomic.Int64
	fewest            atomic.Int64 // the fewest targets one sweep saw
	mu                sync.Mutex
	problems          []string
	seen              map[string]map[string]bool // directory → serials observed
	stop              chan struct{}
	done              chan struct{}
}

func watch(root string) *watcher {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]map[string]bool{}}
	go func() {
		defer close(w.done)
		w.fewest.Store(1 << 40)
		for {
			now := time.Now()
			all := pairs(root)
			if int64(len(all)) < w.fewest.Load() {
				w.fewest.Store(int64(len(all)))
			}
			for _, p := range all {
				w.obs.Add(1)
				if p.err == nil && p.notAfter.Before(now) {
					w.expired.Add(1)
				}
				w.mu.Lock()
				if w.seen[p.dir] == nil {
					w.seen[p.dir] = map[string]bool{}
				}
				if p.serial != "" {
					w.seen[p.dir][p.serial] = true
				}
				w.mu.Unlock()
				if p.err != nil {
					w.bad.Add(1)
					w.mu.Lock()
					if len(w.problems) < 10 {
						w.problems = append(w.problems, p.dir+": "+p.err.Error())
					}
					w.mu.Unlock()
				}
			}
			select {
			case <-w.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return w
}

// serials are the serials observed in each directory.
func (w *watcher) serials() map[string]map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// end stops the watcher and returns its counts.
func (w *watcher) end() (obs, bad int64, problems []string) {
	close(w.stop)
	<-w.done
	return w.obs.Load(), w.bad.Load(), w.problems
}

// certificates writes n Certificate manifests named <prefix>-<i>, 50 to a
// file under teams/, each delivered by target(name).
func certificates(prefix string, n int, spec string, target func(name string) string) map[string]string {
	files := map[string]string{}
	var b strings.Builder
	for i := range n {
		name := fmt.Sprintf("%s-%04d", prefix, i)
		fmt.Fprintf(&b, `---
apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: %[1]s, namespace: apps}
spec:
  issuer: mtls
  dnsNames: [%[1]s.apps.svc.cluster.local]
%[2]s
  targets:
    - %[3]s
`, name, spec, target(name))
		if (i+1)%50 == 0 || i == n-1 {
			files[fmt.Sprintf("teams/%s-%03d.yaml", prefix, i/50)] = b.String()
			b.Reset()
		}
	}
	return files
}

func dirTarget(name string) string { return "directory: {path: " + name + "}" }

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, p, content string) string {
	t.Helper()
	writeFiles(t, filepath.Dir(p), map[string]string{filepath.Base(p): content})
	return p
}

// randomMoments returns k distinct sorted points in [1, n).
func randomMoments(rng *rand.Rand, k, n int) []int {
	set := map[int]bool{}
	for len(set) < k && len(set) < n-1 {
		set[1+rng.IntN(n-1)] = true
	}
	out := make([]int, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Ints(out)
	return out
}

// eventually polls cond every 100 ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
