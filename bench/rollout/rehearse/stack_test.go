package rehearse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/load"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/timeline"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// stackTimeScale runs the stack's bake time (5 min → 30 s), the hooks' callback delays and
// timeouts (13 min → 78 s) and the alarms' periods (60 s → 6 s) faster. The target groups'
// checks, the deregistration delay and the proxy's shutdown keep the construct's real
// seconds (no -health-scale): the timing budget holds as synthesized.
const stackTimeScale = "0.1"

// TestStackOnECSLocal is the CDK stack of cdk/gangway, synthesized (make rehearse-stacks)
// and created by `bin/ecslocal -template`, run through `proxy rollout deploy` under counted
// load on its production listener. GANGWAY_REHEARSE_STACKS is the directory holding one
// synthesized cdk.out per strategy (BLUE_GREEN, ROLLING, CANARY). The short run (make
// test-ecslocal) is BLUE_GREEN's good and never-ready revisions; the full run (make
// rehearse) every scenario of docs/benchmarks.md's table.
func TestStackOnECSLocal(t *testing.T) {
	stacks := os.Getenv("GANGWAY_REHEARSE_STACKS")
	if os.Getenv("GANGWAY_ECSLOCAL_BIN") == "" || stacks == "" {
		t.Skip("GANGWAY_ECSLOCAL_BIN or GANGWAY_REHEARSE_STACKS is not set: the stack rehearsal runs in make test-ecslocal and make rehearse, which synthesize the stacks first")
	}
	ecslocaltest.RequireRoot(t, "runc", "ip", "haproxy", "unshare")
	fullRun := os.Getenv("GANGWAY_REHEARSE") == "full"
	sz := short
	if fullRun {
		sz = full
	}
	st := &stackRehearsal{
		ecslocal:    binary(t, "GANGWAY_ECSLOCAL_BIN", "ecslocal"),
		proxy:       binary(t, "GANGWAY_PROXY_BIN", "proxy"),
		proxyLayout: proxyImage(t),
		appLayout:   stackAppImage(t),
		sz:          sz,
	}
	defer func() { report(t, st.rows, st.scenarios) }()

	t.Run("BLUE_GREEN", func(t *testing.T) {
		s := st.start(t, filepath.Join(stacks, "BLUE_GREEN"), "BLUE_GREEN")
		s.deploy("good revision", "0", false, "app:GREETING=v2")
		s.serves("greeting=v2")
		s.deploy("never-ready revision", "5", false, "app:GREETING=v3", "app:NO_LISTEN=1")
		s.serves("greeting=v2")
		if !fullRun {
			return
		}
		// Production is on the other target group since the good revision.
		s.updateStack("v2-stack")
		s.serves("greeting=v2-stack")
		s.deployUnmoved("ready, 5xx on real routes (smoke hook)", "app:GREETING=v4", "app:FAIL_PATHS=/")
		s.serves("greeting=v2-stack")
		s.deploy("crash-looping revision", "5", false, "app:GREETING=v5", "app:EXIT_AFTER=3s")
		s.serves("greeting=v2-stack")
		s.deploySaying("alarm during bake time", "5", `alarm [^\n]*-target-5xx[^\n]* went into ALARM`, true, "app:GREETING=v6", "app:FAIL_PATHS=/echo")
		s.serves("greeting=v2-stack")
		// Slow, not failing: the p99-latency alarm (TargetResponseTime) rolls it back, and no
		// request fails on the way.
		s.deploySaying("slow revision (2.5 s answers): latency alarm during bake time", "5", `alarm [^\n]*-p99-latency[^\n]* went into ALARM`, false, "app:GREETING=v6s", "app:SLOW_PATHS=/echo")
		s.serves("greeting=v2-stack")
		s.repave()
		s.stopEach()
		s.scale()
		// Last, as it changes the target groups: the good revision again with ECS's and the
		// CDK's defaults in place of the timing budget's settings, for its wall time.
		s.defaults()
		s.deploy("good revision, target groups at the defaults (30 s interval, 5 healthy checks, 300 s deregistration delay)", "0", false, "app:GREETING=v7")
		s.serves("greeting=v7")
	})
	if !fullRun {
		return
	}
	for _, strategy := range []string{"ROLLING", "CANARY"} {
		t.Run(strategy, func(t *testing.T) {
			s := st.start(t, filepath.Join(stacks, strategy), strategy)
			s.deploy("good revision", "0", false, "app:GREETING=v2")
			s.serves("greeting=v2")
			s.deploy("never-ready revision", "5", false, "app:GREETING=v3", "app:NO_LISTEN=1")
			s.serves("greeting=v2")
		})
	}
}

// stackRehearsal is what every strategy's run shares: the binaries, the images, and the
// table.
type stackRehearsal struct {
	ecslocal, proxy        string
	proxyLayout, appLayout string
	sz                     size
	rows                   []row
	scenarios              []timeline.Scenario
}

// stackRun is one strategy's stack on its own ecslocal.
type stackRun struct {
	*stackRehearsal
	t        *testing.T
	ctx      context.Context
	strategy string
	endpoint string
	awsEnv   []string
	c        *ecs.Client
	e        *elb.Client
	cfn      *cloudformation.Client
	template string            // the synthesized template the stack was created from
	out      map[string]string // the stack's outputs
	tdFile   string            // the service's task definition as register-task-definition input
	url      string            // the production listener
}

// start runs ecslocal with the template in dir, waits for the first deployment and the
// production listener, and writes the task definition file the deploys start from.
func (st *stackRehearsal) start(t *testing.T, dir, strategy string) *stackRun {
	template := filepath.Join(dir, "Gangway.template.json")
	images := ecslocaltest.TemplateImages(t, template, "make rehearse-stacks writes it")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	t.Cleanup(cancel)
	ip := ecslocaltest.FreeLoopbackIP(t, 10, 99, ecslocaltest.StackPorts) // ecslocal -lb-addr: the template's ports on a loopback IP of this run's own
	endpoint := startECSLocal(t, st.ecslocal, "-template", template, "-time-scale", stackTimeScale, "-lb-addr", ip,
		"-image", images["app"]+"="+st.appLayout, "-image", images["proxy"]+"="+st.proxyLayout)
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 3,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})}
	s := &stackRun{stackRehearsal: st, t: t, ctx: ctx, strategy: strategy, endpoint: endpoint,
		awsEnv: []string{"AWS_ENDPOINT_URL=" + endpoint, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"},
		c: ecs.NewFromConfig(cfg), e: elb.NewFromConfig(cfg), cfn: cloudformation.NewFromConfig(cfg), template: template, url: "http://" + net.JoinHostPort(ip, "443")}
	s.out = s.outputs("Gangway")
	need := []string{"ClusterName", "ServiceName", "TaskFamily", "BlueTargetGroupArn", "ProductionListenerRuleArn"}
	if strategy != "ROLLING" {
		// The blue/green strategies' second target group and test listener; a rolling
		// service has one target group.
		need = append(need, "GreenTargetGroupArn", "TestListenerRuleArn")
	}
	for _, k := range need {
		if s.out[k] == "" {
			t.Fatalf("the stack has no output %s: %v", k, s.out)
		}
	}
	if code, out := s.run(append([]string{"rollout", "watch"}, s.watchArgs()...)...); code != 0 {
		t.Fatalf("the stack's first deployment: proxy rollout watch exits %d:\n%s", code, out)
	}
	s.waitSteady(s.desired(), "")
	waitServing(t, s.url)
	s.tdFile = filepath.Join(t.TempDir(), "taskdef.json")
	if err := os.WriteFile(s.tdFile, s.taskDefinitionInput(), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stackRun) watchArgs() []string {
	return []string{"-cluster", s.out["ClusterName"], "-service", s.out["ServiceName"], "-interval", "500ms", "-timeout", "15m"}
}

// run runs bin/proxy against ecslocal and returns its exit code and output.
func (s *stackRun) run(args ...string) (int, string) {
	return runProxy(s.ctx, s.t, s.proxy, s.awsEnv, args...)
}

// taskDefinitionInput is the service's task definition as an operator gets it: `aws ecs
// describe-task-definition --query taskDefinition`, less the members that describe a
// registered revision (which register-task-definition refuses).
func (s *stackRun) taskDefinitionInput() []byte {
	raw := awsJSON(s.t, s.endpoint, "DescribeTaskDefinition", map[string]any{"taskDefinition": s.out["TaskFamily"]})
	var out struct {
		TaskDefinition map[string]any `json:"taskDefinition"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("DescribeTaskDefinition: %v: %s", err, raw)
	}
	for _, k := range []string{"taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities", "registeredAt", "registeredBy", "deregisteredAt"} {
		delete(out.TaskDefinition, k)
	}
	b, _ := json.MarshalIndent(out.TaskDefinition, "", "  ")
	return b
}

// productionWeights is the production rule's forward weights by target group ARN.
func (s *stackRun) productionWeights() map[string]int32 {
	out := ecslocaltest.Must(s.e.DescribeRules(s.ctx, &elb.DescribeRulesInput{RuleArns: []string{s.out["ProductionListenerRuleArn"]}})).Get(s.t)
	w := map[string]int32{}
	for _, a := range out.Rules[0].Actions {
		if a.Type == elbtypes.ActionTypeEnumForward && a.ForwardConfig != nil {
			for _, g := range a.ForwardConfig.TargetGroups {
				w[aws.ToString(g.TargetGroupArn)] = aws.ToInt32(g.Weight)
			}
		}
	}
	return w
}

// groups are the stack's target groups by the name the timeline draws.
func (s *stackRun) groups() map[string]string {
	g := map[string]string{"blue": s.out["BlueTargetGroupArn"]}
	if arn := s.out["GreenTargetGroupArn"]; arn != "" {
		g["green"] = arn
	}
	return g
}

// live is the target group production is on.
func (s *stackRun) live() string {
	w := s.productionWeights()
	if w[s.out["GreenTargetGroupArn"]] > w[s.out["BlueTargetGroupArn"]] {
		return s.out["GreenTargetGroupArn"]
	}
	return s.out["BlueTargetGroupArn"]
}

// scenario runs action under the load of HTTP/1.1 and HTTP/2 clients, WebSockets and slow
// requests, records its row and timeline, and checks its exit code and (unless failuresOK)
// that no request failed.
func (s *stackRun) scenario(name, wantExit string, failuresOK bool, action func() string) timeline.Scenario {
	t := s.t
	t.Helper()
	name = s.strategy + ": " + name
	g := load.Start(s.ctx, load.Options{HTTPURL: s.url, H2CURL: s.url, H1Clients: s.sz.clients, H2Conns: 1, H2Streams: 2,
		WSClients: 2, WSInterval: 50 * time.Millisecond, Timeout: 10 * time.Second, Rate: s.sz.rate,
		SlowEvery: 20, SlowDelay: slowDelay, MaxRequests: 5_000_000})
	rec := timeline.Record(s.ctx, name, timeline.Source{ECS: s.c, ELB: s.e, Cluster: s.out["ClusterName"], Service: s.out["ServiceName"],
		Groups:     s.groups(),
		Production: s.out["ProductionListenerRuleArn"], Test: s.out["TestListenerRuleArn"], Load: g})
	pause(s.sz.hold)
	begin := time.Now()
	rec.Mark("action")
	exit := action()
	wall := time.Since(begin)
	rec.Mark("done")
	pause(s.sz.hold)
	res := g.Stop()
	cut := res.Failures[wsCutKey]
	failed := res.Failed() - cut
	tl := rec.Stop(fmt.Sprintf("exit %s (want %s); %d of %d requests failed, %d WebSockets cut (1006); deployment wall time %.1f s",
		exit, wantExit, failed, res.Requests, cut, wall.Seconds()))
	s.scenarios = append(s.scenarios, tl)
	s.rows = append(s.rows, row{scenario: name, exit: exit, wantExit: wantExit, requests: res.Requests, failed: failed, wsCut: cut, wall: wall,
		failures: res.Failures, stages: stageLine(tl, begin)})
	t.Logf("%s: exit %s (want %s) in %s; load %s; failures %v", name, exit, wantExit, wall.Round(time.Millisecond), res, res.Failures)
	switch {
	case exit != wantExit || res.Requests == 0:
		t.Errorf("%s: exit %s, want %s; %d requests", name, exit, wantExit, res.Requests)
	case failed != 0 && !failuresOK:
		t.Errorf("%s: %d of %d requests failed: %v", name, failed, res.Requests, res.Failures)
	case failuresOK && failed == 0:
		t.Errorf("%s: no request failed; the scenario needs failing requests to be counted", name)
	}
	return tl
}

// wsCutKey is the load generator's name for a WebSocket that ended without a close frame.
const wsCutKey = "ws close 1006"

// deploy runs `proxy rollout deploy` of the task definition with envs set, under load.
func (s *stackRun) deploy(name, wantExit string, failuresOK bool, envs ...string) timeline.Scenario {
	return s.deploySaying(name, wantExit, "", failuresOK, envs...)
}

// deploySaying is deploy, and the command's output must match why (a regular expression,
// when not ""): the cause it gives for a rollback.
func (s *stackRun) deploySaying(name, wantExit, why string, failuresOK bool, envs ...string) timeline.Scenario {
	return s.scenario(name, wantExit, failuresOK, func() string {
		args := []string{"rollout", "deploy", "-taskdef", s.tdFile}
		for _, e := range envs {
			args = append(args, "-env", e)
		}
		code, out := s.run(append(args, s.watchArgs()...)...)
		switch {
		case fmt.Sprint(code) != wantExit:
			s.t.Logf("proxy rollout deploy:\n%s", out)
		case why != "" && !regexp.MustCompile(why).MatchString(out):
			s.t.Errorf("%s: proxy rollout deploy does not say %s:\n%s", name, why, out)
		}
		return fmt.Sprint(code)
	})
}

// deployUnmoved deploys a revision that must be rolled back before production moves: no
// sample of the production rule ever gave the group that was not live a weight.
func (s *stackRun) deployUnmoved(name string, envs ...string) {
	live := s.live()
	tl := s.deploy(name, "5", false, envs...)
	idle := map[string]string{s.out["BlueTargetGroupArn"]: "green", s.out["GreenTargetGroupArn"]: "blue"}[live]
	for _, smp := range tl.Samples {
		if smp.Production[idle] != 0 {
			s.t.Errorf("%s: production gave %s weight %d at %s; it must not move", name, idle, smp.Production[idle], smp.At.Format(time.TimeOnly))
			return
		}
	}
}

// serves checks that production answers with the revision whose greeting is want.
func (s *stackRun) serves(want string) {
	s.t.Helper()
	if got := get(s.t, s.url+"/"); !strings.Contains(got, want) {
		s.t.Errorf("production answers %q, want the revision with %s", got, want)
	}
}

// updateStack updates the stack through CloudFormation's UpdateStack, as `cdk deploy` of a
// code change does, while production is on the target group a deployment moved it to: the
// template the stack was created from, with the application's environment (GREETING=greeting)
// in the task definition and a second path in the production rule's condition. The test
// edits the synthesized JSON rather than synthesizing again: the CDK app would change the
// same two resources, and the hook's asset and everything else must stay byte for byte
// what the stack runs. The update must leave the production rule's weights where ECS put
// them (it modifies only the rule's conditions), deploy the new revision blue/green, and
// end UPDATE_COMPLETE.
func (s *stackRun) updateStack(greeting string) {
	s.t.Helper()
	raw, err := os.ReadFile(s.template)
	if err != nil {
		s.t.Fatal(err)
	}
	var tpl map[string]any
	if err := json.Unmarshal(raw, &tpl); err != nil {
		s.t.Fatal(err)
	}
	// The path the production rule adds; "/*" already matches it, so production's routes
	// stay the same.
	const path = "/rehearsal/*"
	changed := map[string]bool{}
	for id, r := range tpl["Resources"].(map[string]any) {
		r := r.(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		switch r["Type"] {
		case "AWS::ECS::TaskDefinition":
			for _, c := range props["ContainerDefinitions"].([]any) {
				if c := c.(map[string]any); c["Name"] == "app" {
					c["Environment"] = []any{map[string]any{"Name": "GREETING", "Value": greeting}}
					changed["task definition"] = true
				}
			}
		case "Custom::AWS":
			if !strings.Contains(id, "ProductionRule") {
				continue
			}
			b, _ := json.Marshal(props)
			const cond = `{\"Field\":\"path-pattern\",\"PathPatternConfig\":{\"Values\":[\"/*\"]}}`
			if !strings.Contains(string(b), cond) {
				s.t.Fatalf("the production rule %s has no path-pattern condition /*: %s", id, b)
			}
			b = []byte(strings.ReplaceAll(string(b), cond, strings.Replace(cond, `[\"/*\"]`, `[\"/*\",\"`+path+`\"]`, 1)))
			props = map[string]any{}
			_ = json.Unmarshal(b, &props)
			r["Properties"] = props
			changed["production rule"] = true
		}
	}
	if len(changed) != 2 {
		s.t.Fatalf("the template has no task definition with an app container or no production rule: %v", changed)
	}
	body, _ := json.Marshal(tpl)
	live := s.live()
	s.scenario("stack update after the blue/green flip (UpdateStack: the app's environment, the production rule's condition)", "UPDATE_COMPLETE", false, func() string {
		if _, err := s.cfn.UpdateStack(s.ctx, &cloudformation.UpdateStackInput{StackName: aws.String("Gangway"), TemplateBody: aws.String(string(body))}); err != nil {
			s.t.Errorf("UpdateStack: %v", err)
			return "error"
		}
		// The weights stay on the live group until the service's deployment moves them.
		if w := s.productionWeights(); w[live] != 100 {
			s.t.Errorf("after UpdateStack, production's weights are %v: the live group %s must keep 100", w, live)
		}
		deadline := time.Now().Add(15 * time.Minute)
		for {
			out := ecslocaltest.Must(s.cfn.DescribeStacks(s.ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("Gangway")})).Get(s.t).Stacks[0]
			if st := string(out.StackStatus); !strings.HasSuffix(st, "_IN_PROGRESS") {
				if st != "UPDATE_COMPLETE" {
					s.t.Logf("stack %s: %s", st, aws.ToString(out.StackStatusReason))
				}
				return st
			}
			if time.Now().After(deadline) {
				return "still " + string(out.StackStatus)
			}
			time.Sleep(time.Second)
		}
	})
	rule := ecslocaltest.Must(s.e.DescribeRules(s.ctx, &elb.DescribeRulesInput{RuleArns: []string{s.out["ProductionListenerRuleArn"]}})).Get(s.t).Rules[0]
	if v := rule.Conditions[0].PathPatternConfig.Values; !slices.Contains(v, path) {
		s.t.Errorf("the production rule's paths are %v, want the update's %s", v, path)
	}
	// The weights point at the group whose targets are the service's tasks.
	s.waitSteady(s.desired(), "")
}

// repave replaces every task (UpdateService forceNewDeployment, as a platform update or a
// new AMI does), watched by proxy rollout watch.
func (s *stackRun) repave() {
	s.scenario("repave: every task replaced (force new deployment)", "0", false, func() string {
		ecslocaltest.Must(s.c.UpdateService(s.ctx, &ecs.UpdateServiceInput{Cluster: aws.String(s.out["ClusterName"]), Service: aws.String(s.out["ServiceName"]),
			ForceNewDeployment: true})).Get(s.t)
		// Wait for the new deployment to be the newest, so that watch follows it.
		deadline := time.Now().Add(30 * time.Second)
		for {
			svc := ecslocaltest.Must(s.c.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Cluster: aws.String(s.out["ClusterName"]), Services: []string{s.out["ServiceName"]}})).Get(s.t).Services[0]
			if len(svc.Deployments) > 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		code, out := s.run(append([]string{"rollout", "watch"}, s.watchArgs()...)...)
		if code != 0 {
			s.t.Logf("proxy rollout watch:\n%s", out)
		}
		return fmt.Sprint(code)
	})
}

// stopEach stops every task in turn (what a Spot interruption or a host retirement does),
// each waited for until its replacement is healthy in the live group.
func (s *stackRun) stopEach() {
	s.scenario("StopTask of each task (Spot-style)", "-", false, func() string {
		cluster, service := s.out["ClusterName"], s.out["ServiceName"]
		tasks := ecslocaltest.Must(s.c.ListTasks(s.ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service)})).Get(s.t).TaskArns
		for _, arn := range tasks {
			ecslocaltest.Must(s.c.StopTask(s.ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arn), Reason: aws.String("rehearsal: Spot interruption")})).Get(s.t)
			s.waitSteady(int32(len(tasks)), arn)
		}
		return "-"
	})
}

// scale scales out and in under load.
func (s *stackRun) scale() {
	n := s.desired()
	s.scenario(fmt.Sprintf("scale %d → %d → 1 → %d", n, s.sz.scaleTo, n), "-", false, func() string {
		for _, k := range []int32{s.sz.scaleTo, 1, n} {
			ecslocaltest.Must(s.c.UpdateService(s.ctx, &ecs.UpdateServiceInput{Cluster: aws.String(s.out["ClusterName"]), Service: aws.String(s.out["ServiceName"]),
				DesiredCount: aws.Int32(k)})).Get(s.t)
			s.waitSteady(k, "")
		}
		return "-"
	})
}

// defaults sets both target groups to the Elastic Load Balancing and CDK defaults the
// timing budget replaces: checks every 30 s, 5 to turn healthy, a 300 s deregistration
// delay.
func (s *stackRun) defaults() {
	for _, k := range []string{"BlueTargetGroupArn", "GreenTargetGroupArn"} {
		ecslocaltest.Must(s.e.ModifyTargetGroup(s.ctx, &elb.ModifyTargetGroupInput{TargetGroupArn: aws.String(s.out[k]),
			HealthCheckIntervalSeconds: aws.Int32(30), HealthyThresholdCount: aws.Int32(5)})).Get(s.t)
		ecslocaltest.Must(s.e.ModifyTargetGroupAttributes(s.ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(s.out[k]),
			Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("300")}}})).Get(s.t)
	}
}

func (s *stackRun) desired() int32 {
	return ecslocaltest.Must(s.c.DescribeServices(s.ctx, &ecs.DescribeServicesInput{Cluster: aws.String(s.out["ClusterName"]), Services: []string{s.out["ServiceName"]}})).Get(s.t).Services[0].DesiredCount
}

// waitSteady waits until the service runs n tasks, none of them gone, each a healthy target
// of the live group and its only targets.
func (s *stackRun) waitSteady(n int32, gone string) {
	s.t.Helper()
	waitSteadyIn(s.t, s.ctx, s.c, s.e, s.out["ClusterName"], s.out["ServiceName"], s.live(), n, gone)
}

// stackAppImage is testdata/stackapp as an image: the application container that stands in
// for the template's nginx.
func stackAppImage(t *testing.T) string {
	bin := ecslocaltest.BuildGo(t, filepath.Join(repoRoot(t), "bench", "rollout", "rehearse", "testdata", "stackapp"))
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return ecslocaltest.ImageLayout(t, map[string][]byte{"stackapp": raw}, v1.Config{Entrypoint: []string{"/stackapp"}})
}

// awsJSON calls an ECS operation in its own protocol (awsJson1_1) and returns the answer as
// sent, in the API's member names.
func awsJSON(t *testing.T, endpoint, op string, in any) []byte {
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s: %s", op, resp.Status, raw)
	}
	return raw
}

// outputs is the stack's Outputs, by key, once it is CREATE_COMPLETE.
func (s *stackRun) outputs(stack string) map[string]string {
	out := ecslocaltest.Must(s.cfn.DescribeStacks(s.ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})).Get(s.t)
	if len(out.Stacks) != 1 || out.Stacks[0].StackStatus != cftypes.StackStatusCreateComplete {
		s.t.Fatalf("stack %s: %+v", stack, out.Stacks)
	}
	m := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		m[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return m
}
