package main

import (
	"archive/zip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ecslocaltest.RemoveReadinessHook()
	os.Exit(code)
}

// zipBootstrap writes a Lambda deployment package holding dir's bootstrap.
func zipBootstrap(t *testing.T, dir string) string {
	t.Helper()
	bootstrap, err := os.ReadFile(filepath.Join(dir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hook.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = w.Write(bootstrap)
	}
	if err == nil {
		err = zw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// The readiness hook deployed with `aws lambda create-function` runs under aws-lambda-rie
// and answers `aws lambda invoke`; alarms take `aws cloudwatch` commands.
func TestAWSCLILambdaAndAlarms(t *testing.T) {
	rie := ecslocaltest.LambdaRIE(t)
	code := ecslocaltest.ReadinessHook(t)
	endpoint := serve(t, "-lambda-rie", rie, "-time-scale", "0.5") // set-alarm-state holds for a (scaled) minute
	aws, ok := cliFor(t, endpoint)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	dir := t.TempDir()

	fn := ok("lambda", "create-function", "--function-name", "gangway-readiness", "--runtime", "provided.al2023",
		"--handler", "bootstrap", "--role", "arn:aws:iam::000000000000:role/hook", "--timeout", "30",
		"--zip-file", "fileb://"+zipBootstrap(t, code),
		"--environment", "Variables={GANGWAY_READINESS_URL="+app.URL+"/ready,GANGWAY_PROBES=1}")
	if fn["FunctionArn"] != "arn:aws:lambda:us-east-1:000000000000:function:gangway-readiness" || fn["State"] != "Active" {
		t.Fatalf("create-function: %v", fn)
	}
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, []byte(`{"executionId": "e-1", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
		"resourceArn": "arn:aws:ecs:us-east-1:000000000000:service-deployment/app/web/abc",
		"executionDetails": {"serviceArn": "arn:aws:ecs:us-east-1:000000000000:service/app/web", "testTrafficWeights": {}, "productionTrafficWeights": {}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "out.json")
	inv := ok("lambda", "invoke", "--function-name", "gangway-readiness", "--payload", "fileb://"+event, outFile)
	if inv["StatusCode"] != float64(200) || inv["FunctionError"] != nil {
		t.Fatalf("lambda invoke: %v", inv)
	}
	raw, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct{ HookStatus string }
	if err := json.Unmarshal(raw, &resp); err != nil || resp.HookStatus != "SUCCEEDED" {
		t.Fatalf("the hook answered %s (%v), want hookStatus SUCCEEDED", raw, err)
	}
	if _, err := aws("lambda", "invoke", "--function-name", "nope", outFile); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("invoke of a missing function: %v, want ResourceNotFoundException", err)
	}

	ok("cloudwatch", "put-metric-alarm", "--alarm-name", "web-target-5xx", "--namespace", "AWS/ApplicationELB",
		"--metric-name", "HTTPCode_Target_5XX_Count", "--statistic", "Sum", "--period", "60", "--evaluation-periods", "1",
		"--threshold", "5", "--comparison-operator", "GreaterThanOrEqualToThreshold", "--treat-missing-data", "notBreaching",
		"--dimensions", "Name=LoadBalancer,Value=app/web/1", "Name=TargetGroup,Value=targetgroup/web/2")
	alarms := ok("cloudwatch", "describe-alarms", "--alarm-names", "web-target-5xx")["MetricAlarms"].([]any)
	if len(alarms) != 1 || alarms[0].(map[string]any)["StateValue"] != "OK" {
		t.Fatalf("describe-alarms: %v, want the alarm OK (no data, notBreaching)", alarms)
	}
	ok("cloudwatch", "set-alarm-state", "--alarm-name", "web-target-5xx", "--state-value", "ALARM", "--state-reason", "test")
	if a := ok("cloudwatch", "describe-alarms", "--state-value", "ALARM")["MetricAlarms"].([]any); len(a) != 1 {
		t.Fatalf("describe-alarms --state-value ALARM after set-alarm-state: %v", a)
	}
	if _, err := aws("cloudwatch", "put-metric-alarm", "--alarm-name", "bad", "--namespace", "AWS/ApplicationELB",
		"--metric-name", "RequestCount", "--statistic", "Sum", "--period", "45", "--evaluation-periods", "1",
		"--threshold", "1", "--comparison-operator", "GreaterThanThreshold"); err == nil || !strings.Contains(err.Error(), "InvalidParameterValue") {
		t.Fatalf("put-metric-alarm --period 45: %v, want InvalidParameterValue", err)
	}
	ok("cloudwatch", "delete-alarms", "--alarm-names", "web-target-5xx")
	if a := ok("cloudwatch", "describe-alarms")["MetricAlarms"].([]any); len(a) != 0 {
		t.Fatalf("describe-alarms after delete-alarms: %v", a)
	}
}
