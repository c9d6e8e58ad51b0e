package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/render"
)

// encoded is r as the CLI wrote it before WriteJSON: a json.Encoder, indented.
func encoded(t *testing.T, r *Result) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reportOf(n int) *Result {
	r := newResult(&render.Result{}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), false)
	r.Reasons[decide.Missing] = n
	r.Actions["issue"] = n
	r.Failures = append(r.Failures, inventory.Failed("writing <a> & \"b\"", fmt.Errorf("disk full")))
	r.Notes = []string{"a note with \u2028 and <html>"}
	for i := range n {
		r.Items = append(r.Items, Item{Certificate: fmt.Sprintf("team/svc-%d", i), Issuer: "mtls", Target: fmt.Sprintf("directory//out/team/svc-%d", i),
			Reason: decide.Missing, Action: "issue", Serial: "0a:0b", NotAfter: time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)})
	}
	return r
}

// TestWriteJSONWritesWhatTheEncoderDid: the streamed report is byte for
// byte what encoding/json's indenting encoder wrote, with no items, one
// and several, HTML-escaped the same.
func TestWriteJSONWritesWhatTheEncoderDid(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 3} {
		r := reportOf(max(n, 0))
		if n < 0 {
			r.Items = nil // a report made without newResult
		}
		var got bytes.Buffer
		if err := r.WriteJSON(&got); err != nil {
			t.Fatal(err)
		}
		if want := encoded(t, r); !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%d items: WriteJSON wrote\n%s\nwant\n%s", n, got.Bytes(), want)
		}
	}
}

// heapProbe is a writer that, once half the report went through it,
// collects and measures how much more the heap holds than before writing.
type heapProbe struct {
	half, n int
	base    uint64
	grew    int64
}

func (p *heapProbe) Write(b []byte) (int, error) {
	p.n += len(b)
	if p.n >= p.half && p.grew == 0 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		p.grew = int64(m.HeapAlloc) - int64(p.base)
	}
	return len(b), nil
}

func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC() // and what sync.Pools kept through one
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestWriteJSONHoldsNoWholeReport: while the report of 20,000 items is
// written, the heap holds a small part of it (the encoder held all of it,
// marshalled and again indented, when it wrote).
func TestWriteJSONHoldsNoWholeReport(t *testing.T) {
	r := reportOf(20_000)
	size := len(encoded(t, r))
	p := &heapProbe{half: size / 2}
	p.base = liveHeap()
	if err := r.WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	if p.grew > int64(size)/10 {
		t.Errorf("halfway through a report of %d bytes the heap held %d more", size, p.grew)
	}
	enc := &heapProbe{half: size / 2}
	enc.base = liveHeap()
	e := json.NewEncoder(enc)
	e.SetIndent("", "  ")
	if err := e.Encode(r); err != nil {
		t.Fatal(err)
	}
	t.Logf("report of %d bytes: written by WriteJSON the heap held %d more, by the encoder %d", size, p.grew, enc.grew)
	if enc.grew < int64(size)/2 {
		t.Errorf("the probe is blind: the encoder held %d more bytes writing %d", enc.grew, size)
	}
}
