package serve_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/serve"
)

func TestMergeFleet(t *testing.T) {
	unclaimed := reconcile.DriftEntry{Reason: decide.Unclaimed, Certificate: "apps/stray", Target: "directory/stray"}
	views := []serve.ShardView{
		{Lease: "certfleet-b", Status: &serve.Status{Shard: "b"}, Drift: &reconcile.DriftReport{InSync: 5,
			Entries: []reconcile.DriftEntry{{Reason: decide.Expiring, Certificate: "apps/z", Target: "directory/z"}}}},
		{Lease: "certfleet-a", Status: &serve.Status{Shard: "a"}, Drift: &reconcile.DriftReport{InSync: 3,
			Entries: []reconcile.DriftEntry{unclaimed, {Reason: decide.Missing, Certificate: "apps/a", Target: "directory/a"}}}},
		{Lease: "certfleet-c", Error: "connection refused"},
		// The same entry from a second shard (during a hand-off both may see it) counts once.
		{Lease: "certfleet-d", Status: &serve.Status{Shard: "d"}, Drift: &reconcile.DriftReport{Entries: []reconcile.DriftEntry{unclaimed}}},
	}
	f := serve.MergeFleet(views, time.Unix(0, 0))
	if f.InSync != 8 || f.Unreachable != 1 || len(f.Entries) != 3 || f.Counts[decide.Unclaimed] != 1 || f.Counts[decide.Missing] != 1 {
		t.Fatalf("merged: in sync %d, unreachable %d, %d entries, counts %v", f.InSync, f.Unreachable, len(f.Entries), f.Counts)
	}
	if f.Entries[0].Certificate != "apps/a" || f.Entries[0].Shard != "a" || f.Entries[2].Shard != "b" {
		t.Errorf("entries are not sorted by certificate with their shard: %+v", f.Entries)
	}
	var b strings.Builder
	if err := f.Text(&b); err != nil || !strings.Contains(b.String(), "certfleet-c") || !strings.Contains(b.String(), "UNREADABLE: connection refused") {
		t.Errorf("text view:\n%s", b.String())
	}
}

func TestAdvertisedIdentityCarriesTheAddress(t *testing.T) {
	t.Setenv("CERTFLEET_ADVERTISE_ADDRESS", "")
	t.Setenv("POD_IP", "10.1.2.3")
	if got := serve.AddressOf(serve.AdvertisedIdentity(":8080")); got != "http://10.1.2.3:8080" {
		t.Errorf("with POD_IP: %q", got)
	}
	t.Setenv("POD_IP", "")
	if got := serve.AddressOf(serve.AdvertisedIdentity("127.0.0.1:9000")); got != "http://127.0.0.1:9000" {
		t.Errorf("with a listen host: %q", got)
	}
	t.Setenv("CERTFLEET_ADVERTISE_ADDRESS", "http://certfleet-a.certfleet-system.svc:8080")
	if got := serve.AddressOf(serve.AdvertisedIdentity(":8080")); got != "http://certfleet-a.certfleet-system.svc:8080" {
		t.Errorf("with CERTFLEET_ADVERTISE_ADDRESS: %q", got)
	}
	if serve.AddressOf("host_123") != "" {
		t.Error("an identity without an address has one")
	}
}

func TestConfigSharding(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"a shard of the declared ones", "shard: b\nsharding: {shards: [a, b]}\n", ""},
		{"the shard given by --shard only", "sharding: {shards: [a, b]}\n", ""},
		{"an undeclared shard", "shard: x\nsharding: {shards: [a, b]}\n", `shard is "x", which sharding.shards (a, b) does not declare`},
		{"a shard without sharding", "shard: a\n", "sharding.shards is empty"},
		{"a bad mode", "shard: a\nsharding: {shards: [a], by: random}\n", `sharding.by is "random"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "certfleet.yaml")
			if err := os.WriteFile(p, []byte("source: {url: /tmp/repo}\n"+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := serve.LoadConfig(p)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("LoadConfig: %v; want %q", err, tc.want)
			}
		})
	}
	cfgPath := filepath.Join(t.TempDir(), "certfleet.yaml")
	os.WriteFile(cfgPath, []byte("source: {url: /tmp/repo}\nsharding: {shards: [a, b]}\n"), 0o600)
	cfg, err := serve.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.WithShard(cfg, "q"); err == nil || !strings.Contains(err.Error(), "--shard q") {
		t.Errorf("--shard naming an undeclared shard: %v", err)
	}
	if _, err := serve.New(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "shard is not") {
		t.Errorf("serve without a shard of a sharded fleet started: %v", err)
	}
	if serve.LeaseName("", "a") != "certfleet-a" || serve.LeaseName("x", "") != "x" {
		t.Error("lease names")
	}
}
