// Package budget is Gangway's timing budget: the one place that ties the load balancer's
// health checks, the target group's deregistration delay, ECS's container health check,
// stopTimeout and deployment settings, and the proxy's own shutdown delay and drain timeout
// together. The proxy, the linter, the task definitions and the CDK constructs all call
// Check, so they cannot disagree about what "fits".
//
// The budget, with every duration in the same unit:
//
//	ShutdownDelay >= LBHealthInterval*LBUnhealthyThreshold + LBHealthTimeout
//	ShutdownDelay + DrainTimeout + ShutdownMargin <= StopTimeout <= 120s (Fargate)
//	DeregistrationDelay >= LongestRequest
//	DrainTimeout >= LongestRequest
//	ContainerInterval <= 10s, ContainerTimeout >= 2s, ContainerStartPeriod >= ColdStart
//	ContainerTimeout >= ProbeTimeout + ProbeMargin
//	HealthCheckGracePeriod >= ColdStart + LBHealthyThreshold × LBHealthInterval
//	MinimumHealthyPercent == 100, MaximumPercent == 200
//
// plus every range that ECS and Elastic Load Balancing enforce on those fields.
//
// The first rule makes sure every load balancer has seen the failing readiness probe before
// the proxy stops accepting connections (a StopTask or a Spot interruption sends SIGTERM
// without deregistering the task first). The second keeps the whole shutdown inside the
// window before ECS sends SIGKILL. DrainTimeout >= LongestRequest follows from the same
// path: a request accepted at the last instant of the shutdown delay still has to finish.
// The container check's timeout leaves the probe its own -timeout plus the time to start and
// print, so that the probe gives up first and its message, not ECS's, says what failed.
//
// This package uses the standard library only: the CDK module imports it too.
package budget

import (
	"fmt"
	"time"
)

// ECS and Elastic Load Balancing limits the budget checks against.
const (
	// DefaultStopTimeout is what ECS waits between the stop signal and SIGKILL when a
	// container does not set stopTimeout (Fargate; the EC2 agent's default is the same).
	DefaultStopTimeout = 30 * time.Second
	// MaxStopTimeout is Fargate's ceiling on stopTimeout.
	MaxStopTimeout = 120 * time.Second
	// MinStopTimeout is Fargate's floor on stopTimeout.
	MinStopTimeout = 2 * time.Second

	// ShutdownMargin is the time the proxy keeps free between the end of its drain and
	// stopTimeout, for closing connections and exiting. It is a property of the proxy, not a
	// setting: `proxy run` always keeps it, so every caller of Check (the proxy, the linter,
	// the CDK construct) must count the same margin, or one of them accepts a budget the
	// proxy then refuses to start with.
	ShutdownMargin = 3 * time.Second

	// MaxContainerInterval is Gangway's ceiling on the container health-check interval: a
	// slower check delays every deployment and every replacement of an unhealthy task.
	MaxContainerInterval = 10 * time.Second

	// MinContainerTimeout is ECS's floor on the container health-check timeout.
	MinContainerTimeout = 2 * time.Second
	// ProbeMargin is what the container health check's timeout keeps beyond the probe's own
	// -timeout: the time to start the probe's process in the container and for it to print
	// and exit. Without it ECS kills a probe that is still waiting, and the health check's
	// output, the probe's explanation, is lost.
	ProbeMargin = 500 * time.Millisecond
	// DefaultProbeTimeout is the -timeout of bin/healthcheck and `proxy health` when none is
	// given: it fits within the smallest container health-check timeout ECS allows.
	DefaultProbeTimeout = MinContainerTimeout - ProbeMargin
)

// Settings gathers every knob the budget ties together.
//
// Zero means "not declared" for every field except ShutdownDelay and DrainTimeout (the proxy
// always has a value for those, and zero is a real value). A rule that needs a
// field that is not declared is skipped, so a caller that knows only the task definition can
// still check what it knows. In detail:
//
//   - LBHealthInterval, LBHealthTimeout, LBHealthyThreshold, LBUnhealthyThreshold: each is
//     range-checked when declared; the shutdown-delay rule needs interval, timeout and
//     unhealthy threshold all declared.
//   - DeregistrationDelay: range-checked when declared; the rule against LongestRequest needs
//     both declared. (A target group really set to 0 cannot be told apart from "not known";
//     callers that read 0 from a target group report it themselves.)
//   - StopTimeout: when zero, ECS's default (DefaultStopTimeout, 30 s) applies and the
//     shutdown-window rule uses it; the range check is skipped.
//   - HealthCheckGracePeriod: checked against ColdStart when both are declared, plus the
//     healthy threshold's passing checks when LBHealthyThreshold and LBHealthInterval are.
//   - MinimumHealthyPercent, MaximumPercent: each checked when declared.
//   - ContainerInterval, ContainerTimeout, ContainerRetries, ContainerStartPeriod: the
//     container health check is declared when any of them is non-zero; then interval,
//     timeout and retries are each checked when non-zero, and ContainerStartPeriod (where 0
//     is ECS's "off") is always checked, against ColdStart when ColdStart is declared.
//     Callers reading a task definition should fill ECS's defaults (30 s, 5 s, 3, 0) for
//     the fields a healthCheck omits.
//   - ProbeTimeout: the container check command's -timeout; zero means the probe's default
//     (DefaultProbeTimeout). Checked against ContainerTimeout when that is declared.
//   - LongestRequest, ColdStart: the rules that compare against them need them declared.
type Settings struct {
	LBHealthInterval       time.Duration // target group HealthCheckIntervalSeconds (ALB 5–300 s)
	LBHealthTimeout        time.Duration // HealthCheckTimeoutSeconds (2–120 s, < interval)
	LBHealthyThreshold     int           // HealthyThresholdCount, 2–10
	LBUnhealthyThreshold   int           // UnhealthyThresholdCount, 2–10
	DeregistrationDelay    time.Duration // deregistration_delay.timeout_seconds, 0–3600 s
	StopTimeout            time.Duration // the proxy container's stopTimeout (Fargate 2–120 s, default 30 s)
	HealthCheckGracePeriod time.Duration // the service's healthCheckGracePeriodSeconds
	MinimumHealthyPercent  int           // the service's deploymentConfiguration
	MaximumPercent         int

	// The proxy container's ECS healthCheck.
	ContainerInterval, ContainerTimeout, ContainerStartPeriod time.Duration
	ContainerRetries                                          int
	// ProbeTimeout is the -timeout the container check passes to bin/healthcheck.
	ProbeTimeout time.Duration

	ShutdownDelay  time.Duration // the proxy's shutdown.delay
	DrainTimeout   time.Duration // the proxy's shutdown.drain_timeout
	LongestRequest time.Duration // the longest request the service expects to serve
	ColdStart      time.Duration // the expected time from task start to ready
}

// Defaults returns settings that fit the budget within Fargate's default 30 s stopTimeout,
// for a service whose requests finish within 10 s and whose tasks are ready within 10 s:
// the load balancer notices a failing target within 5 s × 2 + 2 s = 12 s (the shutdown
// delay), the drain gets 15 s, and 3 s are left for the process to exit.
func Defaults() Settings {
	return Settings{
		LBHealthInterval:       5 * time.Second,
		LBHealthTimeout:        2 * time.Second,
		LBHealthyThreshold:     2,
		LBUnhealthyThreshold:   2,
		DeregistrationDelay:    15 * time.Second,
		StopTimeout:            DefaultStopTimeout,
		HealthCheckGracePeriod: 30 * time.Second,
		MinimumHealthyPercent:  100,
		MaximumPercent:         200,
		ContainerInterval:      5 * time.Second,
		ContainerTimeout:       2 * time.Second,
		ContainerRetries:       3,
		ContainerStartPeriod:   15 * time.Second,
		ProbeTimeout:           DefaultProbeTimeout,
		ShutdownDelay:          12 * time.Second,
		DrainTimeout:           15 * time.Second,
		LongestRequest:         10 * time.Second,
		ColdStart:              10 * time.Second,
	}
}

// Violation is one broken rule: the field to change, its value, the rule it breaks (with the
// numbers that break it) and how to fix it.
type Violation struct {
	Field string `json:"field"` // a Settings field name
	Value string `json:"value"`
	Rule  string `json:"rule"`
	Fix   string `json:"fix"`
}

// Error renders the violation on one line: "Field = Value: Rule; fix: Fix".
func (v Violation) Error() string {
	return fmt.Sprintf("%s = %s: %s; fix: %s", v.Field, v.Value, v.Rule, v.Fix)
}

// DetectionTime is how long the load balancer takes, at worst, to mark a target unhealthy
// once its health check starts failing: interval × unhealthy threshold + timeout. It is zero
// when any of the three is not declared.
func (s Settings) DetectionTime() time.Duration {
	if s.LBHealthInterval == 0 || s.LBHealthTimeout == 0 || s.LBUnhealthyThreshold == 0 {
		return 0
	}
	return s.LBHealthInterval*time.Duration(s.LBUnhealthyThreshold) + s.LBHealthTimeout
}

// EffectiveStopTimeout is StopTimeout, or ECS's default when it is not declared.
func (s Settings) EffectiveStopTimeout() time.Duration {
	if s.StopTimeout == 0 {
		return DefaultStopTimeout
	}
	return s.StopTimeout
}

// EffectiveProbeTimeout is ProbeTimeout, or the probe's default when it is not declared.
func (s Settings) EffectiveProbeTimeout() time.Duration {
	if s.ProbeTimeout == 0 {
		return DefaultProbeTimeout
	}
	return s.ProbeTimeout
}

// ShutdownWindow is how long the proxy's shutdown can take: ShutdownDelay + DrainTimeout +
// ShutdownMargin. It must fit within the stop timeout.
func (s Settings) ShutdownWindow() time.Duration {
	return s.ShutdownDelay + s.DrainTimeout + ShutdownMargin
}

// Check returns every violation of the budget, in a stable order (ranges first, then the
// rules that tie fields together), or nil when everything fits.
func Check(s Settings) []Violation {
	c := checker{}
	c.ranges(s)
	c.container(s)
	c.shutdown(s)
	c.deployment(s)
	return c.out
}

type checker struct{ out []Violation }

func (c *checker) add(field, value, rule, fix string) {
	c.out = append(c.out, Violation{Field: field, Value: value, Rule: rule, Fix: fix})
}

// durationRange reports d outside [lo, hi] (whole seconds, as the APIs take them).
func (c *checker) durationRange(field string, d, lo, hi time.Duration, what string) {
	if d < lo || d > hi {
		c.add(field, d.String(), fmt.Sprintf("%s must be %s–%s", what, secs(lo), secs(hi)),
			fmt.Sprintf("set %s between %s and %s", field, secs(lo), secs(hi)))
		return
	}
	if d%time.Second != 0 {
		c.add(field, d.String(), what+" is a whole number of seconds",
			fmt.Sprintf("round %s to whole seconds", field))
	}
}

func (c *checker) intRange(field string, n, lo, hi int, what string) {
	if n < lo || n > hi {
		c.add(field, fmt.Sprint(n), fmt.Sprintf("%s must be %d–%d", what, lo, hi),
			fmt.Sprintf("set %s between %d and %d", field, lo, hi))
	}
}

// ranges checks the load balancer and ECS limits on the declared fields.
func (c *checker) ranges(s Settings) {
	if s.LBHealthInterval != 0 {
		c.durationRange("LBHealthInterval", s.LBHealthInterval, 5*time.Second, 300*time.Second,
			"the target group health-check interval")
	}
	if s.LBHealthTimeout != 0 {
		c.durationRange("LBHealthTimeout", s.LBHealthTimeout, 2*time.Second, 120*time.Second,
			"the target group health-check timeout")
		if s.LBHealthInterval != 0 && s.LBHealthTimeout >= s.LBHealthInterval {
			c.add("LBHealthTimeout", s.LBHealthTimeout.String(),
				fmt.Sprintf("the target group health-check timeout must be less than its interval (%s)", s.LBHealthInterval),
				fmt.Sprintf("set LBHealthTimeout below %s, or raise LBHealthInterval", s.LBHealthInterval))
		}
	}
	if s.LBHealthyThreshold != 0 {
		c.intRange("LBHealthyThreshold", s.LBHealthyThreshold, 2, 10, "the target group healthy threshold")
	}
	if s.LBUnhealthyThreshold != 0 {
		c.intRange("LBUnhealthyThreshold", s.LBUnhealthyThreshold, 2, 10, "the target group unhealthy threshold")
	}
	if s.DeregistrationDelay != 0 {
		c.durationRange("DeregistrationDelay", s.DeregistrationDelay, 0, 3600*time.Second,
			"the target group deregistration delay")
	}
	if s.StopTimeout != 0 {
		c.durationRange("StopTimeout", s.StopTimeout, MinStopTimeout, MaxStopTimeout,
			"stopTimeout on Fargate")
	}
}

// container checks the proxy container's ECS health check.
func (c *checker) container(s Settings) {
	if s.ContainerInterval == 0 && s.ContainerTimeout == 0 && s.ContainerRetries == 0 && s.ContainerStartPeriod == 0 {
		return
	}
	if s.ContainerInterval != 0 {
		c.durationRange("ContainerInterval", s.ContainerInterval, 5*time.Second, 300*time.Second,
			"the container health-check interval")
		if s.ContainerInterval > MaxContainerInterval && s.ContainerInterval <= 300*time.Second {
			c.add("ContainerInterval", s.ContainerInterval.String(),
				fmt.Sprintf("the container health-check interval must be at most %s, or ECS takes interval × retries to replace a stuck task and deployments wait as long", secs(MaxContainerInterval)),
				fmt.Sprintf("set ContainerInterval to %s or less", secs(MaxContainerInterval)))
		}
	}
	if s.ContainerTimeout != 0 {
		c.durationRange("ContainerTimeout", s.ContainerTimeout, MinContainerTimeout, 60*time.Second,
			"the container health-check timeout")
		// Below ECS's floor the range check has said it already.
		if probe := s.EffectiveProbeTimeout(); s.ContainerTimeout >= MinContainerTimeout && s.ContainerTimeout < probe+ProbeMargin {
			c.add("ContainerTimeout", s.ContainerTimeout.String(),
				fmt.Sprintf("the container health-check timeout must outlast the probe's own by %s, the time to start the probe and print its answer: ProbeTimeout + %s = %s + %s = %s; shorter, and ECS kills the probe before it gives up, and the probe's message saying what failed is lost",
					ProbeMargin, ProbeMargin, probe, ProbeMargin, probe+ProbeMargin),
				fmt.Sprintf("set ContainerTimeout to at least %s, or lower ProbeTimeout to %s or less", secs(ceilSecond(probe+ProbeMargin)), s.ContainerTimeout-ProbeMargin))
		}
		if s.ContainerInterval != 0 && s.ContainerTimeout >= s.ContainerInterval {
			c.add("ContainerTimeout", s.ContainerTimeout.String(),
				fmt.Sprintf("the container health-check timeout must be less than its interval (%s)", s.ContainerInterval),
				fmt.Sprintf("set ContainerTimeout below %s", s.ContainerInterval))
		}
	}
	if s.ContainerRetries != 0 {
		c.intRange("ContainerRetries", s.ContainerRetries, 1, 10, "the container health-check retries")
	}
	c.durationRange("ContainerStartPeriod", s.ContainerStartPeriod, 0, 300*time.Second,
		"the container health-check startPeriod")
	if s.ColdStart != 0 && s.ContainerStartPeriod < s.ColdStart {
		c.add("ContainerStartPeriod", s.ContainerStartPeriod.String(),
			fmt.Sprintf("the container health-check startPeriod must cover the cold start (%s), or failures while starting count against retries and ECS replaces tasks that were about to become ready", s.ColdStart),
			fmt.Sprintf("set ContainerStartPeriod to at least %s", secs(ceilSecond(s.ColdStart))))
	}
}

// raiseDelayFix is the advice to raise the shutdown delay to delay, with what must rise with
// it: a longer delay lengthens the whole shutdown, which must still fit within stopTimeout.
func raiseDelayFix(s Settings, delay time.Duration) string {
	fix := fmt.Sprintf("raise ShutdownDelay to %s", delay)
	raised := s
	raised.ShutdownDelay = delay
	need := raised.ShutdownWindow()
	switch {
	case need <= s.EffectiveStopTimeout():
	case need <= MaxStopTimeout:
		fix += fmt.Sprintf(" and StopTimeout to %s (ShutdownDelay + DrainTimeout + Margin must fit within it)", secs(ceilSecond(need)))
	default:
		fix += fmt.Sprintf(", StopTimeout to %s and shorten DrainTimeout by %s (ShutdownDelay + DrainTimeout + Margin must fit within stopTimeout, at most %s on Fargate)",
			secs(MaxStopTimeout), need-MaxStopTimeout, secs(MaxStopTimeout))
	}
	return fix
}

// shutdown checks the proxy's shutdown against the load balancer and stopTimeout.
func (c *checker) shutdown(s Settings) {
	if detect := s.DetectionTime(); detect != 0 && s.ShutdownDelay < detect {
		c.add("ShutdownDelay", s.ShutdownDelay.String(),
			fmt.Sprintf("the shutdown delay must outlast the load balancer's detection of a failing target: LBHealthInterval × LBUnhealthyThreshold + LBHealthTimeout = %s × %d + %s = %s; shorter, and requests still routed to this task are refused",
				s.LBHealthInterval, s.LBUnhealthyThreshold, s.LBHealthTimeout, detect),
			raiseDelayFix(s, detect)+", or make the target group notice sooner (shorter interval, fewer unhealthy checks)")
	}
	stop := s.EffectiveStopTimeout()
	if need := s.ShutdownWindow(); need > stop {
		var fix string
		if need <= MaxStopTimeout {
			fix = fmt.Sprintf("raise StopTimeout to %s, or shorten ShutdownDelay or DrainTimeout by %s", secs(ceilSecond(need)), need-stop)
		} else {
			fix = fmt.Sprintf("shorten ShutdownDelay or DrainTimeout by %s: stopTimeout cannot exceed %s on Fargate", need-MaxStopTimeout, secs(MaxStopTimeout))
		}
		what := fmt.Sprint(stop)
		if s.StopTimeout == 0 {
			what += " (ECS default; not set)"
		}
		c.add("StopTimeout", what,
			fmt.Sprintf("ShutdownDelay + DrainTimeout + the proxy's margin = %s + %s + %s = %s must fit within stopTimeout, or ECS sends SIGKILL to requests still draining",
				s.ShutdownDelay, s.DrainTimeout, ShutdownMargin, need),
			fix)
	}
	if s.LongestRequest != 0 && s.DeregistrationDelay != 0 && s.DeregistrationDelay < s.LongestRequest {
		c.add("DeregistrationDelay", s.DeregistrationDelay.String(),
			fmt.Sprintf("the deregistration delay must cover the longest request (%s), or the load balancer cuts requests still in flight when it drops the target", s.LongestRequest),
			fmt.Sprintf("set DeregistrationDelay to at least %s", secs(ceilSecond(s.LongestRequest))))
	}
	if s.LongestRequest != 0 && s.DrainTimeout < s.LongestRequest {
		c.add("DrainTimeout", s.DrainTimeout.String(),
			fmt.Sprintf("the drain timeout must cover the longest request (%s): a request accepted at the end of the shutdown delay still has to finish", s.LongestRequest),
			fmt.Sprintf("raise DrainTimeout to %s (and stopTimeout with it), or make requests shorter", s.LongestRequest))
	}
}

// deployment checks the service's deployment settings.
func (c *checker) deployment(s Settings) {
	if s.HealthCheckGracePeriod != 0 && s.ColdStart != 0 {
		need, what := s.ColdStart, fmt.Sprintf("the cold start (%s)", s.ColdStart)
		if s.LBHealthyThreshold != 0 && s.LBHealthInterval != 0 {
			// A task is ready after its cold start, but healthy in the target group only after
			// the healthy threshold's passing checks; until then its failed checks count.
			need = s.ColdStart + time.Duration(s.LBHealthyThreshold)*s.LBHealthInterval
			what = fmt.Sprintf("the cold start and the healthy threshold's passing checks (%s + %d × %s = %s)",
				s.ColdStart, s.LBHealthyThreshold, s.LBHealthInterval, need)
		}
		if s.HealthCheckGracePeriod < need {
			c.add("HealthCheckGracePeriod", s.HealthCheckGracePeriod.String(),
				fmt.Sprintf("the health-check grace period must cover %s, or the scheduler replaces tasks that were about to turn healthy", what),
				fmt.Sprintf("set HealthCheckGracePeriod to at least %s", secs(ceilSecond(need))))
		}
	}
	if s.MinimumHealthyPercent != 0 && s.MinimumHealthyPercent != 100 {
		c.add("MinimumHealthyPercent", fmt.Sprint(s.MinimumHealthyPercent),
			"minimumHealthyPercent must be 100 for zero failed requests: below 100 the scheduler stops old tasks before new ones are healthy",
			"set MinimumHealthyPercent to 100")
	}
	if s.MaximumPercent != 0 && s.MaximumPercent != 200 {
		c.add("MaximumPercent", fmt.Sprint(s.MaximumPercent),
			"maximumPercent must be 200 so that a whole new set of tasks can start beside the old one before any old task stops",
			"set MaximumPercent to 200")
	}
}

// secs renders a duration in seconds the way the AWS APIs take it: "30 s".
func secs(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}

func ceilSecond(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}
