package serve_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

// BenchmarkDaemonRSS starts `certfleet serve` on a local backend whose
// inventory holds 10,000 and 100,000 entries and reports the daemon's peak
// resident memory (VmHWM) after its first pass.
func BenchmarkDaemonRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "certfleet")
	if out, err := exec.Command("go", "build", "-o", bin, "../..").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for _, n := range []int{10000, 100000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(daemonRSS(b, bin, n), "peak-RSS-MB")
			}
		})
	}
}

func daemonRSS(b *testing.B, bin string, n int) float64 {
	dir := b.TempDir()
	state := filepath.Join(dir, "state")
	l, err := backend.OpenLocal(state)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	all := make(map[string]*inventory.Entry, n)
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("team-%03d/svc-%d", i%1000, i)
		e := &inventory.Entry{ID: id, Issuer: "mtls", Serial: fmt.Sprintf("%032x", i), NotBefore: now, NotAfter: now.Add(720 * time.Hour),
			RenewAt: now.Add(480 * time.Hour), IssueHash: "0123456789abcdef0123", File: "teams/x.yaml", Revision: "main@0123456789ab",
			Author: "alice", DNSNames: []string{fmt.Sprintf("svc-%d.team.svc.cluster.local", i)},
			Targets: []inventory.Target{{Key: "directory/" + id, Kind: "directory", Path: id}}, UpdatedAt: now}
		all[id] = e
		ids = append(ids, id)
	}
	if failed := inventory.Save(ctx, l, "", all, ids); failed != nil {
		b.Fatal(failed[ids[0]])
	}
	port := freePort(b)
	cfgPath := serveConfig(b, dir, state, port)
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the daemon did not become ready")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return vmHWM(b, cmd.Process.Pid)
}

// vmHWM reads a process's peak resident set from /proc, in MB.
func vmHWM(b *testing.B, pid int) float64 {
	if runtime.GOOS != "linux" {
		b.Fatal("peak RSS is read from /proc: Linux only")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

func freePort(b testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkOneFileCommit renders a 10,000-certificate repository, then the
// next revision with one file changed, as the daemon's next pass does: it
// reports how many files were parsed again and the time of that render and
// evaluation beside the first, full one.
func BenchmarkOneFileCommit(b *testing.B) {
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(testbed.FleetCatalog))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	snap := func(gen int) *source.Snapshot {
		s := &source.Snapshot{Revision: source.Revision{Ref: "main"}}
		for p, c := range testbed.Fleet(10000, 100, gen) {
			s.Files = append(s.Files, source.File{Path: p, Data: []byte(c)})
		}
		return s
	}
	first, next := snap(0), snap(1)
	for b.Loop() {
		rr := render.NewRenderer()
		start := time.Now()
		res := rr.Render(first, cat)
		evaluate.New(cat, time.Now()).All(res.Desired)
		full := time.Since(start)
		parsed := rr.Parsed()
		start = time.Now()
		res = rr.Render(next, cat)
		evaluate.New(cat, time.Now()).All(res.Desired)
		incremental := time.Since(start)
		b.ReportMetric(float64(rr.Parsed()-parsed), "files-reparsed")
		b.ReportMetric(float64(len(next.Files)), "files")
		b.ReportMetric(float64(len(res.Desired)), "certs-reevaluated")
		b.ReportMetric(full.Seconds()*1000, "full-ms")
		b.ReportMetric(incremental.Seconds()*1000, "next-ms")
	}
}
