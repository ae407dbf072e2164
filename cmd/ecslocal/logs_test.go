package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// The runbooks' `aws logs filter-log-events` command, as they print it, finds the events the
// AWS CLI put: the pattern's terms pick them, the query keeps the last ones, text output.
func TestAWSCLILogs(t *testing.T) {
	endpoint := serve(t)
	aws, ok := cliFor(t, endpoint)
	ok("logs", "create-log-group", "--log-group-name", "/ecs/gangway-proxy")
	ok("logs", "put-retention-policy", "--log-group-name", "/ecs/gangway-proxy", "--retention-in-days", "30")
	groups := ok("logs", "describe-log-groups", "--log-group-name-prefix", "/ecs/")["logGroups"].([]any)
	if len(groups) != 1 || groups[0].(map[string]any)["retentionInDays"] != 30.0 {
		t.Fatalf("describe-log-groups: %v", groups)
	}
	now := time.Now().UnixMilli()
	// Each stream's events step ms apart from now, so that no two events of the group share
	// a timestamp (CloudWatch Logs does not say how it orders those).
	events := func(step int64, msgs ...string) string {
		var b []string
		for i, m := range msgs {
			b = append(b, fmt.Sprintf(`{"timestamp": %d, "message": %q}`, now+int64(i)*step, m))
		}
		return "[" + strings.Join(b, ",") + "]"
	}
	for _, s := range []struct {
		name string
		step int64
		msgs []string
	}{
		{"proxy/proxy/0a1b", 1, []string{"listening on :8443", "upstream app not ready: connection refused", "served 200"}},
		{"proxy/proxy/2c3d", 2, []string{"health check failed: 503", "an error in the config", "Error with a capital E"}},
	} {
		ok("logs", "create-log-stream", "--log-group-name", "/ecs/gangway-proxy", "--log-stream-name", s.name)
		ok("logs", "put-log-events", "--log-group-name", "/ecs/gangway-proxy", "--log-stream-name", s.name, "--log-events", events(s.step, s.msgs...))
	}
	if _, err := aws("logs", "create-log-stream", "--log-group-name", "/ecs/none", "--log-stream-name", "s"); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("create-log-stream in a missing group: %v, want ResourceNotFoundException", err)
	}
	if _, err := aws("logs", "filter-log-events", "--log-group-name", "/ecs/gangway-proxy", "--filter-pattern", `{ $.level = "error" }`); err == nil ||
		!strings.Contains(err.Error(), "InvalidParameterException") || !strings.Contains(err.Error(), "not supported by ecslocal") {
		t.Fatalf("filter-log-events with a JSON pattern: %v, want InvalidParameterException", err)
	}
	if _, err := aws("logs", "start-query", "--log-group-name", "/ecs/gangway-proxy", "--start-time", "0", "--end-time", "1", "--query-string", "fields @message"); err == nil ||
		!strings.Contains(err.Error(), "InvalidOperationException") || !strings.Contains(err.Error(), "StartQuery") {
		t.Fatalf("start-query: %v, want InvalidOperationException naming StartQuery", err)
	}

	// docs/runbooks/deployment-failed.md, word for word.
	const runbook = `aws logs filter-log-events --log-group-name "$PROXY_LOG_GROUP" \
  --start-time "$(( ($(date +%s) - 3600) * 1000 ))" --filter-pattern '?"not ready" ?failed ?error' \
  --query 'events[-20:].[logStreamName,message]' --output text`
	got := shell(t, endpoint, "PROXY_LOG_GROUP=/ecs/gangway-proxy", runbook)
	// Interleaved by timestamp: 2c3d's first event at now, 0a1b's second at now+1 ms, 2c3d's
	// second at now+2 ms.
	want := "proxy/proxy/2c3d\thealth check failed: 503\n" +
		"proxy/proxy/0a1b\tupstream app not ready: connection refused\n" +
		"proxy/proxy/2c3d\tan error in the config\n"
	if got != want {
		t.Errorf("the runbook's filter-log-events printed\n%s\nwant\n%s", got, want)
	}
}

// shell runs script with sh, where aws is the AWS CLI against endpoint, and returns its
// standard output.
func shell(t *testing.T, endpoint, env, script string) string {
	t.Helper()
	cli := awsCLI(t)
	var quoted []string
	for _, w := range cli {
		quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
	}
	cmd := exec.Command("sh", "-c", "aws() { "+strings.Join(quoted, " ")+` "$@" --endpoint-url "$ECSLOCAL_ENDPOINT"; }`+"\n"+script)
	cmd.Env = append(os.Environ(), env, "ECSLOCAL_ENDPOINT="+endpoint, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", script, err, stderr.String())
	}
	return string(out)
}

// A function's output reaches its LoggingConfig.LogGroup, which the runbooks read with
// `aws lambda get-function-configuration` and then filter-log-events, as they print them.
func TestAWSCLILambdaLogs(t *testing.T) {
	rie := ecslocaltest.LambdaRIE(t)
	code := ecslocaltest.ReadinessHook(t)
	endpoint := serve(t, "-lambda-rie", rie)
	_, ok := cliFor(t, endpoint)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer app.Close()
	ok("lambda", "create-function", "--function-name", "gangway-hook", "--runtime", "provided.al2023",
		"--handler", "bootstrap", "--role", "arn:aws:iam::000000000000:role/hook",
		"--zip-file", "fileb://"+zipBootstrap(t, code), "--logging-config", "LogFormat=Text,LogGroup=/gangway/hook",
		"--environment", "Variables={GANGWAY_READINESS_URL="+app.URL+"/ready,GANGWAY_PROBES=1}")
	event := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(event, []byte(`{"executionId": "e-1", "lifecycleStage": "POST_TEST_TRAFFIC_SHIFT",
		"executionDetails": {"serviceArn": "arn:aws:ecs:us-east-1:000000000000:service/app/web"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ok("lambda", "invoke", "--function-name", "gangway-hook", "--payload", "fileb://"+event, filepath.Join(t.TempDir(), "out.json"))

	// docs/runbooks/deployment-stuck.md, word for word; the events are copied from the
	// emulator's output as it answers, so the last lines may take a moment (bounded).
	const runbook = `HOOK_LOG_GROUP=$(aws lambda get-function-configuration --function-name "$HOOK_FUNCTION" \
  --query 'LoggingConfig.LogGroup' --output text)
aws logs filter-log-events --log-group-name "$HOOK_LOG_GROUP" \
  --start-time "$(( ($(date +%s) - 1800) * 1000 ))" --query 'events[-30:].message' --output text`
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = shell(t, endpoint, "HOOK_FUNCTION=gangway-hook", runbook); strings.Contains(got, "REPORT RequestId:") {
			break
		}
	}
	for _, want := range []string{"START RequestId:", `"hookStatus":"SUCCEEDED"`, "END RequestId:", "REPORT RequestId:"} {
		if !strings.Contains(got, want) {
			t.Errorf("the runbook's commands printed no %q:\n%s", want, got)
		}
	}
}
