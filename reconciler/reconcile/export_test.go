package reconcile

import "time"

// SetRecordGrace shortens the grace recording gets after a cancellation,
// for a test; it returns the previous one.
func SetRecordGrace(d time.Duration) time.Duration {
	old := recordGrace
	recordGrace = d
	return old
}
