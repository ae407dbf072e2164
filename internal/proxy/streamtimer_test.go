package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gangway-ecs/gangway/internal/reqctx"
	"github.com/gangway-ecs/gangway/internal/upstream"
)

// The stream timer's tests run in synctest bubbles: the timer and upstream.MonoNow read the bubble's
// fake clock, so a timeout fires at exactly its deadline, and a test asserts that instant.

// waitDone fails the test unless ctx is cancelled once every other goroutine of the bubble
// waits, with no time passing: for a cancellation that follows from the caller's own act.
func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	synctest.Wait()
	if ctx.Err() == nil {
		t.Fatal("context not cancelled")
	}
}

// waitCancelled waits for st's cancellation, which a timer brings, and returns how long
// after start it came. The fake clock jumps to the next timer while the bubble waits; with
// no timer left, the bubble deadlocks and the test fails.
func waitCancelled(st *streamTimer, start time.Time) time.Duration {
	<-st.Done()
	return time.Since(start)
}

func TestStreamTimerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		st := newStreamTimer(context.Background(), 50*time.Millisecond, time.Minute)
		defer st.stop()
		if at := waitCancelled(st, start); at != 50*time.Millisecond {
			t.Fatalf("cancelled after %v, want the 50ms timeout", at)
		}
		if st.Err() != context.Canceled || st.Cause() != errUpstreamTimeout || reqctx.Cause(st) != errUpstreamTimeout {
			t.Fatalf("err %v, cause %v", st.Err(), st.Cause())
		}
	})
}

func TestStreamTimerIdleTimeoutWaitsForActivity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		st := newStreamTimer(context.Background(), 0, 500*time.Millisecond)
		defer st.stop()
		// Activity every 20ms for 800ms keeps the stream alive past its idle timeout.
		for time.Since(start) < 800*time.Millisecond {
			if st.Err() != nil {
				t.Fatalf("cancelled after %s despite activity", time.Since(start))
			}
			st.last.Store(upstream.MonoNow())
			time.Sleep(20 * time.Millisecond)
		}
		last := time.Now().Add(-20 * time.Millisecond)
		if at := waitCancelled(st, last); at != 500*time.Millisecond {
			t.Fatalf("cancelled %v after the last activity, want the 500ms idle timeout", at)
		}
		if st.Cause() != errIdleTimeout {
			t.Fatalf("cause %v", st.Cause())
		}
	})
}

func TestStreamTimerFollowsParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancel := context.WithCancelCause(context.Background())
		st := newStreamTimer(parent, time.Minute, time.Minute)
		defer st.stop()
		if st.Err() != nil || st.Cause() != nil {
			t.Fatalf("err %v, cause %v before cancellation", st.Err(), st.Cause())
		}
		gone := errors.New("client gone")
		cancel(gone)
		waitDone(t, st)
		if st.Err() != context.Canceled || st.Cause() != gone {
			t.Fatalf("err %v, cause %v", st.Err(), st.Cause())
		}
	})
}

// The servers' request contexts take the timer's callback by id: a cancelled request
// cancels the timer with its cause, and stop takes the callback back.
func TestStreamTimerFollowsRequestContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := &reqctx.Context{Context: context.Background()}
		st := newStreamTimer(parent, time.Minute, time.Minute)
		if st.reg == nil {
			t.Fatal("the timer did not register with the request context")
		}
		gone := errors.New("client gone")
		parent.Cancel(gone)
		waitDone(t, st)
		if st.Cause() != gone {
			t.Fatalf("cause %v, want the request's", st.Cause())
		}
		st.stop()

		parent = &reqctx.Context{Context: context.Background()}
		st = newStreamTimer(parent, time.Minute, time.Minute)
		st.stop()
		if parent.Unregister(st.regID) {
			t.Fatal("stop left the callback with the request context")
		}
		parent.Cancel(gone)
		if st.Cause() != context.Canceled {
			t.Fatalf("cause %v after stop, want context.Canceled", st.Cause())
		}
	})
}

func TestStreamTimerStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := context.WithValue(context.Background(), connKey{}, "v")
		st := newStreamTimer(parent, time.Minute, 0)
		if st.Value(connKey{}) != "v" {
			t.Fatal("value of the parent not found")
		}
		st.stop()
		waitDone(t, st)
		if st.Cause() != context.Canceled {
			t.Fatalf("cause %v after stop", st.Cause())
		}
		st.stop() // again: no effect
	})
}

// Contexts derived from a streamTimer (as http.Transport derives them) and AfterFunc on it
// follow its cancellation.
func TestStreamTimerDerivedContexts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		st := newStreamTimer(context.Background(), 100*time.Millisecond, 0)
		defer st.stop()
		child, cancelChild := context.WithCancel(st)
		defer cancelChild()
		ran := make(chan struct{})
		context.AfterFunc(st, func() { close(ran) })
		var stoppedRan atomic.Bool
		stop := context.AfterFunc(st, func() { stoppedRan.Store(true) })
		if !stop() {
			t.Fatal("stop before the cancellation reported false")
		}
		if at := waitCancelled(st, start); at != 100*time.Millisecond {
			t.Fatalf("cancelled after %v, want the 100ms timeout", at)
		}
		waitDone(t, child)
		if context.Cause(child) != context.Canceled {
			t.Fatalf("child cause %v", context.Cause(child))
		}
		select {
		case <-ran:
		default:
			t.Fatal("AfterFunc did not run")
		}
		if stop() {
			t.Fatal("stop after the cancellation reported true")
		}
		// Registered after the cancellation: runs at once.
		late := make(chan struct{})
		context.AfterFunc(st, func() { close(late) })
		synctest.Wait()
		select {
		case <-late:
		default:
			t.Fatal("AfterFunc after the cancellation did not run")
		}
		if stoppedRan.Load() {
			t.Fatal("a stopped AfterFunc ran")
		}
	})
}

type closeCounter struct{ n atomic.Int32 }

func (c *closeCounter) Close() error { c.n.Add(1); return nil }

func TestStreamTimerWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		st := newStreamTimer(context.Background(), 100*time.Millisecond, 0)
		defer st.stop()
		var a, b, c closeCounter
		if !st.Watch(&a) {
			t.Fatal("watch refused")
		}
		if !st.Unwatch(&a) {
			t.Fatal("unwatch before the cancellation reported false")
		}
		if !st.Watch(&b) {
			t.Fatal("watch after unwatch refused")
		}
		if st.Watch(&c) {
			t.Fatal("a second connection watched at once")
		}
		if at := waitCancelled(st, start); at != 100*time.Millisecond {
			t.Fatalf("cancelled after %v, want the 100ms timeout", at)
		}
		// Done closes before the watched closer does (reqctx.Context.Cancel), so the close
		// is waited for.
		synctest.Wait()
		if a.n.Load() != 0 || b.n.Load() != 1 {
			t.Fatalf("closed: unwatched %d times, watched %d times", a.n.Load(), b.n.Load())
		}
		if st.Unwatch(&b) {
			t.Fatal("unwatch after the cancellation reported true")
		}
		if !st.Watch(&c) || c.n.Load() != 1 {
			t.Fatal("watch after the cancellation did not close at once")
		}
	})
}

// Exchanges that take one timer slot in turn each get their own deadline: a shorter one
// after a longer re-arms the slot earlier, a longer one after a shorter is cancelled at its
// own deadline and not at the time the slot was armed for, and a slot with no exchange
// left disarms when it fires.
func TestStreamTimerSlotReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One slot, as the pool would give it again (under the race detector it does not,
		// at random).
		slot := new(timerSlot)
		take := func(timeout, idle time.Duration) *streamTimer {
			st := new(streamTimer)
			st.armOn(context.Background(), timeout, idle, slot)
			return st
		}
		take(time.Minute, 0).stop()

		start := time.Now()
		short := take(50*time.Millisecond, 0)
		if at := waitCancelled(short, start); at != 50*time.Millisecond {
			t.Fatalf("cancelled after %v, want its 50ms timeout", at)
		}
		short.stop()

		// The slot is armed for nothing now (the timer fired); a minute-long exchange arms it.
		start = time.Now()
		long := take(time.Minute, 0)
		time.Sleep(30 * time.Second)
		long.stop()
		next := take(0, 45*time.Second) // the slot still waits for the first minute's end
		if at := waitCancelled(next, start); at != 75*time.Second {
			t.Fatalf("cancelled %v after the long exchange began, want 30s + the 45s idle timeout", at)
		}
		if next.Cause() != errIdleTimeout {
			t.Fatalf("cause %v", next.Cause())
		}
		next.stop()

		// Given back, the slot's timer fires once more at most and stays disarmed.
		last := take(time.Second, 0)
		last.stop()
		time.Sleep(2 * time.Second)
		slot.mu.Lock()
		at := slot.at
		slot.mu.Unlock()
		if at != 0 {
			t.Fatal("a slot with no exchange stayed armed")
		}
	})
}

// TestStreamTimerStopSaysWhetherAlone: stop reports that nothing else can reach the timer
// only when it ended the exchange itself, with nothing registered on it or handed out;
// otherwise it marks the request's context as held, so that the server does not use the
// request again while something may still read it through the timer.
func TestStreamTimerStopSaysWhetherAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			alone bool
			do    func(st *streamTimer, parent *reqctx.Context)
		}{
			{"stopped in time", true, func(*streamTimer, *reqctx.Context) {}},
			{"watched closer unwatched", true, func(st *streamTimer, _ *reqctx.Context) {
				c := new(closeCounter)
				st.Watch(c)
				st.Unwatch(c)
			}},
			{"expired by its slot", false, func(st *streamTimer, _ *reqctx.Context) {
				time.Sleep(time.Second) // Err, not Done, which would be enough alone
				synctest.Wait()
				if st.Err() == nil {
					t.Fatal("not expired")
				}
			}},
			{"woken by the request", false, func(st *streamTimer, parent *reqctx.Context) {
				parent.Cancel(nil)
				waitDone(t, st)
			}},
			{"a derived context", false, func(st *streamTimer, _ *reqctx.Context) {
				_, cancel := context.WithCancel(st)
				cancel()
			}},
			{"Done handed out", false, func(st *streamTimer, _ *reqctx.Context) { st.Done() }},
		} {
			parent := &reqctx.Context{Context: context.Background()}
			st := newStreamTimer(parent, 50*time.Millisecond, 0)
			tc.do(st, parent)
			if alone := st.stop(); alone != tc.alone {
				t.Errorf("%s: stop reported alone %v, want %v", tc.name, alone, tc.alone)
			}
			if parent.Quiet() != tc.alone {
				t.Errorf("%s: the request's context quiet %v, want %v", tc.name, parent.Quiet(), tc.alone)
			}
			synctest.Wait()
		}
	})
}
