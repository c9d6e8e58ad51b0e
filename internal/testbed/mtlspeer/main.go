// Command mtlspeer is a workload for the test bed: a TLS server or client
// that performs mutual-TLS handshakes continuously with certificates it
// reloads from a certfleet directory target (tls.crt, tls.key) and a trust
// bundle (ca.crt), counting what succeeded and what failed. Tests start it
// through testbed.StartMTLSServer and testbed.StartMTLSClient, and read its
// counts from GET /status on -status.
//
// It reloads the way a hot-reloading workload does: before every handshake
// it reads the three files and, when their bytes changed, parses them. The
// files can change between two reads (certfleet swaps a directory target's
// ..data link while we read tls.crt and then tls.key), so a certificate and
// key that do not match, or a bundle holding no certificate, are a torn
// read: the previous pair or pool stays in use and the next handshake reads
// again. Reading before each handshake (not on a timer) means a handshake
// never uses files older than the last write that finished before it began,
// so a failure is certfleet's ordering, not this program's lag.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certfleet/certfleet/internal/pki"
)

func main() {
	var (
		certDir    = flag.String("cert-dir", "", "directory target holding tls.crt and tls.key")
		caFile     = flag.String("ca", "", "trust bundle file (ca.crt) verifying the peer")
		listen     = flag.String("listen", "", "server: address to accept handshakes on")
		connect    = flag.String("connect", "", "client: address to dial")
		serverName = flag.String("server-name", "", "client: name the server's certificate must carry")
		interval   = flag.Duration("interval", 20*time.Millisecond, "client: pause between handshakes")
		status     = flag.String("status", "", "address serving GET /status (JSON counts)")
	)
	flag.Parse()
	if len(flag.Args()) != 1 || (flag.Arg(0) != "server" && flag.Arg(0) != "client") || *certDir == "" || *caFile == "" || *status == "" {
		fmt.Fprintln(os.Stderr, "usage: mtlspeer -cert-dir DIR -ca FILE -status ADDR (-listen ADDR server | -connect ADDR -server-name NAME client)")
		os.Exit(2)
	}
	p := &peer{files: files{certDir: *certDir, caFile: *caFile}, counts: counts{Presented: map[string]int{}, Peer: map[string]int{}}}
	if err := p.files.reload(); err != nil {
		fmt.Fprintln(os.Stderr, "mtlspeer: loading the files:", err)
		os.Exit(1)
	}
	// The handshake listener opens before the status one, so a status that
	// answers means the server is accepting.
	if flag.Arg(0) == "server" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mtlspeer:", err)
			os.Exit(1)
		}
		go p.serve(ln)
	} else {
		go p.dial(*connect, *serverName, *interval)
	}
	sl, err := net.Listen("tcp", *status)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mtlspeer:", err)
		os.Exit(1)
	}
	go http.Serve(sl, http.HandlerFunc(p.serveStatus)) //nolint:errcheck // ends with the process
	fmt.Printf("mtlspeer %s ready\n", flag.Arg(0))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
}

// files is the certificate, key and bundle in use, reloaded on change.
type files struct {
	certDir, caFile string

	mu                 sync.Mutex
	pairPEM, caPEM     []byte
	pair               *tls.Certificate
	serial             string
	pool               *x509.CertPool
	Reloads, TornReads int
}

// reload reads the files and takes what changed; a torn read keeps what
// was in use (see the package comment).
func (f *files) reload() error {
	crt, err := os.ReadFile(filepath.Join(f.certDir, "tls.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(f.certDir, "tls.key"))
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(f.caFile)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pairPEM := append(append([]byte{}, crt...), key...)
	if !bytes.Equal(pairPEM, f.pairPEM) {
		pair, err := tls.X509KeyPair(crt, key)
		if err == nil {
			f.pair, f.pairPEM, f.serial = &pair, pairPEM, pki.Serial(pair.Leaf.SerialNumber)
			f.Reloads++
		} else if f.pair == nil {
			return fmt.Errorf("%s: %w", f.certDir, err)
		} else {
			f.TornReads++
		}
	}
	if !bytes.Equal(ca, f.caPEM) {
		pool := x509.NewCertPool()
		if pool.AppendCertsFromPEM(ca) {
			f.pool, f.caPEM = pool, ca
			f.Reloads++
		} else if f.pool == nil {
			return fmt.Errorf("%s holds no certificate", f.caFile)
		} else {
			f.TornReads++
		}
	}
	return nil
}

// current reloads and returns what a handshake uses.
func (f *files) current() (*tls.Certificate, string, *x509.CertPool) {
	_ = f.reload() // an unreadable file keeps the previous state, as a torn read does
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pair, f.serial, f.pool
}

// counts is what GET /status answers.
type counts struct {
	OK, Failed int
	// Failures are the first reasons of failed handshakes.
	Failures []string
	// Presented counts successful handshakes by the serial this peer presented,
	// Peer by the serial the other side presented.
	Presented, Peer    map[string]int
	Reloads, TornReads int
}

type peer struct {
	files  files
	mu     sync.Mutex
	counts counts
}

func (p *peer) record(own, other string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.counts.Failed++
		if len(p.counts.Failures) < 10 {
			p.counts.Failures = append(p.counts.Failures, time.Now().UTC().Format(time.RFC3339Nano)+" "+err.Error())
		}
		return
	}
	p.counts.OK++
	p.counts.Presented[own]++
	p.counts.Peer[other]++
}

func (p *peer) serveStatus(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files.mu.Lock()
	p.counts.Reloads, p.counts.TornReads = p.files.Reloads, p.files.TornReads
	p.files.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p.counts)
}

// deadline bounds one handshake and its answer; generous, because the test
// bed's cores are shared and a slow handshake is not a failed one.
const deadline = 30 * time.Second

// serve answers every connection with a handshake that requires a client
// certificate verified by the bundle, then "ok <client serial>".
func (p *peer) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			var own string
			cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				pair, s, pool := p.files.current()
				own = s
				return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}, nil
			}}
			tc := tls.Server(conn, cfg)
			_ = tc.SetDeadline(time.Now().Add(deadline))
			if err := tc.Handshake(); err != nil {
				p.record("", "", fmt.Errorf("server handshake with %s: %w", conn.RemoteAddr(), err))
				return
			}
			other := pki.Serial(tc.ConnectionState().PeerCertificates[0].SerialNumber)
			if _, err := fmt.Fprintf(tc, "ok %s\n", other); err != nil {
				p.record("", "", fmt.Errorf("server answering %s: %w", conn.RemoteAddr(), err))
				return
			}
			p.record(own, other, nil)
		}()
	}
}

// dial makes a handshake every interval, verifying the server with the
// bundle and presenting its own certificate, and waits for the server's
// answer: in TLS 1.3 a client learns that the server refused its
// certificate only when it reads.
func (p *peer) dial(addr, serverName string, interval time.Duration) {
	for {
		p.record(p.handshake(addr, serverName))
		time.Sleep(interval)
	}
}

func (p *peer) handshake(addr, serverName string) (own, other string, err error) {
	pair, own, pool := p.files.current()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair, nil }}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: deadline}, Config: cfg}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return "", "", fmt.Errorf("client handshake presenting %s: %w", own, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(deadline))
	tc := conn.(*tls.Conn)
	other = pki.Serial(tc.ConnectionState().PeerCertificates[0].SerialNumber)
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil {
		return "", "", fmt.Errorf("client presenting %s to server %s: reading the answer: %w", own, other, err)
	}
	if want := "ok " + own + "\n"; line != want {
		return "", "", errors.New("client presenting " + own + ": the server answered " + strings.TrimSpace(line))
	}
	return own, other, nil
}
