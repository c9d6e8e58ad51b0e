package backend

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/lego"
	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/schemas"
)

// RenewalWindow is the span an ACME CA suggests renewing a certificate in
// (ACME Renewal Information, RFC 9773).
type RenewalWindow struct{ Start, End time.Time }

// ErrNoARI is the failure of asking a CA that offers no renewal
// information: its directory names no renewalInfo endpoint.
var ErrNoARI = errors.New("the ACME CA offers no renewal information (ARI)")

const (
	// ariRecheck is how long an answer is kept when the CA gives no
	// Retry-After, and how long a CA without ARI is not asked again.
	ariRecheck = 6 * time.Hour
	// ariRetryFailed is how long a failed request is not repeated.
	ariRetryFailed = time.Hour
	// ariMinRecheck and ariMaxRecheck bound the CA's Retry-After, as RFC
	// 9773 suggests clients do.
	ariMinRecheck, ariMaxRecheck = time.Minute, 24 * time.Hour
	// ariTimeout bounds one renewalInfo request.
	ariTimeout = 15 * time.Second
	// ariConcurrency bounds the requests in flight for one issuer.
	ariConcurrency = 8
)

// ariAnswer is a cached renewalInfo answer: a window or a failure, kept
// until the time the CA (or certfleet's default) says to ask again.
type ariAnswer struct {
	window *RenewalWindow
	err    error
	until  time.Time
}

// ariCache holds answers by directory and serial, so a pass asks about a
// certificate only once per Retry-After, not on every pass.
type ariCache struct {
	mu      sync.Mutex
	answers map[string]ariAnswer
	// requests counts renewalInfo requests made (for tests).
	requests int
}

// RenewalWindows asks the ACME CA of iss for the renewal window of each
// leaf, by serial (pki.Serial). Answers — failures too — are reused until
// the CA's Retry-After (6 h when it gives none, an hour after a failure), so
// most passes cost no request. errs holds the failures of the requests this
// call made (ErrNoARI for a CA without ARI); a leaf without a window renews
// at its lifetime-based time, so a failure never blocks anything. Backends
// without ACME give nothing.
func RenewalWindows(ctx context.Context, b Backend, iss *schemas.Issuer, leaves []*x509.Certificate, now time.Time) (
	windows map[string]RenewalWindow, errs map[string]error) {
	s, ok := acmeOf(b)
	if !ok || iss.Spec.ACME == nil {
		return nil, nil
	}
	return s.renewalWindows(ctx, iss.Spec.ACME, leaves, now)
}

// ARIRequests is how many renewalInfo requests b has made.
func ARIRequests(b Backend) int {
	s, ok := acmeOf(b)
	if !ok {
		return 0
	}
	s.ari.mu.Lock()
	defer s.ari.mu.Unlock()
	return s.ari.requests
}

func (s *acmeSigner) renewalWindows(ctx context.Context, a *schemas.ACMEIssuer, leaves []*x509.Certificate, now time.Time) (
	map[string]RenewalWindow, map[string]error) {
	windows, errs := map[string]RenewalWindow{}, map[string]error{}
	key := func(leaf *x509.Certificate) string { return a.Server + "\x00" + pki.Serial(leaf.SerialNumber) }
	var ask []*x509.Certificate
	s.ari.mu.Lock()
	if s.ari.answers == nil {
		s.ari.answers = map[string]ariAnswer{}
	}
	for k, ans := range s.ari.answers {
		if !now.Before(ans.until) {
			delete(s.ari.answers, k) // stale: asked again below, or of a certificate gone
		}
	}
	for _, leaf := range leaves {
		if ans, ok := s.ari.answers[key(leaf)]; ok {
			if ans.window != nil {
				windows[pki.Serial(leaf.SerialNumber)] = *ans.window
			}
			continue
		}
		ask = append(ask, leaf)
	}
	s.ari.mu.Unlock()
	if len(ask) == 0 {
		return windows, errs
	}
	var mu sync.Mutex
	keep := func(leaf *x509.Certificate, ans ariAnswer) {
		mu.Lock()
		defer mu.Unlock()
		serial := pki.Serial(leaf.SerialNumber)
		if ans.window != nil {
			windows[serial] = *ans.window
		}
		if ans.err != nil {
			errs[serial] = ans.err
		}
		s.ari.mu.Lock()
		s.ari.answers[key(leaf)] = ans
		s.ari.mu.Unlock()
	}
	client, err := s.ariClient(a)
	if err != nil {
		for _, leaf := range ask {
			keep(leaf, ariAnswer{err: err, until: now.Add(ariRetryFailed)})
		}
		return windows, errs
	}
	g := new(errgroup.Group)
	g.SetLimit(ariConcurrency)
	for _, leaf := range ask {
		g.Go(func() error {
			rctx, cancel := context.WithTimeout(ctx, ariTimeout)
			defer cancel()
			info, err := client.Certificate.GetRenewalInfo(rctx, leaf)
			if !errors.Is(err, api.ErrNoARI) {
				// lego answers ErrNoARI without a request when the directory has no ARI.
				s.ari.mu.Lock()
				s.ari.requests++
				s.ari.mu.Unlock()
			}
			switch {
			case ctx.Err() != nil:
				// The pass was cancelled: no answer to keep, the next pass asks.
				return nil
			case errors.Is(err, api.ErrNoARI):
				// Also what lego answers for a window whose end is not after its start.
				keep(leaf, ariAnswer{err: ErrNoARI, until: now.Add(ariRecheck)})
			case err != nil:
				keep(leaf, ariAnswer{err: fmt.Errorf("asking for the renewal window: %w", problemOf(err, nil)), until: now.Add(ariRetryFailed)})
			default:
				recheck := ariRecheck
				if info.RetryAfter > 0 {
					recheck = min(max(info.RetryAfter, ariMinRecheck), ariMaxRecheck)
				}
				w := info.SuggestedWindow
				keep(leaf, ariAnswer{window: &RenewalWindow{Start: w.Start, End: w.End}, until: now.Add(recheck)})
			}
			return nil
		})
	}
	_ = g.Wait() // every failure is the certificate's own, in errs
	return windows, errs
}

// ariClient is a lego client for reading renewal information, which is an
// unauthenticated GET: it needs no account, only a key lego insists on.
func (s *acmeSigner) ariClient(a *schemas.ACMEIssuer) (*lego.Client, error) {
	quietLegoLog()
	hc, err := acmeHTTPClient(a.CABundle)
	if err != nil {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newLegoClient(&acmeAccount{Server: a.Server, key: k}, a, hc)
}
