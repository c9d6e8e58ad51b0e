package serve_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

// The serve listener answers ACME HTTP-01 challenges, which is where an
// ACME CA looks for them (port 80 of each name routed to it).
func TestTheListenerAnswersACMEHTTP01Challenges(t *testing.T) {
	l := startListener(t, schemas.ServeHTTP{})
	done := backend.HTTP01.Serving()
	defer done()
	if err := backend.HTTP01.Present(context.Background(), "web.example.test", "tok-123", "tok-123.thumbprint"); err != nil {
		t.Fatal(err)
	}
	get := func(token string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get("http://" + l.addr + backend.HTTP01Path + token)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("tok-123"); code != http.StatusOK || body != "tok-123.thumbprint" {
		t.Errorf("a pending challenge: %d %q, want 200 and its key authorization", code, body)
	}
	if code, _ := get("unknown"); code != http.StatusNotFound {
		t.Errorf("an unknown token: %d, want 404", code)
	}
	_ = backend.HTTP01.CleanUp(context.Background(), "web.example.test", "tok-123", "")
	if code, _ := get("tok-123"); code != http.StatusNotFound {
		t.Errorf("a cleaned-up challenge: %d, want 404", code)
	}
}
