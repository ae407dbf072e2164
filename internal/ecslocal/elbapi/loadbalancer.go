package elbapi

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

type loadBalancer struct {
	lb  types.LoadBalancer
	seq int
}

// lbName is CreateLoadBalancer's rule: at most 32 characters, alphanumerics and hyphens, not
// beginning or ending with a hyphen.
var lbName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

// CreateLoadBalancer creates an Application Load Balancer. It is active at once (AWS shows
// provisioning first).
func (a *API) CreateLoadBalancer(_ context.Context, in *elb.CreateLoadBalancerInput) (*elb.CreateLoadBalancerOutput, error) {
	name := aws.ToString(in.Name)
	if !lbName.MatchString(name) || strings.HasPrefix(name, "internal-") {
		return nil, validation("The load balancer name '%s' is not valid: up to 32 alphanumeric characters or hyphens, not beginning or ending with a hyphen, not beginning with 'internal-'", name)
	}
	if in.Type != "" && in.Type != types.LoadBalancerTypeEnumApplication {
		return nil, wire.Errorf("OperationNotPermitted", "CreateLoadBalancer: load balancer type '%s' is not supported by ecslocal; only application is", in.Type)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, lb := range a.loadBalancers {
		if *lb.lb.LoadBalancerName == name {
			return nil, wire.Errorf("DuplicateLoadBalancerName", "A load balancer with the same name '%s' exists", name)
		}
	}
	id := resourceID()
	scheme := in.Scheme
	if scheme == "" {
		scheme = types.LoadBalancerSchemeEnumInternetFacing
	}
	ipType := in.IpAddressType
	if ipType == "" {
		ipType = types.IpAddressTypeIpv4
	}
	lb := &loadBalancer{seq: a.next(), lb: types.LoadBalancer{
		LoadBalancerArn:       aws.String(a.arn(fmt.Sprintf("loadbalancer/app/%s/%s", name, id))),
		LoadBalancerName:      aws.String(name),
		DNSName:               aws.String(fmt.Sprintf("%s-%s.%s.elb.localhost", name, id[:10], a.region)),
		CanonicalHostedZoneId: aws.String("Z35SXDOTRQ7X7K"),
		CreatedTime:           aws.Time(a.now().UTC().Truncate(1e6)),
		Scheme:                scheme,
		Type:                  types.LoadBalancerTypeEnumApplication,
		IpAddressType:         ipType,
		SecurityGroups:        in.SecurityGroups,
		VpcId:                 aws.String("vpc-ecslocal"),
		State:                 &types.LoadBalancerState{Code: types.LoadBalancerStateEnumActive},
	}}
	for _, s := range in.Subnets {
		lb.lb.AvailabilityZones = append(lb.lb.AvailabilityZones, types.AvailabilityZone{SubnetId: aws.String(s), ZoneName: aws.String(a.region + "a")})
	}
	a.loadBalancers[*lb.lb.LoadBalancerArn] = lb
	a.addTags(*lb.lb.LoadBalancerArn, in.Tags)
	return &elb.CreateLoadBalancerOutput{LoadBalancers: []types.LoadBalancer{*wire.Clone(&lb.lb)}}, nil
}

// DescribeLoadBalancers describes load balancers by ARN or name, or all of them.
func (a *API) DescribeLoadBalancers(_ context.Context, in *elb.DescribeLoadBalancersInput) (*elb.DescribeLoadBalancersOutput, error) {
	a.mu.Lock()
	var found []*loadBalancer
	for _, lb := range a.loadBalancers {
		if (len(in.LoadBalancerArns) == 0 && len(in.Names) == 0) ||
			slices.Contains(in.LoadBalancerArns, *lb.lb.LoadBalancerArn) || slices.Contains(in.Names, *lb.lb.LoadBalancerName) {
			found = append(found, lb)
		}
	}
	out := make([]types.LoadBalancer, 0, len(found))
	slices.SortFunc(found, func(x, y *loadBalancer) int { return x.seq - y.seq })
	for _, lb := range found {
		out = append(out, *wire.Clone(&lb.lb))
	}
	a.mu.Unlock()
	if len(out) < len(in.LoadBalancerArns)+len(in.Names) {
		return nil, loadBalancerNotFound()
	}
	pg, next, err := page(out, in.Marker, in.PageSize)
	if err != nil {
		return nil, err
	}
	return &elb.DescribeLoadBalancersOutput{LoadBalancers: pg, NextMarker: next}, nil
}

// DeleteLoadBalancer deletes a load balancer with its listeners and their rules; its target
// groups stay. Deleting one that does not exist succeeds, as the model says.
func (a *API) DeleteLoadBalancer(_ context.Context, in *elb.DeleteLoadBalancerInput) (*elb.DeleteLoadBalancerOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	arn := aws.ToString(in.LoadBalancerArn)
	for _, l := range a.listeners {
		if *l.l.LoadBalancerArn == arn {
			a.deleteListener(l)
		}
	}
	delete(a.loadBalancers, arn)
	delete(a.tags, arn)
	return &elb.DeleteLoadBalancerOutput{}, nil
}
