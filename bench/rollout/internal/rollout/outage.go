package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/load"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/replica"
)

// scheduler is ECS's service scheduler as far as the container health check goes: it stops
// every task in service whose check turned UNHEALTHY (deregistration, deregistration delay,
// SIGTERM) and starts tasks until the service has its desired count again; a task that turns
// UNHEALTHY before it was ever healthy is stopped and replaced as well.
type scheduler struct {
	f       *fleet
	desired int
	cancel  context.CancelFunc
	done    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	starting int
	restarts int
	errs     []string
}

func startScheduler(ctx context.Context, f *fleet, desired int) *scheduler {
	ctx, cancel := context.WithCancel(ctx)
	s := &scheduler{f: f, desired: desired, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			s.tick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *scheduler) tick(ctx context.Context) {
	f := s.f
	f.mu.Lock()
	var sick, keep []*member
	for _, m := range f.live {
		if st, _ := m.r.Health(); st == replica.Unhealthy {
			sick = append(sick, m)
		} else {
			keep = append(keep, m)
		}
	}
	f.live = keep
	inService := len(keep)
	f.mu.Unlock()

	for _, m := range sick {
		m.mark("UNHEALTHY: stopped by the scheduler")
		f.log("scheduler: %s is UNHEALTHY: stopping and replacing it", m.r.Name)
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			bg := context.WithoutCancel(ctx)
			if err := f.deregister(bg, m); err != nil {
				s.fail(err)
			}
			if err := f.terminate(m, nil); err != nil {
				s.fail(err)
			}
		}()
	}
	s.mu.Lock()
	need := s.desired - inService - s.starting
	s.starting += max(need, 0)
	s.mu.Unlock()
	for range need {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_, err := f.add(ctx)
			s.mu.Lock()
			s.starting--
			s.mu.Unlock()
			switch {
			case errors.Is(err, replica.ErrUnhealthy):
				f.log("scheduler: a replacement turned UNHEALTHY before it was healthy: replacing it")
				s.mu.Lock()
				s.restarts++
				s.mu.Unlock()
			case err != nil && ctx.Err() == nil:
				s.fail(err)
			}
		}()
	}
}

func (s *scheduler) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, "scheduler: "+err.Error())
	s.mu.Unlock()
}

// stop ends the scheduler, waits for the tasks it was starting and stopping, and returns how
// many tasks it stopped for an UNHEALTHY check and what went wrong.
func (s *scheduler) stop() (restarts int, errs []string) {
	s.cancel()
	<-s.done
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts, s.errs
}

// runOutage runs the upstream-outage scenario: load, the scheduler, the upstream down for
// o.Outage, then up again; it measures how soon the replicas are ready and requests through
// the load balancer succeed again.
func runOutage(ctx context.Context, o Options, f *fleet, lo load.Options) Result {
	res := Result{Scenario: UpstreamOutage, ReadyAfter: -1, TrafficAfter: -1}
	start := time.Now()
	gen := load.Start(ctx, lo)
	sched := startScheduler(ctx, f, o.Replicas)
	sleep(ctx, 500*time.Millisecond)

	f.log("upstream down for %s", o.Outage)
	o.up.SetDown(true)
	sleep(ctx, o.Outage)
	o.up.SetDown(false)
	back := time.Now()
	f.log("upstream back")
	res.Actions = 1

	client := &http.Client{Timeout: time.Second}
	deadline := back.Add(o.StartTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil && (res.ReadyAfter < 0 || res.TrafficAfter < 0) {
		if res.TrafficAfter < 0 && get(client, lo.HTTPURL+"/echo?id=recovery") == "recovery" {
			res.TrafficAfter = time.Since(back)
		}
		if res.ReadyAfter < 0 && f.allReady(client, o.Replicas) {
			res.ReadyAfter = time.Since(back)
		}
		sleep(ctx, 20*time.Millisecond)
	}
	f.log("after the upstream's return: replicas ready in %s, traffic through the load balancer in %s", res.ReadyAfter, res.TrafficAfter)
	// Let the recovered service carry load for a moment.
	sleep(ctx, 2*time.Second)
	restarts, errs := sched.stop()
	res.Restarts = restarts
	res.Errors = append(res.Errors, errs...)
	finish(ctx, &res, f, gen, start)
	return res
}

// get returns the body of a 200 answer to GET url, or "".
func get(c *http.Client, url string) string {
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// allReady reports whether at least want replicas are in service and every one of them
// answers its probe server's /readyz with 200.
func (f *fleet) allReady(c *http.Client, want int) bool {
	f.mu.Lock()
	live := append([]*member(nil), f.live...)
	f.mu.Unlock()
	if len(live) < want {
		return false
	}
	for _, m := range live {
		if get(c, "http://"+m.r.AdminAddr+"/readyz") != "ok\n" {
			return false
		}
	}
	return true
}

// OutageTable writes one Markdown row per variant of the upstream-outage scenario: the
// outage, requests and failures, tasks ECS restarted, and the recovery after the upstream's
// return.
func OutageTable(w io.Writer, results []Result, outage time.Duration) {
	var rows []Result
	for _, r := range results {
		if r.Scenario == UpstreamOutage {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "| variant | container check | outage | requests | failures | tasks restarted by ECS | replicas ready after the return | traffic through the load balancer after the return |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | `-probe %s` | %s | %d | %d | %d | %s | %s |\n", r.Variant, r.Probe, outage, r.Load.Requests, r.Load.Failed(),
			r.Restarts, after(r.ReadyAfter), after(r.TrafficAfter))
	}
}

func after(d time.Duration) string {
	if d < 0 {
		return "never (within the start timeout)"
	}
	return d.Round(10 * time.Millisecond).String()
}
