package ecsapi_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/lb"
	"github.com/gangway-ecs/gangway/internal/ecslocal/statefile"
	"github.com/gangway-ecs/gangway/internal/ecslocal/targethealth"
	"github.com/gangway-ecs/gangway/internal/ecslocal/tasks"
)

// stack is ecslocal with real containers: the APIs, a runner with its own network, the
// target groups' checks at 0.2× their intervals, the load balancer and the scheduler, until
// the test ends. With a state file, the records are loaded from it first, and state saves
// them there when the test asks.
type stack struct {
	ctx   context.Context
	ecs   *ecs.Client
	elb   *elb.Client
	state *statefile.File
}

func startStack(t *testing.T, stateFile ...string) *stack {
	t.Helper()
	ecslocaltest.RequireRoot(t, "runc", "ip", "haproxy")
	ctx, cancel := context.WithCancel(context.Background())
	raw, err := os.ReadFile(ecslocaltest.BuildGo(t, "../tasks/testdata/app"))
	if err != nil {
		t.Fatal(err)
	}
	layout := ecslocaltest.ImageLayout(t, map[string][]byte{"app": raw}, v1.Config{Entrypoint: []string{"/app"}})
	ecsAPI, elbAPI := ecsapi.New(ecsapi.Options{}), elbapi.New(elbapi.Options{})
	var state *statefile.File
	if len(stateFile) > 0 {
		if state, err = statefile.Open(stateFile[0], ecsAPI, elbAPI); err != nil {
			t.Fatal(err)
		}
	}
	runner, _ := ecslocaltest.Runner(ctx, t, tasks.Options{StateDir: t.TempDir(), Images: map[string]string{"app:1": layout}}, ecsAPI)
	ecsAPI.SetRunner(runner)
	ecsAPI.SetLoadBalancing(elbAPI)
	var actors sync.WaitGroup
	for _, run := range []func(context.Context) error{
		targethealth.New(elbAPI, targethealth.Options{Scale: 0.2}).Run,
		lb.New(elbAPI, lb.Options{Dir: t.TempDir(), Poll: 20 * time.Millisecond}).Run,
		func(ctx context.Context) error { return ecsAPI.RunScheduler(ctx, 100*time.Millisecond) },
	} {
		actors.Add(1)
		go func() { defer actors.Done(); _ = run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		actors.Wait()
		if err := runner.Close(context.Background()); err != nil {
			t.Errorf("closing the runner: %v", err)
		}
	})
	ep := ecslocaltest.Start(t, ecsAPI, elbAPI)
	ecslocaltest.Must(ep.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{})).Get(t)
	return &stack{ctx: ctx, ecs: ep.ECS, elb: ep.ELB, state: state}
}

// revision registers a revision of family "web": the test app on 8080 with the environment
// given, and the container health check when check is set.
func (s *stack) revision(t *testing.T, check *types.HealthCheck, env ...string) string {
	t.Helper()
	def := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("app:1"), Essential: aws.Bool(true), StopTimeout: aws.Int32(2),
		PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}}, HealthCheck: check}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		def.Environment = append(def.Environment, types.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
	}
	out := ecslocaltest.Must(s.ecs.RegisterTaskDefinition(s.ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), NetworkMode: types.NetworkModeAwsvpc,
		ContainerDefinitions: []types.ContainerDefinition{def}})).Get(t)
	return *out.TaskDefinition.TaskDefinitionArn
}

// tasksOf describes every task of the service, running or stopped, oldest first.
func (s *stack) tasksOf(t *testing.T, service string) []types.Task {
	t.Helper()
	var arns []string
	for _, status := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		arns = append(arns, ecslocaltest.Must(s.ecs.ListTasks(s.ctx, &ecs.ListTasksInput{ServiceName: aws.String(service), DesiredStatus: status})).Get(t).TaskArns...)
	}
	if len(arns) == 0 {
		return nil
	}
	out := ecslocaltest.Must(s.ecs.DescribeTasks(s.ctx, &ecs.DescribeTasksInput{Tasks: arns})).Get(t).Tasks
	slices.SortFunc(out, func(x, y types.Task) int { return x.CreatedAt.Compare(*y.CreatedAt) })
	return out
}

// poll calls step every 100 ms until it returns true, for at most limit; then it fails the
// test with the service's tasks and events.
func (s *stack) poll(t *testing.T, limit time.Duration, what string, step func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !step() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, task := range s.tasksOf(t, "api") {
				fmt.Fprintf(&b, "\ntask %s %s/%s health %s %s %q", *task.TaskArn, aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus),
					task.HealthStatus, task.StopCode, aws.ToString(task.StoppedReason))
			}
			svc := ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
			for _, l := range svc.LoadBalancers {
				h := ecslocaltest.Must(s.elb.DescribeTargetHealth(s.ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: l.TargetGroupArn})).Get(t)
				for _, d := range h.TargetHealthDescriptions {
					fmt.Fprintf(&b, "\ntarget %s:%d %s %s %s", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port), d.TargetHealth.State, d.TargetHealth.Reason, aws.ToString(d.TargetHealth.Description))
				}
			}
			for _, d := range svc.Deployments {
				fmt.Fprintf(&b, "\ndeployment %s %s %s running %d", *d.Id, aws.ToString(d.Status), d.RolloutState, d.RunningCount)
			}
			for _, ev := range svc.Events {
				fmt.Fprintf(&b, "\nevent %s", aws.ToString(ev.Message))
			}
			t.Fatalf("%s: not after %s:%s", what, limit, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHealthCheckGracePeriod: a task that fails its target group's checks inside the
// service's health-check grace period is not replaced (one that turns healthy before the
// period ends stays and completes the deployment); one still failing when the period ends is
// stopped as "Task failed ELB health checks in (target-group …)" and replaced
// (healthCheckGracePeriodSeconds, "ignores unhealthy … health checks after a task has first
// started").
func TestHealthCheckGracePeriod(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	// Checked every second (5 s at 0.2), unhealthy after 2 failures, healthy after 2 passes.
	tg := *ecslocaltest.Must(s.elb.CreateTargetGroup(s.ctx, &elb.CreateTargetGroupInput{Name: aws.String("graced"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(8080), VpcId: aws.String("vpc-1"), TargetType: elbtypes.TargetTypeEnumIp, HealthCheckPath: aws.String("/health"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
	})).Get(t).TargetGroups[0].TargetGroupArn
	ecslocaltest.Must(s.elb.ModifyTargetGroupAttributes(s.ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("0")}}})).Get(t)
	// A group is checked once a listener forwards to it.
	lbArn := ecslocaltest.Must(s.elb.CreateLoadBalancer(s.ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	ecslocaltest.Must(s.elb.CreateListener(s.ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Port: aws.Int32(ecslocaltest.FreePort(t)), Protocol: elbtypes.ProtocolEnumHttp,
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}})).Get(t)
	// targetState is the state of the task's target ("" when it has none).
	targetState := func(task types.Task) elbtypes.TargetHealthStateEnum {
		addr := ""
		for _, a := range task.Attachments {
			for _, d := range a.Details {
				if aws.ToString(d.Name) == "privateIPv4Address" {
					addr = aws.ToString(d.Value)
				}
			}
		}
		h := ecslocaltest.Must(s.elb.DescribeTargetHealth(s.ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})).Get(t).TargetHealthDescriptions
		for _, d := range h {
			if aws.ToString(d.Target.Id) == addr {
				return d.TargetHealth.State
			}
		}
		return ""
	}

	// Sick for its first 5 s: unhealthy in the group after about 2 s, healthy after about 7 s,
	// inside a grace period of 15 s (room for a target registered late on a loaded machine
	// to be seen unhealthy still, and to turn healthy inside the period).
	slow := s.revision(t, nil, "SICK_FOR=5s")
	ecslocaltest.Must(s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(slow), DesiredCount: aws.Int32(1),
		NetworkConfiguration:          &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}},
		LoadBalancers:                 []types.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
		HealthCheckGracePeriodSeconds: aws.Int32(15),
	})).Get(t)
	sawUnhealthy := false
	s.poll(t, 40*time.Second, "the slow starter's deployment completed", func() bool {
		if ts := s.tasksOf(t, "api"); len(ts) > 0 {
			sawUnhealthy = sawUnhealthy || targetState(ts[0]) == elbtypes.TargetHealthStateEnumUnhealthy
		}
		svc := ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
		return len(svc.Deployments) == 1 && svc.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
	})
	if !sawUnhealthy {
		t.Error("the slow starter's target was never seen unhealthy: the grace period was not put to the test")
	}
	if ts := s.tasksOf(t, "api"); len(ts) != 1 || aws.ToString(ts[0].LastStatus) != "RUNNING" {
		t.Fatalf("a task unhealthy only inside the grace period was replaced: %d tasks", len(ts))
	}

	// Sick for good, with a grace period of 8 s: unhealthy after about 2 s, still running then,
	// stopped once the period has passed.
	const grace = 8
	sick := s.revision(t, nil, "SICK=1")
	ecslocaltest.Must(s.ecs.UpdateService(s.ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(sick),
		HealthCheckGracePeriodSeconds: aws.Int32(grace)})).Get(t)
	var first types.Task
	var unhealthyAt time.Time
	s.poll(t, 40*time.Second, "the sick task stopped and replaced", func() bool {
		var ofSick []types.Task
		for _, task := range s.tasksOf(t, "api") {
			if *task.TaskDefinitionArn == sick {
				ofSick = append(ofSick, task)
			}
		}
		if len(ofSick) == 0 {
			return false
		}
		first = ofSick[0]
		if unhealthyAt.IsZero() && aws.ToString(first.DesiredStatus) == "RUNNING" && targetState(first) == elbtypes.TargetHealthStateEnumUnhealthy {
			unhealthyAt = time.Now()
		}
		return aws.ToString(first.DesiredStatus) == "STOPPED" && len(ofSick) > 1
	})
	if first.StartedAt == nil || first.StoppingAt == nil {
		t.Fatalf("the sick task: started %v, stopping %v", first.StartedAt, first.StoppingAt)
	}
	if unhealthyAt.IsZero() || unhealthyAt.After(first.StartedAt.Add(grace*time.Second)) {
		t.Errorf("the sick task was not seen unhealthy and running inside its grace period (started %s, seen unhealthy %s)", first.StartedAt.Format(time.StampMilli), unhealthyAt.Format(time.StampMilli))
	}
	if gap := first.StoppingAt.Sub(*first.StartedAt); gap < grace*time.Second {
		t.Errorf("the sick task was stopped %s after it started, inside its %d s grace period", gap, grace)
	}
	if want := "Task failed ELB health checks in (target-group " + tg + ")"; aws.ToString(first.StoppedReason) != want || first.StopCode != types.TaskStopCodeServiceSchedulerInitiated {
		t.Errorf("the sick task stopped with %s %q, want ServiceSchedulerInitiated %q", first.StopCode, aws.ToString(first.StoppedReason), want)
	}
}

// TestContainerHealthCheckReplacement: a service task whose container health check turns
// UNHEALTHY (after it was HEALTHY) is stopped as "Task failed container health checks", with
// the service event ECS writes, and replaced.
func TestContainerHealthCheckReplacement(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	// Checked 5 s after the start (healthy) and 5 s later (sick from 7 s on): UNHEALTHY after
	// one failure.
	rev := s.revision(t, &types.HealthCheck{Command: []string{"CMD", "/app", "-check"}, Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(1)},
		"SICK_AFTER=7s")
	ecslocaltest.Must(s.ecs.CreateService(s.ctx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(rev), DesiredCount: aws.Int32(1),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}},
	})).Get(t)
	var ts []types.Task
	sawHealthy := false
	s.poll(t, 60*time.Second, "the task stopped and a replacement running", func() bool {
		ts = s.tasksOf(t, "api")
		if len(ts) == 0 {
			return false
		}
		sawHealthy = sawHealthy || (aws.ToString(ts[0].DesiredStatus) == "RUNNING" && ts[0].HealthStatus == types.HealthStatusHealthy)
		return aws.ToString(ts[0].DesiredStatus) == "STOPPED" && len(ts) > 1 && aws.ToString(ts[len(ts)-1].LastStatus) == "RUNNING"
	})
	first := ts[0]
	if !sawHealthy {
		t.Error("the task was never seen HEALTHY before it failed")
	}
	if aws.ToString(first.StoppedReason) != "Task failed container health checks" || first.StopCode != types.TaskStopCodeServiceSchedulerInitiated {
		t.Errorf("the unhealthy task stopped with %s %q, want ServiceSchedulerInitiated \"Task failed container health checks\"", first.StopCode, aws.ToString(first.StoppedReason))
	}
	svc := ecslocaltest.Must(s.ecs.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
	want := fmt.Sprintf("(service api) (task %s) failed container health checks.", (*first.TaskArn)[strings.LastIndexByte(*first.TaskArn, '/')+1:])
	found := false
	for _, ev := range svc.Events {
		found = found || aws.ToString(ev.Message) == want
	}
	if !found {
		t.Errorf("no service event %q", want)
	}
}
