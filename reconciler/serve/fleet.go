package serve

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
)

// A replica's identity in its Lease is "<host>_<pid> <address>": the
// address is where its /report is served, so `certfleet fleet` finds every
// shard's leader from the Leases alone (no Service per shard needed).

// AdvertisedIdentity is this replica's identity in the Lease, with the
// address other processes reach its HTTP listener at:
// $CERTFLEET_ADVERTISE_ADDRESS when set (such as http://$(POD_IP):8080 from
// the Downward API), else $POD_IP with listen's port, else listen's host
// (the host name when listen has none) and port.
func AdvertisedIdentity(listen string) string {
	return Identity() + " " + advertised(listen)
}

func advertised(listen string) string {
	if a := os.Getenv("CERTFLEET_ADVERTISE_ADDRESS"); a != "" {
		return a
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	switch {
	case os.Getenv("POD_IP") != "":
		host = os.Getenv("POD_IP")
	case host == "" || host == "0.0.0.0" || host == "::":
		host, _ = os.Hostname()
	}
	return "http://" + net.JoinHostPort(host, port)
}

// AddressOf is the address in a Lease holder's identity ("" when it has none).
func AddressOf(identity string) string {
	if i := strings.LastIndexByte(identity, ' '); i >= 0 {
		return identity[i+1:]
	}
	return ""
}

// ShardView is one shard's answer to /report, as `certfleet fleet` read it.
type ShardView struct {
	// Lease is the shard's Lease; Holder its holder's identity.
	Lease   string `json:"lease"`
	Holder  string `json:"holder,omitempty"`
	Address string `json:"address,omitempty"`
	// Error says why the shard could not be read.
	Error  string                 `json:"error,omitempty"`
	Status *Status                `json:"status,omitempty"`
	Drift  *reconcile.DriftReport `json:"drift,omitempty"`
}

// FleetView is every shard's report merged into one.
type FleetView struct {
	Time   time.Time   `json:"time"`
	Shards []ShardView `json:"shards"`
	// InSync and Counts sum the shards'; Entries lists every shard's drift
	// once (an unclaimed certificate is reported by one shard only).
	InSync  int                   `json:"inSync"`
	Counts  map[decide.Reason]int `json:"counts"`
	Entries []FleetEntry          `json:"entries"`
	// Unreachable counts the shards that could not be read: the view lacks their share.
	Unreachable int `json:"unreachable"`
}

// FleetEntry is one drift entry and the shard that reported it.
type FleetEntry struct {
	Shard string `json:"shard"`
	reconcile.DriftEntry
}

// MergeFleet merges the shards' views, pure: counts summed, entries
// sorted by certificate and target, the same entry from two shards once.
func MergeFleet(views []ShardView, now time.Time) FleetView {
	f := FleetView{Time: now, Shards: views, Counts: map[decide.Reason]int{}, Entries: []FleetEntry{}}
	seen := map[string]bool{}
	for _, v := range views {
		if v.Error != "" || v.Drift == nil {
			f.Unreachable++
			continue
		}
		shardName := ""
		if v.Status != nil {
			shardName = v.Status.Shard
		}
		f.InSync += v.Drift.InSync
		for _, e := range v.Drift.Entries {
			key := string(e.Reason) + "\x00" + e.Certificate + "\x00" + e.Target
			if seen[key] {
				continue
			}
			seen[key] = true
			f.Counts[e.Reason]++
			f.Entries = append(f.Entries, FleetEntry{Shard: shardName, DriftEntry: e})
		}
	}
	slices.SortFunc(f.Entries, func(a, b FleetEntry) int {
		return cmp.Or(strings.Compare(a.Certificate, b.Certificate), strings.Compare(a.Target, b.Target))
	})
	return f
}

// ReadFleet reads every shard's /report: the Leases in namespace named
// base or base-<shard> name the shards, their holders' identities the
// addresses. token, when set, is sent as a bearer token.
func ReadFleet(ctx context.Context, c kubernetes.Interface, namespace, base, token string, client *http.Client) ([]ShardView, error) {
	leases, err := c.CoordinationV1().Leases(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the Leases in %s: %w", namespace, err)
	}
	if base == "" {
		base = DefaultLeaseName
	}
	var views []ShardView
	for _, l := range leases.Items {
		if l.Name != base && !strings.HasPrefix(l.Name, base+"-") {
			continue
		}
		v := ShardView{Lease: l.Name}
		if l.Spec.HolderIdentity != nil {
			v.Holder = *l.Spec.HolderIdentity
		}
		v.Address = AddressOf(v.Holder)
		switch {
		case v.Holder == "":
			v.Error = "the Lease has no holder: the shard has no leader"
		case v.Address == "":
			v.Error = "the holder's identity carries no address (a replica older than certfleet fleet)"
		default:
			v.Status, v.Drift, err = readReport(ctx, client, v.Address, token)
			if err != nil {
				v.Error = err.Error()
			}
		}
		views = append(views, v)
	}
	slices.SortFunc(views, func(a, b ShardView) int { return strings.Compare(a.Lease, b.Lease) })
	return views, nil
}

func readReport(ctx context.Context, client *http.Client, address, token string) (*Status, *reconcile.DriftReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(address, "/")+"/report", nil)
	if err != nil {
		return nil, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, nil, err
	}
	var rep struct {
		Status *Status                `json:"status"`
		Drift  *reconcile.DriftReport `json:"drift"`
		Note   string                 `json:"note"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, nil, fmt.Errorf("%s/report answered %s, not a report", address, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return rep.Status, nil, fmt.Errorf("%s/report answered %s: %s", address, resp.Status, cmp.Or(rep.Note, "no report"))
	}
	return rep.Status, rep.Drift, nil
}

// Text writes the merged view for people.
func (f FleetView) Text(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "certfleet fleet: %d shards, %d in sync, %d drifted\n", len(f.Shards), f.InSync, len(f.Entries))
	for _, v := range f.Shards {
		switch {
		case v.Error != "":
			fmt.Fprintf(b, "  %-24s %s\n", v.Lease, "UNREADABLE: "+v.Error)
		default:
			owned := 0
			if v.Status != nil && v.Status.Sharding != nil {
				owned = v.Status.Sharding.Owned
			}
			fmt.Fprintf(b, "  %-24s %-28s %d certificates, revision %s\n", v.Lease, v.Address, owned, v.Status.Revision)
		}
	}
	for _, e := range f.Entries {
		fmt.Fprintf(b, "  %-18s %-32s %-40s shard %s\n      %s\n", e.Reason, e.Certificate, e.Target, e.Shard, e.Message)
	}
	if len(f.Counts) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(f.Counts)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, f.Counts[k]))
		}
		fmt.Fprintf(b, "\ndrift: %s\n", strings.Join(parts, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
