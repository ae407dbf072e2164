package h1server

import (
	"context"
	"sync"
)

// reqContext is a request's context: the connection's values and deadline, cancelled
// when the handler returns, when the client goes away, or when a write to it fails.
//
// It is part of the response, so a request costs no context allocation, and it takes
// callbacks directly (AfterFunc, which context.AfterFunc and derived contexts use): with
// a cancelCtx per request, a derived context or AfterFunc would also make its done
// channel and children map.
type reqContext struct {
	context.Context // the connection's

	mu    sync.Mutex
	done  chan struct{} // made by the first Done
	err   error
	funcs []afterFunc
	slot  [1]afterFunc // funcs' first backing array
	next  uint64
}

type afterFunc struct {
	id uint64
	f  func()
}

func (c *reqContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *reqContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc arranges for f to run on its own goroutine once the context is cancelled (at
// once if it is); stop undoes that if f has not started, and reports whether it did.
func (c *reqContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	c.next++
	id := c.next
	if c.funcs == nil {
		c.funcs = c.slot[:0]
	}
	c.funcs = append(c.funcs, afterFunc{id, f})
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, a := range c.funcs {
			if a.id == id {
				c.funcs = append(c.funcs[:i], c.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

func (c *reqContext) cancel() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	c.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
}

func (c *reqContext) String() string { return "h1server request context" }
