package reconcile_test

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/reconcile"
)

// tlsServer is a workload serving a directory target's tls.crt and
// tls.key: reloading reads them on every handshake (a workload that hot
// reloads), otherwise they are read once when it starts and never again.
type tlsServer struct {
	ln  net.Listener
	mu  sync.Mutex
	sni []string
	// serving is set once serve has started the accept loop (done closes when it ends).
	serving bool
	done    chan struct{}
}

func listenTLS(t *testing.T) *tlsServer {
	t.Helper()
	s := &tlsServer{done: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *tlsServer) addr() string { return s.ln.Addr().String() }

func (s *tlsServer) stop() {
	s.ln.Close()
	if s.serving {
		<-s.done
	}
}

// serve starts answering handshakes with the files in dir.
func (s *tlsServer) serve(t *testing.T, dir string, reloading bool) {
	t.Helper()
	load := func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		return &c, err
	}
	loaded, err := load()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		s.mu.Lock()
		s.sni = append(s.sni, h.ServerName)
		s.mu.Unlock()
		if reloading {
			return load()
		}
		return loaded, nil
	}}
	s.serving = true
	go func() {
		defer close(s.done)
		for {
			conn, err := s.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				tc := tls.Server(conn, cfg)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				_ = tc.Handshake()
			}()
		}
	}()
}

func (s *tlsServer) serverNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sni...)
}

// probedCert is one certificate delivered to two directories, each feeding
// a TLS server that its target's probe dials.
const probedCert = `apiVersion: certfleet.dev/v1alpha1
kind: Certificate
metadata: {name: web, namespace: web}
spec:
  issuer: mtls
  commonName: web.example.test
  dnsNames: [web.example.test]
  duration: 24h
  targets:
    - directory: {path: reloading}
      probe: {address: "RELOADING", serverName: web.example.test}
    - directory: {path: static}
      probe: {address: "STATIC", grace: 5m}
`

// TestAWorkloadThatDoesNotReloadIsNotServedPastTheGrace: after a reissue,
// a server that reads its files on every handshake serves the new
// certificate and stays InSync; one that read them once at start keeps
// serving the old one and, past the probe's grace, is NotServed in the
// pass's report and in drift — and certfleet writes nothing for it. A
// server that stops answering is NotServed with the dial's error.
func TestAWorkloadThatDoesNotReloadIsNotServedPastTheGrace(t *testing.T) {
	e := newEnv(t)
	reloading, static := listenTLS(t), listenTLS(t)
	files := func(dnsNames string) map[string]string {
		m := strings.NewReplacer("RELOADING", reloading.addr(), "STATIC", static.addr(),
			"dnsNames: [web.example.test]", "dnsNames: "+dnsNames).Replace(probedCert)
		return map[string]string{"teams/web/web.yaml": m}
	}
	start := e.now
	if rep := e.run(files("[web.example.test]")); rep.Actions["issue"] != 1 || len(rep.Failures) != 0 {
		t.Fatalf("first pass: actions %v failures %v items %+v", rep.Actions, rep.Failures, rep.Items)
	}
	first := e.dirLeaf("static")
	reloading.serve(t, filepath.Join(e.dir, "reloading"), true)
	static.serve(t, filepath.Join(e.dir, "static"), false)

	// Both serve what was delivered: nothing to report, past the grace too.
	e.now = start.Add(10 * time.Minute)
	rep := e.run(files("[web.example.test]"))
	if rep.Reasons[decide.InSync] != 2 || len(rep.Items) != 0 {
		t.Fatalf("both servers serve the delivered certificate: reasons %v items %+v", rep.Reasons, rep.Items)
	}
	if sni := reloading.serverNames(); len(sni) == 0 || sni[len(sni)-1] != "web.example.test" {
		t.Errorf("the probe sent SNI %q, want the probe's serverName web.example.test", sni)
	}

	// A SAN change reissues; the static server keeps the first certificate.
	rep = e.run(files("[web.example.test, www.web.example.test]"))
	if rep.Actions["reissue"] != 1 {
		t.Fatalf("SAN change: actions %v reasons %v", rep.Actions, rep.Reasons)
	}
	second := e.dirLeaf("static")
	if serial(second) == serial(first) {
		t.Fatal("the SAN change did not reissue")
	}

	// Within the grace, the workload may still be reloading.
	e.now = start.Add(14 * time.Minute)
	if d := e.drift(files("[web.example.test, www.web.example.test]")); d.InSync != 2 || len(d.Entries) != 0 {
		t.Fatalf("within the grace: inSync %d, entries %+v", d.InSync, d.Entries)
	}

	// Past it, the static server is NotServed, in the pass and in drift.
	e.now = start.Add(16 * time.Minute)
	d := e.drift(files("[web.example.test, www.web.example.test]"))
	if d.InSync != 1 || d.Counts[decide.NotServed] != 1 || len(d.Entries) != 1 {
		t.Fatalf("past the grace, drift: inSync %d counts %v entries %+v", d.InSync, d.Counts, d.Entries)
	}
	en := d.Entries[0]
	if !strings.HasSuffix(en.Target, "/static") || en.DeliveredSerial != serial(second) ||
		!strings.Contains(en.Message, static.addr()+" serves serial "+serial(first)) {
		t.Errorf("drift entry %+v: want the static target, delivered %s, served %s", en, serial(second), serial(first))
	}
	rep = e.run(files("[web.example.test, www.web.example.test]"))
	if rep.Reasons[decide.NotServed] != 1 || rep.Reasons[decide.InSync] != 1 || len(rep.Actions) != 0 {
		t.Fatalf("past the grace, the pass: reasons %v actions %v", rep.Reasons, rep.Actions)
	}
	if len(rep.Items) != 1 || rep.Items[0].Reason != decide.NotServed || rep.Items[0].Action != "" {
		t.Errorf("report items %+v: want the static target NotServed, nothing done", rep.Items)
	}
	if got := stateOf(rep, "/static"); got.Reason != decide.NotServed {
		t.Errorf("the static target's state (drift, metrics) is %s, want NotServed", got.Reason)
	}
	if serial(e.dirLeaf("static")) != serial(second) {
		t.Error("the pass wrote the NotServed target again")
	}

	// A workload that stops answering is NotServed with why.
	static.stop()
	d = e.drift(files("[web.example.test, www.web.example.test]"))
	if len(d.Entries) != 1 || d.Entries[0].Reason != decide.NotServed || !strings.Contains(d.Entries[0].Message, "probing "+static.addr()+" failed") {
		t.Errorf("a stopped server: entries %+v", d.Entries)
	}
}

// stateOf is the state after the pass of the target whose key ends in suffix.
func stateOf(rep *reconcile.Result, suffix string) reconcile.TargetState {
	for _, s := range rep.State {
		if strings.HasSuffix(s.Target, suffix) {
			return s
		}
	}
	return reconcile.TargetState{}
}
