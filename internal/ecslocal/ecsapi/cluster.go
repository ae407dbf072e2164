package ecsapi

import (
	"context"
	"regexp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

type cluster struct {
	c        types.Cluster
	services map[string]*service // by name, INACTIVE ones included
}

const defaultCluster = "default"

// clusterName is CreateCluster's rule: "Up to 255 letters (uppercase and lowercase),
// numbers, underscores, and hyphens are allowed."
var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// CreateCluster creates a cluster, or returns the ACTIVE one of that name (the call is
// idempotent in ECS).
func (a *API) CreateCluster(_ context.Context, in *ecs.CreateClusterInput) (*ecs.CreateClusterOutput, error) {
	name := aws.ToString(in.ClusterName)
	if name == "" {
		name = defaultCluster
	}
	if !clusterName.MatchString(name) {
		return nil, invalidParameter("Cluster name can only contain letters, numbers, hyphens and underscores, and must be between 1 and 255 characters.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clusters[name]; c != nil && aws.ToString(c.c.Status) == "ACTIVE" {
		return &ecs.CreateClusterOutput{Cluster: a.describeCluster(c)}, nil
	}
	c := &cluster{
		c: types.Cluster{
			ClusterArn:  aws.String(a.arn("cluster/" + name)),
			ClusterName: aws.String(name),
			Status:      aws.String("ACTIVE"),
			Settings:    in.Settings,
		},
		services: map[string]*service{},
	}
	if c.c.Settings == nil {
		c.c.Settings = []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("disabled")}}
	}
	a.clusters[name] = c
	a.setTags(*c.c.ClusterArn, in.Tags)
	return &ecs.CreateClusterOutput{Cluster: a.describeCluster(c)}, nil
}

// cluster resolves a cluster name or ARN (default when empty) to an ACTIVE cluster. The
// caller holds a.mu.
func (a *API) cluster(ref *string) (*cluster, error) {
	name := lastPart(aws.ToString(ref))
	if name == "" {
		name = defaultCluster
	}
	c := a.clusters[name]
	if c == nil || aws.ToString(c.c.Status) != "ACTIVE" {
		return nil, clusterNotFound()
	}
	return c, nil
}

// describeCluster is a copy of the cluster with its counts. The caller holds a.mu.
func (a *API) describeCluster(c *cluster) *types.Cluster {
	out := wire.Clone(&c.c)
	out.ActiveServicesCount = 0
	for _, s := range c.services {
		if aws.ToString(s.s.Status) == "ACTIVE" {
			out.ActiveServicesCount++
		}
	}
	out.RunningTasksCount, out.PendingTasksCount = 0, 0
	for _, t := range a.tasks {
		if aws.ToString(t.t.ClusterArn) != *c.c.ClusterArn {
			continue
		}
		switch aws.ToString(t.t.LastStatus) {
		case "RUNNING":
			out.RunningTasksCount++
		case "PROVISIONING", "PENDING", "ACTIVATING":
			out.PendingTasksCount++
		}
	}
	return out
}

// DescribeClusters describes clusters by name or ARN (default when none is given); a
// cluster that does not exist is a failure with reason MISSING.
func (a *API) DescribeClusters(_ context.Context, in *ecs.DescribeClustersInput) (*ecs.DescribeClustersOutput, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{defaultCluster}
	}
	if len(refs) > 100 {
		return nil, invalidParameter("clusters can have at most 100 items.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := &ecs.DescribeClustersOutput{Clusters: []types.Cluster{}, Failures: []types.Failure{}}
	for _, ref := range refs {
		c := a.clusters[lastPart(ref)]
		if c == nil {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(a.arn("cluster/" + lastPart(ref))), Reason: aws.String("MISSING")})
			continue
		}
		d := a.describeCluster(c)
		if slices.Contains(in.Include, types.ClusterFieldTags) {
			d.Tags = a.tagList(*c.c.ClusterArn)
		}
		out.Clusters = append(out.Clusters, *d)
	}
	return out, nil
}

// ListClusters lists the ARNs of ACTIVE clusters.
func (a *API) ListClusters(_ context.Context, in *ecs.ListClustersInput) (*ecs.ListClustersOutput, error) {
	a.mu.Lock()
	var arns []string
	for _, c := range a.clusters {
		if aws.ToString(c.c.Status) == "ACTIVE" {
			arns = append(arns, *c.c.ClusterArn)
		}
	}
	a.mu.Unlock()
	slices.Sort(arns)
	page, next, err := pageOf(arns, in.NextToken, in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListClustersOutput{ClusterArns: page, NextToken: next}, nil
}

// DeleteCluster marks a cluster INACTIVE; it must have no ACTIVE or DRAINING services and no
// tasks that have not stopped.
func (a *API) DeleteCluster(_ context.Context, in *ecs.DeleteClusterInput) (*ecs.DeleteClusterOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	for _, s := range c.services {
		if aws.ToString(s.s.Status) != "INACTIVE" {
			return nil, wire.Errorf("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
		}
	}
	for _, t := range a.tasks {
		if aws.ToString(t.t.ClusterArn) == *c.c.ClusterArn && aws.ToString(t.t.LastStatus) != "STOPPED" {
			return nil, wire.Errorf("ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")
		}
	}
	c.c.Status = aws.String("INACTIVE")
	return &ecs.DeleteClusterOutput{Cluster: a.describeCluster(c)}, nil
}
