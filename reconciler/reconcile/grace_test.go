package reconcile

import (
	"context"
	"testing"
	"time"
)

// The grace runs from the cancellation only: a context that is never
// cancelled is never cut short, however long the work takes.
func TestGraceAfterRunsFromTheCancellationOnly(t *testing.T) {
	ctx, cancelPass := context.WithCancel(context.Background())
	rctx, done := graceAfter(ctx, 20*time.Millisecond)
	defer done()
	time.Sleep(100 * time.Millisecond) // five graces, the pass still running
	if rctx.Err() != nil {
		t.Fatalf("recording was cut short while the pass ran: %v", rctx.Err())
	}
	cancelPass()
	if rctx.Err() != nil {
		t.Fatal("recording ended at the cancellation, with no grace")
	}
	select {
	case <-rctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("recording went on a minute past the pass's cancellation and a 20ms grace")
	}

	// Cancelled before it started: the grace still applies, then ends it.
	gone, cancelGone := context.WithCancel(context.Background())
	cancelGone()
	r2, done2 := graceAfter(gone, 20*time.Millisecond)
	defer done2()
	if r2.Err() != nil {
		t.Fatal("no grace for a pass cancelled before recording started")
	}
	select {
	case <-r2.Done():
	case <-time.After(time.Minute):
		t.Fatal("the grace never ended")
	}
}

// Only the grace ends the context: done ends it at once.
func TestGraceAfterDoneEndsIt(t *testing.T) {
	rctx, done := graceAfter(context.Background(), time.Hour)
	done()
	if rctx.Err() == nil {
		t.Fatal("done left the context running")
	}
}
