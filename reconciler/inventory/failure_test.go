package inventory_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/certfleet/certfleet/reconciler/inventory"
)

func TestFailureText(t *testing.T) {
	tests := []struct {
		name string
		f    inventory.Failures
		want string
	}{
		{name: "a failure with a subject names it first", f: inventory.Failures{{What: "pruning directory/web", Err: "permission denied"}},
			want: "pruning directory/web: permission denied"},
		{name: "a failure that says it all stands alone", f: inventory.Failures{{Err: "refusing to prune 3 targets"}},
			want: "refusing to prune 3 targets"},
		{name: "several are joined with semicolons", f: inventory.Failures{{What: "a", Err: "x"}, {What: "b", Err: "y"}},
			want: "a: x; b: y"},
		{name: "none is empty", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFailuresInTheInventory: an entry records what failed as a list of
// lines (it was one "; "-joined string), and reads them back as written.
func TestFailuresInTheInventory(t *testing.T) {
	in := inventory.Entry{ID: "team-a/api", Rare: &inventory.Rare{Failures: inventory.Failures{
		{What: "team-a/api → kubernetes/alpha/web/api-tls", Err: "forbidden"},
		{Err: "vault: permission denied; role mtls"},
	}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct{ Failures []string }
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if want := []string{"team-a/api → kubernetes/alpha/web/api-tls: forbidden", "vault: permission denied; role mtls"}; !slices.Equal(raw.Failures, want) {
		t.Errorf("stored failures = %q, want %q", raw.Failures, want)
	}
	var out inventory.Entry
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Failures()) != 2 || out.Failures()[0].String() != raw.Failures[0] || out.Failures()[1].String() != raw.Failures[1] {
		t.Errorf("failures read back = %q, want the lines written", out.Failures())
	}
}
