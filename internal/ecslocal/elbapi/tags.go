package elbapi

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// addTags merges tags into a resource's. The caller holds a.mu.
func (a *API) addTags(arn string, tags []types.Tag) {
	if len(tags) == 0 {
		return
	}
	m := a.tags[arn]
	if m == nil {
		m = map[string]string{}
		a.tags[arn] = m
	}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
}

// exists reports whether arn names a resource of this API, and returns the error the
// model gives for its kind when it does not. The caller holds a.mu.
func (a *API) exists(arn string) error {
	if a.loadBalancers[arn] != nil || a.targetGroups[arn] != nil || a.listeners[arn] != nil || a.rules[arn] != nil {
		return nil
	}
	return wire.Errorf("LoadBalancerNotFound", "The resource '%s' was not found", arn)
}

// AddTags adds tags to load balancers, target groups, listeners and rules.
func (a *API) AddTags(_ context.Context, in *elb.AddTagsInput) (*elb.AddTagsOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, arn := range in.ResourceArns {
		if err := a.exists(arn); err != nil {
			return nil, err
		}
	}
	for _, arn := range in.ResourceArns {
		a.addTags(arn, in.Tags)
	}
	return &elb.AddTagsOutput{}, nil
}

// RemoveTags removes tags by key.
func (a *API) RemoveTags(_ context.Context, in *elb.RemoveTagsInput) (*elb.RemoveTagsOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, arn := range in.ResourceArns {
		if err := a.exists(arn); err != nil {
			return nil, err
		}
	}
	for _, arn := range in.ResourceArns {
		for _, k := range in.TagKeys {
			delete(a.tags[arn], k)
		}
	}
	return &elb.RemoveTagsOutput{}, nil
}

// DescribeTags lists the tags of up to 20 resources, keys sorted.
func (a *API) DescribeTags(_ context.Context, in *elb.DescribeTagsInput) (*elb.DescribeTagsOutput, error) {
	if len(in.ResourceArns) == 0 || len(in.ResourceArns) > 20 {
		return nil, validation("ResourceArns must have between 1 and 20 items")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := &elb.DescribeTagsOutput{TagDescriptions: []types.TagDescription{}}
	for _, arn := range in.ResourceArns {
		if err := a.exists(arn); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(a.tags[arn]))
		for k := range a.tags[arn] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := types.TagDescription{ResourceArn: aws.String(arn), Tags: []types.Tag{}}
		for _, k := range keys {
			d.Tags = append(d.Tags, types.Tag{Key: aws.String(k), Value: aws.String(a.tags[arn][k])})
		}
		out.TagDescriptions = append(out.TagDescriptions, d)
	}
	return out, nil
}
