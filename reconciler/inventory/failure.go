package inventory

import "strings"

// Failure is one thing a pass could not do; the next pass retries it.
type Failure struct {
	// What was being done or what failed: "observing kubernetes/beta",
	// a certificate ID, "<certificate> → <target>" ("" when Err says it all).
	What string
	Err  string
}

// Failed is a Failure of what, with err's text.
func Failed(what string, err error) Failure { return Failure{What: what, Err: err.Error()} }

// String is the failure as one line: "what: error".
func (f Failure) String() string {
	if f.What == "" {
		return f.Err
	}
	return f.What + ": " + f.Err
}

// MarshalText keeps a failure one string in JSON output and in the
// inventory.
func (f Failure) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads a failure back as the one line it was written as.
func (f *Failure) UnmarshalText(b []byte) error {
	*f = Failure{Err: string(b)}
	return nil
}

// Failures are a pass's or a certificate's failures.
type Failures []Failure

// String joins the failures with "; ", for a log line.
func (fs Failures) String() string {
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = f.String()
	}
	return strings.Join(lines, "; ")
}
