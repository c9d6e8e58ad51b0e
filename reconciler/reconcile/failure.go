package reconcile

import (
	"strings"

	"github.com/certfleet/certfleet/reconciler/inventory"
)

// Failure is one thing a pass could not do; the next pass retries it.
type Failure struct {
	// What was being done or what failed: "observing kubernetes/beta",
	// a certificate ID, "<certificate> → <target>" ("" when Err says it all).
	What string
	Err  string
}

// failed is a Failure of what, with err's text.
func failed(what string, err error) Failure { return Failure{What: what, Err: err.Error()} }

// String is the failure as one line: "what: error".
func (f Failure) String() string {
	if f.What == "" {
		return f.Err
	}
	return f.What + ": " + f.Err
}

// MarshalText keeps a failure one string in JSON output.
func (f Failure) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// Failures are a pass's or a certificate's failures.
type Failures []Failure

// String joins the failures with "; " (the inventory's LastError).
func (fs Failures) String() string {
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = f.String()
	}
	return strings.Join(lines, "; ")
}

// Issuance is what certfleet_issuance_total counts by: the issuer and the
// result.
type Issuance struct {
	Issuer string
	Result IssuanceResult
}

// IssuanceResult is how an issuance ended.
type IssuanceResult string

const (
	// Issued: the backend signed the certificate.
	Issued IssuanceResult = "success"
	// IssueFailed: a transient failure, retried with backoff.
	IssueFailed IssuanceResult = "failure"
	// IssueRefused: a permanent failure (the issuer's role refused it),
	// not retried until the declaration or the catalog changes.
	IssueRefused IssuanceResult = "refused"
)

// resultOf is the result of an issuance that ended with err.
func resultOf(err error) IssuanceResult {
	switch {
	case err == nil:
		return Issued
	case inventory.KindOf(err) == inventory.Permanent:
		return IssueRefused
	}
	return IssueFailed
}
