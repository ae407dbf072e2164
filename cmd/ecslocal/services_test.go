package main

import (
	"archive/zip"
	"debug/elf"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
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

// ecslocal -template loads the synthesized template; `aws cloudformation describe-stacks`
// reads its outputs, which name resources the other APIs describe; create-stack takes a
// template body.
func TestAWSCLITemplate(t *testing.T) {
	matches, _ := filepath.Glob("../../cdk/cdk.out/*.template.json")
	if len(matches) == 0 {
		if os.Getenv("GANGWAY_ECSLOCAL_REQUIRE") != "" {
			t.Fatal("no cdk/cdk.out/*.template.json: run make synth")
		}
		t.Skip("no cdk/cdk.out/*.template.json (make synth writes it)")
	}
	rie := ecslocaltest.LambdaRIE(t)
	endpoint := serve(t, "-lambda-rie", rie, "-template", matches[0], "-stack-name", "Gangway")
	aws, ok := cliFor(t, endpoint)

	stacks := ok("cloudformation", "describe-stacks", "--stack-name", "Gangway")["Stacks"].([]any)
	st := stacks[0].(map[string]any)
	if st["StackStatus"] != "CREATE_COMPLETE" {
		t.Fatalf("stack %v", st)
	}
	out := map[string]string{}
	for _, o := range st["Outputs"].([]any) {
		m := o.(map[string]any)
		out[m["OutputKey"].(string)] = m["OutputValue"].(string)
	}
	svc := ok("ecs", "describe-services", "--cluster", out["ClusterName"], "--services", out["ServiceName"])["services"].([]any)
	if len(svc) != 1 || svc[0].(map[string]any)["serviceArn"] != out["ServiceArn"] {
		t.Fatalf("describe-services of the outputs' cluster and service: %v", svc)
	}
	alarms := ok(append([]string{"cloudwatch", "describe-alarms", "--alarm-names"}, strings.Split(out["AlarmNames"], ",")...)...)["MetricAlarms"].([]any)
	if len(alarms) != 7 {
		t.Fatalf("describe-alarms of the outputs' AlarmNames: %d alarms", len(alarms))
	}
	res := ok("cloudformation", "describe-stack-resources", "--stack-name", "Gangway")["StackResources"].([]any)
	ignored := 0
	for _, r := range res {
		if reason, _ := r.(map[string]any)["ResourceStatusReason"].(string); strings.Contains(reason, "accepted and ignored") {
			ignored++
		}
	}
	if ignored == 0 || ignored == len(res) {
		t.Fatalf("%d of %d resources accepted and ignored", ignored, len(res))
	}

	// The hook function runs from its cdk.out asset, when the asset was built for this
	// machine (make synth CDK_HOOK_ARCH=amd64 on x86-64; the construct's default is arm64).
	fn := ok("lambda", "get-function", "--function-name", out["HookFunctionName"])
	if fn["Configuration"].(map[string]any)["Runtime"] != "provided.al2023" {
		t.Fatalf("get-function %s: %v", out["HookFunctionName"], fn)
	}
	code := strings.TrimPrefix(fn["Code"].(map[string]any)["Location"].(string), "file://")
	if hostArch(t, filepath.Join(code, "bootstrap")) {
		// Its readiness URL is the load balancer's DNS name, which resolves nowhere here: the
		// hook answers IN_PROGRESS, which proves it ran with the template's environment.
		event := filepath.Join(t.TempDir(), "event.json")
		if err := os.WriteFile(event, []byte(`{"lifecycleStage": "POST_TEST_TRAFFIC_SHIFT", "executionDetails": {"serviceArn": "`+out["ServiceArn"]+`"}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		result := filepath.Join(t.TempDir(), "out.json")
		ok("lambda", "invoke", "--function-name", out["HookFunctionName"], "--payload", "fileb://"+event, result)
		raw, _ := os.ReadFile(result)
		if !strings.Contains(string(raw), `"hookStatus":"IN_PROGRESS"`) || !strings.Contains(string(raw), out["TestReadinessUrl"]) {
			t.Fatalf("the template's hook answered %s, want IN_PROGRESS probing %s", raw, out["TestReadinessUrl"])
		}
	} else {
		t.Logf("the hook asset %s is not built for %s (make synth CDK_HOOK_ARCH=%s): not invoked", code, runtime.GOARCH, runtime.GOARCH)
	}

	body := filepath.Join(t.TempDir(), "small.json")
	if err := os.WriteFile(body, []byte(`{"Resources": {"Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "small"}},
	  "Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"Cluster": {"Value": {"Fn::GetAtt": ["Cluster", "Arn"]}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ok("cloudformation", "create-stack", "--stack-name", "small", "--template-body", "file://"+body)
	ok("cloudformation", "wait", "stack-create-complete", "--stack-name", "small")
	small := ok("cloudformation", "describe-stacks", "--stack-name", "small")["Stacks"].([]any)[0].(map[string]any)
	if o := small["Outputs"].([]any)[0].(map[string]any); o["OutputValue"] != "arn:aws:ecs:us-east-1:000000000000:cluster/small" {
		t.Fatalf("small stack's output %v", o)
	}
	if _, err := aws("cloudformation", "create-stack", "--stack-name", "small", "--template-body", "file://"+body); err == nil || !strings.Contains(err.Error(), "AlreadyExistsException") {
		t.Fatalf("create-stack of an existing name: %v", err)
	}
	if _, err := aws("cloudformation", "describe-stacks", "--stack-name", "nope"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("describe-stacks of a missing stack: %v", err)
	}
}

// hostArch reports whether the ELF executable at path is for this machine's architecture.
func hostArch(t *testing.T, path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("the hook asset: %v", err)
	}
	defer f.Close()
	return map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH] == f.Machine
}
