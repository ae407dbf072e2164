package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
)

// recorder is a Drainer that records when each step happened. Drain blocks until ctx ends
// or busy elapses, like a server with a request in flight.
type recorder struct {
	mu                sync.Mutex
	stop, drain, done time.Time
	busy              time.Duration
	left              int
}

func (r *recorder) StopAccepting() { r.mu.Lock(); r.stop = time.Now(); r.mu.Unlock() }
func (r *recorder) Drain(ctx context.Context) int {
	select {
	case <-time.After(r.busy):
		return 0
	case <-ctx.Done():
		r.mu.Lock()
		r.drain = time.Now()
		r.mu.Unlock()
		return r.left
	}
}
func (r *recorder) Close() { r.mu.Lock(); r.done = time.Now(); r.mu.Unlock() }

// stopped reports whether StopAccepting was called; it may be asked while Run runs.
func (r *recorder) stopped() bool { r.mu.Lock(); defer r.mu.Unlock(); return !r.stop.IsZero() }

// The tests run in a synctest bubble: the clock is fake and advances only when every
// goroutine waits, so each phase's length is exact and the hour-long timeouts cost nothing.

func TestShutdownPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := health.NewRegistry()
		reg.Register(health.Spec{Name: "a", Gates: health.Readiness | health.Liveness}).Running("")
		d := &recorder{busy: 100 * time.Millisecond}
		sd := &Shutdown{Delay: 300 * time.Millisecond, DrainTimeout: 2 * time.Second, Deadline: 10 * time.Second, Health: reg, Drainers: []Drainer{d}}

		start := time.Now()
		done := make(chan struct{})
		go func() { sd.Run(start, nil); close(done) }()

		// Readiness fails at once, liveness does not.
		synctest.Wait()
		if el := time.Since(start); el != 0 {
			t.Fatalf("Run waited %v before failing readiness", el)
		}
		if reg.Evaluate(health.Readiness).OK {
			t.Fatal("readiness still passes after the shutdown began")
		}
		if !reg.Evaluate(health.Liveness).OK {
			t.Fatal("liveness failed during shutdown")
		}
		if d.stopped() {
			t.Fatal("stopped accepting before the delay")
		}
		<-done
		if got := d.stop.Sub(start); got != 300*time.Millisecond {
			t.Fatalf("stopped accepting after %v, want the 300ms delay", got)
		}
		// Nothing was in flight after 100ms: close follows then, not at the drain timeout.
		if got := d.done.Sub(d.stop); got != 100*time.Millisecond {
			t.Fatalf("closed %v after stopping to accept, want 100ms", got)
		}
		if !d.drain.IsZero() {
			t.Fatal("the drain was cut short although it finished in time")
		}
	})
}

func TestShutdownCutsDrainAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &recorder{busy: time.Hour, left: 3}
		sd := &Shutdown{Delay: 200 * time.Millisecond, DrainTimeout: time.Hour, Deadline: 1500 * time.Millisecond,
			Margin: 500 * time.Millisecond, Health: health.NewRegistry(), Drainers: []Drainer{d}}
		start := time.Now()
		sd.Run(start, nil)
		// The deadline minus the margin bounds everything, whatever the drain timeout says.
		if el := time.Since(start); el != time.Second {
			t.Fatalf("returned after %v, want 1s (deadline 1.5s - margin 0.5s)", el)
		}
		if got := d.drain.Sub(start); got != time.Second {
			t.Fatalf("drain cut after %v, want 1s", got)
		}
		if d.done.IsZero() {
			t.Fatal("close not called")
		}
	})
}

// A second signal ends the shutdown at once: during the delay nothing stops accepting;
// during the drain the drain is cut and what is left is closed.
func TestShutdownAbort(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		wantDrain bool // the drain began and was cut by the signal
	}{
		{"during the delay", time.Hour, false},
		{"during the drain", time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &recorder{busy: time.Hour, left: 2}
				sd := &Shutdown{Delay: tc.delay, DrainTimeout: time.Hour, Deadline: 3 * time.Hour, Health: health.NewRegistry(), Drainers: []Drainer{d}}
				abort := make(chan struct{})
				done := make(chan struct{})
				start := time.Now()
				go func() { sd.Run(start, abort); close(done) }()
				time.Sleep(time.Minute)
				close(abort)
				<-done
				if el := time.Since(start); el != time.Minute {
					t.Fatalf("returned %v after the start, want at the second signal (1m)", el)
				}
				if !tc.wantDrain {
					if !d.stop.IsZero() || !d.done.IsZero() {
						t.Fatal("aborted during the delay yet stopped accepting or closed")
					}
					return
				}
				if d.drain.IsZero() {
					t.Fatal("the second signal did not cut the drain")
				}
				if d.done.IsZero() {
					t.Fatal("an aborted drain did not close what was left")
				}
			})
		})
	}
}

// TestShutdownLogsMilliseconds: every duration in the shutdown's log lines is a number of
// milliseconds under a key ending in _ms, the unit of the access log's duration_ms.
func TestShutdownLogsMilliseconds(t *testing.T) {
	var buf bytes.Buffer
	synctest.Test(t, func(t *testing.T) {
		sd := &Shutdown{Delay: 50 * time.Millisecond, DrainTimeout: time.Second, Deadline: 5 * time.Second,
			Health: health.NewRegistry(), Drainers: []Drainer{&recorder{}}, Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
		sd.Run(time.Now(), nil)
	})
	lines := 0
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		for k, v := range rec {
			switch k {
			case "duration", "elapsed", "total", "delay", "deadline":
				t.Errorf("%q: %s=%v has no unit in its name", rec["msg"], k, v)
			}
			if strings.HasSuffix(k, "_ms") {
				lines++
				if _, ok := v.(float64); !ok {
					t.Errorf("%q: %s=%v is not a number", rec["msg"], k, v)
				}
			}
		}
	}
	if lines < 5 {
		t.Errorf("%d durations in milliseconds, want at least 5:\n%s", lines, buf.String())
	}
	if !strings.Contains(buf.String(), `"delay_ms":50,`) {
		t.Errorf("the first line does not say the 50 ms delay as delay_ms:\n%s", buf.String())
	}
	// The fake clock makes the elapsed time exact: the delay, then an empty drain.
	if !strings.Contains(buf.String(), `"total_ms":50,`) {
		t.Errorf("the last line does not say the 50 ms total as total_ms:\n%s", buf.String())
	}
}
