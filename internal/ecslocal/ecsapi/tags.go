package ecsapi

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// setTags merges tags into a resource's. The caller holds a.mu.
func (a *API) setTags(arn string, tags []types.Tag) {
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

// tagList is a resource's tags sorted by key, or nil. The caller holds a.mu.
func (a *API) tagList(arn string) []types.Tag {
	m := a.tags[arn]
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// exists reports whether arn names a resource of this API. The caller holds a.mu.
func (a *API) exists(arn string) bool {
	for _, revs := range a.families {
		for _, td := range revs {
			if *td.td.TaskDefinitionArn == arn {
				return true
			}
		}
	}
	for _, c := range a.clusters {
		if *c.c.ClusterArn == arn {
			return true
		}
		for _, s := range c.services {
			if *s.s.ServiceArn == arn {
				return true
			}
		}
	}
	return a.tasks[arn] != nil
}

// TagResource adds tags to a task definition, cluster, service or task.
func (a *API) TagResource(_ context.Context, in *ecs.TagResourceInput) (*ecs.TagResourceOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.exists(aws.ToString(in.ResourceArn)) {
		return nil, invalidParameter("The specified resource could not be found.")
	}
	a.setTags(*in.ResourceArn, in.Tags)
	return &ecs.TagResourceOutput{}, nil
}

// UntagResource removes tags by key.
func (a *API) UntagResource(_ context.Context, in *ecs.UntagResourceInput) (*ecs.UntagResourceOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.exists(aws.ToString(in.ResourceArn)) {
		return nil, invalidParameter("The specified resource could not be found.")
	}
	for _, k := range in.TagKeys {
		delete(a.tags[*in.ResourceArn], k)
	}
	return &ecs.UntagResourceOutput{}, nil
}

// ListTagsForResource lists a resource's tags.
func (a *API) ListTagsForResource(_ context.Context, in *ecs.ListTagsForResourceInput) (*ecs.ListTagsForResourceOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.exists(aws.ToString(in.ResourceArn)) {
		return nil, invalidParameter("The specified resource could not be found.")
	}
	tags := a.tagList(*in.ResourceArn)
	if tags == nil {
		tags = []types.Tag{}
	}
	return &ecs.ListTagsForResourceOutput{Tags: tags}, nil
}
