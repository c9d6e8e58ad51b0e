package faults_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/inventory"
)

// localFleet is n directory certificates on the local backend: the
// backend whose lock a killed process releases at once (Vault's lock
// record would wait out its 60 s expiry after each kill).
type localFleet struct {
	s                      *scenario
	n                      int
	state, out, repo, work string
	audit                  string
}

// rsaSpec makes a pass slow enough (RSA keys take a while to make) that
// kills land mid-issuance.
const rsaSpec = "  duration: 24h\n  privateKey: {algorithm: RSA, size: 2048}"

func newLocalFleet(s *scenario, n int, spec string) *localFleet {
	work := s.t.TempDir()
	f := &localFleet{s: s, n: n, work: work, state: filepath.Join(work, "state"), out: filepath.Join(work, "tls"),
		repo: filepath.Join(work, "repo"), audit: s.path("audit.log")}
	s.mustRun(nil, "catalog", "apply", "-f", writeFile(s.t, filepath.Join(work, "pki.yaml"), testbed.LocalPKI), "--backend", "local", "--state-dir", f.state)
	writeFiles(s.t, f.repo, certificates("svc", n, spec, dirTarget))
	return f
}

func (f *localFleet) passArgs() []string {
	return []string{"--source", f.repo, "--backend", "local", "--state-dir", f.state, "--output-dir", f.out, "--audit-log", f.audit}
}

func (f *localFleet) once(extra ...string) *proc {
	return f.s.start(nil, append(append([]string{"reconcile", "--once", "--concurrency", "2"}, f.passArgs()...), extra...)...)
}

// serveConfig writes a certfleet.yaml for the daemon on this fleet.
func (f *localFleet) serveConfig(listen string, extra string) string {
	return writeFile(f.s.t, filepath.Join(f.work, fmt.Sprintf("certfleet-%d.yaml", seq.Add(1))), fmt.Sprintf(`apiVersion: certfleet.dev/v1alpha1
kind: ServeConfig
source: {url: %s, interval: 1h}
backend: {type: local, stateDir: %s}
outputDir: %s
auditLog: %s
concurrency: 2
listen: %s
%s`, f.repo, f.state, f.out, f.audit, listen, extra))
}

// crash kills a process at random moments of issuing n certificates and
// checks, the whole time, every target; then lets a last run converge and
// checks the inventory and the audit log against what was delivered.
func crash(t *testing.T, name string, startRun func(f *localFleet) *proc, converge func(f *localFleet)) {
	t.Parallel()
	n, kills := size(40, 1000), size(3, 20)
	s := newScenario(t, name, fmt.Sprintf("SIGKILL at %d random moments of issuing %d certificates (RSA-2048, directories); a watcher reads every target all along", kills, n))
	f := newLocalFleet(s, n, rsaSpec)
	w := watch(f.out)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
	landed := 0
	for _, m := range randomMoments(rng, kills, n) {
		p := startRun(f)
		for countIssued(f.audit) < m && !p.exited() {
			time.Sleep(5 * time.Millisecond)
		}
		if p.exited() {
			break // the pass finished before the moment
		}
		time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond)
		if p.exited() {
			break
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		p.kill()
		landed++
	}
	// Data directories a kill left behind are removed by a write once they
	// are older than the stale age (10 s).
	time.Sleep(11 * time.Second)
	converge(f)
	obs, bad, problems := w.end()
	s.reps = fmt.Sprintf("%d kills", landed)
	s.result("%d observations of targets, %d invalid", obs, bad)
	s.bar(bad == 0, "every target valid at every observation: %d invalid, e.g. %v", bad, problems)
	s.bar(landed == kills, "%d of %d kills landed during issuance: the passes finished too fast for the scenario to mean anything", landed, kills)

	// Issuances per certificate: every serial the audit log records for it
	// (issued, or recorded after a crash between delivery and record) and
	// every serial the watcher saw delivered.
	serials := map[string]map[string]bool{}
	events := audit(t, f.audit)
	for _, e := range events {
		if e.Error == "" && e.Serial != "" {
			id := strings.TrimPrefix(e.Certificate, "apps/")
			if serials[id] == nil {
				serials[id] = map[string]bool{}
			}
			serials[id][e.Serial] = true
		}
	}
	for dir, seen := range w.serials() {
		id := filepath.Base(dir)
		for serial := range seen {
			if !serials[id][serial] {
				s.bar(false, "%s: serial %s was delivered but the audit log never recorded it", id, serial)
			}
		}
	}
	extra, worst := 0, 0
	for _, set := range serials {
		extra += len(set) - 1
		worst = max(worst, len(set)-1)
	}
	s.result("%d extra issuances in all, at most %d for one certificate", extra, worst)
	// A kill wastes at most the issuances in flight: one per certificate,
	// concurrency 2.
	s.bar(extra <= 2*landed && worst <= landed, "at most one extra issuance per certificate per crash: %d extra after %d kills, %d for one certificate", extra, landed, worst)

	// After the last run: every target whole, recorded in the inventory and
	// the audit log with the serial it holds; drift clean; no stale data.
	final := pairs(f.out)
	s.bar(len(final) == n, "%d targets hold a certificate after converging, want %d", len(final), n)
	out := s.mustRun(nil, append([]string{"inventory", "-o", "json"}, f.passArgs()[2:6]...)...)
	var entries []inventory.Entry
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &entries); err != nil {
		t.Fatalf("inventory -o json: %v\n%s", err, tail(out))
	}
	recorded := map[string]string{}
	for _, e := range entries {
		recorded[strings.TrimPrefix(e.ID, "apps/")] = e.Serial
	}
	consistent := 0
	for _, p := range final {
		id := filepath.Base(p.dir)
		switch {
		case p.err != nil:
			s.bar(false, "%s: %v", p.dir, p.err)
		case recorded[id] != p.serial:
			s.bar(false, "%s holds serial %s; the inventory records %q", id, p.serial, recorded[id])
		case !serials[id][p.serial]:
			s.bar(false, "%s holds serial %s; the audit log never recorded it", id, p.serial)
		default:
			consistent++
		}
	}
	s.result("%d of %d delivered serials in the inventory and the audit log", consistent, len(final))
	if out, code := s.run(nil, append([]string{"drift"}, f.passArgs()...)...); code != 0 {
		s.bar(false, "drift after converging: exit %d\n%s", code, tail(out))
	}
	stale := 0
	filepath.WalkDir(f.out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "..") {
			if link, _ := os.Readlink(filepath.Join(filepath.Dir(p), "..data")); d.Name() != link {
				stale++
			}
			return filepath.SkipDir
		}
		return nil
	})
	s.bar(stale == 0, "%d stale data directories left after converging", stale)
}

func TestCrashReconcileOnce(t *testing.T) {
	crash(t, "Crash: reconcile --once", func(f *localFleet) *proc { return f.once() }, func(f *localFleet) {
		if out, code := f.once().wait(); code != 0 {
			t.Fatalf("the pass after the kills: exit %d\n%s", code, tail(out))
		}
	})
}

func TestCrashServe(t *testing.T) {
	listen := "127.0.0.1:0"
	crash(t, "Crash: serve", func(f *localFleet) *proc {
		return f.s.start(nil, "serve", "--config", f.serveConfig(listen, ""))
	}, func(f *localFleet) {
		// The daemon's first pass converges; it then waits out its interval.
		p := f.s.start(nil, "serve", "--config", f.serveConfig(listen, ""))
		if !eventually(5*time.Minute, func() bool {
			b, _ := os.ReadFile(p.log)
			return strings.Contains(string(b), "pass done") || strings.Contains(string(b), "msg=pass") || p.exited()
		}) {
			t.Fatal("the daemon did not finish a pass in 5 minutes")
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait()
	})
}
