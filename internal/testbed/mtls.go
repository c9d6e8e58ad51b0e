package testbed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"
)

// MTLSPeer is a running mtlspeer (internal/testbed/mtlspeer): a workload
// that performs mutual-TLS handshakes continuously with certificates it
// reloads from a directory target and a trust bundle file.
type MTLSPeer struct {
	// Addr is where a server accepts handshakes.
	Addr   string
	status string
	p      *process
}

// MTLSCounts is what a peer has done so far.
type MTLSCounts struct {
	OK, Failed int
	// Failures are the first reasons of failed handshakes.
	Failures []string
	// Presented counts successful handshakes by the serial the peer
	// presented; Peer by the serial the other side presented.
	Presented, Peer map[string]int
	// Reloads counts certificate and bundle changes taken; TornReads the
	// reads that caught a write half done and kept what was in use.
	Reloads, TornReads int
}

// StartMTLSServer starts a server that accepts handshakes on a free
// loopback port with certDir's tls.crt and tls.key, requiring a client
// certificate that caFile verifies. It stops when the test ends.
func StartMTLSServer(t testing.TB, certDir, caFile string) *MTLSPeer {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := loopback(port)
	p := startPeer(t, "mtls server", "-cert-dir", certDir, "-ca", caFile, "-listen", addr, "server")
	p.Addr = addr
	return p
}

// StartMTLSClient starts a client that makes a handshake with server every
// interval, presenting certDir's certificate and verifying the server's
// against caFile and serverName. It stops when the test ends.
func StartMTLSClient(t testing.TB, certDir, caFile string, server *MTLSPeer, serverName string, interval time.Duration) *MTLSPeer {
	t.Helper()
	return startPeer(t, "mtls client", "-cert-dir", certDir, "-ca", caFile, "-connect", server.Addr, "-server-name", serverName,
		"-interval", interval.String(), "client")
}

func startPeer(t testing.TB, name string, args ...string) *MTLSPeer {
	t.Helper()
	bin := mtlspeerBuild.run(t, "./internal/testbed/mtlspeer", "mtlspeer")
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	status := "http://" + loopback(port) + "/status"
	proc, err := startProcess(name, []string{"PATH=" + os.Getenv("PATH")}, bin, append([]string{"-status", loopback(port)}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proc.Stop)
	if err := proc.waitReady(context.Background(), 30*time.Second, httpOK(http.DefaultClient, status)); err != nil {
		t.Fatal(err)
	}
	return &MTLSPeer{status: status, p: proc}
}

// Counts asks the peer what it has done so far.
func (m *MTLSPeer) Counts(t testing.TB) MTLSCounts {
	t.Helper()
	if m.p.exited() {
		t.Fatalf("%s exited: %v\n%s", m.p.name, m.p.cmd.ProcessState, m.p.tail(4000))
	}
	resp, err := http.Get(m.status)
	if err != nil {
		t.Fatalf("%s: %v", m.p.name, err)
	}
	defer resp.Body.Close()
	var c MTLSCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("%s: decoding its status: %v", m.p.name, err)
	}
	return c
}

// String names the peer in test output.
func (m *MTLSPeer) String() string { return fmt.Sprintf("%s (pid %d)", m.p.name, m.p.cmd.Process.Pid) }
