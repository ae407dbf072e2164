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
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53targets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/gangway-ecs/gangway/cdk/hook"
)

// GangwayService is the construct. Its fields expose what a stack may want to extend.
type GangwayService struct {
	constructs.Construct

	Vpc            awsec2.IVpc
	Cluster        awsecs.ICluster
	LoadBalancer   elbv2.ApplicationLoadBalancer
	Production     elbv2.ApplicationListener     // HTTPS
	ProductionRule elbv2.ApplicationListenerRule // forwards to Blue (weight 1) and Green (weight 0)
	Test           elbv2.ApplicationListener     // nil for ROLLING
	TestRule       elbv2.ApplicationListenerRule // nil for ROLLING
	Blue, Green    elbv2.ApplicationTargetGroup  // Green is nil for ROLLING
	TaskDefinition awsecs.FargateTaskDefinition
	Proxy, App     awsecs.ContainerDefinition
	Service        awsecs.FargateService
	Hook           awslambda.Function    // nil for ROLLING
	Alarms         []awscloudwatch.Alarm // the deployment alarms, ROLLBACK_ON_ALARM
	Scaling        awsecs.ScalableTaskCount
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
	if len(problems) > 0 {
		return nil, &ValidationError{Construct: id, Problems: problems}
	}

	s := &GangwayService{Construct: constructs.NewConstruct(scope, jsii.String(id))}
	s.network(r)
	s.loadBalancer(r)
	s.taskDefinition(r)
	s.service(r)
	s.autoscaling(r)
	return s, nil
}

func (s *GangwayService) network(r resolved) {
	s.Vpc = r.Vpc
	if s.Vpc == nil {
		s.Vpc = awsec2.NewVpc(s.Construct, jsii.String("Vpc"), &awsec2.VpcProps{
			MaxAzs:      jsii.Number(2),
			NatGateways: jsii.Number(1),
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
	weighted := []*elbv2.WeightedTargetGroup{{TargetGroup: s.Blue, Weight: jsii.Number(1)}}
	if r.blueGreen {
		s.Green = targetGroup("Green")
		// ECS requires the production rule to reference both target groups, exactly one of
		// them with a non-zero weight; it moves the weights itself during a deployment.
		weighted = append(weighted, &elbv2.WeightedTargetGroup{TargetGroup: s.Green, Weight: jsii.Number(0)})
	}

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
		Port:         jsii.Number(443),
		Protocol:     elbv2.ApplicationProtocol_HTTPS,
		Certificates: &[]elbv2.IListenerCertificate{elbv2.ListenerCertificate_FromCertificateManager(certificate)},
		SslPolicy:    elbv2.SslPolicy_RECOMMENDED_TLS,
		Open:         jsii.Bool(true),
		// Requests that match no rule (none, with the catch-all rule below) get a 404, never
		// a target group that ECS does not manage.
		DefaultAction: elbv2.ListenerAction_FixedResponse(jsii.Number(404), &elbv2.FixedResponseOptions{
			ContentType: jsii.String("text/plain"), MessageBody: jsii.String("no route"),
		}),
	})
	s.ProductionRule = elbv2.NewApplicationListenerRule(s.Construct, jsii.String("ProductionRule"), &elbv2.ApplicationListenerRuleProps{
		Listener:   s.Production,
		Priority:   jsii.Number(1),
		Conditions: &[]elbv2.ListenerCondition{elbv2.ListenerCondition_PathPatterns(jsii.Strings("/*"))},
		Action:     elbv2.ListenerAction_WeightedForward(&weighted, nil),
	})
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
	s.Test = s.LoadBalancer.AddListener(jsii.String("Test"), &elbv2.BaseApplicationListenerProps{
		Port:     jsii.Number(float64(r.TestListenerPort)),
		Protocol: elbv2.ApplicationProtocol_HTTP,
		Open:     jsii.Bool(false),
		DefaultAction: elbv2.ListenerAction_FixedResponse(jsii.Number(404), &elbv2.FixedResponseOptions{
			ContentType: jsii.String("text/plain"), MessageBody: jsii.String("no route"),
		}),
	})
	conditions := []elbv2.ListenerCondition{elbv2.ListenerCondition_PathPatterns(jsii.Strings("/*"))}
	if r.internetFacing {
		conditions = append(conditions, elbv2.ListenerCondition_HttpHeader(jsii.String(TestHeader), jsii.Strings(testHeaderValue(s))))
	}
	s.TestRule = elbv2.NewApplicationListenerRule(s.Construct, jsii.String("TestRule"), &elbv2.ApplicationListenerRuleProps{
		Listener:   s.Test,
		Priority:   jsii.Number(1),
		Conditions: &conditions,
		Action:     elbv2.ListenerAction_WeightedForward(&weighted, nil),
	})
	s.ReadinessURL = jsii.String(fmt.Sprintf("http://%s:%d%s", *s.LoadBalancer.LoadBalancerDnsName(), r.TestListenerPort, ReadyPath))

	cidrs := r.TestTrafficCidrs
	if len(cidrs) == 0 {
		if r.internetFacing {
			cidrs = []string{"0.0.0.0/0"}
		} else {
			cidrs = []string{*s.Vpc.VpcCidrBlock()}
		}
	}
	for i, c := range cidrs {
		s.LoadBalancer.Connections().AllowFrom(awsec2.Peer_Ipv4(jsii.String(c)),
			awsec2.Port_Tcp(jsii.Number(float64(r.TestListenerPort))),
			jsii.String(fmt.Sprintf("test traffic %d", i)))
	}
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
	logs := func(id, prefix string) awsecs.LogDriver {
		group := awslogs.NewLogGroup(s.Construct, jsii.String(id), &awslogs.LogGroupProps{
			Retention:     r.LogRetention,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		return awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup:     group,
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
		Logging:     logs("AppLogs", AppContainerName),
		// The app stops after the proxy (see the dependency below), when no request can reach
		// it any more; it gets the same window.
		StopTimeout: awscdk.Duration_Seconds(seconds(b.StopTimeout)),
	})

	env := map[string]string{}
	for k, v := range r.ProxyEnvironment {
		env[k] = v
	}
	env[EnvShutdownDelay] = b.ShutdownDelay.String()
	env[EnvDrainTimeout] = b.DrainTimeout.String()
	env[EnvShutdownDeadline] = b.StopTimeout.String()
	env[EnvReadyPath] = ReadyPath
	env[EnvListenAddr] = fmt.Sprintf(":%d", r.ProxyPort)
	env[EnvUpstream] = fmt.Sprintf("http://127.0.0.1:%d", r.AppPort)
	if r.ProxyConfig != "" {
		env[EnvConfigYAML] = r.ProxyConfig
	}
	s.Proxy = s.TaskDefinition.AddContainer(jsii.String(ProxyContainerName), &awsecs.ContainerDefinitionOptions{
		Image:       r.ProxyImage,
		Essential:   jsii.Bool(true),
		Command:     jsii.Strings("run"),
		Environment: stringMap(env),
		Logging:     logs("ProxyLogs", ProxyContainerName),
		StopTimeout: awscdk.Duration_Seconds(seconds(b.StopTimeout)),
		HealthCheck: &awsecs.HealthCheck{
			Command:     jsii.Strings("CMD", HealthcheckCommand),
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
	// ECS stops containers in reverse dependency order: the proxy depends on the app, so the
	// app starts first and the proxy stops first — it drains while the app still serves.
	s.Proxy.AddContainerDependencies(&awsecs.ContainerDependency{
		Container: s.App,
		Condition: awsecs.ContainerDependencyCondition_START,
	})
}

func (s *GangwayService) service(r resolved) {
	b := r.budget
	props := &awsecs.FargateServiceProps{
		Cluster:                s.Cluster,
		TaskDefinition:         s.TaskDefinition,
		DesiredCount:           jsii.Number(float64(r.DesiredCount)),
		DeploymentStrategy:     r.Strategy,
		MinHealthyPercent:      jsii.Number(float64(b.MinimumHealthyPercent)),
		MaxHealthyPercent:      jsii.Number(float64(b.MaximumPercent)),
		HealthCheckGracePeriod: awscdk.Duration_Seconds(seconds(b.HealthCheckGracePeriod)),
		CircuitBreaker:         &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
		DeploymentController:   &awsecs.DeploymentController{Type: awsecs.DeploymentControllerType_ECS},
		PlatformVersion:        awsecs.FargatePlatformVersion_LATEST,
		PropagateTags:          awsecs.PropagatedTagSource_SERVICE,
		EnableECSManagedTags:   jsii.Bool(true),
	}
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
		s.Hook = s.readinessHook(r)
		props.LifecycleHooks = &[]awsecs.IDeploymentLifecycleHookTarget{
			awsecs.NewDeploymentLifecycleLambdaTarget(s.Hook, jsii.String("ReadinessHook"), &awsecs.DeploymentLifecycleLambdaTargetProps{
				LifecycleStages: &[]awsecs.DeploymentLifecycleStage{awsecs.DeploymentLifecycleStage_POST_TEST_TRAFFIC_SHIFT},
			}),
		}
	}
	s.Service = awsecs.NewFargateService(s.Construct, jsii.String("Service"), props)

	target := &awsecs.LoadBalancerTargetOptions{
		ContainerName: jsii.String(ProxyContainerName),
		ContainerPort: jsii.Number(float64(r.ProxyPort)),
		Protocol:      awsecs.Protocol_TCP,
	}
	if r.blueGreen {
		target.AlternateTarget = awsecs.NewAlternateTarget(jsii.String("Green"), &awsecs.AlternateTargetProps{
			AlternateTargetGroup: s.Green,
			ProductionListener:   awsecs.ListenerRuleConfiguration_ApplicationListenerRule(s.ProductionRule),
			TestListener:         awsecs.ListenerRuleConfiguration_ApplicationListenerRule(s.TestRule),
		})
	}
	s.Service.LoadBalancerTarget(target).AttachToApplicationTargetGroup(s.Blue)

	// ECS's thresholdConfiguration and resetOnHealthyTask have no L2 prop: set them on the
	// CfnService. The L2 renders enable and rollback; these sit beside them.
	cfn := s.Service.Node().DefaultChild().(awsecs.CfnService)
	cfn.AddPropertyOverride(jsii.String("DeploymentConfiguration.DeploymentCircuitBreaker.ThresholdConfiguration"),
		map[string]any{"Type": r.threshold.Type, "Value": r.threshold.Value})
	cfn.AddPropertyOverride(jsii.String("DeploymentConfiguration.DeploymentCircuitBreaker.ResetOnHealthyTask"), r.resetOnHealthy)

	s.alarms(r)
}

// alarms creates the deployment alarms on each target group: whichever is "new" in a given
// deployment (green, then blue on the next one) is the one that can trip. An alarm already
// in ALARM when a deployment starts does not fail it.
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
	for _, g := range groups {
		fiveXX := awscloudwatch.NewAlarm(s.Construct, jsii.String(g.name+"Target5xx"), &awscloudwatch.AlarmProps{
			AlarmName:        jsii.String(prefix + "-" + g.name + "-target-5xx"),
			AlarmDescription: jsii.String(fmt.Sprintf("Gangway: 5xx responses from the %s target group's tasks; fails and rolls back a deployment", g.name)),
			Metric: g.tg.Metrics().HttpCodeTarget(elbv2.HttpCodeTarget_TARGET_5XX_COUNT, &awscloudwatch.MetricOptions{
				Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Sum"),
			}),
			Threshold:          jsii.Number(float64(r.Target5xxThreshold)),
			EvaluationPeriods:  jsii.Number(1),
			DatapointsToAlarm:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		unhealthy := awscloudwatch.NewAlarm(s.Construct, jsii.String(g.name+"UnhealthyHosts"), &awscloudwatch.AlarmProps{
			AlarmName:        jsii.String(prefix + "-" + g.name + "-unhealthy-hosts"),
			AlarmDescription: jsii.String(fmt.Sprintf("Gangway: unhealthy targets in the %s target group; fails and rolls back a deployment", g.name)),
			Metric: g.tg.Metrics().UnhealthyHostCount(&awscloudwatch.MetricOptions{
				Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum"),
			}),
			Threshold:          jsii.Number(float64(r.UnhealthyHostThreshold)),
			EvaluationPeriods:  jsii.Number(2),
			DatapointsToAlarm:  jsii.Number(2),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		s.Alarms = append(s.Alarms, fiveXX, unhealthy)
		names = append(names, jsii.String(prefix+"-"+g.name+"-target-5xx"), jsii.String(prefix+"-"+g.name+"-unhealthy-hosts"))
		// The names are literals, so the dependency a reference would carry is made explicit.
		s.Service.Node().AddDependency(fiveXX, unhealthy)
	}
	s.Service.EnableDeploymentAlarms(&names, &awsecs.DeploymentAlarmOptions{Behavior: awsecs.AlarmBehavior_ROLLBACK_ON_ALARM})
}

func (s *GangwayService) readinessHook(r resolved) awslambda.Function {
	cfg := hook.Defaults()
	probeTimeout := cfg.ProbeTimeout
	// One invocation: every probe may time out, with the pauses between them, plus start-up.
	timeout := time.Duration(r.HookProbes)*(probeTimeout+cfg.ProbeInterval) + 15*time.Second

	code := r.HookCode
	if code == nil {
		code = awslambda.Code_FromAsset(jsii.String(r.HookAssetDir), nil)
	}
	env := map[string]string{
		hook.EnvURL:      *s.ReadinessURL,
		hook.EnvProbes:   fmt.Sprint(r.HookProbes),
		hook.EnvDeadline: r.HookDeadline.String(),
	}
	if r.internetFacing {
		env[hook.EnvHeader] = TestHeader
		env[hook.EnvHeaderValue] = testHeaderValue(s)
	}
	props := &awslambda.FunctionProps{
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         code,
		MemorySize:   jsii.Number(128),
		Timeout:      awscdk.Duration_Seconds(seconds(timeout)),
		Environment:  stringMap(env),
		Description:  jsii.String("Gangway readiness hook: probes " + ReadyPath + " through the test listener at POST_TEST_TRAFFIC_SHIFT"),
		LogGroup: awslogs.NewLogGroup(s.Construct, jsii.String("HookLogs"), &awslogs.LogGroupProps{
			Retention:     r.LogRetention,
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		}),
	}
	if !r.internetFacing {
		// An internal load balancer is reachable only from inside the VPC.
		props.Vpc = s.Vpc
		props.VpcSubnets = &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
	}
	fn := awslambda.NewFunction(s.Construct, jsii.String("ReadinessHook"), props)
	if !r.internetFacing {
		s.LoadBalancer.Connections().AllowFrom(fn, awsec2.Port_Tcp(jsii.Number(float64(r.TestListenerPort))),
			jsii.String("readiness hook to the test listener"))
	}
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
	// One request-count policy per target group. Only the live group receives requests; the
	// idle one reports none and asks to scale in, which Application Auto Scaling does only
	// when every policy agrees — so the live group's policy is the one that decides.
	for _, g := range []struct {
		id string
		tg elbv2.ApplicationTargetGroup
	}{{"RequestsBlue", s.Blue}, {"RequestsGreen", s.Green}} {
		if g.tg == nil {
			continue
		}
		s.Scaling.ScaleOnRequestCount(jsii.String(g.id), &awsecs.RequestCountScalingProps{
			RequestsPerTarget: jsii.Number(float64(r.RequestsPerTarget)),
			TargetGroup:       g.tg,
		})
	}
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
