package memlimit

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestSoft(t *testing.T) {
	for _, c := range []struct{ limit, want int64 }{
		{512 << 20, 432 << 20}, // the example deployment
		{256 << 20, 176 << 20}, // a shard's (examples/deploy-sharded)
		{120 << 20, 80 << 20},  // a third, not the whole reserve
		{1 << 30, 944 << 20},
	} {
		if got := Soft(c.limit); got != c.want {
			t.Errorf("Soft(%d MiB) = %d MiB, want %d MiB", c.limit>>20, got>>20, c.want>>20)
		}
	}
}

// env is an environment of the given variables only.
func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

func TestApply(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	for _, c := range []struct {
		name string
		env  func(string) string
		want int64 // the runtime's limit after Apply; 0: unchanged
		err  string
	}{
		{"bytes, as the downward API gives them", env(Env, "536870912"), 432 << 20, ""},
		{"a quantity", env(Env, "256Mi"), 176 << 20, ""},
		{"unset", env(), 0, ""},
		{"GOMEMLIMIT wins", env(Env, "256Mi", "GOMEMLIMIT", "300MiB"), 0, ""},
		{"not a quantity", env(Env, "512 megabytes"), 0, `CERTFLEET_MEMORY_LIMIT="512 megabytes"`},
		{"too little", env(Env, "1Mi"), 0, "too little"},
	} {
		t.Run(c.name, func(t *testing.T) {
			const sentinel = 123 << 20
			debug.SetMemoryLimit(sentinel)
			got, err := Apply(c.env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "512Mi") {
					t.Errorf("Apply: error %v, want one saying %q and what would be right", err, c.err)
				}
			} else if err != nil {
				t.Errorf("Apply: %v", err)
			}
			want := c.want
			if want == 0 {
				want = sentinel
			} else if got != want {
				t.Errorf("Apply returned %d, want %d", got, want)
			}
			if now := debug.SetMemoryLimit(-1); now != want {
				t.Errorf("the runtime's limit is %d after Apply, want %d", now, want)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	debug.SetMemoryLimit(432 << 20)
	if got := Current(); got != "432MiB" {
		t.Errorf("Current() = %q, want 432MiB", got)
	}
	debug.SetMemoryLimit(1<<63 - 1)
	if got := Current(); got != "none" {
		t.Errorf("Current() = %q, want none", got)
	}
}
