package serve

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the daemon's endpoints. webhookSecret enables /hooks/git
// (GitHub's X-Hub-Signature-256 HMAC); standby says the replica waits for
// the lease, which counts as ready so a rollout does not stall on it.
func (d *Daemon) Handler(webhookSecret []byte, standby func() bool) http.Handler {
	mux := http.NewServeMux()
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
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		st, _, drift, _ := d.Snapshot()
		if drift == nil {
			http.Error(w, "no pass has completed yet", http.StatusServiceUnavailable)
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
		body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		if !validSignature(webhookSecret, body, r.Header.Get("X-Hub-Signature-256")) {
			http.Error(w, "bad or missing X-Hub-Signature-256", http.StatusUnauthorized)
			return
		}
		d.Trigger("webhook " + r.Header.Get("X-GitHub-Event"))
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "pass requested\n")
	})
	return mux
}

// validSignature checks "sha256=<hex HMAC-SHA256 of the body>" in constant time.
func validSignature(secret, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(sig, mac.Sum(nil))
}

// Sign is the X-Hub-Signature-256 value of body: for tests and for scripts
// that notify the daemon.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
