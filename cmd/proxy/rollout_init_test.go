package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
	"github.com/gangway-ecs/gangway/internal/probecmd"
)

// runInit runs `proxy rollout init` for service app of cluster prod (init does not watch, so
// it takes no -interval).
func runInit(t *testing.T, args ...string) (code probecmd.ExitCode, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code = runMain(context.Background(), append([]string{"rollout", "init", "-cluster", "prod", "-service", "app"}, args...), e)
	return code, out.String(), errOut.String()
}

func xmlFile(t *testing.T, path string) ecstest.Response {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ecstest.Raw(200, "text/xml", string(data))
}

// TestRolloutInit reads a live service from recorded answers of ECS and Elastic Load
// Balancing, and checks that `proxy lint` and `proxy rollout diff` read the files it writes:
// lint must report the recorded target group's and service's own settings (the ALB's default
// interval, timeout and healthy threshold, minimumHealthyPercent 50), and diff must find
// the task definition file equal to the one the service runs.
func TestRolloutInit(t *testing.T) {
	const tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app/0123456789abcdef"
	s := fakeECS(t)
	s.On("DescribeServices", ecstest.File(t, recorded+"describe-services-app.json"))
	s.On("DescribeTaskDefinition", ecstest.File(t, recorded+"describe-task-definition-app6.json"))
	s.On("DescribeTargetGroups", xmlFile(t, recorded+"describe-target-groups-app.xml"))
	s.On("DescribeTargetGroupAttributes", xmlFile(t, recorded+"describe-target-group-attributes-app.xml"))
	dir := filepath.Join(t.TempDir(), "app")

	code, stdout, stderr := runInit(t, "-dir", dir)
	assertRollout(t, code, stdout, stderr, exitOK,
		"wrote "+dir+"/taskdef.json: task definition gangway-app:6",
		"wrote "+dir+"/target-group.json: target group "+tg,
		"next: proxy lint -service "+dir+"/service.json -target-group "+dir+"/target-group.json "+dir+"/taskdef.json")
	if req := s.Requests("DescribeTargetGroups"); len(req) != 1 || !strings.Contains(req[0], "0123456789abcdef") {
		t.Errorf("DescribeTargetGroups requests: %q", req)
	}
	service, err := os.ReadFile(filepath.Join(dir, "service.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"serviceName": "app"`, `"minimumHealthyPercent": 50`, `"healthCheckGracePeriodSeconds": 30`} {
		if !bytes.Contains(service, []byte(want)) {
			t.Errorf("service.json lacks %s:\n%s", want, service)
		}
	}
	for _, noise := range []string{`"events"`, `"deployments"`, `"runningCount"`, `""`} {
		if bytes.Contains(service, []byte(noise)) {
			t.Errorf("service.json keeps %s, which changes with every deployment", noise)
		}
	}

	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code = runMain(context.Background(), []string{"lint", "-service", filepath.Join(dir, "service.json"),
		"-target-group", filepath.Join(dir, "target-group.json"), filepath.Join(dir, "taskdef.json")}, e)
	if code != exitFailure {
		t.Errorf("lint on the written files: exit %d, want %d (findings)\n%s%s", code, exitFailure, out.String(), errOut.String())
	}
	for _, want := range []string{"30s × 2 + 5s = 1m5s", "10s + 5 × 30s", "minimumHealthyPercent = 50"} {
		if !strings.Contains(out.String()+errOut.String(), want) {
			t.Errorf("lint does not report %q: it did not read the written files\n%s%s", want, out.String(), errOut.String())
		}
	}

	code, stdout, stderr = runRollout(t, "diff", "-taskdef", filepath.Join(dir, "taskdef.json"))
	assertRollout(t, code, stdout, stderr, exitOK, "no difference")

	// A second run keeps what the first wrote (it may have been edited since).
	if err := os.WriteFile(filepath.Join(dir, "taskdef.json"), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runInit(t, "-dir", dir)
	assertRollout(t, code, stdout, stderr, exitFailure, "taskdef.json exists: pass -force")
	if data, _ := os.ReadFile(filepath.Join(dir, "taskdef.json")); string(data) != "edited" {
		t.Errorf("init without -force overwrote taskdef.json")
	}
}
