package main

// The Service Deployments API cannot run here: moto does not implement it and there is no AWS
// account. These tests drive the real command, with real aws-sdk-go-v2 clients configured from
// the environment, against recorded ECS responses served on 127.0.0.1 (internal/ecs/ecstest).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
)

const (
	depARN   = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/app/dep7"
	revNew   = "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/app/rev7"
	revOld   = "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/app/rev6"
	tdNew    = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:7"
	tdOld    = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:6"
	taskGood = "arn:aws:ecs:us-east-1:123456789012:task/prod/0a0a0a0a"
	taskBad  = "arn:aws:ecs:us-east-1:123456789012:task/prod/0badc0de"
)

// deployment is a recorded DescribeServiceDeployments answer; extra is spliced into the
// deployment object.
func deployment(status, stage string, running int, extra string) ecstest.Response {
	return ecstest.OK(fmt.Sprintf(`{"serviceDeployments": [{
		"serviceDeploymentArn": %q, "status": %q, "lifecycleStage": %q, "startedAt": 1700000000,
		"targetServiceRevision": {"arn": %q, "requestedTaskCount": 2, "runningTaskCount": %d, "pendingTaskCount": %d},
		"sourceServiceRevisions": [{"arn": %q, "requestedTaskCount": 2, "runningTaskCount": 2}]%s}]}`,
		depARN, status, stage, revNew, running, 2-running, revOld, extra))
}

// fakeECS serves the calls every watch makes and points the SDK at the server.
func fakeECS(t *testing.T) *ecstest.Server {
	t.Helper()
	s := ecstest.NewServer(t)
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	s.Default("ListServiceDeployments", ecstest.OK(fmt.Sprintf(`{"serviceDeployments": [
		{"serviceDeploymentArn": "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/app/dep6", "status": "SUCCESSFUL", "createdAt": 1690000000},
		{"serviceDeploymentArn": %q, "status": "IN_PROGRESS", "createdAt": 1700000000}]}`, depARN)))
	s.Default("DescribeServiceRevisions", ecstest.OK(fmt.Sprintf(`{"serviceRevisions": [
		{"serviceRevisionArn": %q, "taskDefinition": %q}, {"serviceRevisionArn": %q, "taskDefinition": %q}]}`, revNew, tdNew, revOld, tdOld)))
	s.Default("ListTasks", ecstest.OK(`{"taskArns": []}`))
	s.Default("DescribeServices", ecstest.OK(`{"services": [{"serviceName": "app", "events": []}]}`))
	return s
}

// failingTask records a target-revision task that failed its container health check, and
// the service event naming it.
func failingTask(s *ecstest.Server) {
	s.OnBody("ListTasks", "STOPPED", ecstest.OK(fmt.Sprintf(`{"taskArns": [%q]}`, taskBad)))
	s.OnBody("DescribeTasks", "0badc0de", ecstest.OK(fmt.Sprintf(`{"tasks": [{
		"taskArn": %q, "taskDefinitionArn": %q, "lastStatus": "STOPPED", "healthStatus": "UNHEALTHY",
		"stopCode": "ServiceSchedulerInitiated", "stoppedReason": "Task failed container health checks",
		"createdAt": 1700000100, "stoppedAt": 1700000200,
		"containers": [{"name": "proxy", "exitCode": 143, "healthStatus": "UNHEALTHY"}, {"name": "app", "exitCode": 0, "healthStatus": "HEALTHY"}]}]}`, taskBad, tdNew)))
	s.On("DescribeServices", ecstest.OK(`{"services": [{"serviceName": "app", "events": [
		{"id": "e1", "createdAt": 1700000150, "message": "(service app) (task 0badc0de) (port 8080) is unhealthy in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app/1) due to (reason Health checks failed with these codes: [503])."},
		{"id": "e0", "createdAt": 1700000050, "message": "(service app) has started 1 tasks: (task 0badc0de)."}]}]}`))
}

func runRollout(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	base := []string{"rollout", args[0], "-cluster", "prod", "-service", "app", "-interval", "10ms"}
	code = runMain(context.Background(), append(base, args[1:]...), e)
	return code, out.String(), errOut.String()
}

func assertRollout(t *testing.T, code int, stdout, stderr string, wantCode int, says ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d", code, wantCode)
	}
	for _, s := range says {
		if !strings.Contains(stdout+stderr, s) {
			t.Errorf("output does not say %q\nstdout:\n%s\nstderr:\n%s", s, stdout, stderr)
		}
	}
}

func TestRolloutWatchSuccess(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments",
		deployment("IN_PROGRESS", "SCALE_UP", 1, `, "deploymentCircuitBreaker": {"status": "MONITORING", "failureCount": 0, "threshold": 3}`),
		deployment("IN_PROGRESS", "BAKE_TIME", 2, ""),
		deployment("SUCCESSFUL", "CLEAN_UP", 2, ""))
	s.OnBody("ListTasks", "RUNNING", ecstest.OK(fmt.Sprintf(`{"taskArns": [%q]}`, taskGood)))
	s.OnBody("DescribeTasks", "0a0a0a0a", ecstest.OK(fmt.Sprintf(`{"tasks": [
		{"taskArn": %q, "taskDefinitionArn": %q, "lastStatus": "RUNNING", "healthStatus": "HEALTHY"}]}`, taskGood, tdNew)))

	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK,
		"deployment "+depARN+" IN_PROGRESS, stage SCALE_UP",
		"target app:7: running 1/2, pending 1, healthy 1",
		"source app:6: running 2/2, pending 0, healthy 0",
		"circuit breaker MONITORING: 0 of 3 failed tasks",
		"stage BAKE_TIME",
		"succeeded: deployment "+depARN+" completed: target revision app:7 has 2/2 tasks running, 1 healthy")
	// The newest deployment was chosen, not the older successful one.
	if got := s.Requests("DescribeServiceDeployments"); len(got) != 3 || !strings.Contains(got[0], "dep7") {
		t.Errorf("DescribeServiceDeployments calls: %q", got)
	}
}

func TestRolloutWatchCircuitBreakerRollback(t *testing.T) {
	s := fakeECS(t)
	failingTask(s)
	s.On("DescribeServiceDeployments",
		deployment("IN_PROGRESS", "SCALE_UP", 0, `, "deploymentCircuitBreaker": {"status": "MONITORING", "failureCount": 2, "threshold": 3}`),
		deployment("ROLLBACK_IN_PROGRESS", "SCALE_UP", 0, fmt.Sprintf(`,
			"deploymentCircuitBreaker": {"status": "TRIGGERED", "failureCount": 3, "threshold": 3},
			"rollback": {"reason": "ECS deployment circuit breaker: tasks failed to start.", "serviceRevisionArn": %q, "startedAt": 1700000300}`, revOld)),
		deployment("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, fmt.Sprintf(`,
			"statusReason": "Service deployment rolled back because the circuit breaker threshold was exceeded.",
			"deploymentCircuitBreaker": {"status": "TRIGGERED", "failureCount": 3, "threshold": 3},
			"rollback": {"reason": "ECS deployment circuit breaker: tasks failed to start.", "serviceRevisionArn": %q, "startedAt": 1700000300}`, revOld)))

	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitRolledBack,
		"circuit breaker MONITORING: 2 of 3 failed tasks",
		"failed task 0badc0de (app:7) stopped 22:16:40: Task failed container health checks [ServiceSchedulerInitiated]",
		"container proxy: exit 143 health UNHEALTHY",
		"last event: (service app) (task 0badc0de) (port 8080) is unhealthy",
		"rolling back to rev6",
		"rolled back: circuit breaker triggered after 3 failed tasks (threshold 3); last failed task 0badc0de: Task failed container health checks (container proxy UNHEALTHY) — (service app) (task 0badc0de) (port 8080) is unhealthy in (target-group",
		"Health checks failed with these codes: [503]")
	if strings.Count(stdout, "failed task 0badc0de") != 1 {
		t.Errorf("the failed task is printed more than once:\n%s", stdout)
	}
}

func TestRolloutWatchAlarmRollback(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments",
		deployment("IN_PROGRESS", "BAKE_TIME", 2, `, "alarms": {"status": "MONITORING", "alarmNames": ["app-5xx", "app-latency"]}`),
		deployment("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, `,
			"alarms": {"status": "TRIGGERED", "alarmNames": ["app-5xx", "app-latency"], "triggeredAlarmNames": ["app-5xx"]},
			"rollback": {"reason": "Service deployment rolled back because of alarms: app-5xx"}`))

	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitRolledBack,
		"alarms MONITORING: watching app-5xx, app-latency",
		"alarms TRIGGERED: watching app-5xx, app-latency; IN ALARM: app-5xx",
		"rolled back: alarm app-5xx went into ALARM")
}

func TestRolloutWatchFailedLifecycleHook(t *testing.T) {
	s := fakeECS(t)
	const lambda = "arn:aws:lambda:us-east-1:123456789012:function:smoke-test"
	s.On("DescribeServiceDeployments",
		deployment("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 2, fmt.Sprintf(`,
			"lifecycleHookDetails": [{"hookId": "hook-42", "status": "IN_PROGRESS", "targetType": "AWS_LAMBDA", "targetArn": %q, "timeoutAction": "ROLLBACK"}]`, lambda)),
		deployment("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, fmt.Sprintf(`,
			"lifecycleHookDetails": [{"hookId": "hook-42", "status": "FAILED", "targetType": "AWS_LAMBDA", "targetArn": %q}],
			"rollback": {"reason": "Lifecycle hook failed"}`, lambda)))

	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitRolledBack,
		"hook hook-42 (AWS_LAMBDA function:smoke-test): IN_PROGRESS",
		"rolled back: lifecycle hook hook-42 ("+lambda+") FAILED")
}

func TestRolloutWatchRollbackFailed(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments", deployment("ROLLBACK_FAILED", "CLEAN_UP", 0, `, "statusReason": "No completed deployment to roll back to."`))
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitFailure, "rollback failed: No completed deployment to roll back to.")
}

func TestRolloutWatchStalled(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments", deployment("IN_PROGRESS", "SCALE_UP", 0, ""))
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "2s")
	assertRollout(t, code, stdout, stderr, exitTimedOut,
		"timed out after 2s: deployment "+depARN+" is still IN_PROGRESS at stage SCALE_UP; target revision app:7 has 0/2 tasks running, 0 healthy; no change since")
	if n := strings.Count(stdout, "IN_PROGRESS, stage SCALE_UP"); n != 1 {
		t.Errorf("an unchanged deployment was printed %d times", n)
	}
	if n := len(s.Requests("DescribeServiceDeployments")); n < 2 {
		t.Errorf("polled %d times in 2s at a 10ms interval", n)
	}
}

func TestRolloutWatchThrottling(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments",
		ecstest.Throttled, ecstest.Throttled,
		deployment("IN_PROGRESS", "SCALE_UP", 1, ""),
		ecstest.Throttled,
		deployment("SUCCESSFUL", "CLEAN_UP", 2, ""))
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK, "throttled by the ECS API", "Rate exceeded", "next poll in 20ms", "next poll in 40ms", "succeeded:")
	if n := len(s.Requests("DescribeServiceDeployments")); n != 5 {
		t.Errorf("DescribeServiceDeployments called %d times, want 5", n)
	}
}

func TestRolloutWatchThrottledUntilTimeout(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments", ecstest.Throttled)
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "2s")
	assertRollout(t, code, stdout, stderr, exitUnreached, "api error: gave up after 2s of failing API calls", "ThrottlingException")
}

func TestRolloutWatchAPIError(t *testing.T) {
	s := fakeECS(t)
	s.On("ListServiceDeployments", ecstest.Error(400, "AccessDeniedException", "User is not authorized to perform ecs:ListServiceDeployments"))
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitUnreached, "api error: ListServiceDeployments app:", "AccessDeniedException", "not authorized")
	if n := len(s.Requests("ListServiceDeployments")); n != 1 {
		t.Errorf("a permanent error was retried: %d calls", n)
	}
}

func TestRolloutWatchJSON(t *testing.T) {
	s := fakeECS(t)
	failingTask(s)
	s.On("DescribeServiceDeployments", deployment("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0,
		`, "deploymentCircuitBreaker": {"status": "TRIGGERED", "failureCount": 3, "threshold": 3}`))
	code, stdout, _ := runRollout(t, "watch", "-output", "json", "-deployment", depARN)
	if code != exitRolledBack {
		t.Errorf("exit %d, want %d", code, exitRolledBack)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var last struct {
		Type, Outcome, Cause string
		ExitCode             int
		Deployment           struct {
			Status      string
			FailedTasks []struct{ TaskArn, StoppedReason, Event string }
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, stdout)
	}
	if last.Type != "result" || last.Outcome != "rolled_back" || last.ExitCode != exitRolledBack ||
		last.Deployment.Status != "ROLLBACK_SUCCESSFUL" || len(last.Deployment.FailedTasks) != 1 ||
		!strings.Contains(last.Deployment.FailedTasks[0].Event, "[503]") || !strings.Contains(last.Cause, "circuit breaker") {
		t.Errorf("result %+v", last)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("not a JSON line: %q", l)
		}
	}
	if n := len(s.Requests("ListServiceDeployments")); n != 0 {
		t.Errorf("-deployment given, yet ListServiceDeployments was called %d times", n)
	}
}

func TestRolloutPausedHookContinue(t *testing.T) {
	s := fakeECS(t)
	paused := deployment("IN_PROGRESS", "POST_SCALE_UP", 2, `,
		"lifecycleHookDetails": [{"hookId": "pause-1", "status": "AWAITING_ACTION", "targetType": "PAUSE", "timeoutAction": "ROLLBACK", "expiresAt": 1700086400}]`)
	s.On("DescribeServiceDeployments", paused)
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "2s")
	assertRollout(t, code, stdout, stderr, exitTimedOut,
		"hook pause-1 (PAUSE): AWAITING_ACTION, expires 2023-11-15 22:13:20 then ROLLBACK",
		"continue:  proxy rollout continue -cluster prod -service app -deployment "+depARN+" -hook pause-1",
		"roll back: proxy rollout rollback -cluster prod -service app -deployment "+depARN,
		"paused at hook pause-1, waiting for continue or rollback")

	// continue finds the one hook awaiting action, continues it, and watches to the end.
	s2 := fakeECS(t)
	s2.On("DescribeServiceDeployments", paused, paused, deployment("SUCCESSFUL", "CLEAN_UP", 2, ""))
	s2.On("ContinueServiceDeployment", ecstest.OK(fmt.Sprintf(`{"serviceDeploymentArn": %q}`, depARN)))
	s2.On("DescribeServices", ecstest.OK(fmt.Sprintf(`{"services": [{"serviceName": "app", "currentServiceDeployment": %q}]}`, depARN)))
	code, stdout, stderr = runRollout(t, "continue", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK, "continued "+depARN+" past hook pause-1", "succeeded:")
	req := s2.Requests("ContinueServiceDeployment")
	if len(req) != 1 || !strings.Contains(req[0], `"hookId":"pause-1"`) || !strings.Contains(req[0], `"action":"CONTINUE"`) {
		t.Errorf("ContinueServiceDeployment requests: %q", req)
	}
}

func TestRolloutRollback(t *testing.T) {
	s := fakeECS(t)
	s.On("StopServiceDeployment", ecstest.OK(fmt.Sprintf(`{"serviceDeploymentArn": %q}`, depARN)))
	s.On("DescribeServiceDeployments",
		deployment("ROLLBACK_REQUESTED", "SCALE_UP", 1, ""),
		deployment("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, `, "rollback": {"reason": "Service deployment rolled back by user request."}`))
	code, stdout, stderr := runRollout(t, "rollback", "-deployment", depARN, "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitRolledBack, "rollback of "+depARN+" requested", "rolled back: Service deployment rolled back by user request.")
	req := s.Requests("StopServiceDeployment")
	if len(req) != 1 || !strings.Contains(req[0], `"stopType":"ROLLBACK"`) || !strings.Contains(req[0], depARN) {
		t.Errorf("StopServiceDeployment requests: %q", req)
	}
}

func TestRolloutDeploy(t *testing.T) {
	s := fakeECS(t)
	s.On("RegisterTaskDefinition", ecstest.OK(fmt.Sprintf(`{"taskDefinition": {"taskDefinitionArn": %q, "family": "app", "revision": 7}}`, tdNew)))
	s.On("UpdateService", ecstest.OK(fmt.Sprintf(`{"service": {"serviceName": "app", "currentServiceDeployment": %q}}`, depARN)))
	s.On("DescribeServiceDeployments", deployment("SUCCESSFUL", "CLEAN_UP", 2, ""))

	code, stdout, stderr := runRollout(t, "deploy", "-taskdef", "../../taskdefs/fargate-proxy-app.json",
		"-image", "public.ecr.aws/gangway/proxy:1.2.3", "-env", "app:GREETING=hello", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK, "registered "+tdNew+"; updated service app", "succeeded:")
	reg := s.Requests("RegisterTaskDefinition")
	if len(reg) != 1 || !strings.Contains(reg[0], `"image":"public.ecr.aws/gangway/proxy:1.2.3"`) ||
		!strings.Contains(reg[0], `"environment":[{"name":"GREETING","value":"hello"}]`) || !strings.Contains(reg[0], `"stopTimeout":30`) {
		t.Errorf("RegisterTaskDefinition requests: %q", reg)
	}
	upd := s.Requests("UpdateService")
	if len(upd) != 1 || !strings.Contains(upd[0], `"taskDefinition":"`+tdNew+`"`) {
		t.Errorf("UpdateService requests: %q", upd)
	}
	if n := len(s.Requests("ListServiceDeployments")); n != 0 {
		t.Errorf("UpdateService named the deployment, yet ListServiceDeployments was called %d times", n)
	}
}

func TestRolloutDeployRefusesLintFindings(t *testing.T) {
	s := fakeECS(t)
	code, stdout, stderr := runRollout(t, "deploy", "-taskdef", brokenFixture(t, "slow", func(p map[string]any) {
		p["healthCheck"].(map[string]any)["interval"] = 30
	}))
	assertRollout(t, code, stdout, stderr, exitFailure, "healthCheck.interval = 30s", "not deploying: 1 lint finding(s)")
	if n := len(s.Requests("RegisterTaskDefinition")); n != 0 {
		t.Errorf("registered despite lint findings")
	}
}

func TestRolloutUsage(t *testing.T) {
	fakeECS(t)
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	if code := runMain(context.Background(), []string{"rollout", "-h"}, e); code != exitOK ||
		!strings.Contains(errOut.String(), "5  the deployment was rolled back") || !strings.Contains(errOut.String(), "6  timed out") {
		t.Errorf("rollout -h: exit %d\n%s", code, errOut.String())
	}
	for _, args := range [][]string{
		{"rollout"}, {"rollout", "sideways"}, {"rollout", "watch"}, {"rollout", "watch", "-service", "app", "-output", "xml"},
		{"rollout", "deploy", "-service", "app"}, {"rollout", "deploy", "-service", "app", "-taskdef", "x.json", "-env", "NOVALUE"},
	} {
		if code := runMain(context.Background(), args, e); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
