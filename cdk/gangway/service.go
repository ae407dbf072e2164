// Package gangway holds GangwayService, a CDK construct for an ECS Fargate service fronted by
// Gangway's proxy, deployed blue/green (or rolling, linear, canary) behind an Application Load
// Balancer, that rolls itself back when the new tasks do not become ready.
//
// Every timing setting in the stack — target-group health checks and deregistration delay,
// the proxy container's health check and stopTimeout, the service's grace period and
// minimum/maximum percent, the proxy's shutdown delay and drain timeout — comes from one
// budget.Settings, and NewGangwayService refuses settings that break budget.Check or ECS's
// ranges before it creates anything.
package gangway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2targets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53targets"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/gangway-ecs/gangway/cdk/ecsinput"
	"github.com/gangway-ecs/gangway/cdk/hook"
)

// GangwayService is the construct. Its fields expose what a stack may want to extend.
type GangwayService struct {
	constructs.Construct

	Vpc          awsec2.IVpc
	Cluster      awsecs.ICluster
	LoadBalancer elbv2.ApplicationLoadBalancer
	Production   elbv2.ApplicationListener // HTTPS
	// ProductionRule and TestRule are the listener rules' ARNs. With two target groups they
	// are created by custom resources (ProductionRuleResource, TestRuleResource) that never
	// write the rules' weights after creating them; see trafficRule.
	ProductionRule, TestRule                 *string
	ProductionRuleResource, TestRuleResource customresources.AwsCustomResource // nil for ROLLING
	Test                                     elbv2.ApplicationListener         // nil for ROLLING
	Blue, Green                              elbv2.ApplicationTargetGroup      // Green is nil for ROLLING
	// NoRoute is a target group that never has targets: the listeners' default action and
	// the production listener's /gangway/* rule forward to it, so the load balancer answers
	// 503 there without a non-forward action on a listener ECS shifts traffic on.
	NoRoute        elbv2.ApplicationTargetGroup
	TaskDefinition awsecs.FargateTaskDefinition
	Proxy, App     awsecs.ContainerDefinition
	Service        awsecs.FargateService
	Hook           awslambda.Function    // nil for ROLLING
	Alarms         []awscloudwatch.Alarm // the deployment alarms, ROLLBACK_ON_ALARM
	// AlarmNames are the deployment alarms' names (literals, fixed at synth time), in the
	// order of Alarms.
	AlarmNames []string
	Scaling    awsecs.ScalableTaskCount // nil without autoscaling
	// ProxyLogs and AppLogs are the containers' log groups; HookLogs is the hook's (nil for
	// ROLLING).
	ProxyLogs, AppLogs, HookLogs awslogs.LogGroup
	// Dashboard is the service's CloudWatch dashboard (nil with Dashboard: false).
	Dashboard awscloudwatch.Dashboard
	// Outputs are the stack outputs the construct created, by output key (nil with
	// Outputs: false). Exports lists the same values.
	Outputs map[string]awscdk.CfnOutput
	// ReadinessURL is the readiness path through the test listener (a token until deploy).
	ReadinessURL *string
}

// NewGangwayService validates props, then builds the service. It returns a *ValidationError
// naming every refused prop and creates nothing when props are invalid.
func NewGangwayService(scope constructs.Construct, id string, props *GangwayServiceProps) (*GangwayService, error) {
	if props == nil {
		props = &GangwayServiceProps{}
	}
	r, problems := resolve(*props)
	if r.blueGreen && r.HookCode == nil {
		if _, err := os.Stat(filepath.Join(r.HookAssetDir, "bootstrap")); err != nil {
			problems = append(problems, Problem{Prop: "HookAssetDir", Value: fmt.Sprintf("%q", r.HookAssetDir),
				Rule: "must hold the hook's `bootstrap` (run `make cdk-hook`), or set HookCode: " + err.Error()})
		}
	}
	if r.outputs {
		problems = append(problems, outputCollisions(scope, r)...)
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Construct: id, Problems: problems}
	}

	s := &GangwayService{Construct: constructs.NewConstruct(scope, jsii.String(id))}
	s.network(r)
	s.loadBalancer(r)
	s.taskDefinition(r)
	s.service(r)
	s.testIngress(r)
	if r.autoscaling {
		s.autoscaling(r)
	}
	if r.dashboard {
		s.dashboard(r)
	}
	if r.outputs {
		s.outputs(r)
	}
	return s, nil
}

func (s *GangwayService) network(r resolved) {
	s.Vpc = r.Vpc
	if s.Vpc == nil {
		s.Vpc = awsec2.NewVpc(s.Construct, jsii.String("Vpc"), &awsec2.VpcProps{
			MaxAzs:      jsii.Number(vpcAzs),
			NatGateways: jsii.Number(float64(r.NatGateways)),
		})
	}
	s.Cluster = r.Cluster
	if s.Cluster == nil {
		s.Cluster = awsecs.NewCluster(s.Construct, jsii.String("Cluster"), &awsecs.ClusterProps{
			Vpc:                            s.Vpc,
			ContainerInsightsV2:            awsecs.ContainerInsights_ENABLED,
			EnableFargateCapacityProviders: jsii.Bool(true),
		})
	}
}

func (s *GangwayService) loadBalancer(r resolved) {
	b := r.budget
	s.LoadBalancer = elbv2.NewApplicationLoadBalancer(s.Construct, jsii.String("LoadBalancer"), &elbv2.ApplicationLoadBalancerProps{
		Vpc:                     s.Vpc,
		InternetFacing:          jsii.Bool(r.internetFacing),
		DropInvalidHeaderFields: jsii.Bool(true),
	})

	targetGroup := func(id string) elbv2.ApplicationTargetGroup {
		return elbv2.NewApplicationTargetGroup(s.Construct, jsii.String(id), &elbv2.ApplicationTargetGroupProps{
			Vpc:                 s.Vpc,
			TargetType:          elbv2.TargetType_IP,
			Port:                jsii.Number(float64(r.ProxyPort)),
			Protocol:            elbv2.ApplicationProtocol_HTTP,
			DeregistrationDelay: awscdk.Duration_Seconds(seconds(b.DeregistrationDelay)),
			HealthCheck: &elbv2.HealthCheck{
				Enabled:                 jsii.Bool(true),
				Path:                    jsii.String(ReadyPath),
				Port:                    jsii.String("traffic-port"),
				Protocol:                elbv2.Protocol_HTTP,
				HealthyHttpCodes:        jsii.String("200"),
				Interval:                awscdk.Duration_Seconds(seconds(b.LBHealthInterval)),
				Timeout:                 awscdk.Duration_Seconds(seconds(b.LBHealthTimeout)),
				HealthyThresholdCount:   jsii.Number(float64(b.LBHealthyThreshold)),
				UnhealthyThresholdCount: jsii.Number(float64(b.LBUnhealthyThreshold)),
			},
		})
	}
	s.Blue = targetGroup("Blue")
	if r.blueGreen {
		s.Green = targetGroup("Green")
	}
	// NoRoute answers 404 from a function of a few lines: a target group, so reaching it is
	// a forward action (below), and a target that answers, so these requests count as the
	// group's 4xx and never as the load balancer's own 5xx, which fail deployments.
	noRouteFn := awslambda.NewFunction(s.Construct, jsii.String("NoRouteFunction"), &awslambda.FunctionProps{
		Runtime:     awslambda.Runtime_NODEJS_22_X(),
		Handler:     jsii.String("index.handler"),
		Code:        awslambda.Code_FromInline(jsii.String(noRouteHandler)),
		MemorySize:  jsii.Number(128),
		Timeout:     awscdk.Duration_Seconds(jsii.Number(3)),
		Description: jsii.String("Gangway: 404 for what matches no route, and for the proxy's own paths from the internet"),
	})
	s.NoRoute = elbv2.NewApplicationTargetGroup(s.Construct, jsii.String("NoRoute"), &elbv2.ApplicationTargetGroupProps{
		TargetType: elbv2.TargetType_LAMBDA,
		Targets:    &[]elbv2.IApplicationLoadBalancerTarget{awselasticloadbalancingv2targets.NewLambdaTarget(noRouteFn)},
	})
	// ECS blue/green does not support listeners whose rules mix forward actions with
	// non-forward ones (redirect, fixed-response, authentication):
	// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb-resources-for-blue-green.html
	// Whether a listener's default action counts is not said, so every action on the two
	// listeners ECS shifts traffic on is a forward; what matches no route goes to NoRoute.
	noRoute := elbv2.ListenerAction_Forward(&[]elbv2.IApplicationTargetGroup{s.NoRoute}, nil)

	certificate := r.Certificate
	if certificate == nil {
		validation := awscertificatemanager.CertificateValidation_FromDns(nil)
		if r.HostedZone != nil {
			validation = awscertificatemanager.CertificateValidation_FromDns(r.HostedZone)
		}
		certificate = awscertificatemanager.NewCertificate(s.Construct, jsii.String("Certificate"), &awscertificatemanager.CertificateProps{
			DomainName: jsii.String(r.DomainName),
			Validation: validation,
		})
	}
	s.Production = s.LoadBalancer.AddListener(jsii.String("Https"), &elbv2.BaseApplicationListenerProps{
		Port:          jsii.Number(443),
		Protocol:      elbv2.ApplicationProtocol_HTTPS,
		Certificates:  &[]elbv2.IListenerCertificate{elbv2.ListenerCertificate_FromCertificateManager(certificate)},
		SslPolicy:     elbv2.SslPolicy_RECOMMENDED_TLS,
		Open:          jsii.Bool(true),
		DefaultAction: noRoute,
	})
	// The proxy's own paths (readiness above all) are not the internet's business: this
	// rule is evaluated before the production rule and answers them with NoRoute's 404. The
	// target groups' health checks go to the tasks directly, not through a listener; the
	// hook reaches readiness through the test listener.
	elbv2.NewApplicationListenerRule(s.Construct, jsii.String("ProxyPathsRule"), &elbv2.ApplicationListenerRuleProps{
		Listener:   s.Production,
		Priority:   jsii.Number(ProxyPathsRulePriority),
		Conditions: &[]elbv2.ListenerCondition{elbv2.ListenerCondition_PathPatterns(jsii.Strings(ProxyPathPattern))},
		Action:     noRoute,
	})
	if r.blueGreen {
		s.ProductionRuleResource, s.ProductionRule = s.trafficRule("ProductionRule", s.Production, []map[string]any{pathCondition("/*")})
	} else {
		rule := elbv2.NewApplicationListenerRule(s.Construct, jsii.String("ProductionRule"), &elbv2.ApplicationListenerRuleProps{
			Listener:   s.Production,
			Priority:   jsii.Number(TrafficRulePriority),
			Conditions: &[]elbv2.ListenerCondition{elbv2.ListenerCondition_PathPatterns(jsii.Strings("/*"))},
			Action:     elbv2.ListenerAction_Forward(&[]elbv2.IApplicationTargetGroup{s.Blue}, nil),
		})
		s.ProductionRule = rule.ListenerRuleArn()
	}
	s.LoadBalancer.AddListener(jsii.String("HttpRedirect"), &elbv2.BaseApplicationListenerProps{
		Port:     jsii.Number(80),
		Protocol: elbv2.ApplicationProtocol_HTTP,
		Open:     jsii.Bool(true),
		DefaultAction: elbv2.ListenerAction_Redirect(&elbv2.RedirectOptions{
			Protocol: jsii.String("HTTPS"), Port: jsii.String("443"), Permanent: jsii.Bool(true),
		}),
	})
	if r.HostedZone != nil {
		awsroute53.NewARecord(s.Construct, jsii.String("Alias"), &awsroute53.ARecordProps{
			Zone:       r.HostedZone,
			RecordName: jsii.String(r.DomainName),
			Target:     awsroute53.RecordTarget_FromAlias(awsroute53targets.NewLoadBalancerTarget(s.LoadBalancer, nil)),
		})
	}

	if !r.blueGreen {
		return
	}
	// Open false: the test listener's ingress is added by testIngress, for the hook only
	// (and TestTrafficCidrs).
	s.Test = s.LoadBalancer.AddListener(jsii.String("Test"), &elbv2.BaseApplicationListenerProps{
		Port:          jsii.Number(float64(r.TestListenerPort)),
		Protocol:      elbv2.ApplicationProtocol_HTTP,
		Open:          jsii.Bool(false),
		DefaultAction: noRoute,
	})
	conditions := []map[string]any{pathCondition("/*")}
	if r.internetFacing {
		conditions = append(conditions, map[string]any{
			"Field":            "http-header",
			"HttpHeaderConfig": map[string]any{"HttpHeaderName": TestHeader, "Values": []string{testHeaderValue(s)}},
		})
	}
	s.TestRuleResource, s.TestRule = s.trafficRule("TestRule", s.Test, conditions)
	s.ReadinessURL = jsii.String(fmt.Sprintf("http://%s:%d%s", *s.LoadBalancer.LoadBalancerDnsName(), r.TestListenerPort, ReadyPath))
}

// noRouteHandler is NoRoute's function: the response of a Lambda target
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html).
const noRouteHandler = `exports.handler = async () => ({
  statusCode: 404,
  statusDescription: "404 Not Found",
  headers: { "Content-Type": "text/plain" },
  body: "no route\n",
  isBase64Encoded: false,
});
`

// Listener rule priorities and the proxy's path prefix on the production listener.
const (
	ProxyPathsRulePriority = 1
	TrafficRulePriority    = 10
	ProxyPathPattern       = "/gangway/*"
)

func pathCondition(pattern string) map[string]any {
	return map[string]any{"Field": "path-pattern", "PathPatternConfig": map[string]any{"Values": []string{pattern}}}
}

// trafficRule creates a listener rule that forwards to Blue (weight 1) and Green (weight 0)
// and returns its ARN.
//
// ECS moves these weights during every deployment; after a deployment that ended on Green,
// the live rule says Blue 0 / Green 1. Were the rule an AWS::ElasticLoadBalancingV2::
// ListenerRule, any later stack update that touched it would write the template's Blue 1 /
// Green 0 back and send all traffic to the group without tasks (aws-cdk issue 36649). So a
// custom resource owns the rule: it creates the rule with the weights ECS requires before a
// first deployment (exactly one target group with a non-zero weight), applies a changed
// condition with ModifyRule without Actions — which leaves the actions as they are
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_ModifyRule.html:
// "Any properties that you do not specify are unchanged") — and deletes the rule with the
// stack. CloudFormation therefore never writes a weight after the rule exists; only ECS does.
func (s *GangwayService) trafficRule(id string, listener elbv2.ApplicationListener, conditions []map[string]any) (customresources.AwsCustomResource, *string) {
	create := map[string]any{
		"ListenerArn": listener.ListenerArn(),
		"Priority":    TrafficRulePriority,
		"Conditions":  conditions,
		"Actions": []map[string]any{{
			"Type": "forward",
			"ForwardConfig": map[string]any{"TargetGroups": []map[string]any{
				{"TargetGroupArn": s.Blue.TargetGroupArn(), "Weight": 1},
				{"TargetGroupArn": s.Green.TargetGroupArn(), "Weight": 0},
			}},
		}},
	}
	ruleArn := customresources.NewPhysicalResourceIdReference()
	cr := customresources.NewAwsCustomResource(s.Construct, jsii.String(id), &customresources.AwsCustomResourceProps{
		OnCreate: &customresources.AwsSdkCall{
			Service: jsii.String("ElasticLoadBalancingV2"), Action: jsii.String("createRule"),
			Parameters:         create,
			PhysicalResourceId: customresources.PhysicalResourceId_FromResponse(jsii.String("Rules.0.RuleArn")),
			OutputPaths:        jsii.Strings("Rules.0.RuleArn"),
		},
		OnUpdate: &customresources.AwsSdkCall{
			Service: jsii.String("ElasticLoadBalancingV2"), Action: jsii.String("modifyRule"),
			Parameters:         map[string]any{"RuleArn": ruleArn, "Conditions": conditions},
			PhysicalResourceId: customresources.PhysicalResourceId_FromResponse(jsii.String("Rules.0.RuleArn")),
			OutputPaths:        jsii.Strings("Rules.0.RuleArn"),
		},
		OnDelete: &customresources.AwsSdkCall{
			Service: jsii.String("ElasticLoadBalancingV2"), Action: jsii.String("deleteRule"),
			Parameters:               map[string]any{"RuleArn": ruleArn},
			IgnoreErrorCodesMatching: jsii.String("RuleNotFound"),
		},
		Policy: customresources.AwsCustomResourcePolicy_FromStatements(&[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions: jsii.Strings("elasticloadbalancing:CreateRule", "elasticloadbalancing:ModifyRule", "elasticloadbalancing:DeleteRule"),
				// Rule ARNs exist only once created; CreateRule is authorized on the listener.
				Resources: jsii.Strings("*"),
			}),
		}),
		InstallLatestAwsSdk: jsii.Bool(false),
	})
	return cr, cr.GetResponseField(jsii.String("Rules.0.RuleArn"))
}

// testIngress opens the test listener to the hook and to TestTrafficCidrs, and to nothing
// else. From inside the VPC, an internal load balancer sees the hook's security group; an
// internet-facing one sees the hook arrive from the NAT gateways' public addresses.
func (s *GangwayService) testIngress(r resolved) {
	if !r.blueGreen {
		return
	}
	port := awsec2.Port_Tcp(jsii.Number(float64(r.TestListenerPort)))
	if !r.internetFacing {
		s.LoadBalancer.Connections().AllowFrom(s.Hook, port, jsii.String("lifecycle hook to the test listener"))
	} else if r.Vpc == nil {
		for i, ip := range natAddresses(s.Vpc) {
			s.LoadBalancer.Connections().AllowFrom(awsec2.Peer_Ipv4(awscdk.Fn_Join(jsii.String(""), &[]*string{ip, jsii.String("/32")})),
				port, jsii.String(fmt.Sprintf("lifecycle hook to the test listener, through NAT gateway %d", i)))
		}
	}
	for i, c := range r.TestTrafficCidrs {
		s.LoadBalancer.Connections().AllowFrom(awsec2.Peer_Ipv4(jsii.String(c)), port, jsii.String(fmt.Sprintf("test traffic %d", i)))
	}
}

// natAddresses returns the public addresses of the NAT gateways of a VPC the construct
// created (awsec2.Vpc puts an EIP beside each gateway in its public subnets).
func natAddresses(vpc awsec2.IVpc) []*string {
	var ips []*string
	for _, sn := range *vpc.PublicSubnets() {
		if eip, ok := sn.Node().TryFindChild(jsii.String("EIP")).(awsec2.CfnEIP); ok && eip != nil {
			ips = append(ips, eip.AttrPublicIp())
		}
	}
	return ips
}

// testHeaderValue is stable for a construct path, so redeploys keep the same rule.
func testHeaderValue(s *GangwayService) string {
	return "gangway-" + *awscdk.Names_UniqueId(s.Construct)
}

func (s *GangwayService) taskDefinition(r resolved) {
	b := r.budget
	s.TaskDefinition = awsecs.NewFargateTaskDefinition(s.Construct, jsii.String("Task"), &awsecs.FargateTaskDefinitionProps{
		Cpu:            jsii.Number(float64(r.Cpu)),
		MemoryLimitMiB: jsii.Number(float64(r.MemoryMiB)),
		RuntimePlatform: &awsecs.RuntimePlatform{
			OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX(),
		},
	})
	logs := func(id, prefix string, group *awslogs.LogGroup) awsecs.LogDriver {
		*group = awslogs.NewLogGroup(s.Construct, jsii.String(id), &awslogs.LogGroupProps{
			Retention:     r.LogRetention,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		return awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup:     *group,
			StreamPrefix: jsii.String(prefix),
			// Non-blocking: a slow log pipe must never stall the proxy's request path.
			Mode:          awsecs.AwsLogDriverMode_NON_BLOCKING,
			MaxBufferSize: awscdk.Size_Mebibytes(jsii.Number(25)),
		})
	}

	s.App = s.TaskDefinition.AddContainer(jsii.String(AppContainerName), &awsecs.ContainerDefinitionOptions{
		Image:       r.AppImage,
		Essential:   jsii.Bool(true),
		Environment: stringMap(r.AppEnvironment),
		Logging:     logs("AppLogs", AppContainerName, &s.AppLogs),
		// The app stops after the proxy (see the dependency below), when no request can reach
		// it any more; it gets the same window.
		StopTimeout: awscdk.Duration_Seconds(seconds(b.StopTimeout)),
	})

	// The environment resolve checked with the proxy's own configuration resolution.
	env := r.proxyEnvironment()
	s.Proxy = s.TaskDefinition.AddContainer(jsii.String(ProxyContainerName), &awsecs.ContainerDefinitionOptions{
		Image:       r.ProxyImage,
		Essential:   jsii.Bool(true),
		Command:     jsii.Strings("run"),
		Environment: stringMap(env),
		Logging:     logs("ProxyLogs", ProxyContainerName, &s.ProxyLogs),
		StopTimeout: awscdk.Duration_Seconds(seconds(b.StopTimeout)),
		// The hardening of taskdefs/: nothing written to the image, no root, an init process
		// as PID 1 that reaps children and forwards signals, a descriptor per connection.
		ReadonlyRootFilesystem: jsii.Bool(true),
		User:                   jsii.String(ProxyUser),
		LinuxParameters: awsecs.NewLinuxParameters(s.Construct, jsii.String("ProxyLinux"), &awsecs.LinuxParametersProps{
			InitProcessEnabled: jsii.Bool(true),
		}),
		Ulimits: &[]*awsecs.Ulimit{{Name: awsecs.UlimitName_NOFILE, SoftLimit: jsii.Number(65536), HardLimit: jsii.Number(65536)}},
		HealthCheck: &awsecs.HealthCheck{
			// The probe's own timeout, explicit, so that the one the budget was checked with
			// is the one the probe runs with.
			Command:     jsii.Strings("CMD", HealthcheckCommand, "-probe", HealthcheckProbe, "-timeout", b.EffectiveProbeTimeout().String()),
			Interval:    awscdk.Duration_Seconds(seconds(b.ContainerInterval)),
			Timeout:     awscdk.Duration_Seconds(seconds(b.ContainerTimeout)),
			Retries:     jsii.Number(float64(b.ContainerRetries)),
			StartPeriod: awscdk.Duration_Seconds(seconds(b.ContainerStartPeriod)),
		},
		PortMappings: &[]*awsecs.PortMapping{{
			ContainerPort: jsii.Number(float64(r.ProxyPort)),
			Protocol:      awsecs.Protocol_TCP,
			Name:          jsii.String("traffic"),
		}},
	})
	// What the template cannot carry but `proxy lint` needs to check the budget the same way
	// (flags of `proxy lint`; see package ecsinput).
	s.TaskDefinition.Node().DefaultChild().(awscdk.CfnResource).AddMetadata(jsii.String(ecsinput.MetadataKey), map[string]string{
		"longest-request": b.LongestRequest.String(),
		"cold-start":      b.ColdStart.String(),
	})
	// ECS stops containers in reverse dependency order: the proxy depends on the app, so the
	// app starts first and the proxy stops first — it drains while the app still serves.
	s.Proxy.AddContainerDependencies(&awsecs.ContainerDependency{
		Container: s.App,
		Condition: awsecs.ContainerDependencyCondition_START,
	})
}

// hookStages are where the lifecycle hook runs: POST_SCALE_UP bounds how long a revision
// whose tasks crash or never turn healthy can hold a deployment; POST_TEST_TRAFFIC_SHIFT
// checks readiness and the smoke checks through the test listener.
var hookStages = []awsecs.DeploymentLifecycleStage{
	awsecs.DeploymentLifecycleStage_POST_SCALE_UP,
	awsecs.DeploymentLifecycleStage_POST_TEST_TRAFFIC_SHIFT,
}

func (s *GangwayService) service(r resolved) {
	b := r.budget
	props := &awsecs.FargateServiceProps{
		Cluster:                s.Cluster,
		TaskDefinition:         s.TaskDefinition,
		DeploymentStrategy:     r.Strategy,
		MinHealthyPercent:      jsii.Number(float64(b.MinimumHealthyPercent)),
		MaxHealthyPercent:      jsii.Number(float64(b.MaximumPercent)),
		HealthCheckGracePeriod: awscdk.Duration_Seconds(seconds(b.HealthCheckGracePeriod)),
		// For every strategy. Whether ECS applies it to BLUE_GREEN is documented both ways
		// (rolling only: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html;
		// rolling and blue/green: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-failure-detection.html),
		// so the hook's capacity check at POST_SCALE_UP bounds a crash-looping revision
		// without it.
		CircuitBreaker:       &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
		DeploymentController: &awsecs.DeploymentController{Type: awsecs.DeploymentControllerType_ECS},
		PlatformVersion:      awsecs.FargatePlatformVersion_LATEST,
		PropagateTags:        awsecs.PropagatedTagSource_SERVICE,
		EnableECSManagedTags: jsii.Bool(true),
	}
	if !r.autoscaling {
		props.DesiredCount = jsii.Number(float64(r.DesiredCount))
	}
	var hookRole awsiam.Role
	if r.blueGreen {
		props.BakeTime = awscdk.Duration_Minutes(jsii.Number(r.BakeTime.Minutes()))
		shift := &awsecs.TrafficShiftConfig{
			StepPercent:  jsii.Number(r.StepPercent),
			StepBakeTime: awscdk.Duration_Minutes(jsii.Number(r.StepBakeTime.Minutes())),
		}
		switch r.Strategy {
		case awsecs.DeploymentStrategy_LINEAR:
			props.LinearConfiguration = shift
		case awsecs.DeploymentStrategy_CANARY:
			props.CanaryConfiguration = shift
		}
		s.Hook = s.lifecycleHook(r)
		// The role ECS invokes the hook with, created here so that the service can depend on
		// it and its policy: without that, CloudFormation may create the service (and ECS may
		// start the first deployment) before the invoke permission exists.
		hookRole = awsiam.NewRole(s.Construct, jsii.String("HookInvokeRole"), &awsiam.RoleProps{
			AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs.amazonaws.com"), nil),
		})
		// The L2 grants invoke only to a role it creates itself.
		s.Hook.GrantInvoke(hookRole)
		props.LifecycleHooks = &[]awsecs.IDeploymentLifecycleHookTarget{
			awsecs.NewDeploymentLifecycleLambdaTarget(s.Hook, jsii.String("LifecycleHook"), &awsecs.DeploymentLifecycleLambdaTargetProps{
				LifecycleStages: &hookStages,
				Role:            hookRole,
			}),
		}
	}
	s.Service = awsecs.NewFargateService(s.Construct, jsii.String("Service"), props)
	cfn := s.Service.Node().DefaultChild().(awsecs.CfnService)
	if r.autoscaling {
		// No DesiredCount: CloudFormation omits it from UpdateService, so a stack update keeps
		// the count Application Auto Scaling set (aws-cdk issue 13130, containers-roadmap
		// issue 493). A new service starts with one task; registering the scalable target
		// brings it into MinCapacity–MaxCapacity
		// (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html).
		cfn.AddPropertyDeletionOverride(jsii.String("DesiredCount"))
	}

	target := &awsecs.LoadBalancerTargetOptions{
		ContainerName: jsii.String(ProxyContainerName),
		ContainerPort: jsii.Number(float64(r.ProxyPort)),
		Protocol:      awsecs.Protocol_TCP,
	}
	s.Service.LoadBalancerTarget(target).AttachToApplicationTargetGroup(s.Blue)
	s.Service.Connections().AllowFrom(s.LoadBalancer, awsec2.Port_Tcp(jsii.Number(float64(r.ProxyPort))),
		jsii.String("load balancer to the proxy's traffic port"))
	if r.blueGreen {
		// The L2's AlternateTarget takes only an L2 listener rule; these rules are custom
		// resources (see trafficRule), so the advanced configuration is written here, with
		// the role ECS shifts traffic with (the managed policy the L2 would attach).
		lbRole := awsiam.NewRole(s.Construct, jsii.String("LoadBalancerRole"), &awsiam.RoleProps{
			AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs.amazonaws.com"), nil),
			ManagedPolicies: &[]awsiam.IManagedPolicy{
				awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("AmazonECSInfrastructureRolePolicyForLoadBalancers")),
			},
		})
		cfn.AddPropertyOverride(jsii.String("LoadBalancers.0.AdvancedConfiguration"), map[string]any{
			"AlternateTargetGroupArn": s.Green.TargetGroupArn(),
			"ProductionListenerRule":  s.ProductionRule,
			"TestListenerRule":        s.TestRule,
			"RoleArn":                 lbRole.RoleArn(),
		})
		s.Service.Node().AddDependency(s.ProductionRuleResource, s.TestRuleResource, hookRole)
		// ECS's own timeout on the hook (default 24 hours), set to just past the hook's
		// deadline; the L2 has no prop for it, the CloudFormation schema has
		// (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-ecs-service-hooktimeoutconfig.html).
		cfn.AddPropertyOverride(jsii.String("DeploymentConfiguration.LifecycleHooks.0.TimeoutConfiguration"), map[string]any{
			"TimeoutInMinutes": r.hookTimeoutMinutes(),
			"Action":           "ROLLBACK",
		})
	} else {
		s.Service.Node().AddDependency(s.Production)
	}

	// ECS's thresholdConfiguration and resetOnHealthyTask have no L2 prop: set them on the
	// CfnService. The L2 renders enable and rollback; these sit beside them.
	cfn.AddPropertyOverride(jsii.String("DeploymentConfiguration.DeploymentCircuitBreaker.ThresholdConfiguration"),
		map[string]any{"Type": r.threshold.Type, "Value": r.threshold.Value})
	cfn.AddPropertyOverride(jsii.String("DeploymentConfiguration.DeploymentCircuitBreaker.ResetOnHealthyTask"), r.resetOnHealthy)

	s.alarms(r)
}

// albMetric is an AWS/ApplicationELB metric with the load balancer's (and a target group's,
// when tg is not nil) dimensions. The target groups are attached by ECS and custom
// resources, not by L2 listeners, so their L2 metrics helpers cannot be used.
func (s *GangwayService) albMetric(name, statistic string, tg elbv2.ApplicationTargetGroup) awscloudwatch.Metric {
	dims := map[string]*string{"LoadBalancer": s.LoadBalancer.LoadBalancerFullName()}
	if tg != nil {
		dims["TargetGroup"] = tg.TargetGroupFullName()
	}
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String("AWS/ApplicationELB"),
		MetricName:    jsii.String(name),
		DimensionsMap: &dims,
		Statistic:     jsii.String(statistic),
		Period:        awscdk.Duration_Minutes(jsii.Number(1)),
	})
}

// alarms creates the deployment alarms. Per target group (whichever is "new" in a given
// deployment — green, then blue on the next one — is the one that can trip): target 5xx,
// unhealthy targets, p99 response time. For the load balancer: the 5xx it generates itself
// when no target answers, which no target-group metric counts. An alarm already in ALARM
// when a deployment starts does not fail it.
func (s *GangwayService) alarms(r resolved) {
	groups := []struct {
		name string
		tg   elbv2.ApplicationTargetGroup
	}{{"Blue", s.Blue}}
	if s.Green != nil {
		groups = append(groups, struct {
			name string
			tg   elbv2.ApplicationTargetGroup
		}{"Green", s.Green})
	}
	// Names fixed at synth time: a name that is a reference to the alarm would make the
	// service's deployment configuration depend on a token CDK warns about.
	prefix := *awscdk.Names_UniqueId(s.Construct)
	var names []*string
	alarm := func(id, name, description string, metric awscloudwatch.Metric, threshold float64, periods int) {
		a := awscloudwatch.NewAlarm(s.Construct, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(prefix + "-" + name),
			AlarmDescription:   jsii.String("Gangway: " + description + "; fails and rolls back a deployment"),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(float64(periods)),
			DatapointsToAlarm:  jsii.Number(float64(periods)),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			// The load balancer publishes only while requests flow: silence is not a failure.
			TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		s.Alarms = append(s.Alarms, a)
		s.AlarmNames = append(s.AlarmNames, prefix+"-"+name)
		names = append(names, jsii.String(prefix+"-"+name))
		// The names are literals, so the dependency a reference would carry is made explicit.
		s.Service.Node().AddDependency(a)
	}
	for _, g := range groups {
		alarm(g.name+"Target5xx", g.name+"-target-5xx", fmt.Sprintf("5xx responses from the %s target group's tasks", g.name),
			s.albMetric("HTTPCode_Target_5XX_Count", "Sum", g.tg), float64(r.Target5xxThreshold), 1)
		alarm(g.name+"UnhealthyHosts", g.name+"-unhealthy-hosts", fmt.Sprintf("unhealthy targets in the %s target group", g.name),
			s.albMetric("UnHealthyHostCount", "Maximum", g.tg), float64(r.UnhealthyHostThreshold), 2)
		alarm(g.name+"P99Latency", g.name+"-p99-latency", fmt.Sprintf("p99 response time of the %s target group's tasks", g.name),
			s.albMetric("TargetResponseTime", "p99", g.tg), r.TargetP99Latency.Seconds(), 3)
	}
	alarm("Elb5xx", "elb-5xx", "5xx responses the load balancer generated (no target answered)",
		s.albMetric("HTTPCode_ELB_5XX_Count", "Sum", nil), float64(r.ELB5xxThreshold), 1)
	s.Service.EnableDeploymentAlarms(&names, &awsecs.DeploymentAlarmOptions{Behavior: awsecs.AlarmBehavior_ROLLBACK_ON_ALARM})
}

func (s *GangwayService) lifecycleHook(r resolved) awslambda.Function {
	code := r.HookCode
	if code == nil {
		code = awslambda.Code_FromAsset(jsii.String(r.HookAssetDir), nil)
	}
	smoke := make([]map[string]string, 0, len(r.SmokeChecks))
	for _, c := range r.SmokeChecks {
		smoke = append(smoke, map[string]string{"path": c.Path, "statuses": c.Statuses})
	}
	smokeJSON, _ := json.Marshal(smoke)
	env := map[string]string{
		hook.EnvURL:            *s.ReadinessURL,
		hook.EnvProbes:         fmt.Sprint(r.HookProbes),
		hook.EnvDeadline:       r.HookDeadline.String(),
		hook.EnvSmokeChecks:    string(smokeJSON),
		hook.EnvTargetGroups:   *awscdk.Fn_Join(jsii.String(","), &[]*string{s.Blue.TargetGroupArn(), s.Green.TargetGroupArn()}),
		hook.EnvProductionRule: *s.ProductionRule,
	}
	if r.internetFacing {
		env[hook.EnvHeader] = TestHeader
		env[hook.EnvHeaderValue] = testHeaderValue(s)
	}
	s.HookLogs = awslogs.NewLogGroup(s.Construct, jsii.String("HookLogs"), &awslogs.LogGroupProps{
		Retention:     r.LogRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	fn := awslambda.NewFunction(s.Construct, jsii.String("LifecycleHookFunction"), &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         code,
		MemorySize:   jsii.Number(128),
		Timeout:      awscdk.Duration_Seconds(seconds(r.hookFunctionTimeout())),
		Environment:  stringMap(env),
		Description:  jsii.String("Gangway lifecycle hook: healthy new tasks at POST_SCALE_UP; " + ReadyPath + " and smoke checks through the test listener at POST_TEST_TRAFFIC_SHIFT"),
		LogGroup:     s.HookLogs,
		// In the VPC in both cases: the test listener is closed to the internet, and an
		// internal load balancer is reachable only from inside.
		Vpc:        s.Vpc,
		VpcSubnets: &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
	})
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetHealth"),
		// Describe calls of Elastic Load Balancing do not support resource-level permissions.
		Resources: jsii.Strings("*"),
	}))
	fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings("ecs:DescribeServices"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"ArnEquals": map[string]any{"ecs:cluster": s.Cluster.ClusterArn()}},
	}))
	return fn
}

func (s *GangwayService) autoscaling(r resolved) {
	s.Scaling = s.Service.AutoScaleTaskCount(&awsapplicationautoscaling.EnableScalingProps{
		MinCapacity: jsii.Number(float64(r.MinCapacity)),
		MaxCapacity: jsii.Number(float64(r.MaxCapacity)),
	})
	s.Scaling.ScaleOnCpuUtilization(jsii.String("Cpu"), &awsecs.CpuUtilizationScalingProps{
		TargetUtilizationPercent: jsii.Number(float64(r.CpuTargetPercent)),
	})
	// One request-count policy over both target groups. A policy per group would leave the
	// idle group's without data (the load balancer publishes only while requests flow), its
	// alarms in INSUFFICIENT_DATA, and Application Auto Scaling scales in only when every
	// target tracking policy is ready to. The metric is the sum of the groups' requests per
	// target, each gap filled with 0: the live group's value after a deployment, the whole
	// load over the (equal) task count while both serve.
	groups := []elbv2.ApplicationTargetGroup{s.Blue}
	if s.Green != nil {
		groups = append(groups, s.Green)
	}
	var queries []map[string]any
	var terms []string
	for i, tg := range groups {
		id := fmt.Sprintf("tg%d", i)
		queries = append(queries, map[string]any{
			"Id": id,
			"MetricStat": map[string]any{
				"Metric": map[string]any{
					"Namespace":  "AWS/ApplicationELB",
					"MetricName": "RequestCountPerTarget",
					"Dimensions": []map[string]any{{"Name": "TargetGroup", "Value": tg.TargetGroupFullName()}},
				},
				"Stat": "Sum",
			},
			"ReturnData": false,
		})
		terms = append(terms, fmt.Sprintf("FILL(%s, 0)", id))
	}
	queries = append(queries, map[string]any{
		"Id":         "requests",
		"Expression": strings.Join(terms, " + "),
		"Label":      "requests per target, both target groups",
		"ReturnData": true,
	})
	s.Scaling.ScaleToTrackCustomMetric(jsii.String("Requests"), &awsecs.TrackCustomMetricProps{
		// Replaced by the metric math below; the L2 takes only a single metric.
		Metric: awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/ApplicationELB"), MetricName: jsii.String("RequestCountPerTarget"), Statistic: jsii.String("Sum"),
		}),
		TargetValue: jsii.Number(float64(r.RequestsPerTarget)),
	})
	var policy awscdk.CfnResource
	for _, c := range *s.Scaling.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if *c.Node().Id() == "Requests" {
			policy = c.Node().DefaultChild().(awscdk.CfnResource)
		}
	}
	const spec = "TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification"
	for _, f := range []string{"MetricName", "Namespace", "Statistic", "Dimensions", "Unit"} {
		policy.AddPropertyDeletionOverride(jsii.String(spec + "." + f))
	}
	policy.AddPropertyOverride(jsii.String(spec+".Metrics"), queries)
}

func seconds(d time.Duration) *float64 {
	return jsii.Number(float64(d / time.Second))
}

// stringMap converts to the jsii map form (CDK renders the keys sorted).
func stringMap(m map[string]string) *map[string]*string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = jsii.String(v)
	}
	return &out
}
