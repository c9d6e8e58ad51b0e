package reconcile_test

import (
	"encoding/json"
	"testing"

	"github.com/certfleet/certfleet/reconciler/reconcile"
)

func TestFailureText(t *testing.T) {
	tests := []struct {
		name string
		f    reconcile.Failures
		want string
	}{
		{name: "a failure with a subject names it first", f: reconcile.Failures{{What: "pruning directory/web", Err: "permission denied"}},
			want: "pruning directory/web: permission denied"},
		{name: "a failure that says it all stands alone", f: reconcile.Failures{{Err: "refusing to prune 3 targets"}},
			want: "refusing to prune 3 targets"},
		{name: "several are joined with semicolons", f: reconcile.Failures{{What: "a", Err: "x"}, {What: "b", Err: "y"}},
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

// TestFailureJSON: a report's failures stay one string each in JSON output.
func TestFailureJSON(t *testing.T) {
	b, err := json.Marshal(reconcile.Result{Failures: []reconcile.Failure{{What: "team-a/api → kubernetes/alpha/web/api-tls", Err: "forbidden"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Failures []string }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Failures) != 1 || got.Failures[0] != "team-a/api → kubernetes/alpha/web/api-tls: forbidden" {
		t.Errorf("failures in JSON = %q", got.Failures)
	}
}
