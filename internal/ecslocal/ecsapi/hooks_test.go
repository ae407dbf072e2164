package ecsapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
)

// instantRunner runs tasks as records that reach RUNNING (and STOPPED) at once, from its
// own goroutines as the Runner contract asks.
type instantRunner struct {
	api *ecsapi.API
	wg  sync.WaitGroup
}

func (r *instantRunner) Start(arn string, _ types.TaskDefinition, _ *types.TaskOverride) {
	r.wg.Go(func() { r.api.UpdateTask(arn, func(t *types.Task) { t.LastStatus = aws.String("RUNNING") }) })
}

func (r *instantRunner) Stop(arn string) {
	r.wg.Go(func() { r.api.UpdateTask(arn, func(t *types.Task) { t.LastStatus = aws.String("STOPPED") }) })
}

// lambdaFunc stands for the Lambda package's runner with a function of the test's.
type lambdaFunc func(payload []byte) ([]byte, error)

func (f lambdaFunc) InvokeHook(_ context.Context, _ string, payload []byte) ([]byte, error) {
	return f(payload)
}

// TestLifecycleHookOutcomes runs BLUE_GREEN deployments of a service without load balancer
// whose tasks run at once, with timers at 0.001× (a minute is 60 ms), through each way a
// hook can end: a PAUSE hook continued or rolled back by ContinueServiceDeployment or timed
// out, a Lambda hook that answers a function error, fails to be invoked, or stays
// IN_PROGRESS past its timeout; and an alarm in ALARM during a ROLLING deployment.
func TestLifecycleHookOutcomes(t *testing.T) {
	var mu sync.Mutex
	var fn lambdaFunc
	hooks := lambdaFunc(func(p []byte) ([]byte, error) { mu.Lock(); f := fn; mu.Unlock(); return f(p) })
	alarms := &alarmsStandIn{states: map[string]string{"errors": "OK"}}
	api := ecsapi.New(ecsapi.Options{Hooks: hooks, Alarms: alarms, TimeScale: 0.001})
	runner := &instantRunner{api: api}
	api.SetRunner(runner)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = api.RunScheduler(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done; runner.wg.Wait() }()
	c := ecslocaltest.Start(t, api, elbapi.New(elbapi.Options{})).ECS

	td := *ecslocaltest.Must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("app:1")}}})).Get(t).TaskDefinition.TaskDefinitionArn
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{})).Get(t)
	ecslocaltest.Must(c.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(1)}})).Get(t)

	// deployment waits until the newest deployment satisfies ok, for at most 10 s.
	deployment := func(ok func(types.ServiceDeployment) bool) types.ServiceDeployment {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			list := ecslocaltest.Must(c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Service: aws.String("api")})).Get(t)
			d := ecslocaltest.Must(c.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{
				ServiceDeploymentArns: []string{*list.ServiceDeployments[0].ServiceDeploymentArn}})).Get(t).ServiceDeployments[0]
			if ok(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("deployment %s after 10 s: %s at %s (%s), hooks %+v", *d.ServiceDeploymentArn, d.Status, d.LifecycleStage, aws.ToString(d.StatusReason), d.LifecycleHookDetails)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ended := func(d types.ServiceDeployment) bool {
		return d.Status != types.ServiceDeploymentStatusInProgress && d.Status != types.ServiceDeploymentStatusRollbackInProgress
	}
	awaiting := func(d types.ServiceDeployment) bool {
		return len(d.LifecycleHookDetails) == 1 && d.LifecycleHookDetails[0].Status == types.DeploymentLifecycleHookStatusAwaitingAction
	}
	if d := deployment(ended); d.Status != types.ServiceDeploymentStatusSuccessful {
		t.Fatalf("first deployment: %s", d.Status)
	}
	deploy := func(hook types.DeploymentLifecycleHook) {
		t.Helper()
		ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), ForceNewDeployment: true,
			DeploymentConfiguration: &types.DeploymentConfiguration{LifecycleHooks: []types.DeploymentLifecycleHook{hook}}})).Get(t)
	}
	pause := func(timeout *types.DeploymentLifecycleHookTimeoutConfiguration) types.DeploymentLifecycleHook {
		return types.DeploymentLifecycleHook{TargetType: types.DeploymentLifecycleHookTargetTypePause,
			LifecycleStages: []types.DeploymentLifecycleHookStage{types.DeploymentLifecycleHookStagePostScaleUp}, TimeoutConfiguration: timeout}
	}
	lambda := func(f lambdaFunc, timeout *types.DeploymentLifecycleHookTimeoutConfiguration) types.DeploymentLifecycleHook {
		mu.Lock()
		fn = f
		mu.Unlock()
		return types.DeploymentLifecycleHook{HookTargetArn: aws.String("arn:aws:lambda:us-east-1:000000000000:function:check"),
			LifecycleStages: []types.DeploymentLifecycleHookStage{types.DeploymentLifecycleHookStagePostScaleUp}, TimeoutConfiguration: timeout}
	}
	long := &types.DeploymentLifecycleHookTimeoutConfiguration{TimeoutInMinutes: aws.Int32(1000)}
	expect := func(what string, d types.ServiceDeployment, status types.ServiceDeploymentStatus, hookStatus types.DeploymentLifecycleHookStatus, reason string) {
		t.Helper()
		var got types.DeploymentLifecycleHookStatus
		if len(d.LifecycleHookDetails) > 0 {
			got = d.LifecycleHookDetails[0].Status
		}
		if d.Status != status || (hookStatus != "" && got != hookStatus) || !strings.Contains(aws.ToString(d.StatusReason)+" "+rollbackReason(d), reason) {
			t.Errorf("%s: %s (%s; rollback %q), hook %s; want %s, hook %s, reason with %q", what, d.Status, aws.ToString(d.StatusReason), rollbackReason(d), got, status, hookStatus, reason)
		}
	}

	// A PAUSE hook waits at POST_SCALE_UP until ContinueServiceDeployment CONTINUE.
	deploy(pause(long))
	d := deployment(awaiting)
	if d.LifecycleStage != types.ServiceDeploymentLifecycleStagePostScaleUp || d.LifecycleHookDetails[0].TargetType != types.DeploymentLifecycleHookTargetTypePause || d.LifecycleHookDetails[0].ExpiresAt == nil {
		t.Errorf("paused: stage %s, hook %+v", d.LifecycleStage, d.LifecycleHookDetails[0])
	}
	_, err := c.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: d.ServiceDeploymentArn, HookId: aws.String("no-such-hook")})
	if code := errorCode(err); code != "InvalidParameterException" {
		t.Errorf("ContinueServiceDeployment of an unknown hook: %v, want InvalidParameterException", err)
	}
	ecslocaltest.Must(c.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: d.ServiceDeploymentArn, HookId: d.LifecycleHookDetails[0].HookId})).Get(t)
	_, err = c.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: d.ServiceDeploymentArn, HookId: d.LifecycleHookDetails[0].HookId})
	if code := errorCode(err); code != "ConflictException" && code != "InvalidParameterException" {
		t.Errorf("ContinueServiceDeployment of a hook already continued: %v, want an error", err)
	}
	expect("PAUSE, CONTINUE", deployment(ended), types.ServiceDeploymentStatusSuccessful, "", "")

	// ContinueServiceDeployment ROLLBACK rolls back.
	deploy(pause(long))
	d = deployment(awaiting)
	ecslocaltest.Must(c.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: d.ServiceDeploymentArn, HookId: d.LifecycleHookDetails[0].HookId,
		Action: types.DeploymentLifecycleHookActionRollback})).Get(t)
	expect("PAUSE, ROLLBACK", deployment(ended), types.ServiceDeploymentStatusRollbackSuccessful, types.DeploymentLifecycleHookStatusFailed, "ContinueServiceDeployment")

	// A PAUSE hook nobody answers times out after its timeout (1 min: 60 ms) and takes its
	// timeout action.
	deploy(pause(&types.DeploymentLifecycleHookTimeoutConfiguration{TimeoutInMinutes: aws.Int32(1), Action: types.DeploymentLifecycleHookActionContinue}))
	expect("PAUSE, timed out, CONTINUE", deployment(ended), types.ServiceDeploymentStatusSuccessful, types.DeploymentLifecycleHookStatusTimedOut, "")
	deploy(pause(&types.DeploymentLifecycleHookTimeoutConfiguration{TimeoutInMinutes: aws.Int32(1)}))
	expect("PAUSE, timed out, ROLLBACK (the default)", deployment(ended), types.ServiceDeploymentStatusRollbackSuccessful, types.DeploymentLifecycleHookStatusTimedOut, "timed out")

	// A Lambda function error, an invoke error and a hook IN_PROGRESS past its timeout each
	// roll back; so does a response without hookStatus.
	deploy(lambda(func([]byte) ([]byte, error) {
		return []byte(`{"errorMessage":"readiness probe panicked","errorType":"Runtime.ExitError"}`), nil
	}, long))
	expect("function error", deployment(ended), types.ServiceDeploymentStatusRollbackSuccessful, types.DeploymentLifecycleHookStatusFailed, "readiness probe panicked")
	deploy(lambda(func([]byte) ([]byte, error) { return nil, errors.New("connection refused") }, long))
	expect("invoke error", deployment(ended), types.ServiceDeploymentStatusRollbackSuccessful, types.DeploymentLifecycleHookStatusFailed, "connection refused")
	deploy(lambda(func([]byte) ([]byte, error) { return []byte(`{"callBackDelay":1}`), nil }, long))
	expect("no hookStatus", deployment(ended), types.ServiceDeploymentStatusRollbackSuccessful, types.DeploymentLifecycleHookStatusFailed, "HookStatus must not be null")
	var calls atomic.Int32
	deploy(lambda(func([]byte) ([]byte, error) {
		calls.Add(1)
		return []byte(`{"hookStatus":"IN_PROGRESS","callBackDelay":5}`), nil
	}, &types.DeploymentLifecycleHookTimeoutConfiguration{TimeoutInMinutes: aws.Int32(1)}))
	expect("IN_PROGRESS past the timeout", deployment(ended), types.ServiceDeploymentStatusRollbackSuccessful, types.DeploymentLifecycleHookStatusTimedOut, "timed out")
	if n := calls.Load(); n < 2 {
		t.Errorf("IN_PROGRESS every 5 ms (5 s at 0.001×) for 60 ms: invoked %d times, want several", n)
	}

	// StopServiceDeployment ABORT is recorded, not carried out: the deployment stays where it
	// is, and blue keeps its tasks (the ROLLING scheduler does not finish it).
	deploy(pause(long))
	d = deployment(awaiting)
	ecslocaltest.Must(c.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: d.ServiceDeploymentArn, StopType: types.StopServiceDeploymentStopTypeAbort})).Get(t)
	time.Sleep(100 * time.Millisecond) // 20 passes of the scheduler
	d = deployment(func(types.ServiceDeployment) bool { return true })
	if d.Status != types.ServiceDeploymentStatusStopRequested || d.SourceServiceRevisions[0].RunningTaskCount != 2 || d.TargetServiceRevision.RunningTaskCount != 2 {
		t.Errorf("ABORT: %s, blue running %d, green running %d; want STOP_REQUESTED with both at 2", d.Status, d.SourceServiceRevisions[0].RunningTaskCount, d.TargetServiceRevision.RunningTaskCount)
	}

	// An alarm in ALARM fails a ROLLING deployment too, and rolls it back.
	alarms.set("errors", "ALARM")
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), ForceNewDeployment: true,
		DeploymentConfiguration: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyRolling, LifecycleHooks: []types.DeploymentLifecycleHook{},
			Alarms: &types.DeploymentAlarms{AlarmNames: []string{"errors"}, Enable: true, Rollback: true}}})).Get(t)
	d = deployment(ended)
	expect("ROLLING, alarm", d, types.ServiceDeploymentStatusRollbackSuccessful, "", "errors")
	if d.Alarms == nil || d.Alarms.Status != types.ServiceDeploymentRollbackMonitorsStatusTriggered || fmt.Sprint(d.Alarms.TriggeredAlarmNames) != "[errors]" {
		t.Errorf("ROLLING, alarm: alarms %+v, want TRIGGERED by errors", d.Alarms)
	}
}

func rollbackReason(d types.ServiceDeployment) string {
	if d.Rollback == nil {
		return ""
	}
	return aws.ToString(d.Rollback.Reason)
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
