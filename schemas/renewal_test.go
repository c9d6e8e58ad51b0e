package schemas

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestRenewBefore(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name        string
		lifetime    time.Duration
		renewBefore Duration
		percentage  *int
		want        time.Duration
	}{
		{name: "by default a certificate renews with a third of its lifetime left", lifetime: 90 * day, want: 30 * day},
		{name: "a renewBefore shorter than the lifetime is honoured", lifetime: 90 * day, renewBefore: "10d", want: 10 * day},
		{name: "a renewBefore in Go's syntax is honoured", lifetime: 90 * day, renewBefore: "360h", want: 15 * day},
		{name: "a renewBefore equal to the lifetime is ignored", lifetime: 90 * day, renewBefore: "90d", want: 30 * day},
		{name: "a renewBefore longer than the lifetime is ignored", lifetime: 30 * day, renewBefore: "60d", want: 10 * day},
		{name: "a renewBefore of zero is ignored", lifetime: 90 * day, renewBefore: "0s", want: 30 * day},
		{name: "an invalid renewBefore is ignored", lifetime: 90 * day, renewBefore: "soon", want: 30 * day},
		{name: "a percentage is of the lifetime", lifetime: time.Hour, percentage: ptr(25), want: 15 * time.Minute},
		{name: "a percentage of 1 is honoured", lifetime: 100 * day, percentage: ptr(1), want: day},
		{name: "a percentage of 99 is honoured", lifetime: 100 * day, percentage: ptr(99), want: 99 * day},
		{name: "a percentage of 0 is ignored", lifetime: 90 * day, percentage: ptr(0), want: 30 * day},
		{name: "a percentage of 100 is ignored", lifetime: 90 * day, percentage: ptr(100), want: 30 * day},
		{name: "a renewBefore that is honoured wins over a percentage", lifetime: 90 * day, renewBefore: "10d", percentage: ptr(50), want: 10 * day},
		{name: "a percentage applies when renewBefore is too long", lifetime: 30 * day, renewBefore: "60d", percentage: ptr(50), want: 15 * day},
		{name: "a percentage of a ten-year lifetime does not overflow", lifetime: 3650 * day, percentage: ptr(50), want: 1825 * day},
		{name: "a percentage of the longest lifetime does not overflow", lifetime: math.MaxInt64, percentage: ptr(99), want: time.Duration(math.MaxInt64) / 100 * 99},
		{name: "a percentage keeps the nanoseconds of an odd lifetime", lifetime: 101 * time.Nanosecond, percentage: ptr(50), want: 50 * time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RenewBefore(tt.lifetime, tt.renewBefore, tt.percentage)
			// The largest lifetime loses at most a nanosecond per percent to rounding.
			if diff := got - tt.want; diff < 0 || diff > 100 {
				t.Errorf("RenewBefore(%v, %q, %v) = %v, want %v", tt.lifetime, tt.renewBefore, tt.percentage, got, tt.want)
			}
		})
	}
}

func TestRenewalTime(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		notBefore   time.Time
		notAfter    time.Time
		renewBefore Duration
		percentage  *int
		want        time.Time
	}{
		{name: "a 90-day certificate renews on day 60", notBefore: nb, notAfter: nb.AddDate(0, 0, 90), want: nb.AddDate(0, 0, 60)},
		{name: "renewBefore moves the renewal", notBefore: nb, notAfter: nb.AddDate(0, 0, 90), renewBefore: "15d", want: nb.AddDate(0, 0, 75)},
		{name: "a renewBefore longer than the lifetime gives the default", notBefore: nb, notAfter: nb.Add(time.Hour), renewBefore: "2h", want: nb.Add(40 * time.Minute)},
		{name: "a percentage moves the renewal", notBefore: nb, notAfter: nb.Add(time.Hour), percentage: ptr(25), want: nb.Add(45 * time.Minute)},
		{name: "a lifetime not divisible by three is truncated to whole seconds", notBefore: nb, notAfter: nb.Add(100 * time.Second), want: nb.Add(66 * time.Second)},
		{name: "a notAfter with nanoseconds is truncated to whole seconds", notBefore: nb, notAfter: nb.Add(90*time.Second + 999*time.Millisecond), want: nb.Add(60 * time.Second)},
		{name: "a notBefore with nanoseconds is truncated to whole seconds", notBefore: nb.Add(500 * time.Millisecond), notAfter: nb.Add(time.Hour), want: nb.Add(40*time.Minute + 0*time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RenewalTime(tt.notBefore, tt.notAfter, tt.renewBefore, tt.percentage)
			if !got.Equal(tt.want) {
				t.Errorf("RenewalTime = %v, want %v", got, tt.want)
			}
			if got.Nanosecond() != 0 {
				t.Errorf("RenewalTime %v is not in whole seconds", got)
			}
			// A time written to an annotation and read back gives the same decision.
			back, err := time.Parse(time.RFC3339, got.Format(time.RFC3339))
			if err != nil || !back.Equal(got) {
				t.Errorf("%v does not survive RFC 3339: %v %v", got, back, err)
			}
		})
	}
}

func TestJitterIsDeterministicAndInRange(t *testing.T) {
	windows := []time.Duration{time.Nanosecond, time.Second, time.Minute, time.Hour, 7 * 24 * time.Hour}
	for _, w := range windows {
		for i := range 2000 {
			id := fmt.Sprintf("prod/payments/api-%d-tls", i)
			j := Jitter(id, w)
			if j < 0 || j >= w {
				t.Fatalf("Jitter(%q, %v) = %v, outside [0, %v)", id, w, j, w)
			}
			if again := Jitter(id, w); again != j {
				t.Fatalf("Jitter(%q, %v) gave %v then %v", id, w, j, again)
			}
		}
	}
	for _, w := range []time.Duration{0, -time.Hour} {
		if j := Jitter("x", w); j != 0 {
			t.Errorf("Jitter with window %v = %v, want 0", w, j)
		}
	}
	if Jitter("prod/payments/api-tls", time.Hour) == Jitter("prod/payments/web-tls", time.Hour) {
		t.Errorf("two IDs got the same jitter")
	}
}

func TestJitterSpreadsRenewals(t *testing.T) {
	const n, window = 10000, time.Hour
	perSecond := map[int64]int{}
	perMinute := make([]int, 60)
	var sum time.Duration
	for i := range n {
		j := Jitter(fmt.Sprintf("cluster-%d/ns-%d/cert-%d", i%7, i%31, i), window)
		perSecond[int64(j/time.Second)]++
		perMinute[j/time.Minute]++
		sum += j
	}
	// 10,000 IDs over 3,600 seconds: 2.8 a second on average; a uniform
	// spread puts no more than about ten in any one second.
	most := 0
	for _, c := range perSecond {
		most = max(most, c)
	}
	if most > 12 {
		t.Errorf("%d renewals share one second; the jitter clusters", most)
	}
	if len(perSecond) < 3000 {
		t.Errorf("only %d of 3600 seconds are used", len(perSecond))
	}
	// Chi-square over one-minute buckets: 59 degrees of freedom, 99.9th percentile 95.
	expected := float64(n) / 60
	chi := 0.0
	for _, c := range perMinute {
		chi += (float64(c) - expected) * (float64(c) - expected) / expected
	}
	if chi > 95 {
		t.Errorf("chi-square %.1f over minutes: not uniform (%v)", chi, perMinute)
	}
	if mean := sum / n; mean < 29*time.Minute || mean > 31*time.Minute {
		t.Errorf("mean jitter %v, want about 30m", mean)
	}
}

func TestJitteredRenewalTime(t *testing.T) {
	nb := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		lifetime    time.Duration
		renewBefore Duration
		percentage  *int
		maxJitter   time.Duration
		window      time.Duration // the largest offset expected
	}{
		{name: "a 90-day certificate is jittered within an hour", lifetime: 90 * 24 * time.Hour, maxJitter: MaxJitter, window: time.Hour},
		{name: "a one-hour certificate is jittered within a tenth of its renewBefore", lifetime: time.Hour, maxJitter: MaxJitter, window: 2 * time.Minute},
		{name: "a short renewBefore keeps the jitter small", lifetime: 90 * 24 * time.Hour, renewBefore: "10m", maxJitter: MaxJitter, window: time.Minute},
		{name: "a percentage sets the window", lifetime: 10 * time.Hour, percentage: ptr(10), maxJitter: MaxJitter, window: 6 * time.Minute},
		{name: "a smaller maxJitter caps the window", lifetime: 90 * 24 * time.Hour, maxJitter: 5 * time.Minute, window: 5 * time.Minute},
		{name: "a maxJitter of zero disables jitter", lifetime: 90 * 24 * time.Hour, maxJitter: 0, window: 0},
		{name: "a negative maxJitter disables jitter", lifetime: 90 * 24 * time.Hour, maxJitter: -time.Hour, window: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			notBefore := nb.Add(123456789 * time.Nanosecond)
			notAfter := notBefore.Add(tt.lifetime)
			rt := RenewalTime(notBefore, notAfter, tt.renewBefore, tt.percentage)
			var largest time.Duration
			for i := range 10000 {
				id := fmt.Sprintf("prod/payments/svc-%d-tls", i)
				jt := JitteredRenewalTime(id, notBefore, notAfter, tt.renewBefore, tt.percentage, tt.maxJitter)
				if jt.After(rt) {
					t.Fatalf("%s: jittered renewal %v is after the renewal time %v", id, jt, rt)
				}
				if jt.Nanosecond() != 0 {
					t.Fatalf("%s: jittered renewal %v is not in whole seconds", id, jt)
				}
				if again := JitteredRenewalTime(id, notBefore, notAfter, tt.renewBefore, tt.percentage, tt.maxJitter); !again.Equal(jt) {
					t.Fatalf("%s: jitter is not deterministic", id)
				}
				largest = max(largest, rt.Sub(jt))
			}
			if largest > tt.window {
				t.Errorf("the largest offset is %v, beyond the window %v", largest, tt.window)
			}
			if tt.window > 0 && largest < tt.window*9/10 {
				t.Errorf("the largest offset is %v; 10,000 IDs should nearly fill the window %v", largest, tt.window)
			}
		})
	}
}
