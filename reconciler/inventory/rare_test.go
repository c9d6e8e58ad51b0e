package inventory_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/inventory"
)

// oldPages are pages as certfleet wrote them while the rare fields were
// Entry's own (field order and all): one failing entry that also waits to
// revoke a serial and moved between shards, one plain entry.
var oldPages = map[string]string{"web/failing": `{
  "entries": [
    {
      "id": "web/failing",
      "issuer": "mtls",
      "serial": "0a:0b",
      "notBefore": "2026-01-01T00:00:00Z",
      "notAfter": "2026-03-01T00:00:00Z",
      "renewAt": "2026-02-01T00:00:00Z",
      "issueHash": "abc",
      "file": "teams/web.yaml",
      "revision": "main@1234",
      "author": "dev@example.test",
      "commonName": "failing.example.test",
      "dnsNames": ["failing.example.test"],
      "ipAddresses": ["10.0.0.1"],
      "uris": ["spiffe://fleet.test/web/failing"],
      "emailAddresses": ["web@example.test"],
      "targets": [{"key": "directory/out/failing", "kind": "directory", "path": "out/failing"}],
      "failingSince": "2026-02-02T00:00:00Z",
      "failures": ["web/failing → directory/out/failing: disk full", "vault: sealed"],
      "attempts": 3,
      "retryAt": "2026-02-02T01:00:00Z",
      "failureKind": "Permanent",
      "permanentFor": "mtls/abc",
      "superseded": [{"serial": "09", "issuer": "mtls", "notAfter": "2026-02-15T00:00:00Z", "reason": "SpecChanged", "since": "2026-01-20T00:00:00Z"}],
      "updatedAt": "2026-02-02T00:00:00Z",
      "released": true,
      "handoffs": 2
    }
  ]
}
`, "web/plain": `{
  "entries": [
    {
      "id": "web/plain",
      "issuer": "mtls",
      "serial": "0c",
      "notBefore": "2026-01-01T00:00:00Z",
      "notAfter": "2026-03-01T00:00:00Z",
      "renewAt": "2026-02-01T00:00:00Z",
      "issueHash": "def",
      "file": "teams/web.yaml",
      "revision": "main@1234",
      "targets": [{"key": "directory/out/plain", "kind": "directory", "path": "out/plain"}],
      "updatedAt": "2026-02-02T00:00:00Z"
    }
  ]
}
`}

// TestLoadReadsAPageOfTheFormatBeforeRare: a page stored before the rare
// fields moved behind Entry.Rare loads with every field, a plain entry
// gets no Rare part, and writing the page again stores the same JSON
// fields and values (only their order may differ).
func TestLoadReadsAPageOfTheFormatBeforeRare(t *testing.T) {
	dir := t.TempDir()
	s, err := backend.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for id, pg := range oldPages {
		if err := s.Put(t.Context(), "inventory/pages/"+inventory.PageOf(id), json.RawMessage(pg)); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := inventory.Load(t.Context(), s)
	if err != nil || len(inv) != 2 {
		t.Fatalf("loaded %d entries (err %v), want 2", len(inv), err)
	}
	f, p := inv["web/failing"], inv["web/plain"]
	day := func(d, h int) time.Time { return time.Date(2026, 2, d, h, 0, 0, 0, time.UTC) }
	switch {
	case f.FailingSince() == nil || !f.FailingSince().Equal(day(2, 0)):
		t.Errorf("failingSince = %v", f.FailingSince())
	case len(f.Failures()) != 2 || f.Failures()[1].String() != "vault: sealed":
		t.Errorf("failures = %q", f.Failures())
	case f.Attempts() != 3 || f.RetryAt() == nil || !f.RetryAt().Equal(day(2, 1)):
		t.Errorf("attempts %d, retryAt %v", f.Attempts(), f.RetryAt())
	case f.FailureKind() != inventory.Permanent || f.PermanentFor() != "mtls/abc":
		t.Errorf("failureKind %q, permanentFor %q", f.FailureKind(), f.PermanentFor())
	case len(f.Superseded()) != 1 || f.Superseded()[0].Serial != "09" || f.Superseded()[0].Reason != "SpecChanged":
		t.Errorf("superseded = %+v", f.Superseded())
	case !f.Released() || f.Handoffs() != 2:
		t.Errorf("released %v, handoffs %d", f.Released(), f.Handoffs())
	case len(f.IPAddresses()) != 1 || f.IPAddresses()[0] != "10.0.0.1" || len(f.URIs()) != 1 || f.URIs()[0] != "spiffe://fleet.test/web/failing" ||
		len(f.EmailAddresses()) != 1 || f.EmailAddresses()[0] != "web@example.test":
		t.Errorf("names besides DNS names: %q %q %q", f.IPAddresses(), f.URIs(), f.EmailAddresses())
	case !f.UpdatedAt.Equal(day(2, 0)) || f.Serial != "0a:0b" || f.Targets[0].Path != "out/failing":
		t.Errorf("the common fields read back wrong: %+v", f)
	}
	if p.Rare != nil {
		t.Errorf("an entry with none of the rare fields holds a Rare part: %+v", p.Rare)
	}
	if p.Failures() != nil || p.Attempts() != 0 || p.Released() || p.RetryAt() != nil {
		t.Errorf("a plain entry reads back rare fields: %+v", p)
	}

	if failed := inventory.Save(t.Context(), s, "", inv, []string{"web/failing", "web/plain"}); failed != nil {
		t.Fatal(failed)
	}
	for id, pg := range oldPages {
		var before, after any
		if err := json.Unmarshal([]byte(pg), &before); err != nil {
			t.Fatal(err)
		}
		if err := s.Get(t.Context(), "inventory/pages/"+inventory.PageOf(id), &after); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(before, after) {
			t.Errorf("the page of %s written again differs from the one read:\n%v\nwant\n%v", id, after, before)
		}
	}
}

// TestEntryKeepsItsRareFieldsApart: the fields few entries set live
// behind one pointer, so an entry without them is small (it was 512 B
// with them inline, 392 B with the fingerprint, 320 with the names other
// than DNS names in Rare); setting one through Edit adds the part, and a
// Clone can be changed without changing the original.
func TestEntryKeepsItsRareFieldsApart(t *testing.T) {
	// 320 is a size class of Go's allocator: at 392 an Entry took 416.
	if size := unsafe.Sizeof(inventory.Entry{}); size > 320 {
		t.Errorf("an Entry is %d B, want at most 320", size)
	}
	e := &inventory.Entry{ID: "web/api"}
	if e.Attempts() != 0 || e.Superseded() != nil || e.Rare != nil {
		t.Fatalf("a new entry reads back rare fields: %+v", e)
	}
	e.Edit().Attempts = 2
	c := e.Clone()
	c.Edit().Attempts, c.Edit().Released = 5, true
	if e.Attempts() != 2 || e.Released() || c.Attempts() != 5 || !c.Released() {
		t.Errorf("original attempts %d released %v, clone attempts %d released %v: want 2 false, 5 true",
			e.Attempts(), e.Released(), c.Attempts(), c.Released())
	}
}
