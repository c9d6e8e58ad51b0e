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

// TestEveryInventoryFilter: each flag keeps what it names and drops the rest.
func TestEveryInventoryFilter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	all := map[string]*inventory.Entry{
		"pay/api": {ID: "pay/api", Issuer: "mtls", Author: "Alice <alice@example.test>", File: "teams/payments/api.yaml",
			CommonName: "api", DNSNames: []string{"api.pay.svc.cluster.local"}, Rare: &inventory.Rare{URIs: []string{"spiffe://fleet.test/ns/pay/api"}},
			NotAfter: now.Add(24 * time.Hour), Targets: []inventory.Target{{Cluster: "prod-eu"}}},
		"web/www": {ID: "web/www", Issuer: "edge", Author: "Bob <bob@example.test>", File: "teams/web/www.yaml",
			DNSNames: []string{"www.example.test"}, Rare: &inventory.Rare{IPAddresses: []string{"10.0.0.7"}, EmailAddresses: []string{"ops@example.test"}},
			NotAfter: now.Add(60 * 24 * time.Hour), Targets: []inventory.Target{{Cluster: "prod-us"}}},
	}
	tests := []struct {
		name string
		fl   filterFlags
		want string
	}{
		{"no flag keeps all", filterFlags{}, "pay/api web/www"},
		{"--expiring", filterFlags{expiring: "7d"}, "pay/api"},
		{"--issuer is exact", filterFlags{issuer: "edge"}, "web/www"},
		{"--issuer does not match a prefix", filterFlags{issuer: "mt"}, ""},
		{"--san matches a DNS name", filterFlags{san: "*.example.test"}, "web/www"},
		{"--san matches a SPIFFE ID", filterFlags{san: "spiffe://fleet.test/ns/pay/*"}, "pay/api"},
		{"--san matches an IP address", filterFlags{san: "10.0.0.*"}, "web/www"},
		{"--san matches an e-mail address", filterFlags{san: "ops@*"}, "web/www"},
		{"--san matches the common name", filterFlags{san: "api"}, "pay/api"},
		{"--cluster", filterFlags{cluster: "prod-us"}, "web/www"},
		{"--path", filterFlags{path: "teams/payments/**"}, "pay/api"},
		{"--owner by name, any case", filterFlags{owner: "alice"}, "pay/api"},
		{"--owner by e-mail address", filterFlags{owner: "bob@example.test"}, "web/www"},
		{"--owner nobody", filterFlags{owner: "carol"}, ""},
		{"flags combine", filterFlags{owner: "alice", cluster: "prod-us"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.fl.compile(now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range f.selected(all) {
				got = append(got, e.ID)
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}
