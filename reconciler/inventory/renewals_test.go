package inventory_test

import (
	"context"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/reconciler/inventory"
)

// TestRenewalsDropsMetRequests: a request whose serial is still current is
// pending; one whose certificate has a new serial, or is gone, is met and
// deleted — but not by a dry run, which changes nothing.
func TestRenewalsDropsMetRequests(t *testing.T) {
	ctx := context.Background()
	b, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []inventory.Renewal{
		{ID: "pay/api", Serial: "aa", By: "alice", At: at},
		{ID: "pay/jobs", Serial: "bb", By: "bob", At: at},
		{ID: "web/gone", Serial: "cc", By: "carol", At: at},
	} {
		if err := inventory.RequestRenewal(ctx, b, r); err != nil {
			t.Fatal(err)
		}
	}
	inv := map[string]*inventory.Entry{"pay/api": {ID: "pay/api", Serial: "aa"}, "pay/jobs": {ID: "pay/jobs", Serial: "b2"}}
	for _, dry := range []bool{true, false} {
		got, err := inventory.Renewals(ctx, b, inv, dry)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["pay/api"].By != "alice" {
			t.Fatalf("dry run %v: pending %v, want pay/api's request only", dry, got)
		}
		keys, err := b.List(ctx, "renewals/")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 3, false: 1}[dry]; len(keys) != want {
			t.Errorf("dry run %v: %d requests kept (%v), want %d", dry, len(keys), keys, want)
		}
	}
}
