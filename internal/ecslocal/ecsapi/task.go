package ecsapi

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

type task struct {
	t     types.Task
	sched *serviceTask // for a service's task: what the scheduler did with it
}

// Task states, in the order of "Amazon ECS task lifecycle"
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle.html).
const (
	StatusProvisioning   = "PROVISIONING"
	StatusPending        = "PENDING"
	StatusActivating     = "ACTIVATING"
	StatusRunning        = "RUNNING"
	StatusDeactivating   = "DEACTIVATING"
	StatusStopping       = "STOPPING"
	StatusDeprovisioning = "DEPROVISIONING"
	StatusStopped        = "STOPPED"
)

// stoppedByUser is the stoppedReason of a StopTask without a reason.
const stoppedByUser = "Task stopped by user"

// RunTask records count (1 to 10) tasks of a task definition in PROVISIONING and hands them
// to the runner.
func (a *API) RunTask(_ context.Context, in *ecs.RunTaskInput) (*ecs.RunTaskOutput, error) {
	count := aws.ToInt32(in.Count)
	if in.Count == nil {
		count = 1
	}
	if count < 1 || count > 10 {
		return nil, invalidParameter("count must be between 1 and 10.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	td := a.lookupTaskDefinition(aws.ToString(in.TaskDefinition))
	if td == nil {
		return nil, invalidParameter("TaskDefinition not found.")
	}
	if td.td.NetworkMode == types.NetworkModeAwsvpc && (in.NetworkConfiguration == nil || in.NetworkConfiguration.AwsvpcConfiguration == nil) {
		return nil, invalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
	}
	group := aws.ToString(in.Group)
	if group == "" {
		group = "family:" + *td.td.Family
	}
	out := &ecs.RunTaskOutput{Tasks: []types.Task{}, Failures: []types.Failure{}}
	for range count {
		t := a.newTask(c, &td.td, in.LaunchType, group, aws.ToString(in.StartedBy), in.Overrides)
		a.setTags(*t.t.TaskArn, in.Tags)
		out.Tasks = append(out.Tasks, *wire.Clone(&t.t))
		if a.runner != nil {
			a.runner.Start(*t.t.TaskArn, *wire.Clone(&td.td), wire.Clone(t.t.Overrides))
		}
	}
	return out, nil
}

// newTask records a task in PROVISIONING with its containers PENDING. The caller holds a.mu.
func (a *API) newTask(c *cluster, td *types.TaskDefinition, launch types.LaunchType, group, startedBy string, overrides *types.TaskOverride) *task {
	id := taskID()
	arn := a.arn(fmt.Sprintf("task/%s/%s", *c.c.ClusterName, id))
	if launch == "" {
		launch = types.LaunchTypeEc2
	}
	t := &task{t: types.Task{
		TaskArn:           aws.String(arn),
		ClusterArn:        c.c.ClusterArn,
		TaskDefinitionArn: td.TaskDefinitionArn,
		Group:             aws.String(group),
		LaunchType:        launch,
		LastStatus:        aws.String(StatusProvisioning),
		DesiredStatus:     aws.String(StatusRunning),
		HealthStatus:      types.HealthStatusUnknown,
		Cpu:               td.Cpu,
		Memory:            td.Memory,
		CreatedAt:         a.timestamp(),
		Version:           1,
		Overrides:         overrides,
		Connectivity:      types.ConnectivityDisconnected,
	}}
	if startedBy != "" {
		t.t.StartedBy = aws.String(startedBy)
	}
	if t.t.Overrides == nil {
		t.t.Overrides = &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{}}
	}
	if launch == types.LaunchTypeFargate {
		t.t.PlatformVersion = aws.String("1.4.0")
		t.t.PlatformFamily = aws.String("Linux")
	}
	for _, cd := range td.ContainerDefinitions {
		t.t.Containers = append(t.t.Containers, types.Container{
			ContainerArn: aws.String(a.arn(fmt.Sprintf("container/%s/%s/%s", *c.c.ClusterName, id, uuid()))),
			TaskArn:      aws.String(arn),
			Name:         cd.Name,
			Image:        cd.Image,
			LastStatus:   aws.String(StatusPending),
			HealthStatus: types.HealthStatusUnknown,
		})
	}
	a.tasks[arn] = t
	return t
}

// task resolves a task ID or ARN in a cluster. The caller holds a.mu.
func (a *API) task(c *cluster, ref string) *task {
	return a.tasks[a.arn(fmt.Sprintf("task/%s/%s", *c.c.ClusterName, lastPart(ref)))]
}

// StopTask asks a task to stop: desiredStatus STOPPED, stopCode UserInitiated, the caller's
// reason or "Task stopped by user". A task whose containers never started is STOPPED at
// once.
func (a *API) StopTask(_ context.Context, in *ecs.StopTaskInput) (*ecs.StopTaskOutput, error) {
	reason := aws.ToString(in.Reason)
	if len(reason) > 255 {
		return nil, invalidParameter("reason must be at most 255 characters.")
	}
	if reason == "" {
		reason = stoppedByUser
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	t := a.task(c, aws.ToString(in.Task))
	if t == nil {
		return nil, invalidParameter("The referenced task was not found.")
	}
	a.requestStop(t, types.TaskStopCodeUserInitiated, reason)
	return &ecs.StopTaskOutput{Task: wire.Clone(&t.t)}, nil
}

// requestStop sets a task's desired status to STOPPED with its stop code and reason (the
// first ones given stick, as in ECS) and asks the runner to stop it. Without a runner nothing
// runs, so the task goes to STOPPED at once. The caller holds a.mu.
func (a *API) requestStop(t *task, code types.TaskStopCode, reason string) {
	if aws.ToString(t.t.DesiredStatus) == StatusStopped {
		return
	}
	now := a.timestamp()
	t.t.DesiredStatus = aws.String(StatusStopped)
	t.t.StopCode, t.t.StoppedReason, t.t.StoppingAt = code, aws.String(reason), now
	t.t.Version++
	if a.runner != nil {
		a.runner.Stop(*t.t.TaskArn)
		return
	}
	if aws.ToString(t.t.LastStatus) == StatusProvisioning {
		t.t.LastStatus = aws.String(StatusStopped)
		t.t.StoppedAt, t.t.ExecutionStoppedAt = now, now
		for i := range t.t.Containers {
			t.t.Containers[i].LastStatus = aws.String(StatusStopped)
		}
		a.settleDrainingOf(t)
	}
}

// settleDrainingOf lets the service a stopped task belonged to become INACTIVE if it was
// draining. The caller holds a.mu.
func (a *API) settleDrainingOf(t *task) {
	name, ok := strings.CutPrefix(aws.ToString(t.t.Group), "service:")
	if !ok {
		return
	}
	for _, c := range a.clusters {
		if *c.c.ClusterArn == *t.t.ClusterArn && c.services[name] != nil {
			a.settleDraining(c.services[name])
		}
	}
}

// DescribeTasks describes up to 100 tasks of a cluster; one that does not exist is a
// failure with reason MISSING.
func (a *API) DescribeTasks(_ context.Context, in *ecs.DescribeTasksInput) (*ecs.DescribeTasksOutput, error) {
	if len(in.Tasks) == 0 || len(in.Tasks) > 100 {
		return nil, invalidParameter("tasks should have between 1 and 100 items.")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	out := &ecs.DescribeTasksOutput{Tasks: []types.Task{}, Failures: []types.Failure{}}
	for _, ref := range in.Tasks {
		t := a.task(c, ref)
		if t == nil {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(a.arn(fmt.Sprintf("task/%s/%s", *c.c.ClusterName, lastPart(ref)))), Reason: aws.String("MISSING")})
			continue
		}
		d := wire.Clone(&t.t)
		if slices.Contains(in.Include, types.TaskFieldTags) {
			d.Tags = a.tagList(*t.t.TaskArn)
		}
		out.Tasks = append(out.Tasks, *d)
	}
	return out, nil
}

// ListTasks lists the ARNs of a cluster's tasks whose desired status is desiredStatus
// (RUNNING by default), filtered by family, service, startedBy and launch type.
func (a *API) ListTasks(_ context.Context, in *ecs.ListTasksInput) (*ecs.ListTasksOutput, error) {
	desired := string(in.DesiredStatus)
	if desired == "" {
		desired = StatusRunning
	}
	a.mu.Lock()
	c, err := a.cluster(in.Cluster)
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	if in.ServiceName != nil && c.services[lastPart(*in.ServiceName)] == nil {
		a.mu.Unlock()
		return nil, serviceNotFound()
	}
	var arns []string
	for _, t := range a.tasks {
		switch {
		case *t.t.ClusterArn != *c.c.ClusterArn,
			aws.ToString(t.t.DesiredStatus) != desired,
			in.Family != nil && aws.ToString(t.t.TaskDefinitionArn) != "" && !strings.HasPrefix(lastPart(*t.t.TaskDefinitionArn), *in.Family+":"),
			in.ServiceName != nil && aws.ToString(t.t.Group) != "service:"+lastPart(*in.ServiceName),
			in.StartedBy != nil && aws.ToString(t.t.StartedBy) != *in.StartedBy,
			in.LaunchType != "" && t.t.LaunchType != in.LaunchType:
			continue
		}
		arns = append(arns, *t.t.TaskArn)
	}
	a.mu.Unlock()
	slices.Sort(arns)
	page, next, err := pageOf(arns, in.NextToken, in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	return &ecs.ListTasksOutput{TaskArns: page, NextToken: next}, nil
}
