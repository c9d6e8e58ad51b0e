package reconcile_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/render"
)

// IssueRate paces the pass's requests to Vault's pki/sign: 30 issuances at
// 10/s in bursts of 4 take at least 2.6 s, and no second sees more than
// the rate plus the burst.
func TestIssueRateLimitsSignsReachingVault(t *testing.T) {
	var clock signClock
	e := newEnv(t)
	e.backend = mustVault(t, clock.start(t), e.id)
	files := dirFleet(30, func(i int) string { return fmt.Sprintf("rate-%d.example.test", i) })
	res := render.Render(e.snapshot(files), e.catalog)
	if len(res.Errors) > 0 {
		t.Fatal(res.Errors)
	}
	p := e.pass()
	p.IssueRate, p.Concurrency = 10, 4
	start := time.Now()
	rep, err := p.Run(context.Background(), res, verdicts(res, e.catalog, e.now))
	took := time.Since(start)
	if err != nil || rep.Actions["issue"] != 30 || len(rep.Failures) > 0 {
		t.Fatalf("pass: %v, actions %v, failures %v", err, rep.Actions, rep.Failures)
	}
	series := clock.perSecond()
	if took < 2600*time.Millisecond {
		t.Errorf("30 issuances at 10/s (burst 4) took %s, want at least 2.6s", took)
	}
	for i, c := range series {
		if c > 14 {
			t.Errorf("second %d saw %d signs, above 10/s plus a burst of 4: %v", i, c, series)
		}
	}
}
