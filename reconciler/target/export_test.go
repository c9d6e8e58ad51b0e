package target

import (
	"sync"

	"k8s.io/apimachinery/pkg/watch"
)

// EventGate stands between the watches and their informers: while held,
// events wait, so the stores lag for sure.
type EventGate struct {
	mu   sync.Mutex
	held chan struct{} // nil: events flow
}

// GateWatchEvents puts a gate on the watches started from now on.
func GateWatchEvents(ws *Watches) *EventGate {
	g := &EventGate{}
	ws.gate = func(in watch.Interface) watch.Interface {
		h := &gatedWatch{Interface: in, out: make(chan watch.Event), done: make(chan struct{})}
		go func() {
			defer close(h.out)
			for ev := range in.ResultChan() {
				g.mu.Lock()
				held := g.held
				g.mu.Unlock()
				if held != nil {
					select {
					case <-held:
					case <-h.done:
						return
					}
				}
				select {
				case h.out <- ev:
				case <-h.done:
					return
				}
			}
		}()
		return h
	}
	return g
}

// Hold makes events wait from now on.
func (g *EventGate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
}

// Release lets the events held, and those to come, through.
func (g *EventGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

type gatedWatch struct {
	watch.Interface
	out  chan watch.Event
	done chan struct{}
	once sync.Once
}

func (h *gatedWatch) ResultChan() <-chan watch.Event { return h.out }

func (h *gatedWatch) Stop() {
	h.once.Do(func() { close(h.done) })
	h.Interface.Stop()
}

// Pending is how many of the passes' writes to cluster's Secrets the store
// has not been seen to hold yet.
func Pending(ws *Watches, cluster string) int {
	w := ws.watched(cluster)
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// DecodeSecretList is decodeSecretList, for tests of the wire format.
var DecodeSecretList = decodeSecretList

// KeyChecked reports whether o's key check is settled (KeyMatches
// answers without parsing).
func KeyChecked(o *Observed) bool { return o.key.Load() != keyUnknown }
