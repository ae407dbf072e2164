package main

// The Service Deployments API cannot run here: moto does not implement it and there is no AWS
// account. These tests drive the real command, with real aws-sdk-go-v2 clients configured from
// the environment, against recorded ECS responses served on 127.0.0.1 (internal/ecs/ecstest;
// the larger recordings are in internal/ecs/testdata/rollout). The fake stands at the AWS API
// boundary, so everything from flag parsing through the SDK's signing, retries and
// deserialization runs as it would against ECS.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
	"github.com/gangway-ecs/gangway/internal/probecmd"
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

func runRollout(t *testing.T, args ...string) (code probecmd.ExitCode, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	base := []string{"rollout", args[0], "-cluster", "prod", "-service", "app"}
	if args[0] != "diff" { // diff does not watch
		base = append(base, "-interval", "10ms")
	}
	code = runMain(context.Background(), append(base, args[1:]...), e)
	return code, out.String(), errOut.String()
}

func assertRollout(t *testing.T, code probecmd.ExitCode, stdout, stderr string, wantCode probecmd.ExitCode, says ...string) {
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
		deployment("IN_PROGRESS", "SCALE_UP", 0, `, "deploymentCircuitBreaker": {"status": "MONITORING", "failureCount": 2, "threshold": 3},
			"alarms": {"status": "DISABLED"}`),
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
	// A DISABLED alarms record names no alarm: nothing is watched, and the line says only that.
	if !strings.Contains(stdout, "  alarms DISABLED\n") {
		t.Errorf("want the line \"alarms DISABLED\" alone:\n%s", stdout)
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
		ExitCode             probecmd.ExitCode
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
		deployment("IN_PROGRESS", "SCALE_UP", 1, ""), // read by rollback: still in progress, so it is stopped
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
		"-image", "ghcr.io/gangway-ecs/gangway-proxy:v1.2.3", "-env", "app:GREETING=hello", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK, "registered "+tdNew+"; updated service app", "succeeded:")
	reg := s.Requests("RegisterTaskDefinition")
	if len(reg) != 1 || !strings.Contains(reg[0], `"image":"ghcr.io/gangway-ecs/gangway-proxy:v1.2.3"`) ||
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

// ECS refusing the task definition itself (RegisterTaskDefinition's ClientException, or
// InvalidParameterException) is an answer about the change: exit 1, with ECS's message; the
// service is not touched.
func TestRolloutDeployRejectedTaskDefinition(t *testing.T) {
	for _, code := range []string{"ClientException", "InvalidParameterException"} {
		t.Run(code, func(t *testing.T) {
			s := fakeECS(t)
			s.On("RegisterTaskDefinition", ecstest.Error(400, code, "Container.image should not be null or empty."))
			code, stdout, stderr := runRollout(t, "deploy", "-taskdef", "../../taskdefs/fargate-proxy-app.json", "-timeout", "30s")
			assertRollout(t, code, stdout, stderr, exitFailure, "RegisterTaskDefinition gangway-app", "ECS refused the task definition", "Container.image should not be null or empty.")
			if n := len(s.Requests("UpdateService")); n != 0 {
				t.Errorf("UpdateService called %d times after ECS refused the task definition", n)
			}
		})
	}
	// A 5xx from the same call holds no verdict on the task definition.
	s := fakeECS(t)
	s.Default("RegisterTaskDefinition", ecstest.Error(500, "ServerException", "internal error"))
	code, stdout, stderr := runRollout(t, "deploy", "-taskdef", "../../taskdefs/fargate-proxy-app.json", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitUnreached, "ServerException")
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
		!strings.Contains(errOut.String(), "5  the deployment was rolled back") || !strings.Contains(errOut.String(), "6  timed out") ||
		!strings.Contains(errOut.String(), "7  superseded") || !strings.Contains(errOut.String(), "diff       show how") {
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

const (
	dep8     = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/app/dep8"
	revNext  = "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/app/rev8"
	tdOther  = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:8"
	recorded = "../../internal/ecs/testdata/rollout/"
)

// stoppedBy records dep7 stopped by a second UpdateService, and dep8, the deployment that
// stopped it, whose target revision runs taskDefinition.
func stoppedBy(s *ecstest.Server, taskDefinition string) {
	s.OnBody("DescribeServiceDeployments", "dep7", ecstest.OK(fmt.Sprintf(`{"serviceDeployments": [{
		"serviceDeploymentArn": %q, "status": "STOPPED", "createdAt": 1700000000, "startedAt": 1700000000,
		"statusReason": "Service deployment stopped because a new deployment was started.",
		"targetServiceRevision": {"arn": %q, "requestedTaskCount": 2, "runningTaskCount": 1, "pendingTaskCount": 0},
		"sourceServiceRevisions": [{"arn": %q, "requestedTaskCount": 0, "runningTaskCount": 2}]}]}`, depARN, revNew, revOld)))
	s.On("ListServiceDeployments", ecstest.OK(fmt.Sprintf(`{"serviceDeployments": [
		{"serviceDeploymentArn": %q, "status": "STOPPED", "createdAt": 1700000000, "targetServiceRevisionArn": %q},
		{"serviceDeploymentArn": %q, "status": "IN_PROGRESS", "createdAt": 1700000100, "targetServiceRevisionArn": %q}]}`,
		depARN, revNew, dep8, revNext)))
	s.OnBody("DescribeServiceRevisions", "rev8", ecstest.OK(fmt.Sprintf(`{"serviceRevisions": [
		{"serviceRevisionArn": %q, "taskDefinition": %q, "createdAt": 1700000100}]}`, revNext, taskDefinition)))
}

// A second UpdateService stops the first deployment (STOPPED). When the newer deployment ships
// the task definition that deploy registered, the watch follows it to its end.
func TestRolloutDeploySupersededSameTaskDefinition(t *testing.T) {
	s := fakeECS(t)
	s.On("RegisterTaskDefinition", ecstest.OK(fmt.Sprintf(`{"taskDefinition": {"taskDefinitionArn": %q}}`, tdNew)))
	s.On("UpdateService", ecstest.OK(fmt.Sprintf(`{"service": {"serviceName": "app", "currentServiceDeployment": %q}}`, depARN)))
	stoppedBy(s, tdNew)
	s.OnBody("DescribeServiceDeployments", "dep8", ecstest.OK(fmt.Sprintf(`{"serviceDeployments": [{
		"serviceDeploymentArn": %q, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP", "createdAt": 1700000100,
		"targetServiceRevision": {"arn": %q, "requestedTaskCount": 2, "runningTaskCount": 2}}]}`, dep8, revNext)))

	code, stdout, stderr := runRollout(t, "deploy", "-taskdef", recorded+"taskdef-app.json", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK,
		"deployment "+depARN+" was superseded by "+dep8+", which deploys the same task definition app:7; following it",
		"deployment "+dep8+" SUCCESSFUL",
		"succeeded: deployment "+dep8+" completed")
	// The successor is looked for among deployments created since the stopped one.
	if req := s.Requests("ListServiceDeployments"); len(req) != 1 || !strings.Contains(req[0], `"createdAt":{"after":1700000000`) {
		t.Errorf("ListServiceDeployments requests: %q", req)
	}
}

// When the newer deployment ships another task definition, the change watched will never ship:
// a distinct outcome and exit code, not a failure.
func TestRolloutWatchSupersededOtherTaskDefinition(t *testing.T) {
	s := fakeECS(t)
	stoppedBy(s, tdOther)
	code, stdout, stderr := runRollout(t, "watch", "-deployment", depARN, "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitSuperseded,
		"superseded by "+dep8+", which deploys app:8 instead of app:7")
	if strings.Contains(stderr, "stopped:") {
		t.Errorf("a superseded deployment is reported as stopped:\n%s", stderr)
	}

	// JSON output names the outcome.
	s2 := fakeECS(t)
	stoppedBy(s2, tdOther)
	code, stdout, _ = runRollout(t, "watch", "-deployment", depARN, "-output", "json", "-timeout", "30s")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitSuperseded || !strings.Contains(lines[len(lines)-1], `"outcome":"superseded"`) || !strings.Contains(lines[len(lines)-1], `"exitCode":7`) {
		t.Errorf("exit %d, last line %s", code, lines[len(lines)-1])
	}
}

// A deployment stopped with no newer one (StopServiceDeployment ABORT, say) is still a failure.
func TestRolloutWatchStoppedAlone(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments", deployment("STOPPED", "SCALE_UP", 1, `, "createdAt": 1700000000, "statusReason": "Stopped by user."`))
	s.On("ListServiceDeployments", ecstest.OK(fmt.Sprintf(`{"serviceDeployments": [{"serviceDeploymentArn": %q, "status": "STOPPED", "createdAt": 1700000000}]}`, depARN)))
	code, stdout, stderr := runRollout(t, "watch", "-deployment", depARN, "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitFailure, "stopped: Stopped by user.")
}

// Healthy tasks are counted per service revision: here the target and the source revision run
// the same task definition (a forced new deployment), and ECS names each task's revision in
// startedBy ("ecs-svc/<revision ID>").
func TestRolloutWatchHealthyPerRevision(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceRevisions", ecstest.OK(fmt.Sprintf(`{"serviceRevisions": [
		{"serviceRevisionArn": %q, "taskDefinition": %q}, {"serviceRevisionArn": %q, "taskDefinition": %q}]}`, revNew, tdNew, revOld, tdNew)))
	s.On("DescribeServiceDeployments", deployment("SUCCESSFUL", "CLEAN_UP", 1, ""))
	s.OnBody("ListTasks", "RUNNING", ecstest.OK(`{"taskArns": ["arn:aws:ecs:us-east-1:123456789012:task/prod/t1"]}`))
	s.OnBody("DescribeTasks", "t1", ecstest.OK(fmt.Sprintf(`{"tasks": [
		{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/t1", "taskDefinitionArn": %[1]q, "startedBy": "ecs-svc/rev7", "healthStatus": "HEALTHY"},
		{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/t2", "taskDefinitionArn": %[1]q, "startedBy": "ecs-svc/rev6", "healthStatus": "HEALTHY"},
		{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/t3", "taskDefinitionArn": %[1]q, "startedBy": "ecs-svc/rev6", "healthStatus": "HEALTHY"},
		{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/t4", "taskDefinitionArn": %[1]q, "startedBy": "ecs-svc/rev6", "healthStatus": "UNHEALTHY"}]}`, tdNew)))
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK,
		"target app:7: running 1/2, pending 1, healthy 1",
		"source app:7: running 2/2, pending 0, healthy 2")
}

// An endpoint that answers 5xx with an HTML page (a proxy in front of a wrong endpoint) ends
// the watch at once with the page's first line; a JSON 5xx from ECS is still retried.
func TestRolloutWatchNonJSON5xx(t *testing.T) {
	s := fakeECS(t)
	page, err := os.ReadFile(recorded + "bad-gateway.html")
	if err != nil {
		t.Fatal(err)
	}
	s.On("DescribeServiceDeployments",
		ecstest.Error(500, "ServerException", "Service Unavailable. Please try again later."),
		ecstest.Raw(502, "text/html", string(page)))
	start := time.Now()
	code, stdout, stderr := runRollout(t, "watch", "-deployment", depARN, "-timeout", "5s")
	assertRollout(t, code, stdout, stderr, exitUnreached,
		"ECS API error, retrying", "ServerException",
		"api error: DescribeServiceDeployments: "+s.URL+` answered HTTP 502 with a body that is not an AWS error`,
		`"502 Bad Gateway"`)
	if n := len(s.Requests("DescribeServiceDeployments")); n != 2 {
		t.Errorf("DescribeServiceDeployments called %d times, want 2 (one retry of the JSON 5xx, none of the page)", n)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the watch took %s: it waited for the timeout", d)
	}

	// The same for a server that does not implement the operation and says so in plain text.
	s2 := fakeECS(t)
	s2.On("ListServiceDeployments", ecstest.Raw(501, "text/plain", "\nnot implemented: ListServiceDeployments\nsee the emulator's docs\n"))
	code, stdout, stderr = runRollout(t, "watch", "-timeout", "5s")
	assertRollout(t, code, stdout, stderr, exitUnreached, `answered HTTP 501`, `"not implemented: ListServiceDeployments"`)
}

// AWS refusing expired session credentials ends the command at once, in the AWS CLI's words.
func TestRolloutExpiredCredentials(t *testing.T) {
	s := fakeECS(t)
	s.On("ListServiceDeployments", ecstest.Error(403, "ExpiredTokenException", "The security token included in the request is expired"))
	code, stdout, stderr := runRollout(t, "watch", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitUnreached,
		"api error: An error occurred (ExpiredTokenException) when calling the ListServiceDeployments operation: The security token included in the request is expired")
	if n := len(s.Requests("ListServiceDeployments")); n != 1 {
		t.Errorf("ListServiceDeployments called %d times", n)
	}
}

// -until returns 0 once the deployment reaches the stage, or a later one (a poll can miss a
// short stage), while it is still in progress.
func TestRolloutWatchUntilStage(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments",
		deployment("IN_PROGRESS", "SCALE_UP", 1, ""),
		deployment("IN_PROGRESS", "BAKE_TIME", 2, ""))
	code, stdout, stderr := runRollout(t, "watch", "-until", "POST_PRODUCTION_TRAFFIC_SHIFT", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK,
		"reached: deployment "+depARN+" reached stage BAKE_TIME (ECS carries on): target revision app:7 has 2/2 tasks running")
	if n := len(s.Requests("DescribeServiceDeployments")); n != 2 {
		t.Errorf("DescribeServiceDeployments called %d times, want 2", n)
	}

	// A rollback passing through the stage does not count.
	s2 := fakeECS(t)
	s2.On("DescribeServiceDeployments",
		deployment("ROLLBACK_IN_PROGRESS", "BAKE_TIME", 0, ""),
		deployment("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, `, "rollback": {"reason": "alarm"}`))
	code, stdout, stderr = runRollout(t, "watch", "-until", "BAKE_TIME", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitRolledBack, "rolled back: alarm")

	// The stage name is checked against ECS's list.
	code, stdout, stderr = runRollout(t, "watch", "-until", "BAKE")
	assertRollout(t, code, stdout, stderr, exitUsage, `-until: unknown lifecycle stage "BAKE": want one of RECONCILE_SERVICE,`, "BAKE_TIME, CLEAN_UP")
}

// rollback of a completed deployment: it can no longer be stopped, so the service is pointed
// back at the previous revision's task definition, and the new deployment is watched.
func TestRolloutRollbackCompleted(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServices", ecstest.OK(fmt.Sprintf(`{"services": [{"serviceName": "app", "currentServiceDeployment": %q}]}`, depARN)))
	s.OnBody("DescribeServiceDeployments", "dep7", deployment("SUCCESSFUL", "CLEAN_UP", 2, ""))
	s.On("UpdateService", ecstest.OK(fmt.Sprintf(`{"service": {"serviceName": "app", "currentServiceDeployment": %q}}`, dep8)))
	s.OnBody("DescribeServiceRevisions", "rev8", ecstest.OK(fmt.Sprintf(`{"serviceRevisions": [{"serviceRevisionArn": %q, "taskDefinition": %q}]}`, revNext, tdOld)))
	s.OnBody("DescribeServiceDeployments", "dep8", ecstest.OK(fmt.Sprintf(`{"serviceDeployments": [{
		"serviceDeploymentArn": %q, "status": "SUCCESSFUL", "lifecycleStage": "CLEAN_UP",
		"targetServiceRevision": {"arn": %q, "requestedTaskCount": 2, "runningTaskCount": 2},
		"sourceServiceRevisions": [{"arn": %q, "requestedTaskCount": 0, "runningTaskCount": 0}]}]}`, dep8, revNext, revNew)))

	code, stdout, stderr := runRollout(t, "rollback", "-timeout", "30s")
	assertRollout(t, code, stdout, stderr, exitOK,
		"deployment "+depARN+" had completed; redeploying the previous task definition "+tdOld+" in place of app:7 (deployment "+dep8+")",
		"target app:6: running 2/2",
		"succeeded: deployment "+dep8+" completed")
	if upd := s.Requests("UpdateService"); len(upd) != 1 || !strings.Contains(upd[0], `"taskDefinition":"`+tdOld+`"`) {
		t.Errorf("UpdateService requests: %q", upd)
	}
	if n := len(s.Requests("StopServiceDeployment")); n != 0 {
		t.Errorf("StopServiceDeployment called on a completed deployment")
	}
}

// A deployment that already rolled back left nothing to roll back.
func TestRolloutRollbackNothingToDo(t *testing.T) {
	s := fakeECS(t)
	s.On("DescribeServiceDeployments", deployment("ROLLBACK_SUCCESSFUL", "CLEAN_UP", 0, ""))
	code, stdout, stderr := runRollout(t, "rollback", "-deployment", depARN)
	assertRollout(t, code, stdout, stderr, exitFailure, "deployment "+depARN+" is ROLLBACK_SUCCESSFUL: the service does not run its revision, so there is nothing to roll back")
	if n := len(s.Requests("UpdateService")) + len(s.Requests("StopServiceDeployment")); n != 0 {
		t.Errorf("rollback changed the service")
	}
}

// diff compares the file (with -image applied) to what the service runs, after both are
// normalized: the read-only members of DescribeTaskDefinition, the order of containers and
// environment variables, and what ECS fills in (hostPort, empty lists) are no difference.
func TestRolloutDiff(t *testing.T) {
	const running = "arn:aws:ecs:us-east-1:123456789012:task-definition/gangway-app:6"
	s := fakeECS(t)
	s.On("DescribeServices", ecstest.OK(fmt.Sprintf(`{"services": [{"serviceName": "app", "taskDefinition": %q}]}`, running)))
	s.On("DescribeTaskDefinition", ecstest.File(t, recorded+"describe-task-definition-app6.json"))
	code, stdout, stderr := runRollout(t, "diff", "-taskdef", recorded+"taskdef-app.json", "-image", "ghcr.io/gangway-ecs/gangway-proxy:v1.2.3")
	want := "--- " + running + " (service app)\n+++ " + recorded + "taskdef-app.json\n"
	assertRollout(t, code, stdout, stderr, exitOK, want,
		`-      "image": "ghcr.io/gangway-ecs/gangway-proxy:v1.2.2",`,
		`+      "image": "ghcr.io/gangway-ecs/gangway-proxy:v1.2.3",`,
		`-          "value": "10s"`,
		`+          "value": "12s"`)
	var changed []string
	for _, l := range strings.Split(stdout, "\n") {
		if (strings.HasPrefix(l, "-") || strings.HasPrefix(l, "+")) && !strings.HasPrefix(l, "---") && !strings.HasPrefix(l, "+++") {
			changed = append(changed, l)
		}
	}
	if len(changed) != 4 {
		t.Errorf("want 4 changed lines (image and one variable), got %d:\n%s", len(changed), stdout)
	}
	if req := s.Requests("DescribeTaskDefinition"); len(req) != 1 || !strings.Contains(req[0], running) || !strings.Contains(req[0], `"include":["TAGS"]`) {
		t.Errorf("DescribeTaskDefinition requests: %q", req)
	}

	s2 := fakeECS(t)
	s2.On("DescribeServices", ecstest.OK(fmt.Sprintf(`{"services": [{"serviceName": "app", "taskDefinition": %q}]}`, running)))
	s2.On("DescribeTaskDefinition", ecstest.File(t, recorded+"describe-task-definition-app6-same.json"))
	code, stdout, stderr = runRollout(t, "diff", "-taskdef", recorded+"taskdef-app.json")
	assertRollout(t, code, stdout, stderr, exitOK, "no difference: service app runs gangway-app:6, which matches "+recorded+"taskdef-app.json")
}

// With no credentials anywhere, every subcommand that calls AWS ends at once with the AWS
// CLI's message (before, the SDK's last resort, the EC2 instance metadata service, failed as a
// network error and the watch retried it until -timeout). The real binary runs with an
// environment that holds no credentials: empty key variables, empty shared files, and the
// instance metadata service disabled.
func TestRolloutMissingCredentialsProcess(t *testing.T) {
	proxyBin, _ := buildBinaries(t)
	s := ecstest.NewServer(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + s.URL,
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=",
		"AWS_SHARED_CREDENTIALS_FILE=" + empty, "AWS_CONFIG_FILE=" + empty,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	// The same with the instance metadata service enabled, as on a laptop, where it cannot be
	// reached: a network error that the watch took for a transient one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	imds := append(slices.Clone(env[:len(env)-1]), "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://"+l.Addr().String())
	for _, args := range [][]string{
		{"watch", "-service", "app", "-timeout", "60s", "imds"},
		{"watch", "-service", "app", "-timeout", "60s"},
		{"deploy", "-service", "app", "-taskdef", recorded + "taskdef-app.json", "-timeout", "60s"},
		{"rollback", "-service", "app", "-timeout", "60s"},
		{"rollback", "-service", "app", "-deployment", depARN, "-timeout", "60s"},
		{"diff", "-service", "app", "-taskdef", recorded + "taskdef-app.json"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, proxyBin, append([]string{"rollout"}, args...)...)
		cmd.Env = env
		if args[len(args)-1] == "imds" {
			cmd.Args, cmd.Env = cmd.Args[:len(cmd.Args)-1], imds
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || probecmd.ExitCode(ee.ExitCode()) != exitUnreached {
			t.Errorf("%s: %v, want exit %d\n%s", args[0], err, exitUnreached, stderr.String())
		}
		if !strings.Contains(stderr.String(), `Unable to locate credentials. You can configure credentials by running "aws configure".`) {
			t.Errorf("%s: stderr does not give the AWS CLI's message:\n%s", args[0], stderr.String())
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s took %s: missing credentials were retried", args[0], d)
		}
	}
	if n := len(s.Requests("ListServiceDeployments")) + len(s.Requests("DescribeServices")) + len(s.Requests("RegisterTaskDefinition")); n != 0 {
		t.Errorf("%d unsigned requests reached the endpoint", n)
	}
}

// TestRolloutDeployLintsLikeLint: deploy runs proxy lint's checks with the same target group,
// service and configuration files, so a split task whose configuration file the proxy would
// refuse, or whose target group or service breaks the budget, is not deployed; and it finds
// exactly what `proxy lint` finds.
func TestRolloutDeployLintsLikeLint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A data plane without control_plane_url: the proxy refuses it at start.
	badConfig := write("proxy.yaml", "services: proxy\n")
	slowTG := write("tg.json", `{"HealthCheckIntervalSeconds": 30, "HealthCheckTimeoutSeconds": 2, "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2}`)
	halfService := write("service.json", `{"healthCheckGracePeriodSeconds": 30, "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200, "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}`)
	const taskdef = "../../taskdefs/split-proxy.json"
	tests := []struct {
		name       string
		lint, flag []string // proxy lint's flags, and deploy's
		want       string
	}{
		{"configuration file", []string{"-config", badConfig}, []string{"-config", badConfig}, "control_plane_url"},
		{"target group", []string{"-target-group", slowTG}, []string{"-target-group", slowTG}, "HealthCheckIntervalSeconds"},
		{"service", []string{"-service", halfService}, []string{"-service-file", halfService}, "minimumHealthyPercent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lintOut, lintErr bytes.Buffer
			e := env{stdout: &lintOut, stderr: &lintErr, getenv: func(string) string { return "" }}
			if code := runMain(context.Background(), append(append([]string{"lint", "-container", "proxy"}, tt.lint...), taskdef), e); code != exitFailure {
				t.Fatalf("proxy lint %q = %d, want findings:\n%s%s", tt.lint, code, lintOut.String(), lintErr.String())
			}
			var findings, lines []string
			for line := range strings.Lines(lintOut.String()) {
				lines = append(lines, strings.TrimSpace(line))
				if !strings.Contains(line, ": not checked: ") {
					findings = append(findings, strings.TrimSpace(line))
				}
			}
			s := fakeECS(t)
			code, stdout, stderr := runRollout(t, append([]string{"deploy", "-taskdef", taskdef, "-container", "proxy"}, tt.flag...)...)
			assertRollout(t, code, stdout, stderr, exitFailure, tt.want, fmt.Sprintf("not deploying: %d lint finding(s)", len(findings)))
			for _, f := range lines {
				if !strings.Contains(stderr, f) {
					t.Errorf("proxy lint said %q; deploy did not:\n%s", f, stderr)
				}
			}
			if n := len(s.Requests("RegisterTaskDefinition")); n != 0 {
				t.Errorf("registered despite lint findings")
			}
		})
	}
}
