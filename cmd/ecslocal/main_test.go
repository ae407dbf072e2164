package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRefusesNonLoopbackAddress(t *testing.T) {
	err := run(context.Background(), []string{"-addr", "0.0.0.0:4580"}, os.Stderr, nil)
	if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("run -addr 0.0.0.0:4580: %v, want a usage error about loopback addresses", err)
	}
}

func TestRefusesScaleOutOfRange(t *testing.T) {
	for _, flag := range []string{"-health-scale", "-time-scale"} {
		for _, v := range []string{"0", "-1", "2"} {
			err := run(context.Background(), []string{"-no-containers", flag, v}, os.Stderr, nil)
			if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), flag) {
				t.Errorf("run %s %s: %v, want a usage error naming %s", flag, v, err, flag)
			}
		}
	}
}

// serve runs ecslocal on a free port of 127.0.0.1, with -no-containers and the extra flags,
// until the test ends and returns its endpoint URL.
func serve(t *testing.T, extra ...string) string {
	t.Helper()
	url, _ := start(t, extra...)
	return url
}

// awsCLI is the command line that runs the AWS CLI: $GANGWAY_AWS_CLI (make test-ecslocal
// sets it to the pinned CLI of scripts/moto-install.sh), else aws on PATH. Without either the
// test is skipped, saying why, unless the suite requires it (make test-ecslocal, or CI).
func awsCLI(t *testing.T) []string {
	if cli := strings.Fields(os.Getenv("GANGWAY_AWS_CLI")); len(cli) > 0 {
		return cli
	}
	path, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv("GANGWAY_ECSLOCAL_REQUIRE") != "" || os.Getenv("CI") == "true" {
			t.Fatalf("the AWS CLI is required here: %v", err)
		}
		t.Skip("the AWS CLI (aws) is not on PATH and GANGWAY_AWS_CLI is not set; `make test-ecslocal` provides it")
	}
	return []string{path}
}

// cliFor returns runners of the AWS CLI against endpoint, with dummy credentials and a
// configuration of its own: aws returns the CLI's error, ok fails the test on one.
func cliFor(t *testing.T, endpoint string) (aws func(args ...string) (map[string]any, error), ok func(args ...string) map[string]any) {
	cli := awsCLI(t)
	dir := t.TempDir()
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_PAGER=", "AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"))
	aws = func(args ...string) (map[string]any, error) {
		t.Helper()
		argv := append(append(cli[1:len(cli):len(cli)], args...), "--endpoint-url", endpoint, "--output", "json")
		cmd := exec.Command(cli[0], argv...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, errors.New(strings.TrimSpace(stderr.String()))
		}
		var v map[string]any
		if len(out) > 0 {
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("aws %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		return v, nil
	}
	ok = func(args ...string) map[string]any {
		t.Helper()
		v, err := aws(args...)
		if err != nil {
			t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
		}
		return v
	}
	return aws, ok
}

// TestAWSCLI drives ecslocal with the unmodified AWS CLI, as a user would.
func TestAWSCLI(t *testing.T) {
	aws, ok := cliFor(t, serve(t))
	dir := t.TempDir()
	taskdef := filepath.Join(dir, "taskdef.json")
	if err := os.WriteFile(taskdef, []byte(`{"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
		"cpu": "256", "memory": "512", "containerDefinitions": [{"name": "app", "image": "app:1", "essential": true,
		"portMappings": [{"containerPort": 8080}], "readonlyRootFilesystem": true,
		"healthCheck": {"command": ["CMD", "/healthcheck"], "interval": 5, "retries": 2}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	ok("ecs", "create-cluster", "--cluster-name", "app")
	td := ok("ecs", "register-task-definition", "--cli-input-json", "file://"+taskdef)
	if arn := td["taskDefinition"].(map[string]any)["taskDefinitionArn"]; arn != "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1" {
		t.Errorf("task definition ARN %v", arn)
	}
	tg := ok("elbv2", "create-target-group", "--name", "web", "--protocol", "HTTP", "--port", "8080", "--vpc-id", "vpc-1",
		"--target-type", "ip", "--health-check-path", "/ready", "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2")
	tgARN := tg["TargetGroups"].([]any)[0].(map[string]any)["TargetGroupArn"].(string)
	ok("elbv2", "modify-target-group-attributes", "--target-group-arn", tgARN, "--attributes", "Key=deregistration_delay.timeout_seconds,Value=5")
	ok("ecs", "create-service", "--cluster", "app", "--service-name", "api", "--task-definition", "web", "--desired-count", "2",
		"--launch-type", "FARGATE", "--network-configuration", "awsvpcConfiguration={subnets=[subnet-1]}",
		"--load-balancers", "targetGroupArn="+tgARN+",containerName=app,containerPort=8080",
		"--deployment-configuration", "deploymentCircuitBreaker={enable=true,rollback=true},minimumHealthyPercent=50")
	list := ok("ecs", "list-service-deployments", "--cluster", "app", "--service", "api")
	deployments := list["serviceDeployments"].([]any)
	if len(deployments) != 1 {
		t.Fatalf("list-service-deployments: %v", list)
	}
	arn := deployments[0].(map[string]any)["serviceDeploymentArn"].(string)
	d := ok("ecs", "describe-service-deployments", "--service-deployment-arns", arn)
	sd := d["serviceDeployments"].([]any)[0].(map[string]any)
	if sd["status"] != "IN_PROGRESS" || sd["deploymentCircuitBreaker"].(map[string]any)["threshold"] != 3.0 {
		t.Errorf("describe-service-deployments: %v", sd)
	}
	ok("elbv2", "register-targets", "--target-group-arn", tgARN, "--targets", "Id=198.18.0.2")
	h := ok("elbv2", "describe-target-health", "--target-group-arn", tgARN)
	th := h["TargetHealthDescriptions"].([]any)[0].(map[string]any)["TargetHealth"].(map[string]any)
	if th["State"] != "unused" || th["Reason"] != "Target.NotInUse" {
		t.Errorf("describe-target-health: %v", th)
	}
	if _, err := aws("ecs", "delete-cluster", "--cluster", "ghost"); err == nil || !strings.Contains(err.Error(), "ClusterNotFoundException") {
		t.Errorf("delete-cluster ghost: %v, want ClusterNotFoundException", err)
	}
	if _, err := aws("ecs", "create-capacity-provider", "--name", "cp", "--auto-scaling-group-provider", "autoScalingGroupArn=asg"); err == nil ||
		!strings.Contains(err.Error(), "(UnsupportedFeatureException) when calling the CreateCapacityProvider operation") {
		t.Errorf("create-capacity-provider: %v, want UnsupportedFeatureException naming the operation", err)
	}
}

// TestNeedsRoot runs ecslocal as an unprivileged user: it stops at once with an error that
// says what running tasks needs and how to do without.
func TestNeedsRoot(t *testing.T) {
	if os.Getenv("ECSLOCAL_TEST_UNPRIVILEGED") != "" {
		err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-state-dir", os.Getenv("ECSLOCAL_TEST_STATE")}, os.Stderr, nil)
		fmt.Println("error:", err)
		return
	}
	if os.Geteuid() != 0 {
		// An unprivileged run is the case itself.
		err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-state-dir", t.TempDir()}, os.Stderr, nil)
		checkNeedsRoot(t, err.Error())
		return
	}
	// The unprivileged user needs a copy of the test binary it can execute and a state
	// directory it can write.
	dir, err := os.MkdirTemp("", "ecslocal-unprivileged")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	state, bin := filepath.Join(dir, "state"), filepath.Join(dir, "ecslocal.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.Chmod(dir, 0o755), os.Mkdir(state, 0o777), os.Chmod(state, 0o777), os.WriteFile(bin, self, 0o755)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestNeedsRoot$")
	cmd.Env = append(os.Environ(), "ECSLOCAL_TEST_UNPRIVILEGED=1", "ECSLOCAL_TEST_STATE="+state)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running as uid 65534: %v\n%s", err, out)
	}
	checkNeedsRoot(t, string(out))
}

func checkNeedsRoot(t *testing.T, out string) {
	t.Helper()
	if !strings.Contains(out, "running tasks needs Linux and root") || !strings.Contains(out, "-no-containers") {
		t.Errorf("ecslocal without root said:\n%s\nwant the reason and -no-containers", out)
	}
}
