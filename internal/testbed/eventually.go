package testbed

import (
	"testing"
	"time"
)

// Eventually polls cond every 100 ms for up to d, and fails the test with
// what when it never holds: for what real servers do with some latency (a
// watch delivering a change), which no test should assume to be short.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s: %s", d, what)
}
