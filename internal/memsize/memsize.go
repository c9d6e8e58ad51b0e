// Package memsize measures what values keep on the heap, for tests that
// bound the memory a pass holds per certificate.
package memsize

import "runtime"

// PerItem is what each of n values made by newItem keeps on the heap, in
// bytes: the live heap after a collection, before and after making them
// all and holding them. What newItem frees along the way is not counted.
func PerItem[T any](n int, newItem func(i int) T) int64 {
	kept := make([]T, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range kept {
		kept[i] = newItem(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n)
}
