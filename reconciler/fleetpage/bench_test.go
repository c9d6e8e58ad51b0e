package fleetpage

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
)

// fleetOf is a fleet of n certificates, each with one target, a tenth of
// them drifting, expiries spread over 120 days.
func fleetOf(n int) *Fleet {
	f := &Fleet{Now: now, Revision: "main@0123456789ab", Result: &reconcile.Result{}, Drift: &reconcile.DriftReport{},
		Inventory: map[string]*inventory.Entry{}}
	for i := range n {
		id := fmt.Sprintf("team%03d/svc%05d", i%200, i)
		e := entry(id, fmt.Sprintf("dev%d@example.test", i%50), fmt.Sprintf("teams/t%03d/svc%05d.yaml", i%200, i), id[8:]+".apps.svc.cluster.local")
		e.NotAfter = now.Add(time.Duration(i%(120*24)) * time.Hour)
		e.Targets = []render.Address{{Cluster: "alpha", Key: "kubernetes/alpha/ns/" + id[8:] + "-tls"}}
		f.Inventory[id] = e
		s := reconcile.TargetState{Certificate: id, Target: e.Targets[0].Key, Reason: decide.InSync, NotAfter: e.NotAfter}
		if i%10 == 0 {
			s.Reason, s.Message = decide.ModifiedOutOfBand, "edited by hand"
			f.Drift.Entries = append(f.Drift.Entries, reconcile.DriftEntry{Reason: s.Reason, Certificate: id, Target: s.Target, File: e.File, Message: s.Message})
		}
		f.Result.State = append(f.Result.State, s)
	}
	return f
}

// BenchmarkOverview10000 renders the overview of 10,000 certificates: the
// server's share of the page's load time, and the page's size.
func BenchmarkOverview10000(b *testing.B) {
	f := fleetOf(10000)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := Overview(&buf, f, Query{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/page")
}

func TestTheOverviewOf10000CertificatesStaysSmall(t *testing.T) {
	f := fleetOf(10000)
	var buf bytes.Buffer
	start := time.Now()
	if err := Overview(&buf, f, Query{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("overview of 10000 certificates: %d bytes in %s", buf.Len(), time.Since(start))
	if !bytes.Contains(buf.Bytes(), []byte(`id="count-certificates">10000<`)) {
		t.Error("the page does not count 10000 certificates")
	}
	if buf.Len() > 2<<20 {
		t.Errorf("the page is %d bytes, over 2 MiB: the lists are not bounded", buf.Len())
	}
}
