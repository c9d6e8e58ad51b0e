package reconcile

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/certfleet/certfleet/internal/pki"
	"github.com/certfleet/certfleet/reconciler/decide"
	"github.com/certfleet/certfleet/reconciler/render"
	"github.com/certfleet/certfleet/reconciler/target"
	"github.com/certfleet/certfleet/schemas"
)

// probeTimeout bounds one probe's dial and handshake: a workload that does
// not answer in that time is reported (past its grace), not waited for.
const probeTimeout = 5 * time.Second

// probeConcurrency is how many probes dial at once.
const probeConcurrency = 4

// probeServed dials the probe of every desired target that holds a
// certificate and records the serial of the leaf each endpoint serves, or
// why the dial failed, by target key, for decide (NotServed). An endpoint
// named by several targets is dialled once.
func (p *Pass) probeServed(ctx context.Context, desired []*render.Desired, obs map[string]*target.Observed) map[string]decide.Served {
	type endpoint struct{ address, serverName string }
	keys := map[endpoint][]string{}
	var order []endpoint
	for _, d := range desired {
		for _, t := range d.Targets {
			if o := obs[t.Key]; t.Probe == nil || o == nil || !o.Exists || o.Cert == nil {
				continue
			}
			ep := endpoint{t.Probe.Address, serverName(t.Probe)}
			if _, seen := keys[ep]; !seen {
				order = append(order, ep)
			}
			keys[ep] = append(keys[ep], t.Key)
		}
	}
	out := map[string]decide.Served{}
	if len(order) == 0 {
		return out
	}
	var mu sync.Mutex
	g := new(errgroup.Group)
	g.SetLimit(probeConcurrency)
	for _, ep := range order {
		g.Go(func() error {
			serial, err := servedSerial(ctx, ep.address, ep.serverName)
			if err != nil {
				p.log().Debug("probing a target's endpoint failed", "address", ep.address, "error", err.Error())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, key := range keys[ep] {
				out[key] = decide.Served{Serial: serial, Err: err}
			}
			return nil
		})
	}
	_ = g.Wait() // each probe's error is its result
	return out
}

// serverName is the SNI name a probe sends: its own, else the address's host.
func serverName(pr *schemas.Probe) string {
	if pr.ServerName != "" {
		return pr.ServerName
	}
	host, _, err := net.SplitHostPort(pr.Address)
	if err != nil || net.ParseIP(host) != nil {
		return "" // an IP address is not sent as SNI
	}
	return host
}

// servedSerial is the serial (pki.Serial) of the leaf certificate an
// endpoint serves.
func servedSerial(ctx context.Context, address, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		ServerName: name,
		// The probe only reads which leaf the endpoint serves and compares
		// its serial with the one delivered; it trusts nothing it receives
		// and sends nothing, so the chain is not verified (the workload may
		// serve a certificate its CA's trust bundle is not yet installed
		// for, and a NotServed must still be told from a dial error).
		InsecureSkipVerify: true, //nolint:gosec // only the served serial is compared, see above
		MinVersion:         tls.VersionTLS12,
	}}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("the endpoint served no certificate")
	}
	return pki.Serial(certs[0].SerialNumber), nil
}
