package cfn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/gangway-ecs/gangway/internal/ecslocal/lambda"
	"github.com/gangway-ecs/gangway/internal/ecslocal/logs"
)

// AWS::Logs::LogGroup creates the group, with its retention; Ref is its name and Arn its ARN;
// a function's LoggingConfig.LogGroup names the group its output goes to.
func TestLogGroups(t *testing.T) {
	assets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(assets, "asset.hook"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(assets, "asset.hook", "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lg := logs.New(logs.Options{})
	fn := lambda.New(lambda.Options{Region: "us-east-1", Account: "000000000000", RIE: "/nonexistent/aws-lambda-rie"})
	t.Cleanup(func() { fn.Close() })
	s := New(Options{Region: "us-east-1", Account: "000000000000", Lambda: fn, Logs: lg})
	body := `{"Resources": {
	    "ProxyLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/ecs/gangway-proxy", "RetentionInDays": 30}},
	    "HookLogs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}},
	    "Hook": {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": "asset.hook"}, "Properties": {
	      "FunctionName": "hook", "Runtime": "provided.al2023", "Handler": "bootstrap",
	      "LoggingConfig": {"LogGroup": {"Ref": "HookLogs"}}}}},
	  "Outputs": {"Proxy": {"Value": {"Ref": "ProxyLogs"}}, "ProxyArn": {"Value": {"Fn::GetAtt": ["ProxyLogs", "Arn"]}},
	    "Hook": {"Value": {"Ref": "HookLogs"}}}}`
	st, err := s.Create(context.Background(), "stk", []byte(body), nil, assets)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range st.Outputs {
		out[o.OutputKey] = o.OutputValue
	}
	if out["Proxy"] != "/ecs/gangway-proxy" || out["ProxyArn"] != "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/gangway-proxy:*" ||
		!strings.HasPrefix(out["Hook"], "stk-HookLogs-") {
		t.Errorf("outputs %v", out)
	}
	groups, err := lg.DescribeLogGroups(context.Background(), &cwl.DescribeLogGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	retention := map[string]int32{}
	for _, g := range groups.LogGroups {
		retention[aws.ToString(g.LogGroupName)] = aws.ToInt32(g.RetentionInDays)
	}
	if len(retention) != 2 || retention["/ecs/gangway-proxy"] != 30 || retention[out["Hook"]] != 7 {
		t.Errorf("log groups %v", retention)
	}
	if fns := fn.Functions(); len(fns) != 1 || fns[0].LogGroup != out["Hook"] {
		t.Errorf("functions %+v, want hook logging to %s", fns, out["Hook"])
	}

	// A group that exists already fails the stack, as on AWS.
	if _, err := s.Create(context.Background(), "again", []byte(`{"Resources": {"L": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/ecs/gangway-proxy"}}}}`), nil, ""); err == nil ||
		!strings.Contains(err.Error(), "ResourceAlreadyExistsException") {
		t.Errorf("a second group of the name: %v", err)
	}
}
