package gangway

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"

	"github.com/gangway-ecs/gangway/cdk/hook"
	"github.com/gangway-ecs/gangway/internal/budget"
)

// Paths and ports the construct wires together. They match the proxy's defaults.
const (
	// ReadyPath is the proxy's readiness handler on the traffic port: the target groups'
	// health check and the lifecycle hook both probe it. The proxy serves the same verdict as
	// /readyz on its probe server; the construct sets GANGWAY_READY_PATH so the two agree.
	ReadyPath = "/gangway/ready"
	// ProbePort is the proxy's probe server (127.0.0.1:28080): never the traffic port.
	ProbePort = 28080
	// HealthcheckCommand is the static probe binary in the proxy image. The container's ECS
	// health check runs it with HealthcheckProbe: ECS replaces a task whose essential
	// container turns UNHEALTHY, so that check must fail only when the proxy never finished
	// starting or stopped being live — never because a dependency is down, which readiness
	// (the target groups' health check) reports without killing anything.
	HealthcheckCommand = "/healthcheck"
	HealthcheckProbe   = "container"
	// ProxyUser is the proxy's user: no root, as in taskdefs/.
	ProxyUser = "65532"
	// TestHeader is the header the test listener rule requires when the load balancer is
	// internet-facing, so that test traffic to the new tasks is not open to anyone who finds
	// the port. It is a gate against stray traffic, not a secret: its value is in the template.
	TestHeader = "X-Gangway-Test-Traffic"
)

// Container names in the task definition.
const (
	ProxyContainerName = "proxy"
	AppContainerName   = "app"
)

// Environment variables the construct sets on the proxy container so that its shutdown
// choreography matches the timing budget the rest of the stack was built from.
const (
	EnvShutdownDelay    = "GANGWAY_SHUTDOWN_DELAY"
	EnvDrainTimeout     = "GANGWAY_SHUTDOWN_DRAIN_TIMEOUT"
	EnvShutdownDeadline = "GANGWAY_SHUTDOWN_DEADLINE" // the container's stopTimeout
	EnvReadyPath        = "GANGWAY_READY_PATH"
	EnvListenAddr       = "GANGWAY_LISTEN_ADDR"
	EnvUpstream         = "GANGWAY_UPSTREAM"
	EnvConfigYAML       = "GANGWAY_CONFIG_YAML"
	EnvConfigFile       = "GANGWAY_CONFIG"
	// EnvHealthAddr moves the probe server and the clients that dial it (/healthcheck,
	// `proxy health`) together; without it /healthcheck dials DefaultProbeAddr.
	EnvHealthAddr = "GANGWAY_HEALTH_ADDR"
	// DefaultProbeAddr is where /healthcheck dials when EnvHealthAddr is not set.
	DefaultProbeAddr = "127.0.0.1:28080"
)

// Circuit-breaker threshold types (ECS thresholdConfiguration.type).
const (
	ThresholdBoundedPercent   = "BOUNDED_PERCENT"
	ThresholdUnboundedPercent = "UNBOUNDED_PERCENT"
	ThresholdCount            = "COUNT"
)

// CircuitBreakerThreshold is ECS's thresholdConfiguration, which the CDK L2 does not expose:
// the construct sets it through the CfnService escape hatch.
type CircuitBreakerThreshold struct {
	Type  string // ThresholdBoundedPercent (ECS default), ThresholdUnboundedPercent or ThresholdCount
	Value int    // percent 1–100, or a count of failed tasks (1–200)
}

// GangwayServiceProps configures a GangwayService. Required: AppImage, AppPort, ProxyImage,
// and either Certificate or DomainName. Everything else has a default, listed per field.
type GangwayServiceProps struct {
	// Vpc to run in. Default: a new VPC over 2 availability zones with NatGateways NAT
	// gateways. A given Vpc needs private subnets with egress (the tasks and the hook run there).
	Vpc awsec2.IVpc
	// NatGateways of the new VPC: 1 (default, one shared gateway; an outage of its zone cuts
	// the other zone's egress) or 2 (one per zone). Only without Vpc.
	NatGateways int
	// Cluster to run in (must be in Vpc). Default: a new cluster with Container Insights.
	Cluster awsecs.ICluster
	// InternetFacing load balancer. Default true. When false the load balancer is internal
	// and the hook Lambda runs inside the VPC.
	InternetFacing *bool

	// AppImage is the application's container image. Required.
	AppImage awsecs.ContainerImage
	// AppPort is the port the application listens on inside the task; the proxy forwards to
	// 127.0.0.1:AppPort. Required.
	AppPort int
	// AppEnvironment is passed to the application container.
	AppEnvironment map[string]string

	// ProxyImage is Gangway's proxy image (with /healthcheck). Required.
	ProxyImage awsecs.ContainerImage
	// ProxyPort is the proxy's traffic port, the target groups' port. Default 8080.
	ProxyPort int
	// ProxyConfig is an optional proxy configuration (YAML), passed in GANGWAY_CONFIG_YAML.
	// Without it the proxy builds a one-route sidecar configuration from the variables the
	// construct sets (GANGWAY_LISTEN_ADDR, GANGWAY_READY_PATH, GANGWAY_UPSTREAM); with it the
	// proxy ignores those, so the construct does not set them, and instead resolves the
	// configuration as the proxy will (internal/config) and refuses it at synth time unless
	// an http listener without TLS listens on ProxyPort on every interface with
	// readiness_path ReadyPath (the target groups' health check), and the probe server is
	// where /healthcheck dials (admin.address, or GANGWAY_HEALTH_ADDR in ProxyEnvironment).
	// Files it names (certificates, keys, CAs) are the image's and are not read at synth.
	ProxyConfig string
	// ProxyEnvironment is passed to the proxy container (after the construct's own variables,
	// which it may not override). GANGWAY_CONFIG (a file inside the image) is refused: the
	// construct cannot check it against its ports; pass the document in ProxyConfig.
	ProxyEnvironment map[string]string

	// Cpu and MemoryMiB of the task (a valid Fargate pair). Default 512 and 1024.
	Cpu, MemoryMiB int
	// DesiredCount of tasks. Default 2. MinCapacity (default DesiredCount) and MaxCapacity
	// (default 4 × DesiredCount) bound autoscaling.
	DesiredCount, MinCapacity, MaxCapacity int
	// Autoscaling of the task count. Default true. With it, the service carries no
	// DesiredCount: every stack update would otherwise reset a scaled-out service to it.
	// Application Auto Scaling keeps the count within MinCapacity–MaxCapacity; a new service
	// starts with one task and is raised to MinCapacity when the scalable target registers.
	// Without it, the service runs DesiredCount tasks.
	Autoscaling *bool

	// Certificate for the HTTPS production listener. Either Certificate or DomainName.
	Certificate awscertificatemanager.ICertificate
	// DomainName served by the service. Without Certificate, a DNS-validated certificate is
	// requested for it (validated through HostedZone when given, by hand otherwise).
	DomainName string
	// HostedZone, when given with DomainName, gets an alias record to the load balancer and
	// the certificate's validation records.
	HostedZone awsroute53.IHostedZone

	// TestListenerPort is the port of the test listener. Default 9443 (plain HTTP).
	TestListenerPort int
	// TestTrafficCidrs may also reach the test listener, besides the hook. Default none: the
	// listener is closed to the internet. The hook runs in the VPC; an internet-facing load
	// balancer sees it arrive from the NAT gateways' public addresses, which the construct
	// allows when it created the VPC. With a given Vpc and an internet-facing load balancer,
	// list the VPC's egress addresses here (required).
	TestTrafficCidrs []string

	// Strategy is the deployment strategy. Default awsecs.DeploymentStrategy_BLUE_GREEN;
	// ROLLING, LINEAR and CANARY are selectable.
	Strategy awsecs.DeploymentStrategy
	// BakeTime after the production traffic shift, while the old tasks wait for a rollback.
	// Whole minutes, 0–1440. Default 5 minutes.
	BakeTime time.Duration
	// StepPercent (LINEAR: 3–100, default 10; CANARY: 0.1–100, default 5) and StepBakeTime
	// (whole minutes, 0–1440; default 6 minutes LINEAR, 10 minutes CANARY).
	StepPercent  float64
	StepBakeTime time.Duration

	// CircuitBreaker threshold. Default {BOUNDED_PERCENT, 50} (ECS's default, made explicit).
	CircuitBreaker *CircuitBreakerThreshold
	// ResetOnHealthyTask: count only consecutive failures (ECS's default, true).
	ResetOnHealthyTask *bool

	// Budget is the timing budget every health-check, drain and deployment setting comes
	// from. Default budget.Defaults(). When set, it is used as given (start from
	// budget.Defaults() and change fields); it must pass budget.Check, which counts the
	// proxy's own shutdown margin (budget.ShutdownMargin, not a setting).
	Budget *budget.Settings

	// Target5xxThreshold: 5xx responses from the new target group in one minute that fail
	// the deployment. Default 5.
	Target5xxThreshold int
	// ELB5xxThreshold: 5xx responses the load balancer generated itself (no target answered:
	// refused, reset, timed out) in one minute that fail the deployment. Default 5.
	ELB5xxThreshold int
	// TargetP99Latency: the targets' p99 response time that, held for three minutes in a row,
	// fails the deployment. Default 2 s; whole milliseconds.
	TargetP99Latency time.Duration
	// UnhealthyHostThreshold: unhealthy targets in the new target group, for two minutes in
	// a row, that fail the deployment. Default 1.
	UnhealthyHostThreshold int

	// HookProbes: rounds of requests one hook invocation needs in a row (default 5);
	// HookDeadline: how long the hook keeps answering IN_PROGRESS before FAILED, at each of
	// its stages (default 10 minutes, at most 24 hours, ECS's limit for a lifecycle stage).
	HookProbes   int
	HookDeadline time.Duration
	// SmokeChecks are sent through the test listener after readiness, in every round: real
	// routes of the application and the statuses each must answer. Default one check, GET /
	// answering anything but a 5xx. A revision that is ready but broken fails here, before
	// production traffic moves.
	SmokeChecks []SmokeCheck
	// HookCode overrides the hook function's code. Default: the asset in HookAssetDir.
	HookCode awslambda.Code
	// HookAssetDir holds the `bootstrap` built by `make cdk-hook` (linux/arm64). Default
	// "build/readiness-hook", relative to the CDK app's working directory.
	HookAssetDir string

	// CpuTargetPercent and RequestsPerTarget are the autoscaling targets. Defaults 60 and 1000.
	CpuTargetPercent  int
	RequestsPerTarget int

	// LogRetention of the containers' and the hook's logs. Default one month.
	LogRetention awslogs.RetentionDays

	// Dashboard: a CloudWatch dashboard of the service (5xx, healthy and unhealthy hosts,
	// response time and requests per target group, the deployment alarms, CPU and memory,
	// tasks and deployments). Default true.
	Dashboard *bool
	// Outputs: the stack outputs an on-call runbook reads (see Exports). Default true.
	Outputs *bool
	// OutputPrefix is put before every output key, so that a stack with two services keeps
	// them apart ("Api" gives ApiClusterName, ...). Letters and digits. Default "": the keys
	// are exactly the names of Exports.
	OutputPrefix string
}

// SmokeCheck is one request the hook sends through the test listener: GET Path (with the
// query, if any) must answer a status in Statuses, written as the load balancer's matcher
// is: codes and ranges, "200", "200,204", "200-299".
type SmokeCheck struct {
	Path     string
	Statuses string
}

// Problem is one prop the construct refuses: which prop, its value, and the rule it breaks.
type Problem struct {
	Prop  string
	Value string
	Rule  string
}

func (p Problem) String() string {
	return fmt.Sprintf("GangwayServiceProps.%s = %s: %s", p.Prop, p.Value, p.Rule)
}

// ValidationError lists every refused prop; NewGangwayService returns it before creating
// anything, so `cdk synth` stops with the whole list.
type ValidationError struct {
	Construct string
	Problems  []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "GangwayService %q: %d invalid prop(s):", e.Construct, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// outputKeyPattern is what OutputPrefix may be: CloudFormation's logical IDs (output keys
// among them) are alphanumeric.
var outputKeyPattern = regexp.MustCompile(`^[A-Za-z0-9]*$`)

// resolved is the props with every default filled in and every value checked.
type resolved struct {
	GangwayServiceProps
	internetFacing bool
	budget         budget.Settings
	threshold      CircuitBreakerThreshold
	resetOnHealthy bool
	blueGreen      bool // any strategy with two target groups and a test listener
	autoscaling    bool
	dashboard      bool
	outputs        bool
}

// Defaults of the props (also in the field comments and cdk/README.md).
const (
	DefaultProxyPort         = 8080
	DefaultTestListenerPort  = 9443
	DefaultCpu               = 512
	DefaultMemoryMiB         = 1024
	DefaultDesiredCount      = 2
	DefaultBakeTime          = 5 * time.Minute
	DefaultHookProbes        = 5
	DefaultHookDeadline      = 10 * time.Minute
	DefaultHookAssetDir      = "build/readiness-hook"
	DefaultCpuTargetPercent  = 60
	DefaultRequestsPerTarget = 1000
	DefaultTarget5xx         = 5
	DefaultELB5xx            = 5
	DefaultTargetP99Latency  = 2 * time.Second
	DefaultUnhealthyHosts    = 1
	DefaultNatGateways       = 1

	// maxHookDeadline is ECS's limit on one lifecycle stage.
	maxHookDeadline = 24 * time.Hour
	// maxDeploymentMinutes bounds the planned length of a deployment (hook deadlines, step
	// bake times, bake time): CloudFormation gives up on a service deployment after 36 hours
	// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-deployment-how-it-works.html),
	// and 3 hours are kept for scale-up, traffic shifts and clean-up.
	maxDeploymentMinutes = 1980
	// vpcAzs is the number of availability zones of the VPC the construct creates.
	vpcAzs = 2
)

func resolve(p GangwayServiceProps) (resolved, []Problem) {
	r := resolved{GangwayServiceProps: p, internetFacing: true, resetOnHealthy: true, autoscaling: true, dashboard: true, outputs: true}
	var v validator

	if p.Dashboard != nil {
		r.dashboard = *p.Dashboard
	}
	if p.Outputs != nil {
		r.outputs = *p.Outputs
	}
	if !outputKeyPattern.MatchString(p.OutputPrefix) {
		v.add("OutputPrefix", fmt.Sprintf("%q", p.OutputPrefix), "letters and digits only: it begins CloudFormation output keys, which are alphanumeric")
	} else if !r.outputs && p.OutputPrefix != "" {
		v.add("OutputPrefix", fmt.Sprintf("%q", p.OutputPrefix), "applies only with Outputs (the construct creates no output)")
	}

	if p.InternetFacing != nil {
		r.internetFacing = *p.InternetFacing
	}
	if p.Autoscaling != nil {
		r.autoscaling = *p.Autoscaling
	}
	switch {
	case p.Vpc != nil && p.NatGateways != 0:
		v.add("NatGateways", fmt.Sprint(p.NatGateways), "applies only to the VPC the construct creates, not to a given Vpc")
	case p.Vpc == nil:
		setDefault(&r.NatGateways, DefaultNatGateways)
		if r.NatGateways < 1 || r.NatGateways > vpcAzs {
			v.add("NatGateways", fmt.Sprint(r.NatGateways), fmt.Sprintf("must be 1–%d: the tasks and the hook run in private subnets and need egress (one gateway per zone at most)", vpcAzs))
		}
	}
	if p.AppImage == nil {
		v.add("AppImage", "nil", "required: the application's container image")
	}
	if p.ProxyImage == nil {
		v.add("ProxyImage", "nil", "required: Gangway's proxy image (with /healthcheck)")
	}
	if p.Cluster != nil && p.Vpc == nil {
		v.add("Vpc", "nil", "required when Cluster is given: the load balancer must be in the cluster's VPC")
	}

	setDefault(&r.ProxyPort, DefaultProxyPort)
	setDefault(&r.TestListenerPort, DefaultTestListenerPort)
	v.port("AppPort", p.AppPort, "required: the port the application listens on")
	v.port("ProxyPort", r.ProxyPort, "the proxy's traffic port")
	v.port("TestListenerPort", r.TestListenerPort, "the test listener's port")
	if p.AppPort == r.ProxyPort && p.AppPort != 0 {
		v.add("AppPort", fmt.Sprint(p.AppPort), fmt.Sprintf("must differ from ProxyPort (%d): both listen in the same network namespace", r.ProxyPort))
	}
	for _, port := range []struct {
		name string
		n    int
	}{{"AppPort", p.AppPort}, {"ProxyPort", r.ProxyPort}} {
		if port.n == ProbePort {
			v.add(port.name, fmt.Sprint(port.n), fmt.Sprintf("must not be %d: the proxy's probe server listens there", ProbePort))
		}
	}
	if r.TestListenerPort == 80 || r.TestListenerPort == 443 {
		v.add("TestListenerPort", fmt.Sprint(r.TestListenerPort), "must not be 80 or 443: the production listeners use them")
	}

	setDefault(&r.Cpu, DefaultCpu)
	setDefault(&r.MemoryMiB, DefaultMemoryMiB)
	if rule := fargateSize(r.Cpu, r.MemoryMiB); rule != "" {
		v.add("MemoryMiB", fmt.Sprintf("%d (Cpu %d)", r.MemoryMiB, r.Cpu), rule)
	}

	setDefault(&r.DesiredCount, DefaultDesiredCount)
	setDefault(&r.MinCapacity, r.DesiredCount)
	setDefault(&r.MaxCapacity, 4*r.DesiredCount)
	if r.DesiredCount < 1 || r.DesiredCount > 5000 {
		v.add("DesiredCount", fmt.Sprint(r.DesiredCount), "must be 1–5000: a deployment needs tasks to check")
	}
	if r.MinCapacity < 1 || r.MinCapacity > r.DesiredCount {
		v.add("MinCapacity", fmt.Sprint(r.MinCapacity), fmt.Sprintf("must be 1–DesiredCount (%d)", r.DesiredCount))
	}
	if r.MaxCapacity < r.DesiredCount || r.MaxCapacity > 5000 {
		v.add("MaxCapacity", fmt.Sprint(r.MaxCapacity), fmt.Sprintf("must be DesiredCount (%d)–5000", r.DesiredCount))
	}

	if p.Certificate == nil && p.DomainName == "" {
		v.add("Certificate", "nil", "required (or DomainName): the production listener is HTTPS")
	}
	if p.HostedZone != nil && p.DomainName == "" {
		v.add("DomainName", `""`, "required when HostedZone is given")
	}
	if p.DomainName != "" && (strings.ContainsAny(p.DomainName, " /:") || !strings.Contains(p.DomainName, ".") || len(p.DomainName) > 253) {
		v.add("DomainName", fmt.Sprintf("%q", p.DomainName), "must be a fully qualified domain name")
	}
	for i, c := range p.TestTrafficCidrs {
		if pfx, err := netip.ParsePrefix(c); err != nil {
			v.add(fmt.Sprintf("TestTrafficCidrs[%d]", i), fmt.Sprintf("%q", c), "must be a CIDR block such as 203.0.113.0/24")
		} else if pfx.Bits() == 0 {
			v.add(fmt.Sprintf("TestTrafficCidrs[%d]", i), fmt.Sprintf("%q", c), "must not be the whole internet: the test listener reaches revisions no one has checked yet")
		}
	}

	// Deployment strategy and its traffic shifting.
	if p.Strategy == "" {
		r.Strategy = awsecs.DeploymentStrategy_BLUE_GREEN
	}
	switch r.Strategy {
	case awsecs.DeploymentStrategy_ROLLING:
	case awsecs.DeploymentStrategy_BLUE_GREEN, awsecs.DeploymentStrategy_LINEAR, awsecs.DeploymentStrategy_CANARY:
		r.blueGreen = true
	default:
		v.add("Strategy", string(p.Strategy), "must be ROLLING, BLUE_GREEN, LINEAR or CANARY")
	}
	if r.blueGreen && p.Vpc != nil && r.internetFacing && len(p.TestTrafficCidrs) == 0 {
		v.add("TestTrafficCidrs", "none", "required with a given Vpc and an internet-facing load balancer: the hook reaches the test listener from the VPC's NAT addresses, which the construct cannot know for a VPC it did not create")
	}
	if p.BakeTime == 0 {
		r.BakeTime = DefaultBakeTime
	}
	v.minutes("BakeTime", r.BakeTime, 1440)
	switch r.Strategy {
	case awsecs.DeploymentStrategy_LINEAR:
		if r.StepPercent == 0 {
			r.StepPercent = 10
		}
		if r.StepBakeTime == 0 {
			r.StepBakeTime = 6 * time.Minute
		}
		v.percentStep("StepPercent", r.StepPercent, 3)
		v.minutes("StepBakeTime", r.StepBakeTime, 1440)
	case awsecs.DeploymentStrategy_CANARY:
		if r.StepPercent == 0 {
			r.StepPercent = 5
		}
		if r.StepBakeTime == 0 {
			r.StepBakeTime = 10 * time.Minute
		}
		v.percentStep("StepPercent", r.StepPercent, 0.1)
		v.minutes("StepBakeTime", r.StepBakeTime, 1440)
	default:
		if p.StepPercent != 0 || p.StepBakeTime != 0 {
			v.add("StepPercent", fmt.Sprint(p.StepPercent), fmt.Sprintf("StepPercent and StepBakeTime apply only to LINEAR and CANARY, not %s", r.Strategy))
		}
	}

	r.threshold = CircuitBreakerThreshold{Type: ThresholdBoundedPercent, Value: 50}
	if p.CircuitBreaker != nil {
		r.threshold = *p.CircuitBreaker
	}
	switch r.threshold.Type {
	case ThresholdBoundedPercent, ThresholdUnboundedPercent:
		if r.threshold.Value < 1 || r.threshold.Value > 100 {
			v.add("CircuitBreaker.Value", fmt.Sprint(r.threshold.Value), "a percent threshold must be 1–100")
		}
	case ThresholdCount:
		if r.threshold.Value < 1 || r.threshold.Value > 200 {
			v.add("CircuitBreaker.Value", fmt.Sprint(r.threshold.Value), "a count threshold must be 1–200 failed tasks")
		}
	default:
		v.add("CircuitBreaker.Type", fmt.Sprintf("%q", r.threshold.Type), "must be BOUNDED_PERCENT, UNBOUNDED_PERCENT or COUNT")
	}
	if p.ResetOnHealthyTask != nil {
		r.resetOnHealthy = *p.ResetOnHealthyTask
	}

	// The timing budget: every rule of budget.Check, plus the fields the construct renders.
	r.budget = budget.Defaults()
	if p.Budget != nil {
		r.budget = *p.Budget
	}
	before := len(v.out)
	v.budget(r.budget)
	budgetOK := len(v.out) == before

	setDefault(&r.Target5xxThreshold, DefaultTarget5xx)
	setDefault(&r.ELB5xxThreshold, DefaultELB5xx)
	setDefault(&r.UnhealthyHostThreshold, DefaultUnhealthyHosts)
	if r.Target5xxThreshold < 1 {
		v.add("Target5xxThreshold", fmt.Sprint(r.Target5xxThreshold), "must be at least 1")
	}
	if r.ELB5xxThreshold < 1 {
		v.add("ELB5xxThreshold", fmt.Sprint(r.ELB5xxThreshold), "must be at least 1")
	}
	if r.TargetP99Latency == 0 {
		r.TargetP99Latency = DefaultTargetP99Latency
	}
	if r.TargetP99Latency < time.Millisecond || r.TargetP99Latency%time.Millisecond != 0 {
		v.add("TargetP99Latency", r.TargetP99Latency.String(), "must be a positive whole number of milliseconds")
	}
	if r.UnhealthyHostThreshold < 1 {
		v.add("UnhealthyHostThreshold", fmt.Sprint(r.UnhealthyHostThreshold), "must be at least 1")
	}

	setDefault(&r.HookProbes, DefaultHookProbes)
	if r.HookDeadline == 0 {
		r.HookDeadline = DefaultHookDeadline
	}
	if r.HookProbes < 1 || r.HookProbes > 20 {
		v.add("HookProbes", fmt.Sprint(r.HookProbes), "must be 1–20 (one invocation must finish well within the Lambda timeout)")
	}
	if r.HookDeadline < time.Minute || r.HookDeadline > maxHookDeadline {
		v.add("HookDeadline", r.HookDeadline.String(), "must be 1m–24h: ECS fails a lifecycle stage after 24 hours")
	}
	if len(r.SmokeChecks) == 0 {
		r.SmokeChecks = []SmokeCheck{{Path: "/", Statuses: "200-499"}}
	}
	for i, c := range r.SmokeChecks {
		if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, " \t\r\n#") {
			v.add(fmt.Sprintf("SmokeChecks[%d].Path", i), fmt.Sprintf("%q", c.Path), "must be an absolute path, optionally with a query, such as /api/health?deep=1")
		}
		if _, err := hook.ParseStatuses(c.Statuses); err != nil {
			v.add(fmt.Sprintf("SmokeChecks[%d].Statuses", i), fmt.Sprintf("%q", c.Statuses), err.Error())
		}
	}
	if r.blueGreen {
		plan := r.plannedLength()
		if plan.total > maxDeploymentMinutes*time.Minute {
			prop, value := "HookDeadline", r.HookDeadline.String()
			if plan.steps > 1 {
				prop, value = "StepBakeTime", r.StepBakeTime.String()
			}
			v.add(prop, value, fmt.Sprintf("the deployment's planned length %s = %s must be at most %d minutes, or CloudFormation gives up on the deployment first (36 hours, with 3 hours kept for scale-up, traffic shifts and clean-up)",
				plan.formula, plan.total, maxDeploymentMinutes))
		}
	}
	if r.HookAssetDir == "" {
		r.HookAssetDir = DefaultHookAssetDir
	}

	setDefault(&r.CpuTargetPercent, DefaultCpuTargetPercent)
	setDefault(&r.RequestsPerTarget, DefaultRequestsPerTarget)
	if r.CpuTargetPercent < 10 || r.CpuTargetPercent > 90 {
		v.add("CpuTargetPercent", fmt.Sprint(r.CpuTargetPercent), "must be 10–90")
	}
	if r.RequestsPerTarget < 1 {
		v.add("RequestsPerTarget", fmt.Sprint(r.RequestsPerTarget), "must be at least 1")
	}
	if r.LogRetention == "" {
		r.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}

	for k := range p.ProxyEnvironment {
		switch k {
		case EnvListenAddr, EnvReadyPath, EnvUpstream:
			if p.ProxyConfig != "" {
				v.add("ProxyEnvironment["+k+"]", "set", "is ignored by the proxy once ProxyConfig is given (the configuration document wins over the sidecar variables): set the listener and routes in ProxyConfig instead")
				continue
			}
			fallthrough
		case EnvShutdownDelay, EnvDrainTimeout, EnvShutdownDeadline, EnvConfigYAML:
			v.add("ProxyEnvironment["+k+"]", "set", "is set by the construct from the budget and ports; change those props instead")
		case EnvConfigFile:
			v.add("ProxyEnvironment["+k+"]", fmt.Sprintf("%q", p.ProxyEnvironment[k]), "names a file inside the proxy image, which the construct cannot check against ProxyPort, the target groups' health-check path and the probe address, and which makes the proxy ignore ProxyConfig and the construct's variables: pass the document in ProxyConfig instead")
		}
	}
	if p.ProxyEnvironment[EnvConfigFile] == "" {
		v.proxyConfig(r, budgetOK)
	}
	return r, v.out
}

// deploymentPlan is the longest a blue/green deployment can take by its configuration.
type deploymentPlan struct {
	total   time.Duration
	steps   int    // production traffic steps (1 for BLUE_GREEN)
	formula string // how total was computed, in prop names
}

// plannedLength adds what a deployment may spend waiting by design: each hook stage up to
// the ECS-side hook timeout, the bake time between traffic steps (not after the last one),
// and the bake time after the shift.
func (r resolved) plannedLength() deploymentPlan {
	hookWait := time.Duration(r.hookTimeoutMinutes()) * time.Minute
	p := deploymentPlan{steps: 1}
	switch r.Strategy {
	case awsecs.DeploymentStrategy_LINEAR:
		p.steps = int(math.Ceil(100/r.StepPercent - 1e-9))
	case awsecs.DeploymentStrategy_CANARY:
		p.steps = 2
	}
	p.total = time.Duration(len(hookStages))*hookWait + time.Duration(p.steps-1)*r.StepBakeTime + r.BakeTime
	p.formula = fmt.Sprintf("%d hook stages × %s + %d × StepBakeTime + BakeTime", len(hookStages), hookWait, p.steps-1)
	if p.steps == 1 {
		p.formula = fmt.Sprintf("%d hook stages × %s + BakeTime", len(hookStages), hookWait)
	}
	return p
}

// hookTimeoutMinutes is the ECS-side timeout of the hook at each stage: the hook's own
// deadline, then one more callback delay and one more invocation, in whole minutes, plus a
// minute. The hook answers FAILED first; the ECS timeout (action ROLLBACK) is the backstop
// should the function itself stop answering.
func (r resolved) hookTimeoutMinutes() int {
	d := r.HookDeadline + hook.Defaults().CallBackDelay + r.hookFunctionTimeout()
	return int((d+time.Minute-1)/time.Minute) + 1
}

// hookFunctionTimeout bounds one invocation: every request of every round may time out,
// with the pauses between rounds, plus start-up.
func (r resolved) hookFunctionTimeout() time.Duration {
	c := hook.Defaults()
	perRound := time.Duration(1+len(r.SmokeChecks)) * c.ProbeTimeout
	return time.Duration(r.HookProbes)*(perRound+c.ProbeInterval) + 15*time.Second
}

// budgetRequired are the Settings fields the construct renders into the template: they must
// be declared (zero means "not declared" to budget.Check, which would skip their rules).
var budgetRequired = []struct {
	field string
	zero  func(budget.Settings) bool
}{
	{"LBHealthInterval", func(s budget.Settings) bool { return s.LBHealthInterval == 0 }},
	{"LBHealthTimeout", func(s budget.Settings) bool { return s.LBHealthTimeout == 0 }},
	{"LBHealthyThreshold", func(s budget.Settings) bool { return s.LBHealthyThreshold == 0 }},
	{"LBUnhealthyThreshold", func(s budget.Settings) bool { return s.LBUnhealthyThreshold == 0 }},
	{"StopTimeout", func(s budget.Settings) bool { return s.StopTimeout == 0 }},
	{"HealthCheckGracePeriod", func(s budget.Settings) bool { return s.HealthCheckGracePeriod == 0 }},
	{"MinimumHealthyPercent", func(s budget.Settings) bool { return s.MinimumHealthyPercent == 0 }},
	{"MaximumPercent", func(s budget.Settings) bool { return s.MaximumPercent == 0 }},
	{"ContainerInterval", func(s budget.Settings) bool { return s.ContainerInterval == 0 }},
	{"ContainerTimeout", func(s budget.Settings) bool { return s.ContainerTimeout == 0 }},
	{"ContainerRetries", func(s budget.Settings) bool { return s.ContainerRetries == 0 }},
	{"LongestRequest", func(s budget.Settings) bool { return s.LongestRequest == 0 }},
	{"ColdStart", func(s budget.Settings) bool { return s.ColdStart == 0 }},
}

type validator struct{ out []Problem }

func (v *validator) add(prop, value, rule string) {
	v.out = append(v.out, Problem{Prop: prop, Value: value, Rule: rule})
}

func (v *validator) port(prop string, n int, what string) {
	if n < 1 || n > 65535 {
		v.add(prop, fmt.Sprint(n), what+": must be 1–65535")
	}
}

func (v *validator) minutes(prop string, d time.Duration, max int) {
	if d < 0 || d > time.Duration(max)*time.Minute || d%time.Minute != 0 {
		v.add(prop, d.String(), fmt.Sprintf("must be a whole number of minutes, 0–%d", max))
	}
}

func (v *validator) percentStep(prop string, p, min float64) {
	tenths := p * 10
	if p < min || p > 100 || math.Abs(tenths-math.Round(tenths)) > 1e-9 {
		v.add(prop, fmt.Sprint(p), fmt.Sprintf("must be %g–100 in steps of 0.1", min))
	}
}

func (v *validator) budget(s budget.Settings) {
	for _, f := range budgetRequired {
		if f.zero(s) {
			v.add("Budget."+f.field, "0", "must be set: the construct renders it into the template (start from budget.Defaults())")
		}
	}
	for _, viol := range budget.Check(s) {
		v.add("Budget."+viol.Field, viol.Value, viol.Rule+"; fix: "+viol.Fix)
	}
	// Whole seconds: CloudFormation takes these as integer seconds and would round silently.
	for _, d := range []struct {
		field string
		d     time.Duration
	}{
		{"DeregistrationDelay", s.DeregistrationDelay},
		{"HealthCheckGracePeriod", s.HealthCheckGracePeriod},
		{"ContainerStartPeriod", s.ContainerStartPeriod},
	} {
		if d.d%time.Second != 0 || d.d < 0 {
			v.add("Budget."+d.field, d.d.String(), "must be a whole, non-negative number of seconds")
		}
	}
}

// fargateSize returns why cpu/memory is not a Fargate task size, or "".
func fargateSize(cpu, mem int) string {
	type span struct{ lo, hi, step int }
	sizes := map[int]span{
		256:   {512, 2048, 512}, // 512, 1024, 2048 (1536 is not offered)
		512:   {1024, 4096, 1024},
		1024:  {2048, 8192, 1024},
		2048:  {4096, 16384, 1024},
		4096:  {8192, 30720, 1024},
		8192:  {16384, 61440, 4096},
		16384: {32768, 122880, 8192},
	}
	s, ok := sizes[cpu]
	if !ok {
		return "Cpu must be one of Fargate's sizes: 256, 512, 1024, 2048, 4096, 8192, 16384"
	}
	okMem := mem >= s.lo && mem <= s.hi && (mem-s.lo)%s.step == 0
	if cpu == 256 {
		okMem = mem == 512 || mem == 1024 || mem == 2048
	}
	if !okMem && cpu == 256 {
		return "Fargate with Cpu 256 takes 512, 1024 or 2048 MiB"
	}
	if !okMem {
		return fmt.Sprintf("Fargate with Cpu %d takes %d–%d MiB in steps of %d", cpu, s.lo, s.hi, s.step)
	}
	return ""
}

func setDefault(n *int, def int) {
	if *n == 0 {
		*n = def
	}
}
