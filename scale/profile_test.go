package scale_test

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/cli"
)

// BenchmarkProfilePass runs the same first and no-op passes as
// BenchmarkManaged100k inside the test process, so that the heap can be
// profiled where it peaks: with CERTFLEET_SCALE_HEAPPROFILE=<dir> it writes
// <dir>/first.pprof and <dir>/noop.pprof, each the heap profile taken when
// that pass's live heap was at its largest (read them with
// `go tool pprof -sample_index=inuse_space`). CERTFLEET_SCALE_N sets the
// size (100,000 by default, as there). With CERTFLEET_SCALE_SHARDS=k > 1
// the passes are shard s0's of k: the k shards' claiming round runs first,
// as processes, and the other shards issue theirs (processes too, so that
// the inventory s0 reads holds the whole fleet as it would), then s0
// issues ("first") and finds nothing to do ("noop").
func BenchmarkProfilePass(b *testing.B) {
	dir := os.Getenv("CERTFLEET_SCALE_HEAPPROFILE")
	for b.Loop() {
		f := newFleet(b, scaleN(), form())
		base := []string{"reconcile", "--once", "-o", "json", "--source", f.repo, "--backend", "local",
			"--state-dir", f.state, "--output-dir", f.out, "--audit-log", filepath.Join(f.work, "audit.log")}
		args := append(slices.Clone(base), shardArgs(0, shards())...)
		if k := shards(); k > 1 {
			f.pass(k)
			var wg sync.WaitGroup
			for i := 1; i < k; i++ {
				wg.Go(func() { f.exec(append(slices.Clone(base), shardArgs(i, k)...)...) })
			}
			wg.Wait()
		}
		for _, name := range []string{"first", "noop"} {
			stop := watchPeak(b, filepath.Join(dir, name+".pprof"), dir != "")
			root := cli.NewRoot()
			root.SetArgs(args)
			root.SetOut(io.Discard)
			start := time.Now()
			if code := cli.Execute(root); code != 0 {
				b.Fatalf("%s pass: exit code %d", name, code)
			}
			peak, live := stop()
			b.ReportMetric(time.Since(start).Seconds(), name+"-pass-s")
			b.ReportMetric(float64(peak)/(1<<20), name+"-peak-heap-MiB")
			b.ReportMetric(float64(live)/(1<<20), name+"-peak-live-MiB")
		}
	}
}

// watchPeak samples the heap every 20 ms and, when write is set, writes a
// heap profile to path each time it grows by a tenth over the largest
// seen; stop returns the largest heap (objects live or not yet swept: what
// the process holds) and the largest live heap a collection measured
// (what the pass keeps: steadier, as it does not depend on when the
// collector ran).
func watchPeak(b *testing.B, path string, write bool) (stop func() (heap, live uint64)) {
	runtime.GC()
	done := make(chan struct{})
	result := make(chan [2]uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		var peak, live, written uint64
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				metrics.Read(s)
				result <- [2]uint64{peak, max(live, s[1].Value.Uint64())}
				return
			case <-t.C:
			}
			metrics.Read(s)
			v := s[0].Value.Uint64()
			peak, live = max(peak, v), max(live, s[1].Value.Uint64())
			if write && v > written+written/10 {
				written = v
				if f, err := os.Create(path); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		r := <-result
		return r[0], r[1]
	}
}
