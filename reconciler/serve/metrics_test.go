package serve

import (
	"bytes"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

// TestRotationPhaseMetric: certfleet_authority_rotation_phase has a series
// per authority of the catalog, its phase during a rotation and 0 when
// idle, and passes promtool's lint.
func TestRotationPhaseMetric(t *testing.T) {
	cat := schemas.NewCatalog()
	for _, name := range []string{"root", "edge"} {
		cat.Authorities[name] = &schemas.Authority{Metadata: schemas.ObjectMeta{Name: name}}
	}
	m := NewMetrics()
	scrape := func() string {
		t.Helper()
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	m.observePass(&reconcile.Result{Rotations: []decide.AuthorityPhase{{Authority: "root", Phase: decide.PhaseReissuing}}}, time.Second, cat)
	got := scrape()
	for _, want := range []string{`certfleet_authority_rotation_phase{authority="root"} 3`, `certfleet_authority_rotation_phase{authority="edge"} 0`} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %s:\n%s", want, got)
		}
	}
	promtool, err := testbed.Binary("promtool")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewBufferString(got)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	m.observePass(&reconcile.Result{}, time.Second, cat)
	if got := scrape(); !strings.Contains(got, `certfleet_authority_rotation_phase{authority="root"} 0`) {
		t.Errorf("after the rotation ended:\n%s", got)
	}
}
