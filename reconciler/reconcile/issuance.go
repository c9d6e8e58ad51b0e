package reconcile

import (
	"github.com/certfleet/certfleet/reconciler/inventory"
)

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
