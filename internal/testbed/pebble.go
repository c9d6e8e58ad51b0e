package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// PebbleOptions shape a Pebble ACME CA.
type PebbleOptions struct {
	// RequireEAB makes new accounts need an external account binding; the
	// keys are in Pebble.EABKeys.
	RequireEAB bool
	// Validity is the certificates' lifetime (default 90 days, Pebble's own).
	Validity time.Duration
}

// Pebble is a running Pebble ACME CA with real validation: HTTP-01 is
// fetched from 127.0.0.1:HTTPPort, DNS-01 is looked up in
// pebble-challtestsrv's DNS (which answers 127.0.0.1 for every A record).
// Pebble's nonce rejection (5% of nonces) and authorization reuse stay on;
// only its random sleep before validating is off (PEBBLE_VA_NOSLEEP), so
// tests do not wait up to 15 s per challenge for nothing.
type Pebble struct {
	// Directory is the ACME directory URL; it reaches Pebble through a
	// proxy that counts orders.
	Directory string
	// CABundle is the PEM certificate the directory's TLS chains to.
	CABundle string
	// HTTPPort is where Pebble sends HTTP-01 requests (on 127.0.0.1).
	HTTPPort int
	// DNS is challtestsrv's DNS server (host:port), for propagation checks.
	DNS string
	// ChallSrv is challtestsrv's management URL (POST /set-txt, /clear-txt).
	ChallSrv string
	// EABKeys are the accepted EAB key IDs and their base64url HMAC keys.
	EABKeys map[string]string

	management string
	client     *http.Client
	orders     atomic.Int64
	proxy      *http.Server
	procs      []*process
	dir        string
}

// StartPebble starts pebble-challtestsrv and Pebble on free loopback ports.
func StartPebble(ctx context.Context, o PebbleOptions) (*Pebble, error) {
	pebbleBin, err := Binary("pebble")
	if err != nil {
		return nil, err
	}
	challBin, err := Binary("pebble-challtestsrv")
	if err != nil {
		return nil, err
	}
	// The proxy's listener is held from the start: a port chosen free and
	// bound only after Pebble is up could be taken meanwhile (by the
	// readiness checks' own connections, among others), and the test
	// failed in CI with "bind: address already in use" on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	proxyPort := ln.Addr().(*net.TCPAddr).Port
	ports := make([]int, 6)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			ln.Close()
			return nil, err
		}
	}
	wfe, mgmt, httpPort, tlsPort, dnsPort, challMgmt := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	dir, err := os.MkdirTemp("", "testbed-pebble-")
	if err != nil {
		return nil, err
	}
	p := &Pebble{HTTPPort: httpPort, DNS: loopback(dnsPort), ChallSrv: "http://" + loopback(challMgmt), dir: dir,
		management: "https://" + loopback(mgmt)}
	fail := func(err error) (*Pebble, error) { ln.Close(); p.Stop(); return nil, err }
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return fail(err)
	}
	p.CABundle = string(certPEM)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fail(err)
	}
	validity := o.Validity
	if validity <= 0 {
		validity = 90 * 24 * time.Hour
	}
	if o.RequireEAB {
		p.EABKeys = map[string]string{"kid-1": base64.RawURLEncoding.EncodeToString([]byte("certfleet-test-eab-hmac-key-0123456789"))}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": loopback(wfe), "managementListenAddress": loopback(mgmt),
		"certificate": certFile, "privateKey": keyFile, "httpPort": httpPort, "tlsPort": tlsPort,
		"externalAccountBindingRequired": o.RequireEAB, "externalAccountMACKeys": p.EABKeys,
		"retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles":   map[string]any{"default": map[string]any{"description": "test bed", "validityPeriod": int64(validity.Seconds())}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return fail(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	chall, err := startProcess("pebble-challtestsrv", env, challBin, "-management", loopback(challMgmt),
		"-dns01", loopback(dnsPort), "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	if err != nil {
		return fail(err)
	}
	p.procs = append(p.procs, chall)
	if err := chall.waitReady(ctx, 20*time.Second, tcpOpen(loopback(challMgmt))); err != nil {
		return fail(err)
	}
	peb, err := startProcess("pebble", append(env, "PEBBLE_VA_NOSLEEP=1"), pebbleBin, "-config", cfgFile, "-dnsserver", loopback(dnsPort))
	if err != nil {
		return fail(err)
	}
	p.procs = append(p.procs, peb)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	p.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := peb.waitReady(ctx, 30*time.Second, httpOK(p.client, "https://"+loopback(wfe)+"/dir")); err != nil {
		return fail(err)
	}
	// The proxy keeps the Host header, so the URLs Pebble hands out point
	// back at the proxy and every order passes through it to be counted.
	target, _ := url.Parse("https://" + loopback(wfe))
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = p.client.Transport
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fail(err)
	}
	p.proxy = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/order-plz" {
			rp.ServeHTTP(w, r)
			return
		}
		// Only orders Pebble created count, not requests it refused for
		// a bad nonce (which the client retries).
		sw := &statusWriter{ResponseWriter: w}
		rp.ServeHTTP(sw, r)
		if sw.status == http.StatusCreated {
			p.orders.Add(1)
		}
	})}
	go func() { _ = p.proxy.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})) }()
	p.Directory = "https://" + loopback(proxyPort) + "/dir"
	return p, nil
}

// NewPebble starts Pebble for one test and stops it when the test ends.
func NewPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	p, err := StartPebble(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// Orders is how many new orders Pebble has been sent.
func (p *Pebble) Orders() int64 { return p.orders.Load() }

// Root fetches the root Pebble issues under from its management API (a
// new one each start).
func (p *Pebble) Root() (string, error) {
	resp, err := p.client.Get(p.management + "/roots/0")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("pebble /roots/0: %s %s %v", resp.Status, b, err)
	}
	return string(b), nil
}

// Stop stops Pebble and challtestsrv and removes their files.
func (p *Pebble) Stop() {
	if p.proxy != nil {
		_ = p.proxy.Close()
	}
	for _, proc := range p.procs {
		proc.Stop()
	}
	_ = os.RemoveAll(p.dir)
}

// Logs returns the tail of Pebble's output, to explain a failure.
func (p *Pebble) Logs() string {
	var b strings.Builder
	for _, proc := range p.procs {
		b.WriteString(proc.name + ":\n" + proc.tail(4000) + "\n")
	}
	return b.String()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func tcpOpen(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// selfSigned makes the certificate Pebble's listeners serve: valid for
// 127.0.0.1 and localhost, its own trust anchor.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "pebble test bed"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, errors.New("encoding the pebble key")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}
