package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/inventory"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want inventory.FailureKind
	}{
		{name: "no error is no failure", err: nil, want: ""},
		{name: "a role that refuses is permanent", err: fmt.Errorf("signing: %w", pki.ErrNotAllowed), want: inventory.Permanent},
		{name: "an issuer that is gone is permanent", err: fmt.Errorf("issuer: %w", backend.ErrNotFound), want: inventory.Permanent},
		{name: "a timeout is transient", err: context.DeadlineExceeded, want: inventory.Transient},
		{name: "anything else is transient", err: errors.New("connection refused"), want: inventory.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inventory.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// Entries round-trip through pages; Save writes only the pages it is told
// changed, deletes an emptied page, and the earlier one-document-per-entry
// format is read and moved into pages.
func TestPagesRoundTripAndMigrate(t *testing.T) {
	ctx := t.Context()
	s, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	inv := map[string]*inventory.Entry{}
	var ids []string
	for i := 0; i < 600; i++ {
		id := fmt.Sprintf("web/svc-%d", i)
		inv[id] = &inventory.Entry{ID: id, Serial: fmt.Sprint(i)}
		ids = append(ids, id)
	}
	if failed := inventory.Save(ctx, s, inv, ids); failed != nil {
		t.Fatal(failed)
	}
	pages, _ := s.List(ctx, "inventory/pages/")
	if len(pages) == 0 || len(pages) > inventory.Pages {
		t.Fatalf("%d pages for 600 entries", len(pages))
	}
	got, err := inventory.Load(ctx, s)
	if err != nil || len(got) != 600 || got["web/svc-42"].Serial != "42" {
		t.Fatalf("loaded %d entries (err %v), want 600", len(got), err)
	}

	// A change saved without naming it is not written: Save trusts its list.
	inv["web/svc-1"] = &inventory.Entry{ID: "web/svc-1", Serial: "new"}
	inv["web/svc-2"] = &inventory.Entry{ID: "web/svc-2", Serial: "new"}
	delete(inv, "web/svc-3")
	if failed := inventory.Save(ctx, s, inv, []string{"web/svc-1", "web/svc-3"}); failed != nil {
		t.Fatal(failed)
	}
	got, _ = inventory.Load(ctx, s)
	if got["web/svc-1"].Serial != "new" || got["web/svc-3"] != nil || len(got) != 599 {
		t.Errorf("after saving svc-1 and deleting svc-3: svc-1 %q, svc-3 %v, %d entries", got["web/svc-1"].Serial, got["web/svc-3"], len(got))
	}
	if inventory.PageOf("web/svc-2") != inventory.PageOf("web/svc-1") && got["web/svc-2"].Serial != "2" {
		t.Errorf("svc-2's page was written though it was not named as changed")
	}

	// The earlier format: one document per entry at inventory/<id, / as _>.
	old := &inventory.Entry{ID: "payments/api", Serial: "legacy"}
	if err := s.Put(ctx, "inventory/payments_api", old); err != nil {
		t.Fatal(err)
	}
	got, _ = inventory.Load(ctx, s)
	if got["payments/api"] == nil || got["payments/api"].Serial != "legacy" {
		t.Fatalf("an entry in the earlier format was not read: %v", got["payments/api"])
	}
	if err := inventory.Migrate(ctx, s, got); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.List(ctx, "inventory/"); len(left) != 0 {
		t.Errorf("documents of the earlier format left after migrating: %v", left)
	}
	got, _ = inventory.Load(ctx, s)
	if got["payments/api"] == nil || got["payments/api"].Serial != "legacy" || len(got) != 600 {
		t.Errorf("after migrating: payments/api %v, %d entries", got["payments/api"], len(got))
	}

	// Put and Delete of one entry rewrite its page.
	if err := inventory.Delete(ctx, s, "payments/api"); err != nil {
		t.Fatal(err)
	}
	if err := inventory.Put(ctx, s, &inventory.Entry{ID: "web/svc-5", Serial: "put"}); err != nil {
		t.Fatal(err)
	}
	got, _ = inventory.Load(ctx, s)
	if got["payments/api"] != nil || got["web/svc-5"].Serial != "put" || len(got) != 599 {
		t.Errorf("after Delete and Put: payments/api %v, svc-5 %q, %d entries", got["payments/api"], got["web/svc-5"].Serial, len(got))
	}
}
