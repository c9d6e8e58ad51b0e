package reconcile_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/certfleet/certfleet/reconciler/inventory"
)

// counting is a proxy in front of Vault that counts the requests touching
// the inventory, by method.
type counting struct {
	mu    sync.Mutex
	calls map[string]int // "GET", "PUT", "LIST", … → requests under inventory/
}

func (c *counting) start(t *testing.T) string {
	c.calls = map[string]int{}
	return vaultProxy(t, func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/inventory") {
			m := r.Method
			if r.URL.Query().Get("list") == "true" {
				m = "LIST"
			}
			c.mu.Lock()
			c.calls[m]++
			c.mu.Unlock()
		}
		return true
	})
}

func (c *counting) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

// dirFleet declares n certificates, each delivered to a directory.
func dirFleet(n int, dns func(i int) string) map[string]string {
	return manifestFiles(n, dns, func(i int) string { return fmt.Sprintf("directory: {path: svc-%d}", i) })
}

// The inventory is read and written in pages: issuing n certificates
// writes each page once, a one-shot no-op pass reads each page once and
// writes nothing, and one changed certificate rewrites one page — never a
// request per certificate.
func TestInventoryCostsVaultRequestsPerPageNotPerCertificate(t *testing.T) {
	const n = 1000
	var c counting
	e := newEnv(t)
	e.backend = mustVault(t, c.start(t), e.id)
	name := func(i int) string { return fmt.Sprintf("svc-%d.example.test", i) }
	files := dirFleet(n, name)
	pages := map[string]bool{}
	for i := 0; i < n; i++ {
		pages[inventory.PageOf("web/svc-"+fmt.Sprint(i))] = true
	}
	if len(pages) >= n/2 {
		t.Fatalf("%d certificates spread over %d pages: the test needs fewer pages than certificates", n, len(pages))
	}

	rep := e.run(files)
	if rep.Actions["issue"] != n || len(rep.Failures) > 0 {
		t.Fatalf("first pass: actions %v failures %v", rep.Actions, rep.Failures)
	}
	first := c.take()
	if first["PUT"]+first["POST"] != len(pages) {
		t.Errorf("issuing %d certificates wrote the inventory %d times, want once per page (%d): %v", n, first["PUT"]+first["POST"], len(pages), first)
	}

	rep = e.run(files)
	if len(rep.Actions) != 0 || rep.Reasons["InSync"] != n {
		t.Fatalf("no-op pass: actions %v reasons %v", rep.Actions, rep.Reasons)
	}
	noop := c.take()
	if noop["PUT"]+noop["POST"]+noop["DELETE"] != 0 {
		t.Errorf("a no-op pass wrote the inventory: %v", noop)
	}
	// A LIST of the pages, one of the earlier format (to read it) and one
	// to migrate it; a GET per page.
	if noop["GET"] != len(pages) || noop["LIST"] > 3 {
		t.Errorf("a one-shot no-op pass over %d certificates in %d pages made %v inventory requests, want %d GETs and at most 3 LISTs",
			n, len(pages), noop, len(pages))
	}

	// One certificate changes: one page is written.
	changed := dirFleet(n, func(i int) string {
		if i == 7 {
			return "svc-7-renamed.example.test"
		}
		return name(i)
	})
	rep = e.run(changed)
	if rep.Actions["reissue"] != 1 || len(rep.Failures) > 0 {
		t.Fatalf("changed pass: actions %v failures %v", rep.Actions, rep.Failures)
	}
	if one := c.take(); one["PUT"]+one["POST"] != 1 {
		t.Errorf("one changed certificate wrote the inventory %d times, want 1: %v", one["PUT"]+one["POST"], one)
	}
	inv, err := inventory.Load(t.Context(), e.backend)
	if err != nil || len(inv) != n || inv["web/svc-7"].DNSNames[0] != "svc-7-renamed.example.test" {
		t.Errorf("the inventory after the change: %d entries, err %v", len(inv), err)
	}
}

// Entries of the earlier one-document-per-certificate layout are moved into
// pages once: Vault KV's Delete keeps a soft-deleted key listed, so the old
// documents are purged, and the pass after the move writes nothing.
func TestMovedInventoryEntriesAreMovedOnce(t *testing.T) {
	const n = 20
	var c counting
	e := newEnv(t)
	e.backend = mustVault(t, c.start(t), e.id)
	files := dirFleet(n, func(i int) string { return fmt.Sprintf("svc-%d.example.test", i) })
	if rep := e.run(files); rep.Actions["issue"] != n || len(rep.Failures) > 0 {
		t.Fatalf("first pass: actions %v failures %v", rep.Actions, rep.Failures)
	}
	inv, err := inventory.Load(t.Context(), e.backend)
	if err != nil {
		t.Fatal(err)
	}
	for id, entry := range inv { // as an earlier certfleet wrote them
		if err := e.backend.Put(t.Context(), "inventory/"+strings.ReplaceAll(id, "/", "_"), entry); err != nil {
			t.Fatal(err)
		}
	}
	c.take()
	if rep := e.run(files); len(rep.Actions) != 0 || len(rep.Failures) > 0 {
		t.Fatalf("the moving pass: actions %v failures %v", rep.Actions, rep.Failures)
	}
	if moved := c.take(); moved["DELETE"] != n {
		t.Errorf("moving %d entries made %v inventory requests, want %d DELETEs (one purge each)", n, moved, n)
	}
	if rep := e.run(files); len(rep.Actions) != 0 || len(rep.Failures) > 0 {
		t.Fatalf("the pass after: actions %v failures %v", rep.Actions, rep.Failures)
	}
	if after := c.take(); after["PUT"]+after["POST"]+after["DELETE"] != 0 {
		t.Errorf("the pass after the move wrote the inventory again: %v", after)
	}
	if left, err := e.backend.List(t.Context(), "inventory/"); err != nil || len(left) != 0 {
		t.Errorf("documents of the earlier layout still listed after the move: %v (%v)", left, err)
	}
}
