package ecsapi

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// A service has two views of its rollouts: Service.deployments (the older API, one entry per
// task set, PRIMARY the newest) and the service deployments of the Service Deployments API
// (one record per change, with source and target service revisions). Both are kept here,
// tied by the ecs-svc/ deployment ID that the revision and the tasks carry.

type deployment struct {
	d       types.ServiceDeployment
	service *service
	seq     int        // creation order: two deployments can share a createdAt millisecond
	bg      *blueGreen // the stages of a BLUE_GREEN, LINEAR or CANARY deployment; nil for ROLLING
}

type revision struct {
	r            types.ServiceRevision
	deploymentID string // the Service.deployments entry that runs it
}

// inProgress reports whether a service deployment has not ended.
func inProgress(st types.ServiceDeploymentStatus) bool {
	switch st {
	case types.ServiceDeploymentStatusPending, types.ServiceDeploymentStatusInProgress,
		types.ServiceDeploymentStatusStopRequested, types.ServiceDeploymentStatusRollbackRequested,
		types.ServiceDeploymentStatusRollbackInProgress:
		return true
	}
	return false
}

// startDeployment creates the service revision of s as it now is, a PRIMARY deployment that
// runs it, and the service deployment from the revisions running before (prev is the service
// before the change, nil on creation). A service deployment still in progress ends STOPPED,
// the completed state that "View service history using Amazon ECS service deployments"
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-deployment.html) gives
// a deployment that a newer one replaced; its statusReason is ecslocal's wording. The caller
// holds a.mu.
func (a *API) startDeployment(s *service, prev *types.Service) {
	now := a.timestamp()
	cluster, name := *s.cluster.c.ClusterName, *s.s.ServiceName
	rev := &revision{deploymentID: deploymentID(), r: types.ServiceRevision{
		ServiceRevisionArn:   aws.String(a.arn(fmt.Sprintf("service-revision/%s/%s/%s", cluster, name, randomString("123456789", 1)+randomString("0123456789", 18)))),
		ServiceArn:           s.s.ServiceArn,
		ClusterArn:           s.s.ClusterArn,
		TaskDefinition:       s.s.TaskDefinition,
		LaunchType:           s.s.LaunchType,
		PlatformVersion:      s.s.PlatformVersion,
		LoadBalancers:        s.s.LoadBalancers,
		NetworkConfiguration: s.s.NetworkConfiguration,
		ServiceRegistries:    s.s.ServiceRegistries,
		CreatedAt:            now,
	}}
	var blue *revision // the revision serving before the change
	if len(s.s.Deployments) > 0 {
		blue = a.revisionOfDeployment(*s.s.Deployments[0].Id)
	}
	rev.r.ResolvedConfiguration = &types.ResolvedConfiguration{LoadBalancers: resolveTargetGroups(s.s.DeploymentConfiguration.Strategy, s.s.LoadBalancers, blue)}
	a.revisions[*rev.r.ServiceRevisionArn] = rev

	var sources []types.ServiceRevisionSummary
	for i := range s.s.Deployments {
		d := &s.s.Deployments[i]
		d.Status = aws.String("ACTIVE")
		d.UpdatedAt = now
		if r := a.revisionOfDeployment(*d.Id); r != nil {
			sources = append(sources, types.ServiceRevisionSummary{Arn: r.r.ServiceRevisionArn, RequestedTaskCount: d.DesiredCount})
		}
	}
	if cur := a.deployments[aws.ToString(s.s.CurrentServiceDeployment)]; cur != nil && inProgress(cur.d.Status) {
		if cur.bg != nil {
			cur.bg.endPhase()
		}
		cur.d.Status = types.ServiceDeploymentStatusStopped
		cur.d.StatusReason = aws.String("Stopped by a newer deployment.")
		cur.d.StoppedAt, cur.d.UpdatedAt = now, now
	}
	s.s.Deployments = append([]types.Deployment{{
		Id:                   aws.String(rev.deploymentID),
		Status:               aws.String("PRIMARY"),
		TaskDefinition:       s.s.TaskDefinition,
		DesiredCount:         s.s.DesiredCount,
		LaunchType:           s.s.LaunchType,
		PlatformVersion:      s.s.PlatformVersion,
		NetworkConfiguration: s.s.NetworkConfiguration,
		CreatedAt:            now,
		UpdatedAt:            now,
		RolloutState:         types.DeploymentRolloutStateInProgress,
		RolloutStateReason:   aws.String(fmt.Sprintf("ECS deployment %s in progress.", rev.deploymentID)),
	}}, s.s.Deployments...)

	dc := s.s.DeploymentConfiguration
	cb := &types.ServiceDeploymentCircuitBreaker{Status: types.ServiceDeploymentRollbackMonitorsStatusDisabled}
	if dc.DeploymentCircuitBreaker.Enable {
		cb.Status = types.ServiceDeploymentRollbackMonitorsStatusMonitoring
		cb.Threshold = circuitBreakerThreshold(dc.DeploymentCircuitBreaker, s.s.DesiredCount)
	}
	alarms := &types.ServiceDeploymentAlarms{Status: types.ServiceDeploymentRollbackMonitorsStatusDisabled}
	if dc.Alarms.Enable {
		alarms.Status = types.ServiceDeploymentRollbackMonitorsStatusMonitoring
		alarms.AlarmNames = dc.Alarms.AlarmNames
	}
	a.seq++
	sd := &deployment{service: s, seq: a.seq, d: types.ServiceDeployment{
		ServiceDeploymentArn:     aws.String(a.arn(fmt.Sprintf("service-deployment/%s/%s/%s", cluster, name, randomString(alnum, 21)))),
		ServiceArn:               s.s.ServiceArn,
		ClusterArn:               s.s.ClusterArn,
		CreatedAt:                now,
		StartedAt:                now,
		UpdatedAt:                now,
		Status:                   types.ServiceDeploymentStatusInProgress,
		SourceServiceRevisions:   sources,
		TargetServiceRevision:    &types.ServiceRevisionSummary{Arn: rev.r.ServiceRevisionArn, RequestedTaskCount: s.s.DesiredCount},
		DeploymentConfiguration:  dc,
		DeploymentCircuitBreaker: cb,
		Alarms:                   alarms,
	}}
	sd.bg = a.newBlueGreen(dc, blue, rev, len(sources))
	a.deployments[*sd.d.ServiceDeploymentArn] = sd
	s.s.CurrentServiceDeployment = sd.d.ServiceDeploymentArn
	a.refreshCurrentRevisions(s)
}

// resizeDeployment carries a new desired count to the PRIMARY deployment and the service
// deployment in progress. The caller holds a.mu.
func (a *API) resizeDeployment(s *service) {
	if len(s.s.Deployments) > 0 {
		s.s.Deployments[0].DesiredCount = s.s.DesiredCount
		s.s.Deployments[0].UpdatedAt = a.timestamp()
	}
	if cur := a.deployments[aws.ToString(s.s.CurrentServiceDeployment)]; cur != nil && inProgress(cur.d.Status) {
		cur.d.TargetServiceRevision.RequestedTaskCount = s.s.DesiredCount
	}
	a.refreshCurrentRevisions(s)
}

// refreshCurrentRevisions lists the revisions of the service's deployments. The caller holds
// a.mu.
func (a *API) refreshCurrentRevisions(s *service) {
	s.s.CurrentServiceRevisions = nil
	for _, d := range s.s.Deployments {
		if r := a.revisionOfDeployment(*d.Id); r != nil {
			s.s.CurrentServiceRevisions = append(s.s.CurrentServiceRevisions,
				types.ServiceCurrentRevisionSummary{Arn: r.r.ServiceRevisionArn, RequestedTaskCount: d.DesiredCount})
		}
	}
}

// endDeployments ends the service deployment in progress with status and reason. The caller
// holds a.mu.
func (a *API) endDeployments(s *service, status types.ServiceDeploymentStatus, reason string) {
	cur := a.deployments[aws.ToString(s.s.CurrentServiceDeployment)]
	if cur == nil || !inProgress(cur.d.Status) {
		return
	}
	now := a.timestamp()
	cur.d.Status, cur.d.StatusReason, cur.d.UpdatedAt = status, aws.String(reason), now
	if status == types.ServiceDeploymentStatusStopped {
		cur.d.StoppedAt = now
	} else {
		cur.d.FinishedAt = now
	}
}

func (a *API) revisionOfDeployment(id string) *revision {
	for _, r := range a.revisions {
		if r.deploymentID == id {
			return r
		}
	}
	return nil
}

// taskCounts counts the running and pending tasks of deployment id. The caller holds a.mu.
func (a *API) taskCounts(id string) (running, pending int32) {
	for _, t := range a.tasks {
		if aws.ToString(t.t.StartedBy) != id {
			continue
		}
		switch aws.ToString(t.t.LastStatus) {
		case "RUNNING":
			running++
		case "PROVISIONING", "PENDING", "ACTIVATING":
			pending++
		}
	}
	return running, pending
}

func (a *API) revisionTaskCounts(arn string) (running, pending int32) {
	if r := a.revisions[arn]; r != nil {
		return a.taskCounts(r.deploymentID)
	}
	return 0, 0
}

// describeDeployment is a copy of a service deployment with its live task counts. The
// caller holds a.mu.
func (a *API) describeDeployment(d *deployment) types.ServiceDeployment {
	out := *wire.Clone(&d.d)
	if t := out.TargetServiceRevision; t != nil {
		t.RunningTaskCount, t.PendingTaskCount = a.revisionTaskCounts(*t.Arn)
	}
	for i := range out.SourceServiceRevisions {
		r := &out.SourceServiceRevisions[i]
		r.RunningTaskCount, r.PendingTaskCount = a.revisionTaskCounts(*r.Arn)
	}
	return out
}

// ListServiceDeployments lists a service's deployments, newest first, filtered by status and
// creation time.
func (a *API) ListServiceDeployments(_ context.Context, in *ecs.ListServiceDeploymentsInput) (*ecs.ListServiceDeploymentsOutput, error) {
	a.mu.Lock()
	s, err := a.service(in.Cluster, in.Service)
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	var found []*deployment
	for _, d := range a.deployments {
		if d.service != s || (len(in.Status) > 0 && !slices.Contains(in.Status, d.d.Status)) {
			continue
		}
		if c := in.CreatedAt; c != nil && ((c.After != nil && d.d.CreatedAt.Before(*c.After)) || (c.Before != nil && d.d.CreatedAt.After(*c.Before))) {
			continue
		}
		found = append(found, d)
	}
	slices.SortFunc(found, func(x, y *deployment) int { return y.seq - x.seq })
	briefs := make([]types.ServiceDeploymentBrief, 0, len(found))
	for _, d := range found {
		briefs = append(briefs, types.ServiceDeploymentBrief{
			ServiceDeploymentArn:     d.d.ServiceDeploymentArn,
			ServiceArn:               d.d.ServiceArn,
			ClusterArn:               d.d.ClusterArn,
			CreatedAt:                d.d.CreatedAt,
			StartedAt:                d.d.StartedAt,
			FinishedAt:               d.d.FinishedAt,
			TargetServiceRevisionArn: d.d.TargetServiceRevision.Arn,
			Status:                   d.d.Status,
			StatusReason:             d.d.StatusReason,
		})
	}
	a.mu.Unlock()
	page, next, err := pageOf(briefs, in.NextToken, in.MaxResults, 20, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListServiceDeploymentsOutput{ServiceDeployments: *wire.Clone(&page), NextToken: next}, nil
}

// DescribeServiceDeployments describes up to 20 service deployments; one that does not exist
// is a failure with reason MISSING.
func (a *API) DescribeServiceDeployments(_ context.Context, in *ecs.DescribeServiceDeploymentsInput) (*ecs.DescribeServiceDeploymentsOutput, error) {
	if len(in.ServiceDeploymentArns) == 0 || len(in.ServiceDeploymentArns) > 20 {
		return nil, invalidParameter("serviceDeploymentArns should have between 1 and 20 items.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := &ecs.DescribeServiceDeploymentsOutput{ServiceDeployments: []types.ServiceDeployment{}, Failures: []types.Failure{}}
	for _, arn := range in.ServiceDeploymentArns {
		d := a.deployments[arn]
		if d == nil {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.ServiceDeployments = append(out.ServiceDeployments, a.describeDeployment(d))
	}
	return out, nil
}

// StopServiceDeployment asks for a deployment in progress to be rolled back (stopType
// ROLLBACK, the default) or stopped (ABORT). The request is recorded in the deployment's
// status; the scheduler carries it out (requestedRollback, requestedStop).
func (a *API) StopServiceDeployment(_ context.Context, in *ecs.StopServiceDeploymentInput) (*ecs.StopServiceDeploymentOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.deployments[aws.ToString(in.ServiceDeploymentArn)]
	if d == nil {
		return nil, wire.Errorf("ServiceDeploymentNotFoundException", "The service deployment %s does not exist.", aws.ToString(in.ServiceDeploymentArn))
	}
	if d.d.Status != types.ServiceDeploymentStatusInProgress && d.d.Status != types.ServiceDeploymentStatusPending {
		return nil, wire.Errorf("ConflictException", "The service deployment %s is %s; only a deployment in progress can be stopped.", *d.d.ServiceDeploymentArn, d.d.Status)
	}
	switch in.StopType {
	case "", types.StopServiceDeploymentStopTypeRollback:
		d.d.Status = types.ServiceDeploymentStatusRollbackRequested
	case types.StopServiceDeploymentStopTypeAbort:
		d.d.Status = types.ServiceDeploymentStatusStopRequested
	default:
		return nil, invalidParameter("stopType must be ROLLBACK or ABORT.")
	}
	d.d.UpdatedAt = a.timestamp()
	return &ecs.StopServiceDeploymentOutput{ServiceDeploymentArn: d.d.ServiceDeploymentArn}, nil
}

// DescribeServiceRevisions describes up to 20 service revisions; one that does not exist is
// a failure with reason MISSING.
func (a *API) DescribeServiceRevisions(_ context.Context, in *ecs.DescribeServiceRevisionsInput) (*ecs.DescribeServiceRevisionsOutput, error) {
	if len(in.ServiceRevisionArns) == 0 || len(in.ServiceRevisionArns) > 20 {
		return nil, invalidParameter("serviceRevisionArns should have between 1 and 20 items.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := &ecs.DescribeServiceRevisionsOutput{ServiceRevisions: []types.ServiceRevision{}, Failures: []types.Failure{}}
	for _, arn := range in.ServiceRevisionArns {
		r := a.revisions[arn]
		if r == nil {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.ServiceRevisions = append(out.ServiceRevisions, *wire.Clone(&r.r))
	}
	return out, nil
}
