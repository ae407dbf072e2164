package ecs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gangway-ecs/gangway/internal/budget"
)

const taskdefDir = "../../taskdefs"

func shippedTaskDefinitions(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(taskdefDir, "*.json"))
	if err != nil || len(files) < 3 {
		t.Fatalf("task definitions in %s: %v %v", taskdefDir, files, err)
	}
	return files
}

func defaultInput(td *TaskDefinition) LintInput {
	d := budget.Defaults()
	return LintInput{TaskDefinition: td, LongestRequest: d.LongestRequest, ColdStart: d.ColdStart}
}

func TestShippedTaskDefinitionsPass(t *testing.T) {
	tg, err := ReadTargetGroup(filepath.Join(taskdefDir, "settings/target-group.json"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ReadService(filepath.Join(taskdefDir, "settings/service.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range shippedTaskDefinitions(t) {
		td, err := ReadTaskDefinition(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(GangwayContainers(td)) != 1 {
			t.Errorf("%s: Gangway containers %v, want one", f, GangwayContainers(td))
		}
		in := defaultInput(td)
		if v := Lint(in); v != nil {
			t.Errorf("%s alone: %v", f, v)
		}
		in.TargetGroup, in.Service = tg, svc
		if v := Lint(in); v != nil {
			t.Errorf("%s with the shipped target group and service: %v", f, v)
		}
	}
}

// mutate loads the shipped proxy+app task definition as generic JSON, applies change and
// parses the result.
func mutate(t *testing.T, change func(td map[string]any, proxy, app map[string]any)) *TaskDefinition {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(taskdefDir, "fargate-proxy-app.json"))
	if err != nil {
		t.Fatal(err)
	}
	var td map[string]any
	if err := json.Unmarshal(data, &td); err != nil {
		t.Fatal(err)
	}
	containers := td["containerDefinitions"].([]any)
	change(td, containers[0].(map[string]any), containers[1].(map[string]any))
	out, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseTaskDefinition(out)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

func hc(c map[string]any) map[string]any { return c["healthCheck"].(map[string]any) }

func TestLintBrokenTaskDefinitions(t *testing.T) {
	type m = map[string]any
	tests := []struct {
		name   string
		change func(td, proxy, app m)
		want   []string // fields, in Lint's order
		says   string   // a phrase the first finding must contain
	}{
		{"bridge network on Fargate", func(td, _, _ m) { td["networkMode"] = "bridge" },
			[]string{"networkMode"}, "awsvpc"},
		{"no task cpu", func(td, _, _ m) { delete(td, "cpu") },
			[]string{"cpu"}, "task-level cpu and memory"},
		{"odd fargate cpu", func(td, _, _ m) { td["cpu"] = "300" },
			[]string{"cpu"}, "256, 512"},
		{"memory not offered", func(td, _, _ m) { td["memory"] = "512" },
			[]string{"memory"}, "not a Fargate size"},
		{"proxy memory limit too small", func(_, p, _ m) { p["memory"] = 48 },
			[]string{"containerDefinitions[proxy].memory"}, "at least 64 MiB"},
		{"more threads than the task has vCPUs", func(_, p, _ m) {
			p["environment"] = append(p["environment"].([]any), m{"name": "GOMAXPROCS", "value": "2"})
		}, []string{"containerDefinitions[proxy].environment.GOMAXPROCS"}, "more threads than the task's cpu of 512 units has vCPUs (1, rounded up)"},
		{"threads within the task's vCPUs", func(td, p, _ m) {
			td["cpu"], td["memory"] = "2048", "4096"
			p["environment"] = append(p["environment"].([]any), m{"name": "GOMAXPROCS", "value": "2"})
		}, nil, ""},
		{"GOMAXPROCS that Go ignores", func(_, p, _ m) {
			p["environment"] = append(p["environment"].([]any), m{"name": "GOMAXPROCS", "value": "two"})
		}, []string{"containerDefinitions[proxy].environment.GOMAXPROCS"}, "Go ignores any other value"},
		{"GOMAXPROCS beyond what Go reads (a 32-bit count)", func(_, p, _ m) {
			p["environment"] = append(p["environment"].([]any), m{"name": "GOMAXPROCS", "value": "3000000000"})
		}, []string{"containerDefinitions[proxy].environment.GOMAXPROCS"}, "Go ignores any other value"},
		{"proxy not essential", func(_, p, _ m) { p["essential"] = false },
			[]string{"containerDefinitions[proxy].essential"}, "essential"},
		{"no stopTimeout", func(_, p, _ m) { delete(p, "stopTimeout") },
			[]string{"containerDefinitions[proxy].stopTimeout"}, "must be set"},
		{"stopTimeout too short for the shutdown", func(_, p, _ m) { p["stopTimeout"] = 20 },
			[]string{"containerDefinitions[proxy].environment.GANGWAY_SHUTDOWN_DEADLINE", "containerDefinitions[proxy].stopTimeout"}, "SIGKILL"},
		{"shutdown settings from the proxy's defaults", func(_, p, _ m) {
			p["environment"] = []any{m{"name": "GANGWAY_UPSTREAM", "value": "127.0.0.1:80"}}
			p["stopTimeout"] = 20
		}, []string{"proxyConfig.shutdown.deadline", "containerDefinitions[proxy].stopTimeout"}, "shutdown.deadline to 20s"},
		{"proxy would refuse its configuration", func(_, p, _ m) {
			p["environment"] = []any{m{"name": "GANGWAY_UPSTREAM", "value": "nowhere"}}
		}, []string{"containerDefinitions[proxy].environment"}, "would refuse to start"},
		{"shutdown overrides that do not fit the deadline", func(_, p, _ m) {
			p["environment"] = []any{m{"name": "GANGWAY_SHUTDOWN_DRAIN_TIMEOUT", "value": "20s"}}
		}, []string{"containerDefinitions[proxy].environment"}, "GANGWAY_SHUTDOWN_DRAIN_TIMEOUT"},
		{"stopTimeout beyond Fargate", func(_, p, _ m) { p["stopTimeout"] = 180 },
			[]string{"containerDefinitions[proxy].stopTimeout"}, "2 s–120 s"},
		{"slow container health check", func(_, p, _ m) { hc(p)["interval"] = 30 },
			[]string{"containerDefinitions[proxy].healthCheck.interval"}, "at most 10 s"},
		{"health check defaults", func(_, p, _ m) {
			p["healthCheck"] = m{"command": []any{"CMD", "/healthcheck"}}
		}, []string{"containerDefinitions[proxy].healthCheck.interval", "containerDefinitions[proxy].healthCheck.startPeriod"}, "30s"},
		{"health check timeout too long", func(_, p, _ m) { hc(p)["timeout"] = 5 },
			[]string{"containerDefinitions[proxy].healthCheck.timeout"}, "less than its interval"},
		{"health check retries out of range", func(_, p, _ m) { hc(p)["retries"] = 0 },
			[]string{"containerDefinitions[proxy].healthCheck.retries"}, "1–10"},
		{"health check interval 0", func(_, p, _ m) { hc(p)["interval"] = 0 },
			[]string{"containerDefinitions[proxy].healthCheck.interval"}, "5–300"},
		{"start period shorter than cold start", func(_, p, _ m) { hc(p)["startPeriod"] = 5 },
			[]string{"containerDefinitions[proxy].healthCheck.startPeriod"}, "cold start"},
		{"health check on something else", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"}
		}, []string{"containerDefinitions"}, "no container declares"},
		{"health check on readiness", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD", "/healthcheck", "-probe", "ready"}
		}, []string{"containerDefinitions[proxy].healthCheck.command"}, "ECS replaces the whole fleet"},
		{"health check on readiness, flag with =", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD-SHELL", "/usr/local/bin/gangway-healthcheck --probe=readyz -timeout 1s"}
		}, []string{"containerDefinitions[proxy].healthCheck.command"}, "readiness belongs to the target group"},
		{"health check on readiness with curl", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD-SHELL", "curl -f http://127.0.0.1:28080/readyz || exit 1"}
		}, []string{"containerDefinitions[proxy].healthCheck.command"}, "ECS replaces the whole fleet"},
		{"health check on the container probe with wget", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD-SHELL", "wget -q -O- http://127.0.0.1:28080/containerz || exit 1"}
		}, []string{"containerDefinitions[proxy].healthCheck.command"}, "static probe"},
		{"health check on liveness", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD", "/healthcheck", "-probe", "live"}
		}, []string{"containerDefinitions[proxy].healthCheck.command"}, "never starts"},
		{"probe timeout as long as the health check's", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD", "/healthcheck", "-probe", "container", "-timeout", "2s"}
		}, []string{"containerDefinitions[proxy].healthCheck.timeout"}, "ECS kills the probe before it gives up"},
		{"probe timeout within the margin", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD", "/healthcheck", "--timeout=1600ms"}
		}, []string{"containerDefinitions[proxy].healthCheck.timeout"}, "lower healthCheck.command's -timeout to 1.5s"},
		{"probe timeout not a duration", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD", "/healthcheck", "-timeout", "2"}
		}, []string{"containerDefinitions[proxy].healthCheck.command"}, "exits 4"},
		{"health check on an unknown probe", func(_, p, _ m) {
			hc(p)["command"] = []any{"CMD", "/healthcheck", "-probe", "deep"}
		}, []string{"containerDefinitions[proxy].healthCheck.command"}, `no probe "deep"`},
		{"startTimeout on the waiting container", func(_, p, a m) {
			p["startTimeout"] = 120
			delete(a, "startTimeout")
		}, []string{"containerDefinitions[proxy].startTimeout"}, `move it to the container "proxy" waits for: "app"`},
		{"proxy does not depend on the app", func(_, p, _ m) { delete(p, "dependsOn") },
			[]string{"containerDefinitions[proxy].dependsOn"}, "stops it before the application"},
		{"app depends on the proxy", func(_, p, a m) {
			delete(p, "dependsOn")
			a["dependsOn"] = []any{m{"containerName": "proxy", "condition": "HEALTHY"}}
		}, []string{"containerDefinitions[app].startTimeout", "containerDefinitions[app].dependsOn", "containerDefinitions[proxy].dependsOn"}, "no effect"},
		{"HEALTHY on an app without a health check", func(_, _, a m) { delete(a, "healthCheck") },
			[]string{"containerDefinitions[proxy].dependsOn[app].condition"}, "never start"},
		{"COMPLETE dependency", func(_, p, _ m) {
			p["dependsOn"] = []any{m{"containerName": "app", "condition": "COMPLETE"}}
		}, []string{"containerDefinitions[proxy].dependsOn[app].condition"}, "START or HEALTHY"},
		{"blocking logs", func(_, p, _ m) {
			p["logConfiguration"].(m)["options"].(m)["mode"] = "blocking"
		}, []string{"containerDefinitions[proxy].logConfiguration.options.mode"}, "non-blocking"},
		{"log mode left to the account", func(_, p, _ m) {
			delete(p["logConfiguration"].(m)["options"].(m), "mode")
		}, []string{"containerDefinitions[proxy].logConfiguration.options.mode"}, "defaultLogDriverMode"},
		{"no logs", func(_, p, _ m) { delete(p, "logConfiguration") },
			[]string{"containerDefinitions[proxy].logConfiguration"}, "lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := mutate(t, tt.change)
			got := Lint(defaultInput(td))
			assertFields(t, got, tt.want, tt.says)
		})
	}
}

func assertFields(t *testing.T, got []budget.Violation, want []string, says string) {
	t.Helper()
	var fields []string
	for _, v := range got {
		fields = append(fields, v.Field)
		if v.Value == "" || v.Rule == "" || v.Fix == "" {
			t.Errorf("incomplete finding %+v", v)
		}
		for _, name := range []string{"ContainerInterval", "ShutdownDelay", "LBHealthInterval", "StopTimeout "} {
			if strings.Contains(v.Error(), name) {
				t.Errorf("finding uses the budget's name %s instead of the file's: %s", name, v)
			}
		}
	}
	if !reflect.DeepEqual(fields, want) {
		t.Fatalf("fields = %q, want %q\n%v", fields, want, got)
	}
	if says != "" && !strings.Contains(got[0].Error(), says) {
		t.Errorf("finding %q does not say %q", got[0].Error(), says)
	}
}

func TestLintTargetGroupAndService(t *testing.T) {
	n := func(i int) *int { return &i }
	attrs := func(v string) []struct{ Key, Value string } {
		return []struct{ Key, Value string }{{"deregistration_delay.timeout_seconds", v}}
	}
	recommended := func() *TargetGroup {
		return &TargetGroup{HealthCheckIntervalSeconds: n(5), HealthCheckTimeoutSeconds: n(2), HealthyThresholdCount: n(2), UnhealthyThresholdCount: n(2), Attributes: attrs("15")}
	}
	tests := []struct {
		name  string
		tg    func() *TargetGroup
		svc   string
		env   map[string]string // set on the proxy container
		want  []string
		says  string
		input func(*LintInput)
	}{
		{"ALB defaults are too slow for the shutdown delay", func() *TargetGroup { return &TargetGroup{} }, "", nil,
			[]string{"containerDefinitions[proxy].environment.GANGWAY_SHUTDOWN_DELAY"}, "30s × 2 + 5s = 1m5s", nil},
		{"interval 10s", func() *TargetGroup { tg := recommended(); tg.HealthCheckIntervalSeconds = n(10); return tg }, "", nil,
			[]string{"containerDefinitions[proxy].environment.GANGWAY_SHUTDOWN_DELAY"}, "raise GANGWAY_SHUTDOWN_DELAY to 22s and stopTimeout to 40 s", nil},
		{"timeout not below interval", func() *TargetGroup { tg := recommended(); tg.HealthCheckTimeoutSeconds = n(5); return tg }, "", map[string]string{"GANGWAY_SHUTDOWN_DELAY": "15s", "GANGWAY_SHUTDOWN_DRAIN_TIMEOUT": "12s"},
			[]string{"targetGroup.HealthCheckTimeoutSeconds"}, "less than its interval", nil},
		{"dereg delay shorter than the longest request", func() *TargetGroup { tg := recommended(); tg.Attributes = attrs("5"); return tg }, "", nil,
			[]string{"targetGroup.Attributes[deregistration_delay.timeout_seconds]"}, "longest request", nil},
		{"dereg delay 0", func() *TargetGroup { tg := recommended(); tg.Attributes = attrs("0"); return tg }, "", nil,
			[]string{"targetGroup.Attributes[deregistration_delay.timeout_seconds]"}, "cuts requests", nil},
		{"dereg delay not a number", func() *TargetGroup { tg := recommended(); tg.Attributes = attrs("soon"); return tg }, "", nil,
			[]string{"targetGroup.Attributes[deregistration_delay.timeout_seconds]"}, "whole number of seconds", nil},
		{"thresholds out of range", func() *TargetGroup { tg := recommended(); tg.HealthyThresholdCount = n(1); return tg }, "", nil,
			[]string{"targetGroup.HealthyThresholdCount"}, "2–10", nil},
		{"drain leaves no margin", recommended, "", map[string]string{"GANGWAY_SHUTDOWN_DRAIN_TIMEOUT": "16s"},
			[]string{"containerDefinitions[proxy].environment"}, "drain_timeout (16s) + 3s margin = 31s does not fit deadline (30s)", nil},
		{"deadline beyond stopTimeout", recommended, "", map[string]string{"GANGWAY_SHUTDOWN_DEADLINE": "60"},
			[]string{"containerDefinitions[proxy].environment.GANGWAY_SHUTDOWN_DEADLINE"}, "set GANGWAY_SHUTDOWN_DEADLINE to 30s", nil},
		{"service at 50/100 without grace or circuit breaker", recommended,
			`{"loadBalancers": [{"containerName": "proxy"}], "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100}}`, nil,
			[]string{"service.deploymentConfiguration.minimumHealthyPercent", "service.deploymentConfiguration.maximumPercent",
				"service.healthCheckGracePeriodSeconds", "service.deploymentConfiguration.deploymentCircuitBreaker"}, "below 100", nil},
		{"grace shorter than the cold start", recommended,
			`{"services": [{"healthCheckGracePeriodSeconds": 5, "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}]}`, nil,
			[]string{"service.healthCheckGracePeriodSeconds"}, "cold start and the healthy threshold's passing checks (10s + 2 × 5s = 20s)", nil},
		{"circuit breaker without rollback", recommended,
			`{"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": false}}}`, nil,
			[]string{"service.deploymentConfiguration.deploymentCircuitBreaker"}, "for hours", nil},
		{"blue/green with alarms needs no circuit breaker", recommended,
			`{"deploymentConfiguration": {"strategy": "BLUE_GREEN", "alarms": {"alarmNames": ["5xx"], "enable": true, "rollback": true}}}`, nil, nil, "", nil},
		{"blue/green with a hook", recommended,
			`{"deploymentConfiguration": {"strategy": "BLUE_GREEN", "lifecycleHooks": [{"hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:smoke", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]}}`, nil, nil, "", nil},
		{"blue/green with neither hook nor alarms", recommended,
			`{"deploymentConfiguration": {"strategy": "BLUE_GREEN", "alarms": {"alarmNames": ["5xx"], "enable": false}}}`, nil,
			[]string{"service.deploymentConfiguration"}, "nothing rolls it back", nil},
		{"canary with neither hook nor alarms", recommended,
			`{"deploymentConfiguration": {"strategy": "CANARY"}}`, nil,
			[]string{"service.deploymentConfiguration"}, "CANARY without", nil},
		{"grace covers the cold start but not the healthy checks", recommended,
			`{"healthCheckGracePeriodSeconds": 15, "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}`, nil,
			[]string{"service.healthCheckGracePeriodSeconds"}, "10s + 2 × 5s = 20s", nil},
		{"fargate spot with a long deregistration delay", func() *TargetGroup { tg := recommended(); tg.Attributes = attrs("300"); return tg },
			`{"capacityProviderStrategy": [{"capacityProvider": "FARGATE", "base": 1, "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 3}], "healthCheckGracePeriodSeconds": 30, "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}`, nil,
			[]string{"targetGroup.Attributes[deregistration_delay.timeout_seconds]"}, "FARGATE_SPOT", nil},
		{"fargate spot with a short deregistration delay", recommended,
			`{"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}], "healthCheckGracePeriodSeconds": 30, "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}`, nil, nil, "", nil},
		{"fargate spot at weight 0", func() *TargetGroup { tg := recommended(); tg.Attributes = attrs("300"); return tg },
			`{"capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 0}], "healthCheckGracePeriodSeconds": 30, "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}`, nil, nil, "", nil},
		{"proxy idle timeout below the ALB default", recommended, "", nil,
			[]string{"proxyConfig.timeout_idle"}, "(60s (assumed: the ALB default))", func(in *LintInput) { in.ConfigPath = idleConfig(t, "30s") }},
		{"proxy idle timeout equal to the load balancer's", recommended, "", nil,
			[]string{"proxyConfig.timeout_idle"}, "answer the client 502", func(in *LintInput) {
				in.ConfigPath = idleConfig(t, "2m")
				in.LoadBalancer = &LoadBalancer{Attributes: []struct{ Key, Value string }{{"idle_timeout.timeout_seconds", "120"}}}
			}},
		{"proxy idle timeout above the load balancer's", recommended, "", nil, nil, "", func(in *LintInput) {
			in.ConfigPath = idleConfig(t, "61s")
		}},
		{"proxy idle timeout disabled", recommended, "", nil, nil, "", func(in *LintInput) {
			in.ConfigPath = idleConfig(t, "0s")
		}},
		{"undeclared longest request skips its rules", func() *TargetGroup { tg := recommended(); tg.Attributes = attrs("0"); return tg }, "", nil,
			nil, "", func(in *LintInput) { in.LongestRequest = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, err := ReadTaskDefinition(filepath.Join(taskdefDir, "fargate-proxy-app.json"))
			if err != nil {
				t.Fatal(err)
			}
			proxy, _ := Container(td, "proxy")
			for k, v := range tt.env {
				SetEnv(proxy, k, v)
			}
			in := defaultInput(td)
			in.TargetGroup = tt.tg()
			if tt.svc != "" {
				path := filepath.Join(t.TempDir(), "service.json")
				if err := os.WriteFile(path, []byte(tt.svc), 0o600); err != nil {
					t.Fatal(err)
				}
				svc, err := ReadService(path)
				if err != nil {
					t.Fatal(err)
				}
				in.Service = svc
			}
			if tt.input != nil {
				tt.input(&in)
			}
			got := Lint(in)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("want no findings, got %v", got)
				}
				return
			}
			assertFields(t, got, tt.want, tt.says)
		})
	}
}

// idleConfig writes a proxy configuration with the given timeout_idle.
func idleConfig(t *testing.T, idle string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	doc := "timeout_idle: " + idle + `
listeners:
  - name: public
    address: 0.0.0.0:8080
clusters:
  - name: app
    endpoints: ["127.0.0.1:80"]
routes:
  - name: all
    cluster: app
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseHealthCheck(t *testing.T) {
	tests := []struct {
		cmd  []string
		want healthProbe
	}{
		{[]string{"CMD", "/healthcheck"}, healthProbe{gangway: true, static: true, probe: "container"}},
		{[]string{"CMD", "/healthcheck", "-probe", "container"}, healthProbe{gangway: true, static: true, probe: "container"}},
		{[]string{"CMD", "/healthcheck", "-addr", "127.0.0.1:9000", "-probe=ready"}, healthProbe{gangway: true, static: true, probe: "ready"}},
		{[]string{"CMD-SHELL", "/bin/healthcheck --probe live"}, healthProbe{gangway: true, static: true, probe: "live"}},
		{[]string{"CMD", "/proxy", "health", "-probe", "readiness"}, healthProbe{gangway: true, probe: "ready"}},
		{[]string{"CMD-SHELL", "curl -fsS 'http://127.0.0.1:28080/readyz?verbose' || exit 1"}, healthProbe{gangway: true, probe: "ready"}},
		{[]string{"CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:80/ || exit 1"}, healthProbe{}},
		{[]string{"NONE"}, healthProbe{}},
		{nil, healthProbe{}},
	}
	for _, tt := range tests {
		if got := parseHealthCheck(tt.cmd); got != tt.want {
			t.Errorf("parseHealthCheck(%q) = %+v, want %+v", tt.cmd, got, tt.want)
		}
	}
}

func TestReadTargetGroupShapes(t *testing.T) {
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"bare":    `{"HealthCheckIntervalSeconds": 7, "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "20"}]}`,
		"wrapped": `{"TargetGroups": [{"HealthCheckIntervalSeconds": 7}], "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "20"}]}`,
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		tg, err := ReadTargetGroup(path)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := tgAttribute(tg, "deregistration_delay.timeout_seconds"); tg.HealthCheckIntervalSeconds == nil || *tg.HealthCheckIntervalSeconds != 7 || v != "20" {
			t.Errorf("%s: got %+v", name, tg)
		}
	}
}

func TestParseTaskDefinitionErrors(t *testing.T) {
	tests := map[string]struct{ doc, want string }{
		"typo":           {"{\"family\": \"x\",\n \"containerDefinitions\": [{\"name\": \"a\", \"stopTimout\": 3}]}", `line 2: containerDefinitions[0]: unknown field "stopTimout" (did you mean "stopTimeout"?)`},
		"nested typo":    {"{\"family\": \"x\",\n \"containerDefinitions\": [{\"name\": \"a\"}, {\"name\": \"b\",\n \"healthCheck\": {\"comand\": [\"CMD\"]}}]}", `line 3: containerDefinitions[1].healthCheck: unknown field "comand" (did you mean "command"?)`},
		"top-level typo": {`{"famliy": "x", "containerDefinitions": [{"name": "a"}]}`, `line 1: unknown field "famliy" (did you mean "family"?)`},
		"read-only":      {`{"family": "x", "revision": 3, "containerDefinitions": [{"name": "a"}]}`, "taskDefinitionArn, revision or status"},
		"syntax":         {"{\"family\": \"x\",\n\n \"containerDefinitions\": [}", "line 3: invalid character"},
		"wrong type":     {"{\"family\": \"x\",\n \"containerDefinitions\": [{\"name\": \"a\", \"stopTimeout\": \"30\"}]}", "line 2:"},
		"no family":      {`{"containerDefinitions": [{"name": "a"}]}`, `"family" is required`},
		"no containers":  {`{"family": "x"}`, `"containerDefinitions" is required`},
		"unnamed":        {`{"family": "x", "containerDefinitions": [{"image": "a"}]}`, `containerDefinitions[0]: "name" is required`},
		"trailing":       {`{"family": "x", "containerDefinitions": [{"name": "a"}]} {}`, "unexpected data"},
		"two containers": {`{"family": "x", "containerDefinitions": [{"name": "a"}, {"name": "b", "healthCheck": {"command": ["CMD", "/healthcheck"]}}]}`, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			td, err := ParseTaskDefinition([]byte(tt.doc))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := GangwayContainers(td); !reflect.DeepEqual(got, []string{"b"}) {
					t.Errorf("GangwayContainers = %v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestLintUnpinnedProxyImage: the proxy's image must name a version tag or a digest; the
// application's image is not the linter's business.
func TestLintUnpinnedProxyImage(t *testing.T) {
	const field = "containerDefinitions[proxy].image"
	for _, tt := range []struct {
		image string
		says  string // "" when the image is pinned
	}{
		{"ghcr.io/gangway-ecs/gangway-proxy:latest", "not pinned (:latest)"},
		{"ghcr.io/gangway-ecs/gangway-proxy", "not pinned (no tag, which means :latest)"},
		{"localhost:5000/gangway-proxy", "pin a version tag (localhost:5000/gangway-proxy:v1.2.3)"},
		{"", "pin a version tag (REPOSITORY:v1.2.3) or a digest (REPOSITORY@sha256:..."},
		{"ghcr.io/gangway-ecs/gangway-proxy:v0.1.0", ""},
		{"localhost:5000/gangway-proxy:v0.1.0", ""},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com/gangway-proxy@sha256:" + strings.Repeat("ab", 32), ""},
		{"ghcr.io/gangway-ecs/gangway-proxy:latest@sha256:" + strings.Repeat("ab", 32), ""},
	} {
		td := mutate(t, func(_, proxy, app map[string]any) {
			proxy["image"] = tt.image
			app["image"] = "nginx" // unpinned, and not a Gangway container
		})
		var found []string
		for _, v := range Lint(defaultInput(td)) {
			found = append(found, v.Field)
			if v.Field == field && (tt.says == "" || !strings.Contains(v.Rule+"; "+v.Fix, tt.says)) {
				t.Errorf("%q: %s", tt.image, v.Error())
			}
		}
		if tt.says != "" && !slices.Contains(found, field) {
			t.Errorf("%q: no finding on %s (found %v)", tt.image, field, found)
		}
		if tt.says == "" && len(found) > 0 {
			t.Errorf("%q: findings %v, want none", tt.image, found)
		}
	}
}
