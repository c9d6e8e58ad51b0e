package reconcile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// itemsField is how the report's items list is written when empty, in
// WriteJSON's indentation: top-level fields are indented two spaces, so a
// nested "items" key (deeper) cannot be taken for it.
const itemsField = "\n  \"items\": []"

// WriteJSON writes r as JSON, indented by two spaces — the bytes a
// json.Encoder with SetIndent("", "  ") writes — an item at a time: the
// items of a first pass over 100,000 certificates are ~30 MB of JSON,
// which the encoder built whole, and indented into a second buffer as
// large, at the end of the pass, while everything the pass held was still
// alive.
func (r *Result) WriteJSON(w io.Writer) error {
	if r.Items == nil { // "items": null, not []: nothing to stream
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	head := *r
	head.Items = []Item{}
	b, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte(itemsField))
	if i < 0 {
		return errors.New("writing the report: its items list is not where it belongs")
	}
	i += len(itemsField) - 1 // at the list's closing bracket
	bw := bufio.NewWriter(w)
	bw.Write(b[:i])
	for n, it := range r.Items {
		if n > 0 {
			bw.WriteString(",")
		}
		item, err := json.MarshalIndent(it, "    ", "  ")
		if err != nil {
			return err
		}
		bw.WriteString("\n    ")
		bw.Write(item)
	}
	if len(r.Items) > 0 {
		bw.WriteString("\n  ")
	}
	bw.Write(b[i:])
	bw.WriteString("\n")
	return bw.Flush()
}
