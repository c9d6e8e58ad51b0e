package reconcile_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// signClock is a proxy in front of Vault that notes when each pki/sign
// request arrives.
type signClock struct {
	mu    sync.Mutex
	times []time.Time
}

func (s *signClock) start(t testing.TB) string {
	return vaultProxy(t, func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/sign/") {
			s.mu.Lock()
			s.times = append(s.times, time.Now())
			s.mu.Unlock()
		}
		return true
	})
}

// perSecond counts the signs in each second since the first, and resets.
func (s *signClock) perSecond() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.times) == 0 {
		return nil
	}
	slices.SortFunc(s.times, func(a, b time.Time) int { return a.Compare(b) })
	var out []int
	for _, at := range s.times {
		i := int(at.Sub(s.times[0]) / time.Second)
		for len(out) <= i {
			out = append(out, 0)
		}
		out[i]++
	}
	s.times = nil
	return out
}

// stormN and stormRate size the renewal storm (CERTFLEET_STORM_N, default
// 10,000; CERTFLEET_STORM_RATE issuances per second, default 100).
func stormN() int {
	if n, err := strconv.Atoi(os.Getenv("CERTFLEET_STORM_N")); err == nil && n > 0 {
		return n
	}
	return 10000
}

func stormRate() float64 {
	if r, err := strconv.ParseFloat(os.Getenv("CERTFLEET_STORM_RATE"), 64); err == nil && r > 0 {
		return r
	}
	return 100
}

// BenchmarkRenewalStorm issues N certificates together, so their renewals
// fall due together, then renews them all in one pass with an issuance
// rate limit, and reports Vault's issuance rate second by second. It also
// reports how far the renewal jitter spreads those due times (pure: the
// renewal times decide computes), and checks that at the limit every
// certificate renews long before its renewBefore runs out.
func BenchmarkRenewalStorm(b *testing.B) {
	for b.Loop() {
		n, limit := stormN(), stormRate()
		var clock signClock
		e := newEnv(b)
		e.backend = mustVault(b, clock.start(b), e.id)
		files := dirFleet(n, func(i int) string { return fmt.Sprintf("storm-%d.example.test", i) })
		res := render.Render(e.snapshot(files), e.catalog)
		if len(res.Errors) > 0 || len(res.Desired) != n {
			b.Fatalf("render: %d desired, errors %v", len(res.Desired), res.Errors)
		}
		ctx := context.Background()
		issuing := e.pass()
		issuing.MaxJitter = schemas.MaxJitter
		first, err := issuing.Run(ctx, res, verdicts(res, e.catalog, e.now))
		if err != nil || first.Actions["issue"] != n || len(first.Failures) > 0 {
			b.Fatalf("issuing pass: %v, actions %v, failures %v", err, first.Actions, first.Failures)
		}
		clock.perSecond()

		// Issued together, due together: where the jitter puts each renewal.
		p := e.pass()
		p.MaxJitter = schemas.MaxJitter
		var earliest, latest, notAfter time.Time
		perMinute := map[int64]int{}
		for _, s := range first.State {
			at := s.RenewAt
			if earliest.IsZero() || at.Before(earliest) {
				earliest = at
			}
			if at.After(latest) {
				latest = at
			}
			if notAfter.IsZero() || s.NotAfter.Before(notAfter) {
				notAfter = s.NotAfter
			}
			perMinute[at.Unix()/60]++
		}
		peak := 0
		for _, c := range perMinute {
			peak = max(peak, c)
		}

		// The storm: the clock past every renewal time, one pass, the limit on.
		p.Now = func() time.Time { return latest.Add(time.Minute) }
		p.Inventory, p.IssueRate = first.Inventory, limit
		start := time.Now()
		rep, err := p.Run(ctx, res, verdicts(res, e.catalog, latest.Add(time.Minute)))
		took := time.Since(start)
		if err != nil || rep.Actions["renew"] != n || len(rep.Failures) > 0 {
			b.Fatalf("storm pass: %v, actions %v, failures %v", err, rep.Actions, rep.Failures)
		}
		series := clock.perSecond()
		over := 0
		for _, c := range series {
			if float64(c) > limit+float64(p.Concurrency+8) {
				over++
			}
		}
		if over > 0 {
			b.Errorf("the issuance rate exceeded the limit of %g/s in %d seconds: %v", limit, over, series)
		}
		// Renewing all of them at the limit must fit between the first
		// renewal time and the end of renewBefore (notAfter).
		if need := time.Duration(float64(n) / limit * float64(time.Second)); earliest.Add(need).After(notAfter) {
			b.Errorf("%d renewals at %g/s need %s: past notAfter", n, limit, need)
		}
		b.Logf("storm: %d certificates due within %s of each other (jitter), at most %d in one minute; renewed in one pass at a limit of %g/s in %s",
			n, latest.Sub(earliest).Round(time.Second), peak, limit, took.Round(time.Millisecond))
		b.Logf("storm: Vault pki/sign requests per second during the storm: %v", series)
		b.ReportMetric(float64(n), "storm-certs")
		b.ReportMetric(limit, "limit/s")
		b.ReportMetric(float64(n)/took.Seconds(), "storm-issued/s")
		b.ReportMetric(float64(slices.Max(series)), "peak-signs/s")
		b.ReportMetric(took.Seconds(), "storm-s")
		b.ReportMetric(latest.Sub(earliest).Minutes(), "jitter-spread-min")
		b.ReportMetric(float64(peak), "due-peak/min")
		b.ReportMetric(notAfter.Sub(earliest).Hours(), "renewBefore-h")
	}
}
