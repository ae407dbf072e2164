package elbapi

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

type listener struct {
	l   types.Listener
	seq int
}

// rule is a listener rule; every listener has one default rule (IsDefault, priority
// "default") whose actions are the listener's default actions.
type rule struct {
	r        types.Rule
	listener *listener
}

// CreateListener creates an HTTP listener and its default rule.
func (a *API) CreateListener(_ context.Context, in *elb.CreateListenerInput) (*elb.CreateListenerOutput, error) {
	if in.Protocol != "" && in.Protocol != types.ProtocolEnumHttp {
		return nil, wire.Errorf("UnsupportedProtocol", "Protocol '%s' is not supported by ecslocal; listeners use HTTP", in.Protocol)
	}
	port := aws.ToInt32(in.Port)
	if port < 1 || port > 65535 {
		return nil, validation("Port must be between 1 and 65535")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	lb := a.loadBalancers[aws.ToString(in.LoadBalancerArn)]
	if lb == nil {
		return nil, loadBalancerNotFound()
	}
	for _, l := range a.listeners {
		if *l.l.LoadBalancerArn == *lb.lb.LoadBalancerArn && *l.l.Port == port {
			return nil, wire.Errorf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", *lb.lb.LoadBalancerArn)
		}
	}
	actions, err := a.checkActions(in.DefaultActions)
	if err != nil {
		return nil, err
	}
	lbPath := lastPart(*lb.lb.LoadBalancerArn, 3) // app/<name>/<id>
	l := &listener{seq: a.next(), l: types.Listener{
		ListenerArn:     aws.String(a.arn(fmt.Sprintf("listener/%s/%s", lbPath, resourceID()))),
		LoadBalancerArn: lb.lb.LoadBalancerArn,
		Port:            aws.Int32(port),
		Protocol:        types.ProtocolEnumHttp,
		DefaultActions:  actions,
	}}
	a.listeners[*l.l.ListenerArn] = l
	def := &rule{listener: l, r: types.Rule{
		RuleArn:    aws.String(a.ruleARN(l)),
		Priority:   aws.String("default"),
		IsDefault:  aws.Bool(true),
		Conditions: []types.RuleCondition{},
		Actions:    actions,
	}}
	a.rules[*def.r.RuleArn] = def
	a.addTags(*l.l.ListenerArn, in.Tags)
	return &elb.CreateListenerOutput{Listeners: []types.Listener{*wire.Clone(&l.l)}}, nil
}

// lastPart is the last n '/'-separated parts of an ARN.
func lastPart(arn string, n int) string {
	i := len(arn)
	for range n {
		j := lastIndex(arn[:i], '/')
		if j < 0 {
			return arn
		}
		i = j
	}
	return arn[i+1:]
}

func lastIndex(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// ruleARN is a new rule's ARN: listener-rule/app/<lb>/<lb id>/<listener id>/<id>.
func (a *API) ruleARN(l *listener) string {
	return a.arn(fmt.Sprintf("listener-rule/%s/%s", lastPart(*l.l.ListenerArn, 4), resourceID()))
}

// checkActions validates actions (forward, fixed-response, redirect; one of them last and
// terminal) and returns them as Describe* shows them: a forward to one target group carries
// both TargetGroupArn and a ForwardConfig with weight 1. The caller holds a.mu.
func (a *API) checkActions(in []types.Action) ([]types.Action, error) {
	if len(in) == 0 {
		return nil, validation("At least one action must be specified")
	}
	out := make([]types.Action, 0, len(in))
	for i, act := range in {
		act = *wire.Clone(&act)
		if act.Order == nil && len(in) > 1 {
			act.Order = aws.Int32(int32(i + 1))
		}
		switch act.Type {
		case types.ActionTypeEnumForward:
			if act.ForwardConfig == nil {
				if act.TargetGroupArn == nil {
					return nil, validation("A target group ARN must be specified for a forward action")
				}
				act.ForwardConfig = &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{{TargetGroupArn: act.TargetGroupArn, Weight: aws.Int32(1)}}}
			}
			fc := act.ForwardConfig
			if len(fc.TargetGroups) == 0 || len(fc.TargetGroups) > 5 {
				return nil, validation("A forward action must have between 1 and 5 target groups")
			}
			for j := range fc.TargetGroups {
				tt := &fc.TargetGroups[j]
				g := a.targetGroups[aws.ToString(tt.TargetGroupArn)]
				if g == nil {
					return nil, targetGroupNotFound()
				}
				if act.TargetGroupArn != nil && *act.TargetGroupArn != *tt.TargetGroupArn && len(fc.TargetGroups) == 1 {
					return nil, validation("The target group ARN and the forward config's target group must be the same")
				}
				if tt.Weight == nil {
					tt.Weight = aws.Int32(1)
				}
				if *tt.Weight < 0 || *tt.Weight > 999 {
					return nil, validation("Target group weight must be between 0 and 999")
				}
			}
			if fc.TargetGroupStickinessConfig == nil {
				fc.TargetGroupStickinessConfig = &types.TargetGroupStickinessConfig{Enabled: aws.Bool(false)}
			}
			if len(fc.TargetGroups) == 1 {
				act.TargetGroupArn = fc.TargetGroups[0].TargetGroupArn
			} else {
				act.TargetGroupArn = nil
			}
		case types.ActionTypeEnumFixedResponse:
			fr := act.FixedResponseConfig
			if fr == nil || fr.StatusCode == nil {
				return nil, validation("A status code must be specified for a fixed-response action")
			}
			if n, err := strconv.Atoi(*fr.StatusCode); err != nil || n < 200 || n > 599 {
				return nil, validation("Fixed response status code '%s' must be between 200 and 599", *fr.StatusCode)
			}
		case types.ActionTypeEnumRedirect:
			if act.RedirectConfig == nil || act.RedirectConfig.StatusCode == "" {
				return nil, validation("A status code must be specified for a redirect action")
			}
		default:
			return nil, invalidConfig("Action type '%s' is not supported by ecslocal; forward, fixed-response and redirect are", act.Type)
		}
		out = append(out, act)
	}
	return out, nil
}

// forwardTargets lists the target groups that actions forward to.
func forwardTargets(actions []types.Action) []string {
	var out []string
	for _, act := range actions {
		if act.ForwardConfig != nil {
			for _, tt := range act.ForwardConfig.TargetGroups {
				out = append(out, aws.ToString(tt.TargetGroupArn))
			}
		}
	}
	return out
}

// DescribeListeners describes listeners by ARN or load balancer.
func (a *API) DescribeListeners(_ context.Context, in *elb.DescribeListenersInput) (*elb.DescribeListenersOutput, error) {
	if in.LoadBalancerArn == nil && len(in.ListenerArns) == 0 {
		return nil, validation("You must specify either listener ARNs or a load balancer ARN")
	}
	a.mu.Lock()
	if in.LoadBalancerArn != nil && a.loadBalancers[*in.LoadBalancerArn] == nil {
		a.mu.Unlock()
		return nil, loadBalancerNotFound()
	}
	var found []*listener
	for _, l := range a.listeners {
		if (in.LoadBalancerArn != nil && *l.l.LoadBalancerArn == *in.LoadBalancerArn) || slices.Contains(in.ListenerArns, *l.l.ListenerArn) {
			found = append(found, l)
		}
	}
	slices.SortFunc(found, func(x, y *listener) int { return x.seq - y.seq })
	out := make([]types.Listener, 0, len(found))
	for _, l := range found {
		out = append(out, *wire.Clone(&l.l))
	}
	a.mu.Unlock()
	if len(out) < len(in.ListenerArns) {
		return nil, listenerNotFound()
	}
	pg, next, err := page(out, in.Marker, in.PageSize)
	if err != nil {
		return nil, err
	}
	return &elb.DescribeListenersOutput{Listeners: pg, NextMarker: next}, nil
}

// ModifyListener changes a listener's port or default actions.
func (a *API) ModifyListener(_ context.Context, in *elb.ModifyListenerInput) (*elb.ModifyListenerOutput, error) {
	if in.Protocol != "" && in.Protocol != types.ProtocolEnumHttp {
		return nil, wire.Errorf("UnsupportedProtocol", "Protocol '%s' is not supported by ecslocal; listeners use HTTP", in.Protocol)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.listeners[aws.ToString(in.ListenerArn)]
	if l == nil {
		return nil, listenerNotFound()
	}
	if in.Port != nil {
		if *in.Port < 1 || *in.Port > 65535 {
			return nil, validation("Port must be between 1 and 65535")
		}
		for _, o := range a.listeners {
			if o != l && *o.l.LoadBalancerArn == *l.l.LoadBalancerArn && *o.l.Port == *in.Port {
				return nil, wire.Errorf("DuplicateListener", "A listener already exists on this port for this load balancer '%s'", *l.l.LoadBalancerArn)
			}
		}
	}
	if in.DefaultActions != nil {
		actions, err := a.checkActions(in.DefaultActions)
		if err != nil {
			return nil, err
		}
		l.l.DefaultActions = actions
		for _, r := range a.rules {
			if r.listener == l && aws.ToBool(r.r.IsDefault) {
				r.r.Actions = actions
			}
		}
	}
	if in.Port != nil {
		l.l.Port = in.Port
	}
	return &elb.ModifyListenerOutput{Listeners: []types.Listener{*wire.Clone(&l.l)}}, nil
}

// DeleteListener deletes a listener and its rules.
func (a *API) DeleteListener(_ context.Context, in *elb.DeleteListenerInput) (*elb.DeleteListenerOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.listeners[aws.ToString(in.ListenerArn)]
	if l == nil {
		return nil, listenerNotFound()
	}
	a.deleteListener(l)
	return &elb.DeleteListenerOutput{}, nil
}

// deleteListener removes a listener and its rules. The caller holds a.mu.
func (a *API) deleteListener(l *listener) {
	for arn, r := range a.rules {
		if r.listener == l {
			delete(a.rules, arn)
			delete(a.tags, arn)
		}
	}
	delete(a.listeners, *l.l.ListenerArn)
	delete(a.tags, *l.l.ListenerArn)
}

// checkConditions validates rule conditions and fills in both forms Describe* shows: the
// legacy Values and the field's config.
func checkConditions(in []types.RuleCondition) ([]types.RuleCondition, error) {
	if len(in) == 0 {
		return nil, validation("A rule must have at least one condition")
	}
	out := make([]types.RuleCondition, 0, len(in))
	for _, c := range in {
		c = *wire.Clone(&c)
		switch aws.ToString(c.Field) {
		case "path-pattern":
			if c.PathPatternConfig == nil {
				c.PathPatternConfig = &types.PathPatternConditionConfig{Values: c.Values}
			}
			c.Values = c.PathPatternConfig.Values
		case "host-header":
			if c.HostHeaderConfig == nil {
				c.HostHeaderConfig = &types.HostHeaderConditionConfig{Values: c.Values}
			}
			c.Values = c.HostHeaderConfig.Values
		case "http-header":
			if c.HttpHeaderConfig == nil || aws.ToString(c.HttpHeaderConfig.HttpHeaderName) == "" {
				return nil, validation("An http-header condition needs HttpHeaderConfig with a header name")
			}
			if len(c.HttpHeaderConfig.Values) == 0 {
				return nil, validation("An http-header condition needs at least one value")
			}
			out = append(out, c)
			continue
		case "http-request-method":
			if c.HttpRequestMethodConfig == nil || len(c.HttpRequestMethodConfig.Values) == 0 {
				return nil, validation("An http-request-method condition needs at least one method")
			}
			out = append(out, c)
			continue
		default:
			return nil, invalidConfig("Condition field '%s' is not supported by ecslocal; path-pattern, host-header, http-header and http-request-method are", aws.ToString(c.Field))
		}
		if len(c.Values) == 0 {
			return nil, validation("A %s condition needs at least one value", *c.Field)
		}
		out = append(out, c)
	}
	return out, nil
}

// CreateRule adds a rule with a priority (1 to 50000) unique in its listener.
func (a *API) CreateRule(_ context.Context, in *elb.CreateRuleInput) (*elb.CreateRuleOutput, error) {
	prio := aws.ToInt32(in.Priority)
	if prio < 1 || prio > 50000 {
		return nil, validation("Priority must be between 1 and 50000")
	}
	conds, err := checkConditions(in.Conditions)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.listeners[aws.ToString(in.ListenerArn)]
	if l == nil {
		return nil, listenerNotFound()
	}
	p := strconv.Itoa(int(prio))
	for _, r := range a.rules {
		if r.listener == l && aws.ToString(r.r.Priority) == p {
			return nil, wire.Errorf("PriorityInUse", "Priority '%d' is currently in use", prio)
		}
	}
	actions, err := a.checkActions(in.Actions)
	if err != nil {
		return nil, err
	}
	r := &rule{listener: l, r: types.Rule{
		RuleArn:    aws.String(a.ruleARN(l)),
		Priority:   aws.String(p),
		IsDefault:  aws.Bool(false),
		Conditions: conds,
		Actions:    actions,
	}}
	a.rules[*r.r.RuleArn] = r
	a.addTags(*r.r.RuleArn, in.Tags)
	return &elb.CreateRuleOutput{Rules: []types.Rule{*wire.Clone(&r.r)}}, nil
}

// rulePriority orders rules by priority, the default rule last.
func rulePriority(r *rule) int {
	if aws.ToBool(r.r.IsDefault) {
		return 1 << 30
	}
	n, _ := strconv.Atoi(aws.ToString(r.r.Priority))
	return n
}

// DescribeRules describes a listener's rules in priority order, or rules by ARN.
func (a *API) DescribeRules(_ context.Context, in *elb.DescribeRulesInput) (*elb.DescribeRulesOutput, error) {
	if in.ListenerArn == nil && len(in.RuleArns) == 0 {
		return nil, validation("You must specify either listener ARN or rule ARNs")
	}
	a.mu.Lock()
	if in.ListenerArn != nil && a.listeners[*in.ListenerArn] == nil {
		a.mu.Unlock()
		return nil, listenerNotFound()
	}
	var found []*rule
	for _, r := range a.rules {
		if (in.ListenerArn != nil && *r.listener.l.ListenerArn == *in.ListenerArn) || slices.Contains(in.RuleArns, *r.r.RuleArn) {
			found = append(found, r)
		}
	}
	slices.SortFunc(found, func(x, y *rule) int { return rulePriority(x) - rulePriority(y) })
	out := make([]types.Rule, 0, len(found))
	for _, r := range found {
		out = append(out, *wire.Clone(&r.r))
	}
	a.mu.Unlock()
	if len(out) < len(in.RuleArns) {
		return nil, ruleNotFound()
	}
	pg, next, err := page(out, in.Marker, in.PageSize)
	if err != nil {
		return nil, err
	}
	return &elb.DescribeRulesOutput{Rules: pg, NextMarker: next}, nil
}

// ModifyRule replaces a rule's conditions or actions; the default rule's conditions cannot
// change.
func (a *API) ModifyRule(_ context.Context, in *elb.ModifyRuleInput) (*elb.ModifyRuleOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rules[aws.ToString(in.RuleArn)]
	if r == nil {
		return nil, ruleNotFound()
	}
	var conds []types.RuleCondition
	if in.Conditions != nil {
		if aws.ToBool(r.r.IsDefault) {
			return nil, wire.Errorf("OperationNotPermitted", "Conditions cannot be set on a default rule")
		}
		var err error
		if conds, err = checkConditions(in.Conditions); err != nil {
			return nil, err
		}
	}
	var actions []types.Action
	if in.Actions != nil {
		var err error
		if actions, err = a.checkActions(in.Actions); err != nil {
			return nil, err
		}
	}
	if conds != nil {
		r.r.Conditions = conds
	}
	if actions != nil {
		r.r.Actions = actions
		if aws.ToBool(r.r.IsDefault) {
			r.listener.l.DefaultActions = actions
		}
	}
	return &elb.ModifyRuleOutput{Rules: []types.Rule{*wire.Clone(&r.r)}}, nil
}

// SetRulePriorities changes the priorities of non-default rules, all or none.
func (a *API) SetRulePriorities(_ context.Context, in *elb.SetRulePrioritiesInput) (*elb.SetRulePrioritiesOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := map[*rule]string{}
	for _, p := range in.RulePriorities {
		r := a.rules[aws.ToString(p.RuleArn)]
		if r == nil {
			return nil, ruleNotFound()
		}
		if aws.ToBool(r.r.IsDefault) {
			return nil, wire.Errorf("OperationNotPermitted", "The priority of a default rule cannot be changed")
		}
		n := aws.ToInt32(p.Priority)
		if n < 1 || n > 50000 {
			return nil, validation("Priority must be between 1 and 50000")
		}
		next[r] = strconv.Itoa(int(n))
	}
	for r, p := range next {
		for _, o := range a.rules {
			prio := aws.ToString(o.r.Priority)
			if np, moving := next[o]; moving {
				prio = np
			}
			if o != r && o.listener == r.listener && prio == p {
				return nil, wire.Errorf("PriorityInUse", "Priority '%s' is currently in use", p)
			}
		}
	}
	out := &elb.SetRulePrioritiesOutput{Rules: []types.Rule{}}
	for r, p := range next {
		r.r.Priority = aws.String(p)
		out.Rules = append(out.Rules, *wire.Clone(&r.r))
	}
	return out, nil
}

// DeleteRule deletes a rule other than the default rule.
func (a *API) DeleteRule(_ context.Context, in *elb.DeleteRuleInput) (*elb.DeleteRuleOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.rules[aws.ToString(in.RuleArn)]
	if r == nil {
		return nil, ruleNotFound()
	}
	if aws.ToBool(r.r.IsDefault) {
		return nil, wire.Errorf("OperationNotPermitted", "Default rule '%s' cannot be deleted", *r.r.RuleArn)
	}
	delete(a.rules, *r.r.RuleArn)
	delete(a.tags, *r.r.RuleArn)
	return &elb.DeleteRuleOutput{}, nil
}
