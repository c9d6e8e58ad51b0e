package faults_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCAOutage stops Vault (its port refuses connections) for several
// renewal intervals while the daemon's certificates come due, then brings
// it back.
func TestCAOutage(t *testing.T) {
	t.Parallel()
	n := size(10, 100)
	// Minute-scale lifetimes: a renewal every duration - renewBefore.
	duration, renewBefore, outage := 2*time.Minute, 100*time.Second, 50*time.Second
	maxBackoff := 8 * time.Second
	if full {
		duration, renewBefore, outage = 5*time.Minute, 4*time.Minute, 210*time.Second
		maxBackoff = 30 * time.Second
	}
	interval := duration - renewBefore
	s := newScenario(t, "CA outage", fmt.Sprintf("Vault unreachable for %s (%.1f renewal intervals of %s; renewBefore %s) under the daemon, %d certificates; retryBackoff 1s, maxRetryBackoff %s",
		outage, outage.Seconds()/interval.Seconds(), interval, renewBefore, n, maxBackoff))
	s.reps = "1 outage"
	f := newVaultFleet(s)
	writeFiles(t, f.repo, certificates("svc", n, fmt.Sprintf("  duration: %s\n  renewBefore: %s", duration, renewBefore), dirTarget))
	d := f.serve(fmt.Sprintf("retryBackoff: 1s\nmaxRetryBackoff: %s\ntimeouts: {vault: 5s}\n", maxBackoff))
	defer d.stop()
	if !eventually(2*time.Minute, func() bool { return len(pairs(f.out)) == n }) {
		t.Fatalf("the daemon did not deliver %d certificates in 2 minutes", n)
	}
	w := watch(f.out)
	// Let every certificate renew once before the outage, so the outage
	// starts while renewals are under way.
	time.Sleep(interval)
	before := map[string]string{}
	for _, p := range pairs(f.out) {
		before[p.dir] = p.serial
	}
	down := time.Now()
	f.px.down()
	time.Sleep(outage)
	attempts := d.logTimes("pass started")
	f.px.up()
	back := time.Now()

	// Retries while Vault was away: how far apart, and whether within the
	// cap (the first attempt after the outage began was scheduled before).
	var gaps []time.Duration
	var prev time.Time
	for _, a := range attempts {
		if a.Before(down) {
			continue
		}
		if !prev.IsZero() {
			gaps = append(gaps, a.Sub(prev))
		}
		prev = a
	}
	longest := time.Duration(0)
	for _, g := range gaps {
		longest = max(longest, g)
	}
	s.result("%d attempts while away, gaps %s", len(gaps), roundAll(gaps))
	// A pass that reaches Vault while it is away waits out its request
	// timeout (5 s) before it fails: the gap is the backoff plus that.
	s.bar(len(gaps) >= 2 && longest <= maxBackoff+6*time.Second, "retries within the cap of %s (+5 s request timeout): gaps %v", maxBackoff, roundAll(gaps))
	for i := 1; i < len(gaps); i++ {
		if gaps[i]+time.Second < gaps[i-1] && gaps[i-1] < maxBackoff {
			s.bar(false, "retries do not back off: gap %d (%s) is shorter than gap %d (%s)", i, gaps[i], i-1, gaps[i-1])
		}
	}

	// After Vault returns: the next pass renews every certificate.
	ok := eventually(maxBackoff+2*time.Minute, func() bool {
		renewed := 0
		for _, p := range pairs(f.out) {
			if p.err == nil && p.serial != before[p.dir] {
				renewed++
			}
		}
		return renewed == n
	})
	took := time.Since(back)
	// The passes that started after Vault returned, up to the renewals.
	donePasses := 0
	for _, a := range d.logTimes("pass started") {
		if a.After(back) && a.Before(back.Add(took)) {
			donePasses++
		}
	}
	obs, bad, problems := w.end()
	s.result("all %d renewed %s after Vault returned, %d pass(es) started in between", n, took.Round(time.Second), donePasses)
	s.bar(ok, "every certificate renewed after Vault returned")
	s.bar(donePasses <= 1, "every certificate renews within one pass after Vault returns: %d passes", donePasses)
	s.result("%d observations, %d invalid, %d expired, fewest targets %d of %d", obs, bad, w.expired.Load(), w.fewest.Load(), n)
	s.bar(bad == 0, "no delivered certificate replaced by a failure: %v", problems)
	s.bar(w.fewest.Load() == int64(n), "no delivered certificate removed: fewest %d of %d", w.fewest.Load(), n)
	s.bar(w.expired.Load() == 0, "none expired (the outage was shorter than renewBefore): %d expired observations", w.expired.Load())
	_, page := d.get("/report")
	_, metrics := d.get("/metrics")
	s.bar(len(page) > 0 && len(metrics) > 0, "the daemon's report and metrics are served")
}

func roundAll(ds []time.Duration) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(d.Round(100 * time.Millisecond).String())
	}
	return "[" + b.String() + "]"
}
