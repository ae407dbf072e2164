package ecs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/config"
)

// The rules on how ECS and the load balancer start, replace and stop tasks: what the
// container health check asks, where startTimeout goes, Fargate Spot's notice, the grace
// period, blue/green safeguards and the load balancer's idle timeout.

// albDefaultIdleTimeout is the Application Load Balancer's idle timeout unless its
// idle_timeout.timeout_seconds attribute says otherwise.
const albDefaultIdleTimeout = 60 * time.Second

// spotNotice is the warning Fargate Spot gives before it stops a task: SIGTERM, then
// SIGKILL two minutes later.
const spotNotice = 120 * time.Second

// healthCheckCommand checks what a Gangway container's health check asks. ECS replaces every
// task whose essential container turns UNHEALTHY, so the check must fail only for what a
// replacement fixes: a proxy that never started or is no longer alive (the container probe).
func (l *linter) healthCheckCommand(path string, c *ecstypes.ContainerDefinition) {
	var cmd []string
	if c.HealthCheck != nil {
		cmd = c.HealthCheck.Command
	}
	hp := parseHealthCheck(cmd)
	field, value := path+".healthCheck.command", fmt.Sprintf("%q", cmd)
	const fix = `set "healthCheck": {"command": ["CMD", "/healthcheck"], ...}: bin/healthcheck asks the container probe by default`
	switch {
	case hp.probe == "ready":
		l.add(field, value,
			"the container health check asks readiness: when a dependency every task shares (an upstream, a database, the control plane) is down, every task turns UNHEALTHY within retries × interval and ECS replaces the whole fleet, again and again, while the outage lasts; readiness belongs to the target group's health check, which stops routing without replacing",
			fix)
	case !hp.static:
		l.add(field, value,
			`the proxy's health check must run the static probe ["CMD", "/healthcheck"]: the image has no shell, curl or wget, and the probe's exit codes are Docker's`,
			fix)
	case hp.probe == "live" || hp.probe == "startup":
		l.add(field, value,
			fmt.Sprintf("-probe %s passes for a proxy that never became ready (a rejected configuration, a required upstream never healthy), so ECS keeps a revision that never starts instead of replacing it", hp.probe),
			fix)
	case hp.probe != "container":
		l.add(field, value, fmt.Sprintf("bin/healthcheck has no probe %q (container, ready, live, startup)", hp.probe), fix)
	}
	if d, err := time.ParseDuration(hp.timeout); hp.gangway && hp.timeout != "" && (err != nil || d <= 0) {
		l.add(field, value,
			fmt.Sprintf("-timeout %q is not a positive duration: the probe exits 4 (bad usage) at every check, and ECS replaces every task", hp.timeout),
			"give -timeout as a Go duration below the healthCheck.timeout, such as 1.5s, or leave it out")
	}
}

// startTimeouts checks where startTimeout is set. It bounds how long the containers that
// depend on this one wait for it to reach their condition; on a container nothing depends
// on it has no effect. (ECS API Reference, ContainerDefinition.startTimeout: "If a
// startTimeout value is specified for containerB and it doesn't reach the desired status
// within that time then containerA gives up and not start.")
func (l *linter) startTimeouts(td *TaskDefinition) {
	for _, c := range td.ContainerDefinitions {
		if c.StartTimeout == nil {
			continue
		}
		name := str(c.Name)
		waitedFor := false
		var waitsFor []string
		for _, other := range td.ContainerDefinitions {
			for _, d := range other.DependsOn {
				if str(d.ContainerName) == name {
					waitedFor = true
				}
			}
		}
		for _, d := range c.DependsOn {
			waitsFor = append(waitsFor, strconv.Quote(str(d.ContainerName)))
		}
		if waitedFor || len(waitsFor) == 0 {
			continue // in place, or on a container that waits for none: a stray knob, harmless
		}
		fix := fmt.Sprintf("move it to the container%s %q waits for: %s", plural(len(waitsFor)), name, strings.Join(waitsFor, ", "))
		l.add(fmt.Sprintf("containerDefinitions[%s].startTimeout", name), fmt.Sprintf("%ds", *c.StartTimeout),
			fmt.Sprintf("startTimeout bounds how long the containers that depend on %q wait for it, and none does, so it has no effect (it belongs on the container being waited for)", name),
			fix)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// spot checks a service on Fargate Spot against the deregistration delay: Spot stops a task
// two minutes after its notice, so a longer delay is cut short and the requests it was meant
// to let finish are cut with it.
func (l *linter) spot(svc *ServiceSettings) {
	onSpot := slices.ContainsFunc(svc.CapacityProviderStrategy, func(c struct {
		CapacityProvider string
		Base, Weight     int32
	}) bool {
		return c.CapacityProvider == "FARGATE_SPOT" && (c.Weight > 0 || c.Base > 0)
	})
	if !onSpot || l.in.TargetGroup == nil {
		return
	}
	const key = "deregistration_delay.timeout_seconds"
	delay := 300 * time.Second // the ELB default
	if v, ok := tgAttribute(l.in.TargetGroup, key); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return // reported by targetGroup
		}
		delay = time.Duration(n) * time.Second
	}
	if delay <= spotNotice {
		return
	}
	l.add("targetGroup.Attributes["+key+"]", fmt.Sprint(delay),
		"the service runs on FARGATE_SPOT, which stops a task 120 s after its interruption notice (SIGTERM, then SIGKILL): a deregistration delay over 120 s is cut short, and the requests it was meant to let finish are cut with it",
		fmt.Sprintf("set %s to at most 120 (and the longest request below it), or keep latency-critical tasks on FARGATE", key))
}

// blueGreenChecks checks a BLUE_GREEN, LINEAR or CANARY service for what tests the new
// revision: without a lifecycle hook or alarms, ECS moves production to a revision as soon
// as its tasks pass the target group's health check, and nothing rolls a ready but broken
// revision back (the deployment circuit breaker watches task health only).
func (l *linter) blueGreenChecks(strategy string) {
	dc := l.in.Service.DeploymentConfiguration
	hooks := len(dc.LifecycleHooks) > 0
	alarms := dc.Alarms != nil && dc.Alarms.Enable && dc.Alarms.Rollback && len(dc.Alarms.AlarmNames) > 0
	if hooks || alarms {
		return
	}
	l.add("service.deploymentConfiguration", strategy+" without lifecycleHooks or alarms",
		"a blue/green deployment with neither a lifecycle hook nor alarms moves production to the new revision as soon as its tasks pass the target group's health check: a revision that is ready but answers errors takes all traffic, and nothing rolls it back",
		`add "lifecycleHooks" (a hook that sends test requests through the test listener, e.g. at POST_TEST_TRAFFIC_SHIFT) and "alarms": {"alarmNames": [...], "enable": true, "rollback": true}`)
}

// idleTimeout checks the proxy's downstream keep-alive idle timeout against the load
// balancer's: the load balancer must be the side that closes an idle connection, or it may
// send a request on a connection the proxy is closing and answer the client 502
// (Elastic Load Balancing User Guide for Application Load Balancers, "Connection idle
// timeout": configure the application's idle timeout to be larger than the load balancer's).
func (l *linter) idleTimeout(cfg *config.Config) {
	if cfg.Services == config.ServicesControl || cfg.TimeoutIdle == 0 {
		return // no traffic listeners, or idle connections are never closed
	}
	lbIdle, assumed := albDefaultIdleTimeout, " (assumed: the ALB default)"
	if lb := l.in.LoadBalancer; lb != nil {
		assumed = ""
		for _, a := range lb.Attributes {
			if a.Key != "idle_timeout.timeout_seconds" {
				continue
			}
			n, err := strconv.Atoi(a.Value)
			if err != nil {
				l.add("loadBalancer.Attributes[idle_timeout.timeout_seconds]", strconv.Quote(a.Value),
					"the idle timeout is a whole number of seconds, 1–4000", "set it to a number of seconds")
				return
			}
			lbIdle = time.Duration(n) * time.Second
		}
	}
	if cfg.TimeoutIdle > lbIdle {
		return
	}
	lbSecs := int64(lbIdle / time.Second)
	l.add("proxyConfig.timeout_idle", cfg.TimeoutIdle.String(),
		fmt.Sprintf("the proxy's keep-alive idle timeout must be longer than the load balancer's idle timeout (%ds%s): when the proxy closes an idle connection first, the load balancer can send a request on it as it closes and answer the client 502", lbSecs, assumed),
		fmt.Sprintf("set timeout_idle above %ds (the default, 5m, is), or lower the load balancer's idle_timeout.timeout_seconds", lbSecs))
}
