package plan_test

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testbed"
	"github.com/certfleet/certfleet/reconciler/evaluate"
	"github.com/certfleet/certfleet/reconciler/plan"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/source"
	"github.com/certfleet/certfleet/schemas"
)

func snapshot(files map[string]string, ref string) *source.Snapshot {
	s := &source.Snapshot{Revision: source.Revision{Ref: ref}}
	for p, c := range files {
		s.Files = append(s.Files, source.File{Path: p, Data: []byte(c)})
	}
	return s
}

// BenchmarkPlan10k renders, validates, evaluates and plans a 10,000
// certificate repository between two revisions (100 certificates differ),
// from files already read: the part of a plan after the checkout.
func BenchmarkPlan10k(b *testing.B) {
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(testbed.FleetCatalog))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	base, head := snapshot(testbed.Fleet(10000, 100, 0), "main"), snapshot(testbed.Fleet(10000, 100, 1), "feature")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rr := render.NewRenderer()
		rb, rh := rr.Render(base, cat), rr.Render(head, cat)
		rep := plan.Plan(rb, rh, evaluate.New(cat, time.Now()))
		if rep.Summary.Reissued != 100 || rep.Summary.Certificates != 10000 || rep.Summary.Invalid != 0 || rep.Summary.Denied != 0 {
			b.Fatalf("summary %+v, want 10,000 certificates, 100 reissued, none invalid or denied", rep.Summary)
		}
	}
}

// BenchmarkValidate10k renders, validates and evaluates one revision of
// 10,000 certificates from files already read.
func BenchmarkValidate10k(b *testing.B) {
	cat, errs := schemas.DecodeCatalog("catalog.yaml", []byte(testbed.FleetCatalog))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	head := snapshot(testbed.Fleet(10000, 100, 0), "main")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep := plan.Validate(render.Render(head, cat), evaluate.New(cat, time.Now()))
		if rep.Summary.Certificates != 10000 || rep.Summary.Denied != 0 {
			b.Fatalf("summary %+v", rep.Summary)
		}
	}
}
