package tasks

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// checkHealth runs a container's health check inside it until ctx ends, with the semantics
// the ECS agent gets from Docker ("HealthCheck" in the Amazon ECS API Reference,
// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html): the first
// check runs interval after the start and each next one interval after the last finished; a
// check that fails or outlasts timeout is a failure; retries consecutive failures make the
// container UNHEALTHY and any success HEALTHY; failures within startPeriod do not count
// until a check has succeeded. The status starts UNKNOWN.
func (t *task) checkHealth(ctx context.Context, c *container) {
	hc := c.def.HealthCheck
	args := healthCommand(hc.Command)
	interval, timeout, retries := defaultInterval, defaultTimeout, defaultRetries
	if hc.Interval != nil {
		interval = time.Duration(*hc.Interval) * time.Second
	}
	if hc.Timeout != nil {
		timeout = time.Duration(*hc.Timeout) * time.Second
	}
	if hc.Retries != nil {
		retries = int(*hc.Retries)
	}
	var startPeriod time.Duration
	if hc.StartPeriod != nil {
		startPeriod = time.Duration(*hc.StartPeriod) * time.Second
	}
	started := time.Now()
	failures, passed := 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		var ok bool
		var output string
		if args == nil {
			output = "the health check command must start with CMD or CMD-SHELL"
		} else {
			ok, output = t.runExec(ctx, c, args, timeout)
		}
		if ctx.Err() != nil {
			return
		}
		if len(output) > maxHealthOutput {
			output = output[:maxHealthOutput]
		}
		c.mu.Lock()
		c.healthOutput = output
		switch {
		case ok:
			failures, passed = 0, true
			c.health = types.HealthStatusHealthy
		case !passed && time.Since(started) < startPeriod:
			// within the start period: not counted
		default:
			failures++
			if failures >= retries {
				c.health = types.HealthStatusUnhealthy
			}
		}
		status := c.health
		c.mu.Unlock()
		t.r.log.Debug("health check", "container", c.id, "ok", ok, "status", status, "output", output)
		t.set(func(tk *types.Task) {
			if tc := t.container(tk, aws.ToString(c.def.Name)); tc != nil {
				tc.HealthStatus = status
			}
			tk.HealthStatus = t.taskHealth()
		})
	}
}

// healthCommand turns ["CMD", args...] or ["CMD-SHELL", command] into the arguments to run,
// or nil for anything else.
func healthCommand(cmd []string) []string {
	switch {
	case len(cmd) >= 2 && cmd[0] == "CMD":
		return cmd[1:]
	case len(cmd) == 2 && cmd[0] == "CMD-SHELL":
		return []string{"/bin/sh", "-c", cmd[1]}
	}
	return nil
}

// taskHealth is the task's health from its essential containers that have a health check:
// UNHEALTHY if one is, else UNKNOWN if one is, else HEALTHY; UNKNOWN when none has a check
// ("healthStatus" of Task in the Amazon ECS API Reference).
func (t *task) taskHealth() types.HealthStatus {
	status, checked := types.HealthStatusHealthy, false
	for _, c := range t.containers {
		if c.def.HealthCheck == nil || (c.def.Essential != nil && !*c.def.Essential) {
			continue
		}
		checked = true
		c.mu.Lock()
		h := c.health
		c.mu.Unlock()
		switch {
		case h == types.HealthStatusUnhealthy:
			return types.HealthStatusUnhealthy
		case h != types.HealthStatusHealthy:
			status = types.HealthStatusUnknown
		}
	}
	if !checked {
		return types.HealthStatusUnknown
	}
	return status
}
