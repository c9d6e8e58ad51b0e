package reconcile_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
)

// A pass with NoState (reconcile --once, which only prints its report)
// makes no line per target: State was ~290 bytes a target, made at the
// pass's end on top of everything else the pass holds. The report stays
// the same, and a drift through a NoState pass still has the state it is
// made of.
func TestNoStateLeavesOutTheStateOnly(t *testing.T) {
	const n = 30
	files := manifestFiles(n, func(i int) string { return fmt.Sprintf("svc-%d.web.svc.cluster.local", i) },
		func(i int) string { return fmt.Sprintf("directory: {path: web/svc-%d}", i) })
	e := newEnv(t)
	lean := func() *reconcile.Result {
		p := e.pass()
		p.NoState = true
		return e.runWith(p, files)
	}
	first := lean()
	if first.State != nil {
		t.Errorf("first pass with NoState: the state has %d lines, want none", len(first.State))
	}
	if first.Actions["issue"] != n || len(first.Items) != n || len(first.Failures) != 0 {
		t.Fatalf("first pass with NoState: actions %v, %d items, failures %v; want %d issued", first.Actions, len(first.Items), first.Failures, n)
	}
	noop := lean()
	full := e.run(files) // a no-op too, with its state
	if noop.State != nil {
		t.Errorf("no-op pass with NoState: the state has %d lines, want none", len(noop.State))
	}
	if len(full.State) != n || full.Reasons[decide.InSync] != n {
		t.Fatalf("no-op pass: %d lines of state, reasons %v; want %d in sync", len(full.State), full.Reasons, n)
	}
	if a, b := reportOf(t, full), reportOf(t, noop); a != b {
		t.Errorf("the no-op pass's report differs with NoState:\n%s\nwant\n%s", b, a)
	}
	p := e.pass()
	p.NoState = true
	e.now = e.now.Add(48 * time.Hour) // all expired (24h certificates): every target drifts
	res := render.NewRenderer().Render(e.snapshot(files), e.catalog)
	d, err := p.Drift(t.Context(), res, verdicts(res, e.catalog, e.now))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Entries) != n || d.Counts[decide.Expired] != n {
		t.Errorf("drift through a NoState pass: %d entries, counts %v; want %d expired", len(d.Entries), d.Counts, n)
	}
}

// reportOf is a pass's report as -o json prints it.
func reportOf(t *testing.T, r *reconcile.Result) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
