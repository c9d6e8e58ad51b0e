package faults_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tmpfs mounts a small tmpfs of its own at a new directory (the test runs
// as root on the project's machines); it is unmounted when the test ends.
func tmpfs(t *testing.T, size string) string {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -t tmpfs (the disk scenario needs root, as CI has): %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file of zeros into dir until the filesystem is full.
func fill(t *testing.T, dir string) string {
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

// TestDisk fills the directory targets' filesystem, then makes it
// read-only, each time while every certificate is due for reissue.
func TestDisk(t *testing.T) {
	t.Parallel()
	n := size(5, 50)
	s := newScenario(t, "Disk", fmt.Sprintf("directory targets of %d certificates on a 1 MB tmpfs: filled to the last byte, then remounted read-only, while every certificate is due for reissue (reconcile --once)", n))
	s.reps = "2 faults"
	f := newLocalFleet(s, n, "  duration: 24h")
	f.out = tmpfs(t, "1m")
	f.once().wait()
	if got := pairs(f.out); len(got) != n {
		t.Fatalf("the first pass delivered %d of %d", len(got), n)
	}
	gen := 0
	// reissue changes every certificate's SANs, so each must be reissued.
	reissue := func() {
		gen++
		writeFiles(t, f.repo, certificates("svc", n, fmt.Sprintf("  duration: 24h\n  commonName: gen%d.apps.svc.cluster.local", gen), dirTarget))
	}
	serials := func() map[string]string {
		m := map[string]string{}
		for _, p := range pairs(f.out) {
			if p.err != nil {
				s.bar(false, "%s: %v", p.dir, p.err)
			}
			m[p.dir] = p.serial
		}
		return m
	}
	fault := func(name string, inject, lift func(), symptom string) {
		before := serials()
		reissue()
		inject()
		out, code := f.once().wait()
		s.bar(code != 0, "%s: the pass exits %d; want a failure", name, code)
		s.bar(strings.Contains(out, symptom), "%s: the pass does not report %q:\n%s", name, symptom, tail(out))
		during := serials()
		kept := 0
		for dir, serial := range before {
			if during[dir] == serial {
				kept++
			}
		}
		s.bar(kept == n, "%s: %d of %d old pairs intact and readable", name, kept, n)
		lift()
		failed := code
		out, code = f.once().wait()
		after := serials()
		renewed := 0
		for dir, serial := range after {
			if serial != before[dir] {
				renewed++
			}
		}
		s.bar(code == 0 && renewed == n, "%s: the pass after the fault exits %d and reissues %d of %d\n%s", name, code, renewed, n, tail(out))
		s.result("%s: the pass failed (exit %d, %q reported), %d of %d old pairs intact; the next pass reissued %d", name, failed, symptom, kept, n, renewed)
	}
	var filler string
	fault("full", func() { filler = fill(t, f.out) }, func() { os.Remove(filler) }, "no space left on device")
	remount := func(mode string) func() {
		return func() {
			if out, err := exec.Command("mount", "-o", "remount,"+mode, f.out).CombinedOutput(); err != nil {
				t.Fatalf("remount %s: %v\n%s", mode, err, out)
			}
		}
	}
	fault("read-only", remount("ro"), remount("rw"), "read-only file system")
	if out, code := s.run(nil, append([]string{"drift"}, f.passArgs()...)...); code != 0 {
		s.bar(false, "drift after converging: exit %d\n%s", code, tail(out))
	}
}
