// Package fleetpage is the fleet page: the daemon's read-only HTML view of
// the same report, drift, verdict and inventory types that /report, drift
// and the metrics use. It holds no model of its own, and never a key: the
// types it reads carry none.
package fleetpage

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

// Fleet is what the page shows: the daemon's last pass.
type Fleet struct {
	Now          time.Time
	Revision     string
	RevisionTime time.Time
	LastPass     time.Time
	NextPass     time.Time
	Result       *reconcile.Result
	Drift        *reconcile.DriftReport
	Verdicts     map[string]schemas.CertificateVerdict
	Catalog      *schemas.Catalog
	// Inventory is the inventory after the pass (a copy the page may keep).
	Inventory map[string]*inventory.Entry
	// AuditLog is the path of the audit log the history is read from.
	AuditLog string
}

// Counts are the overview's numbers: targets by state.
type Counts struct {
	Certificates int
	Targets      int
	InSync       int
	Renewing     int
	Failing      int
	Denied       int
	Unmanaged    int
	// Drifting counts drifting targets by reason (not counting the states above).
	Drifting map[decide.Reason]int
}

// CountsOf counts the targets of a pass by state. A failing target counts
// as failing whatever its reason; renewing is Expiring or Expired.
func CountsOf(r *reconcile.Result, inv map[string]*inventory.Entry) Counts {
	c := Counts{Certificates: len(inv), Drifting: map[decide.Reason]int{}}
	if r == nil {
		return c
	}
	for _, s := range r.State {
		c.Targets++
		switch {
		case s.FailingSince != nil:
			c.Failing++
		case s.Reason == decide.InSync:
			c.InSync++
		case s.Reason == decide.Unmanaged:
			c.Unmanaged++
		case s.Reason == decide.PolicyViolation:
			c.Denied++
		case s.Reason == decide.Expiring || s.Reason == decide.Expired || s.Reason == decide.RenewalRequested:
			c.Renewing++
		default:
			c.Drifting[s.Reason]++
		}
	}
	return c
}

// Days is the timeline's span.
const Days = 90

// Buckets counts expiries per day from now's day (UTC): bucket i holds the
// times in [day0+i, day0+i+1). Times before day0 or past the span are left
// out: an expired certificate is in the drift table, not on the timeline.
func Buckets(now time.Time, days int, times []time.Time) []int {
	out := make([]int, days)
	day0 := now.UTC().Truncate(24 * time.Hour)
	for _, t := range times {
		if t.Before(day0) {
			continue
		}
		if i := int(t.Sub(day0) / (24 * time.Hour)); i < days {
			out[i]++
		}
	}
	return out
}

// Mark is an authority's expiry on the timeline.
type Mark struct {
	Name     string
	Type     string
	NotAfter time.Time
}

// AuthorityMarks are the catalog's authorities (and their rotated-out
// issuers still trusted) that expire, soonest first.
func AuthorityMarks(cat *schemas.Catalog) []Mark {
	if cat == nil {
		return nil
	}
	var out []Mark
	for _, n := range slices.Sorted(maps.Keys(cat.Authorities)) {
		a := cat.Authorities[n]
		if a.Status.NotAfter != nil {
			out = append(out, Mark{Name: n, Type: string(a.Spec.Type), NotAfter: *a.Status.NotAfter})
		}
		for _, p := range a.Status.PreviousIssuers {
			out = append(out, Mark{Name: n + " (previous issuer)", Type: string(a.Spec.Type), NotAfter: p.NotAfter})
		}
	}
	slices.SortStableFunc(out, func(a, b Mark) int { return a.NotAfter.Compare(b.NotAfter) })
	return out
}

// Query is a search over the inventory; empty fields select everything.
// Text matches any of the names, the issuer, the owner, a cluster or the
// file, as a case-insensitive substring.
type Query struct {
	Text     string
	SAN      string
	Owner    string
	Issuer   string
	Cluster  string
	Path     string
	Expiring time.Duration
}

// Empty says the query selects everything.
func (q Query) Empty() bool { return q == Query{} }

func names(e *inventory.Entry) []string {
	n := append([]string{e.CommonName}, e.DNSNames...)
	return append(append(append(n, e.URIs()...), e.IPAddresses()...), e.EmailAddresses()...)
}

func has(s, sub string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(sub)) }

func anyHas(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return has(s, sub) })
}

// Match says whether q selects e at now.
func (q Query) Match(e *inventory.Entry, now time.Time) bool {
	var clusters []string
	for _, t := range e.Targets {
		clusters = append(clusters, t.Cluster)
	}
	switch {
	case q.SAN != "" && !anyHas(names(e), q.SAN),
		q.Owner != "" && !has(e.Author, q.Owner),
		q.Issuer != "" && !has(e.Issuer, q.Issuer),
		q.Cluster != "" && !anyHas(clusters, q.Cluster),
		q.Path != "" && !has(e.File, q.Path),
		q.Expiring > 0 && e.NotAfter.After(now.Add(q.Expiring)):
		return false
	}
	if q.Text == "" {
		return true
	}
	all := append(names(e), e.ID, e.Issuer, e.Author, e.File)
	return anyHas(append(all, clusters...), q.Text)
}

// Search is the entries q selects, soonest expiry first.
func Search(inv map[string]*inventory.Entry, q Query, now time.Time) []*inventory.Entry {
	out := []*inventory.Entry{}
	for _, e := range inv {
		if q.Match(e, now) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *inventory.Entry) int {
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), strings.Compare(a.ID, b.ID))
	})
	return out
}

// History is a certificate's audit chain, oldest first.
func History(auditLog, id string) ([]inventory.Event, error) {
	f, err := os.Open(auditLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return historyOf(f, id)
}

func historyOf(r io.Reader, id string) ([]inventory.Event, error) {
	var out []inventory.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// A cheap test first: the log holds every certificate's events.
		if !strings.Contains(string(line), `"certificate":"`+id+`"`) {
			continue
		}
		var ev inventory.Event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Certificate != id {
			continue
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// Owner is the best guess at who owns an unmanaged Secret, and why.
type Owner struct {
	Who, Why string
}

// GuessOwner names the owner of an unmanaged TLS Secret: a declared
// certificate with the same name (its file and its author), else one whose
// certificate name the Secret's name starts with, else the namespace.
func GuessOwner(secret reconcile.TargetState, inv map[string]*inventory.Entry) Owner {
	name := secret.Target[strings.LastIndex(secret.Target, "/")+1:]
	base := strings.TrimSuffix(strings.TrimSuffix(name, "-tls"), "-cert")
	var prefix *inventory.Entry
	for _, id := range slices.Sorted(maps.Keys(inv)) {
		e := inv[id]
		certName := id[strings.LastIndex(id, "/")+1:]
		if certName == base || certName == name {
			return Owner{Who: ownerOf(e), Why: "same name as " + id + " declared in " + e.File}
		}
		if prefix == nil && strings.HasPrefix(base, certName) {
			prefix = e
		}
	}
	if prefix != nil {
		return Owner{Who: ownerOf(prefix), Why: "name starts with " + prefix.ID + " declared in " + prefix.File}
	}
	if secret.Namespace != "" {
		return Owner{Who: "namespace " + secret.Namespace, Why: "no declared certificate shares its name"}
	}
	return Owner{Who: "unknown", Why: "no declared certificate shares its name"}
}

func ownerOf(e *inventory.Entry) string { return cmp.Or(e.Author, e.File) }
