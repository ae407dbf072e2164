package cfn

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/cloudwatch"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/lambda"
)

// synthesized finds the template `make synth` writes to cdk/cdk.out. Without it the test
// skips, saying why, unless GANGWAY_ECSLOCAL_REQUIRE is set.
func synthesized(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("../../../cdk/cdk.out/*.template.json")
	if len(matches) == 0 {
		if os.Getenv("GANGWAY_ECSLOCAL_REQUIRE") != "" {
			t.Fatal("no cdk/cdk.out/*.template.json: run make synth")
		}
		t.Skip("no cdk/cdk.out/*.template.json (make synth writes it)")
	}
	return matches[0]
}

type services struct {
	ecs *ecsapi.API
	elb *elbapi.API
	cw  *cloudwatch.Service
	fn  *lambda.Service
	cfn *Service
}

func newServices(t *testing.T) services {
	ecsAPI := ecsapi.New(ecsapi.Options{Region: "us-east-1", Account: "000000000000"})
	elbAPI := elbapi.New(elbapi.Options{Region: "us-east-1", Account: "000000000000"})
	cw := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", Account: "000000000000", ELB: elbAPI})
	fn := lambda.New(lambda.Options{Region: "us-east-1", Account: "000000000000", RIE: "/nonexistent/aws-lambda-rie"})
	t.Cleanup(func() { fn.Close() })
	return services{ecsAPI, elbAPI, cw, fn, New(Options{Region: "us-east-1", Account: "000000000000", ECS: ecsAPI, ELB: elbAPI, CloudWatch: cw, Lambda: fn})}
}

// The construct's synthesized template creates what ecslocal models, and its outputs name
// real resources.
func TestSynthesizedTemplate(t *testing.T) {
	path := synthesized(t)
	s := newServices(t)
	ctx := context.Background()
	st, err := s.cfn.CreateFromFile(ctx, "Gangway", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.StackStatus != "CREATE_COMPLETE" {
		t.Fatalf("stack %s: %s", st.StackStatus, st.StackStatusReason)
	}
	out := map[string]string{}
	for _, o := range st.Outputs {
		out[o.OutputKey] = o.OutputValue
	}
	t.Logf("outputs: %v", out)

	svc, err := s.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(out["ClusterName"]), Services: []string{out["ServiceArn"]}})
	if err != nil || len(svc.Services) != 1 || *svc.Services[0].ServiceName != out["ServiceName"] {
		t.Fatalf("DescribeServices of the outputs' cluster and service: %v %+v", err, svc)
	}
	// The construct leaves DesiredCount to Application Auto Scaling, whose scalable target
	// (MinCapacity 2, cdk.json's desiredCount) brings CloudFormation's default of 1 up.
	if n := svc.Services[0].DesiredCount; n != 2 {
		t.Errorf("the service's desired count is %d, want the scalable target's MinCapacity 2", n)
	}
	if td, err := s.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(out["TaskFamily"])}); err != nil || len(td.TaskDefinition.ContainerDefinitions) != 2 {
		t.Fatalf("DescribeTaskDefinition %s: %v", out["TaskFamily"], err)
	}
	for _, k := range []string{"BlueTargetGroupArn", "GreenTargetGroupArn"} {
		if _, err := s.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{out[k]}}); err != nil {
			t.Errorf("output %s %s: %v", k, out[k], err)
		}
	}
	for _, k := range []string{"ProductionListenerRuleArn", "TestListenerRuleArn"} {
		rules, err := s.elb.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{out[k]}})
		if err != nil || len(rules.Rules) != 1 || len(rules.Rules[0].Actions[0].ForwardConfig.TargetGroups) != 2 {
			t.Errorf("output %s %s: %v %+v", k, out[k], err, rules)
		}
	}
	names := strings.Split(out["AlarmNames"], ",")
	if len(names) != 7 {
		t.Fatalf("AlarmNames %q", out["AlarmNames"])
	}
	for _, n := range names {
		if _, ok := s.cw.AlarmState(n); !ok {
			t.Errorf("alarm %s of the outputs was not created", n)
		}
	}
	fns := s.fn.Functions()
	if len(fns) != 1 || fns[0].Name != out["HookFunctionName"] || fns[0].Environment["GANGWAY_READINESS_URL"] != out["TestReadinessUrl"] {
		t.Fatalf("functions %+v, want the hook %s with its readiness URL %s", fns, out["HookFunctionName"], out["TestReadinessUrl"])
	}

	// Every resource is listed; what is not modelled says so.
	ignored := 0
	for _, r := range st.Resources {
		if r.ResourceStatus != "CREATE_COMPLETE" {
			t.Errorf("resource %s: %s %s", r.LogicalResourceId, r.ResourceStatus, r.ResourceStatusReason)
		}
		if strings.Contains(r.ResourceStatusReason, "accepted and ignored") {
			ignored++
		}
	}
	t.Logf("%d resources, %d accepted and ignored", len(st.Resources), ignored)
	if ignored == 0 || ignored == len(st.Resources) {
		t.Errorf("%d of %d resources ignored", ignored, len(st.Resources))
	}
}

// The intrinsic functions, on a template whose only modelled resource is an alarm.
func TestIntrinsics(t *testing.T) {
	body := `{
	  "Parameters": {"Env": {"Type": "String", "Default": "prod"}, "Threshold": {"Type": "Number", "Default": "5"}},
	  "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}, "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
	    "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "NotProd"}]}},
	  "Resources": {
	    "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
	    "Dev": {"Type": "AWS::SNS::Topic", "Condition": "NotProd"},
	    "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
	      "AlarmName": {"Fn::Sub": ["${AWS::StackName}-${Env}-${Extra}-${!Literal}", {"Extra": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}}]},
	      "AlarmDescription": {"Fn::Join": [" ", ["role", {"Fn::GetAtt": ["Role", "Arn"]}, {"Fn::If": ["IsProd", "prod", {"Ref": "AWS::NoValue"}]}]]},
	      "Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount", "Statistic": "Sum", "Period": 60,
	      "EvaluationPeriods": 1, "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold",
	      "TreatMissingData": {"Fn::If": ["Either", "notBreaching", "missing"]},
	      "Dimensions": [{"Name": "LoadBalancer", "Value": {"Fn::Select": [0, {"Fn::GetAZs": ""}]}}]}}
	  },
	  "Outputs": {"Name": {"Value": {"Ref": "Alarm"}}, "Dev": {"Condition": "NotProd", "Value": {"Ref": "Dev"}}}
	}`
	s := newServices(t)
	st, err := s.cfn.Create(context.Background(), "stk", []byte(body), map[string]string{"Env": "test"}, "")
	if err != nil {
		t.Fatal(err)
	}
	a := s.cw.Alarms([]string{"stk-test-b-${Literal}"}, "", "")
	if len(a) != 1 {
		t.Fatalf("alarms %+v, outputs %+v", s.cw.Alarms(nil, "", ""), st.Outputs)
	}
	if want := "role arn:aws:iam:us-east-1:000000000000:stk-Role-"; !strings.HasPrefix(a[0].AlarmDescription, want) || strings.HasSuffix(a[0].AlarmDescription, "prod") {
		t.Errorf("AlarmDescription %q, want %q… without prod (Env=test)", a[0].AlarmDescription, want)
	}
	if a[0].TreatMissingData != "notBreaching" || a[0].Dimensions[0].Value != "us-east-1a" {
		t.Errorf("alarm %+v", a[0])
	}
	if len(st.Outputs) != 2 || len(st.Resources) != 3 {
		t.Errorf("outputs %+v, resources %d: want both outputs and the NotProd topic (Env=test)", st.Outputs, len(st.Resources))
	}
	if _, err := s.cfn.Create(context.Background(), "stk", []byte(body), nil, ""); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second stack of the name: %v", err)
	}
	_, err = s.cfn.Create(context.Background(), "bad", []byte(`{"Resources": {"A": {"Type": "AWS::SNS::Topic", "Properties": {"X": {"Ref": "B"}}},
	  "B": {"Type": "AWS::SNS::Topic", "Properties": {"X": {"Fn::GetAtt": ["A", "Arn"]}}}}}`), nil, "")
	if err == nil || !strings.Contains(err.Error(), "circular dependency between resources A, B") {
		t.Errorf("a cycle: %v", err)
	}
}

// updateTemplate is a stack of what an update changes: a load balancer with two target
// groups, the construct's kind of production rule (a Custom::AWS createRule whose Update is a
// modifyRule of its Conditions), an alarm on a parameter, a task definition and its
// service, and a resource ecslocal does not model. edit changes it before it is written.
func updateTemplate(t *testing.T, edit func(res map[string]any)) string {
	t.Helper()
	tg := func() map[string]any {
		return map[string]any{"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": map[string]any{
			"Port": 80, "Protocol": "HTTP", "VpcId": "vpc-1", "TargetType": "ip", "HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 2}}
	}
	rule := func(path string) map[string]any {
		cond := `"Conditions":[{"Field":"path-pattern","PathPatternConfig":{"Values":["` + path + `"]}}]`
		return map[string]any{"Type": "Custom::AWS", "Properties": map[string]any{
			"Create": map[string]any{"Fn::Join": []any{"", []any{
				`{"action":"createRule","outputPaths":["Rules.0.RuleArn"],"parameters":{"Actions":[{"ForwardConfig":{"TargetGroups":[{"TargetGroupArn":"`,
				map[string]any{"Ref": "Blue"}, `","Weight":1},{"TargetGroupArn":"`, map[string]any{"Ref": "Green"},
				`","Weight":0}]},"Type":"forward"}],` + cond + `,"ListenerArn":"`, map[string]any{"Ref": "Listener"},
				`","Priority":10},"physicalResourceId":{"responsePath":"Rules.0.RuleArn"},"service":"ElasticLoadBalancingV2"}`}}},
			"Update": `{"action":"modifyRule","outputPaths":["Rules.0.RuleArn"],"parameters":{` + cond +
				`,"RuleArn":"PHYSICAL:RESOURCEID:"},"physicalResourceId":{"responsePath":"Rules.0.RuleArn"},"service":"ElasticLoadBalancingV2"}`,
		}}
	}
	res := map[string]any{
		"LB": map[string]any{"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": map[string]any{"Name": "front"}},
		"Listener": map[string]any{"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": map[string]any{"LoadBalancerArn": map[string]any{"Ref": "LB"}, "Port": 8080, "Protocol": "HTTP",
			"DefaultActions": []any{map[string]any{"Type": "fixed-response", "FixedResponseConfig": map[string]any{"StatusCode": "404"}}}}},
		"Blue":  tg(),
		"Green": tg(),
		"Rule":  rule("/*"),
		"Alarm": map[string]any{"Type": "AWS::CloudWatch::Alarm", "Properties": map[string]any{"AlarmName": "app-5xx", "Namespace": "AWS/ApplicationELB",
			"MetricName": "HTTPCode_Target_5XX_Count", "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 5,
			"AlarmDescription":   map[string]any{"Fn::Sub": "more than ${Threshold} errors"},
			"ComparisonOperator": "GreaterThanThreshold"}},
		"Topic":   map[string]any{"Type": "AWS::SNS::Topic", "Properties": map[string]any{"DisplayName": "alerts"}},
		"Cluster": map[string]any{"Type": "AWS::ECS::Cluster", "Properties": map[string]any{"ClusterName": "prod"}},
		"Task": map[string]any{"Type": "AWS::ECS::TaskDefinition", "Properties": map[string]any{"Family": "app",
			"ContainerDefinitions": []any{map[string]any{"Name": "app", "Image": "app:1", "Environment": []any{map[string]any{"Name": "GREETING", "Value": "v1"}}}}}},
		"Service": map[string]any{"Type": "AWS::ECS::Service", "Properties": map[string]any{"Cluster": map[string]any{"Ref": "Cluster"}, "ServiceName": "app",
			"TaskDefinition": map[string]any{"Ref": "Task"}, "DesiredCount": 0}},
	}
	edit(res)
	raw, err := json.Marshal(map[string]any{
		"Parameters": map[string]any{"Threshold": map[string]any{"Type": "String", "Default": "5"}},
		"Resources":  res,
		"Outputs": map[string]any{"RuleArn": map[string]any{"Value": map[string]any{"Fn::GetAtt": []any{"Rule", "Rules.0.RuleArn"}}},
			"TaskDefinition": map[string]any{"Value": map[string]any{"Ref": "Task"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// updateStack is the stack "app" of updateTemplate, created.
func updateStack(t *testing.T) (services, *Stack) {
	s := newServices(t)
	t.Cleanup(s.cfn.Close)
	st, err := s.cfn.Create(context.Background(), "app", []byte(updateTemplate(t, func(map[string]any) {})), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

// query calls the CloudFormation Query API and returns the status and the body.
func query(t *testing.T, s *Service, form url.Values) (int, string) {
	t.Helper()
	form.Set("Version", Version)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// waitStack waits until the stack's status no longer ends in IN_PROGRESS and returns it.
func waitStack(t *testing.T, s *Service, name string) Stack {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stacks(name)[0]
		if !strings.HasSuffix(st.StackStatus, "IN_PROGRESS") {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack %s is still %s after 10 s", name, st.StackStatus)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// UpdateStack updates only the resources whose resolved properties changed: after a
// blue/green flip, an update of the production rule's conditions keeps the weights ECS set.
func TestUpdateStack(t *testing.T) {
	s, st := updateStack(t)
	ctx := context.Background()
	outputs := func(st Stack) map[string]string {
		m := map[string]string{}
		for _, o := range st.Outputs {
			m[o.OutputKey] = o.OutputValue
		}
		return m
	}
	out := outputs(*st)
	physical := map[string]string{}
	for _, r := range st.Resources {
		physical[r.LogicalResourceId] = r.PhysicalResourceId
	}
	// ECS moves production to green, as a blue/green deployment does.
	forward := func(blue, green int32) []elbtypes.Action {
		return []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{
			{TargetGroupArn: aws.String(physical["Blue"]), Weight: aws.Int32(blue)}, {TargetGroupArn: aws.String(physical["Green"]), Weight: aws.Int32(green)}}}}}
	}
	if _, err := s.elb.ModifyRule(ctx, &elb.ModifyRuleInput{RuleArn: aws.String(out["RuleArn"]), Actions: forward(0, 1)}); err != nil {
		t.Fatal(err)
	}

	// A new threshold, a target group's interval, the rule's path, an unmodelled resource's
	// property and a new alarm.
	changed := updateTemplate(t, func(res map[string]any) {
		res["Blue"].(map[string]any)["Properties"].(map[string]any)["HealthCheckIntervalSeconds"] = 10
		res["Topic"].(map[string]any)["Properties"].(map[string]any)["DisplayName"] = "pages"
		rule, _ := json.Marshal(res["Rule"])
		var r map[string]any
		_ = json.Unmarshal([]byte(strings.ReplaceAll(string(rule), `[\"/*\"]`, `[\"/app/*\"]`)), &r)
		res["Rule"] = r
		a, _ := json.Marshal(res["Alarm"])
		var a2 map[string]any
		_ = json.Unmarshal([]byte(strings.Replace(string(a), "app-5xx", "app-5xx-2", 1)), &a2)
		res["Alarm2"] = a2
	})
	code, body := query(t, s.cfn, url.Values{"Action": {"UpdateStack"}, "StackName": {"app"}, "TemplateBody": {changed},
		"Parameters.member.1.ParameterKey": {"Threshold"}, "Parameters.member.1.ParameterValue": {"9"}})
	if code != http.StatusOK || !strings.Contains(body, "<StackId>"+st.StackId+"</StackId>") {
		t.Fatalf("UpdateStack: %d %s", code, body)
	}
	got := waitStack(t, s.cfn, "app")
	if got.StackStatus != "UPDATE_COMPLETE" || got.LastUpdatedTime == nil {
		t.Fatalf("stack %s (%s), last updated %v", got.StackStatus, got.StackStatusReason, got.LastUpdatedTime)
	}
	for _, name := range []string{"app-5xx", "app-5xx-2"} {
		if a := s.cw.Alarms([]string{name}, "", ""); len(a) != 1 || a[0].AlarmDescription != "more than 9 errors" {
			t.Errorf("alarm %s: %+v, want the description of the threshold 9", name, a)
		}
	}
	tgs := ecslocaltest.Must(s.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{physical["Blue"], physical["Green"]}})).Get(t).TargetGroups
	if aws.ToInt32(tgs[0].HealthCheckIntervalSeconds) != 10 || aws.ToInt32(tgs[1].HealthCheckIntervalSeconds) != 5 {
		t.Errorf("intervals %d and %d, want blue's 10 and green's 5 as they were", aws.ToInt32(tgs[0].HealthCheckIntervalSeconds), aws.ToInt32(tgs[1].HealthCheckIntervalSeconds))
	}
	rule := ecslocaltest.Must(s.elb.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{out["RuleArn"]}})).Get(t).Rules[0]
	if v := rule.Conditions[0].PathPatternConfig.Values; len(v) != 1 || v[0] != "/app/*" {
		t.Errorf("the rule's path %v, want the update's /app/*", v)
	}
	if w := rule.Actions[0].ForwardConfig.TargetGroups; aws.ToInt32(w[0].Weight) != 0 || aws.ToInt32(w[1].Weight) != 1 {
		t.Errorf("the rule's weights blue %d, green %d: the update must keep the weights ECS set (0, 1)", aws.ToInt32(w[0].Weight), aws.ToInt32(w[1].Weight))
	}
	if o := outputs(got); o["TaskDefinition"] != out["TaskDefinition"] || o["RuleArn"] != out["RuleArn"] {
		t.Errorf("outputs %v, want the unchanged task definition and rule %v", o, out)
	}
	status := map[string]string{}
	for _, r := range got.Resources {
		status[r.LogicalResourceId] = r.ResourceStatus
	}
	for id, want := range map[string]string{"Blue": "UPDATE_COMPLETE", "Green": "CREATE_COMPLETE", "Rule": "UPDATE_COMPLETE", "Topic": "UPDATE_COMPLETE",
		"Alarm": "UPDATE_COMPLETE", "Alarm2": "CREATE_COMPLETE", "Task": "CREATE_COMPLETE", "Service": "CREATE_COMPLETE"} {
		if status[id] != want {
			t.Errorf("resource %s: %s, want %s", id, status[id], want)
		}
	}
	code, body = query(t, s.cfn, url.Values{"Action": {"DescribeStackEvents"}, "StackName": {"app"}})
	if code != http.StatusOK || !strings.Contains(body, "<ResourceStatus>UPDATE_COMPLETE</ResourceStatus>") || strings.Index(body, "UPDATE_COMPLETE<") > strings.Index(body, "CREATE_COMPLETE<") {
		t.Errorf("DescribeStackEvents: %d, want the update's events first: %s", code, body)
	}

	// The same template and parameter again: nothing to do.
	code, body = query(t, s.cfn, url.Values{"Action": {"UpdateStack"}, "StackName": {"app"}, "UsePreviousTemplate": {"true"},
		"Parameters.member.1.ParameterKey": {"Threshold"}, "Parameters.member.1.UsePreviousValue": {"true"}})
	if code != http.StatusBadRequest || !strings.Contains(body, "<Code>ValidationError</Code>") || !strings.Contains(body, "No updates are to be performed.") {
		t.Errorf("an update without changes: %d %s", code, body)
	}
}

// An update ecslocal cannot apply, or one whose resource fails, leaves the stack as it was,
// UPDATE_ROLLBACK_COMPLETE with the resource's reason.
func TestUpdateStackRollsBack(t *testing.T) {
	s, st := updateStack(t)
	ctx := context.Background()
	taskDef := st.Outputs[slices.IndexFunc(st.Outputs, func(o Output) bool { return o.OutputKey == "TaskDefinition" })].OutputValue
	for _, tc := range []struct {
		name, want string
		edit       func(res map[string]any)
	}{
		// CloudFormation replaces a target group whose port changes; ecslocal does not.
		{"a replacement", "The following resource(s) failed to update: [Blue]. Blue: ecslocal cannot update property Port", func(res map[string]any) {
			res["Blue"].(map[string]any)["Properties"].(map[string]any)["Port"] = 81
		}},
		// A new task definition revision, and a service update that fails: the revision is
		// deregistered and the service keeps the old one.
		{"a failing resource", "The following resource(s) failed to update: [Service]. Service: ", func(res map[string]any) {
			task := res["Task"].(map[string]any)["Properties"].(map[string]any)["ContainerDefinitions"].([]any)[0].(map[string]any)
			task["Environment"] = []any{map[string]any{"Name": "GREETING", "Value": "v2"}}
			res["Service"].(map[string]any)["Properties"].(map[string]any)["DesiredCount"] = -1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := query(t, s.cfn, url.Values{"Action": {"UpdateStack"}, "StackName": {"app"}, "TemplateBody": {updateTemplate(t, tc.edit)}})
			if code != http.StatusOK {
				t.Fatalf("UpdateStack: %d %s", code, body)
			}
			got := waitStack(t, s.cfn, "app")
			if got.StackStatus != "UPDATE_ROLLBACK_COMPLETE" || !strings.HasPrefix(got.StackStatusReason, tc.want) {
				t.Fatalf("stack %s, reason %q, want UPDATE_ROLLBACK_COMPLETE, %q…", got.StackStatus, got.StackStatusReason, tc.want)
			}
			if o := got.Outputs[slices.IndexFunc(got.Outputs, func(o Output) bool { return o.OutputKey == "TaskDefinition" })].OutputValue; o != taskDef {
				t.Errorf("output TaskDefinition %s, want %s as before", o, taskDef)
			}
			// The resources updated on the way, the failed one too, are set back: none is left
			// in progress or failed.
			for _, r := range got.Resources {
				if !strings.HasSuffix(r.ResourceStatus, "_COMPLETE") {
					t.Errorf("resource %s: %s (%s) after the rollback", r.LogicalResourceId, r.ResourceStatus, r.ResourceStatusReason)
				}
			}
			svc := ecslocaltest.Must(s.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"app"}})).Get(t).Services[0]
			if aws.ToString(svc.TaskDefinition) != taskDef || svc.DesiredCount != 0 {
				t.Errorf("service on %s with %d tasks, want %s and 0 as before", aws.ToString(svc.TaskDefinition), svc.DesiredCount, taskDef)
			}
			tds := ecslocaltest.Must(s.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("app")})).Get(t).TaskDefinitionArns
			if len(tds) != 1 || tds[0] != taskDef {
				t.Errorf("active task definitions %v, want only %s", tds, taskDef)
			}
			tg := ecslocaltest.Must(s.elb.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{}})).Get(t).TargetGroups
			for _, g := range tg {
				if aws.ToInt32(g.Port) != 80 {
					t.Errorf("target group %s on port %d, want 80 as before", aws.ToString(g.TargetGroupName), aws.ToInt32(g.Port))
				}
			}
		})
	}
}
