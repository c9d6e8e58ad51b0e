package schemas

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/invalid")

// checkFile is what `certfleet validate` does with one file: decode it,
// expand and validate the certificates, validate the other kinds. It
// returns every error, sorted, one Error() per line.
func checkFile(file string, data []byte) string {
	dec := Decode(file, data)
	all := dec.Errors
	for _, d := range dec.Documents {
		switch d.Object.(type) {
		case *Certificate, *CertificateSet:
			_, errs := Declarations(d)
			all = append(all, errs...)
		default:
			all = append(all, d.Locate(Validate(d.Object))...)
		}
	}
	all.Sort()
	var b strings.Builder
	for _, e := range all {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestGoldenErrors compares the errors of each testdata/invalid/*.yaml with
// its .golden file; `go test ./schemas -run TestGoldenErrors -update`
// rewrites them. Read a changed golden file before committing it: each line
// must say where, which object, which field, what is wrong and what is right.
func TestGoldenErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/invalid/*.yaml: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := checkFile(filepath.ToSlash(file), data)
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./schemas -run TestGoldenErrors -update)", err)
			}
			if got != string(want) {
				t.Errorf("errors of %s differ from %s (rerun with -update if the change is intended):\n%s", file, golden, lineDiff(string(want), got))
			}
			if got == "" {
				t.Errorf("%s has no errors; files under testdata/invalid must have some", file)
			}
			// Every error is placed on a line of the file and names its file.
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
				if !strings.HasPrefix(l, filepath.ToSlash(file)+":") {
					t.Errorf("an error without its file: %s", l)
				}
			}
			dec := Decode(file, data)
			for _, e := range dec.Errors {
				if e.Line < 1 || e.Line > lines || e.Column < 1 {
					t.Errorf("an error outside the file: %s", e)
				}
			}
		})
	}
}

// lineDiff shows the lines only one side has.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	inW, inG := map[string]bool{}, map[string]bool{}
	for _, l := range w {
		inW[l] = true
	}
	for _, l := range g {
		inG[l] = true
	}
	var b strings.Builder
	for _, l := range w {
		if !inG[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !inW[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
