package proxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/reqctx"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// streamTimer enforces a route's upstream timeout and stream idle timeout, and is the
// context of the upstream exchange: it is cancelled with errUpstreamTimeout once the
// timeout has passed since the start, with errIdleTimeout when no activity was noted for
// the idle timeout, and with its parent's cause when its parent (the downstream request)
// is cancelled. Activity is a timestamp store (cheap on every write); one timer re-arms
// itself for whichever deadline comes next.
//
// Its cancellable half is a reqctx.Context (whose parent is the downstream request's
// context), so that an exchange costs one registration with the parent and one timer: an
// h1Pool exchange asks it directly (Watch) to close its upstream connection on
// cancellation, where a derived context would take a context.AfterFunc, a child context
// and its bookkeeping per request. Its Err is context.Canceled once cancelled; Cause
// (and reqctx.Cause) returns why.
type streamTimer struct {
	reqctx.Context
	reg        registrar    // the parent, when it takes callbacks by id (the servers' contexts)
	regID      uint64       // the callback's id with reg
	stopParent func() bool  // otherwise, context.AfterFunc's stop
	last       atomic.Int64 // upstream.MonoNow of the last activity
	start      int64
	timeout    time.Duration
	idle       time.Duration
	t          *time.Timer
}

func newStreamTimer(parent context.Context, timeout, idle time.Duration) *streamTimer {
	st := new(streamTimer)
	st.arm(parent, timeout, idle)
	return st
}

// arm starts a zero streamTimer, which may be part of a larger allocation.
func (st *streamTimer) arm(parent context.Context, timeout, idle time.Duration) {
	st.Context.Context = parent
	st.timeout, st.idle, st.start = timeout, idle, upstream.MonoNow()
	st.last.Store(st.start)
	wake := st.wake // one function value for both
	if reg, ok := parent.(registrar); ok {
		// The servers' request contexts (reqctx) take the callback themselves, without the
		// child context that context.AfterFunc would make or the function value of a stop.
		st.reg, st.regID = reg, reg.Register(wake)
	} else {
		st.stopParent = context.AfterFunc(parent, wake)
	}
	st.t = time.AfterFunc(st.next(st.start), wake)
}

// registrar is a context that runs a function when it is cancelled, as context.AfterFunc
// does, and stops it by id (reqctx.Context).
type registrar interface {
	Register(func()) uint64
	Unregister(uint64) bool
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
	if parent := st.Context.Context; parent.Err() != nil {
		st.Cancel(reqctx.Cause(parent))
		return
	}
	now := upstream.MonoNow()
	switch {
	case st.timeout > 0 && now-st.start >= int64(st.timeout):
		st.Cancel(errUpstreamTimeout)
	case st.idle > 0 && now-st.last.Load() >= int64(st.idle):
		st.Cancel(errIdleTimeout)
	default:
		st.t.Reset(st.next(now))
	}
}

// stop ends the timer and cancels the context (with cause context.Canceled), as a
// CancelFunc does once the exchange is over.
func (st *streamTimer) stop() {
	st.t.Stop()
	if st.reg != nil {
		st.reg.Unregister(st.regID)
	} else {
		st.stopParent()
	}
	st.Cancel(nil)
}

// A stream timer closes the upstream connection of its exchange itself.
var _ upstream.ConnWatcher = (*streamTimer)(nil)
