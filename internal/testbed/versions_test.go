package testbed_test

import (
	"os"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/testbed"
)

// TestEveryPinnedPartHasABinary: each version build.sh pins is one the Go
// API knows, so a new part can be found by testbed.Binary, and is built.
func TestEveryPinnedPartHasABinary(t *testing.T) {
	b, err := os.ReadFile("versions.env")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("build.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, version, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		part := strings.ReplaceAll(strings.ToLower(strings.TrimSuffix(key, "_VERSION")), "_", "-")
		if key == "KUBE_VERSION" {
			part = "kube-apiserver"
		}
		if got := testbed.Version(part); got != version {
			t.Errorf("versions.env pins %s=%s, but testbed.Version(%q) is %q", key, version, part, got)
			continue
		}
		if !strings.Contains(string(script), "build_"+strings.ReplaceAll(part, "-", "_")+"()") {
			t.Errorf("build.sh has no build_%s for %s", strings.ReplaceAll(part, "-", "_"), key)
		}
		if _, err := testbed.Binary(part); err != nil {
			t.Error(err)
		}
	}
}
