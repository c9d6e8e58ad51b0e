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

// built is the certfleet binary, built once per test binary.
var built struct {
	once sync.Once
	path string
	err  error
}

// Certfleet builds the certfleet binary of this module once per test
// binary, under the name Terraform looks for (terraform-provider-certfleet),
// for the tests that run it as a process. RemoveCertfleet, from TestMain,
// deletes it.
func Certfleet(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			built.err = fmt.Errorf("finding the module root: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "certfleet-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "terraform-provider-certfleet")
		cmd := exec.Command("go", "build", "-o", built.path, ".")
		cmd.Dir = strings.TrimSpace(string(root))
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// RemoveCertfleet deletes the binary Certfleet built, if any.
func RemoveCertfleet() {
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
}
