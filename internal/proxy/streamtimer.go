package proxy

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gangway-ecs/gangway/internal/reqctx"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// streamTimer enforces a route's upstream timeout and stream idle timeout, and is the
// context of the upstream exchange: it is cancelled with errUpstreamTimeout once the
// timeout has passed since the start, with errIdleTimeout when no activity was noted for
// the idle timeout, and with its parent's cause when its parent (the downstream request)
// is cancelled. Activity is a timestamp store (cheap on every write).
//
// Its cancellable half is a reqctx.Context (whose parent is the downstream request's
// context), so that an exchange costs one registration with the parent: an h1Pool
// exchange asks it directly (Watch) to close its upstream connection on cancellation,
// where a derived context would take a context.AfterFunc, a child context and its
// bookkeeping per request. Its Err is context.Canceled once cancelled; Cause (and
// reqctx.Cause) returns why.
//
// Its deadlines are watched by a timerSlot it takes for the exchange: a runtime timer that
// outlives exchanges, so that most exchanges neither start nor stop one (see timerSlot).
type streamTimer struct {
	reqctx.Context
	reg        registrar    // the parent, when it takes callbacks by id (the servers' contexts)
	regID      uint64       // the callback's id with reg
	stopParent func() bool  // otherwise, context.AfterFunc's stop
	last       atomic.Int64 // upstream.MonoNow of the last activity
	start      int64
	timeout    time.Duration
	idle       time.Duration
	slots      *timerSlots // where slot goes back, if anywhere
	slot       *timerSlot  // nil once stopped
}

func newStreamTimer(parent context.Context, timeout, idle time.Duration) *streamTimer {
	st := new(streamTimer)
	st.arm(parent, timeout, idle, new(timerSlots))
	return st
}

// arm starts a zero streamTimer, which may be part of a larger allocation, with a slot
// from slots, to which stop gives it back.
func (st *streamTimer) arm(parent context.Context, timeout, idle time.Duration, slots *timerSlots) {
	st.slots = slots
	st.armOn(parent, timeout, idle, slots.get())
}

// armOn is arm with a given slot.
func (st *streamTimer) armOn(parent context.Context, timeout, idle time.Duration, slot *timerSlot) {
	st.Context.Context = parent
	st.timeout, st.idle, st.start = timeout, idle, upstream.MonoNow()
	st.last.Store(st.start)
	if reg, ok := parent.(registrar); ok {
		// The servers' request contexts (reqctx) wake st themselves, without the child
		// context that context.AfterFunc would make or the function values of the callback
		// and of its stop.
		st.reg, st.regID = reg, reg.Register(st)
	} else {
		st.stopParent = context.AfterFunc(parent, st.Wake)
	}
	st.slot = slot
	slot.watch(st)
}

// registrar is a context that wakes a Waker when it is cancelled, as context.AfterFunc
// runs a function, and stops it by id (reqctx.Context).
type registrar interface {
	Register(reqctx.Waker) uint64
	Unregister(uint64) bool
}

// deadline returns the monotonic time of the earliest deadline (math.MaxInt64 for none).
func (st *streamTimer) deadline() int64 {
	d := int64(math.MaxInt64)
	if st.timeout > 0 {
		d = st.start + int64(st.timeout)
	}
	if st.idle > 0 {
		d = min(d, st.last.Load()+int64(st.idle))
	}
	return d
}

// expired returns why st is over at now, or nil.
func (st *streamTimer) expired(now int64) error {
	switch {
	case st.timeout > 0 && now-st.start >= int64(st.timeout):
		return errUpstreamTimeout
	case st.idle > 0 && now-st.last.Load() >= int64(st.idle):
		return errIdleTimeout
	}
	return nil
}

// Wake runs when the parent is cancelled.
func (st *streamTimer) Wake() {
	st.Cancel(reqctx.Cause(st.Context.Context))
}

// stop ends the timer and cancels the context (with cause context.Canceled), as a
// CancelFunc does once the exchange is over. It reports whether nothing else can reach st
// any more: its slot had not expired it (whose cancellation comes after the slot's lock),
// its parent had not woken it, and its context was quiet (reqctx.Context.Quiet): only then
// may its memory be used for another exchange.
func (st *streamTimer) stop() (alone bool) {
	alone = true
	if st.slot != nil {
		alone = st.slot.release(st)
		if st.slots != nil {
			st.slots.put(st.slot)
		}
		st.slot = nil
	}
	if st.reg != nil {
		alone = st.reg.Unregister(st.regID) && alone
	} else {
		alone = st.stopParent() && alone
	}
	alone = st.Quiet() && alone
	st.Cancel(nil)
	if h, ok := st.Context.Context.(holder); ok && !alone {
		// Whatever may still reach st may read its parent through it.
		h.Hold()
	}
	return alone
}

// holder is a context that can be told it is reachable after its request (reqctx.Context).
type holder interface{ Hold() }

// timerSlots hands out timer slots, a server's exchanges taking them in turn.
type timerSlots struct{ pool sync.Pool }

func (p *timerSlots) get() *timerSlot {
	if s, ok := p.pool.Get().(*timerSlot); ok {
		return s
	}
	return new(timerSlot)
}

func (p *timerSlots) put(s *timerSlot) { p.pool.Put(s) }

// timerSlot watches the deadlines of one exchange at a time with a runtime timer kept from
// one exchange to the next. The timer is armed no later than the watched exchange's
// earliest deadline; when it fires it cancels the exchange if a deadline has passed and
// otherwise re-arms for the exchange's deadline, or stays disarmed when no exchange is
// watched. An exchange whose deadline is no earlier than the time the timer is armed for
// (the common case: one of the same route as the exchange the timer was armed for, begun
// after it) touches no timer at all, where a timer per exchange is a start and a stop on
// the runtime's timer heap, under its lock, each time. A slot dropped by the pool is
// collected once its timer has fired.
type timerSlot struct {
	mu  sync.Mutex
	t   *time.Timer
	at  int64 // upstream.MonoNow when t fires; 0: disarmed
	cur *streamTimer
}

// watch makes st the exchange watched.
func (s *timerSlot) watch(st *streamTimer) {
	d := st.deadline()
	s.mu.Lock()
	s.cur = st
	if d != math.MaxInt64 && (s.at == 0 || s.at > d) {
		s.armLocked(d, upstream.MonoNow())
	}
	s.mu.Unlock()
}

// release stops watching st. It reports false when st was no longer watched: its
// deadline had passed, and fire cancels it (or has).
func (s *timerSlot) release(st *streamTimer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != st {
		return false
	}
	s.cur = nil
	return true
}

func (s *timerSlot) armLocked(at, now int64) {
	s.at = at
	if s.t == nil {
		s.t = time.AfterFunc(time.Duration(at-now), s.fire)
		return
	}
	s.t.Reset(time.Duration(at - now))
}

func (s *timerSlot) fire() {
	now := upstream.MonoNow()
	s.mu.Lock()
	st := s.cur
	if st == nil {
		s.at = 0
		s.mu.Unlock()
		return
	}
	err := st.expired(now)
	if err != nil {
		s.at, s.cur = 0, nil // st is over: release finds it gone
	} else {
		s.armLocked(st.deadline(), now)
	}
	s.mu.Unlock()
	if err != nil {
		st.Cancel(err)
	}
}

// A stream timer closes the upstream connection of its exchange itself.
var _ upstream.ConnWatcher = (*streamTimer)(nil)
