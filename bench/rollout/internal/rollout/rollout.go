// Package rollout is the rollout harness: real `proxy run` replicas behind a real HAProxy,
// in front of a real upstream, replaced the way ECS replaces tasks while a load generator
// counts every request. Each scenario runs twice: once with Gangway configured as the
// project recommends, once with a naive configuration, so the two tables can be compared.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/haproxy"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/load"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/replica"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/upstream"
)

// Variant is one way of deploying the proxy.
type Variant struct {
	Name string
	// LBCheckPath is the load balancer's health-check path; CheckAdminPort sends the check to
	// the replica's probe server instead of its traffic port.
	LBCheckPath    string
	CheckAdminPort bool
	// ReadinessPath is the traffic listener's readiness path ("" for none).
	ReadinessPath string
	// Delay and Drain are shutdown.delay and shutdown.drain_timeout.
	Delay, Drain time.Duration
	// Probe is what the container health check asks: "container", "ready" or "live".
	Probe string
	// WaitLB makes a replacement wait for the load balancer to report the new replica UP
	// before the old one is deregistered (ECS with minimumHealthyPercent 100).
	WaitLB bool
}

// Gangway is the recommended deployment: the load balancer checks the readiness path on the
// traffic port, the container health check asks the container probe (started and alive),
// the shutdown delay covers the load balancer's detection time, and ECS waits for the new
// task to be healthy in the target group before it drains the old one.
func Gangway(delay, drain time.Duration) Variant {
	return Variant{
		Name:          "gangway",
		LBCheckPath:   replica.ReadinessPath,
		ReadinessPath: replica.ReadinessPath,
		Delay:         delay,
		Drain:         drain,
		Probe:         "container",
		WaitLB:        true,
	}
}

// ReadinessCheck is Gangway with the container health check on readiness, the mistake the
// upstream-outage scenario shows: every task turns UNHEALTHY when the upstream they share is
// down, and ECS replaces them all.
func ReadinessCheck(delay, drain time.Duration) Variant {
	v := Gangway(delay, drain)
	v.Name, v.Probe = "ready-check", "ready"
	return v
}

// Baseline is a naive deployment of the same proxy: readiness is liveness (the load
// balancer checks /livez, the container health check asks for liveness), no shutdown delay,
// no drain, and the old task is drained as soon as the new container is healthy, without
// waiting for the load balancer (what ECS does with minimumHealthyPercent below 100, the
// CDK default being 50).
func Baseline() Variant {
	return Variant{
		Name:           "baseline",
		LBCheckPath:    "/livez",
		CheckAdminPort: true,
		Probe:          "live",
	}
}

// Options size and shape a run.
type Options struct {
	ProxyBin, HealthcheckBin, HAProxyBin string
	// OutDir receives configurations and logs, one directory per variant.
	OutDir string
	// Replicas is the number of replicas in service at the start of every scenario.
	Replicas int
	// Actions is the minimum number of replacements (kills, stops) per scenario; scale-in
	// and scale-out do min(Actions, Replicas-1).
	Actions int
	// Requests is the minimum number of requests in each repeatable scenario (rolling,
	// stoptask): it goes on replacing replicas until both minimums are met.
	Requests int64
	// MaxScenario bounds a scenario's time; MaxRequests its requests (0: 10,000,000).
	MaxScenario time.Duration
	MaxRequests int64
	Scenarios   []string
	Variants    []Variant

	// Load sizes the clients; the URLs are filled in.
	Load load.Options
	// ContainerCheck is the container health check; Command is filled in.
	ContainerCheck replica.HealthCheck
	// LBCheck is the target group's health check; Path comes from the variant.
	LBCheck haproxy.Check
	// DeregistrationDelay is the target group's deregistration delay.
	DeregistrationDelay time.Duration
	// StopTimeout is the container's stopTimeout, also shutdown.deadline.
	StopTimeout time.Duration
	// StartTimeout bounds a new replica's way into service.
	StartTimeout time.Duration
	// Outage is how long the upstream fails in the upstream-outage scenario.
	Outage time.Duration

	// Log receives progress lines.
	Log io.Writer

	upstream string
	up       *upstream.Server
}

func (o Options) slots() int { return 2*o.Replicas + 8 }

// Scenario names.
const (
	Rolling        = "rolling"
	StopTask       = "stoptask"
	Kill9          = "kill9"
	ScaleIn        = "scale-in"
	ScaleOut       = "scale-out"
	UpstreamOutage = "upstream-outage"
)

// AllScenarios in the order they run. UpstreamOutage is not among them: it compares the
// container health check's probes (gangway against ready-check) and is run on its own.
var AllScenarios = []string{Rolling, StopTask, Kill9, ScaleIn, ScaleOut}

// Describe says what a scenario does, for the report.
func Describe(name string) string {
	switch name {
	case Rolling:
		return "ECS rolling replacement: start a new replica, wait until its container health check (and, for Gangway, the load balancer) says healthy, drain the oldest in the load balancer for the deregistration delay (or until it has no connection left, like an ALB), SIGTERM, SIGKILL after stopTimeout"
	case StopTask:
		return "SIGTERM with no prior deregistration (StopTask, Spot): the load balancer must notice on its own; a replacement starts at the same time"
	case Kill9:
		return "kill -9 of a replica in service, then a replacement; the requests in flight on it, and those the load balancer sends it until its health checks mark it down, fail and are counted"
	case ScaleIn:
		return "remove replicas the normal way (drain, deregistration delay, SIGTERM)"
	case ScaleOut:
		return "add replicas (start, container health check, load balancer UP)"
	case UpstreamOutage:
		return "the upstream every replica shares fails (503 to everything, its health check included) for the outage, under load, then returns; meanwhile ECS's scheduler acts on the container health check: a task whose check turns UNHEALTHY is deregistered, stopped and replaced, and a replacement that turns UNHEALTHY before it was ever healthy is replaced again. Failures during the outage are expected; what counts is the replicas restarted and how soon traffic flows again once the upstream is back"
	}
	return ""
}

// Result is one scenario run with one variant.
type Result struct {
	Variant, Scenario string
	// Probe is what the variant's container health check asks.
	Probe   string
	Actions int
	Load    load.Result
	// SigKilled counts replicas that got SIGKILL because they had not exited within
	// stopTimeout; BadExits those that exited with a status other than 0 after SIGTERM.
	SigKilled, BadExits int
	// Unhealthy counts UNHEALTHY container health checks of replicas while in service.
	Unhealthy int
	// Restarts counts the tasks ECS's scheduler stopped for an UNHEALTHY container health
	// check (upstream-outage only).
	Restarts int
	// ReadyAfter is the time from the upstream's return until every replica in service was
	// ready again, and as many as at the start; TrafficAfter until a request through the load
	// balancer succeeded again (upstream-outage only; -1 when it did not happen in time).
	ReadyAfter, TrafficAfter time.Duration
	// LBFailures are the load balancer's failed transactions by replica, phase, status
	// and termination state.
	LBFailures map[string]int64
	// Errors are actions that could not be done (a replica that never became healthy...).
	Errors []string
	Took   time.Duration
}

// Run runs every scenario with every variant.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = 10_000_000
	}
	up, err := upstream.Start(ctx, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer up.Close()
	o.upstream, o.up = up.Addr(), up

	var results []Result
	for _, v := range o.Variants {
		rs, err := runVariant(ctx, o, v)
		results = append(results, rs...)
		if err != nil {
			return results, fmt.Errorf("%s: %w", v.Name, err)
		}
	}
	return results, nil
}

func runVariant(ctx context.Context, o Options, v Variant) ([]Result, error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(o.Log, "%s %-8s "+format+"\n", append([]any{time.Now().Format("15:04:05.000"), v.Name}, args...)...)
	}
	dir := filepath.Join(o.OutDir, v.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	httpAddr, err := replica.FreeAddr()
	if err != nil {
		return nil, err
	}
	h2cAddr, err := replica.FreeAddr()
	if err != nil {
		return nil, err
	}
	check := o.LBCheck
	check.Path = v.LBCheckPath
	lb, err := haproxy.Start(ctx, haproxy.Config{
		Binary:   o.HAProxyBin,
		Dir:      dir,
		HTTPAddr: httpAddr,
		H2CAddr:  h2cAddr,
		Slots:    o.slots(),
		Check:    check,
	})
	if err != nil {
		return nil, err
	}
	defer lb.Stop()
	f := newFleet(o, v, dir, lb, logf)
	defer f.close()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); f.watchLB(watchCtx) }()
	defer func() { stopWatch(); <-watchDone }() // before f.close writes the timeline

	logf("starting %d replicas behind HAProxy (http %s, h2c %s)", o.Replicas, httpAddr, h2cAddr)
	for range o.Replicas {
		if _, err := f.add(ctx); err != nil {
			return nil, fmt.Errorf("initial replicas: %w", err)
		}
	}
	lo := o.Load
	lo.HTTPURL = "http://" + httpAddr
	lo.H2CURL = "http://" + h2cAddr
	lo.MaxRequests = o.MaxRequests

	var results []Result
	var logOffset int64
	for _, name := range o.Scenarios {
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
		// Every scenario starts from Replicas replicas in service.
		for f.size() < o.Replicas {
			if _, err := f.add(ctx); err != nil {
				return results, fmt.Errorf("refill before %s: %w", name, err)
			}
		}
		if err := lb.ClearCounters(ctx); err != nil {
			return results, err
		}
		_, logOffset, _ = lb.ReadLog(logOffset) // skip what came before
		r := runScenario(ctx, o, f, name, lo)
		entries, off, err := lb.ReadLog(logOffset)
		logOffset = off
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
		r.LBFailures = map[string]int64{}
		for _, e := range entries {
			status := strconv.Itoa(e.Status)
			if e.Status < 0 {
				status = "no response"
			}
			r.LBFailures[f.attribute(e.Server, e.Start, e.End)+": "+status+" "+e.Termination]++
		}
		r.Variant, r.Probe = v.Name, v.Probe
		logf("%s: %d actions, %s", name, r.Actions, r.Load)
		results = append(results, r)
	}
	return results, nil
}

// action is one step of a scenario.
type action func(ctx context.Context, f *fleet) error

func scenarioAction(name string) (action, bool) {
	switch name {
	case Rolling:
		return replaceNormally, true
	case StopTask:
		return stopTask, true
	case Kill9:
		return kill9, false
	case ScaleIn:
		return scaleIn, false
	case ScaleOut:
		return scaleOut, false
	}
	return nil, false
}

func runScenario(ctx context.Context, o Options, f *fleet, name string, lo load.Options) Result {
	if name == UpstreamOutage {
		return runOutage(ctx, o, f, lo)
	}
	res := Result{Scenario: name}
	act, repeat := scenarioAction(name)
	if act == nil {
		res.Errors = append(res.Errors, fmt.Sprintf("unknown scenario %q", name))
		return res
	}
	count := o.Actions
	if name == ScaleIn || name == ScaleOut {
		count = min(o.Actions, o.Replicas-1)
	}
	start := time.Now()
	deadline := start.Add(o.MaxScenario)
	gen := load.Start(ctx, lo)
	// Let the clients connect and reach their pace before the first action.
	sleep(ctx, 500*time.Millisecond)
	for res.Actions < count || (repeat && gen.Issued() < o.Requests) {
		if time.Now().After(deadline) {
			res.Errors = append(res.Errors, fmt.Sprintf("stopped after %s (-max-scenario) with %d actions", o.MaxScenario, res.Actions))
			break
		}
		if ctx.Err() != nil {
			break
		}
		if err := act(ctx, f); err != nil {
			res.Errors = append(res.Errors, err.Error())
			f.log("%s: %v", name, err)
			break
		}
		res.Actions++
	}
	finish(ctx, &res, f, gen, start)
	return res
}

// finish waits for the replicas being stopped, lets the last requests settle, stops the load
// and adds how the stopped replicas ended, and the UNHEALTHY checks of those still in
// service, to res.
func finish(ctx context.Context, res *Result, f *fleet, gen *load.Generator, start time.Time) {
	stops := f.takeStops()
	sleep(ctx, time.Second)
	res.Load = gen.Stop()
	res.Took = time.Since(start)
	for _, s := range stops {
		if s.res.Killed {
			res.SigKilled++
		}
		if !s.res.Killed && s.res.ExitCode != 0 && res.Scenario != Kill9 {
			res.BadExits++
		}
		res.Unhealthy += s.unhealthy
	}
	res.Unhealthy += f.unhealthyInService()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// replaceNormally is one ECS rolling replacement (minimumHealthyPercent 100,
// maximumPercent 200): start the new task and wait until it is healthy (container health
// check, and the target group when the variant waits for it); deregister the old one, wait
// the deregistration delay; SIGTERM; SIGKILL after stopTimeout.
func replaceNormally(ctx context.Context, f *fleet) error {
	if err := scaleOut(ctx, f); err != nil {
		return err
	}
	return scaleIn(ctx, f)
}

// stopTask is StopTask or a Spot interruption: SIGTERM with no deregistration first. The
// service starts a replacement at once; the stopped task's target is deregistered once it
// has exited.
func stopTask(ctx context.Context, f *fleet) error {
	old, err := f.oldest()
	if err != nil {
		return err
	}
	dctx := context.WithoutCancel(ctx)
	if err := f.terminate(old, func() { f.lb.Disable(dctx, old.slot) }); err != nil {
		return err
	}
	_, err = f.add(ctx)
	return err
}

// kill9 kills a replica without warning, starts a replacement, and deregisters the dead
// one once the replacement is in service.
func kill9(ctx context.Context, f *fleet) error {
	old, err := f.oldest()
	if err != nil {
		return err
	}
	f.kill(old)
	_, addErr := f.add(ctx)
	err = f.lb.Disable(ctx, old.slot)
	old.r.Close()
	f.freeSlot(old)
	return errors.Join(addErr, err)
}

// scaleIn removes the oldest replica the normal way: deregistration, then SIGTERM.
func scaleIn(ctx context.Context, f *fleet) error {
	old, err := f.oldest()
	if err != nil {
		return err
	}
	if err := f.deregister(ctx, old); err != nil {
		return err
	}
	return f.terminate(old, nil)
}

// scaleOut adds a replica and waits until it is in service.
func scaleOut(ctx context.Context, f *fleet) error {
	_, err := f.add(ctx)
	return err
}

// splitPort returns the port of host:port.
func splitPort(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("address %q: %w", addr, err)
	}
	return strconv.Atoi(p)
}
