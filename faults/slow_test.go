package faults_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var tookRE = regexp.MustCompile(`took=(\S+)`)

// passTimes are the durations of the daemon's finished passes.
func (d *daemon) passTimes() []time.Duration {
	b, _ := os.ReadFile(d.p.log)
	var out []time.Duration
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, `msg="pass done"`) {
			continue
		}
		if m := tookRE.FindStringSubmatch(l); m != nil {
			if t, err := time.ParseDuration(m[1]); err == nil {
				out = append(out, t)
			}
		}
	}
	return out
}

// goroutines is the fewest go_goroutines of a few scrapes a second apart:
// idle connections come and go; a leak stays.
func (d *daemon) goroutines() float64 {
	fewest := -1.0
	for range 5 {
		_, b := d.get("/metrics")
		if g := metric(b, "go_goroutines"); g >= 0 && (fewest < 0 || g < fewest) {
			fewest = g
		}
		time.Sleep(time.Second)
	}
	return fewest
}

// TestSlowCA puts seconds of latency on every request to Vault and stalls
// a share of connections (accepted, never answered) while the daemon
// renews short-lived certificates.
func TestSlowCA(t *testing.T) {
	t.Parallel()
	n := size(10, 50)
	slow, latency, stall := 60*time.Second, time.Second, 0.3
	if full {
		slow, latency = 4*time.Minute, 3*time.Second
	}
	const timeout, deadline = 5 * time.Second, 90 * time.Second
	s := newScenario(t, "Slow CA", fmt.Sprintf("%s of %s latency per request to Vault and %.0f%% of connections stalled, %d certificates renewing every 20 s, request timeout %s; pass deadline %s",
		slow, latency, stall*100, n, timeout, deadline))
	f := newVaultFleet(s)
	writeFiles(t, f.repo, certificates("svc", n, "  duration: 2m\n  renewBefore: 100s", dirTarget))
	d := f.serve(fmt.Sprintf("retryBackoff: 1s\nmaxRetryBackoff: 10s\ntimeouts: {vault: %s}\n", timeout))
	defer d.stop()
	if !eventually(2*time.Minute, func() bool { return len(pairs(f.out)) == n }) {
		t.Fatalf("the daemon did not deliver %d certificates in 2 minutes", n)
	}
	before := d.goroutines()
	w := watch(f.out)
	passes := len(d.passTimes())
	f.px.set(latency, stall)
	time.Sleep(slow)
	f.px.set(0, 0)
	during := d.passTimes()[passes:]
	// Whatever pass runs when the faults end finishes; the next ones are clean.
	if !d.waitPass(len(d.passTimes())+1, 3*time.Minute) {
		t.Fatal("no pass finished within 3 minutes after the faults ended")
	}
	renewed := eventually(2*time.Minute, func() bool {
		fresh := 0
		for _, p := range pairs(f.out) {
			if p.err == nil && time.Until(p.notAfter) > 90*time.Second {
				fresh++
			}
		}
		return fresh == n
	})
	time.Sleep(5 * time.Second)
	after := d.goroutines()
	obs, bad, problems := w.end()
	longest := time.Duration(0)
	for _, p := range d.passTimes()[passes:] {
		longest = max(longest, p)
	}
	log, _ := os.ReadFile(d.p.log)
	timeouts := strings.Count(string(log), "deadline exceeded") + strings.Count(string(log), "Client.Timeout")
	s.reps = fmt.Sprintf("%d passes", len(d.passTimes())-passes)
	s.result("%d passes ended during the faults, the longest pass %s", len(during), longest.Round(100*time.Millisecond))
	s.bar(len(during) >= 1, "a pass ends while Vault is slow")
	s.bar(longest <= deadline, "every pass ends within %s: the longest took %s", deadline, longest)
	s.result("%d connections stalled, %d requests timed out (logged)", f.px.stalled.Load(), timeouts)
	s.bar(f.px.stalled.Load() == 0 || timeouts > 0, "stalled requests time out")
	s.bar(renewed, "every certificate renewed after the faults ended")
	s.result("goroutines %.0f before, %.0f after", before, after)
	s.bar(after <= before+4, "no goroutine leak: %.0f goroutines before, %.0f after", before, after)
	s.result("%d observations, %d invalid, fewest targets %d of %d", obs, bad, w.fewest.Load(), n)
	s.bar(bad == 0 && w.fewest.Load() == int64(n), "no target invalid or removed: %v", problems)
}
