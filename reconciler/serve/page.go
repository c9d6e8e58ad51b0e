package serve

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"maps"
	"net"
	"net/http"
	"strings"

	"github.com/certfleet/certfleet/reconciler/fleetpage"
	"github.com/certfleet/certfleet/reconciler/inventory"
	"github.com/certfleet/certfleet/schemas"
)

// fleet is the page's view of the last pass (nil before the first).
func (d *Daemon) fleet() *fleetpage.Fleet {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.report == nil {
		return nil
	}
	return &fleetpage.Fleet{Now: d.Now(), Revision: d.status.Revision, RevisionTime: d.revisionTime,
		LastPass: d.status.LastPass, NextPass: d.status.NextPass, Result: d.report, Drift: d.drift,
		Verdicts: d.verdicts, Catalog: d.catalog, Inventory: d.pageInventory, AuditLog: d.auditPath}
}

// copyInventory is a copy of the pass's inventory the page can read while
// the next pass updates the daemon's own.
func copyInventory(inv map[string]*inventory.Entry) map[string]*inventory.Entry {
	out := make(map[string]*inventory.Entry, len(inv))
	for id, e := range maps.All(inv) {
		out[id] = e.Clone()
	}
	return out
}

// pageHandlers adds the fleet page (/, /certificate, /assets/) to mux.
func (d *Daemon) pageHandlers(mux *http.ServeMux) {
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(fleetpage.Assets())))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		f := d.fleet()
		if f == nil {
			http.Error(w, "no pass has completed yet", http.StatusServiceUnavailable)
			return
		}
		v := r.URL.Query()
		q := fleetpage.Query{Text: v.Get("q"), SAN: v.Get("san"), Owner: v.Get("owner"), Issuer: v.Get("issuer"),
			Cluster: v.Get("cluster"), Path: v.Get("path")}
		if s := v.Get("expiring"); s != "" {
			var err error
			if q.Expiring, err = schemas.Duration(s).Parse(); err != nil || q.Expiring <= 0 {
				http.Error(w, "expiring: want a positive duration such as 720h or 30d, got "+s, http.StatusBadRequest)
				return
			}
		}
		writePage(w, func(b *bytes.Buffer) error { return fleetpage.Overview(b, f, q) })
	})
	mux.HandleFunc("GET /certificate", func(w http.ResponseWriter, r *http.Request) {
		f := d.fleet()
		if f == nil {
			http.Error(w, "no pass has completed yet", http.StatusServiceUnavailable)
			return
		}
		writePage(w, func(b *bytes.Buffer) error { return fleetpage.Certificate(b, f, r.URL.Query().Get("id")) })
	})
}

// writePage writes a page whole or an error: a template that fails half-way
// sends no half page.
func writePage(w http.ResponseWriter, page func(*bytes.Buffer) error) {
	var b bytes.Buffer
	if err := page(&b); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, fleetpage.ErrUnknown) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'")
	_, _ = w.Write(b.Bytes())
}

// RequireToken guards h: a request that came in on a loopback address
// passes; any other needs "Authorization: Bearer <token>". With no token
// configured, only loopback is served: the fleet page is never open to a
// network by default.
func RequireToken(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopback(r) || validToken(token, r.Header.Get("Authorization")) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="certfleet"`)
		http.Error(w, "a bearer token is required off loopback (http.tokenFile in certfleet.yaml)", http.StatusUnauthorized)
	})
}

// loopback says the request reached a loopback address of the daemon.
func loopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validToken(token, header string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return token != "" && ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
