package reconcile

import (
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
)

// A pass holds every directory observation at once: they share one copy
// of each metadata value that repeats (issuer, revision, template hash),
// also across the pass's rounds of observing (the declared targets, then
// the inventory's) with the collector run between them, as it runs many
// times in a pass of 100,000 targets.
func TestObservationsOfAPassShareTheirMetadata(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ca, err := pki.NewRoot(pki.CAOptions{Subject: pki.Request{CommonName: "Test Root"}, KeyType: "ec", TTL: 24 * time.Hour, MaxPathLength: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	p := &Pass{Dir: &target.Directory{Root: root}}
	a, b := render.DirectoryAddress(root, "a"), render.DirectoryAddress(root, "b")
	for _, at := range []render.Address{a, b} {
		m := target.Meta{CertificateID: "team/" + at.Path, Issuer: "fleet", RenewAt: now, IssueHash: "issue-hash", TemplateHash: "template-hash", Revision: "main@abc123"}
		if err := p.Dir.Write(render.Target{Address: at}, target.Bundle{Cert: pki.EncodeCertificate(ca.Cert), Key: []byte("key"), CA: pki.EncodeCertificate(ca.Cert)}, m); err != nil {
			t.Fatal(err)
		}
	}
	all := func(string) bool { return true }
	obs := p.observe(t.Context(), []*render.Desired{{ID: "team/a", Targets: []render.Target{{Address: a}}}}, nil, all)
	runtime.GC()
	runtime.GC()
	p.observeMore(t.Context(), nil, map[string]*inventory.Entry{"team/b": {ID: "team/b", Targets: []inventory.Target{b}}}, all, &obs)
	oa, ob := obs.byKey[a.Key], obs.byKey[b.Key]
	if oa == nil || ob == nil || !oa.Managed || !ob.Managed {
		t.Fatalf("observed %v, %v (unobservable %v)", oa, ob, obs.unobservable)
	}
	for _, k := range []string{target.AnnIssuer, target.AnnRevision, target.AnnTemplateHash} {
		if x, y := oa.Annotation(k), ob.Annotation(k); x == "" || x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("two observations of one pass hold two copies of %s %q, %q", k, x, y)
		}
	}
	if x, y := oa.Annotation(target.AnnCertificateID), ob.Annotation(target.AnnCertificateID); x != "team/a" || y != "team/b" {
		t.Errorf("certificate IDs observed %q, %q", x, y)
	}
}
