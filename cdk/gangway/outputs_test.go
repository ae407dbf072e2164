package gangway

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/jsii-runtime-go"
)

// render writes a template value as text, each intrinsic as {Ref:ID} or {GetAtt:ID.Attr}
// and an Fn::Join of strings and intrinsics as the joined text, so that a dashboard body
// (an Fn::Join of JSON) parses as JSON with its references in place.
func render(t *testing.T, v any) string {
	t.Helper()
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if ref, ok := x["Ref"]; ok {
			return fmt.Sprintf("{Ref:%v}", ref)
		}
		if ga := arr(x["Fn::GetAtt"]); len(ga) == 2 {
			return fmt.Sprintf("{GetAtt:%v.%v}", ga[0], ga[1])
		}
		if j := arr(x["Fn::Join"]); len(j) == 2 {
			var parts []string
			for _, p := range arr(j[1]) {
				parts = append(parts, render(t, p))
			}
			return strings.Join(parts, fmt.Sprint(j[0]))
		}
	}
	t.Fatalf("cannot render %v", v)
	return ""
}

// ids are the logical IDs the dashboard and the outputs must point at, found from the
// resources that use them (the service's load balancers, the task definition's log options).
type ids struct {
	cluster, service, lb, blue, green, taskDef string
	proxyLogs, appLogs, hookLogs, hook         string
	production, test                           string // listeners by port
	productionRule, testRule                   any    // as the service's advanced configuration has them
	alarms                                     []string
	alarmNames                                 []string
}

func findIDs(t *testing.T, s synthesized) ids {
	t.Helper()
	var x ids
	only := func(typ string) string {
		rs := s.resources(typ)
		if len(rs) != 1 {
			t.Fatalf("%d %s, want 1", len(rs), typ)
		}
		for id := range rs {
			return id
		}
		return ""
	}
	x.cluster = only("AWS::ECS::Cluster")
	x.service = only("AWS::ECS::Service")
	x.lb = only("AWS::ElasticLoadBalancingV2::LoadBalancer")
	x.taskDef = only("AWS::ECS::TaskDefinition")
	svc := s.one(t, "AWS::ECS::Service")
	lb := obj(arr(svc["LoadBalancers"])[0])
	x.blue = fmt.Sprint(obj(lb["TargetGroupArn"])["Ref"])
	if adv := obj(lb["AdvancedConfiguration"]); adv != nil {
		x.green = fmt.Sprint(obj(adv["AlternateTargetGroupArn"])["Ref"])
		x.productionRule, x.testRule = adv["ProductionListenerRule"], adv["TestListenerRule"]
		hook := obj(arr(obj(svc["DeploymentConfiguration"])["LifecycleHooks"])[0])
		x.hook = getAttID(hook["HookTargetArn"])
		x.hookLogs = fmt.Sprint(obj(obj(obj(s.resourceByID(t, x.hook)["Properties"])["LoggingConfig"])["LogGroup"])["Ref"])
	}
	for _, c := range arr(s.one(t, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]) {
		group := fmt.Sprint(obj(obj(obj(obj(c)["LogConfiguration"])["Options"])["awslogs-group"])["Ref"])
		switch obj(c)["Name"] {
		case ProxyContainerName:
			x.proxyLogs = group
		case AppContainerName:
			x.appLogs = group
		}
	}
	for id, l := range s.resources("AWS::ElasticLoadBalancingV2::Listener") {
		switch num(l["Port"]) {
		case 443:
			x.production = id
		case DefaultTestListenerPort:
			x.test = id
		}
	}
	for id := range s.resources("AWS::CloudWatch::Alarm") {
		x.alarms = append(x.alarms, id)
	}
	for _, n := range arr(obj(obj(svc["DeploymentConfiguration"])["Alarms"])["AlarmNames"]) {
		x.alarmNames = append(x.alarmNames, fmt.Sprint(n))
	}
	return x
}

// widget is one dashboard widget, its metrics as "Namespace MetricName Dim=Value ... stat".
type widget struct {
	typ, title string
	metrics    []string
	alarms     []string
}

func dashboardWidgets(t *testing.T, s synthesized) (name string, widgets []widget) {
	t.Helper()
	d := s.one(t, "AWS::CloudWatch::Dashboard")
	body := render(t, d["DashboardBody"])
	var doc struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Title   string  `json:"title"`
				Metrics [][]any `json:"metrics"`
				Alarms  []any   `json:"alarms"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("dashboard body %s: %v", body, err)
	}
	for _, w := range doc.Widgets {
		out := widget{typ: w.Type, title: w.Properties.Title}
		for _, m := range w.Properties.Metrics {
			// [namespace, name, dim, value, ..., {options}]
			var parts []string
			for i, p := range m {
				switch {
				case i < 2:
					parts = append(parts, fmt.Sprint(p))
				case i%2 == 0 && i+1 < len(m):
					if _, isOpts := p.(map[string]any); !isOpts {
						parts = append(parts, fmt.Sprintf("%v=%v", p, m[i+1]))
					}
				}
			}
			// CloudWatch's default statistic is Average, which CDK leaves out.
			stat := "Average"
			if opts, ok := m[len(m)-1].(map[string]any); ok && opts["stat"] != nil {
				stat = fmt.Sprint(opts["stat"])
			}
			parts = append(parts, stat)
			out.metrics = append(out.metrics, strings.Join(parts, " "))
		}
		for _, a := range w.Properties.Alarms {
			out.alarms = append(out.alarms, fmt.Sprint(a))
		}
		widgets = append(widgets, out)
	}
	return fmt.Sprint(d["DashboardName"]), widgets
}

func TestDashboard(t *testing.T) {
	s := synth(t, baseProps(t))
	x := findIDs(t, s)
	name, widgets := dashboardWidgets(t, s)
	if want := *awscdk.Names_UniqueId(s.svc.Construct); name != want {
		t.Errorf("DashboardName = %q, want %q (a literal, as the alarms' names)", name, want)
	}

	lb := "LoadBalancer={GetAtt:" + x.lb + ".LoadBalancerFullName}"
	tg := func(id string) string { return "TargetGroup={GetAtt:" + id + ".TargetGroupFullName}" }
	elb := "AWS/ApplicationELB "
	ecsDims := "ClusterName={Ref:" + x.cluster + "} ServiceName={GetAtt:" + x.service + ".Name}"
	var want []string
	for _, g := range []string{x.blue, x.green} {
		want = append(want,
			elb+"HTTPCode_Target_5XX_Count "+lb+" "+tg(g)+" Sum",
			elb+"HealthyHostCount "+lb+" "+tg(g)+" Minimum",
			elb+"UnHealthyHostCount "+lb+" "+tg(g)+" Maximum",
			elb+"TargetResponseTime "+lb+" "+tg(g)+" p50",
			elb+"TargetResponseTime "+lb+" "+tg(g)+" p99",
			elb+"RequestCount "+lb+" "+tg(g)+" Sum")
	}
	want = append(want,
		elb+"HTTPCode_ELB_5XX_Count "+lb+" Sum", // the load balancer's own: no target group
		"AWS/ECS CPUUtilization "+ecsDims+" Average",
		"AWS/ECS MemoryUtilization "+ecsDims+" Average",
		"ECS/ContainerInsights DeploymentCount "+ecsDims+" Maximum",
		"ECS/ContainerInsights RunningTaskCount "+ecsDims+" Maximum",
		"ECS/ContainerInsights DesiredTaskCount "+ecsDims+" Maximum")
	var got []string
	var alarms []string
	for _, w := range widgets {
		for _, m := range w.metrics {
			// Dimension order is CDK's; compare as sets of words.
			f := strings.Fields(m)
			slices.Sort(f[2 : len(f)-1])
			got = append(got, strings.Join(f, " "))
		}
		if w.typ == "alarm" {
			alarms = append(alarms, w.alarms...)
		}
	}
	for _, m := range want {
		f := strings.Fields(m)
		slices.Sort(f[2 : len(f)-1])
		if !slices.Contains(got, strings.Join(f, " ")) {
			t.Errorf("dashboard has no metric %q; it has:\n  %s", m, strings.Join(got, "\n  "))
		}
	}
	// The alarm status widget shows every deployment alarm.
	slices.Sort(alarms)
	var wantAlarms []string
	for _, id := range x.alarms {
		wantAlarms = append(wantAlarms, "{GetAtt:"+id+".Arn}")
	}
	slices.Sort(wantAlarms)
	if !reflect.DeepEqual(alarms, wantAlarms) || len(wantAlarms) != 7 {
		t.Errorf("alarm status widget shows %v, want the 7 deployment alarms %v", alarms, wantAlarms)
	}

	// Off: no dashboard, no DashboardName output.
	p := baseProps(t)
	p.Dashboard = jsii.Bool(false)
	off := synth(t, p)
	if n := len(off.resources("AWS::CloudWatch::Dashboard")); n != 0 {
		t.Errorf("Dashboard false: %d dashboards", n)
	}
	if _, ok := obj(off.json["Outputs"])["DashboardName"]; ok || off.svc.Dashboard != nil {
		t.Error("Dashboard false: DashboardName output or field still set")
	}
}

// outputValues returns each output's value, rendered.
func outputValues(t *testing.T, s synthesized) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, o := range obj(s.json["Outputs"]) {
		if desc, _ := obj(o)["Description"].(string); desc == "" {
			t.Errorf("output %s has no description", k)
		}
		out[k] = render(t, obj(o)["Value"])
	}
	return out
}

func TestRunbookOutputs(t *testing.T) {
	s := synth(t, baseProps(t))
	x := findIDs(t, s)
	slices.Sort(x.alarmNames)
	family := fmt.Sprint(s.one(t, "AWS::ECS::TaskDefinition")["Family"])
	want := map[string]string{
		"ClusterName":               "{Ref:" + x.cluster + "}",
		"ServiceName":               "{GetAtt:" + x.service + ".Name}",
		"ServiceArn":                "{Ref:" + x.service + "}",
		"TaskFamily":                family,
		"ProxyLogGroup":             "{Ref:" + x.proxyLogs + "}",
		"AppLogGroup":               "{Ref:" + x.appLogs + "}",
		"HookLogGroup":              "{Ref:" + x.hookLogs + "}",
		"BlueTargetGroupArn":        "{Ref:" + x.blue + "}",
		"GreenTargetGroupArn":       "{Ref:" + x.green + "}",
		"ProductionListenerArn":     "{Ref:" + x.production + "}",
		"TestListenerArn":           "{Ref:" + x.test + "}",
		"ProductionListenerRuleArn": render(t, x.productionRule),
		"TestListenerRuleArn":       render(t, x.testRule),
		"AlarmNames":                strings.Join(x.alarmNames, ","),
		"HookFunctionName":          "{Ref:" + x.hook + "}",
		"LoadBalancerDnsName":       "{GetAtt:" + x.lb + ".DNSName}",
		"DashboardName":             "{Ref:" + only(t, s, "AWS::CloudWatch::Dashboard") + "}",
	}
	got := outputValues(t, s)
	// AlarmNames is compared as a set: the service lists the names in its own order.
	names := strings.Split(got["AlarmNames"], ",")
	slices.Sort(names)
	got["AlarmNames"] = strings.Join(names, ",")
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("output %s = %q, want %q", k, got[k], want[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected output %s = %q", k, got[k])
			}
		}
	}
	if family == "" || family == "<nil>" || len(x.alarmNames) != 7 {
		t.Errorf("family %q, %d alarm names: the template lacks what the outputs should name", family, len(x.alarmNames))
	}
	// The rule outputs name the custom resources' created rules, not a listener rule resource.
	if !strings.HasPrefix(got["ProductionListenerRuleArn"], "{GetAtt:") || !strings.HasSuffix(got["ProductionListenerRuleArn"], ".Rules.0.RuleArn}") {
		t.Errorf("ProductionListenerRuleArn = %s, want the custom resource's Rules.0.RuleArn", got["ProductionListenerRuleArn"])
	}

	// The Go side: Exports lists the same keys, in order, and Outputs holds them.
	var keys []string
	for _, e := range s.svc.Exports() {
		keys = append(keys, e.Key)
		if s.svc.Outputs[e.Key] == nil {
			t.Errorf("Outputs lacks %s", e.Key)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("Exports() = %v, want the %d outputs", keys, len(want))
	}
	if got := strings.Join(s.svc.AlarmNames, ","); len(s.svc.AlarmNames) != 7 || strings.Count(got, ",") != 6 {
		t.Errorf("AlarmNames field = %v", s.svc.AlarmNames)
	}
}

func only(t *testing.T, s synthesized, typ string) string {
	t.Helper()
	for id := range s.resources(typ) {
		return id
	}
	t.Fatalf("no %s", typ)
	return ""
}

func TestRunbookOutputsRolling(t *testing.T) {
	p := baseProps(t)
	p.Strategy = awsecs.DeploymentStrategy_ROLLING
	s := synth(t, p)
	got := outputValues(t, s)
	for _, k := range []string{"GreenTargetGroupArn", "TestListenerArn", "TestListenerRuleArn", "HookFunctionName", "HookLogGroup"} {
		if _, ok := got[k]; ok {
			t.Errorf("ROLLING has output %s, but no such resource", k)
		}
	}
	var forwardRule string
	for id, r := range s.resources("AWS::ElasticLoadBalancingV2::ListenerRule") {
		if num(r["Priority"]) == TrafficRulePriority {
			forwardRule = id
		}
	}
	if got["ProductionListenerRuleArn"] != "{Ref:"+forwardRule+"}" || forwardRule == "" {
		t.Errorf("ProductionListenerRuleArn = %q, want {Ref:%s}", got["ProductionListenerRuleArn"], forwardRule)
	}
	if n := len(strings.Split(got["AlarmNames"], ",")); n != 4 {
		t.Errorf("AlarmNames = %q: %d names, want ROLLING's 4", got["AlarmNames"], n)
	}
}

func TestRunbookOutputsTwoServices(t *testing.T) {
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Two"), nil)
	for _, name := range []string{"Api", "Web"} {
		p := baseProps(t)
		p.OutputPrefix = name
		if _, err := NewGangwayService(stack, name, p); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(assertions.Template_FromStack(stack, nil).ToJSON())
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	outs := obj(doc["Outputs"])
	api, web := render(t, obj(outs["ApiClusterName"])["Value"]), render(t, obj(outs["WebClusterName"])["Value"])
	if api == "" || web == "" || api == web || !strings.Contains(api, "Api") || !strings.Contains(web, "Web") {
		t.Errorf("ApiClusterName %q, WebClusterName %q: want each service's own cluster", api, web)
	}
	if _, ok := outs["ClusterName"]; ok {
		t.Error("an unprefixed ClusterName beside two prefixed services")
	}

	// A third service with a prefix already taken is refused, naming the prop, and creates nothing.
	before := len(*stack.Node().Children())
	_, err := NewGangwayService(stack, "Web2", func() *GangwayServiceProps { p := baseProps(t); p.OutputPrefix = "Web"; return p }())
	if err == nil || !strings.Contains(err.Error(), `OutputPrefix = "Web"`) || !strings.Contains(err.Error(), "WebClusterName") {
		t.Errorf("same prefix twice: %v, want a refusal of OutputPrefix naming WebClusterName", err)
	}
	if after := len(*stack.Node().Children()); after != before {
		t.Errorf("refused service created %d construct(s)", after-before)
	}
}

func TestOutputsOff(t *testing.T) {
	p := baseProps(t)
	p.Outputs = jsii.Bool(false)
	s := synth(t, p)
	if n := len(obj(s.json["Outputs"])); n != 0 || s.svc.Outputs != nil {
		t.Errorf("Outputs false: %d outputs", n)
	}
	if len(s.svc.Exports()) != 17 {
		t.Errorf("Exports() = %d values with Outputs false, want 17: the stack may create its own", len(s.svc.Exports()))
	}
}
