package fleetpage

import (
	"cmp"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/reconciler/reconcile"
	"github.com/certfleet/certfleet/schemas"
)

//go:embed assets
var assets embed.FS

// Assets are the page's static files (served under /assets/): embedded,
// so the page works offline and loads nothing from elsewhere.
func Assets() fs.FS { sub, _ := fs.Sub(assets, "assets"); return sub }

// MaxResults bounds the search results one page lists.
const MaxResults = 500

var page = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
	"names": func(e *inventory.Entry) []string {
		return slices.DeleteFunc(names(e), func(s string) bool { return s == "" })
	},
	"age": func(t, now time.Time) string { return round(now.Sub(t)) },
	"when": func(t, now time.Time) string {
		switch {
		case t.IsZero():
			return "not yet"
		case t.After(now):
			return "in " + round(t.Sub(now))
		}
		return round(now.Sub(t)) + " ago"
	},
}).ParseFS(assets, "assets/page.html"))

func round(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Second).String()
}

// DriftRow is one line of the drift table, with where it is declared.
type DriftRow struct {
	reconcile.DriftEntry
	Where string
}

// Unmanaged is one unmanaged Secret and its best-guess owner.
type Unmanaged struct {
	State reconcile.TargetState
	Owner Owner
}

// Overview writes the fleet page: the counts, the timeline, the search
// (q) and its results, the drift table and the unmanaged Secrets.
func Overview(w io.Writer, f *Fleet, q Query) error {
	var expiries []time.Time
	for _, e := range f.Inventory {
		expiries = append(expiries, e.NotAfter)
	}
	marks := AuthorityMarks(f.Catalog)
	data := struct {
		Fleet     *Fleet
		Counts    Counts
		Days      int
		Timeline  template.HTML
		Marks     []Mark
		Query     Query
		Expiring  string
		Error     string
		Results   []*inventory.Entry
		More      int
		Drift     []DriftRow
		Unmanaged []Unmanaged
	}{Fleet: f, Counts: CountsOf(f.Result, f.Inventory), Days: Days, Marks: marks, Query: q,
		Timeline: Timeline(f.Now, Buckets(f.Now, Days, expiries), marks)}
	if q.Expiring > 0 {
		data.Expiring = q.Expiring.String()
	}
	data.Results = Search(f.Inventory, q, f.Now)
	if n := len(data.Results); n > MaxResults {
		data.Results, data.More = data.Results[:MaxResults], n-MaxResults
	}
	if f.Drift != nil {
		for _, e := range f.Drift.Entries {
			if e.Reason == decide.Unmanaged {
				continue
			}
			data.Drift = append(data.Drift, DriftRow{DriftEntry: e, Where: f.where(e.Certificate, e.File)})
		}
	}
	if f.Result != nil {
		for _, s := range f.Result.State {
			if s.Reason == decide.Unmanaged {
				data.Unmanaged = append(data.Unmanaged, Unmanaged{State: s, Owner: GuessOwner(s, f.Inventory)})
			}
		}
	}
	return page.ExecuteTemplate(w, "overview", data)
}

// where is a certificate's file:line, from its verdict (file alone without one).
func (f *Fleet) where(id, file string) string {
	if v, ok := f.Verdicts[id]; ok && v.File != "" {
		return fmt.Sprintf("%s:%d", v.File, v.Line)
	}
	return file
}

// ErrUnknown is returned for a certificate neither declared nor in the inventory.
var ErrUnknown = fmt.Errorf("no such certificate")

// Facts are what the certificate page and `certfleet status` show of one
// certificate: its record, where it is declared, the policies' verdict, its
// chain, its targets and its history.
type Facts struct {
	Entry   *inventory.Entry            `json:"entry"`
	Where   string                      `json:"where"`
	Verdict *schemas.CertificateVerdict `json:"verdict,omitempty"`
	Chain   []string                    `json:"chain"`
	Targets []reconcile.TargetState     `json:"targets"`
	History []inventory.Event           `json:"history"`
}

// FactsOf gathers a certificate's facts (ErrUnknown when it is neither
// declared nor in the inventory).
func FactsOf(f *Fleet, id string) (*Facts, error) {
	e, ok := f.Inventory[id]
	v, declared := f.Verdicts[id]
	if !ok && !declared {
		return nil, fmt.Errorf("%w: %q is neither declared at %s nor in the inventory", ErrUnknown, id, f.Revision)
	}
	if !ok {
		e = &inventory.Entry{ID: id, File: v.File, Issuer: v.Issuer}
	}
	e = e.Reported()
	hist, err := History(f.AuditLog, id)
	if err != nil {
		return nil, err
	}
	facts := &Facts{Entry: e, Where: f.where(id, e.File), Chain: Chain(f.Catalog, e.Issuer), History: hist, Targets: []reconcile.TargetState{}}
	if declared {
		facts.Verdict = &v
	}
	if f.Result != nil {
		for _, s := range f.Result.State {
			if s.Certificate == id {
				facts.Targets = append(facts.Targets, s)
			}
		}
	}
	return facts, nil
}

// Certificate writes a certificate's page.
func Certificate(w io.Writer, f *Fleet, id string) error {
	facts, err := FactsOf(f, id)
	if err != nil {
		return err
	}
	return page.ExecuteTemplate(w, "certificate", facts)
}

// Chain is the issuer and the authorities above it, nearest first.
func Chain(cat *schemas.Catalog, issuer string) []string {
	if cat == nil || issuer == "" {
		return nil
	}
	out := []string{"issuer " + issuer}
	iss, ok := cat.Issuers[issuer]
	if !ok {
		return out
	}
	seen := map[string]bool{}
	for name := iss.Spec.Authority; name != "" && !seen[name]; {
		seen[name] = true
		a, ok := cat.Authorities[name]
		if !ok {
			return append(out, "authority "+name+" (not in the catalog)")
		}
		line := fmt.Sprintf("%s %s (%s)", a.Spec.Type, name, a.Spec.CommonName)
		if a.Status.NotAfter != nil {
			line += ", expires " + a.Status.NotAfter.UTC().Format("2006-01-02")
		}
		out = append(out, line)
		name = a.Spec.Parent
	}
	return out
}

// Timeline draws the buckets as an SVG bar chart, one bar a day, with a
// line at each authority's expiry.
func Timeline(now time.Time, buckets []int, marks []Mark) template.HTML {
	const barW, h, top = 8, 120, 14
	peak := max(slices.Max(append([]int{1}, buckets...)), 1)
	b := &strings.Builder{}
	width := len(buckets)*barW + 40
	fmt.Fprintf(b, `<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="certificates expiring per day">`, width, h+top+20)
	fmt.Fprintf(b, `<text x="0" y="10">%d</text>`, peak)
	day0 := now.UTC().Truncate(24 * time.Hour)
	for i, n := range buckets {
		if i%15 == 0 {
			fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`, 20+i*barW, h+top+14, day0.AddDate(0, 0, i).Format("Jan 2"))
		}
		if n == 0 {
			continue
		}
		bh := max(n*h/peak, 2)
		fmt.Fprintf(b, `<rect class="bar" data-day="%s" data-count="%d" x="%d" y="%d" width="%d" height="%d" fill="#3a6ea5"><title>%s: %d</title></rect>`,
			day0.AddDate(0, 0, i).Format("2006-01-02"), n, 20+i*barW, top+h-bh, barW-1, bh, day0.AddDate(0, 0, i).Format("2006-01-02"), n)
	}
	for _, m := range marks {
		i := int(m.NotAfter.Sub(day0) / (24 * time.Hour))
		if m.NotAfter.Before(day0) || i >= len(buckets) {
			continue
		}
		x := 20 + i*barW + barW/2
		fmt.Fprintf(b, `<line class="authority" x1="%d" x2="%d" y1="%d" y2="%d" stroke="#b00" stroke-dasharray="3,2"><title>%s</title></line>`,
			x, x, top, top+h, template.HTMLEscapeString(cmp.Or(m.Type, "authority")+" "+m.Name+" expires "+m.NotAfter.UTC().Format("2006-01-02")))
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="#b00">%s</text>`, x+2, top+8, template.HTMLEscapeString(m.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// DriftPage writes a drift report as one self-contained HTML page (its
// style inline, nothing loaded from elsewhere), for a CI job's artifacts.
func DriftPage(w io.Writer, rep *reconcile.DriftReport, verdicts map[string]schemas.CertificateVerdict) error {
	css, err := fs.ReadFile(assets, "assets/style.css")
	if err != nil {
		return err
	}
	f := &Fleet{Verdicts: verdicts}
	var rows []DriftRow
	for _, e := range rep.Entries {
		rows = append(rows, DriftRow{DriftEntry: e, Where: f.where(e.Certificate, e.File)})
	}
	return page.ExecuteTemplate(w, "drift", struct {
		Report *reconcile.DriftReport
		Rows   []DriftRow
		CSS    template.CSS
	}{rep, rows, template.CSS(css)})
}
