package plan_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/plan"
	"github.com/certfleet/certfleet/schemas"
)

// planReport holds user text with every character some format must escape:
// | and < for Markdown, % and newlines for GitHub messages, : and , for
// GitHub properties.
func planReport() *schemas.Report {
	return &schemas.Report{
		Version: schemas.ReportVersion,
		Command: "plan",
		Base:    &schemas.ReportRevision{Ref: "main", Hash: "0123456789abcdef0123456789abcdef01234567"},
		Head: schemas.ReportRevision{Ref: "feature", Hash: "fedcba9876543210fedcba9876543210fedcba98", Author: "Dev",
			Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		Summary: schemas.ReportSummary{Certificates: 2, Added: 1, Reissued: 1, Removed: 1, Denied: 1, Invalid: 1, Warnings: 1},
		Changes: []schemas.Change{
			{ID: "payments/api", Action: schemas.ActionReissue, File: "teams/a|b.yaml", Line: 12, Fields: []schemas.FieldChange{
				{Field: "spec.dnsNames[2]", New: "api.payments.svc", Reissue: true},
				{Field: "spec.targets[0].kubernetes.secretTemplate.annotations.note", Old: "was <b>", New: "see ```code```"},
			}},
			{ID: "payments/old", Action: schemas.ActionRemove, File: "teams/old.yaml", Line: 1},
			{ID: "web/new", Action: schemas.ActionAdd, File: "teams/web,new:1.yaml", Line: 1, Fields: []schemas.FieldChange{
				{Field: "spec.issuer", New: "fleet", Reissue: true},
			}},
		},
		Certificates: []schemas.CertificateVerdict{
			{ID: "payments/api", File: "teams/a|b.yaml", Line: 1, Issuer: "fleet", Allowed: false, Policies: []string{"internal"},
				Violations: []schemas.LocatedViolation{{Violation: schemas.Violation{Policy: "internal", Reason: schemas.ReasonDNSNameNotAllowed,
					Field: "spec.dnsNames[1]", Value: "evil|<script>", Rule: "dnsNames: [**.svc]",
					Message: "DNS name \"evil|<script>\" is 100% outside [**.svc],\nsee the policy"}, Line: 11, Column: 7}},
			},
			{ID: "web/new", File: "teams/web,new:1.yaml", Line: 1, Issuer: "fleet", Allowed: true, Policies: []string{"internal", "month"},
				Warnings: []schemas.LocatedViolation{{Violation: schemas.Violation{Policy: "month", Reason: schemas.ReasonDurationTooLong,
					Field: "spec.duration", Value: "90d", Message: "duration 90d is longer than 30d"}, Line: 8, Column: 13}},
			},
		},
		Errors: schemas.Errors{{File: "teams/bad%1.yaml", Line: 3, Column: 5, Kind: "Certificate", Name: "Bad", Field: "metadata.name",
			Problem: `name "Bad" is not lower-case`, Hint: "use a|b <names>"}},
		BaseErrors: schemas.Errors{{File: "teams/old.yaml", Line: 2, Column: 1, Problem: "invalid YAML"}},
	}
}

func TestWrite(t *testing.T) {
	cases := []struct {
		name    string
		format  string
		starts  string // the output's beginning
		wantErr string
	}{
		{name: "text is the default", format: "", starts: "certfleet plan: main@0123456789ab → feature@fedcba987654\n"},
		{name: "text", format: "text", starts: "certfleet plan: main@0123456789ab → feature@fedcba987654\n"},
		{name: "json", format: "json", starts: "{\n  \"version\": \"certfleet.dev/report/v1\",\n  \"command\": \"plan\","},
		{name: "markdown", format: "markdown", starts: "### ❌ certfleet plan fails\n"},
		{name: "github", format: "github", starts: "::error file="},
		{name: "an unknown format is an error listing the known ones", format: "yaml",
			wantErr: `unknown output format "yaml": use one of text, json, markdown, github`},
		{name: "formats are case-sensitive", format: "JSON", wantErr: `unknown output format "JSON"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := plan.Write(&buf, planReport(), tc.format, false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want %q", err, tc.wantErr)
				}
				if buf.Len() > 0 {
					t.Errorf("wrote %q with an unknown format", buf.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), tc.starts) {
				t.Errorf("output starts %q, want %q", firstLines(buf.String(), 3), tc.starts)
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

var escapeCode = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestText(t *testing.T) {
	var plain, colored bytes.Buffer
	if err := plan.Text(&plain, planReport(), false); err != nil {
		t.Fatal(err)
	}
	if err := plan.Text(&colored, planReport(), true); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ok   bool
	}{
		{"text without color has no escape codes", !strings.Contains(plain.String(), "\x1b")},
		{"text with color has escape codes", escapeCode.MatchString(colored.String())},
		{"color marks a denied certificate red", strings.Contains(colored.String(), "\x1b[31m✗ payments/api\x1b[0m")},
		{"color marks an addition green", strings.Contains(colored.String(), "\x1b[32m+ web/new\x1b[0m")},
		{"text with color is text without color plus escape codes", escapeCode.ReplaceAllString(colored.String(), "") == plain.String()},
		{"a violation is located by file, line, column and field",
			strings.Contains(plain.String(), "      teams/a|b.yaml:11:7: spec.dnsNames[1]: DNSNameNotAllowed (policy internal): DNS name")},
		{"a reissue lists its fields, old and new",
			strings.Contains(plain.String(), "  ~ payments/api  reissue  teams/a|b.yaml:12\n      spec.dnsNames[2]: (none) → \"api.payments.svc\"\n")},
		{"an addition lists no fields", !strings.Contains(plain.String(), "spec.issuer: (none)")},
		{"a warning names its certificate",
			strings.Contains(plain.String(), "  ! web/new: teams/web,new:1.yaml:8:13: spec.duration: DurationTooLong (policy month): duration 90d")},
		{"an invalid manifest is printed as its error",
			strings.Contains(plain.String(), "Invalid manifests:\n  teams/bad%1.yaml:3:5: Certificate \"Bad\": metadata.name: name \"Bad\" is not lower-case; use a|b <names>\n")},
		{"the verdict and counts come last",
			strings.HasSuffix(plain.String(), "\nfails: 1 to add, 1 to reissue, 0 to update, 1 to remove, 0 unchanged; 1 denied, 1 invalid, 1 warnings\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("plain:\n%s\ncolored:\n%q", plain.String(), colored.String())
			}
		})
	}
}

func TestTextOfACleanValidate(t *testing.T) {
	rep := &schemas.Report{Version: schemas.ReportVersion, Command: "validate", Head: schemas.ReportRevision{Ref: "working tree"},
		Summary: schemas.ReportSummary{Certificates: 3, Unchanged: 3}, Errors: schemas.Errors{}}
	var buf bytes.Buffer
	if err := plan.Text(&buf, rep, false); err != nil {
		t.Fatal(err)
	}
	want := "certfleet validate: working tree\n\npasses: 3 certificates; 0 denied, 0 invalid, 0 warnings\n"
	if buf.String() != want {
		t.Errorf("Text =\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestMarkdown(t *testing.T) {
	var buf bytes.Buffer
	if err := plan.Markdown(&buf, planReport()); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	table := strings.Index(md, "| add | reissue | update | remove | unchanged | denied | invalid | warnings |")
	cases := []struct {
		name string
		ok   bool
	}{
		{"the verdict heading comes first", strings.HasPrefix(md, "### ❌ certfleet plan fails\n\n`main@0123456789ab` → `feature@fedcba987654`\n\n")},
		{"the summary table comes before any section", table > 0 && table < strings.Index(md, "<details")},
		{"the summary table holds the counts", strings.Contains(md, "|---:|---:|---:|---:|---:|---:|---:|---:|\n| 1 | 1 | 0 | 1 | 0 | 1 | 1 | 1 |\n")},
		{"a | in user text is escaped", strings.Contains(md, "`teams/a\\|b.yaml:11`") && strings.Contains(md, `evil\|&lt;script&gt;`)},
		{"a < in user text is escaped", !strings.Contains(md, "<script") && !strings.Contains(md, "<names>")},
		{"a newline in a message does not end the table row",
			strings.Contains(md, "| `payments/api` | `teams/a\\|b.yaml:11` | `spec.dnsNames[1]` | DNSNameNotAllowed (policy internal) | DNS name \"evil\\|&lt;script&gt;\" is 100% outside [**.svc], see the policy |\n")},
		{"an invalid manifest row has its hint", strings.Contains(md, "| `teams/bad%1.yaml:3:5` | `metadata.name` | name \"Bad\" is not lower-case; use a\\|b &lt;names&gt; |\n")},
		{"denials are open, warnings folded", strings.Contains(md, "<details open><summary><b>Denied: 1 violation(s)</b></summary>") &&
			strings.Contains(md, "<details><summary>Warnings: 1</summary>")},
		{"every change is listed", strings.Contains(md, "| ~ | `payments/api` | reissue | `teams/a\\|b.yaml:12` |\n| - | `payments/old` | remove | `teams/old.yaml:1` |\n| + | `web/new` | add | `teams/web,new:1.yaml:1` |\n")},
		{"a value holding a code fence does not close the diff block early",
			strings.Contains(md, "````diff\n+ spec.dnsNames[2]: api.payments.svc\n- spec.targets[0].kubernetes.secretTemplate.annotations.note: was <b>\n+ spec.targets[0].kubernetes.secretTemplate.annotations.note: see ```code```\n````\n")},
		{"an addition has no diff block", !strings.Contains(md, "**`web/new`**")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("markdown:\n%s", md)
			}
		})
	}
}

func TestMarkdownOfAValidate(t *testing.T) {
	rep := &schemas.Report{Version: schemas.ReportVersion, Command: "validate", Head: schemas.ReportRevision{Ref: "main", Hash: "abc"},
		Summary: schemas.ReportSummary{Certificates: 4, Unchanged: 4, Warnings: 0}, Errors: schemas.Errors{}}
	var buf bytes.Buffer
	if err := plan.Markdown(&buf, rep); err != nil {
		t.Fatal(err)
	}
	want := "### ✅ certfleet validate passes\n\n`main@abc`\n\n| certificates | denied | invalid | warnings |\n|---:|---:|---:|---:|\n| 4 | 0 | 0 | 0 |\n\n"
	if buf.String() != want {
		t.Errorf("Markdown =\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestGitHub(t *testing.T) {
	var buf bytes.Buffer
	if err := plan.GitHub(&buf, planReport()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		// % in a property is %25; the message keeps | and < as they are.
		`::error file=teams/bad%251.yaml,line=3,col=5,title=Invalid Certificate::metadata.name: name "Bad" is not lower-case; use a|b <names>`,
		// % and a newline in a message are %25 and %0A; , and : stay.
		`::error file=teams/a|b.yaml,line=11,col=7,title=DNSNameNotAllowed (policy internal)::payments/api: spec.dnsNames[1]: DNS name "evil|<script>" is 100%25 outside [**.svc],%0Asee the policy`,
		// , and : in a property are %2C and %3A.
		`::warning file=teams/web%2Cnew%3A1.yaml,line=8,col=13,title=DurationTooLong (policy month)::web/new: spec.duration: duration 90d is longer than 30d`,
		`::notice file=teams/a|b.yaml,line=12,title=certfleet reissue::payments/api will be reissued`,
		// A removal has no line left in the head to annotate.
		`::notice file=teams/web%2Cnew%3A1.yaml,line=1,title=certfleet add::web/new will be issued`,
		`certfleet plan fails: 1 to add, 1 to reissue, 0 to update, 1 to remove, 0 unchanged; 1 denied, 1 invalid, 1 warnings`,
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GitHub =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGitHubErrors(t *testing.T) {
	cases := []struct {
		name string
		err  *schemas.Error
		want string
	}{
		{
			name: "carriage returns are escaped in properties and messages",
			err:  &schemas.Error{File: "a\r.yaml", Line: 1, Column: 1, Kind: "Certificate", Problem: "one\r\ntwo"},
			want: "::error file=a%0D.yaml,line=1,col=1,title=Invalid Certificate::one%0D%0Atwo",
		},
		{
			name: "invalid YAML, which has no kind, is an invalid manifest",
			err:  &schemas.Error{File: "a.yaml", Line: 4, Column: 1, Problem: "invalid YAML: mapping values are not allowed in this context", Hint: "fix the syntax"},
			want: "::error file=a.yaml,line=4,col=1,title=Invalid manifest::invalid YAML: mapping values are not allowed in this context; fix the syntax",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := plan.GitHub(&buf, &schemas.Report{Command: "validate", Errors: schemas.Errors{tc.err}}); err != nil {
				t.Fatal(err)
			}
			if first := strings.SplitN(buf.String(), "\n", 2)[0]; first != tc.want {
				t.Errorf("first line = %q, want %q", first, tc.want)
			}
		})
	}
}

func TestJSONRoundTrips(t *testing.T) {
	cases := []struct {
		name string
		rep  *schemas.Report
	}{
		{"a plan report", planReport()},
		{"a validate report", &schemas.Report{Version: schemas.ReportVersion, Command: "validate", Head: schemas.ReportRevision{Ref: "working tree"},
			Summary: schemas.ReportSummary{Certificates: 1, Unchanged: 1}, Errors: schemas.Errors{},
			Certificates: []schemas.CertificateVerdict{{ID: "a", File: "a.yaml", Line: 1, Issuer: "fleet", Allowed: true, Policies: []string{}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := plan.Write(&buf, tc.rep, "json", true); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(buf.Bytes(), []byte("\x1b")) {
				t.Errorf("JSON has escape codes: color is for text only")
			}
			var got schemas.Report
			dec := json.NewDecoder(&buf)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, tc.rep) {
				t.Errorf("round trip =\n%+v\nwant\n%+v", got, *tc.rep)
			}
		})
	}
}
