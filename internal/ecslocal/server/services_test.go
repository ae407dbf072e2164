package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/ecslocal/cloudwatch"
)

// named answers with its name and the form's Action, if any: which service a request reached.
type named string

func (n named) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, string(n)+" "+r.PostForm.Get("Action"))
}

// Lambda's paths, CloudWatch's targets and RPC v2 CBOR path, CloudWatch Logs' targets and
// CloudFormation's version reach their services; ECS and ELBv2 requests still reach theirs.
func TestOtherServicesDispatch(t *testing.T) {
	if cloudWatchCBORPath != cloudwatch.CBORPathPrefix {
		t.Fatalf("CloudWatch's RPC v2 CBOR path: %q here, %q in its package", cloudWatchCBORPath, cloudwatch.CBORPathPrefix)
	}
	h := New(struct{}{}, struct{}{}, slog.New(slog.DiscardHandler))
	h.SetLambda(named("lambda"))
	h.SetCloudWatch(named("cloudwatch"))
	h.SetCloudFormation(named("cloudformation"))
	h.SetLogs(struct{}{}) // no operation implemented
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(method, path, contentType, target, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	formType := "application/x-www-form-urlencoded"
	for _, c := range []struct{ name, method, path, contentType, target, body, want string }{
		{"Lambda Invoke", "POST", "/2015-03-31/functions/hook/invocations", "application/json", "", "{}", "lambda "},
		{"Lambda ListFunctions", "GET", "/2015-03-31/functions/", "", "", "", "lambda "},
		{"CloudWatch", "POST", "/", "application/x-amz-json-1.0", "GraniteServiceVersion20100801.DescribeAlarms", "{}", "cloudwatch "},
		{"CloudWatch, RPC v2 CBOR", "POST", cloudWatchCBORPath + "DescribeAlarms", "application/cbor", "", "\xa0", "cloudwatch "},
		{"CloudFormation", "POST", "/", formType, "", url.Values{"Action": {"DescribeStacks"}, "Version": {"2010-05-15"}}.Encode(), "cloudformation DescribeStacks"},
		{"CloudWatch Logs, not implemented", "POST", "/", "application/x-amz-json-1.1", logsTargetPrefix + "StartQuery", "{}",
			`{"__type":"InvalidOperationException","message":"ecslocal does not implement the Amazon CloudWatch Logs operation StartQuery"}`},
		{"CloudWatch Logs, unknown", "POST", "/", "application/x-amz-json-1.1", logsTargetPrefix + "LaunchRocket", "{}", "UnknownOperationException"},
		{"ECS", "POST", "/", "application/x-amz-json-1.1", ecsTargetPrefix + "LaunchRocket", "{}", "UnknownOperationException"},
		{"ELBv2", "POST", "/", formType, "", url.Values{"Action": {"LaunchRocket"}, "Version": {elbVersion}}.Encode(), "<Code>InvalidAction</Code>"},
	} {
		if got := do(c.method, c.path, c.contentType, c.target, c.body); !strings.Contains(got, c.want) {
			t.Errorf("%s: answered %q, want %q", c.name, got, c.want)
		}
	}
}
