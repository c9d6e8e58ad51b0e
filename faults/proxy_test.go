package faults_test

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a TCP proxy in front of a server that injects faults: it can
// refuse every connection (the server is down), delay every request by a
// latency, and stall a share of connections (accepted, never answered).
type proxy struct {
	t        *testing.T
	addr     string // the proxy's own address, stable across down/up
	upstream string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool
	latency time.Duration
	stall   float64 // share of new connections that are stalled
	rng     *rand.Rand

	accepted, stalled atomic.Int64
}

func newProxy(t *testing.T, upstream string) *proxy {
	p := &proxy{t: t, upstream: upstream, conns: map[net.Conn]bool{}, rng: rand.New(rand.NewPCG(3, 14))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			p.mu.Lock()
			p.conns[c] = true
			stall := p.rng.Float64() < p.stall
			p.mu.Unlock()
			if stall {
				p.stalled.Add(1)
				continue // held open, never answered, closed on down
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	go func() {
		// Each read from the client is (about) one request: it waits the latency.
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				p.mu.Lock()
				d := p.latency
				p.mu.Unlock()
				time.Sleep(d)
				if _, werr := up.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		up.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close()
}

// down closes the listener and cuts every connection: the port refuses
// connections as a stopped server's does.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// up listens again on the same address.
func (p *proxy) up() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

func (p *proxy) set(latency time.Duration, stall float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency, p.stall = latency, stall
}
