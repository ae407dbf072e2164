package elbapi_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
)

// clock is a test clock that moves only when told.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func start(t *testing.T) (*elb.Client, *clock) {
	t.Helper()
	clk := &clock{}
	clk.ns.Store(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC).UnixNano())
	return ecslocaltest.Start(t, ecsapi.New(ecsapi.Options{}), elbapi.New(elbapi.Options{Now: clk.now})).ELB, clk
}

func targetGroup(t *testing.T, c *elb.Client, name string) string {
	t.Helper()
	out := ecslocaltest.Must(c.CreateTargetGroup(context.Background(), &elb.CreateTargetGroupInput{
		Name: aws.String(name), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(8080), VpcId: aws.String("vpc-1"),
		TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
	})).Get(t)
	return *out.TargetGroups[0].TargetGroupArn
}

func forward(arns ...string) []types.Action {
	fc := &types.ForwardActionConfig{}
	for i, arn := range arns {
		fc.TargetGroups = append(fc.TargetGroups, types.TargetGroupTuple{TargetGroupArn: aws.String(arn), Weight: aws.Int32(int32(100 * (1 - i)))})
	}
	return []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: fc}}
}

func TestTargetGroups(t *testing.T) {
	ctx := context.Background()
	c, _ := start(t)
	arn := targetGroup(t, c, "blue")
	tg := ecslocaltest.Must(c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{"blue"}})).Get(t).TargetGroups[0]
	// The defaults of "Health checks for Application Load Balancer target groups".
	if *tg.HealthCheckIntervalSeconds != 30 || *tg.HealthCheckTimeoutSeconds != 5 || *tg.HealthyThresholdCount != 5 ||
		*tg.UnhealthyThresholdCount != 2 || *tg.Matcher.HttpCode != "200" || *tg.HealthCheckPath != "/ready" || *tg.HealthCheckPort != "traffic-port" {
		t.Errorf("defaults: %+v", tg)
	}
	// The same name and settings is the same group; different settings are refused.
	again := targetGroup(t, c, "blue")
	if again != arn {
		t.Errorf("CreateTargetGroup twice: %s then %s", arn, again)
	}
	_, err := c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("blue"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(9), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp})
	ecslocaltest.WantCode(t, err, "DuplicateTargetGroupName")

	_, err = c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String(arn), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(5)})
	ecslocaltest.WantCode(t, err, "ValidationError")
	mod := ecslocaltest.Must(c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String(arn), HealthCheckIntervalSeconds: aws.Int32(5),
		HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), Matcher: &types.Matcher{HttpCode: aws.String("200-299")}})).Get(t)
	if *mod.TargetGroups[0].HealthCheckIntervalSeconds != 5 || *mod.TargetGroups[0].Matcher.HttpCode != "200-299" {
		t.Errorf("modified: %+v", mod.TargetGroups[0])
	}

	attrs := ecslocaltest.Must(c.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})).Get(t)
	if v := attribute(attrs.Attributes, "deregistration_delay.timeout_seconds"); v != "300" {
		t.Errorf("deregistration delay default %q, want 300", v)
	}
	set := func(k, v string) error {
		_, err := c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
			Attributes: []types.TargetGroupAttribute{{Key: aws.String(k), Value: aws.String(v)}}})
		return err
	}
	ecslocaltest.WantCode(t, set("deregistration_delay.timeout_seconds", "3601"), "InvalidConfigurationRequest")
	ecslocaltest.WantCode(t, set("no.such.attribute", "1"), "InvalidConfigurationRequest")
	ecslocaltest.WantCode(t, set("slow_start.duration_seconds", "10"), "InvalidConfigurationRequest")
	if err := set("deregistration_delay.timeout_seconds", "5"); err != nil {
		t.Fatal(err)
	}
	attrs = ecslocaltest.Must(c.DescribeTargetGroupAttributes(ctx, &elb.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})).Get(t)
	if v := attribute(attrs.Attributes, "deregistration_delay.timeout_seconds"); v != "5" {
		t.Errorf("deregistration delay %q after setting 5", v)
	}
	_, err = c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{arn + "0"}})
	var nf *types.TargetGroupNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("describing a missing target group: %v, want TargetGroupNotFoundException", err)
	}
}

func attribute(attrs []types.TargetGroupAttribute, key string) string {
	for _, a := range attrs {
		if *a.Key == key {
			return *a.Value
		}
	}
	return "<absent>"
}

func TestListenersAndRules(t *testing.T) {
	ctx := context.Background()
	c, _ := start(t)
	blue, green := targetGroup(t, c, "blue"), targetGroup(t, c, "green")
	lb := ecslocaltest.Must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front"), Subnets: []string{"s1", "s2"}})).Get(t).LoadBalancers[0]
	if lb.State.Code != types.LoadBalancerStateEnumActive || lb.Type != types.LoadBalancerTypeEnumApplication {
		t.Errorf("load balancer: %+v", lb)
	}
	l := ecslocaltest.Must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(blue)}}})).Get(t).Listeners[0]
	// A forward to one target group is shown in both forms, weight 1.
	act := l.DefaultActions[0]
	if *act.TargetGroupArn != blue || len(act.ForwardConfig.TargetGroups) != 1 || *act.ForwardConfig.TargetGroups[0].Weight != 1 {
		t.Errorf("default action: %+v", act)
	}
	_, err := c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80), DefaultActions: forward(blue)})
	ecslocaltest.WantCode(t, err, "DuplicateListener")

	cond := []types.RuleCondition{{Field: aws.String("path-pattern"), Values: []string{"/api/*"}}}
	r10 := ecslocaltest.Must(c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: aws.Int32(10), Conditions: cond, Actions: forward(blue, green)})).Get(t).Rules[0]
	ecslocaltest.Must(c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: aws.Int32(5), Actions: forward(green),
		Conditions: []types.RuleCondition{{Field: aws.String("host-header"), HostHeaderConfig: &types.HostHeaderConditionConfig{Values: []string{"test.example"}}}}})).Get(t)
	_, err = c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: l.ListenerArn, Priority: aws.Int32(10), Conditions: cond, Actions: forward(blue)})
	ecslocaltest.WantCode(t, err, "PriorityInUse")
	if r10.Conditions[0].PathPatternConfig == nil || r10.Conditions[0].PathPatternConfig.Values[0] != "/api/*" {
		t.Errorf("condition: %+v", r10.Conditions[0])
	}

	rules := ecslocaltest.Must(c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: l.ListenerArn})).Get(t).Rules
	if len(rules) != 3 || *rules[0].Priority != "5" || *rules[1].Priority != "10" || *rules[2].Priority != "default" || !*rules[2].IsDefault {
		t.Fatalf("rules in order: %v", priorities(rules))
	}
	// Traffic shifts by rewriting a rule's weights.
	mod := ecslocaltest.Must(c.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: r10.RuleArn, Actions: []types.Action{{Type: types.ActionTypeEnumForward,
		ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
			{TargetGroupArn: aws.String(blue), Weight: aws.Int32(10)}, {TargetGroupArn: aws.String(green), Weight: aws.Int32(90)}}}}}})).Get(t).Rules[0]
	if w := mod.Actions[0].ForwardConfig.TargetGroups; *w[0].Weight != 10 || *w[1].Weight != 90 || mod.Actions[0].TargetGroupArn != nil {
		t.Errorf("weights after ModifyRule: %+v", mod.Actions[0])
	}
	ecslocaltest.Must(c.SetRulePriorities(ctx, &elb.SetRulePrioritiesInput{RulePriorities: []types.RulePriorityPair{{RuleArn: r10.RuleArn, Priority: aws.Int32(1)}}})).Get(t)
	rules = ecslocaltest.Must(c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: l.ListenerArn})).Get(t).Rules
	if *rules[0].RuleArn != *r10.RuleArn {
		t.Errorf("after SetRulePriorities: %v", priorities(rules))
	}
	_, err = c.DeleteRule(ctx, &elb.DeleteRuleInput{RuleArn: rules[2].RuleArn})
	ecslocaltest.WantCode(t, err, "OperationNotPermitted")

	tg := ecslocaltest.Must(c.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{LoadBalancerArn: lb.LoadBalancerArn})).Get(t).TargetGroups
	if len(tg) != 2 || len(tg[1].LoadBalancerArns) != 1 {
		t.Errorf("target groups of the load balancer: %+v", tg)
	}
	_, err = c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(green)})
	ecslocaltest.WantCode(t, err, "ResourceInUse")
	ecslocaltest.Must(c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: lb.LoadBalancerArn})).Get(t)
	_, err = c.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: l.ListenerArn})
	ecslocaltest.WantCode(t, err, "ListenerNotFound")
	ecslocaltest.Must(c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(green)})).Get(t)
}

func priorities(rules []types.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, *r.Priority)
	}
	return out
}

func TestTargetHealth(t *testing.T) {
	ctx := context.Background()
	c, clk := start(t)
	arn := targetGroup(t, c, "blue")
	ecslocaltest.Must(c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("30")}}})).Get(t)
	health := func(targets ...types.TargetDescription) map[string]types.TargetHealth {
		t.Helper()
		out := ecslocaltest.Must(c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn), Targets: targets})).Get(t)
		m := map[string]types.TargetHealth{}
		for _, d := range out.TargetHealthDescriptions {
			m[*d.Target.Id] = *d.TargetHealth
		}
		return m
	}
	a, b := types.TargetDescription{Id: aws.String("198.18.0.2")}, types.TargetDescription{Id: aws.String("198.18.0.3")}
	_, err := c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String("i-0abc")}}})
	ecslocaltest.WantCode(t, err, "InvalidTarget")
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{a, b}})).Get(t)

	// No listener forwards to the group yet: unused, Target.NotInUse.
	if h := health()["198.18.0.2"]; h.State != types.TargetHealthStateEnumUnused || h.Reason != types.TargetHealthReasonEnumNotInUse {
		t.Errorf("before a listener: %s %s", h.State, h.Reason)
	}
	lb := ecslocaltest.Must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0]
	ecslocaltest.Must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Port: aws.Int32(80), Protocol: types.ProtocolEnumHttp, DefaultActions: forward(arn)})).Get(t)
	if h := health()["198.18.0.2"]; h.State != types.TargetHealthStateEnumInitial || h.Reason != types.TargetHealthReasonEnumRegistrationInProgress ||
		*h.Description != "Target registration is in progress" {
		t.Errorf("after a listener: %s %s %q", h.State, h.Reason, aws.ToString(h.Description))
	}

	// Deregistration drains for the delay, then the target is gone.
	ecslocaltest.Must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{a}})).Get(t)
	clk.advance(29 * time.Second)
	if h := health()["198.18.0.2"]; h.State != types.TargetHealthStateEnumDraining || h.Reason != types.TargetHealthReasonEnumDeregistrationInProgress {
		t.Errorf("29 s into a 30 s delay: %s %s", h.State, h.Reason)
	}
	clk.advance(time.Second)
	all := health()
	if _, ok := all["198.18.0.2"]; ok || len(all) != 1 {
		t.Errorf("after the delay: %v", all)
	}
	if h := health(a)["198.18.0.2"]; h.State != types.TargetHealthStateEnumUnused || h.Reason != types.TargetHealthReasonEnumNotRegistered {
		t.Errorf("asked for by name after the delay: %s %s", h.State, h.Reason)
	}
	// Deregistering a target that is not registered succeeds.
	ecslocaltest.Must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{a}})).Get(t)

	ecslocaltest.Must(c.ModifyTargetGroup(ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String(arn), HealthCheckEnabled: aws.Bool(false)})).Get(t)
	if h := health()["198.18.0.3"]; h.State != types.TargetHealthStateEnumUnavailable || h.Reason != types.TargetHealthReasonEnumHealthCheckDisabled {
		t.Errorf("checks disabled: %s %s", h.State, h.Reason)
	}
}
