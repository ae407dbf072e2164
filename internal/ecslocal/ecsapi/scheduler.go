package ecsapi

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// This file is the service scheduler for the ROLLING strategy, as "Deploy Amazon ECS services
// by replacing tasks" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html)
// and the API model's DeploymentConfiguration describe it. Each Reconcile looks at every
// service once:
//
//   - bounds: at most floor(desired × maximumPercent / 100) tasks running or pending, at least
//     ceil(desired × minimumHealthyPercent / 100) healthy ones while old tasks are stopped;
//   - a task of the newest (PRIMARY) deployment is started while there is room;
//   - a RUNNING task is registered with the service's target groups; it counts as healthy
//     once every group reports it healthy and, when an essential container has a health
//     check, the task is HEALTHY;
//   - an old task is stopped only while enough healthy tasks remain; a task is deregistered
//     first and stopped (SIGTERM, then SIGKILL after stopTimeout) only when its groups no
//     longer list it, that is after the deregistration delay;
//   - a task that fails its group's or its containers' health checks after the
//     health-check grace period is stopped and replaced;
//   - the deployment completes when the PRIMARY deployment has the desired count of healthy
//     tasks and no older task is left.

// LoadBalancing is the load balancer the scheduler registers service tasks with (an
// *elbapi.API).
type LoadBalancing interface {
	RegisterTargets(context.Context, *elb.RegisterTargetsInput) (*elb.RegisterTargetsOutput, error)
	DeregisterTargets(context.Context, *elb.DeregisterTargetsInput) (*elb.DeregisterTargetsOutput, error)
	DescribeTargetHealth(context.Context, *elb.DescribeTargetHealthInput) (*elb.DescribeTargetHealthOutput, error)
	// The blue/green strategies move the weights of the listener rules that
	// advancedConfiguration names.
	DescribeRules(context.Context, *elb.DescribeRulesInput) (*elb.DescribeRulesOutput, error)
	ModifyRule(context.Context, *elb.ModifyRuleInput) (*elb.ModifyRuleOutput, error)
}

// SetLoadBalancing makes lb the load balancer of services with loadBalancers. Call it
// before serving.
func (a *API) SetLoadBalancing(lb LoadBalancing) {
	a.mu.Lock()
	a.lb = lb
	a.mu.Unlock()
}

// serviceTask is the scheduler's view of a service's task.
type serviceTask struct {
	registered bool      // registered with the service's target groups
	draining   bool      // deregistered; stopped once the groups no longer list it
	stopping   bool      // handed to the runner to stop
	counted    bool      // counted by the circuit breaker
	runningAt  time.Time // when the scheduler first saw it RUNNING
}

// RunScheduler reconciles every interval until ctx ends, then waits for the lifecycle hook
// invocations it started, which end with ctx.
func (a *API) RunScheduler(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	defer a.hookRuns.Wait()
	for {
		a.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Reconcile runs the scheduler once over every service. It needs a runner. The lifecycle
// hook invocations it starts end with ctx.
func (a *API) Reconcile(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runner == nil {
		return
	}
	for _, c := range a.clusters {
		for _, s := range c.services {
			if st := aws.ToString(s.s.Status); st == "ACTIVE" || st == "DRAINING" {
				a.reconcile(ctx, s)
			}
		}
	}
}

// taskAddress is the task's awsvpc address, "" before it has one.
func taskAddress(t *types.Task) string {
	for _, at := range t.Attachments {
		for _, d := range at.Details {
			if aws.ToString(d.Name) == "privateIPv4Address" {
				return aws.ToString(d.Value)
			}
		}
	}
	return ""
}

// reconcile schedules one service. The caller holds a.mu.
func (a *API) reconcile(ctx context.Context, s *service) {
	name := *s.s.ServiceName
	primary := ""
	if len(s.s.Deployments) > 0 {
		primary = *s.s.Deployments[0].Id
	}
	var mine []*task
	for _, t := range a.tasks {
		if aws.ToString(t.t.Group) == "service:"+name && *t.t.ClusterArn == *s.s.ClusterArn && aws.ToString(t.t.LastStatus) != StatusStopped {
			mine = append(mine, t)
		}
	}
	slices.SortFunc(mine, func(x, y *task) int { return x.t.CreatedAt.Compare(*y.t.CreatedAt) })
	grace := time.Duration(aws.ToInt32(s.s.HealthCheckGracePeriodSeconds)) * time.Second
	now := a.now()

	// Tasks of the service that stopped without the scheduler (failed to start, an
	// essential container exited, StopTask) leave their target groups; the first two count
	// for the circuit breaker. The next passes replace them.
	for _, t := range a.tasks {
		if aws.ToString(t.t.Group) != "service:"+name || *t.t.ClusterArn != *s.s.ClusterArn || aws.ToString(t.t.LastStatus) != StatusStopped {
			continue
		}
		st := a.sched(t)
		if st.stopping || st.draining {
			continue
		}
		if st.registered && a.lb != nil {
			for _, lb := range a.revisionLoadBalancers(s, aws.ToString(t.t.StartedBy)) {
				_, _ = a.lb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: lb.TargetGroupArn,
					Targets: []elbtypes.TargetDescription{{Id: aws.String(taskAddress(&t.t)), Port: lb.ContainerPort}}})
			}
			st.registered = false
		}
		if t.t.StopCode == types.TaskStopCodeTaskFailedToStart || t.t.StopCode == types.TaskStopCodeEssentialContainerExited {
			a.countFailure(ctx, s, t, st)
		}
	}
	var live, healthy []*task // not stopping
	for _, t := range mine {
		st := a.sched(t)
		if st.stopping || st.draining {
			a.finishDrain(ctx, s, t, st)
			continue
		}
		if aws.ToString(t.t.DesiredStatus) == StatusStopped {
			continue // the runner is stopping it
		}
		if aws.ToString(t.t.LastStatus) == StatusRunning {
			if st.runningAt.IsZero() {
				st.runningAt = now
			}
			if !st.registered && len(s.s.LoadBalancers) > 0 {
				a.register(ctx, s, t, st)
			}
			ok, why := a.taskHealth(ctx, s, t)
			if why != "" && now.Sub(st.runningAt) >= grace {
				a.replaceUnhealthy(ctx, s, t, st, why)
				continue
			}
			if ok {
				healthy = append(healthy, t)
			}
		}
		live = append(live, t)
	}

	d := int(s.s.DesiredCount)
	dc := s.s.DeploymentConfiguration
	maxTotal := int(math.Floor(float64(d) * float64(aws.ToInt32(dc.MaximumPercent)) / 100))
	minHealthy := int(math.Ceil(float64(d) * float64(aws.ToInt32(dc.MinimumHealthyPercent)) / 100))
	var newLive, oldLive []*task
	newHealthy := 0
	for _, t := range live {
		if aws.ToString(t.t.StartedBy) == primary {
			newLive = append(newLive, t)
			if slices.Contains(healthy, t) {
				newHealthy++
			}
		} else {
			oldLive = append(oldLive, t)
		}
	}
	cur := a.deployments[aws.ToString(s.s.CurrentServiceDeployment)]
	if cur != nil && cur.d.Status == types.ServiceDeploymentStatusRollbackRequested {
		a.requestedRollback(ctx, s, cur)
	}
	if cur != nil {
		a.checkAlarms(ctx, s, cur)
	}
	if cur != nil && cur.bg != nil && (cur.bg.stopped || a.stepBlueGreen(ctx, s, cur, len(newLive), newHealthy)) {
		return
	}
	// A rollback in this pass made another deployment PRIMARY: the next pass schedules it.
	if len(s.s.Deployments) > 0 && *s.s.Deployments[0].Id != primary {
		return
	}
	if cur != nil && cur.d.Status == types.ServiceDeploymentStatusStopRequested {
		a.requestedStop(s, cur)
	}
	// A deployment the circuit breaker stopped without a rollback, or a StopServiceDeployment
	// ABORT stopped, starts no more tasks; a rollback starts the old revision's.
	failed := cur != nil && cur.d.Status == types.ServiceDeploymentStatusStopped

	// Start tasks of the PRIMARY deployment while there is room.
	started := 0
	for !failed && aws.ToString(s.s.Status) == "ACTIVE" && len(newLive)+started < d && len(live)+started < maxTotal {
		a.startServiceTask(s, primary)
		started++
	}
	if started > 0 {
		a.addEvent(s, fmt.Sprintf("(service %s) has started %d tasks: %s.", name, started, a.lastStarted(s, started)))
	}
	// Stop old tasks while enough healthy ones remain (unhealthy and pending ones first), and
	// tasks beyond the desired count.
	slices.SortFunc(oldLive, func(x, y *task) int {
		return boolInt(slices.Contains(healthy, x)) - boolInt(slices.Contains(healthy, y))
	})
	healthyLeft := len(healthy)
	for _, t := range oldLive {
		isHealthy := slices.Contains(healthy, t)
		if isHealthy && healthyLeft-1 < minHealthy {
			break
		}
		if isHealthy {
			healthyLeft--
		}
		a.drainAndStop(ctx, s, t, fmt.Sprintf("Scaling activity initiated by (deployment %s)", aws.ToString(t.t.StartedBy)))
	}
	for i := len(newLive) - 1; i >= 0 && len(newLive) > d; i-- {
		a.drainAndStop(ctx, s, newLive[i], fmt.Sprintf("Scaling activity initiated by (deployment %s)", primary))
		newLive = newLive[:i]
	}
	a.settleDeployment(s, cur, primary, newHealthy, len(mine)-len(newLive))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sched is a task's scheduler record, created on first use. The caller holds a.mu.
func (a *API) sched(t *task) *serviceTask {
	if t.sched == nil {
		t.sched = &serviceTask{}
	}
	return t.sched
}

// startServiceTask starts a task of the service's task definition for deployment id.
func (a *API) startServiceTask(s *service, id string) {
	td := a.lookupTaskDefinition(*s.s.Deployments[0].TaskDefinition)
	t := a.newTask(s.cluster, &td.td, s.s.LaunchType, "service:"+*s.s.ServiceName, id, nil)
	a.runner.Start(*t.t.TaskArn, td.td, t.t.Overrides)
}

// lastStarted names the n newest tasks of a service, as the "has started" event does.
func (a *API) lastStarted(s *service, n int) string {
	var all []*task
	for _, t := range a.tasks {
		if aws.ToString(t.t.Group) == "service:"+*s.s.ServiceName {
			all = append(all, t)
		}
	}
	slices.SortFunc(all, func(x, y *task) int { return y.t.CreatedAt.Compare(*x.t.CreatedAt) })
	var names []string
	for _, t := range all[:min(n, len(all))] {
		names = append(names, "(task "+lastPart(*t.t.TaskArn)+")")
	}
	return strings.Join(names, " ")
}

// register registers a RUNNING task with every target group of the service.
func (a *API) register(ctx context.Context, s *service, t *task, st *serviceTask) {
	addr := taskAddress(&t.t)
	if addr == "" || a.lb == nil {
		return
	}
	for _, lb := range a.revisionLoadBalancers(s, aws.ToString(t.t.StartedBy)) {
		_, err := a.lb.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: lb.TargetGroupArn,
			Targets: []elbtypes.TargetDescription{{Id: aws.String(addr), Port: lb.ContainerPort}}})
		if err != nil {
			a.addEvent(s, fmt.Sprintf("(service %s) failed to register targets in (target-group %s) with (error %v)", *s.s.ServiceName, aws.ToString(lb.TargetGroupArn), err))
			return
		}
		a.addEvent(s, fmt.Sprintf("(service %s) registered 1 targets in (target-group %s)", *s.s.ServiceName, aws.ToString(lb.TargetGroupArn)))
	}
	st.registered = true
}

// targetState is the task's state in a target group.
func (a *API) targetState(ctx context.Context, t *task, lb types.LoadBalancer) elbtypes.TargetHealth {
	out, err := a.lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: lb.TargetGroupArn,
		Targets: []elbtypes.TargetDescription{{Id: aws.String(taskAddress(&t.t)), Port: lb.ContainerPort}}})
	if err != nil || len(out.TargetHealthDescriptions) == 0 || out.TargetHealthDescriptions[0].TargetHealth == nil {
		return elbtypes.TargetHealth{State: elbtypes.TargetHealthStateEnumUnavailable}
	}
	return *out.TargetHealthDescriptions[0].TargetHealth
}

// taskHealth reports whether a RUNNING task counts as healthy and, when it failed a check,
// the stoppedReason ECS gives it ("Task failed ELB health checks in (target-group …)",
// "Task failed container health checks").
func (a *API) taskHealth(ctx context.Context, s *service, t *task) (bool, string) {
	if t.t.HealthStatus == types.HealthStatusUnhealthy {
		return false, "Task failed container health checks"
	}
	ok := true
	if hasHealthCheck(a, t) && t.t.HealthStatus != types.HealthStatusHealthy {
		ok = false
	}
	if a.lb != nil {
		for _, lb := range a.revisionLoadBalancers(s, aws.ToString(t.t.StartedBy)) {
			switch a.targetState(ctx, t, lb).State {
			case elbtypes.TargetHealthStateEnumHealthy:
			case elbtypes.TargetHealthStateEnumUnhealthy:
				return false, fmt.Sprintf("Task failed ELB health checks in (target-group %s)", aws.ToString(lb.TargetGroupArn))
			default:
				ok = false
			}
		}
	}
	return ok, ""
}

// hasHealthCheck reports whether an essential container of the task has a health check.
func hasHealthCheck(a *API, t *task) bool {
	td := a.lookupTaskDefinition(*t.t.TaskDefinitionArn)
	if td == nil {
		return false
	}
	for _, c := range td.td.ContainerDefinitions {
		if c.HealthCheck != nil && (c.Essential == nil || *c.Essential) {
			return true
		}
	}
	return false
}

// replaceUnhealthy stops a task that failed its checks, counts it for the circuit breaker,
// and writes ECS's events; the next pass starts its replacement.
func (a *API) replaceUnhealthy(ctx context.Context, s *service, t *task, st *serviceTask, why string) {
	name := *s.s.ServiceName
	if strings.Contains(why, "container") {
		a.addEvent(s, fmt.Sprintf("(service %s) (task %s) failed container health checks.", name, lastPart(*t.t.TaskArn)))
	} else {
		a.addEvent(s, fmt.Sprintf("(service %s) (task %s) is unhealthy in %s.", name, lastPart(*t.t.TaskArn), strings.TrimPrefix(why, "Task failed ELB health checks in ")))
	}
	a.countFailure(ctx, s, t, st)
	a.drainAndStop(ctx, s, t, why)
}

// countFailure adds a failed task of the current deployment to its circuit breaker, which
// trips at the threshold. The caller holds a.mu.
func (a *API) countFailure(ctx context.Context, s *service, t *task, st *serviceTask) {
	if st.counted {
		return
	}
	st.counted = true
	cur := a.deployments[aws.ToString(s.s.CurrentServiceDeployment)]
	if cur == nil || !inProgress(cur.d.Status) || len(s.s.Deployments) == 0 || aws.ToString(t.t.StartedBy) != *s.s.Deployments[0].Id {
		return
	}
	cb := cur.d.DeploymentCircuitBreaker
	if cb == nil || cb.Status != types.ServiceDeploymentRollbackMonitorsStatusMonitoring {
		return
	}
	cb.FailureCount++
	s.s.Deployments[0].FailedTasks++
	if cb.FailureCount >= cb.Threshold {
		cb.Status = types.ServiceDeploymentRollbackMonitorsStatusTriggered
		a.failDeployment(ctx, s, cur)
	}
}

// drainAndStop deregisters a task and stops it once its groups have let it go (at once
// when it is not registered). The caller holds a.mu.
func (a *API) drainAndStop(ctx context.Context, s *service, t *task, reason string) {
	st := a.sched(t)
	if st.draining || st.stopping {
		return
	}
	t.t.DesiredStatus = aws.String(StatusStopped)
	if t.t.StopCode == "" {
		t.t.StopCode, t.t.StoppedReason = types.TaskStopCodeServiceSchedulerInitiated, aws.String(reason)
	}
	t.t.StoppingAt = a.timestamp()
	t.t.Version++
	a.addEvent(s, fmt.Sprintf("(service %s) has stopped 1 running tasks: (task %s).", *s.s.ServiceName, lastPart(*t.t.TaskArn)))
	if st.registered && a.lb != nil {
		t.t.LastStatus = aws.String(StatusDeactivating)
		for _, lb := range a.revisionLoadBalancers(s, aws.ToString(t.t.StartedBy)) {
			_, _ = a.lb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: lb.TargetGroupArn,
				Targets: []elbtypes.TargetDescription{{Id: aws.String(taskAddress(&t.t)), Port: lb.ContainerPort}}})
			a.addEvent(s, fmt.Sprintf("(service %s) deregistered 1 targets in (target-group %s)", *s.s.ServiceName, aws.ToString(lb.TargetGroupArn)))
		}
		a.addEvent(s, fmt.Sprintf("(service %s, taskSet %s) has begun draining connections on 1 tasks.", *s.s.ServiceName, aws.ToString(t.t.StartedBy)))
		st.draining = true
		return
	}
	st.stopping = true
	a.runner.Stop(*t.t.TaskArn)
}

// finishDrain stops a draining task once no target group lists it any more.
func (a *API) finishDrain(ctx context.Context, s *service, t *task, st *serviceTask) {
	if st.stopping {
		return
	}
	for _, lb := range a.revisionLoadBalancers(s, aws.ToString(t.t.StartedBy)) {
		h := a.targetState(ctx, t, lb)
		if h.State == elbtypes.TargetHealthStateEnumDraining {
			return
		}
	}
	st.stopping = true
	a.runner.Stop(*t.t.TaskArn)
}

// settleDeployment completes the current deployment when its tasks are all healthy and no
// older task is left. The caller holds a.mu.
func (a *API) settleDeployment(s *service, cur *deployment, primary string, newHealthy, others int) {
	if cur == nil || aws.ToString(s.s.Status) != "ACTIVE" || len(s.s.Deployments) == 0 || newHealthy < int(s.s.DesiredCount) || others > 0 {
		return
	}
	p := &s.s.Deployments[0]
	if p.RolloutState == types.DeploymentRolloutStateCompleted {
		return
	}
	p.RolloutState, p.RolloutStateReason, p.UpdatedAt = types.DeploymentRolloutStateCompleted, aws.String(fmt.Sprintf("ECS deployment %s completed.", primary)), a.timestamp()
	s.s.Deployments = s.s.Deployments[:1]
	a.refreshCurrentRevisions(s)
	now := a.timestamp()
	switch cur.d.Status {
	case types.ServiceDeploymentStatusInProgress:
		cur.d.Status, cur.d.FinishedAt, cur.d.UpdatedAt = types.ServiceDeploymentStatusSuccessful, now, now
	case types.ServiceDeploymentStatusRollbackInProgress:
		cur.d.Status, cur.d.FinishedAt, cur.d.UpdatedAt = types.ServiceDeploymentStatusRollbackSuccessful, now, now
	}
	if cb := cur.d.DeploymentCircuitBreaker; cb != nil && cb.Status == types.ServiceDeploymentRollbackMonitorsStatusMonitoring {
		cb.Status = types.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
	}
	if al := cur.d.Alarms; al != nil && al.Status == types.ServiceDeploymentRollbackMonitorsStatusMonitoring {
		al.Status = types.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
	}
	a.addEvent(s, fmt.Sprintf("(service %s) (deployment %s) deployment completed.", *s.s.ServiceName, primary))
	a.addEvent(s, fmt.Sprintf("(service %s) has reached a steady state.", *s.s.ServiceName))
}

// failDeployment marks the PRIMARY deployment FAILED by the circuit breaker and, when the
// breaker rolls back, rolls the service back; otherwise the service deployment ends STOPPED
// ("How the deployment circuit breaker detects failures",
// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html).
func (a *API) failDeployment(ctx context.Context, s *service, cur *deployment) {
	p := &s.s.Deployments[0]
	name := *s.s.ServiceName
	p.RolloutState, p.UpdatedAt = types.DeploymentRolloutStateFailed, a.timestamp()
	p.RolloutStateReason = aws.String("ECS deployment circuit breaker: tasks failed to start.")
	a.addEvent(s, fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start.", name, *p.Id))
	if !s.s.DeploymentConfiguration.DeploymentCircuitBreaker.Rollback || len(cur.d.SourceServiceRevisions) == 0 {
		a.stopBlueGreen(ctx, s, cur)
		cur.d.Status, cur.d.StatusReason = types.ServiceDeploymentStatusStopped, aws.String("ECS deployment circuit breaker: tasks failed to start.")
		cur.d.StoppedAt, cur.d.UpdatedAt = a.timestamp(), a.timestamp()
		return
	}
	a.rollBack(ctx, s, cur, "ECS deployment circuit breaker: tasks failed to start.", "ECS deployment circuit breaker: rolling back to deploymentId %s.")
}

// rollBack returns the service to the revision its current deployment replaced: the service
// deployment goes ROLLBACK_IN_PROGRESS with its rollback record, and the previous revision's
// deployment is PRIMARY again; the deployment ends ROLLBACK_SUCCESSFUL when that one is
// complete. A blue/green deployment first points its rules back at the old revision.
// statusFormat takes the deployment ID rolled back to. The caller holds a.mu.
func (a *API) rollBack(ctx context.Context, s *service, cur *deployment, reason, statusFormat string) {
	if bg := cur.bg; bg != nil && !bg.done {
		test, prod := bg.test > 0, bg.prod > 0
		a.restoreBlue(ctx, s, cur)
		a.rollBackHooks(ctx, s, cur, test, prod)
	}
	name := *s.s.ServiceName
	back := a.revisions[*cur.d.SourceServiceRevisions[0].Arn]
	now := a.timestamp()
	cur.d.Status, cur.d.UpdatedAt = types.ServiceDeploymentStatusRollbackInProgress, now
	cur.d.StatusReason = aws.String(fmt.Sprintf(statusFormat, back.deploymentID))
	cur.d.Rollback = &types.Rollback{Reason: aws.String(reason), StartedAt: now, ServiceRevisionArn: back.r.ServiceRevisionArn}
	a.addEvent(s, fmt.Sprintf("(service %s) rolling back to deployment %s", name, back.deploymentID))
	// The rollback makes the old revision's deployment PRIMARY again: its tasks that still
	// run count for it, and the failed deployment's tasks are the old ones now.
	s.s.TaskDefinition = back.r.TaskDefinition
	s.s.Deployments = slices.DeleteFunc(s.s.Deployments, func(d types.Deployment) bool { return *d.Id == back.deploymentID })
	for i := range s.s.Deployments {
		s.s.Deployments[i].Status = aws.String("ACTIVE")
	}
	s.s.Deployments = append([]types.Deployment{{
		Id: aws.String(back.deploymentID), Status: aws.String("PRIMARY"), TaskDefinition: back.r.TaskDefinition,
		DesiredCount: s.s.DesiredCount, LaunchType: s.s.LaunchType, NetworkConfiguration: s.s.NetworkConfiguration,
		CreatedAt: now, UpdatedAt: now, RolloutState: types.DeploymentRolloutStateInProgress,
		RolloutStateReason: aws.String(fmt.Sprintf(statusFormat, back.deploymentID)),
	}}, s.s.Deployments...)
	a.refreshCurrentRevisions(s)
}

// requestedRollback carries out a StopServiceDeployment with stopType ROLLBACK: the service
// goes back to the revision the deployment replaced; a first deployment has none, and its
// rollback fails. The reasons are ecslocal's wording. The caller holds a.mu.
func (a *API) requestedRollback(ctx context.Context, s *service, cur *deployment) {
	if len(cur.d.SourceServiceRevisions) == 0 {
		now := a.timestamp()
		cur.d.Status, cur.d.StatusReason, cur.d.FinishedAt, cur.d.UpdatedAt = types.ServiceDeploymentStatusRollbackFailed,
			aws.String("There is no previous service revision to roll back to."), now, now
		return
	}
	a.rollBack(ctx, s, cur, "Rolled back by StopServiceDeployment.", "Rolling back to deploymentId %s on request.")
}
