package elbapi

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// State is the load-balancing records, as a state file keeps them: load balancers, target
// groups with their attributes and registered targets, listeners, rules and tags, each with
// its creation order. A target's health is not kept: it is checked again. Equal states give
// equal values.
type State struct {
	LoadBalancers []LoadBalancerState
	TargetGroups  []TargetGroupState
	Listeners     []ListenerState
	Rules         []RuleState
	Tags          map[string]map[string]string
	Seq           int
}

// LoadBalancerState is a load balancer and its creation order.
type LoadBalancerState struct {
	LoadBalancer types.LoadBalancer
	Seq          int
}

// TargetGroupState is a target group, its attributes and its registered targets.
type TargetGroupState struct {
	TargetGroup types.TargetGroup
	Seq         int
	Attributes  map[string]string
	Targets     []TargetState
}

// TargetState is a registered target; DrainUntil is set while it drains.
type TargetState struct {
	ID         string
	Port       int32
	DrainUntil time.Time `json:",omitzero"`
}

// ListenerState is a listener and its creation order.
type ListenerState struct {
	Listener types.Listener
	Seq      int
}

// RuleState is a rule of a listener.
type RuleState struct {
	Rule        types.Rule
	ListenerArn string
}

// State returns a copy of the records.
func (a *API) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := State{Tags: map[string]map[string]string{}, Seq: a.seq}
	for _, lb := range a.loadBalancers {
		s.LoadBalancers = append(s.LoadBalancers, LoadBalancerState{LoadBalancer: *wire.Clone(&lb.lb), Seq: lb.seq})
	}
	slices.SortFunc(s.LoadBalancers, func(x, y LoadBalancerState) int { return x.Seq - y.Seq })
	for _, g := range a.targetGroups {
		a.reap(g)
		gs := TargetGroupState{TargetGroup: *wire.Clone(&g.tg), Seq: g.seq, Attributes: maps.Clone(g.attrs)}
		for _, t := range g.targets {
			gs.Targets = append(gs.Targets, TargetState{ID: t.id, Port: t.port, DrainUntil: t.drainUntil})
		}
		s.TargetGroups = append(s.TargetGroups, gs)
	}
	slices.SortFunc(s.TargetGroups, func(x, y TargetGroupState) int { return x.Seq - y.Seq })
	for _, l := range a.listeners {
		s.Listeners = append(s.Listeners, ListenerState{Listener: *wire.Clone(&l.l), Seq: l.seq})
	}
	slices.SortFunc(s.Listeners, func(x, y ListenerState) int { return x.Seq - y.Seq })
	for _, r := range a.rules {
		s.Rules = append(s.Rules, RuleState{Rule: *wire.Clone(&r.r), ListenerArn: aws.ToString(r.listener.l.ListenerArn)})
	}
	slices.SortFunc(s.Rules, func(x, y RuleState) int { return strings.Compare(*x.Rule.RuleArn, *y.Rule.RuleArn) })
	for arn, tags := range a.tags {
		s.Tags[arn] = maps.Clone(tags)
	}
	return s
}

// Restore loads records into an API that has none. Registered targets start over as a new
// registration does (initial, checked again); draining ones drain until their time.
func (a *API) Restore(s State) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.loadBalancers)+len(a.targetGroups)+len(a.listeners) > 0 {
		return fmt.Errorf("restoring load-balancing records: the API already holds records")
	}
	for _, lb := range s.LoadBalancers {
		a.loadBalancers[aws.ToString(lb.LoadBalancer.LoadBalancerArn)] = &loadBalancer{lb: lb.LoadBalancer, seq: lb.Seq}
	}
	for _, gs := range s.TargetGroups {
		g := &targetGroup{tg: gs.TargetGroup, seq: gs.Seq, attrs: maps.Clone(gs.Attributes)}
		if g.attrs == nil {
			g.attrs = map[string]string{}
		}
		for _, ts := range gs.Targets {
			g.targets = append(g.targets, &target{id: ts.ID, port: ts.Port, drainUntil: ts.DrainUntil,
				state: types.TargetHealthStateEnumInitial, reason: types.TargetHealthReasonEnumRegistrationInProgress, desc: descRegistration})
		}
		a.targetGroups[aws.ToString(gs.TargetGroup.TargetGroupArn)] = g
	}
	for _, ls := range s.Listeners {
		a.listeners[aws.ToString(ls.Listener.ListenerArn)] = &listener{l: ls.Listener, seq: ls.Seq}
	}
	for _, rs := range s.Rules {
		l := a.listeners[rs.ListenerArn]
		if l == nil {
			return fmt.Errorf("restoring rule %s: no listener %s", aws.ToString(rs.Rule.RuleArn), rs.ListenerArn)
		}
		a.rules[aws.ToString(rs.Rule.RuleArn)] = &rule{r: rs.Rule, listener: l}
	}
	for arn, tags := range s.Tags {
		a.tags[arn] = maps.Clone(tags)
	}
	a.seq = s.Seq
	return nil
}
