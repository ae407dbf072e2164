// Package reqctx is the context of one request in Gangway's HTTP servers (h1server,
// h2server).
package reqctx

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
)

// Context is a request's context: its connection's values and deadline (the embedded
// parent), cancelled by the server with Cancel when the request ends or breaks. The
// parent's own cancellation is not followed: the servers cancel every request of a
// connection that ends.
//
// It can be part of a larger allocation (the zero value with Context set is ready), it
// keeps the cause it was cancelled with (Cause), and it takes callbacks itself
// (AfterFunc), which context.AfterFunc and derived contexts use: with a context from
// context.WithCancelCause per request, each of those would also make the request's done
// channel, a children map and a child context.
type Context struct {
	context.Context // the parent

	mu     sync.Mutex
	done   chan struct{} // made by the first Done
	err    error
	cause  error
	funcs  []afterFunc
	slot   [1]afterFunc // funcs' first backing array
	closer io.Closer    // closed on cancellation (Watch)
	held   bool         // Hold: reachable after the request
}

// lastID is the last id Register gave, in any context: ids are never given twice, so that
// an Unregister that comes late (after a cancellation woke its Waker) cannot remove a
// registration made after the context was used again (Quiet).
var lastID atomic.Uint64

type afterFunc struct {
	id uint64
	w  Waker
}

// A Waker is woken, on a goroutine of its own, once the context it is registered with is
// cancelled (Register). A pointer to a type with a Wake method is one without the
// allocation a function value bound to it would take.
type Waker interface{ Wake() }

// funcWaker is AfterFunc's function as a Waker.
type funcWaker func()

func (f funcWaker) Wake() { f() }

func (c *Context) Done() <-chan struct{} {
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

func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Cause returns why the context was cancelled, or nil (context.Cause cannot see it).
func (c *Context) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// AfterFunc arranges for f to run on its own goroutine once the context is cancelled (at
// once if it is); stop undoes that if f has not started, and reports whether it did.
func (c *Context) AfterFunc(f func()) (stop func() bool) {
	id := c.Register(funcWaker(f))
	return func() bool { return c.Unregister(id) }
}

// Register is AfterFunc for a Waker, without the function value its stop costs: it
// returns an id for Unregister, which is that stop. A context cancelled already wakes w at
// once and returns 0, which Unregister does not know.
func (c *Context) Register(w Waker) (id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go w.Wake()
		return 0
	}
	id = lastID.Add(1)
	if c.funcs == nil {
		c.funcs = c.slot[:0]
	}
	c.funcs = append(c.funcs, afterFunc{id, w})
	return id
}

// Unregister undoes Register(w) if w has not been woken, and reports whether it did.
func (c *Context) Unregister(id uint64) bool {
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

// Watch arranges for cl to be closed when the context is cancelled, at once if it already
// is, without the goroutine and allocation of an AfterFunc: an upstream exchange closes
// its connection this way. It reports false, doing nothing, when another closer is
// watched (the caller then falls back to AfterFunc).
func (c *Context) Watch(cl io.Closer) bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		cl.Close()
		return true
	}
	if c.closer != nil {
		c.mu.Unlock()
		return false
	}
	c.closer = cl
	c.mu.Unlock()
	return true
}

// Unwatch stops watching cl. It reports whether it did so before the cancellation closed
// it, as the stop function of AfterFunc does.
func (c *Context) Unwatch(cl io.Closer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closer == cl {
		c.closer = nil
	}
	return c.err == nil
}

// Cancel cancels the context with cause (context.Canceled when nil), closes the watched
// closer and starts the AfterFunc functions. Only the first call counts. The cause is set
// and Done closed before the closer is: whoever sees the closed connection's error also
// sees why.
func (c *Context) Cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err, c.cause = context.Canceled, cause
	if c.done != nil {
		close(c.done)
	}
	funcs, closer := c.funcs, c.closer
	c.funcs, c.closer = nil, nil
	c.mu.Unlock()
	if closer != nil {
		closer.Close()
	}
	for _, a := range funcs {
		go a.w.Wake()
	}
}

// Quiet reports whether nothing outside the request's own code can still reach c: no Done
// channel was handed out (a goroutine may be waiting on it, as context.AfterFunc's and
// derived contexts' do, and read c when it closes), and no AfterFunc, Register or Watch is
// pending. A server that finds its request's context quiet once the handler has returned,
// and knows of nothing else holding the request, may use the request's memory for another
// (the context zeroed, as a new one).
func (c *Context) Quiet() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done == nil && len(c.funcs) == 0 && c.closer == nil && !c.held
}

// Hold marks c as reachable after its request, so that Quiet reports false: a context
// derived from c that outlives the request (and may still read c, for a value or a cause)
// calls it.
func (c *Context) Hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

func (c *Context) String() string { return "request context" }

// Cause is context.Cause that also sees the cause of a context with a Cause method (this
// package's, and others of the same kind).
func Cause(ctx context.Context) error {
	if c, ok := ctx.(interface{ Cause() error }); ok {
		return c.Cause()
	}
	return context.Cause(ctx)
}
