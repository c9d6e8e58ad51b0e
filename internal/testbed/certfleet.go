package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// build is a binary of this module, built once per test binary.
type build struct {
	once sync.Once
	path string
	err  error
}

var certfleetBuild, mtlspeerBuild build

// run builds pkg (relative to the module root) into a temporary directory
// under name, once.
func (b *build) run(t testing.TB, pkg, name string) string {
	t.Helper()
	b.once.Do(func() {
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			b.err = fmt.Errorf("finding the module root: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", name+"-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Certfleet builds the certfleet binary of this module once per test
// binary, under the name Terraform looks for (terraform-provider-certfleet),
// for the tests that run it as a process. RemoveCertfleet, from TestMain,
// deletes it.
func Certfleet(t testing.TB) string {
	t.Helper()
	return certfleetBuild.run(t, ".", "terraform-provider-certfleet")
}

// RemoveCertfleet deletes the binaries Certfleet and the mTLS peers built, if any.
func RemoveCertfleet() {
	for _, b := range []*build{&certfleetBuild, &mtlspeerBuild} {
		if b.path != "" {
			os.RemoveAll(filepath.Dir(b.path))
		}
	}
}
