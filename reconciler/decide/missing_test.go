package decide_test

import (
	"testing"
	"unsafe"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/schemas"
)

// On a first pass every target of the fleet is Missing: the certificates
// of one file share one copy of the message naming it (one each was ~64
// bytes a target, kept to the pass's end), and the decisions are sized
// once, not grown by doubling.
func TestMissingTargetsOfAFileShareTheirMessage(t *testing.T) {
	a, b := &schemas.Document{File: "teams/a.yaml"}, &schemas.Document{File: "teams/b.yaml"}
	var ds []*render.Desired
	for _, c := range []struct {
		id  string
		doc *schemas.Document
	}{{"a/one", a}, {"a/two", a}, {"b/three", b}, {"a/four", a}, {"a/five", a}} {
		d := desired(c.id, nil, dirTarget("/srv/"+c.id))
		d.Origin = schemas.Origin{Doc: c.doc, Item: -1}
		ds = append(ds, d)
	}
	dec := decide.Decide(decide.Input{Desired: ds, Now: now})
	if len(dec.Certificates) != len(ds) || cap(dec.Certificates) != len(ds) {
		t.Errorf("%d decisions in room for %d; want %d in room for as many", len(dec.Certificates), cap(dec.Certificates), len(ds))
	}
	var first string
	for i, c := range dec.Certificates {
		tg := c.Targets[0]
		want := "declared in " + ds[i].File() + " but not delivered"
		if c.Reason != decide.Missing || tg.Reason != decide.Missing || tg.Message != want || c.Message != want {
			t.Errorf("%s: %s %q (target %s %q); want Missing %q", c.Desired.ID, c.Reason, c.Message, tg.Reason, tg.Message, want)
		}
		if ds[i].Origin.Doc != a {
			continue
		}
		if first == "" {
			first = tg.Message
		} else if unsafe.StringData(tg.Message) != unsafe.StringData(first) {
			t.Errorf("%s's message is a copy of its own, not the one of its file", c.Desired.ID)
		}
	}
}
