package cli

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/inventory"
)

// TestInventoryOrder: entries come soonest expiry first, and entries that
// expire together in ID order, not in the order a map yields them.
func TestInventoryOrder(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	all := map[string]*inventory.Entry{}
	for i, id := range []string{"web/e", "web/d", "web/c", "web/b", "web/a", "api/z"} {
		notAfter := now.Add(48 * time.Hour)
		if i == 5 {
			notAfter = now.Add(time.Hour)
		}
		all[id] = &inventory.Entry{ID: id, NotAfter: notAfter}
	}
	f, err := filterFlags{}.compile(now)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // map order varies from one range to the next
		var got []string
		for _, e := range f.selected(all) {
			got = append(got, e.ID)
		}
		if want := []string{"api/z", "web/a", "web/b", "web/c", "web/d", "web/e"}; !slices.Equal(got, want) {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestInventoryFilterFlags(t *testing.T) {
	tests := []struct {
		name string
		fl   filterFlags
		want string
	}{
		{name: "a bad duration names --expiring", fl: filterFlags{expiring: "soon"}, want: "--expiring"},
		{name: "a bad glob names --san", fl: filterFlags{san: "[a"}, want: `--san "[a"`},
		{name: "a bad path glob names --path", fl: filterFlags{path: "[a"}, want: `--path "[a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.fl.compile(time.Now())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %s", err, tt.want)
			}
		})
	}
}
