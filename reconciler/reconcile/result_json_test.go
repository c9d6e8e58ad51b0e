package reconcile_test

import (
	"encoding/json"
	"testing"

	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
)

// TestFailureJSON: a report's failures stay one string each in JSON output.
func TestFailureJSON(t *testing.T) {
	b, err := json.Marshal(reconcile.Result{Failures: inventory.Failures{{What: "team-a/api → kubernetes/alpha/web/api-tls", Err: "forbidden"}}})
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
