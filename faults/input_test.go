package faults_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	fuzzFunc  = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)
	fuzzExecs = regexp.MustCompile(`execs: (\d+)`)
	// fuzzBaseline is the fuzzer's progress through the seed corpus, all a
	// short budget may reach before the first "execs:" line.
	fuzzBaseline = regexp.MustCompile(`gathering baseline coverage: (\d+/\d+) completed`)
	// fuzzFail is a fuzz target's FAIL line and what it printed up to the
	// run's own FAIL.
	fuzzFail = regexp.MustCompile(`(?s)--- FAIL: Fuzz\w+ \([0-9.]+s\)\n(.*?)\nFAIL\n`)
)

// fuzzTarget is a fuzz function and the directory of its package.
type fuzzTarget struct{ name, dir string }

// fuzzTargets finds every fuzz target of the module, so a new one is run
// without being listed here.
func fuzzTargets(t *testing.T, root string) []fuzzTarget {
	var out []fuzzTarget
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(b), -1) {
			out = append(out, fuzzTarget{name: m[1], dir: filepath.Dir(p)})
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatal("no fuzz targets found")
	}
	return out
}

// TestInput runs every fuzz target for a budget: 10 minutes each in the
// full form, a few seconds in CI (CERTFLEET_FAULTS_FUZZTIME overrides).
// The seed corpus is each package's testdata/fuzz; in the full form the
// inputs the run found interesting are added to it, to be committed.
func TestInput(t *testing.T) {
	budget := 4 * time.Second
	if full {
		budget = 10 * time.Minute
	}
	if v := os.Getenv("CERTFLEET_FAULTS_FUZZTIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CERTFLEET_FAULTS_FUZZTIME=%q: %v", v, err)
		}
		budget = d
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	targets := fuzzTargets(t, root)
	s := newScenario(t, "Input", fmt.Sprintf("every fuzz target for %s (go test -fuzz), seeds from testdata/fuzz", budget))
	s.reps = fmt.Sprintf("%d targets", len(targets))
	crashes, races := 0, 0
	for _, ft := range targets {
		out, err := fuzz(ft, budget)
		if err != nil && coordinatorRace(string(out)) {
			// Not a finding: run it again once, so the target is still
			// fuzzed for its budget. The log of the first run is kept.
			races++
			s.keep(ft.name+".race.log", out)
			out, err = fuzz(ft, budget)
			if err != nil && coordinatorRace(string(out)) {
				s.result("%s: stopped twice by Go's shutdown race (go.dev/issue/75804), no input failed", ft.name)
				err = nil
			}
		}
		s.keep(ft.name+".log", out)
		execs := "?"
		if m := fuzzExecs.FindAllStringSubmatch(string(out), -1); len(m) > 0 {
			execs = m[len(m)-1][1]
		} else if m := fuzzBaseline.FindAllStringSubmatch(string(out), -1); len(m) > 0 {
			execs = "the seed corpus (" + m[len(m)-1][1] + ") and no new"
		}
		if err != nil {
			crashes++
			s.bar(false, "%s: %v\n%s", ft.name, err, tail(string(out)))
		}
		rel, _ := filepath.Rel(root, ft.dir)
		s.result("%s (%s): %s execs", ft.name, rel, execs)
		if full && err == nil {
			if n, err := keepCorpus(ft); err != nil {
				t.Error(err)
			} else {
				s.result("%s: %d new corpus entries kept", ft.name, n)
			}
		}
	}
	s.result("%d crashes", crashes)
	if races > 0 {
		s.result("%d runs ended by Go's shutdown race and ran again", races)
	}
}

// fuzz runs one fuzz target for a budget.
func fuzz(ft fuzzTarget, budget time.Duration) ([]byte, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+ft.name+"$", "-fuzztime", budget.String(), ".")
	cmd.Dir = ft.dir
	return cmd.CombinedOutput()
}

// coordinatorRace tells a failed fuzz run that found nothing from one that
// did. Go 1.26's fuzz coordinator can report its own -fuzztime deadline as
// the target failing, when a worker is still busy as the deadline fires
// (go.dev/issue/75804, fixed in Go 1.27). A finding always writes its input
// ("Failing input written to", also for a hang or a crashed worker); the
// race prints only the deadline under the target's FAIL line.
func coordinatorRace(out string) bool {
	if strings.Contains(out, "Failing input written to") {
		return false
	}
	m := fuzzFail.FindStringSubmatch(out)
	return m != nil && strings.TrimSpace(m[1]) == "context deadline exceeded"
}

// keepCorpus copies the inputs the fuzzer found interesting (kept in the
// Go build cache) into the package's testdata/fuzz/<target>, where every
// `go test` replays them.
func keepCorpus(ft fuzzTarget) (int, error) {
	cache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command("go", "list", ".")
	cmd.Dir = ft.dir
	pkg, err := cmd.Output()
	if err != nil {
		return 0, err
	}
	from := filepath.Join(strings.TrimSpace(string(cache)), "fuzz", strings.TrimSpace(string(pkg)), ft.name)
	to := filepath.Join(ft.dir, "testdata", "fuzz", ft.name)
	entries, err := os.ReadDir(from)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		dst := filepath.Join(to, e.Name())
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return n, err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// TestCoordinatorRaceIsNotAFinding: the race's output (as CI printed it on
// 2026-12-06) is told apart from a real finding, even one whose message is
// the same words.
func TestCoordinatorRaceIsNotAFinding(t *testing.T) {
	race := `fuzz: elapsed: 0s, gathering baseline coverage: 0/811 completed
fuzz: elapsed: 4s, execs: 22154 (10742/sec), new interesting: 0 (total: 811)
--- FAIL: FuzzEvaluate (4.18s)
    context deadline exceeded
FAIL
exit status 1
FAIL	github.com/certfleet/certfleet/schemas	4.202s
`
	finding := `fuzz: minimizing 50-byte failing input file
--- FAIL: FuzzX (0.17s)
    --- FAIL: FuzzX (0.00s)
        fz_test.go:6: context deadline exceeded
    
    Failing input written to testdata/fuzz/FuzzX/1de061fa29cfbb3d
    To re-run:
    go test -run=FuzzX/1de061fa29cfbb3d
FAIL
exit status 1
FAIL	fz	0.185s
`
	other := `--- FAIL: FuzzX (4.01s)
    fuzzing process hung or terminated unexpectedly: exit status 2
FAIL
exit status 1
FAIL	fz	4.1s
`
	for _, c := range []struct {
		name, out string
		race      bool
	}{{"the race", race, true}, {"a finding", finding, false}, {"a crashed worker", other, false}, {"a build error", "# fz\n./fz_test.go:3:1: syntax error\nFAIL\tfz [build failed]\n", false}} {
		if got := coordinatorRace(c.out); got != c.race {
			t.Errorf("%s: coordinatorRace = %v, want %v", c.name, got, c.race)
		}
	}
}
