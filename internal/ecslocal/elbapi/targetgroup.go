package elbapi

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

type targetGroup struct {
	tg      types.TargetGroup
	seq     int
	attrs   map[string]string
	targets []*target // registration order
}

// tgName is CreateTargetGroup's rule: at most 32 alphanumerics or hyphens, not beginning or
// ending with a hyphen.
var tgName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

// defaultAttributes are an Application Load Balancer target group's attributes and their
// defaults ("Edit target group attributes",
// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html,
// and the API model's TargetGroupAttribute).
var defaultAttributes = map[string]string{
	"deregistration_delay.timeout_seconds":                                           "300",
	"stickiness.enabled":                                                             "false",
	"stickiness.type":                                                                "lb_cookie",
	"stickiness.lb_cookie.duration_seconds":                                          "86400",
	"stickiness.app_cookie.cookie_name":                                              "",
	"stickiness.app_cookie.duration_seconds":                                         "86400",
	"slow_start.duration_seconds":                                                    "0",
	"load_balancing.algorithm.type":                                                  "round_robin",
	"load_balancing.algorithm.anomaly_mitigation":                                    "off",
	"load_balancing.cross_zone.enabled":                                              "use_load_balancer_configuration",
	"target_group_health.dns_failover.minimum_healthy_targets.count":                 "1",
	"target_group_health.dns_failover.minimum_healthy_targets.percentage":            "off",
	"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count":      "1",
	"target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage": "off",
}

// CreateTargetGroup creates an HTTP target group with the health-check defaults of "Health
// checks for Application Load Balancer target groups" (interval 30 s, timeout 5 s, healthy
// threshold 5, unhealthy threshold 2, path /, matcher 200). Creating one with the name and
// settings of an existing group returns that group.
func (a *API) CreateTargetGroup(_ context.Context, in *elb.CreateTargetGroupInput) (*elb.CreateTargetGroupOutput, error) {
	name := aws.ToString(in.Name)
	if !tgName.MatchString(name) {
		return nil, validation("Target group name '%s' can only contain characters that are alphanumeric characters or hyphens(-), must be 32 characters or fewer, and must not begin or end with a hyphen", name)
	}
	tg := types.TargetGroup{
		TargetGroupName:            aws.String(name),
		Protocol:                   in.Protocol,
		ProtocolVersion:            in.ProtocolVersion,
		Port:                       in.Port,
		VpcId:                      in.VpcId,
		TargetType:                 in.TargetType,
		IpAddressType:              in.IpAddressType,
		HealthCheckEnabled:         in.HealthCheckEnabled,
		HealthCheckProtocol:        in.HealthCheckProtocol,
		HealthCheckPort:            in.HealthCheckPort,
		HealthCheckPath:            in.HealthCheckPath,
		HealthCheckIntervalSeconds: in.HealthCheckIntervalSeconds,
		HealthCheckTimeoutSeconds:  in.HealthCheckTimeoutSeconds,
		HealthyThresholdCount:      in.HealthyThresholdCount,
		UnhealthyThresholdCount:    in.UnhealthyThresholdCount,
		Matcher:                    in.Matcher,
	}
	if tg.TargetType == "" {
		tg.TargetType = types.TargetTypeEnumInstance
	}
	switch tg.TargetType {
	case types.TargetTypeEnumIp, types.TargetTypeEnumInstance:
	default:
		return nil, wire.Errorf("OperationNotPermitted", "CreateTargetGroup: target type '%s' is not supported by ecslocal", tg.TargetType)
	}
	if tg.Protocol == "" || tg.Port == nil || tg.VpcId == nil {
		return nil, validation("A protocol, port and VPC ID must be specified for a target group with target type '%s'", tg.TargetType)
	}
	if tg.Protocol != types.ProtocolEnumHttp {
		return nil, wire.Errorf("UnsupportedProtocol", "Protocol '%s' is not supported by ecslocal; target groups use HTTP", tg.Protocol)
	}
	setDefault(&tg.ProtocolVersion, "HTTP1")
	if tg.IpAddressType == "" {
		tg.IpAddressType = types.TargetGroupIpAddressTypeEnumIpv4
	}
	setDefault(&tg.HealthCheckEnabled, true)
	if tg.HealthCheckProtocol == "" {
		tg.HealthCheckProtocol = tg.Protocol
	}
	setDefault(&tg.HealthCheckPort, "traffic-port")
	setDefault(&tg.HealthCheckPath, "/")
	setDefault(&tg.HealthCheckIntervalSeconds, 30)
	setDefault(&tg.HealthCheckTimeoutSeconds, 5)
	setDefault(&tg.HealthyThresholdCount, 5)
	setDefault(&tg.UnhealthyThresholdCount, 2)
	if tg.Matcher == nil {
		tg.Matcher = &types.Matcher{HttpCode: aws.String("200")}
	}
	if err := checkHealthCheck(&tg); err != nil {
		return nil, err
	}
	tg.LoadBalancerArns = []string{}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, old := range a.targetGroups {
		if *old.tg.TargetGroupName != name {
			continue
		}
		same := *wire.Clone(&old.tg)
		same.TargetGroupArn, same.LoadBalancerArns = nil, []string{}
		if !reflect.DeepEqual(same, tg) {
			return nil, wire.Errorf("DuplicateTargetGroupName", "A target group with the same name '%s' exists, but with different settings", name)
		}
		return &elb.CreateTargetGroupOutput{TargetGroups: []types.TargetGroup{a.describeTargetGroup(old)}}, nil
	}
	tg.TargetGroupArn = aws.String(a.arn(fmt.Sprintf("targetgroup/%s/%s", name, resourceID())))
	g := &targetGroup{tg: tg, seq: a.next(), attrs: map[string]string{}}
	for k, v := range defaultAttributes {
		g.attrs[k] = v
	}
	a.targetGroups[*tg.TargetGroupArn] = g
	a.addTags(*tg.TargetGroupArn, in.Tags)
	return &elb.CreateTargetGroupOutput{TargetGroups: []types.TargetGroup{a.describeTargetGroup(g)}}, nil
}

func setDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

// matcherCode is an HTTP matcher: codes 200 to 499, lists ("200,202") or ranges ("200-299").
var matcherCode = regexp.MustCompile(`^[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?)*$`)

// checkHealthCheck applies the ranges of "Health checks for Application Load Balancer target
// groups": interval 5–300 s, timeout 2–120 s and less than the interval, thresholds 2–10.
func checkHealthCheck(tg *types.TargetGroup) error {
	switch {
	case *tg.HealthCheckIntervalSeconds < 5 || *tg.HealthCheckIntervalSeconds > 300:
		return validation("Health check interval must be between 5 and 300 seconds")
	case *tg.HealthCheckTimeoutSeconds < 2 || *tg.HealthCheckTimeoutSeconds > 120:
		return validation("Health check timeout must be between 2 and 120 seconds")
	case *tg.HealthCheckTimeoutSeconds >= *tg.HealthCheckIntervalSeconds:
		return validation("Health check interval must be greater than the timeout.")
	case *tg.HealthyThresholdCount < 2 || *tg.HealthyThresholdCount > 10:
		return validation("Healthy threshold count must be between 2 and 10")
	case *tg.UnhealthyThresholdCount < 2 || *tg.UnhealthyThresholdCount > 10:
		return validation("Unhealthy threshold count must be between 2 and 10")
	case len(*tg.HealthCheckPath) == 0 || (*tg.HealthCheckPath)[0] != '/':
		return validation("Health check path must begin with '/'")
	case tg.Matcher.HttpCode == nil || !matcherCode.MatchString(*tg.Matcher.HttpCode):
		return validation("Health check matcher HTTP code '%s' must be a code, a list of codes or a range between 200 and 499", aws.ToString(tg.Matcher.HttpCode))
	}
	if p := *tg.HealthCheckPort; p != "traffic-port" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return validation("Health check port '%s' must be 'traffic-port' or a port between 1 and 65535", p)
		}
	}
	return nil
}

// describeTargetGroup is a copy of the group with the load balancers whose listeners forward
// to it. The caller holds a.mu.
func (a *API) describeTargetGroup(g *targetGroup) types.TargetGroup {
	out := *wire.Clone(&g.tg)
	out.LoadBalancerArns = a.loadBalancersOf(*g.tg.TargetGroupArn)
	return out
}

// loadBalancersOf lists the load balancers with a listener or rule that forwards to the
// target group. The caller holds a.mu.
func (a *API) loadBalancersOf(tgArn string) []string {
	out := []string{}
	for _, l := range a.listeners {
		for _, r := range a.rules {
			if r.listener == l && slices.Contains(forwardTargets(r.r.Actions), tgArn) && !slices.Contains(out, *l.l.LoadBalancerArn) {
				out = append(out, *l.l.LoadBalancerArn)
			}
		}
	}
	slices.Sort(out)
	return out
}

// DescribeTargetGroups describes target groups by ARN, name or load balancer, or all of them.
func (a *API) DescribeTargetGroups(_ context.Context, in *elb.DescribeTargetGroupsInput) (*elb.DescribeTargetGroupsOutput, error) {
	a.mu.Lock()
	if in.LoadBalancerArn != nil && a.loadBalancers[*in.LoadBalancerArn] == nil {
		a.mu.Unlock()
		return nil, loadBalancerNotFound()
	}
	var found []*targetGroup
	for _, g := range a.targetGroups {
		switch {
		case in.LoadBalancerArn != nil:
			if !slices.Contains(a.loadBalancersOf(*g.tg.TargetGroupArn), *in.LoadBalancerArn) {
				continue
			}
		case len(in.TargetGroupArns) > 0 || len(in.Names) > 0:
			if !slices.Contains(in.TargetGroupArns, *g.tg.TargetGroupArn) && !slices.Contains(in.Names, *g.tg.TargetGroupName) {
				continue
			}
		}
		found = append(found, g)
	}
	slices.SortFunc(found, func(x, y *targetGroup) int { return x.seq - y.seq })
	out := make([]types.TargetGroup, 0, len(found))
	for _, g := range found {
		out = append(out, a.describeTargetGroup(g))
	}
	a.mu.Unlock()
	if len(out) < len(in.TargetGroupArns)+len(in.Names) {
		return nil, targetGroupNotFound()
	}
	pg, next, err := page(out, in.Marker, in.PageSize)
	if err != nil {
		return nil, err
	}
	return &elb.DescribeTargetGroupsOutput{TargetGroups: pg, NextMarker: next}, nil
}

// ModifyTargetGroup changes a target group's health-check settings.
func (a *API) ModifyTargetGroup(_ context.Context, in *elb.ModifyTargetGroupInput) (*elb.ModifyTargetGroupOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.targetGroups[aws.ToString(in.TargetGroupArn)]
	if g == nil {
		return nil, targetGroupNotFound()
	}
	next := *wire.Clone(&g.tg)
	for _, f := range []struct{ dst, src any }{
		{&next.HealthCheckEnabled, in.HealthCheckEnabled}, {&next.HealthCheckIntervalSeconds, in.HealthCheckIntervalSeconds},
		{&next.HealthCheckPath, in.HealthCheckPath}, {&next.HealthCheckPort, in.HealthCheckPort},
		{&next.HealthCheckTimeoutSeconds, in.HealthCheckTimeoutSeconds}, {&next.HealthyThresholdCount, in.HealthyThresholdCount},
		{&next.UnhealthyThresholdCount, in.UnhealthyThresholdCount}, {&next.Matcher, in.Matcher},
	} {
		if src := reflect.ValueOf(f.src); !src.IsNil() {
			reflect.ValueOf(f.dst).Elem().Set(src)
		}
	}
	if in.HealthCheckProtocol != "" {
		next.HealthCheckProtocol = in.HealthCheckProtocol
	}
	if err := checkHealthCheck(&next); err != nil {
		return nil, err
	}
	g.tg = next
	return &elb.ModifyTargetGroupOutput{TargetGroups: []types.TargetGroup{a.describeTargetGroup(g)}}, nil
}

// DeleteTargetGroup deletes a target group that no listener or rule forwards to. Deleting one
// that does not exist succeeds.
func (a *API) DeleteTargetGroup(_ context.Context, in *elb.DeleteTargetGroupInput) (*elb.DeleteTargetGroupOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	arn := aws.ToString(in.TargetGroupArn)
	if a.targetGroups[arn] == nil {
		return &elb.DeleteTargetGroupOutput{}, nil
	}
	if len(a.loadBalancersOf(arn)) > 0 {
		return nil, wire.Errorf("ResourceInUse", "Target group '%s' is currently in use by a listener or a rule", arn)
	}
	delete(a.targetGroups, arn)
	delete(a.tags, arn)
	return &elb.DeleteTargetGroupOutput{}, nil
}

// DescribeTargetGroupAttributes lists a target group's attributes, sorted by key.
func (a *API) DescribeTargetGroupAttributes(_ context.Context, in *elb.DescribeTargetGroupAttributesInput) (*elb.DescribeTargetGroupAttributesOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.targetGroups[aws.ToString(in.TargetGroupArn)]
	if g == nil {
		return nil, targetGroupNotFound()
	}
	return &elb.DescribeTargetGroupAttributesOutput{Attributes: g.attributeList()}, nil
}

func (g *targetGroup) attributeList() []types.TargetGroupAttribute {
	keys := make([]string, 0, len(g.attrs))
	for k := range g.attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]types.TargetGroupAttribute, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.TargetGroupAttribute{Key: aws.String(k), Value: aws.String(g.attrs[k])})
	}
	return out
}

// attributeRanges are the integer attributes and their ranges.
var attributeRanges = map[string][2]int{
	"deregistration_delay.timeout_seconds":                                      {0, 3600},
	"stickiness.lb_cookie.duration_seconds":                                     {1, 604800},
	"stickiness.app_cookie.duration_seconds":                                    {1, 604800},
	"target_group_health.dns_failover.minimum_healthy_targets.count":            {1, 1 << 30},
	"target_group_health.unhealthy_state_routing.minimum_healthy_targets.count": {1, 1 << 30},
}

// ModifyTargetGroupAttributes sets attributes; every key must be one an Application Load
// Balancer target group has, every value in its range. Nothing changes unless all are valid.
func (a *API) ModifyTargetGroupAttributes(_ context.Context, in *elb.ModifyTargetGroupAttributesInput) (*elb.ModifyTargetGroupAttributesOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.targetGroups[aws.ToString(in.TargetGroupArn)]
	if g == nil {
		return nil, targetGroupNotFound()
	}
	for _, at := range in.Attributes {
		k, v := aws.ToString(at.Key), aws.ToString(at.Value)
		if _, ok := defaultAttributes[k]; !ok {
			return nil, invalidConfig("Target group attribute key '%s' is not recognized", k)
		}
		if r, ok := attributeRanges[k]; ok {
			if n, err := strconv.Atoi(v); err != nil || n < r[0] || n > r[1] {
				return nil, invalidConfig("'%s' must be an integer between %d and %d", k, r[0], r[1])
			}
		}
		switch k {
		case "slow_start.duration_seconds":
			if n, err := strconv.Atoi(v); err != nil || (n != 0 && (n < 30 || n > 900)) {
				return nil, invalidConfig("'%s' must be 0 or between 30 and 900", k)
			}
		case "stickiness.enabled":
			if v != "true" && v != "false" {
				return nil, invalidConfig("'%s' must be true or false", k)
			}
		case "stickiness.type":
			if v != "lb_cookie" && v != "app_cookie" {
				return nil, invalidConfig("'%s' must be lb_cookie or app_cookie for an Application Load Balancer", k)
			}
		case "load_balancing.algorithm.type":
			if v != "round_robin" && v != "least_outstanding_requests" && v != "weighted_random" {
				return nil, invalidConfig("'%s' must be round_robin, least_outstanding_requests or weighted_random", k)
			}
		}
	}
	for _, at := range in.Attributes {
		g.attrs[*at.Key] = aws.ToString(at.Value)
	}
	return &elb.ModifyTargetGroupAttributesOutput{Attributes: g.attributeList()}, nil
}
