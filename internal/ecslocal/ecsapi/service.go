package ecsapi

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

type service struct {
	s       types.Service
	cluster *cluster
}

// serviceName is CreateService's rule: "Up to 255 letters (uppercase and lowercase),
// numbers, underscores, and hyphens are allowed."
var serviceName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// CreateService creates a REPLICA service with the ECS deployment controller and starts its
// first deployment.
func (a *API) CreateService(_ context.Context, in *ecs.CreateServiceInput) (*ecs.CreateServiceOutput, error) {
	name := aws.ToString(in.ServiceName)
	if !serviceName.MatchString(name) {
		return nil, invalidParameter("Service name can only contain letters, numbers, hyphens and underscores, and must be between 1 and 255 characters.")
	}
	if in.SchedulingStrategy == types.SchedulingStrategyDaemon {
		return nil, wire.Errorf("UnsupportedFeatureException", "CreateService: schedulingStrategy DAEMON is not supported by ecslocal.")
	}
	if c := in.DeploymentController; c != nil && c.Type != types.DeploymentControllerTypeEcs {
		return nil, wire.Errorf("UnsupportedFeatureException", "CreateService: deploymentController %s is not supported by ecslocal; only ECS is.", c.Type)
	}
	desired := aws.ToInt32(in.DesiredCount)
	if desired < 0 {
		return nil, invalidParameter("desiredCount must be at least 0.")
	}
	dc, err := deploymentConfiguration(nil, in.DeploymentConfiguration)
	if err != nil {
		return nil, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	if old := c.services[name]; old != nil && aws.ToString(old.s.Status) != "INACTIVE" {
		return nil, invalidParameter("Creation of service was not idempotent.")
	}
	td := a.lookupTaskDefinition(aws.ToString(in.TaskDefinition))
	if td == nil {
		return nil, clientError("TaskDefinition not found.")
	}
	if err := checkServiceNetwork(&td.td, in.NetworkConfiguration, in.LoadBalancers); err != nil {
		return nil, err
	}
	if err := checkStrategy(dc, in.LoadBalancers); err != nil {
		return nil, err
	}
	now := a.timestamp()
	s := &service{cluster: c, s: types.Service{
		ServiceArn:                    aws.String(a.arn(fmt.Sprintf("service/%s/%s", *c.c.ClusterName, name))),
		ServiceName:                   aws.String(name),
		ClusterArn:                    c.c.ClusterArn,
		Status:                        aws.String("ACTIVE"),
		DesiredCount:                  desired,
		TaskDefinition:                td.td.TaskDefinitionArn,
		LaunchType:                    in.LaunchType,
		PlatformVersion:               in.PlatformVersion,
		LoadBalancers:                 in.LoadBalancers,
		ServiceRegistries:             in.ServiceRegistries,
		NetworkConfiguration:          in.NetworkConfiguration,
		HealthCheckGracePeriodSeconds: in.HealthCheckGracePeriodSeconds,
		DeploymentConfiguration:       dc,
		DeploymentController:          &types.DeploymentController{Type: types.DeploymentControllerTypeEcs},
		SchedulingStrategy:            types.SchedulingStrategyReplica,
		PlacementConstraints:          in.PlacementConstraints,
		PlacementStrategy:             in.PlacementStrategy,
		PropagateTags:                 in.PropagateTags,
		EnableECSManagedTags:          in.EnableECSManagedTags,
		EnableExecuteCommand:          in.EnableExecuteCommand,
		RoleArn:                       in.Role,
		CreatedAt:                     now,
		CreatedBy:                     aws.String(fmt.Sprintf("arn:aws:iam::%s:root", a.account)),
		Events:                        []types.ServiceEvent{},
	}}
	if s.s.LaunchType == "" && len(in.CapacityProviderStrategy) == 0 {
		s.s.LaunchType = types.LaunchTypeEc2
	}
	if s.s.LaunchType == types.LaunchTypeFargate && s.s.PlatformVersion == nil {
		s.s.PlatformVersion = aws.String("LATEST")
	}
	if s.s.PropagateTags == "" {
		s.s.PropagateTags = types.PropagateTagsNone
	}
	c.services[name] = s
	a.setTags(*s.s.ServiceArn, in.Tags)
	a.startDeployment(s, nil)
	return &ecs.CreateServiceOutput{Service: a.describeService(s)}, nil
}

// checkServiceNetwork applies CreateService's rules that tie the service to its task
// definition: awsvpc needs a network configuration, and each load balancer names a container
// and port of the task definition.
func checkServiceNetwork(td *types.TaskDefinition, nc *types.NetworkConfiguration, lbs []types.LoadBalancer) error {
	if td.NetworkMode == types.NetworkModeAwsvpc && (nc == nil || nc.AwsvpcConfiguration == nil) {
		return invalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	}
	for _, lb := range lbs {
		if lb.TargetGroupArn == nil && lb.LoadBalancerName == nil {
			return invalidParameter("loadBalancers: either targetGroupArn or loadBalancerName must be provided.")
		}
		name := aws.ToString(lb.ContainerName)
		i := slices.IndexFunc(td.ContainerDefinitions, func(c types.ContainerDefinition) bool { return aws.ToString(c.Name) == name })
		if i < 0 {
			return invalidParameter("The container %s does not exist in the task definition.", name)
		}
		port := aws.ToInt32(lb.ContainerPort)
		if !slices.ContainsFunc(td.ContainerDefinitions[i].PortMappings, func(p types.PortMapping) bool { return aws.ToInt32(p.ContainerPort) == port }) {
			return invalidParameter("The container %s did not have a container port %d defined.", name, port)
		}
	}
	return nil
}

// deploymentConfiguration merges the members of next that are set over old (nil for a new
// service) and fills in the model's defaults: maximumPercent 200, minimumHealthyPercent 100,
// strategy ROLLING, the circuit breaker off.
func deploymentConfiguration(old, next *types.DeploymentConfiguration) (*types.DeploymentConfiguration, error) {
	dc := wire.Clone(old)
	if dc == nil {
		dc = &types.DeploymentConfiguration{}
	}
	if next != nil {
		nv, dv := reflect.ValueOf(next).Elem(), reflect.ValueOf(dc).Elem()
		for i := range nv.NumField() {
			if nv.Type().Field(i).IsExported() && !nv.Field(i).IsZero() {
				dv.Field(i).Set(nv.Field(i))
			}
		}
		dc = wire.Clone(dc)
	}
	if dc.MaximumPercent == nil {
		dc.MaximumPercent = aws.Int32(200)
	}
	if dc.MinimumHealthyPercent == nil {
		dc.MinimumHealthyPercent = aws.Int32(100)
	}
	if dc.Strategy == "" {
		dc.Strategy = types.DeploymentStrategyRolling
	}
	if dc.DeploymentCircuitBreaker == nil {
		dc.DeploymentCircuitBreaker = &types.DeploymentCircuitBreaker{}
	}
	if dc.Alarms == nil {
		dc.Alarms = &types.DeploymentAlarms{AlarmNames: []string{}}
	}
	if *dc.MinimumHealthyPercent < 0 || *dc.MinimumHealthyPercent > 100 {
		return nil, invalidParameter("minimumHealthyPercent must be between 0 and 100.")
	}
	if *dc.MaximumPercent < 100 {
		return nil, invalidParameter("maximumPercent must be at least 100.")
	}
	return dc, nil
}

// circuitBreakerThreshold is the failure count at which the circuit breaker trips: by default
// (BOUNDED_PERCENT, value 50) "a minimum threshold of 3 and a maximum threshold of 200"
// around 50% of the desired count, rounded up (the API model's DeploymentCircuitBreaker).
func circuitBreakerThreshold(cb *types.DeploymentCircuitBreaker, desired int32) int32 {
	typ, value := types.ThresholdTypeBoundedPercent, int32(50)
	if tc := cb.ThresholdConfiguration; tc != nil {
		if tc.Type != "" {
			typ = tc.Type
		}
		if tc.Value != 0 {
			value = tc.Value
		}
	}
	switch typ {
	case types.ThresholdTypeCount:
		return value
	case types.ThresholdTypeUnboundedPercent:
		return int32(math.Ceil(float64(desired) * float64(value) / 100))
	}
	return min(max(int32(math.Ceil(float64(desired)*float64(value)/100)), 3), 200)
}

// service resolves a service name or ARN in cluster ref. The caller holds a.mu.
func (a *API) service(clusterRef, ref *string) (*service, error) {
	c, err := a.cluster(clusterRef)
	if err != nil {
		return nil, err
	}
	s := c.services[lastPart(aws.ToString(ref))]
	if s == nil {
		return nil, serviceNotFound()
	}
	return s, nil
}

// UpdateService changes a service. A change of task definition, network configuration, load
// balancers or platform version, or forceNewDeployment, starts a new deployment; a change of
// desired count alone changes the current one.
func (a *API) UpdateService(_ context.Context, in *ecs.UpdateServiceInput) (*ecs.UpdateServiceOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.service(in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	if aws.ToString(s.s.Status) != "ACTIVE" {
		return nil, serviceNotActive()
	}
	if c := in.DeploymentController; c != nil && c.Type != types.DeploymentControllerTypeEcs {
		return nil, wire.Errorf("UnsupportedFeatureException", "UpdateService: deploymentController %s is not supported by ecslocal; only ECS is.", c.Type)
	}
	next := *wire.Clone(&s.s)
	redeploy := in.ForceNewDeployment
	if in.TaskDefinition != nil {
		td := a.lookupTaskDefinition(*in.TaskDefinition)
		if td == nil {
			return nil, clientError("TaskDefinition not found.")
		}
		redeploy = redeploy || *td.td.TaskDefinitionArn != *next.TaskDefinition
		next.TaskDefinition = td.td.TaskDefinitionArn
	}
	if in.DesiredCount != nil {
		if *in.DesiredCount < 0 {
			return nil, invalidParameter("desiredCount must be at least 0.")
		}
		next.DesiredCount = *in.DesiredCount
	}
	if in.NetworkConfiguration != nil {
		redeploy = redeploy || !reflect.DeepEqual(in.NetworkConfiguration, next.NetworkConfiguration)
		next.NetworkConfiguration = in.NetworkConfiguration
	}
	if in.LoadBalancers != nil {
		redeploy = redeploy || !reflect.DeepEqual(in.LoadBalancers, next.LoadBalancers)
		next.LoadBalancers = in.LoadBalancers
	}
	if in.PlatformVersion != nil {
		redeploy = redeploy || aws.ToString(next.PlatformVersion) != *in.PlatformVersion
		next.PlatformVersion = in.PlatformVersion
	}
	if in.HealthCheckGracePeriodSeconds != nil {
		next.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
	}
	if in.EnableExecuteCommand != nil {
		next.EnableExecuteCommand = *in.EnableExecuteCommand
	}
	if in.EnableECSManagedTags != nil {
		next.EnableECSManagedTags = *in.EnableECSManagedTags
	}
	if in.PropagateTags != "" {
		next.PropagateTags = in.PropagateTags
	}
	if dc, err := deploymentConfiguration(next.DeploymentConfiguration, in.DeploymentConfiguration); err != nil {
		return nil, err
	} else {
		next.DeploymentConfiguration = dc
	}
	td := a.lookupTaskDefinition(*next.TaskDefinition)
	if err := checkServiceNetwork(&td.td, next.NetworkConfiguration, next.LoadBalancers); err != nil {
		return nil, err
	}
	if err := checkStrategy(next.DeploymentConfiguration, next.LoadBalancers); err != nil {
		return nil, err
	}
	prev := s.s
	s.s = next
	if redeploy {
		a.startDeployment(s, &prev)
	} else {
		a.resizeDeployment(s)
	}
	return &ecs.UpdateServiceOutput{Service: a.describeService(s)}, nil
}

// describeService is a copy of the service with its live counts. The caller holds a.mu.
func (a *API) describeService(s *service) *types.Service {
	out := wire.Clone(&s.s)
	out.RunningCount, out.PendingCount = 0, 0
	for i := range out.Deployments {
		d := &out.Deployments[i]
		d.RunningCount, d.PendingCount = a.taskCounts(*d.Id)
		out.RunningCount += d.RunningCount
		out.PendingCount += d.PendingCount
	}
	for i := range out.CurrentServiceRevisions {
		r := &out.CurrentServiceRevisions[i]
		r.RunningTaskCount, r.PendingTaskCount = a.revisionTaskCounts(*r.Arn)
	}
	return out
}

// DescribeServices describes services of one cluster; a service that does not exist is a
// failure with reason MISSING.
func (a *API) DescribeServices(_ context.Context, in *ecs.DescribeServicesInput) (*ecs.DescribeServicesOutput, error) {
	if len(in.Services) == 0 || len(in.Services) > 10 {
		return nil, invalidParameter("services should have between 1 and 10 items.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &ecs.DescribeServicesOutput{Services: []types.Service{}, Failures: []types.Failure{}}
	for _, ref := range in.Services {
		s := c.services[lastPart(ref)]
		if s == nil {
			out.Failures = append(out.Failures, types.Failure{
				Arn: aws.String(a.arn(fmt.Sprintf("service/%s/%s", *c.c.ClusterName, lastPart(ref)))), Reason: aws.String("MISSING")})
			continue
		}
		d := a.describeService(s)
		if slices.Contains(in.Include, types.ServiceFieldTags) {
			d.Tags = a.tagList(*s.s.ServiceArn)
		}
		out.Services = append(out.Services, *d)
	}
	return out, nil
}

// ListServices lists the ARNs of a cluster's services that are not INACTIVE.
func (a *API) ListServices(_ context.Context, in *ecs.ListServicesInput) (*ecs.ListServicesOutput, error) {
	a.mu.Lock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	var arns []string
	for _, s := range c.services {
		if aws.ToString(s.s.Status) == "INACTIVE" ||
			(in.LaunchType != "" && s.s.LaunchType != in.LaunchType) ||
			(in.SchedulingStrategy != "" && s.s.SchedulingStrategy != in.SchedulingStrategy) {
			continue
		}
		arns = append(arns, *s.s.ServiceArn)
	}
	a.mu.Unlock()
	slices.Sort(arns)
	page, next, err := pageOf(arns, in.NextToken, in.MaxResults, 10, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListServicesOutput{ServiceArns: page, NextToken: next}, nil
}

// DeleteService drains a service: it must be scaled to 0 unless force is set, and becomes
// INACTIVE once none of its tasks is left.
func (a *API) DeleteService(_ context.Context, in *ecs.DeleteServiceInput) (*ecs.DeleteServiceOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.service(in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	if aws.ToString(s.s.Status) != "ACTIVE" {
		return nil, serviceNotActive()
	}
	if s.s.DesiredCount > 0 && !aws.ToBool(in.Force) {
		return nil, invalidParameter("The service cannot be stopped while it is scaled above 0.")
	}
	s.s.DesiredCount = 0
	s.s.Status = aws.String("DRAINING")
	a.endDeployments(s, types.ServiceDeploymentStatusStopped, "The service was deleted.")
	out := a.describeService(s)
	a.settleDraining(s)
	return &ecs.DeleteServiceOutput{Service: out}, nil
}

// settleDraining makes a DRAINING service INACTIVE when it has no task that has not
// stopped. The caller holds a.mu.
func (a *API) settleDraining(s *service) {
	if aws.ToString(s.s.Status) != "DRAINING" {
		return
	}
	for _, t := range a.tasks {
		if aws.ToString(t.t.Group) == "service:"+*s.s.ServiceName && aws.ToString(t.t.ClusterArn) == *s.s.ClusterArn &&
			aws.ToString(t.t.LastStatus) != "STOPPED" {
			return
		}
	}
	s.s.Status = aws.String("INACTIVE")
	s.s.Deployments = []types.Deployment{}
}

// maxEvents is how many events DescribeServices shows: "Amazon ECS service event messages"
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-event-messages.html)
// keeps the 100 most recent.
const maxEvents = 100

// addEvent records a service event, newest first. The caller holds a.mu.
func (a *API) addEvent(s *service, message string) {
	e := types.ServiceEvent{Id: aws.String(uuid()), CreatedAt: a.timestamp(), Message: aws.String(message)}
	s.s.Events = append([]types.ServiceEvent{e}, s.s.Events...)
	if len(s.s.Events) > maxEvents {
		s.s.Events = s.s.Events[:maxEvents]
	}
}
