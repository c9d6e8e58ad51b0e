package serve

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/certfleet/certfleet/internal/backend"
	"github.com/certfleet/certfleet/schemas"
)

// Listen opens the daemon's listener on addr, serving at most
// http.maxConnections connections at once: further clients wait in the
// kernel's backlog instead of each holding a goroutine and a buffer.
func Listen(addr string, c schemas.ServeHTTP) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	n := c.MaxConnections
	if n <= 0 {
		n = DefaultMaxConnections
	}
	return netutil.LimitListener(ln, n), nil
}

// NewServer is the daemon's HTTP server with every timeout of http set:
// a client that stalls in its headers, its body or between requests is
// disconnected, so it cannot hold one of the limited connections for long.
func NewServer(h http.Handler, c schemas.ServeHTTP) *http.Server {
	return &http.Server{Handler: h,
		ReadHeaderTimeout: durationOr(c.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       durationOr(c.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      durationOr(c.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       durationOr(c.IdleTimeout, DefaultIdleTimeout),
	}
}

// Handler serves the daemon's endpoints. webhookSecret enables /hooks/git
// (GitHub's X-Hub-Signature-256 HMAC); standby says the replica waits for
// the lease, which counts as ready so a rollout does not stall on it.
func (d *Daemon) Handler(webhookSecret []byte, standby func() bool) http.Handler {
	limit := d.cfg.HTTP.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	mux := http.NewServeMux()
	// The fleet page and /report need a token off loopback.
	pages := http.NewServeMux()
	mux.Handle("/", RequireToken(d.Token, pages))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		_, _, _, ready := d.Snapshot()
		switch {
		case ready:
			io.WriteString(w, "ok\n")
		case standby != nil && standby():
			io.WriteString(w, "ok: standby, another replica holds the lease\n")
		default:
			http.Error(w, "not ready: no pass has completed yet", http.StatusServiceUnavailable)
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{}))
	// ACME issuers' HTTP-01 answers: the CA fetches them from port 80 of
	// each name, which must reach this listener, so they sit outside the
	// pages' token check.
	mux.Handle("GET "+backend.HTTP01Path, backend.HTTP01)
	d.pageHandlers(pages)
	pages.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		st, _, drift, _ := d.Snapshot()
		if drift == nil {
			// No pass yet: the status still says why (a source that cannot be
			// fetched or verified, a revision that does not render).
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(struct {
				Status any    `json:"status"`
				Note   string `json:"note"`
			}{st, "no pass has completed yet"})
			return
		}
		if r.URL.Query().Get("format") == "markdown" {
			w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
			_ = drift.Markdown(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Status any `json:"status"`
			Drift  any `json:"drift"`
		}{st, drift})
	})
	mux.HandleFunc("POST /hooks/git", func(w http.ResponseWriter, r *http.Request) {
		if len(webhookSecret) == 0 {
			http.Error(w, "the webhook is off: set webhook.secretFile", http.StatusNotFound)
			return
		}
		// The MAC is computed as the body streams in (the daemon needs only
		// the verdict, not the payload), and judged only once the whole body
		// is read: a body over the limit is refused, never verified on a
		// prefix, which a LimitReader would silently cut it to.
		mac := hmac.New(sha256.New, webhookSecret)
		if _, err := io.Copy(mac, http.MaxBytesReader(w, r.Body, limit)); err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				http.Error(w, fmt.Sprintf("the body is larger than http.maxBodyBytes (%d bytes)", limit), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		if !validMAC(mac, r.Header.Get("X-Hub-Signature-256")) {
			http.Error(w, "bad or missing X-Hub-Signature-256", http.StatusUnauthorized)
			return
		}
		d.Trigger("webhook " + r.Header.Get("X-GitHub-Event"))
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "pass requested\n")
	})
	return mux
}

// validMAC checks "sha256=<hex HMAC-SHA256 of the body>" against mac, fed
// the whole body, in constant time.
func validMAC(mac hash.Hash, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	return hmac.Equal(sig, mac.Sum(nil))
}

// Sign is the X-Hub-Signature-256 value of body: for tests and for scripts
// that notify the daemon.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
