// Package memsize measures what values keep on the heap, for tests that
// bound the memory a pass holds per certificate.
package memsize

import "runtime"

// PerItem is what each of n values made by newItem keeps on the heap, in
// bytes: the live heap after collecting, before and after making them all
// and holding them. What newItem frees along the way is not counted.
func PerItem[T any](n int, newItem func(i int) T) int64 {
	kept := make([]T, n)
	var before, after runtime.MemStats
	collect()
	runtime.ReadMemStats(&before)
	for i := range kept {
		kept[i] = newItem(i)
	}
	collect()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n)
}

// collect collects twice: what a sync.Pool holds survives one collection
// in its victim cache, and counted on one side of a measure and not on
// the other it made figures bimodal (render's keep tests failed so in CI).
func collect() {
	runtime.GC()
	runtime.GC()
}
