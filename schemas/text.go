package schemas

import (
	"bytes"
	"compress/flate"
	"io"
	"math"
	"sync"
	"unsafe"
	"weak"
)

// packedText is the text of the documents of one file that a caller keeps,
// compressed. A document's text is read again only to place a position
// (an error, a violation, a changed field): a pass needs it for the few
// certificates with something to report, and holding every file's text
// for the rest cost as much as the certificates' own structs. A fleet's
// manifests repeat themselves: the scale benchmark's pack to a thirtieth
// of their size.
type packedText struct {
	z []byte // flate-compressed
	n int    // uncompressed length

	mu sync.Mutex
	// plain is the text decompressed by the last reader, until the next GC
	// takes it: a caller placing positions in many documents of one file
	// (a plan with many changes) decompresses it about once a cycle.
	plain weak.Pointer[byte]
}

// text returns the uncompressed text.
func (p *packedText) text() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.plain.Value(); b != nil && p.n > 0 {
		return unsafe.Slice(b, p.n)
	}
	out := make([]byte, p.n)
	r := flate.NewReader(bytes.NewReader(p.z))
	if _, err := io.ReadFull(r, out); err != nil {
		return nil // cannot happen: PackText wrote it
	}
	if p.n > 0 {
		p.plain = weak.Make(&out[0])
	}
	return out
}

// flateWriters are reused: a writer allocates its tables anew, and a
// repository of many small files packs each on its own.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // the level is valid
	return w
}}

// PackText compresses the text of the given documents (of one file, or
// any) into one block they share, and lets go of their slices of the file:
// once every document a caller keeps of a file is packed, nothing holds
// the file's text. Positions are placed as before, from the text
// decompressed when one is asked for. Documents given twice are packed
// once; documents not decoded from YAML are left alone. Call it once the
// caller is done decoding the documents' file (Decode's documents hold
// slices of its data until then).
func PackText(docs []*Document) {
	var (
		z bytes.Buffer
		w *flate.Writer
		p = &packedText{}
	)
	for _, d := range docs {
		// A document given twice, or packed before, has no src any more.
		if d == nil || d.src == nil || p.n+len(d.src) > math.MaxInt32 {
			continue
		}
		if w == nil {
			w = flateWriters.Get().(*flate.Writer)
			w.Reset(&z)
		}
		w.Write(d.src) // a bytes.Buffer does not fail
		d.packed, d.packedAt, d.src = p, int32(p.n), nil
		p.n += int(d.srcLen)
	}
	if w == nil {
		return
	}
	w.Close()
	flateWriters.Put(w)
	p.z = bytes.Clone(z.Bytes())
}
