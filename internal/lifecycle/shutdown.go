// Package lifecycle runs the proxy's shutdown choreography:
//
//  1. readiness fails at once (the registry turns TERMINATING); liveness stays green;
//  2. the shutdown delay: keep accepting and serving while every load balancer notices;
//  3. stop accepting; HTTP/1 responses carry Connection: close, HTTP/2 connections get GOAWAY;
//  4. wait for in-flight requests up to the drain timeout;
//  5. close what is left (WebSockets with a 1001 close frame, TCP tunnels) and return, always
//     before the deadline (the task's stopTimeout), after which ECS sends SIGKILL.
//
// A second signal ends the choreography at once; the caller exits.
package lifecycle

import (
	"context"
	"log/slog"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
)

// Drainer is a part of the process that holds connections: the data plane, the admin
// server. Shutdown calls StopAccepting once, then Drain, then Close.
type Drainer interface {
	// StopAccepting closes the listeners. Open connections keep being served; responses
	// tell clients to go away (Connection: close, GOAWAY).
	StopAccepting()
	// Drain waits until no request is in flight or ctx is done, and returns the number of
	// connections still open.
	Drain(ctx context.Context) int
	// Close force-closes whatever is left. It must be safe after Drain returned 0.
	Close()
}

// Shutdown is the choreography's settings and the parts it drives.
type Shutdown struct {
	// Delay is how long to keep serving after readiness fails.
	Delay time.Duration
	// DrainTimeout bounds the wait for in-flight requests.
	DrainTimeout time.Duration
	// Deadline is the time from the signal to the latest exit (the task's stopTimeout).
	// Every phase is cut short so that Run returns at least Margin before it.
	Deadline time.Duration
	// Margin is kept free before Deadline for closing and exiting. Default 1 s.
	Margin time.Duration

	Health *health.Registry
	Logger *slog.Logger
	// Drainers are drained together, in parallel, after the delay. A probe server that must
	// keep answering 503 until the end makes StopAccepting and Drain no-ops and stops in Close.
	Drainers []Drainer
}

// Run performs the choreography, which began at start (when the signal arrived). It returns
// early when abort is closed (a second signal). It reports what it did in the log: each
// phase with its duration and the connections left.
func (s *Shutdown) Run(start time.Time, abort <-chan struct{}) {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	margin := s.Margin
	if margin <= 0 {
		margin = time.Second
	}
	hardStop := start.Add(s.Deadline - margin)
	if s.Deadline <= 0 {
		hardStop = start.Add(s.Delay + s.DrainTimeout + margin)
	}

	s.Health.BeginShutdown()
	log.Info("shutdown: readiness failing, still serving", "phase", "delay", "delay_ms", ms(s.Delay), "deadline_ms", ms(s.Deadline))

	// Phase 2: keep serving while load balancers notice.
	delayEnd := minTime(start.Add(s.Delay), hardStop)
	if !sleepUntil(delayEnd, abort) {
		log.Warn("shutdown: aborted by a second signal", "phase", "delay", "elapsed_ms", since(start))
		return
	}
	log.Info("shutdown: delay over, stop accepting", "phase", "stop-accepting", "elapsed_ms", since(start))

	// Phase 3 and 4: stop accepting, then wait for in-flight requests.
	phase := time.Now()
	for _, d := range s.Drainers {
		d.StopAccepting()
	}
	drainEnd := minTime(phase.Add(s.DrainTimeout), hardStop)
	ctx, cancel := context.WithDeadline(context.Background(), drainEnd)
	go func() {
		select {
		case <-abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	left := make(chan int, len(s.Drainers))
	for _, d := range s.Drainers {
		go func(d Drainer) { left <- d.Drain(ctx) }(d)
	}
	remaining := 0
	for range s.Drainers {
		remaining += <-left
	}
	aborted := false
	select {
	case <-abort:
		aborted = true
	default:
	}
	cancel()
	log.Info("shutdown: drain finished", "phase", "drain", "duration_ms", since(phase),
		"connections_left", remaining, "aborted", aborted)

	// Phase 5: close what is left.
	phase = time.Now()
	for _, d := range s.Drainers {
		d.Close()
	}
	log.Info("shutdown: complete", "phase", "close", "duration_ms", since(phase),
		"total_ms", since(start), "closed_connections", remaining)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sleepUntil waits until t; it returns false when abort closes first.
func sleepUntil(t time.Time, abort <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-abort:
		return false
	}
}

// Logs give every duration in milliseconds, as a number under a key ending in _ms, like the
// access log's duration_ms.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func since(t time.Time) float64 { return ms(time.Since(t)) }
