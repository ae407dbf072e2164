package proxy

import (
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/reqctx"
)

// streamTimer enforces a route's upstream timeout and stream idle timeout, and is the
// context of the upstream exchange: it is cancelled with errUpstreamTimeout once the
// timeout has passed since the start, with errIdleTimeout when no activity was noted for
// the idle timeout, and with its parent's cause when its parent (the downstream request)
// is cancelled. Activity is a timestamp store (cheap on every write); one timer re-arms
// itself for whichever deadline comes next.
//
// It is a context of its own rather than one from context.WithCancelCause, so that an
// exchange costs one registration with the parent and one timer: an h1Pool exchange asks
// it directly (watch) to close its upstream connection on cancellation, where a derived
// context would take a context.AfterFunc, a child context and its bookkeeping per request.
// Its Err is context.Canceled once cancelled, as for any cancelled context; Cause returns
// why (context.Cause, which cannot see the cause of a custom context, does not).
type streamTimer struct {
	parent     context.Context
	stopParent func() bool
	last       atomic.Int64 // monoNow of the last activity
	start      int64
	timeout    time.Duration
	idle       time.Duration
	t          *time.Timer

	mu     sync.Mutex
	done   chan struct{} // made by the first Done
	err    error
	cause  error
	closer io.Closer // closed on cancellation (watch)
	funcs  []*func() // AfterFunc registrations not yet run or stopped
}

func newStreamTimer(parent context.Context, timeout, idle time.Duration) *streamTimer {
	st := new(streamTimer)
	st.arm(parent, timeout, idle)
	return st
}

// arm starts a zero streamTimer, which may be part of a larger allocation.
func (st *streamTimer) arm(parent context.Context, timeout, idle time.Duration) {
	st.parent, st.timeout, st.idle, st.start = parent, timeout, idle, monoNow()
	st.last.Store(st.start)
	wake := st.wake // one function value for both
	if af, ok := parent.(afterFuncer); ok {
		// The HTTP/1 server's request context takes the callback itself, without the
		// child context that context.AfterFunc would make.
		st.stopParent = af.AfterFunc(wake)
	} else {
		st.stopParent = context.AfterFunc(parent, wake)
	}
	st.t = time.AfterFunc(st.next(st.start), wake)
}

// afterFuncer is a context that runs a function when it is cancelled (as context.AfterFunc).
type afterFuncer interface {
	AfterFunc(func()) (stop func() bool)
}

// next returns how long from now until the earliest deadline.
func (st *streamTimer) next(now int64) time.Duration {
	d := time.Duration(1<<63 - 1)
	if st.timeout > 0 {
		d = time.Duration(st.start + int64(st.timeout) - now)
	}
	if st.idle > 0 {
		d = min(d, time.Duration(st.last.Load()+int64(st.idle)-now))
	}
	return d
}

// wake runs when the parent is cancelled and when the timer fires.
func (st *streamTimer) wake() {
	if st.parent.Err() != nil {
		st.cancel(reqctx.Cause(st.parent))
		return
	}
	now := monoNow()
	switch {
	case st.timeout > 0 && now-st.start >= int64(st.timeout):
		st.cancel(errUpstreamTimeout)
	case st.idle > 0 && now-st.last.Load() >= int64(st.idle):
		st.cancel(errIdleTimeout)
	default:
		st.t.Reset(st.next(now))
	}
}

// stop ends the timer and cancels the context (with cause context.Canceled), as a
// CancelFunc does once the exchange is over.
func (st *streamTimer) stop() {
	st.t.Stop()
	st.stopParent()
	st.cancel(nil)
}

// cancel cancels the context with cause (context.Canceled when nil), closes the watched
// connection and starts the AfterFunc functions. Only the first call counts.
func (st *streamTimer) cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	st.mu.Lock()
	if st.err != nil {
		st.mu.Unlock()
		return
	}
	st.err, st.cause = context.Canceled, cause
	if st.done == nil {
		st.done = closedChan
	} else {
		close(st.done)
	}
	closer, funcs := st.closer, st.funcs
	st.closer, st.funcs = nil, nil
	st.mu.Unlock()
	if closer != nil {
		closer.Close()
	}
	for _, f := range funcs {
		go (*f)()
	}
}

// monoNow returns the monotonic clock in nanoseconds (since the process started): one clock
// read, where time.Now reads the wall clock as well, and a sudden change of the wall clock
// cannot fire or hold off a timeout. The stream timer and activity notes use it on every
// request.
func monoNow() int64 { return int64(time.Since(monoEpoch)) }

var monoEpoch = time.Now()

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// watch arranges for c to be closed when the context is cancelled, at once if it already
// is; unwatch undoes it. It reports false, doing nothing, when another connection is
// watched: the caller then falls back to context.AfterFunc.
func (st *streamTimer) watch(c io.Closer) bool {
	st.mu.Lock()
	if st.err != nil {
		st.mu.Unlock()
		c.Close()
		return true
	}
	if st.closer != nil {
		st.mu.Unlock()
		return false
	}
	st.closer = c
	st.mu.Unlock()
	return true
}

// unwatch stops watching the connection. It reports whether it did so before the
// cancellation closed the connection, as the stop function of context.AfterFunc does.
func (st *streamTimer) unwatch(c io.Closer) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closer == c {
		st.closer = nil
	}
	return st.err == nil
}

// Cause returns why the context was cancelled, or nil.
func (st *streamTimer) Cause() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.cause
}

func (st *streamTimer) Deadline() (time.Time, bool) { return st.parent.Deadline() }

func (st *streamTimer) Done() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done == nil {
		st.done = make(chan struct{})
	}
	return st.done
}

func (st *streamTimer) Err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

func (st *streamTimer) Value(key any) any { return st.parent.Value(key) }

// AfterFunc is context.AfterFunc for this context. The context package calls it for the
// contexts derived from this one, which would otherwise each need a goroutine to learn of
// the cancellation.
func (st *streamTimer) AfterFunc(f func()) (stop func() bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil {
		go f()
		return func() bool { return false }
	}
	p := &f
	st.funcs = append(st.funcs, p)
	return func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		i := slices.Index(st.funcs, p)
		if i < 0 {
			return false
		}
		st.funcs = slices.Delete(st.funcs, i, i+1)
		return true
	}
}
