package backend_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/internal/testbed"
)

// TestRenewalWindowsAreAskedOncePerRetryAfter reads Pebble's renewal
// window for a certificate it issued: two thirds of the lifetime, a day
// either side. The answer is kept until Pebble's Retry-After (6 h) and
// asked for again after it.
func TestRenewalWindowsAreAskedOncePerRetryAfter(t *testing.T) {
	p := testbed.NewPebble(t, testbed.PebbleOptions{})
	serveHTTP01(t, p)
	b, err := backend.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	iss := acmeIssuer(p)
	ctx := context.Background()
	s, err := b.Sign(ctx, iss, nil, csrFor(t, "ari.example.test"), 0)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	leaf, err := pki.ParseCertificate([]byte(s.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	windows, errs := backend.RenewalWindows(ctx, b, iss, []*x509.Certificate{leaf}, now)
	if len(errs) != 0 {
		t.Fatalf("asking Pebble for the renewal window: %v", errs)
	}
	w, ok := windows[s.SerialNumber]
	if !ok {
		t.Fatalf("no window for serial %s: %v", s.SerialNumber, windows)
	}
	ideal := leaf.NotAfter.Add(-leaf.NotAfter.Add(time.Second).Sub(leaf.NotBefore) / 3)
	if d := w.Start.Sub(ideal.Add(-24 * time.Hour)); d < -time.Second || d > time.Second {
		t.Errorf("window start %s, want a day before two thirds, %s", w.Start, ideal.Add(-24*time.Hour))
	}
	if d := w.End.Sub(ideal.Add(24 * time.Hour)); d < -time.Second || d > time.Second {
		t.Errorf("window end %s, want a day after two thirds, %s", w.End, ideal.Add(24*time.Hour))
	}
	for _, at := range []time.Duration{time.Minute, 6*time.Hour - time.Second} {
		again, _ := backend.RenewalWindows(ctx, b, iss, []*x509.Certificate{leaf}, now.Add(at))
		if again[s.SerialNumber] != w {
			t.Errorf("%s later: window %v, want the kept %v", at, again[s.SerialNumber], w)
		}
	}
	if n := backend.ARIRequests(b); n != 1 {
		t.Errorf("%d requests within Pebble's Retry-After, want 1", n)
	}
	if _, errs := backend.RenewalWindows(ctx, b, iss, []*x509.Certificate{leaf}, now.Add(6*time.Hour)); len(errs) != 0 {
		t.Fatal(errs)
	}
	if n := backend.ARIRequests(b); n != 2 {
		t.Errorf("%d requests once Pebble's Retry-After passed, want 2", n)
	}
}
