package replica

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/config"
)

// The generated configuration is one the proxy accepts, with the settings asked for.
func TestConfigParses(t *testing.T) {
	for _, c := range []Config{
		{TrafficAddr: "127.0.0.1:18081", AdminAddr: "127.0.0.1:18082", Upstream: "127.0.0.1:18083",
			ReadinessPath: ReadinessPath, Delay: 2 * time.Second, DrainTimeout: 3 * time.Second, Deadline: 8 * time.Second},
		{TrafficAddr: "127.0.0.1:18081", AdminAddr: "127.0.0.1:18082", Upstream: "127.0.0.1:18083",
			Deadline: 6 * time.Second}, // the naive baseline
	} {
		var b bytes.Buffer
		if err := WriteConfig(&b, c); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse("replica.yaml", b.Bytes())
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		l := cfg.Listeners[0]
		if l.Address != c.TrafficAddr || l.ReadinessPath != c.ReadinessPath || cfg.Admin.Address != c.AdminAddr {
			t.Errorf("listener %+v, admin %q", l, cfg.Admin.Address)
		}
		if s := cfg.Shutdown; s.Delay != c.Delay || s.DrainTimeout != c.DrainTimeout || s.Deadline != c.Deadline {
			t.Errorf("shutdown %+v, want %v/%v/%v", s, c.Delay, c.DrainTimeout, c.Deadline)
		}
		if r := cfg.Routes[0]; !r.Required || !r.AllowWebsockets || cfg.Clusters[0].Endpoints[0] != c.Upstream {
			t.Errorf("route %+v, cluster %+v", r, cfg.Clusters[0])
		}
	}
}

// statusLog records the statuses a health check reports, and signals each.
type statusLog struct {
	mu      sync.Mutex
	seen    []HealthStatus
	changed chan struct{} // a value is waiting once a status came since the last receive
}

func (l *statusLog) report(s HealthStatus) {
	l.mu.Lock()
	l.seen = append(l.seen, s)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *statusLog) get() []HealthStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]HealthStatus(nil), l.seen...)
}

func runCheck(t *testing.T, hc HealthCheck, until func([]HealthStatus) bool) []HealthStatus {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := statusLog{changed: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() { defer close(done); hc.Run(ctx, l.report) }()
	// The check runs real commands, so the wait is on the real clock: each report wakes
	// it, and a timer bounds it.
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for !until(l.get()) {
		select {
		case <-l.changed:
		case <-deadline.C:
			cancel()
			<-done
			t.Fatalf("statuses %v: condition not reached in 20s", l.get())
		}
	}
	cancel()
	<-done
	return l.get()
}

func has(n int) func([]HealthStatus) bool {
	return func(s []HealthStatus) bool { return len(s) >= n }
}

// ECS semantics: one pass is HEALTHY; Retries failures in a row are UNHEALTHY, but
// failures inside the start period do not count.
func TestHealthCheckSemantics(t *testing.T) {
	const tick = 20 * time.Millisecond
	pass, fail := []string{"true"}, []string{"false"}

	got := runCheck(t, HealthCheck{Command: pass, Interval: tick, Timeout: time.Second, Retries: 3}, has(1))
	if got[0] != Healthy {
		t.Errorf("a passing check: %v, want HEALTHY first", got)
	}

	got = runCheck(t, HealthCheck{Command: fail, Interval: tick, Timeout: time.Second, Retries: 3}, has(3))
	if got[0] != Unknown || got[1] != Unknown || got[2] != Unhealthy {
		t.Errorf("a failing check with retries 3: %v, want UNKNOWN UNKNOWN UNHEALTHY", got)
	}

	got = runCheck(t, HealthCheck{Command: fail, Interval: tick, Timeout: time.Second, Retries: 1, StartPeriod: time.Hour}, has(5))
	for _, s := range got {
		if s != Unknown {
			t.Fatalf("failures inside the start period: %v, want UNKNOWN only", got)
		}
	}

	// A pass ends the start period: the failures after it count.
	flip := filepath.Join(t.TempDir(), "up")
	os.WriteFile(flip, nil, 0o644)
	got = runCheck(t, HealthCheck{Command: []string{"test", "-e", flip}, Interval: tick, Timeout: time.Second, Retries: 2, StartPeriod: time.Hour},
		func(s []HealthStatus) bool {
			if len(s) == 1 {
				os.Remove(flip)
			}
			return len(s) >= 3
		})
	if got[0] != Healthy || got[1] != Healthy || got[2] != Unhealthy {
		t.Errorf("failures after a pass inside the start period: %v, want HEALTHY HEALTHY UNHEALTHY", got)
	}

	// A check that outlives its timeout fails.
	got = runCheck(t, HealthCheck{Command: []string{"sleep", "5"}, Interval: tick, Timeout: 50 * time.Millisecond, Retries: 1}, has(1))
	if got[0] != Unhealthy {
		t.Errorf("a check slower than its timeout: %v, want UNHEALTHY", got)
	}

	// A check that turns: fails a few times (fewer than retries), then passes.
	flag := filepath.Join(t.TempDir(), "ready")
	n := 0
	got = runCheck(t, HealthCheck{Command: []string{"test", "-e", flag}, Interval: tick, Timeout: time.Second, Retries: 10},
		func(s []HealthStatus) bool {
			if len(s) == 2 && n == 0 {
				n++
				os.WriteFile(flag, nil, 0o644)
			}
			return len(s) >= 3 && s[len(s)-1] == Healthy
		})
	if got[0] != Unknown || got[1] != Unknown {
		t.Errorf("failures below retries: %v, want UNKNOWN until HEALTHY", got)
	}
}

func TestHealthMonitor(t *testing.T) {
	m := newHealthMonitor()
	st, changed := m.get()
	if st != Unknown {
		t.Fatalf("initial status %v", st)
	}
	m.set(Unknown) // no change, no wake-up
	select {
	case <-changed:
		t.Fatal("woken without a change")
	default:
	}
	m.set(Unhealthy)
	<-changed
	m.set(Healthy)
	m.set(Unhealthy)
	if st, _ := m.get(); st != Unhealthy || m.unhealthyCount() != 2 {
		t.Errorf("status %v, %d times unhealthy; want UNHEALTHY, 2", st, m.unhealthyCount())
	}
}
