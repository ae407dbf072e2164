package ecsinput

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLowerFirst(t *testing.T) {
	for in, want := range map[string]string{
		"Cpu": "cpu", "ContainerDefinitions": "containerDefinitions", "EFSVolumeConfiguration": "efsVolumeConfiguration",
		"IPCMode": "ipcMode", "ID": "id", "family": "family", "": "",
	} {
		if got := lowerFirst(in); got != want {
			t.Errorf("lowerFirst(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRenderTaskDefinition(t *testing.T) {
	tpl := `{"Resources": {
	  "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
	  "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
	  "Task": {"Type": "AWS::ECS::TaskDefinition",
	    "Metadata": {"Gangway": {"longest-request": "1m0s", "cold-start": "40s"}},
	    "Properties": {
	      "Family": "web", "Cpu": "512", "ExecutionRoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
	      "ContainerDefinitions": [{
	        "Name": "proxy",
	        "LogConfiguration": {"LogDriver": "awslogs", "Options": {"awslogs-group": {"Ref": "Logs"}, "awslogs-region": {"Ref": "AWS::Region"}, "mode": "non-blocking"}},
	        "DockerLabels": {"Team": "payments"},
	        "Environment": [{"Name": "GANGWAY_UPSTREAM", "Value": {"Fn::Join": [":", ["127.0.0.1", "80"]]}}]
	      }]}},
	  "Blue": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {"HealthCheckIntervalSeconds": 5, "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "15"}]}},
	  "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {}}
	}}`
	r, err := Render([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.TaskDefinitions) != 1 || len(r.TargetGroups) != 1 || len(r.Services) != 0 {
		t.Fatalf("rendered %d task definitions, %d target groups, %d services", len(r.TaskDefinitions), len(r.TargetGroups), len(r.Services))
	}
	var td map[string]any
	if err := json.Unmarshal(r.TaskDefinitions["Task"], &td); err != nil {
		t.Fatal(err)
	}
	raw := string(r.TaskDefinitions["Task"])
	for _, want := range []string{
		`"family": "web"`, `"cpu": "512"`, `"executionRoleArn": "arn:aws:iam-role:us-east-1:123456789012:Role"`,
		`"awslogs-group": "Logs"`, `"awslogs-region": "us-east-1"`, `"logDriver": "awslogs"`,
		`"Team": "payments"`, `"name": "GANGWAY_UPSTREAM"`, `"value": "127.0.0.1:80"`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("task definition lacks %s:\n%s", want, raw)
		}
	}
	if got := strings.Join(r.LintFlags, " "); got != "-cold-start 40s -longest-request 1m0s" {
		t.Errorf("lint flags = %q", got)
	}
	if tg := string(r.TargetGroups["Blue"]); !strings.Contains(tg, `"Attributes"`) || !strings.Contains(tg, `"HealthCheckIntervalSeconds": 5`) {
		t.Errorf("target group = %s, want describe-target-groups names with Attributes", tg)
	}
}

// The load balancer's listeners and rules, and the functions, render as their create calls'
// input; a Custom::AWS createRule renders as its parameters, with references resolved.
func TestRenderListenersRulesFunctions(t *testing.T) {
	tpl := `{"Resources": {
	  "Blue": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {"Port": 8080}},
	  "Test": {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {"Port": 9443, "Protocol": "HTTP",
	    "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "NoRoute"}}]}},
	  "Paths": {"Type": "AWS::ElasticLoadBalancingV2::ListenerRule", "Properties": {"Priority": 1, "ListenerArn": {"Ref": "Test"},
	    "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/gangway/*"]}}]}},
	  "TestRule": {"Type": "Custom::AWS", "Properties": {"Create": {"Fn::Join": ["", [
	    "{\"service\":\"ElasticLoadBalancingV2\",\"action\":\"createRule\",\"parameters\":{\"ListenerArn\":\"", {"Ref": "Test"},
	    "\",\"Conditions\":[{\"Field\":\"http-header\",\"HttpHeaderConfig\":{\"HttpHeaderName\":\"X-Test\",\"Values\":[\"yes\"]}}]}}"]]}}},
	  "Other": {"Type": "Custom::AWS", "Properties": {"Create": "{\"service\":\"ECS\",\"action\":\"updateService\",\"parameters\":{}}"}},
	  "Hook": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
	    "GANGWAY_READINESS_URL": {"Fn::Join": ["", ["http://", {"Fn::GetAtt": ["LB", "DNSName"]}, ":9443/gangway/ready"]]}}}}}
	}}`
	r, err := Render([]byte(tpl))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Listeners) != 1 || len(r.Rules) != 2 || len(r.Functions) != 1 {
		t.Fatalf("rendered %d listeners, %d rules, %d functions; want 1, 2 (not the ECS call), 1", len(r.Listeners), len(r.Rules), len(r.Functions))
	}
	for what, pair := range map[string][2]string{
		"listener":         {string(r.Listeners["Test"]), `"TargetGroupArn": "NoRoute"`},
		"listener rule":    {string(r.Rules["Paths"]), `"ListenerArn": "Test"`},
		"custom rule":      {string(r.Rules["TestRule"]), `"HttpHeaderName": "X-Test"`},
		"custom listener":  {string(r.Rules["TestRule"]), `"ListenerArn": "Test"`},
		"function env var": {string(r.Functions["Hook"]), `"GANGWAY_READINESS_URL": "http://LB.DNSName:9443/gangway/ready"`},
	} {
		if !strings.Contains(pair[0], pair[1]) {
			t.Errorf("%s lacks %s:\n%s", what, pair[1], pair[0])
		}
	}
}
