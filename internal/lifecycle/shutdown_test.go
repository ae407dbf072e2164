package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
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

func TestShutdownPhases(t *testing.T) {
	reg := health.NewRegistry()
	reg.Register(health.Spec{Name: "a", Gates: health.Readiness | health.Liveness}).Running("")
	d := &recorder{busy: 100 * time.Millisecond}
	sd := &Shutdown{Delay: 300 * time.Millisecond, DrainTimeout: 2 * time.Second, Deadline: 10 * time.Second, Health: reg, Drainers: []Drainer{d}}

	start := time.Now()
	done := make(chan struct{})
	go func() { sd.Run(start, nil); close(done) }()

	// Readiness fails at once, liveness does not.
	deadline := time.Now().Add(2 * time.Second)
	for reg.Evaluate(health.Readiness).OK {
		if time.Now().After(deadline) {
			t.Fatal("readiness still passes after the shutdown began")
		}
		time.Sleep(time.Millisecond)
	}
	if !reg.Evaluate(health.Liveness).OK {
		t.Fatal("liveness failed during shutdown")
	}
	<-done
	if got := d.stop.Sub(start); got < 300*time.Millisecond {
		t.Fatalf("stopped accepting after %v, before the 300ms delay", got)
	}
	if d.done.IsZero() || d.done.Before(d.stop) {
		t.Fatalf("close at %v, stop at %v", d.done, d.stop)
	}
	if total := time.Since(start); total > 2*time.Second {
		t.Fatalf("took %v although nothing was in flight after 100ms", total)
	}
}

func TestShutdownCutsDrainAtDeadline(t *testing.T) {
	d := &recorder{busy: time.Hour, left: 3}
	sd := &Shutdown{Delay: 200 * time.Millisecond, DrainTimeout: time.Hour, Deadline: 1500 * time.Millisecond,
		Margin: 500 * time.Millisecond, Health: health.NewRegistry(), Drainers: []Drainer{d}}
	start := time.Now()
	sd.Run(start, nil)
	// The deadline minus the margin bounds everything, whatever the drain timeout says.
	if el := time.Since(start); el < time.Second || el > 1400*time.Millisecond {
		t.Fatalf("returned after %v, want about 1s (deadline 1.5s - margin 0.5s)", el)
	}
	if d.drain.IsZero() || d.done.IsZero() {
		t.Fatal("drain was not cut short or close not called")
	}
}

func TestShutdownAbort(t *testing.T) {
	d := &recorder{busy: time.Hour}
	sd := &Shutdown{Delay: time.Hour, DrainTimeout: time.Hour, Deadline: 2 * time.Hour, Health: health.NewRegistry(), Drainers: []Drainer{d}}
	abort := make(chan struct{})
	done := make(chan struct{})
	go func() { sd.Run(time.Now(), abort); close(done) }()
	time.Sleep(50 * time.Millisecond)
	close(abort)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not end the shutdown")
	}
	if !d.stop.IsZero() {
		t.Fatal("aborted during the delay yet stopped accepting")
	}
}

// TestShutdownLogsMilliseconds: every duration in the shutdown's log lines is a number of
// milliseconds under a key ending in _ms, the unit of the access log's duration_ms.
func TestShutdownLogsMilliseconds(t *testing.T) {
	var buf bytes.Buffer
	sd := &Shutdown{Delay: 50 * time.Millisecond, DrainTimeout: time.Second, Deadline: 5 * time.Second,
		Health: health.NewRegistry(), Drainers: []Drainer{&recorder{}}, Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	sd.Run(time.Now(), nil)
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
}
