package serve_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/serve"
	"github.com/certfleet/certfleet/schemas"
)

// listener is the daemon's HTTP server as `certfleet serve` runs it, on a
// real loopback listener, over a local backend (no pass runs).
type listener struct {
	addr   string
	secret []byte
}

func startListener(t *testing.T, h schemas.ServeHTTP) *listener {
	t.Helper()
	dir := t.TempDir()
	cfg := &schemas.ServeConfig{Source: schemas.ServeSource{URL: dir}, HTTP: h,
		Backend: schemas.ServeBackend{Type: "local", StateDir: filepath.Join(dir, "state")}, AuditLog: filepath.Join(dir, "audit.log")}
	d, err := serve.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	ln, err := serve.Listen("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{addr: ln.Addr().String(), secret: []byte("hook-secret")}
	srv := serve.NewServer(d.Handler(l.secret, nil), h)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l
}

// post sends a webhook with body, signed as sig, and returns the status.
func (l *listener) post(t *testing.T, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+l.addr+"/hooks/git", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Hub-Signature-256", sig)
	req.Header.Set("X-GitHub-Event", "push")
	// A fresh connection per request: a kept-alive one may be closed by the
	// server's idle timeout just as it is reused, and a POST is not retried
	// (that made this helper fail, rarely, under load).
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// stall opens a connection and sends part of a webhook request: half its
// headers, or its headers and half its body. It returns the connection.
func (l *listener) stall(midBody bool) (net.Conn, error) {
	c, err := net.Dial("tcp", l.addr)
	if err != nil {
		return nil, err
	}
	msg := "POST /hooks/git HTTP/1.1\r\nHost: certfleet\r\nX-Hub-Signature-256: sha256=00\r\n"
	if midBody {
		msg += "Content-Length: 1000\r\n\r\n" + string(bytes.Repeat([]byte("x"), 500))
	}
	if _, err := io.WriteString(c, msg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// closedBy reports whether the server closed c before deadline: a read
// ends in EOF or a reset (after any response), not in our own timeout.
func closedBy(c net.Conn, deadline time.Time) bool {
	_ = c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestStalledConnectionsAreClosedWithinTheTimeoutsAndFreshRequestsServed(t *testing.T) {
	const n = 200
	l := startListener(t, schemas.ServeHTTP{ReadHeaderTimeout: "1s", ReadTimeout: "2s", WriteTimeout: "2s", IdleTimeout: "2s"})
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := l.stall(i%2 == 1)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// While they stall, a fresh request is served.
	body := []byte(`{"ref":"refs/heads/main"}`)
	if code := l.post(t, body, serve.Sign(l.secret, body)); code != http.StatusAccepted {
		t.Errorf("a fresh webhook while %d connections stall: %d, want 202", n, code)
	}
	// Every stalled connection is closed by the server within its timeout
	// (2 s for a body, 1 s for headers) and a margin for a loaded machine.
	deadline := time.Now().Add(2*time.Second + 3*time.Second)
	var closed, headerClosed, bodyClosed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if closedBy(c, deadline) {
				mu.Lock()
				closed++
				if i%2 == 1 {
					bodyClosed++
				} else {
					headerClosed++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if closed != n {
		t.Errorf("the server closed %d of %d stalled connections (%d stalled in headers, %d in the body) within their timeouts", closed, n, headerClosed, bodyClosed)
	}
	if code := l.post(t, body, serve.Sign(l.secret, body)); code != http.StatusAccepted {
		t.Errorf("a fresh webhook after the stalls: %d, want 202", code)
	}
}

func TestConnectionsPastTheLimitWaitAndAreServedOnceStalledOnesAreCut(t *testing.T) {
	const limit = 8
	l := startListener(t, schemas.ServeHTTP{ReadHeaderTimeout: "1s", ReadTimeout: "2s", MaxConnections: limit})
	for i := 0; i < limit; i++ {
		c, err := l.stall(true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	time.Sleep(200 * time.Millisecond) // let the server accept them all
	// The ninth connection is not accepted while eight stall: its request
	// is answered only once the server cut them, after their 2 s.
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + l.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	if took < time.Second {
		t.Errorf("a request past the limit of %d connections was served after %s, while all %d were held", limit, took, limit)
	}
	t.Logf("served after %s", took.Round(time.Millisecond))
}

func TestAWebhookBodyIsVerifiedWholeOrRefusedAsTooLarge(t *testing.T) {
	const limit = 4096
	l := startListener(t, schemas.ServeHTTP{MaxBodyBytes: limit})
	body := func(n int) []byte {
		b := bytes.Repeat([]byte(`{"ref":"refs/heads/main"}`), n/25+1)
		return b[:n]
	}
	exact := body(limit)
	if code := l.post(t, exact, serve.Sign(l.secret, exact)); code != http.StatusAccepted {
		t.Errorf("a body of exactly the limit (%d bytes): %d, want 202", limit, code)
	}
	over := body(limit + 1)
	// Signed over the prefix a truncating reader would verify, and signed
	// whole: both refused, unverified.
	for name, sig := range map[string]string{"the truncated prefix": serve.Sign(l.secret, over[:limit]), "the whole body": serve.Sign(l.secret, over)} {
		if code := l.post(t, over, sig); code != http.StatusRequestEntityTooLarge {
			t.Errorf("a body one byte over the limit, signed over %s: %d, want 413", name, code)
		}
	}
	big := body(10 * limit)
	if code := l.post(t, big, serve.Sign(l.secret, big[:limit])); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body ten times the limit, signed over the prefix: %d, want 413", code)
	}
	if code := l.post(t, exact, serve.Sign(l.secret, exact[:limit-1])); code != http.StatusUnauthorized {
		t.Errorf("a body signed over all but its last byte: %d, want 401", code)
	}
}

func TestTheListenersBoundsAreCheckedInCertfleetYAML(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "certfleet.yaml")
	if err := os.WriteFile(p, []byte("source: {url: .}\nhttp: {readTimeout: soon, maxConnections: -1, maxBodyBytes: -5}\nshutdownGrace: 1x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := serve.LoadConfig(p)
	if err == nil {
		t.Fatal("a bad http section loaded")
	}
	for _, want := range []string{"http.readTimeout", "http.maxConnections", "http.maxBodyBytes", "shutdownGrace"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
}
