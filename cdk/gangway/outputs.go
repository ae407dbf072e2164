package gangway

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Export is one name an on-call runbook reads from the stack: the output key (without
// OutputPrefix), what it is, and its value (a token until deploy).
type Export struct {
	Key         string
	Description string
	Value       *string
}

// export describes one stack output.
type export struct {
	key, description string
	only             feature
	value            func(s *GangwayService) *string
}

// feature is what an export needs: ROLLING has no Green target group, test listener or hook;
// Dashboard: false, no dashboard.
type feature int

const (
	always feature = iota
	blueGreen
	dashboard
)

func (f feature) in(isBlueGreen, hasDashboard bool) bool {
	return f == always || f == blueGreen && isBlueGreen || f == dashboard && hasDashboard
}

// exports is the runbook contract: the output keys are read by name
// (`aws cloudformation describe-stacks --query "Stacks[0].Outputs[?OutputKey=='ClusterName'].OutputValue"`),
// so a key is never renamed, only added.
var exports = []export{
	{"ClusterName", "ECS cluster name (aws ecs --cluster)", always, func(s *GangwayService) *string { return s.Cluster.ClusterName() }},
	{"ServiceName", "ECS service name (aws ecs --services)", always, func(s *GangwayService) *string { return s.Service.ServiceName() }},
	{"ServiceArn", "ECS service ARN (aws ecs list-service-deployments --service)", always, func(s *GangwayService) *string { return s.Service.ServiceArn() }},
	{"TaskFamily", "task definition family (aws ecs describe-task-definition --task-definition)", always, func(s *GangwayService) *string { return s.TaskDefinition.Family() }},
	{"ProxyLogGroup", "CloudWatch Logs group of the proxy container", always, func(s *GangwayService) *string { return s.ProxyLogs.LogGroupName() }},
	{"AppLogGroup", "CloudWatch Logs group of the app container", always, func(s *GangwayService) *string { return s.AppLogs.LogGroupName() }},
	{"HookLogGroup", "CloudWatch Logs group of the lifecycle hook (one JSON line per invocation)", blueGreen, func(s *GangwayService) *string { return s.HookLogs.LogGroupName() }},
	{"BlueTargetGroupArn", "Blue target group ARN (aws elbv2 describe-target-health --target-group-arn)", always, func(s *GangwayService) *string { return s.Blue.TargetGroupArn() }},
	{"GreenTargetGroupArn", "Green target group ARN (aws elbv2 describe-target-health --target-group-arn)", blueGreen, func(s *GangwayService) *string { return s.Green.TargetGroupArn() }},
	{"ProductionListenerArn", "production (HTTPS) listener ARN", always, func(s *GangwayService) *string { return s.Production.ListenerArn() }},
	{"TestListenerArn", "test listener ARN (reachable only from the hook and TestTrafficCidrs)", blueGreen, func(s *GangwayService) *string { return s.Test.ListenerArn() }},
	{"ProductionListenerRuleArn", "production listener rule ARN; ECS moves its Blue/Green weights (aws elbv2 describe-rules --rule-arns)", always, func(s *GangwayService) *string { return s.ProductionRule }},
	{"TestListenerRuleArn", "test listener rule ARN; ECS moves its Blue/Green weights (aws elbv2 describe-rules --rule-arns)", blueGreen, func(s *GangwayService) *string { return s.TestRule }},
	{"AlarmNames", "deployment alarms that roll a deployment back, comma-separated (aws cloudwatch describe-alarms --alarm-names)", always, func(s *GangwayService) *string {
		return jsii.String(strings.Join(s.AlarmNames, ","))
	}},
	{"HookFunctionName", "lifecycle hook Lambda function name", blueGreen, func(s *GangwayService) *string { return s.Hook.FunctionName() }},
	{"LoadBalancerDnsName", "load balancer DNS name", always, func(s *GangwayService) *string { return s.LoadBalancer.LoadBalancerDnsName() }},
	{"DashboardName", "CloudWatch dashboard of the service", dashboard, func(s *GangwayService) *string { return s.Dashboard.DashboardName() }},
}

// Exports returns the names a runbook needs, in the order of the stack outputs, leaving out
// what this service does not have (ROLLING: Green, the test listener and rule, the hook;
// DashboardName with Dashboard: false). The construct creates them as stack outputs unless
// Outputs is false; with it false, a stack can create its own from these.
func (s *GangwayService) Exports() []Export {
	var out []Export
	for _, e := range exports {
		if e.only.in(s.Green != nil, s.Dashboard != nil) {
			out = append(out, Export{Key: e.key, Description: e.description, Value: e.value(s)})
		}
	}
	return out
}

// outputs creates a stack output per export. They are children of the stack, not of the
// construct, so that each key is exactly OutputPrefix + the export's key (CDK derives a
// nested construct's logical ID from its path, with a hash).
func (s *GangwayService) outputs(r resolved) {
	stack := awscdk.Stack_Of(s.Construct)
	s.Outputs = map[string]awscdk.CfnOutput{}
	for _, e := range s.Exports() {
		key := r.OutputPrefix + e.Key
		s.Outputs[key] = awscdk.NewCfnOutput(stack, jsii.String(key), &awscdk.CfnOutputProps{
			Description: jsii.String("Gangway " + *s.Node().Path() + ": " + e.Description),
			Value:       e.Value,
		})
	}
}

// outputCollisions refuses an OutputPrefix whose keys the stack already holds (a second
// service with the same prefix, or an output of the stack's own), before anything is
// created: CDK would otherwise stop on the duplicate construct id with no word of the prop.
func outputCollisions(scope constructs.Construct, r resolved) []Problem {
	stack := awscdk.Stack_Of(scope)
	var taken []string
	for _, e := range exports {
		if !e.only.in(r.blueGreen, r.dashboard) {
			continue
		}
		if stack.Node().TryFindChild(jsii.String(r.OutputPrefix+e.key)) != nil {
			taken = append(taken, r.OutputPrefix+e.key)
		}
	}
	if len(taken) == 0 {
		return nil
	}
	return []Problem{{Prop: "OutputPrefix", Value: fmt.Sprintf("%q", r.OutputPrefix),
		Rule: fmt.Sprintf("the stack already has %s: give each service in a stack its own OutputPrefix (or set Outputs: false)", strings.Join(taken, ", "))}}
}
