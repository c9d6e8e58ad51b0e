package serve_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
)

// TestServeSetsItsMemoryLimitFromTheContainers: the real binary, given the
// container's memory limit as the example layouts hand it over
// (CERTFLEET_MEMORY_LIMIT, bytes from the downward API), runs under a soft
// limit 80 MiB below it, which its Go metrics show and its first log line
// says; a GOMEMLIMIT of the operator's wins; a value that is no quantity
// stops it with an error naming the variable.
func TestServeSetsItsMemoryLimitFromTheContainers(t *testing.T) {
	bin := testbed.Certfleet(t)
	for _, c := range []struct {
		name, limit, gomemlimit string
		want                    string // go_gc_gomemlimit_bytes
		log                     string
	}{
		{"from the container", "536870912", "", "4.52984832e+08", "memoryLimit=432MiB"},
		{"a shard's", "256Mi", "", "1.84549376e+08", "memoryLimit=176MiB"},
		{"GOMEMLIMIT wins", "256Mi", "300MiB", "3.145728e+08", "memoryLimit=300MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port, dir := freePort(t), t.TempDir()
			cmd := exec.Command(bin, "serve", "--config", serveConfig(t, dir, filepath.Join(dir, "state"), port))
			cmd.Env = append(os.Environ(), "CERTFLEET_MEMORY_LIMIT="+c.limit, "GOMEMLIMIT="+c.gomemlimit)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			metrics := ""
			eventually(t, time.Minute, "the daemon serves /metrics", func() bool {
				resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				metrics = string(b)
				return resp.StatusCode == http.StatusOK
			})
			if want := "\ngo_gc_gomemlimit_bytes " + c.want + "\n"; !strings.Contains(metrics, want) {
				t.Errorf("metrics say %q, want go_gc_gomemlimit_bytes %s", grep(metrics, "go_gc_gomemlimit_bytes"), c.want)
			}
			if !strings.Contains(stderr.String(), c.log) {
				t.Errorf("serve's log does not say %s:\n%s", c.log, stderr.String())
			}
		})
	}
	t.Run("not a quantity", func(t *testing.T) {
		dir := t.TempDir()
		cmd := exec.Command(bin, "serve", "--config", serveConfig(t, dir, filepath.Join(dir, "state"), freePort(t)))
		cmd.Env = append(os.Environ(), "CERTFLEET_MEMORY_LIMIT=half a gigabyte", "GOMEMLIMIT=")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), `CERTFLEET_MEMORY_LIMIT="half a gigabyte"`) || !strings.Contains(string(out), "512Mi") {
			t.Errorf("serve with a limit that is no quantity: %v\n%s\nwant an error naming the variable and what would be right", err, out)
		}
	})
}

// serveConfig writes, in dir, a daemon's configuration on the local
// backend in state and an empty repository, listening on port, and returns
// its path.
func serveConfig(tb testing.TB, dir, state string, port int) string {
	repo := filepath.Join(dir, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		tb.Fatal(err)
	}
	cfg := fmt.Sprintf("apiVersion: certfleet.dev/v1alpha1\nkind: ServeConfig\nsource: {url: %s, interval: 1h}\nbackend: {type: local, stateDir: %s}\noutputDir: %s\nlisten: 127.0.0.1:%d\n",
		repo, state, filepath.Join(dir, "out"), port)
	path := filepath.Join(dir, "certfleet.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}
