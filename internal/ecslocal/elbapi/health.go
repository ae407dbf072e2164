package elbapi

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// This file is the target health state machine of "Health checks for Application Load
// Balancer target groups"
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
// A health checker runs the checks (CheckTargets says which, ReportCheck takes each result);
// this package decides the state:
//
//   - a registered target is initial until its first check: one pass makes it healthy ("After
//     your target is registered, it must pass one health check to be considered healthy");
//   - a healthy target turns unhealthy after UnhealthyThresholdCount consecutive failures,
//     and an unhealthy one healthy after HealthyThresholdCount consecutive passes;
//   - a target still initial turns unhealthy after UnhealthyThresholdCount consecutive
//     failures (the documentation does not say; ecslocal's choice);
//   - only targets of a group that a listener or rule forwards to, with checks enabled and not
//     draining, are checked.

// Check is one target to check with its group's settings.
type Check struct {
	TargetGroupArn string
	ID             string // the IP address
	Port           int32  // the target's port
	CheckPort      int32  // the port the check goes to
	Path           string
	Matcher        string // HTTP codes: "200", "200,202", "200-299"
	Interval       time.Duration
	Timeout        time.Duration
}

// Key identifies a target across calls.
func (c Check) Key() string {
	return c.TargetGroupArn + " " + c.ID + ":" + strconv.Itoa(int(c.Port))
}

// Result is the outcome of one check; a failure carries ALB's reason.
type Result struct {
	Pass bool
	// Reason of a failure: Target.ResponseCodeMismatch (Code is the status received),
	// Target.Timeout or Target.FailedHealthChecks.
	Reason types.TargetHealthReasonEnum
	Code   int
}

// CheckTargets lists the targets to check now, with their groups' settings.
func (a *API) CheckTargets() []Check {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Check
	for _, g := range a.targetGroups {
		if !aws.ToBool(g.tg.HealthCheckEnabled) || len(a.loadBalancersOf(*g.tg.TargetGroupArn)) == 0 {
			continue
		}
		a.reap(g)
		for _, t := range g.targets {
			if !t.drainUntil.IsZero() {
				continue
			}
			port := t.port
			if p, err := strconv.Atoi(aws.ToString(g.tg.HealthCheckPort)); err == nil {
				port = int32(p)
			}
			out = append(out, Check{
				TargetGroupArn: *g.tg.TargetGroupArn, ID: t.id, Port: t.port, CheckPort: port,
				Path: aws.ToString(g.tg.HealthCheckPath), Matcher: aws.ToString(g.tg.Matcher.HttpCode),
				Interval: time.Duration(aws.ToInt32(g.tg.HealthCheckIntervalSeconds)) * time.Second,
				Timeout:  time.Duration(aws.ToInt32(g.tg.HealthCheckTimeoutSeconds)) * time.Second,
			})
		}
	}
	return out
}

// ReportCheck applies one check's result to a target's state. A result for a target that
// is no longer registered, or draining, is dropped.
func (a *API) ReportCheck(c Check, r Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.targetGroups[c.TargetGroupArn]
	if g == nil {
		return
	}
	t := g.find(c.ID, c.Port)
	if t == nil || !t.drainUntil.IsZero() {
		return
	}
	healthy, unhealthy := int(aws.ToInt32(g.tg.HealthyThresholdCount)), int(aws.ToInt32(g.tg.UnhealthyThresholdCount))
	if r.Pass {
		t.passes, t.fails = t.passes+1, 0
		if t.state == types.TargetHealthStateEnumInitial || (t.state == types.TargetHealthStateEnumUnhealthy && t.passes >= healthy) {
			t.state, t.reason, t.desc = types.TargetHealthStateEnumHealthy, "", ""
		}
		return
	}
	t.passes, t.fails = 0, t.fails+1
	if t.state == types.TargetHealthStateEnumInitial {
		t.reason, t.desc = types.TargetHealthReasonEnumInitialHealthChecking, "Initial health checks in progress"
	}
	if t.fails >= unhealthy || t.state == types.TargetHealthStateEnumUnhealthy {
		t.state, t.reason, t.desc = types.TargetHealthStateEnumUnhealthy, r.Reason, failureDescription(r)
	}
}

// failureDescription is ALB's description of a failure reason.
func failureDescription(r Result) string {
	switch r.Reason {
	case types.TargetHealthReasonEnumResponseCodeMismatch:
		return "Health checks failed with these codes: [" + strconv.Itoa(r.Code) + "]"
	case types.TargetHealthReasonEnumTimeout:
		return "Request timed out"
	}
	return "Health checks failed"
}
