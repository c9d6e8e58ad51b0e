package scale_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
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
			peak, live, at := stop()
			b.ReportMetric(time.Since(start).Seconds(), name+"-pass-s")
			b.ReportMetric(float64(peak)/(1<<20), name+"-peak-heap-MiB")
			b.ReportMetric(float64(live)/(1<<20), name+"-peak-live-MiB")
			b.ReportMetric(mib(at.rss), name+"-peak-RSS-MiB")
			b.Logf("%s pass, at its peak RSS: %s", name, at)
		}
	}
}

// watchPeak samples the heap every 20 ms and, when write is set, writes a
// heap profile to path each time it grows by a tenth over the largest
// seen; stop returns the largest heap (objects live or not yet swept: what
// the process holds), the largest live heap a collection measured
// (what the pass keeps: steadier, as it does not depend on when the
// collector ran), and the process's memory by class when its resident set
// was largest (what the RSS beyond the live heap is made of).
func watchPeak(b *testing.B, path string, write bool) (stop func() (heap, live uint64, at memClasses)) {
	runtime.GC()
	done := make(chan struct{})
	type result struct {
		peak, live uint64
		at         memClasses
	}
	results := make(chan result)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		var peak, live, written uint64
		var at memClasses
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				metrics.Read(s)
				results <- result{peak, max(live, s[1].Value.Uint64()), at}
				return
			case <-t.C:
			}
			metrics.Read(s)
			v := s[0].Value.Uint64()
			peak, live = max(peak, v), max(live, s[1].Value.Uint64())
			if m := readMemClasses(); m.rss > at.rss {
				at = m
			}
			if write && v > written+written/10 {
				written = v
				if f, err := os.Create(path); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() (uint64, uint64, memClasses) {
		close(done)
		r := <-results
		return r.peak, r.live, r.at
	}
}

// memClasses is the process's resident set (/proc/self/status: anonymous
// memory, and mapped files such as the binary's own text, which no Go
// memory limit counts) beside the Go runtime's memory by class
// (runtime/metrics /memory/classes/…), at one moment.
type memClasses struct {
	rss, rssAnon, rssFile uint64
	// objects are the heap's objects, live or not yet swept; unused the
	// heap's spans' room not holding objects; free the heap's pages free
	// and not returned to the OS; released those returned.
	objects, unused, free, released uint64
	stacks, metadata, other         uint64
	live                            uint64
}

var classNames = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/released:bytes", "/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes", "/memory/classes/metadata/mcache/free:bytes", "/memory/classes/metadata/mcache/inuse:bytes",
	"/memory/classes/metadata/mspan/free:bytes", "/memory/classes/metadata/mspan/inuse:bytes", "/memory/classes/metadata/other:bytes",
	"/memory/classes/other:bytes", "/memory/classes/profiling/buckets:bytes", "/gc/heap/live:bytes"}

func readMemClasses() memClasses {
	s := make([]metrics.Sample, len(classNames))
	for i, n := range classNames {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) uint64 { return s[i].Value.Uint64() }
	m := memClasses{objects: v(0), unused: v(1), free: v(2), released: v(3), stacks: v(4) + v(5),
		metadata: v(6) + v(7) + v(8) + v(9) + v(10), other: v(11) + v(12), live: v(13)}
	m.rss, m.rssAnon, m.rssFile = procStatus("self")
	return m
}

// procStatus reads a process's VmRSS, RssAnon and RssFile in bytes (zero
// where /proc is not there).
func procStatus(pid string) (rss, anon, file uint64) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "RssAnon":
			anon = n << 10
		case "RssFile":
			file = n << 10
		}
	}
	return rss, anon, file
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func (m memClasses) String() string {
	return fmt.Sprintf("RSS %.0f MiB (anonymous %.0f, files %.0f); Go: heap objects %.0f (live at the last collection %.0f), "+
		"heap unused %.0f, heap free %.0f (released %.0f more), stacks %.0f, metadata %.0f, other %.0f MiB",
		mib(m.rss), mib(m.rssAnon), mib(m.rssFile), mib(m.objects), mib(m.live), mib(m.unused), mib(m.free), mib(m.released),
		mib(m.stacks), mib(m.metadata), mib(m.other))
}
