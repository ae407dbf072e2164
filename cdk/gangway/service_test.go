package gangway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/jsii-runtime-go"

	"github.com/gangway-ecs/gangway/cdk/ecsinput"
	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/ecs"
)

// The tests synthesize real stacks through jsii (node): each synth takes seconds, so one
// stack per configuration is shared by the assertions about it.

func TestMain(m *testing.M) {
	// No jsii.Close(): in jsii-runtime-go v1.139.0 it races (under -race) with the goroutine
	// that watches the node child; the child exits on its own when this process does.
	os.Exit(m.Run())
}

// hookAsset is a directory with a stand-in `bootstrap`: the template only references the
// asset, so the real binary (built by `make cdk-hook`, tested in package hook) is not needed.
func hookAsset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func baseProps(t *testing.T) *GangwayServiceProps {
	return &GangwayServiceProps{
		AppImage:     awsecs.ContainerImage_FromRegistry(jsii.String("public.ecr.aws/nginx/nginx:stable"), nil),
		AppPort:      80,
		ProxyImage:   awsecs.ContainerImage_FromRegistry(jsii.String("ghcr.io/gangway-ecs/proxy:test"), nil),
		DomainName:   "app.example.com",
		HookAssetDir: hookAsset(t),
	}
}

type synthesized struct {
	svc  *GangwayService
	tpl  assertions.Template
	json map[string]any
}

func synth(t *testing.T, props *GangwayServiceProps) synthesized {
	t.Helper()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Test"), nil)
	svc, err := NewGangwayService(stack, "Web", props)
	if err != nil {
		t.Fatalf("NewGangwayService: %v", err)
	}
	tpl := assertions.Template_FromStack(stack, nil)
	raw, err := json.Marshal(tpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// `make cdk-test` sets this so that cfn-lint also checks every variant synthesized here.
	if dir := os.Getenv("GANGWAY_CDK_TEMPLATE_DIR"); dir != "" {
		name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + ".template.json"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return synthesized{svc: svc, tpl: tpl, json: doc}
}

// has runs a CDK assertion, which panics (a jsii error) on mismatch, as a test failure.
func has(t *testing.T, what string, assert func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	assert()
}

// resources returns the Properties of every resource of a type, by logical id.
func (s synthesized) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.json["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			props, _ := res["Properties"].(map[string]any)
			out[id] = props
		}
	}
	return out
}

func (s synthesized) one(t *testing.T, typ string) map[string]any {
	t.Helper()
	rs := s.resources(typ)
	if len(rs) != 1 {
		t.Fatalf("%d resources of type %s, want 1", len(rs), typ)
	}
	for _, p := range rs {
		return p
	}
	return nil
}

func (s synthesized) logicalID(t *testing.T, typ string, match func(map[string]any) bool) string {
	t.Helper()
	for id, p := range s.resources(typ) {
		if match(p) {
			return id
		}
	}
	t.Fatalf("no %s matches", typ)
	return ""
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func arr(v any) []any          { a, _ := v.([]any); return a }

func container(t *testing.T, s synthesized, name string) map[string]any {
	t.Helper()
	for _, c := range arr(s.one(t, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]) {
		if obj(c)["Name"] == name {
			return obj(c)
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

func envOf(c map[string]any) map[string]string {
	out := map[string]string{}
	for _, e := range arr(c["Environment"]) {
		out[fmt.Sprint(obj(e)["Name"])] = fmt.Sprint(obj(e)["Value"])
	}
	return out
}

func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case string:
		var f float64
		fmt.Sscan(n, &f)
		return f
	}
	return -1
}

func secs(v any) time.Duration { return time.Duration(num(v)) * time.Second }

// budgetFromTemplate reads back every budget field the template carries. Fields the
// template cannot carry (the service's longest request and its cold start) come
// from declared.
func budgetFromTemplate(t *testing.T, s synthesized, declared budget.Settings) budget.Settings {
	t.Helper()
	got := budget.Settings{
		LongestRequest: declared.LongestRequest,
		ColdStart:      declared.ColdStart,
	}
	tgs := s.resources("AWS::ElasticLoadBalancingV2::TargetGroup")
	if len(tgs) == 0 {
		t.Fatal("no target group")
	}
	first := true
	for id, tg := range tgs {
		if tg["HealthCheckPath"] != ReadyPath {
			continue // NoRoute: never has targets, carries no budget
		}
		var dereg time.Duration = -1
		for _, a := range arr(tg["TargetGroupAttributes"]) {
			if obj(a)["Key"] == "deregistration_delay.timeout_seconds" {
				dereg = secs(obj(a)["Value"])
			}
		}
		this := budget.Settings{
			LBHealthInterval:     secs(tg["HealthCheckIntervalSeconds"]),
			LBHealthTimeout:      secs(tg["HealthCheckTimeoutSeconds"]),
			LBHealthyThreshold:   int(num(tg["HealthyThresholdCount"])),
			LBUnhealthyThreshold: int(num(tg["UnhealthyThresholdCount"])),
			DeregistrationDelay:  dereg,
		}
		if first {
			got.LBHealthInterval, got.LBHealthTimeout = this.LBHealthInterval, this.LBHealthTimeout
			got.LBHealthyThreshold, got.LBUnhealthyThreshold = this.LBHealthyThreshold, this.LBUnhealthyThreshold
			got.DeregistrationDelay = this.DeregistrationDelay
			first = false
			continue
		}
		if this.LBHealthInterval != got.LBHealthInterval || this.LBHealthTimeout != got.LBHealthTimeout ||
			this.LBHealthyThreshold != got.LBHealthyThreshold || this.LBUnhealthyThreshold != got.LBUnhealthyThreshold ||
			this.DeregistrationDelay != got.DeregistrationDelay {
			t.Errorf("target group %s differs from the other: %+v vs %+v", id, this, got)
		}
	}
	proxy := container(t, s, ProxyContainerName)
	hc := obj(proxy["HealthCheck"])
	got.ContainerInterval = secs(hc["Interval"])
	got.ContainerTimeout = secs(hc["Timeout"])
	got.ContainerRetries = int(num(hc["Retries"]))
	got.ContainerStartPeriod = secs(hc["StartPeriod"])
	if cmd := arr(hc["Command"]); len(cmd) == 6 && cmd[4] == "-timeout" {
		var err error
		if got.ProbeTimeout, err = time.ParseDuration(cmd[5].(string)); err != nil {
			t.Errorf("health check -timeout: %v", err)
		}
	} else {
		t.Errorf("health check command %v: want [CMD /healthcheck -probe container -timeout DURATION]", cmd)
	}
	got.StopTimeout = secs(proxy["StopTimeout"])
	env := envOf(proxy)
	var err error
	if got.ShutdownDelay, err = time.ParseDuration(env[EnvShutdownDelay]); err != nil {
		t.Errorf("%s: %v", EnvShutdownDelay, err)
	}
	if got.DrainTimeout, err = time.ParseDuration(env[EnvDrainTimeout]); err != nil {
		t.Errorf("%s: %v", EnvDrainTimeout, err)
	}
	svc := s.one(t, "AWS::ECS::Service")
	got.HealthCheckGracePeriod = secs(svc["HealthCheckGracePeriodSeconds"])
	dc := obj(svc["DeploymentConfiguration"])
	got.MinimumHealthyPercent = int(num(dc["MinimumHealthyPercent"]))
	got.MaximumPercent = int(num(dc["MaximumPercent"]))
	return got
}

func TestBlueGreenTemplate(t *testing.T) {
	s := synth(t, baseProps(t))

	// The service: strategy, bake time, percents, grace period, circuit breaker with its
	// threshold (escape hatch), deployment alarms with rollback, the hook at its stages.
	svc := s.one(t, "AWS::ECS::Service")
	dc := obj(svc["DeploymentConfiguration"])
	has(t, "service deployment configuration", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
			"DeploymentController": map[string]any{"Type": "ECS"},
			"DeploymentConfiguration": assertions.Match_ObjectLike(&map[string]any{
				"Strategy":              "BLUE_GREEN",
				"BakeTimeInMinutes":     5,
				"MinimumHealthyPercent": 100,
				"MaximumPercent":        200,
				"DeploymentCircuitBreaker": map[string]any{
					"Enable": true, "Rollback": true, "ResetOnHealthyTask": true,
					"ThresholdConfiguration": map[string]any{"Type": "BOUNDED_PERCENT", "Value": 50},
				},
			}),
			"HealthCheckGracePeriodSeconds": 30,
		})
	})
	alarms := obj(dc["Alarms"])
	if alarms["Enable"] != true || alarms["Rollback"] != true {
		t.Errorf("deployment alarms = %v, want Enable and Rollback (ROLLBACK_ON_ALARM)", alarms)
	}
	alarmNames := map[string]bool{}
	for _, n := range arr(alarms["AlarmNames"]) {
		alarmNames[fmt.Sprint(n)] = true
	}
	cwAlarms := s.resources("AWS::CloudWatch::Alarm")
	if len(alarmNames) != 7 || len(cwAlarms) != 7 {
		t.Fatalf("deployment alarms %v over %d alarms, want the 7 alarms", alarmNames, len(cwAlarms))
	}
	metrics := map[string]int{}
	for id, a := range cwAlarms {
		if !alarmNames[fmt.Sprint(a["AlarmName"])] {
			t.Errorf("alarm %s (%v) is not a deployment alarm", id, a["AlarmName"])
		}
		name := fmt.Sprint(a["MetricName"])
		if a["ExtendedStatistic"] != nil {
			name += "/" + fmt.Sprint(a["ExtendedStatistic"])
		}
		metrics[name]++
		dims := map[string]bool{}
		for _, d := range arr(a["Dimensions"]) {
			dims[fmt.Sprint(obj(d)["Name"])] = true
		}
		// The load balancer's own 5xx have no target group dimension
		// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
		wantTG := name != "HTTPCode_ELB_5XX_Count"
		if !dims["LoadBalancer"] || dims["TargetGroup"] != wantTG {
			t.Errorf("alarm %s on %s: dimensions %v, want LoadBalancer and TargetGroup=%v", id, name, dims, wantTG)
		}
	}
	if want := map[string]int{"HTTPCode_Target_5XX_Count": 2, "UnHealthyHostCount": 2, "TargetResponseTime/p99": 2, "HTTPCode_ELB_5XX_Count": 1}; fmt.Sprint(metrics) != fmt.Sprint(want) {
		t.Errorf("alarm metrics = %v, want %v", metrics, want)
	}
	has(t, "p99 latency alarm", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
			"MetricName": "TargetResponseTime", "ExtendedStatistic": "p99", "Threshold": 2, "EvaluationPeriods": 3, "Period": 60,
		})
	})
	has(t, "ELB 5xx alarm", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
			"MetricName": "HTTPCode_ELB_5XX_Count", "Statistic": "Sum", "Threshold": 5, "EvaluationPeriods": 1, "Period": 60,
		})
	})

	// The hook: one function at POST_SCALE_UP and POST_TEST_TRAFFIC_SHIFT, with ECS's own
	// timeout set just past the hook's deadline (10 min + 30 s callback + the function's
	// timeout, rounded up, plus a minute).
	hooks := arr(dc["LifecycleHooks"])
	if len(hooks) != 1 {
		t.Fatalf("lifecycle hooks = %v, want 1", hooks)
	}
	hk := obj(hooks[0])
	if stages := fmt.Sprint(arr(hk["LifecycleStages"])); stages != "[POST_SCALE_UP POST_TEST_TRAFFIC_SHIFT]" {
		t.Errorf("hook stages = %v, want [POST_SCALE_UP POST_TEST_TRAFFIC_SHIFT]", stages)
	}
	if tc := obj(hk["TimeoutConfiguration"]); tc["Action"] != "ROLLBACK" || num(tc["TimeoutInMinutes"]) != 13 {
		t.Errorf("hook timeout = %v, want ROLLBACK after 13 minutes", hk["TimeoutConfiguration"])
	}
	fnID := s.logicalID(t, "AWS::Lambda::Function", func(p map[string]any) bool { return p["Handler"] == "bootstrap" })
	if got := fmt.Sprint(arr(obj(hk["HookTargetArn"])["Fn::GetAtt"])[0]); got != fnID {
		t.Errorf("hook target = %s, want the hook function %s", got, fnID)
	}
	has(t, "hook function", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": []any{"arm64"}, "Timeout": 70,
			"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{
				"GANGWAY_TEST_HEADER":  TestHeader,
				"GANGWAY_PROBES":       "5",
				"GANGWAY_DEADLINE":     "10m0s",
				"GANGWAY_SMOKE_CHECKS": `[{"path":"/","statuses":"200-499"}]`,
			})},
		})
	})
	fn := s.resources("AWS::Lambda::Function")[fnID]
	fnEnv := obj(obj(fn["Environment"])["Variables"])
	url, _ := json.Marshal(fnEnv["GANGWAY_READINESS_URL"])
	if !strings.Contains(string(url), ":9443/gangway/ready") || !strings.Contains(string(url), "DNSName") {
		t.Errorf("readiness URL = %s, want the load balancer's DNS name, port 9443, /gangway/ready", url)
	}

	// Blue/green load balancing: the alternate target group, both listener rules, the role.
	lb := obj(arr(svc["LoadBalancers"])[0])
	adv := obj(lb["AdvancedConfiguration"])
	blueID := fmt.Sprint(obj(lb["TargetGroupArn"])["Ref"])
	greenID := fmt.Sprint(obj(adv["AlternateTargetGroupArn"])["Ref"])
	if lb["ContainerName"] != ProxyContainerName || num(lb["ContainerPort"]) != 8080 || blueID == greenID || greenID == "" {
		t.Errorf("load balancer entry = %v", lb)
	}
	if adv["RoleArn"] == nil {
		t.Errorf("advanced configuration %v has no role", adv)
	}
	prodID := getAttID(adv["ProductionListenerRule"])
	testID := getAttID(adv["TestListenerRule"])
	if fmt.Sprint(fnEnv["GANGWAY_PRODUCTION_RULE"]) != fmt.Sprint(adv["ProductionListenerRule"]) {
		t.Errorf("hook's production rule %v, service's %v", fnEnv["GANGWAY_PRODUCTION_RULE"], adv["ProductionListenerRule"])
	}
	if tgs, _ := json.Marshal(fnEnv["GANGWAY_TARGET_GROUPS"]); !strings.Contains(string(tgs), blueID) || !strings.Contains(string(tgs), greenID) {
		t.Errorf("hook's target groups %s, want %s and %s", tgs, blueID, greenID)
	}

	// CloudFormation can never point production at the group without tasks: no listener
	// rule resource forwards to Blue or Green (an update of one would write its template
	// weights over ECS's); the rules are custom resources that write weights only when they
	// create the rule, and whose update call carries no actions.
	for id, r := range s.resources("AWS::ElasticLoadBalancingV2::ListenerRule") {
		raw, _ := json.Marshal(r["Actions"])
		if strings.Contains(string(raw), blueID) || strings.Contains(string(raw), greenID) {
			t.Errorf("listener rule %s forwards to a blue/green target group: %s", id, raw)
		}
	}
	testHeader := false
	for name, id := range map[string]string{"production": prodID, "test": testID} {
		cr := s.resourceByID(t, id)
		if !strings.HasPrefix(fmt.Sprint(cr["Type"]), "Custom::") {
			t.Fatalf("%s rule %s is a %v, want a custom resource", name, id, cr["Type"])
		}
		props := obj(cr["Properties"])
		create := sdkCall(t, props["Create"])
		update := sdkCall(t, props["Update"])
		del := sdkCall(t, props["Delete"])
		if create["action"] != "createRule" || update["action"] != "modifyRule" || del["action"] != "deleteRule" {
			t.Errorf("%s rule calls: %v / %v / %v", name, create["action"], update["action"], del["action"])
		}
		if _, ok := obj(update["parameters"])["Actions"]; ok {
			t.Errorf("%s rule: the update call writes actions: %v", name, update["parameters"])
		}
		params := obj(create["parameters"])
		weights := map[string]float64{}
		for _, a := range arr(params["Actions"]) {
			for _, tg := range arr(obj(obj(a)["ForwardConfig"])["TargetGroups"]) {
				weights[fmt.Sprint(obj(tg)["TargetGroupArn"])] = num(obj(tg)["Weight"])
			}
		}
		if len(weights) != 2 || weights["{Ref:"+blueID+"}"] != 1 || weights["{Ref:"+greenID+"}"] != 0 {
			t.Errorf("%s rule created with weights %v, want %s:1 %s:0", name, weights, blueID, greenID)
		}
		if num(params["Priority"]) != TrafficRulePriority {
			t.Errorf("%s rule priority %v", name, params["Priority"])
		}
		for _, c := range arr(params["Conditions"]) {
			if obj(c)["Field"] == "http-header" && obj(obj(c)["HttpHeaderConfig"])["HttpHeaderName"] == TestHeader {
				testHeader = name == "test"
				want := obj(obj(c)["HttpHeaderConfig"])["Values"]
				if got := fnEnv["GANGWAY_TEST_HEADER_VALUE"]; fmt.Sprint(arr(want)[0]) != fmt.Sprint(got) {
					t.Errorf("hook sends %v, rule wants %v", got, want)
				}
			}
		}
	}
	if !testHeader {
		t.Errorf("internet-facing test rule has no %s condition", TestHeader)
	}

	// Listeners: every action on the two listeners ECS shifts traffic on is a forward; what
	// matches no route, and the proxy's own paths on the production listener, go to the
	// target group that never has targets.
	listeners := map[float64]map[string]any{}
	listenerIDs := map[string]float64{}
	for id, l := range s.resources("AWS::ElasticLoadBalancingV2::Listener") {
		listeners[num(l["Port"])] = l
		listenerIDs[id] = num(l["Port"])
	}
	noRouteID := s.logicalID(t, "AWS::ElasticLoadBalancingV2::TargetGroup", func(p map[string]any) bool {
		return p["HealthCheckPath"] != ReadyPath
	})
	for _, port := range []float64{443, 9443} {
		for _, a := range arr(listeners[port]["DefaultActions"]) {
			if obj(a)["Type"] != "forward" || fmt.Sprint(obj(obj(a)["TargetGroupArn"])["Ref"]) != noRouteID {
				t.Errorf("listener %v default action %v, want a forward to %s", port, a, noRouteID)
			}
		}
	}
	if listeners[443]["Protocol"] != "HTTPS" || len(arr(listeners[443]["Certificates"])) != 1 {
		t.Errorf("443 listener = %v, want HTTPS with a certificate", listeners[443])
	}
	if a := obj(arr(listeners[80]["DefaultActions"])[0]); a["Type"] != "redirect" || obj(a["RedirectConfig"])["Protocol"] != "HTTPS" {
		t.Errorf("80 listener action = %v, want a redirect to HTTPS", a)
	}
	if listeners[9443]["Protocol"] != "HTTP" {
		t.Errorf("test listener = %v, want HTTP on 9443", listeners[9443])
	}
	proxyPaths := 0
	for id, r := range s.resources("AWS::ElasticLoadBalancingV2::ListenerRule") {
		if listenerIDs[fmt.Sprint(obj(r["ListenerArn"])["Ref"])] != 443 {
			continue
		}
		cond, _ := json.Marshal(r["Conditions"])
		act := obj(arr(r["Actions"])[0])
		if string(cond) == `[{"Field":"path-pattern","PathPatternConfig":{"Values":["/gangway/*"]}}]` &&
			num(r["Priority"]) < TrafficRulePriority && act["Type"] == "forward" && fmt.Sprint(obj(act["TargetGroupArn"])["Ref"]) == noRouteID {
			proxyPaths++
		} else {
			t.Errorf("unexpected production listener rule %s: %v", id, r)
		}
	}
	if proxyPaths != 1 {
		t.Errorf("no rule ahead of the production rule keeps /gangway/* from the internet")
	}
	// NoRoute is a Lambda target group whose function answers 404: a target that answers,
	// so these requests never count as the load balancer's own 5xx (a deployment alarm).
	noRoute := obj(s.resourceByID(t, noRouteID)["Properties"])
	targets := arr(noRoute["Targets"])
	if noRoute["TargetType"] != "lambda" || len(targets) != 1 {
		t.Fatalf("NoRoute = %v, want a Lambda target group with one target", noRoute)
	}
	noRouteFn := obj(s.resourceByID(t, getAttID(obj(targets[0])["Id"]))["Properties"])
	if code := fmt.Sprint(obj(noRouteFn["Code"])["ZipFile"]); !strings.Contains(code, "statusCode: 404") {
		t.Errorf("NoRoute function code %q does not answer 404", code)
	}

	// Target groups: readiness path on the traffic port, thresholds and deregistration delay.
	has(t, "target groups", func() {
		s.tpl.ResourcePropertiesCountIs(jsii.String("AWS::ElasticLoadBalancingV2::TargetGroup"), map[string]any{
			"HealthCheckPath":            ReadyPath,
			"HealthCheckPort":            "traffic-port",
			"HealthCheckIntervalSeconds": 5,
			"HealthCheckTimeoutSeconds":  2,
			"HealthyThresholdCount":      2,
			"UnhealthyThresholdCount":    2,
			"Matcher":                    map[string]any{"HttpCode": "200"},
			"Port":                       8080,
			"TargetType":                 "ip",
			"TargetGroupAttributes": assertions.Match_ArrayWith(&[]any{
				map[string]any{"Key": "deregistration_delay.timeout_seconds", "Value": "15"},
			}),
		}, jsii.Number(2))
	})

	// The task: proxy health check on the container probe, hardening, stopTimeout, port,
	// ordering; app essential.
	proxy := container(t, s, ProxyContainerName)
	app := container(t, s, AppContainerName)
	has(t, "proxy container", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
			"RequiresCompatibilities": []any{"FARGATE"},
			"NetworkMode":             "awsvpc",
			"Cpu":                     "512",
			"Memory":                  "1024",
			"ContainerDefinitions": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Name":      ProxyContainerName,
				"Essential": true,
				"HealthCheck": map[string]any{
					"Command": []any{"CMD", "/healthcheck", "-probe", "container", "-timeout", "1.5s"}, "Interval": 5, "Timeout": 2, "Retries": 3, "StartPeriod": 15,
				},
				"ReadonlyRootFilesystem": true,
				"User":                   "65532",
				"LinuxParameters":        assertions.Match_ObjectLike(&map[string]any{"InitProcessEnabled": true}),
				"Ulimits":                []any{map[string]any{"Name": "nofile", "SoftLimit": 65536, "HardLimit": 65536}},
				"StopTimeout":            30,
				"PortMappings":           []any{assertions.Match_ObjectLike(&map[string]any{"ContainerPort": 8080, "Protocol": "tcp"})},
				"DependsOn":              []any{map[string]any{"ContainerName": AppContainerName, "Condition": "START"}},
			})}),
		})
	})
	if app["Essential"] != true || app["DependsOn"] != nil {
		t.Errorf("app container: Essential=%v DependsOn=%v; the proxy must depend on the app, not the reverse", app["Essential"], app["DependsOn"])
	}
	env := envOf(proxy)
	for k, want := range map[string]string{
		EnvReadyPath: ReadyPath, EnvListenAddr: ":8080", EnvUpstream: "127.0.0.1:80",
		EnvShutdownDelay: "12s", EnvDrainTimeout: "15s", EnvShutdownDeadline: "30s",
	} {
		if env[k] != want {
			t.Errorf("proxy env %s = %q, want %q", k, env[k], want)
		}
	}
	for _, c := range []map[string]any{proxy, app} {
		opts := obj(obj(c["LogConfiguration"])["Options"])
		if obj(c["LogConfiguration"])["LogDriver"] != "awslogs" || opts["mode"] != "non-blocking" {
			t.Errorf("container %s logging = %v, want awslogs non-blocking", c["Name"], c["LogConfiguration"])
		}
	}

	// The load balancer reaches the tasks on the traffic port (the target groups are not
	// attached through L2 listeners, which would have added this).
	ingress := false
	for _, in := range s.resources("AWS::EC2::SecurityGroupIngress") {
		if num(in["FromPort"]) == 8080 && strings.Contains(fmt.Sprint(in["SourceSecurityGroupId"]), "LoadBalancer") {
			ingress = true
		}
	}
	if !ingress {
		t.Errorf("no ingress from the load balancer to the tasks on 8080")
	}

	// The service depends on the hook's invoke role and its policy.
	policyID := s.logicalID(t, "AWS::IAM::Policy", func(p map[string]any) bool {
		raw, _ := json.Marshal(p)
		return strings.Contains(string(raw), "lambda:InvokeFunction") && strings.Contains(string(raw), fnID)
	})
	deps := map[string]bool{}
	for _, d := range arr(s.resourceByID(t, s.logicalID(t, "AWS::ECS::Service", func(map[string]any) bool { return true }))["DependsOn"]) {
		deps[fmt.Sprint(d)] = true
	}
	if !deps[policyID] {
		t.Errorf("the service does not depend on the hook's invoke policy %s: %v", policyID, deps)
	}

	// Autoscaling: no DesiredCount on the service; CPU and one request-count policy over
	// both target groups whose idle group's missing data is filled with 0.
	if _, ok := svc["DesiredCount"]; ok {
		t.Errorf("service has DesiredCount %v with autoscaling on: every stack update would reset the scaled count", svc["DesiredCount"])
	}
	checkScaling(t, s, blueID, greenID)
	has(t, "scalable target", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::ApplicationAutoScaling::ScalableTarget"), map[string]any{
			"MinCapacity": 2, "MaxCapacity": 8,
		})
	})

	// The budget holds in what was synthesized, and the template carries exactly the budget.
	got := budgetFromTemplate(t, s, budget.Defaults())
	if v := budget.Check(got); v != nil {
		t.Errorf("budget.Check on the synthesized template: %v", v)
	}
	if got != budget.Defaults() {
		t.Errorf("template budget = %+v\nwant budget.Defaults() = %+v", got, budget.Defaults())
	}
}

// checkScaling asserts the CPU policy and the one request-count policy over the given
// target groups (greenID "" for ROLLING).
func checkScaling(t *testing.T, s synthesized, blueID, greenID string) {
	t.Helper()
	kinds := map[string]int{}
	var custom []map[string]any
	for _, p := range s.resources("AWS::ApplicationAutoScaling::ScalingPolicy") {
		cfg := obj(p["TargetTrackingScalingPolicyConfiguration"])
		if spec := obj(cfg["PredefinedMetricSpecification"]); spec != nil {
			kinds[fmt.Sprint(spec["PredefinedMetricType"])]++
		}
		if spec := obj(cfg["CustomizedMetricSpecification"]); spec != nil {
			custom = append(custom, spec)
		}
	}
	if kinds["ECSServiceAverageCPUUtilization"] != 1 || kinds["ALBRequestCountPerTarget"] != 0 || len(custom) != 1 {
		t.Fatalf("scaling policies: predefined %v and %d custom, want CPU and one request-count policy over the target groups", kinds, len(custom))
	}
	spec := custom[0]
	if spec["MetricName"] != nil || spec["Namespace"] != nil {
		t.Errorf("request policy keeps a single metric beside its metric math: %v", spec)
	}
	raw, _ := json.Marshal(spec["Metrics"])
	want := []string{"RequestCountPerTarget", blueID, `"Expression":"FILL(tg0, 0)`}
	if greenID != "" {
		want = append(want, greenID, "FILL(tg1, 0)")
	}
	for _, w := range want {
		if !strings.Contains(string(raw), w) {
			t.Errorf("request policy metrics %s lack %s", raw, w)
		}
	}
}

func getAttID(v any) string {
	a := arr(obj(v)["Fn::GetAtt"])
	if len(a) == 0 {
		return ""
	}
	return fmt.Sprint(a[0])
}

func (s synthesized) resourceByID(t *testing.T, id string) map[string]any {
	t.Helper()
	r := obj(obj(s.json["Resources"])[id])
	if r == nil {
		t.Fatalf("no resource %q", id)
	}
	return r
}

// sdkCall decodes a custom resource's SDK call (a JSON string, or an Fn::Join of one with
// references), rendering each reference as {Ref:ID}.
func sdkCall(t *testing.T, v any) map[string]any {
	t.Helper()
	var text string
	switch x := v.(type) {
	case string:
		text = x
	case map[string]any:
		parts := arr(arr(x["Fn::Join"])[1])
		for _, p := range parts {
			if s, ok := p.(string); ok {
				text += s
			} else {
				text += "{Ref:" + fmt.Sprint(obj(p)["Ref"]) + "}"
			}
		}
	}
	var call map[string]any
	if err := json.Unmarshal([]byte(text), &call); err != nil {
		t.Fatalf("SDK call %s: %v", text, err)
	}
	return call
}

func TestCustomBudgetIsRendered(t *testing.T) {
	// A service with minute-long requests: slower detection, longer drain, bigger stopTimeout.
	b := budget.Defaults()
	b.LBHealthInterval = 10 * time.Second
	b.LBHealthTimeout = 5 * time.Second
	b.LBUnhealthyThreshold = 3
	b.LBHealthyThreshold = 3
	b.ShutdownDelay = 35 * time.Second // 10 s × 3 + 5 s
	b.LongestRequest = 60 * time.Second
	b.DrainTimeout = 60 * time.Second
	b.DeregistrationDelay = 60 * time.Second
	b.StopTimeout = 100 * time.Second
	b.ColdStart = 40 * time.Second
	b.ContainerStartPeriod = 45 * time.Second
	b.HealthCheckGracePeriod = 70 * time.Second // 40 s + 3 × 10 s
	if v := budget.Check(b); v != nil {
		t.Fatalf("test budget is invalid: %v", v)
	}
	p := baseProps(t)
	p.Budget = &b
	p.CircuitBreaker = &CircuitBreakerThreshold{Type: ThresholdCount, Value: 3}
	p.ResetOnHealthyTask = jsii.Bool(false)
	s := synth(t, p)
	if got := budgetFromTemplate(t, s, b); got != b {
		t.Errorf("template budget = %+v\nwant %+v", got, b)
	}
	cb := obj(obj(s.one(t, "AWS::ECS::Service")["DeploymentConfiguration"])["DeploymentCircuitBreaker"])
	if tc := obj(cb["ThresholdConfiguration"]); tc["Type"] != "COUNT" || num(tc["Value"]) != 3 || cb["ResetOnHealthyTask"] != false {
		t.Errorf("circuit breaker = %v, want COUNT 3 without reset", cb)
	}
}

func TestStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy awsecs.DeploymentStrategy
		check    func(t *testing.T, s synthesized, dc map[string]any)
	}{
		{awsecs.DeploymentStrategy_ROLLING, func(t *testing.T, s synthesized, dc map[string]any) {
			if dc["LifecycleHooks"] != nil || dc["BakeTimeInMinutes"] != nil {
				t.Errorf("rolling: hooks %v, bake time %v; want neither", dc["LifecycleHooks"], dc["BakeTimeInMinutes"])
			}
			if n := len(s.resources("AWS::ElasticLoadBalancingV2::TargetGroup")); n != 2 {
				t.Errorf("rolling: %d target groups, want 2 (Blue and NoRoute)", n)
			}
			if n := len(s.resources("AWS::CloudFormation::CustomResource")) + len(s.resources("Custom::AWS")); n != 0 {
				t.Errorf("rolling: %d custom resources, want none (ECS moves no weights)", n)
			}
			checkScaling(t, s, fmt.Sprint(obj(obj(arr(s.one(t, "AWS::ECS::Service")["LoadBalancers"])[0])["TargetGroupArn"])["Ref"]), "")
			if n := len(s.resources("AWS::ElasticLoadBalancingV2::Listener")); n != 2 {
				t.Errorf("rolling: %d listeners, want 2 (no test listener)", n)
			}
			for id, fn := range s.resources("AWS::Lambda::Function") {
				if fn["Handler"] == "bootstrap" {
					t.Errorf("rolling: hook function %s, want none", id)
				}
			}
			lb := obj(arr(s.one(t, "AWS::ECS::Service")["LoadBalancers"])[0])
			if lb["AdvancedConfiguration"] != nil {
				t.Errorf("rolling: advanced configuration %v", lb["AdvancedConfiguration"])
			}
			if n := len(arr(obj(dc["Alarms"])["AlarmNames"])); n != 4 {
				t.Errorf("rolling: %d deployment alarms, want 4 (three on the target group, one on the load balancer)", n)
			}
		}},
		{awsecs.DeploymentStrategy_LINEAR, func(t *testing.T, s synthesized, dc map[string]any) {
			lc := obj(dc["LinearConfiguration"])
			if num(lc["StepPercent"]) != 10 || num(lc["StepBakeTimeInMinutes"]) != 6 || num(dc["BakeTimeInMinutes"]) != 5 {
				t.Errorf("linear: %v", dc)
			}
			if len(arr(dc["LifecycleHooks"])) != 1 {
				t.Errorf("linear: hooks %v", dc["LifecycleHooks"])
			}
		}},
		{awsecs.DeploymentStrategy_CANARY, func(t *testing.T, s synthesized, dc map[string]any) {
			cc := obj(dc["CanaryConfiguration"])
			if num(cc["CanaryPercent"]) != 5 || num(cc["CanaryBakeTimeInMinutes"]) != 10 {
				t.Errorf("canary: %v", dc)
			}
		}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			p := baseProps(t)
			p.Strategy = tc.strategy
			s := synth(t, p)
			dc := obj(s.one(t, "AWS::ECS::Service")["DeploymentConfiguration"])
			if dc["Strategy"] != string(tc.strategy) {
				t.Errorf("strategy = %v, want %s", dc["Strategy"], tc.strategy)
			}
			if num(dc["MinimumHealthyPercent"]) != 100 || num(dc["MaximumPercent"]) != 200 {
				t.Errorf("percents = %v/%v, want 100/200", dc["MinimumHealthyPercent"], dc["MaximumPercent"])
			}
			if cb := obj(dc["DeploymentCircuitBreaker"]); cb["Enable"] != true || cb["Rollback"] != true {
				t.Errorf("circuit breaker = %v", cb)
			}
			tc.check(t, s, dc)
		})
	}
}

func TestInternalLoadBalancer(t *testing.T) {
	p := baseProps(t)
	p.InternetFacing = jsii.Bool(false)
	s := synth(t, p)
	if scheme := s.one(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Scheme"]; scheme != "internal" {
		t.Errorf("scheme = %v", scheme)
	}
	fnID := s.logicalID(t, "AWS::Lambda::Function", func(p map[string]any) bool { return p["Handler"] == "bootstrap" })
	fn := s.resources("AWS::Lambda::Function")[fnID]
	if obj(fn["VpcConfig"]) == nil {
		t.Errorf("hook is not in the VPC: an internal load balancer is unreachable from outside")
	}
	if _, ok := obj(obj(fn["Environment"])["Variables"])["GANGWAY_TEST_HEADER"]; ok {
		t.Errorf("internal: the hook sends a test header")
	}
	if raw, _ := json.Marshal(s.json); strings.Contains(string(raw), "http-header") {
		t.Errorf("internal: a rule has a header condition")
	}
	checkTestIngress(t, s, func(peer string) bool { return strings.Contains(peer, "LifecycleHookFunctionSecurityGroup") }, 1)
}

// checkTestIngress asserts that every ingress to the test listener's port comes from a peer
// allowed says yes to, never from the whole internet, and that there are want of them.
func checkTestIngress(t *testing.T, s synthesized, allowed func(peer string) bool, want int) {
	t.Helper()
	var peers []string
	add := func(in map[string]any) {
		if num(in["FromPort"]) != DefaultTestListenerPort {
			return
		}
		peer := in["CidrIp"]
		if peer == nil {
			peer = in["SourceSecurityGroupId"]
		}
		raw, _ := json.Marshal(peer)
		peers = append(peers, string(raw))
	}
	for _, g := range s.resources("AWS::EC2::SecurityGroup") {
		for _, in := range arr(g["SecurityGroupIngress"]) {
			add(obj(in))
		}
	}
	for _, in := range s.resources("AWS::EC2::SecurityGroupIngress") {
		add(in)
	}
	for _, p := range peers {
		if strings.Contains(p, "0.0.0.0/0") || !allowed(p) {
			t.Errorf("test listener open to %s", p)
		}
	}
	if len(peers) != want {
		t.Errorf("test listener ingress from %v, want %d peer(s)", peers, want)
	}
}

func TestTestListenerIngress(t *testing.T) {
	// Closed to the internet by default: only the NAT gateway the hook leaves the VPC by.
	natEIP := func(peer string) bool {
		return strings.Contains(peer, "EIP") && strings.Contains(peer, "PublicIp") && strings.Contains(peer, "/32")
	}
	s := synth(t, baseProps(t))
	checkTestIngress(t, s, natEIP, 1)

	p := baseProps(t)
	p.TestTrafficCidrs = []string{"203.0.113.0/24"}
	p.NatGateways = 2
	s = synth(t, p)
	checkTestIngress(t, s, func(peer string) bool { return natEIP(peer) || peer == `"203.0.113.0/24"` }, 3)
	if n := len(s.resources("AWS::EC2::NatGateway")); n != 2 {
		t.Errorf("NatGateways 2: %d NAT gateways", n)
	}
}

func TestAutoscalingOff(t *testing.T) {
	p := baseProps(t)
	p.Autoscaling = jsii.Bool(false)
	p.DesiredCount = 3
	s := synth(t, p)
	if n := num(s.one(t, "AWS::ECS::Service")["DesiredCount"]); n != 3 {
		t.Errorf("DesiredCount = %v, want 3 without autoscaling", n)
	}
	if n := len(s.resources("AWS::ApplicationAutoScaling::ScalableTarget")); n != 0 {
		t.Errorf("%d scalable targets without autoscaling", n)
	}
}

// TestLintAcceptsSynthesizedTaskDefinition renders what the construct synthesizes as AWS CLI
// input (package ecsinput) and checks it with the linter `proxy lint` runs (ecs.Lint, with
// the proxy's own configuration resolution), for the defaults and a custom budget. `make
// cdk-lint-ecs` does the same with bin/proxy.
func TestLintAcceptsSynthesizedTaskDefinition(t *testing.T) {
	b := budget.Defaults()
	b.LongestRequest = 60 * time.Second
	b.DrainTimeout = 60 * time.Second
	b.DeregistrationDelay = 60 * time.Second
	b.StopTimeout = 90 * time.Second
	custom := baseProps(t)
	custom.Budget = &b
	for name, p := range map[string]*GangwayServiceProps{"defaults": baseProps(t), "custom budget": custom} {
		t.Run(name, func(t *testing.T) {
			s := synth(t, p)
			raw, _ := json.Marshal(s.json)
			r, err := ecsinput.Render(raw)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			write := func(name string, set map[string][]byte) string {
				if len(set) == 0 {
					t.Fatalf("nothing rendered for %s", name)
				}
				for id, data := range set {
					if !strings.Contains(id, "NoRoute") {
						path := filepath.Join(dir, name)
						if err := os.WriteFile(path, data, 0o644); err != nil {
							t.Fatal(err)
						}
						return path
					}
				}
				return ""
			}
			svcPath, tgPath := write("service.json", r.Services), write("tg.json", r.TargetGroups)
			var tdJSON []byte
			for _, d := range r.TaskDefinitions {
				tdJSON = d
			}
			td, err := ecs.ParseTaskDefinition(tdJSON)
			if err != nil {
				t.Fatalf("rendered task definition is not register-task-definition input: %v\n%s", err, tdJSON)
			}
			in := ecs.LintInput{TaskDefinition: td, Containers: []string{ProxyContainerName}}
			if in.Service, err = ecs.ReadService(svcPath); err != nil {
				t.Fatal(err)
			}
			if in.TargetGroup, err = ecs.ReadTargetGroup(tgPath); err != nil {
				t.Fatal(err)
			}
			flags := strings.Join(r.LintFlags, " ")
			if want := fmt.Sprintf("-cold-start %s -longest-request %s", b.ColdStart, b.LongestRequest); name == "custom budget" && flags != want {
				t.Errorf("lint flags %q, want %q", flags, want)
			}
			in.ColdStart, in.LongestRequest = budget.Defaults().ColdStart, budget.Defaults().LongestRequest
			if name == "custom budget" {
				in.LongestRequest = b.LongestRequest
			}
			for _, v := range ecs.Lint(in) {
				t.Errorf("proxy lint: %s", v.Error())
			}
		})
	}
}

func TestRejectsInvalidProps(t *testing.T) {
	asset := hookAsset(t)
	base := func() *GangwayServiceProps {
		return &GangwayServiceProps{
			AppImage:     awsecs.ContainerImage_FromRegistry(jsii.String("app:1"), nil),
			AppPort:      80,
			ProxyImage:   awsecs.ContainerImage_FromRegistry(jsii.String("proxy:1"), nil),
			DomainName:   "app.example.com",
			HookAssetDir: asset,
		}
	}
	withBudget := func(change func(*budget.Settings)) func(*GangwayServiceProps) {
		return func(p *GangwayServiceProps) {
			b := budget.Defaults()
			change(&b)
			p.Budget = &b
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*GangwayServiceProps)
		want   []string // substrings of one problem: prop, then the rule
	}{
		{"no images", func(p *GangwayServiceProps) { p.AppImage, p.ProxyImage = nil, nil }, []string{"AppImage = nil", "required"}},
		{"output prefix", func(p *GangwayServiceProps) { p.OutputPrefix = "web-1" }, []string{`OutputPrefix = "web-1"`, "letters and digits"}},
		{"output prefix without outputs", func(p *GangwayServiceProps) { p.Outputs, p.OutputPrefix = jsii.Bool(false), "Web" }, []string{`OutputPrefix = "Web"`, "only with Outputs"}},
		{"no app port", func(p *GangwayServiceProps) { p.AppPort = 0 }, []string{"AppPort = 0", "1–65535"}},
		{"same ports", func(p *GangwayServiceProps) { p.AppPort = 8080 }, []string{"AppPort = 8080", "must differ from ProxyPort"}},
		{"probe port", func(p *GangwayServiceProps) { p.ProxyPort = 28080 }, []string{"ProxyPort = 28080", "probe server"}},
		{"test port 443", func(p *GangwayServiceProps) { p.TestListenerPort = 443 }, []string{"TestListenerPort = 443", "production listeners"}},
		{"no certificate", func(p *GangwayServiceProps) { p.DomainName = "" }, []string{"Certificate = nil", "HTTPS"}},
		{"fargate size", func(p *GangwayServiceProps) { p.Cpu, p.MemoryMiB = 1024, 1024 }, []string{"MemoryMiB = 1024 (Cpu 1024)", "2048–8192"}},
		{"min capacity", func(p *GangwayServiceProps) { p.DesiredCount, p.MinCapacity = 2, 3 }, []string{"MinCapacity = 3", "1–DesiredCount (2)"}},
		{"strategy", func(p *GangwayServiceProps) { p.Strategy = "RED_BLACK" }, []string{"Strategy = RED_BLACK", "ROLLING, BLUE_GREEN, LINEAR or CANARY"}},
		{"bake time", func(p *GangwayServiceProps) { p.BakeTime = 90 * time.Second }, []string{"BakeTime = 1m30s", "whole number of minutes"}},
		{"linear step", func(p *GangwayServiceProps) {
			p.Strategy = awsecs.DeploymentStrategy_LINEAR
			p.StepPercent = 2
		}, []string{"StepPercent = 2", "3–100"}},
		{"canary step tenths", func(p *GangwayServiceProps) {
			p.Strategy = awsecs.DeploymentStrategy_CANARY
			p.StepPercent = 5.05
		}, []string{"StepPercent = 5.05", "steps of 0.1"}},
		{"step without linear", func(p *GangwayServiceProps) { p.StepPercent = 20 }, []string{"StepPercent = 20", "only to LINEAR and CANARY"}},
		{"threshold count", func(p *GangwayServiceProps) { p.CircuitBreaker = &CircuitBreakerThreshold{Type: ThresholdCount} }, []string{"CircuitBreaker.Value = 0", "1–200"}},
		{"threshold type", func(p *GangwayServiceProps) { p.CircuitBreaker = &CircuitBreakerThreshold{Type: "SOME", Value: 3} }, []string{"CircuitBreaker.Type", "BOUNDED_PERCENT"}},
		{"hook deadline", func(p *GangwayServiceProps) { p.HookDeadline = 25 * time.Hour }, []string{"HookDeadline = 25h0m0s", "24 hours"}},
		{"deployment too long", func(p *GangwayServiceProps) {
			p.HookDeadline = 24 * time.Hour
			p.BakeTime = 1440 * time.Minute
		}, []string{"HookDeadline = 24h0m0s", "1980 minutes"}},
		{"hook asset", func(p *GangwayServiceProps) { p.HookAssetDir = filepath.Join(asset, "missing") }, []string{"HookAssetDir", "make cdk-hook"}},
		{"proxy env override", func(p *GangwayServiceProps) { p.ProxyEnvironment = map[string]string{EnvShutdownDelay: "1s"} }, []string{"ProxyEnvironment[GANGWAY_SHUTDOWN_DELAY]", "set by the construct"}},
		{"cidr", func(p *GangwayServiceProps) { p.TestTrafficCidrs = []string{"10.0.0.0"} }, []string{"TestTrafficCidrs[0]", "CIDR"}},
		{"test listener open to all", func(p *GangwayServiceProps) { p.TestTrafficCidrs = []string{"0.0.0.0/0"} }, []string{"TestTrafficCidrs[0]", "whole internet"}},
		{"given VPC without test CIDRs", func(p *GangwayServiceProps) {
			p.Vpc = awsec2.Vpc_FromVpcAttributes(awscdk.NewStack(awscdk.NewApp(nil), jsii.String("Other"), nil), jsii.String("Vpc"), &awsec2.VpcAttributes{VpcId: jsii.String("vpc-1"), AvailabilityZones: jsii.Strings("a", "b")})
		}, []string{"TestTrafficCidrs = none", "NAT addresses"}},
		{"nat gateways", func(p *GangwayServiceProps) { p.NatGateways = 3 }, []string{"NatGateways = 3", "1–2"}},
		{"smoke statuses", func(p *GangwayServiceProps) { p.SmokeChecks = []SmokeCheck{{Path: "/api", Statuses: "2xx"}} }, []string{"SmokeChecks[0].Statuses", "not a code"}},
		{"smoke path", func(p *GangwayServiceProps) { p.SmokeChecks = []SmokeCheck{{Path: "api", Statuses: "200"}} }, []string{"SmokeChecks[0].Path", "absolute path"}},
		{"latency", func(p *GangwayServiceProps) { p.TargetP99Latency = 1500 * time.Microsecond }, []string{"TargetP99Latency", "milliseconds"}},
		{"linear steps past CloudFormation's limit", func(p *GangwayServiceProps) {
			// 34 steps of 3 %: 33 step bake times of an hour, plus the hooks and the bake time.
			p.Strategy = awsecs.DeploymentStrategy_LINEAR
			p.StepPercent = 3
			p.StepBakeTime = time.Hour
		}, []string{"StepBakeTime = 1h0m0s", "1980 minutes"}},
		// The timing budget and ECS ranges, through budget.Check.
		{"CDK's 50% minimum", withBudget(func(b *budget.Settings) { b.MinimumHealthyPercent = 50 }), []string{"Budget.MinimumHealthyPercent = 50", "must be 100"}},
		{"max percent", withBudget(func(b *budget.Settings) { b.MaximumPercent = 150 }), []string{"Budget.MaximumPercent = 150", "must be 200"}},
		{"stopTimeout over Fargate's cap", withBudget(func(b *budget.Settings) { b.StopTimeout = 150 * time.Second }), []string{"Budget.StopTimeout = 2m30s", "2 s–120 s"}},
		{"drain does not fit", withBudget(func(b *budget.Settings) { b.DrainTimeout = 30 * time.Second }), []string{"Budget.StopTimeout", "must fit within stopTimeout"}},
		{"shutdown delay shorter than detection", withBudget(func(b *budget.Settings) { b.LBUnhealthyThreshold = 5 }), []string{"Budget.ShutdownDelay = 12s", "detection"}},
		{"container interval", withBudget(func(b *budget.Settings) { b.ContainerInterval = 30 * time.Second }), []string{"Budget.ContainerInterval = 30s", "at most 10 s"}},
		{"LB timeout vs interval", withBudget(func(b *budget.Settings) { b.LBHealthTimeout = 5 * time.Second }), []string{"Budget.LBHealthTimeout = 5s", "less than its interval"}},
		{"dereg below longest request", withBudget(func(b *budget.Settings) { b.DeregistrationDelay = 5 * time.Second }), []string{"Budget.DeregistrationDelay = 5s", "longest request"}},
		{"grace below cold start", withBudget(func(b *budget.Settings) { b.HealthCheckGracePeriod = 5 * time.Second }), []string{"Budget.HealthCheckGracePeriod = 5s", "cold start"}},
		{"budget field not set", withBudget(func(b *budget.Settings) { b.ContainerRetries = 0 }), []string{"Budget.ContainerRetries = 0", "must be set"}},
		{"fractional seconds", withBudget(func(b *budget.Settings) { b.HealthCheckGracePeriod = 30500 * time.Millisecond }), []string{"Budget.HealthCheckGracePeriod = 30.5s", "whole"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.change(p)
			app := awscdk.NewApp(nil)
			stack := awscdk.NewStack(app, jsii.String("Test"), nil)
			svc, err := NewGangwayService(stack, "Web", p)
			if err == nil {
				t.Fatalf("accepted: %+v", svc)
			}
			verr, ok := err.(*ValidationError)
			if !ok {
				t.Fatalf("error %T %v, want *ValidationError", err, err)
			}
			var found bool
			for _, pr := range verr.Problems {
				line := pr.String()
				if strings.Contains(line, tc.want[0]) && strings.Contains(line, tc.want[1]) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem with %q and %q in:\n%v", tc.want[0], tc.want[1], err)
			}
			if n := len(*stack.Node().Children()); n != 0 {
				t.Errorf("refused props still created %d construct(s)", n)
			}
		})
	}
}

func TestValidPropsHaveNoProblems(t *testing.T) {
	// The defaults, and each strategy's defaults, pass resolve: no false refusals.
	for _, st := range []awsecs.DeploymentStrategy{"", awsecs.DeploymentStrategy_ROLLING, awsecs.DeploymentStrategy_LINEAR, awsecs.DeploymentStrategy_CANARY} {
		p := baseProps(t)
		p.Strategy = st
		if _, problems := resolve(*p); problems != nil {
			t.Errorf("strategy %q: %v", st, problems)
		}
	}
	for _, size := range [][2]int{{256, 512}, {256, 2048}, {512, 4096}, {4096, 30720}, {8192, 16384}, {16384, 122880}} {
		if rule := fargateSize(size[0], size[1]); rule != "" {
			t.Errorf("%v: %s", size, rule)
		}
	}
	for _, size := range [][2]int{{256, 1536}, {512, 512}, {8192, 20000}, {3000, 4096}} {
		if rule := fargateSize(size[0], size[1]); rule == "" {
			t.Errorf("%v accepted", size)
		}
	}
}
