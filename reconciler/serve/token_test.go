package serve_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/certfleet/certfleet/reconciler/serve"
)

func TestTheFleetPageNeedsABearerTokenOffLoopback(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	cases := []struct {
		name, token, local, auth string
		want                     int
	}{
		{"loopback needs no token", "s3cret", "127.0.0.1:8080", "", http.StatusOK},
		{"IPv6 loopback needs no token", "s3cret", "[::1]:8080", "", http.StatusOK},
		{"off loopback without a token: 401", "s3cret", "10.0.0.5:8080", "", http.StatusUnauthorized},
		{"off loopback with the wrong token: 401", "s3cret", "10.0.0.5:8080", "Bearer nope", http.StatusUnauthorized},
		{"off loopback with the token as Basic: 401", "s3cret", "10.0.0.5:8080", "Basic s3cret", http.StatusUnauthorized},
		{"off loopback with the token", "s3cret", "10.0.0.5:8080", "Bearer s3cret", http.StatusOK},
		{"no token configured: off loopback is refused even with an empty bearer", "", "10.0.0.5:8080", "Bearer ", http.StatusUnauthorized},
		{"an unknown local address is not loopback", "s3cret", "", "", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if c.local != "" {
				addr, err := net.ResolveTCPAddr("tcp", c.local)
				if err != nil {
					t.Fatal(err)
				}
				r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, addr))
			}
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			rec := httptest.NewRecorder()
			serve.RequireToken(c.token, ok).ServeHTTP(rec, r)
			if rec.Code != c.want {
				t.Errorf("got %d, want %d", rec.Code, c.want)
			}
			if c.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("a 401 without WWW-Authenticate")
			}
		})
	}
}
