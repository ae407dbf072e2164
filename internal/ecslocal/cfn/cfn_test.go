package cfn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/gangway-ecs/gangway/internal/ecslocal/cloudwatch"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
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
