package elbapi

import (
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// DataPlane is what the load balancer's data plane must do, derived from the API's state:
// the listeners with their rules in evaluation order, and for each target group the targets
// that take new requests and those that drain.
type DataPlane struct {
	Listeners    []Listener
	TargetGroups []TargetGroup
}

// Listener is one listener: a port and its rules, highest priority first, the default rule
// last.
type Listener struct {
	Arn   string
	Port  int32
	Rules []Rule
}

// Rule is a rule's conditions (all must hold; none for the default rule) and its actions.
type Rule struct {
	Arn        string
	Priority   string
	Conditions []types.RuleCondition
	Actions    []types.Action
}

// TargetGroup is a target group's serving set.
type TargetGroup struct {
	Arn       string
	Algorithm string // load_balancing.algorithm.type
	// Serving take new requests: healthy targets or, when the group has none, every
	// unhealthy one ("fail open"). Draining finish what they have and take nothing new.
	Serving, Draining []Endpoint
}

// Endpoint is a target's address and port.
type Endpoint struct {
	ID   string
	Port int32
}

// DataPlane returns the data plane's current configuration. Equal states give equal values,
// so that a caller can compare two readings to see whether anything changed.
//
// A target takes requests once it is healthy ("Before a target can receive requests … it must
// pass the initial health checks"); when every registered target of a group is unhealthy the
// group fails open: "If a target group contains only unhealthy registered targets, the load
// balancer routes requests to all those targets" (Health checks for Application Load Balancer
// target groups). Targets still in initial do not count as unhealthy there (ecslocal's
// reading: the documentation does not say).
func (a *API) DataPlane() DataPlane {
	a.mu.Lock()
	defer a.mu.Unlock()
	var dp DataPlane
	var listeners []*listener
	for _, l := range a.listeners {
		listeners = append(listeners, l)
	}
	slices.SortFunc(listeners, func(x, y *listener) int { return x.seq - y.seq })
	for _, l := range listeners {
		var rules []*rule
		for _, r := range a.rules {
			if r.listener == l {
				rules = append(rules, r)
			}
		}
		slices.SortFunc(rules, func(x, y *rule) int { return rulePriority(x) - rulePriority(y) })
		out := Listener{Arn: *l.l.ListenerArn, Port: *l.l.Port}
		for _, r := range rules {
			c := wire.Clone(&r.r)
			out.Rules = append(out.Rules, Rule{Arn: *c.RuleArn, Priority: *c.Priority, Conditions: c.Conditions, Actions: c.Actions})
		}
		dp.Listeners = append(dp.Listeners, out)
	}
	var groups []*targetGroup
	for _, g := range a.targetGroups {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(x, y *targetGroup) int { return strings.Compare(*x.tg.TargetGroupArn, *y.tg.TargetGroupArn) })
	for _, g := range groups {
		a.reap(g)
		tg := TargetGroup{Arn: *g.tg.TargetGroupArn, Algorithm: g.attrs["load_balancing.algorithm.type"]}
		var unhealthy []Endpoint
		for _, t := range g.targets {
			e := Endpoint{ID: t.id, Port: t.port}
			switch {
			case !t.drainUntil.IsZero():
				tg.Draining = append(tg.Draining, e)
			case !aws.ToBool(g.tg.HealthCheckEnabled), t.state == types.TargetHealthStateEnumHealthy:
				tg.Serving = append(tg.Serving, e)
			case t.state == types.TargetHealthStateEnumUnhealthy:
				unhealthy = append(unhealthy, e)
			}
		}
		if len(tg.Serving) == 0 {
			tg.Serving = unhealthy
		}
		dp.TargetGroups = append(dp.TargetGroups, tg)
	}
	return dp
}
