package scale_test

import "testing"

// TestLargestLive reads the live heap from gctrace lines: the third of
// "A->B->C MB", the largest of all, ignoring other output.
func TestLargestLive(t *testing.T) {
	stderr := `gc 1 @0.012s 2%: 0.015+1.1+0.019 ms clock, 0.031+0.2/0.9/0+0.039 ms cpu, 4->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
certfleet: something else 900->900->900 MB
gc 2 @3.456s 5%: 0.020+12+0.010 ms clock, 0.040+0.5/1.1/0+0.020 ms cpu, 410->415->262 MB, 420 MB goal, 0 MB stacks, 0 MB globals, 2 P
gc 3 @4.001s 5%: 0.020+12+0.010 ms clock, 0.040+0.5/1.1/0+0.020 ms cpu, 500->505->198 MB, 524 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
`
	if got := largestLive(stderr); got != 262 {
		t.Errorf("largest live heap = %v MiB, want 262", got)
	}
	if got := largestLive("no collections\n"); got != 0 {
		t.Errorf("largest live heap of no gctrace = %v, want 0", got)
	}
}
