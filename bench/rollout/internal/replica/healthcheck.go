package replica

import (
	"context"
	"os/exec"
	"sync"
	"time"
)

// HealthStatus is a container's health as ECS reports it.
type HealthStatus int

const (
	Unknown   HealthStatus = iota // being evaluated: no success yet, fewer than Retries failures
	Healthy                       // the last check passed
	Unhealthy                     // Retries checks in a row failed after the start period
)

func (s HealthStatus) String() string {
	switch s {
	case Healthy:
		return "HEALTHY"
	case Unhealthy:
		return "UNHEALTHY"
	}
	return "UNKNOWN"
}

// HealthCheck is a task definition's container healthCheck, run the way the ECS agent (through
// Docker) runs it: the first check Interval after the container starts, then every Interval;
// a check passes when the command exits 0 within Timeout; one pass makes the container
// HEALTHY; Retries failures in a row make it UNHEALTHY, except that failures during
// StartPeriod do not count until a check has passed: the first pass ends the start period
// (Docker's HEALTHCHECK --start-period, which ECS's startPeriod is).
type HealthCheck struct {
	// Command is the program and its arguments (the task definition's ["CMD", ...]).
	Command     []string
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// Run checks until ctx ends, calling report after each check with the resulting status.
func (h HealthCheck) Run(ctx context.Context, report func(HealthStatus)) {
	start := time.Now()
	status := Unknown
	failures := 0
	started := false // a check has passed: the start period is over
	t := time.NewTicker(h.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok := h.once(ctx)
		if ctx.Err() != nil {
			return // the check was cut short by the stop, not failed
		}
		switch {
		case ok:
			failures = 0
			status = Healthy
			started = true
		case !started && time.Since(start) < h.StartPeriod:
			// does not count
		default:
			failures++
			if failures >= h.Retries {
				status = Unhealthy
			}
		}
		report(status)
	}
}

func (h HealthCheck) once(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Command[0], h.Command[1:]...)
	cmd.WaitDelay = time.Second
	return cmd.Run() == nil
}

// healthMonitor holds the latest status and lets waiters learn of changes.
type healthMonitor struct {
	mu        sync.Mutex
	status    HealthStatus
	unhealthy int
	changed   chan struct{}
}

func newHealthMonitor() *healthMonitor { return &healthMonitor{changed: make(chan struct{})} }

func (m *healthMonitor) set(s HealthStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s == m.status {
		return
	}
	if s == Unhealthy {
		m.unhealthy++
	}
	m.status = s
	close(m.changed)
	m.changed = make(chan struct{})
}

// get returns the status and a channel closed at the next change.
func (m *healthMonitor) get() (HealthStatus, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status, m.changed
}

func (m *healthMonitor) unhealthyCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unhealthy
}
