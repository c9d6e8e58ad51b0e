package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
)

// ACMEProblem is an ACME CA's problem document (RFC 8555 §6.7) as the
// report carries it: its type, its detail and the identifiers it is about.
type ACMEProblem struct {
	Type   string
	Detail string
	// Identifiers are the names the problem is about, when it names them.
	Identifiers []string
	// RetryAfter is how long the CA asked to wait (a rate limit's Retry-After).
	RetryAfter time.Duration
	err        error
}

func (p *ACMEProblem) Error() string {
	var b strings.Builder
	b.WriteString("ACME problem " + p.Type)
	if len(p.Identifiers) > 0 {
		b.WriteString(" for " + strings.Join(p.Identifiers, ", "))
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	if p.RetryAfter > 0 {
		fmt.Fprintf(&b, " (the CA asks to retry after %s)", p.RetryAfter)
	}
	return b.String()
}

func (p *ACMEProblem) Unwrap() error { return p.err }

// permanentACMEProblems cannot succeed by ordering again: the CA refuses
// the names, the CSR or the account as they are.
var permanentACMEProblems = []string{"rejectedIdentifier", "unsupportedIdentifier", "badCSR", "caa",
	"externalAccountRequired", "badPublicKey", "badSignatureAlgorithm"}

// Permanent reports whether ordering again cannot help until the
// declaration or the issuer changes.
func (p *ACMEProblem) Permanent() bool {
	return slices.Contains(permanentACMEProblems, strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:"))
}

// RetryAfter is how long the ACME CA asked to wait before ordering again (0: it did not say).
func RetryAfter(err error) time.Duration {
	var p *ACMEProblem
	if errors.As(err, &p) {
		return p.RetryAfter
	}
	return 0
}

// problemOf turns lego's error into an ACMEProblem when it carries a
// problem document; names are the order's, of which those the error
// mentions are the failing identifiers. Other errors pass unchanged.
func problemOf(err error, names []string) error {
	var pd *acme.ProblemDetails
	if !errors.As(err, &pd) {
		return err
	}
	p := &ACMEProblem{Type: pd.Type, Detail: pd.Detail, err: err}
	var rl *acme.RateLimitedError
	if errors.As(err, &rl) {
		p.RetryAfter = rl.RetryAfter
	}
	for _, sp := range pd.SubProblems {
		if v := sp.Identifier.Value; v != "" && !slices.Contains(p.Identifiers, v) {
			p.Identifiers = append(p.Identifiers, v)
		}
	}
	if len(p.Identifiers) == 0 {
		// lego reports failed authorizations as "[name: problem]"; the
		// problem document itself does not repeat the name.
		msg := err.Error()
		for _, n := range names {
			if strings.Contains(msg, "["+n+": ") {
				p.Identifiers = append(p.Identifiers, n)
			}
		}
	}
	return p
}

// HTTP01 answers the HTTP-01 challenges of this process's ACME orders:
// serve mounts it on its listener, one-shot runs on --acme-http01-listen.
var HTTP01 = &HTTP01Responder{answers: map[string]string{}}

// HTTP01Path is where CAs fetch HTTP-01 answers.
const HTTP01Path = "/.well-known/acme-challenge/"

// HTTP01Responder keeps the key authorizations of pending HTTP-01
// challenges, by token, and serves them. It is a lego challenge provider.
type HTTP01Responder struct {
	mu      sync.Mutex
	answers map[string]string
	serving int
}

// Present publishes a challenge's answer; it fails at once when nothing
// serves the answers, rather than letting the CA's validation fail.
func (r *HTTP01Responder) Present(_ context.Context, _, token, keyAuth string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.serving == 0 {
		return errNoHTTP01Listener
	}
	r.answers[token] = keyAuth
	return nil
}

// CleanUp withdraws a challenge's answer.
func (r *HTTP01Responder) CleanUp(_ context.Context, _, token, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.answers, token)
	return nil
}

var errNoHTTP01Listener = errors.New("no listener answers HTTP-01 challenges: run certfleet serve, or give reconcile --acme-http01-listen (port 80 of every name must reach it)")

func (r *HTTP01Responder) isServing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serving > 0
}

// Serving records that a listener serves the answers until the returned
// function is called.
func (r *HTTP01Responder) Serving() (done func()) {
	r.mu.Lock()
	r.serving++
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.serving--
			r.mu.Unlock()
		})
	}
}

// ServeHTTP answers GET /.well-known/acme-challenge/<token>.
func (r *HTTP01Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, HTTP01Path)
	r.mu.Lock()
	answer, found := r.answers[token]
	r.mu.Unlock()
	if !ok || !found || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(answer))
}

// ServeHTTP01 answers HTTP-01 challenges on addr until stop is called: the
// listener of one-shot runs (serve mounts HTTP01 on its own).
func ServeHTTP01(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+HTTP01Path, HTTP01)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := HTTP01.Serving()
	go func() { _ = srv.Serve(ln) }()
	return func() { done(); _ = srv.Close() }, nil
}
