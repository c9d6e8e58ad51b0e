package testbed

import (
	"net"
	"testing"
)

// TestFreePortIsBelowTheEphemeralRange: a chosen port lies where no
// outgoing connection or ":0" listener can take it before its server binds
// it, and it can be bound, over TCP and UDP.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < minPort || p >= low {
			t.Fatalf("freePort() = %d, want in [%d, %d): below the ephemeral range", p, minPort, low)
		}
		l, err := net.Listen("tcp", loopback(p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		l.Close()
	}
}
