package fleetpage

import (
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/reconciler/render"
)

var now = time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)

func TestBuckets(t *testing.T) {
	day := 24 * time.Hour
	midnight := now.Truncate(day)
	cases := []struct {
		name  string
		times []time.Time
		want  map[int]int
	}{
		{"an expiry later today is in the first bucket", []time.Time{now.Add(time.Hour)}, map[int]int{0: 1}},
		{"an expiry earlier today, already past, is still today's", []time.Time{midnight.Add(time.Minute)}, map[int]int{0: 1}},
		{"midnight starts the next day's bucket", []time.Time{midnight.Add(day), midnight.Add(day - time.Nanosecond)}, map[int]int{0: 1, 1: 1}},
		{"two on the same day add up", []time.Time{now.Add(50 * time.Hour), now.Add(51 * time.Hour)}, map[int]int{2: 2}},
		{"the last day of the span is counted", []time.Time{midnight.Add(89*day + time.Hour)}, map[int]int{89: 1}},
		{"past the span is left out", []time.Time{midnight.Add(90 * day)}, map[int]int{}},
		{"before today is left out (expired)", []time.Time{midnight.Add(-time.Second)}, map[int]int{}},
		{"another time zone counts by UTC day", []time.Time{midnight.Add(day + time.Hour).In(time.FixedZone("x", -5*3600))}, map[int]int{1: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Buckets(now, Days, c.times)
			if len(got) != Days {
				t.Fatalf("%d buckets, want %d", len(got), Days)
			}
			for i, n := range got {
				if n != c.want[i] {
					t.Errorf("bucket %d = %d, want %d (all: %v)", i, n, c.want[i], got)
				}
			}
		})
	}
}

func entry(id, author, file string, dns ...string) *inventory.Entry {
	return &inventory.Entry{ID: id, Author: author, File: file, DNSNames: dns, Issuer: "mtls", NotAfter: now.Add(48 * time.Hour),
		Rare: &inventory.Rare{URIs: []string{"spiffe://fleet.test/" + id}}, Targets: []inventory.Target{{Cluster: "alpha"}}}
}

func TestGuessOwner(t *testing.T) {
	inv := map[string]*inventory.Entry{
		"apps/payments": entry("apps/payments", "alice", "teams/pay/payments.yaml"),
		"apps/web":      entry("apps/web", "", "teams/web/web.yaml"),
	}
	cases := []struct {
		name, target, ns, who string
	}{
		{"a Secret named like a declared certificate plus -tls is its author's", "alpha/shop/payments-tls", "shop", "alice"},
		{"the same name exactly", "alpha/shop/payments", "shop", "alice"},
		{"no author: the declaring file", "alpha/shop/web-tls", "shop", "teams/web/web.yaml"},
		{"a name that starts with a certificate's", "alpha/shop/payments-legacy-tls", "shop", "alice"},
		{"nothing shares its name: the namespace", "alpha/shop/billing-tls", "shop", "namespace shop"},
		{"nothing at all", "dir/x", "", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := GuessOwner(reconcile.TargetState{Target: c.target, Namespace: c.ns}, inv)
			if got.Who != c.who || got.Why == "" {
				t.Errorf("GuessOwner(%s) = %+v, want %s with a reason", c.target, got, c.who)
			}
		})
	}
}

func TestEveryQueryField(t *testing.T) {
	inv := map[string]*inventory.Entry{
		"apps/a": entry("apps/a", "alice", "teams/a/a.yaml", "a.apps.svc.cluster.local"),
		"apps/b": entry("apps/b", "bob", "teams/b/b.yaml", "b.example.test"),
	}
	inv["apps/b"].Issuer, inv["apps/b"].Targets = "edge", []render.Address{{Cluster: "beta"}}
	inv["apps/b"].NotAfter = now.Add(60 * 24 * time.Hour)
	cases := []struct {
		name string
		q    Query
		want string
	}{
		{"empty selects all", Query{}, "apps/a apps/b"},
		{"SAN by DNS name", Query{SAN: "example.test"}, "apps/b"},
		{"SAN by SPIFFE ID", Query{SAN: "spiffe://fleet.test/apps/a"}, "apps/a"},
		{"owner is the commit author, case-insensitive", Query{Owner: "ALICE"}, "apps/a"},
		{"issuer", Query{Issuer: "edge"}, "apps/b"},
		{"cluster", Query{Cluster: "beta"}, "apps/b"},
		{"repository path", Query{Path: "teams/a/"}, "apps/a"},
		{"expiring within", Query{Expiring: 30 * 24 * time.Hour}, "apps/a"},
		{"free text matches an owner", Query{Text: "bob"}, "apps/b"},
		{"free text matches a cluster", Query{Text: "alpha"}, "apps/a"},
		{"fields combine", Query{Owner: "alice", Cluster: "beta"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ids []string
			for _, e := range Search(inv, c.q, now) {
				ids = append(ids, e.ID)
			}
			if got := strings.Join(ids, " "); got != c.want {
				t.Errorf("Search(%+v) = %q, want %q", c.q, got, c.want)
			}
		})
	}
}

func TestHistoryKeepsOnlyTheCertificatesEventsInOrder(t *testing.T) {
	log := `{"time":"2026-12-01T00:00:00Z","action":"issue","certificate":"apps/a","target":"alpha/x/a-tls","serial":"01"}
{"time":"2026-12-01T00:00:01Z","action":"issue","certificate":"apps/ab","serial":"02"}
not json
{"time":"2026-12-02T00:00:00Z","action":"renew","certificate":"apps/a","serial":"03"}
`
	got, err := historyOf(strings.NewReader(log), "apps/a")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Serial != "01" || got[1].Serial != "03" {
		t.Fatalf("history = %+v, want serials 01 then 03", got)
	}
}

func TestTimelineMarksAuthoritiesInTheSpanOnly(t *testing.T) {
	b := Buckets(now, Days, []time.Time{now.Add(time.Hour)})
	svg := string(Timeline(now, b, []Mark{{Name: "root", Type: "root", NotAfter: now.Add(30 * 24 * time.Hour)},
		{Name: "old", Type: "root", NotAfter: now.Add(200 * 24 * time.Hour)}}))
	if strings.Count(svg, `class="authority"`) != 1 || !strings.Contains(svg, ">root<") || strings.Contains(svg, ">old<") {
		t.Errorf("want one authority line (root), got %s", svg)
	}
	if strings.Count(svg, `class="bar"`) != 1 || !strings.Contains(svg, `data-count="1"`) {
		t.Errorf("want one bar of 1, got %s", svg)
	}
}

func TestOverviewShowsRotationsInProgressOnly(t *testing.T) {
	since := now.Add(-3 * time.Hour)
	f := &Fleet{Now: now, Result: &reconcile.Result{Rotations: []decide.AuthorityPhase{
		{Authority: "fleet-root", Phase: decide.PhaseTrustPublishing, PhaseName: decide.PhaseTrustPublishing.String(), Since: &since,
			PlacesTrusting: 2, Places: 3, LeavesRemaining: 40, LeavesAwaitingTrust: 40, Message: "a trust bundle place <alpha/ns/ca> does not hold the new CA"},
	}}}
	var b strings.Builder
	if err := Overview(&b, f, Query{}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`<table id="rotations">`, `data-authority="fleet-root" data-phase="2"`, "2/4 TrustPublishing", "3h0m0s ago",
		"<td>2/3</td>", "40 (40 awaiting trust)", "&lt;alpha/ns/ca&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}

	b.Reset()
	if err := Overview(&b, &Fleet{Now: now, Result: &reconcile.Result{}}, Query{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "rotations") {
		t.Errorf("a fleet with no rotation in progress shows a rotations table")
	}
}
