package monitoring_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/certfleet/certfleet/internal/testbed"
)

const metricsSource = "../../reconciler/serve/metrics.go"

// TestAlertRulesPassPromtool runs promtool from the test bed: the rules load
// as Prometheus loads them, and alerts_test.yaml's cases pass.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool, err := testbed.Binary("promtool")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func alertRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	readYAML(t, "alerts.yaml", &f)
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yaml has no rules")
	}
	return out
}

var byClause = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)

// TestAlertRulesAreWellFormed checks what promtool does not: every alert says
// how bad it is and what it is about, naming every label it keeps, and
// queries only metrics the daemon exports.
func TestAlertRulesAreWellFormed(t *testing.T) {
	known := knownMetrics(t)
	seen := map[string]bool{}
	for _, r := range alertRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			if r.Alert == "" {
				t.Fatalf("a rule without an alert name (recording rules belong elsewhere): %q", r.Expr)
			}
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("severity is %q; want critical, warning or info", s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("no %s annotation", a)
				}
			}
			// Every label an aggregation keeps tells the reader which
			// certificate, target or source the alert is about.
			for _, m := range byClause.FindAllStringSubmatch(r.Expr, -1) {
				for _, l := range strings.Split(m[1], ",") {
					if l = strings.TrimSpace(l); l != "" && !strings.Contains(r.Annotations["description"], "$labels."+l) {
						t.Errorf("the description does not name label %s, which the alert keeps", l)
					}
				}
			}
			for _, name := range metricNames(r.Expr) {
				if !known[name] {
					t.Errorf("expr queries %s, which reconciler/serve/metrics.go does not define", name)
				}
			}
		})
	}
}

type ruleTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name      string `json:"name"`
		AlertTest []struct {
			Alertname string            `json:"alertname"`
			ExpAlerts []json.RawMessage `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertIsTestedFiringAndQuiet keeps alerts_test.yaml complete: each
// alert has a case where it fires and one where it must not.
func TestEveryAlertIsTestedFiringAndQuiet(t *testing.T) {
	var f ruleTests
	readYAML(t, "alerts_test.yaml", &f)
	if !slices.Equal(f.RuleFiles, []string{"alerts.yaml"}) {
		t.Errorf("rule_files = %v, want [alerts.yaml]", f.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] {
			t.Errorf("alerts_test.yaml has no case where %s fires", r.Alert)
		}
		if !quiet[r.Alert] {
			t.Errorf("alerts_test.yaml has no case where %s must stay quiet", r.Alert)
		}
	}
}

// TestDashboardQueriesExportedMetrics checks dashboard.json is a Grafana
// dashboard whose every query names only metrics the daemon exports, so a
// renamed metric breaks this test rather than a panel.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	known := knownMetrics(t)
	for _, p := range dashboardProblems(b, known) {
		t.Error(p)
	}
	// The check itself catches a panel querying a metric the daemon lacks.
	broken := strings.Replace(string(b), "certfleet_issuance_total", "certfleet_issuances_total", 1)
	if broken == string(b) {
		t.Fatal("the dashboard does not query certfleet_issuance_total")
	}
	problems := dashboardProblems([]byte(broken), known)
	if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "queries certfleet_issuances_total, which") }) {
		t.Errorf("a panel querying certfleet_issuances_total passed the check; problems: %q", problems)
	}
}

// TestDashboardQueriesParse has promtool parse every panel's query, with
// Grafana's variables replaced by values, as a recording rule.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := testbed.Binary("promtool")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1d", "${__range}", "1d", "$job", ".*", "$cluster", ".*")
	type rec struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rec
	for _, q := range d.queries() {
		rules = append(rules, rec{Record: fmt.Sprintf("dashboard:panel_%d:%s", q.panel, strings.ToLower(q.refID)), Expr: vars.Replace(q.expr)})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/dashboard-queries.yaml"
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s\n%s", err, msg, out)
	}
}

// dashboard is the part of Grafana's dashboard model the test reads.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// panels lists every panel, those inside collapsed rows too.
func (d *dashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

type query struct {
	panel              int
	title, refID, expr string
}

func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.panels() {
		for _, q := range p.Targets {
			out = append(out, query{p.ID, p.Title, q.RefID, q.Expr})
		}
	}
	return out
}

var (
	labelValues = regexp.MustCompile(`^\s*label_values\(\s*(?:([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s*,\s*)?(\w+)\s*\)\s*$`)
	grafanaVar  = regexp.MustCompile(`\$\{?(\w+)`)
)

// dashboardProblems says what is wrong with a dashboard: not JSON, no
// datasource variable, a panel off the grid or without the variable, and
// above all a query of a metric that is not in known.
func dashboardProblems(b []byte, known map[string]bool) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return []string{fmt.Sprintf("dashboard.json is not valid JSON: %v", err)}
	}
	if d.Title == "" || d.UID == "" {
		bad("the dashboard has no title or uid")
	}
	if d.SchemaVersion < 36 {
		bad("schemaVersion %d; want 36 or later (datasources referenced by uid)", d.SchemaVersion)
	}
	variables := map[string]bool{}
	for _, v := range d.Templating.List {
		variables[v.Name] = true
		switch v.Type {
		case "datasource":
			if v.Query != "prometheus" {
				bad("datasource variable %s selects %v; want prometheus", v.Name, v.Query)
			}
		case "query":
			q, _ := v.Query.(string)
			if m, ok := v.Query.(map[string]any); ok {
				q, _ = m["query"].(string)
			}
			m := labelValues.FindStringSubmatch(q)
			if m == nil {
				bad("variable %s: query %q is not label_values(metric, label)", v.Name, q)
				continue
			}
			if m[1] != "" && !known[m[1]] {
				bad("variable %s queries %s, which reconciler/serve/metrics.go does not define", v.Name, m[1])
			}
		}
	}
	if !variables["datasource"] {
		bad("no datasource variable: the dashboard would be tied to one Prometheus")
	}
	ids := map[int]bool{}
	for _, p := range d.panels() {
		if ids[p.ID] {
			bad("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			bad("panel %q has no gridPos inside Grafana's 24 columns", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			bad("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			bad("panel %q has no query", p.Title)
		}
	}
	queried := map[string]bool{}
	for _, q := range d.queries() {
		names := metricNames(q.expr)
		if len(names) == 0 {
			bad("panel %q, query %s: %q queries no metric", q.title, q.refID, q.expr)
		}
		for _, n := range names {
			queried[n] = true
			if !known[n] {
				bad("panel %q, query %s queries %s, which reconciler/serve/metrics.go does not define", q.title, q.refID, n)
			}
		}
		for _, v := range grafanaVar.FindAllStringSubmatch(q.expr, -1) {
			if !variables[v[1]] && !strings.HasPrefix(v[1], "__") {
				bad("panel %q uses variable $%s, which the dashboard does not define", q.title, v[1])
			}
		}
	}
	// Every certfleet metric is on the dashboard somewhere.
	for _, name := range slices.Sorted(maps.Keys(known)) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "certfleet_") && !queried[name] && !queried[base+"_bucket"] && !queried[base+"_count"] {
			bad("no panel shows %s", name)
		}
	}
	return problems
}

// knownMetrics parses the metric names out of the daemon's metrics.go (a
// histogram's with its _bucket, _sum and _count series), plus the up series
// Prometheus adds to every scrape.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, metricsSource, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"up": true}
	histograms := 0
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, err := strconv.Unquote(n.Value); n.Kind == token.STRING && err == nil && strings.HasPrefix(s, "certfleet_") {
				known[s] = true
			}
		case *ast.CompositeLit:
			sel, ok := n.Type.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "HistogramOpts" {
				return true
			}
			for _, e := range n.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok && fmt.Sprint(kv.Key) == "Name" {
					if lit, ok := kv.Value.(*ast.BasicLit); ok {
						name, _ := strconv.Unquote(lit.Value)
						histograms++
						for _, suffix := range []string{"_bucket", "_sum", "_count"} {
							known[name+suffix] = true
						}
					}
				}
			}
		}
		return true
	})
	// A guard against the parse silently finding nothing after metrics.go changes shape.
	if len(known) < 10 || histograms == 0 {
		t.Fatalf("found only %v (%d histograms) in %s", slices.Sorted(maps.Keys(known)), histograms, metricsSource)
	}
	return known
}

var (
	promStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promTokens   = regexp.MustCompile(`\$\{?\w+\}?|\d[\w.]*|[a-zA-Z_:][\w:]*`)
	promKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true}
)

// metricNames returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges, grouping clauses,
// function calls, keywords, numbers and Grafana variables are set aside.
func metricNames(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promTokens.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		switch {
		case tok[0] == '$', tok[0] >= '0' && tok[0] <= '9', promKeywords[tok], strings.HasPrefix(rest, "("):
			continue
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"a bare selector", `certfleet_certificate_ready`, []string{"certfleet_certificate_ready"}},
		{"matchers, strings and variables are not metrics", `certfleet_certificate_ready{cluster=~"$cluster", namespace!="a b"} == 0`,
			[]string{"certfleet_certificate_ready"}},
		{"functions, grouping and ranges are not metrics",
			`histogram_quantile(0.99, sum by (le) (rate(certfleet_reconcile_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))`,
			[]string{"certfleet_reconcile_duration_seconds_bucket"}},
		{"both sides of a binary operation", `count(foo_total) - sum without (pod) (up) > bool 1e3 offset 5m`, []string{"foo_total", "up"}},
		{"a grouping after the aggregation", `sum(certfleet_certificate_drift) by (reason) or on (reason) vector(0)`, []string{"certfleet_certificate_drift"}},
		{"a misspelt metric is still a metric", `min(certfleet_certificate_not_after_seconds) - time()`, []string{"certfleet_certificate_not_after_seconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
			}
		})
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
