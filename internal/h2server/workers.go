package h2server

import (
	"sync"
	"time"
)

// workerIdle is how long, at least, a handler goroutine waits for another stream before it
// ends; it ends within half as long again.
const workerIdle = 10 * time.Second

// workers holds the handler goroutines that wait for a stream, the one idle longest
// first. Handing a stream to one is a pop under the lock and a send on its own channel,
// which it is blocked receiving on: no select over shared channels and no timer per
// stream. One reaper goroutine, which runs while any goroutine is idle, ends those idle
// for workerIdle, ticking at half of it.
type workers struct {
	mu      sync.Mutex
	idle    []*worker
	ticks   uint64        // the reaper's ticks
	reaping chan struct{} // closed to stop the reaper; nil when none runs
	closed  bool          // Shutdown: no goroutine waits any more
	idleFor time.Duration // for tests: workerIdle when 0
}

// worker is an idle handler goroutine.
type worker struct {
	next  chan *stream // its next stream, or nil to end; one slot, so a send never blocks
	since uint64       // the reaper's tick when it went idle
}

// get takes the goroutine that went idle last (its stack and caches the warmest), or
// returns nil when none waits.
func (p *workers) get() *worker {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	w := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return w
}

// put makes w wait for a stream; false (after Shutdown) means it ends instead.
func (p *workers) put(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	w.since = p.ticks
	p.idle = append(p.idle, w)
	if p.reaping == nil {
		p.reaping = make(chan struct{})
		go p.reap(p.reaping)
	}
	return true
}

// reap ends, at every tick, the goroutines idle since at least two ticks before the last
// (workerIdle to 1.5 × workerIdle), and returns once none is left or stop is closed.
func (p *workers) reap(stop chan struct{}) {
	idle := p.idleFor
	if idle == 0 {
		idle = workerIdle
	}
	t := time.NewTicker(idle / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		p.ticks++
		n := 0
		for n < len(p.idle) && p.ticks-p.idle[n].since > 2 {
			p.idle[n].next <- nil
			n++
		}
		left := copy(p.idle, p.idle[n:])
		clear(p.idle[left:])
		p.idle = p.idle[:left]
		if left == 0 {
			p.reaping = nil
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// close ends every idle goroutine and the reaper; the goroutines that are busy end once
// their stream has.
func (p *workers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		w.next <- nil
	}
	p.idle = nil
	if p.reaping != nil {
		close(p.reaping)
		p.reaping = nil
	}
}
