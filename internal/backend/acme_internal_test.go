package backend

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
)

func TestProblemOfCarriesTheProblemDocumentIntoTheError(t *testing.T) {
	rateLimited := &acme.RateLimitedError{ProblemDetails: &acme.ProblemDetails{Type: "urn:ietf:params:acme:error:rateLimited",
		Detail: "too many certificates already issued"}, RetryAfter: 3 * time.Hour}
	tests := []struct {
		name          string
		err           error
		names         []string
		wantMsg       string
		wantPermanent bool
		wantRetry     time.Duration
	}{
		{name: "a rate limit says when to come back", err: fmt.Errorf("new order: %w", rateLimited), names: []string{"a.example.com"},
			wantMsg:   "ACME problem urn:ietf:params:acme:error:rateLimited: too many certificates already issued (the CA asks to retry after 3h0m0s)",
			wantRetry: 3 * time.Hour},
		{name: "a failed challenge names the identifier lego reported it for",
			err: fmt.Errorf("resolver: one or more domains had a problem: [b.example.com: invalid authorization: %w]",
				&acme.ProblemDetails{Type: "urn:ietf:params:acme:error:unauthorized", Detail: "wrong key authorization"}),
			names:   []string{"a.example.com", "b.example.com"},
			wantMsg: "ACME problem urn:ietf:params:acme:error:unauthorized for b.example.com: wrong key authorization"},
		{name: "subproblems name their identifiers; a refused name is permanent",
			err: &acme.ProblemDetails{Type: "urn:ietf:params:acme:error:rejectedIdentifier", Detail: "policy forbids",
				SubProblems: []acme.SubProblem{{Identifier: acme.Identifier{Type: "dns", Value: "c.example.com"}}}},
			wantMsg: "ACME problem urn:ietf:params:acme:error:rejectedIdentifier for c.example.com: policy forbids", wantPermanent: true},
		{name: "an error without a problem document passes unchanged", err: errors.New("dial tcp: connection refused"),
			wantMsg: "dial tcp: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problemOf(tt.err, tt.names)
			if got.Error() != tt.wantMsg {
				t.Errorf("message\n got %s\nwant %s", got, tt.wantMsg)
			}
			if Permanent(got) != tt.wantPermanent {
				t.Errorf("Permanent = %v, want %v", Permanent(got), tt.wantPermanent)
			}
			if RetryAfter(got) != tt.wantRetry {
				t.Errorf("RetryAfter = %s, want %s", RetryAfter(got), tt.wantRetry)
			}
		})
	}
}
