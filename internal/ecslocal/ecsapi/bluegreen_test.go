package ecsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/document"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	gecs "github.com/gangway-ecs/gangway/internal/ecs"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// hookEvent is the event of "Lambda functions for lifecycle hooks" (the ECS developer guide), as a
// hook function decodes it.
type hookEvent struct {
	ExecutionID      string `json:"executionId"`
	LifecycleStage   string `json:"lifecycleStage"`
	ResourceArn      string `json:"resourceArn"`
	ExecutionDetails struct {
		ServiceArn               string             `json:"serviceArn"`
		TargetServiceRevisionArn string             `json:"targetServiceRevisionArn"`
		TestTrafficWeights       map[string]float64 `json:"testTrafficWeights"`
		ProductionTrafficWeights map[string]float64 `json:"productionTrafficWeights"`
	} `json:"executionDetails"`
	HookDetails map[string]any `json:"hookDetails"`
}

// lambdaStandIn stands for the Lambda package's runner (the hook's function under
// aws-lambda-rie): it records every event and answers as respond says.
type lambdaStandIn struct {
	mu      sync.Mutex
	events  []hookEvent
	respond func(ev hookEvent) string
}

func (l *lambdaStandIn) InvokeHook(_ context.Context, arn string, payload []byte) ([]byte, error) {
	var ev hookEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("function %s: event %s: %v", arn, payload, err)
	}
	l.mu.Lock()
	l.events = append(l.events, ev)
	respond := l.respond
	l.mu.Unlock()
	return []byte(respond(ev)), nil
}

// take returns the events since the last take.
func (l *lambdaStandIn) take() []hookEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.events
	l.events = nil
	return ev
}

func (l *lambdaStandIn) answer(f func(ev hookEvent) string) {
	l.mu.Lock()
	l.respond = f
	l.mu.Unlock()
}

// alarmsStandIn stands for the CloudWatch package's alarm evaluation.
type alarmsStandIn struct {
	mu     sync.Mutex
	states map[string]string
}

func (a *alarmsStandIn) AlarmState(name string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.states[name]
	return st, ok
}

func (a *alarmsStandIn) set(name, state string) {
	a.mu.Lock()
	a.states[name] = state
	a.mu.Unlock()
}

// TestBlueGreenDeployment deploys a BLUE_GREEN service behind HAProxy with real containers
// under counted load, with deployment timers at 0.01×: a good revision goes through every
// stage and ends with the production and test rules on the green group; a hook that
// answers FAILED at POST_SCALE_UP, a revision that never turns healthy, and an alarm in
// ALARM during bake time each roll back with the weights on blue; LINEAR and CANARY step
// the production weights. Every phase fails 0 requests.
func TestBlueGreenDeployment(t *testing.T) {
	hooks := &lambdaStandIn{respond: func(hookEvent) string { return `{"hookStatus":"SUCCEEDED"}` }}
	alarms := &alarmsStandIn{states: map[string]string{"api-5xx": "OK"}}
	v := startEnv(t, ecsapi.Options{Hooks: hooks, Alarms: alarms, TimeScale: 0.01})
	ctx, c, e := v.ctx, v.c, v.e

	// Two groups; a production and a test listener forwarding blue 100, green 0.
	blueTG, greenTG := v.targetGroup(t, "web-blue"), v.targetGroup(t, "web-green")
	lbArn := ecslocaltest.Must(e.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	both := []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{TargetGroups: []elbtypes.TargetGroupTuple{
		{TargetGroupArn: aws.String(blueTG), Weight: aws.Int32(100)}, {TargetGroupArn: aws.String(greenTG), Weight: aws.Int32(0)}}}}}
	prodPort, prodListener := v.listener(t, lbArn, both)
	testPort, testListener := v.listener(t, lbArn, both)
	// The production rule is named by the listener's default rule, the test rule by the
	// listener: ECS takes either.
	prodRule := *ecslocaltest.Must(e.DescribeRules(ctx, &elb.DescribeRulesInput{ListenerArn: aws.String(prodListener)})).Get(t).Rules[0].RuleArn
	// weights is the production (or test) rule's weight for the blue and green groups.
	weights := func(test bool) (blue, green int32) {
		in := &elb.DescribeRulesInput{RuleArns: []string{prodRule}}
		if test {
			in = &elb.DescribeRulesInput{ListenerArn: aws.String(testListener)}
		}
		for _, tt := range ecslocaltest.Must(e.DescribeRules(ctx, in)).Get(t).Rules[0].Actions[0].ForwardConfig.TargetGroups {
			switch *tt.TargetGroupArn {
			case blueTG:
				blue = *tt.Weight
			case greenTG:
				green = *tt.Weight
			}
		}
		return blue, green
	}
	revision := func(greeting string, env ...types.KeyValuePair) string { return v.revision(t, greeting, env...) }
	allStages := []types.DeploymentLifecycleHookStage{"RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
		"POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"}
	const hookARN = "arn:aws:lambda:us-east-1:000000000000:function:readiness"
	v1Arn := revision("v1")
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{})).Get(t)
	ecslocaltest.Must(c.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(v1Arn), DesiredCount: aws.Int32(2),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}},
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(blueTG), ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080),
			AdvancedConfiguration: &types.AdvancedConfiguration{AlternateTargetGroupArn: aws.String(greenTG), ProductionListenerRule: aws.String(prodRule),
				TestListenerRule: aws.String(testListener), RoleArn: aws.String("arn:aws:iam::000000000000:role/ecs-elb")}}},
		DeploymentConfiguration: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(5),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
			Alarms:                   &types.DeploymentAlarms{AlarmNames: []string{"api-5xx"}, Enable: true, Rollback: true},
			LifecycleHooks: []types.DeploymentLifecycleHook{{HookTargetArn: aws.String(hookARN), RoleArn: aws.String("arn:aws:iam::000000000000:role/hook"),
				LifecycleStages: allStages, HookDetails: document.NewLazyDocument(map[string]any{"url": "http://app/ready"})}}},
	})).Get(t)

	var stagesMu sync.Mutex
	var stages []string // the lifecycle stages the watcher saw, in order
	watch := func(since time.Time, want string, onProgress func(gecs.Progress)) gecs.Result {
		t.Helper()
		stagesMu.Lock()
		stages = nil
		stagesMu.Unlock()
		wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
		defer wcancel()
		w := &gecs.Watcher{Client: c, Service: "api", Since: since, Interval: 100 * time.Millisecond, MaxInterval: 500 * time.Millisecond, Timeout: 90 * time.Second, TaskDefinition: want,
			OnProgress: func(p gecs.Progress) {
				stagesMu.Lock()
				if p.LifecycleStage != "" && (len(stages) == 0 || stages[len(stages)-1] != p.LifecycleStage) {
					stages = append(stages, p.LifecycleStage)
				}
				stagesMu.Unlock()
				if onProgress != nil {
					onProgress(p)
				}
			}}
		return w.Watch(wctx)
	}
	// events are the service's events since a time, oldest first, for a failure's message.
	events := func(since time.Time) string {
		svc := ecslocaltest.Must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
		var b strings.Builder
		for i := len(svc.Events) - 1; i >= 0; i-- {
			if svc.Events[i].CreatedAt.After(since) {
				fmt.Fprintf(&b, "%s %s\n", svc.Events[i].CreatedAt.Format("15:04:05.000"), *svc.Events[i].Message)
			}
		}
		return b.String() + "the last health checks:\n" + v.checks.String() + v.network()
	}
	if r := watch(time.Time{}, v1Arn, nil); r.Outcome != gecs.Succeeded {
		t.Fatalf("the first deployment: %s: %s", r.Outcome, r.Cause)
	}
	hooks.take()

	url := fmt.Sprintf("http://127.0.0.1:%d/", prodPort)
	testURL := fmt.Sprintf("http://127.0.0.1:%d/", testPort)
	answers := func(url, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(url)
			body := ""
			if err == nil {
				buf := make([]byte, 512)
				n, _ := resp.Body.Read(buf)
				body = string(buf[:n])
				resp.Body.Close()
			}
			if strings.Contains(body, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not answer %q after 10 s: %q %v", url, want, body, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	answers(url, "greeting=v1")

	// A good revision: every stage in order, hooks at theirs (one answer IN_PROGRESS first,
	// whose hookDetails come back merged), the rules end on green, blue drains.
	hooks.answer(func(ev hookEvent) string {
		if ev.LifecycleStage == "POST_SCALE_UP" && ev.HookDetails["attempt"] == nil {
			return `{"hookStatus":"IN_PROGRESS","callBackDelay":1,"hookDetails":{"attempt":1}}`
		}
		return `{"hookStatus":"SUCCEEDED"}`
	})
	l := startLoad(url)
	since := time.Now()
	v2Arn := revision("v2")
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(v2Arn)})).Get(t)
	r := watch(since, v2Arn, nil)
	time.Sleep(300 * time.Millisecond) // requests after the last blue task left
	l.end()
	if r.Outcome != gecs.Succeeded || l.failed.Load() != 0 || l.bodies["uid=0 greeting=v2\n"] == 0 {
		t.Fatalf("good revision: %s (%s); %d of %d requests failed (first: %s); answers %v; events:\n%s", r.Outcome, r.Cause, l.failed.Load(), l.total.Load(), l.firstFailure, l.bodies, events(since))
	}
	t.Logf("good revision: %d requests, 0 failed, answers %v, stages %v", l.total.Load(), l.bodies, stages)
	if bw, gw := weights(false); bw != 0 || gw != 100 {
		t.Errorf("after the good revision the production rule forwards blue %d, green %d; want 0, 100", bw, gw)
	}
	if bw, gw := weights(true); bw != 0 || gw != 100 {
		t.Errorf("after the good revision the test rule forwards blue %d, green %d; want 0, 100", bw, gw)
	}
	answers(testURL, "greeting=v2")
	wantStages := []string{"PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
		"PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"}
	if !isSubsequence(stages, wantStages) || !slices.Contains(stages, "BAKE_TIME") || stages[len(stages)-1] != "CLEAN_UP" {
		t.Errorf("the watcher saw stages %v; want them in the order %v, BAKE_TIME and CLEAN_UP among them", stages, wantStages)
	}
	var hookStages []string
	for _, ev := range hooks.take() {
		hookStages = append(hookStages, ev.LifecycleStage)
		if ev.ResourceArn != r.Last.DeploymentARN || ev.ExecutionDetails.TargetServiceRevisionArn == "" || ev.HookDetails["url"] != "http://app/ready" {
			t.Errorf("%s event: resourceArn %q (want %q), target revision %q, hookDetails %v", ev.LifecycleStage, ev.ResourceArn, r.Last.DeploymentARN, ev.ExecutionDetails.TargetServiceRevisionArn, ev.HookDetails)
		}
		green := ev.ExecutionDetails.TargetServiceRevisionArn
		switch ev.LifecycleStage {
		case "TEST_TRAFFIC_SHIFT":
			if ev.ExecutionDetails.TestTrafficWeights[green] != 100 || len(ev.ExecutionDetails.ProductionTrafficWeights) != 0 {
				t.Errorf("TEST_TRAFFIC_SHIFT weights: test %v, production %v", ev.ExecutionDetails.TestTrafficWeights, ev.ExecutionDetails.ProductionTrafficWeights)
			}
		case "PRODUCTION_TRAFFIC_SHIFT":
			if ev.ExecutionDetails.ProductionTrafficWeights[green] != 100 || len(ev.ExecutionDetails.ProductionTrafficWeights) != 2 {
				t.Errorf("PRODUCTION_TRAFFIC_SHIFT weights: %v", ev.ExecutionDetails.ProductionTrafficWeights)
			}
		}
	}
	wantHooks := []string{"PRE_SCALE_UP", "POST_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
		"PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"}
	if !slices.Equal(hookStages, wantHooks) {
		t.Errorf("hooks invoked at %v, want %v (POST_SCALE_UP twice: IN_PROGRESS, then SUCCEEDED)", hookStages, wantHooks)
	}

	// rolledBack deploys a revision, expects a rollback with 0 failed requests, the rules
	// back on the group of v2, and only v2 answering unless greenServes.
	rolledBack := func(what, td string, greenServes bool, prepare func(), onProgress func(gecs.Progress)) gecs.Result {
		t.Helper()
		if prepare != nil {
			prepare()
		}
		l := startLoad(url)
		since := time.Now()
		ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(td), ForceNewDeployment: true})).Get(t)
		r := watch(since, td, onProgress)
		l.end()
		if r.Outcome != gecs.RolledBack || l.failed.Load() != 0 || (len(l.bodies) != 1 && !greenServes) || l.bodies["uid=0 greeting=v2\n"] == 0 {
			t.Fatalf("%s: %s (%s), want rolled_back; %d of %d requests failed (first: %s); answers %v; events:\n%s", what, r.Outcome, r.Cause, l.failed.Load(), l.total.Load(), l.firstFailure, l.bodies, events(since))
		}
		if bw, gw := weights(false); bw != 0 || gw != 100 {
			t.Errorf("%s: after the rollback the production rule forwards blue-group %d, green-group %d; want 0, 100 (v2's group)", what, bw, gw)
		}
		if bw, gw := weights(true); bw != 0 || gw != 100 {
			t.Errorf("%s: after the rollback the test rule forwards blue-group %d, green-group %d; want 0, 100 (v2's group)", what, bw, gw)
		}
		t.Logf("%s: rolled back (%s), %d requests, 0 failed, stages %v", what, r.Cause, l.total.Load(), stages)
		return r
	}

	// A hook that answers FAILED at POST_SCALE_UP: rolled back before any traffic moves.
	v3Arn := revision("v3")
	rolledBack("hook FAILED at POST_SCALE_UP", v3Arn, false, func() {
		hooks.answer(func(ev hookEvent) string {
			if ev.LifecycleStage == "POST_SCALE_UP" {
				return `{"hookStatus":"FAILED"}`
			}
			return `{"hookStatus":"SUCCEEDED"}`
		})
	}, nil)
	for _, ev := range hooks.take() {
		if ev.LifecycleStage == "TEST_TRAFFIC_SHIFT" || ev.LifecycleStage == "PRODUCTION_TRAFFIC_SHIFT" {
			t.Errorf("hook FAILED at POST_SCALE_UP: the deployment went on to %s", ev.LifecycleStage)
		}
	}
	hooks.answer(func(hookEvent) string { return `{"hookStatus":"SUCCEEDED"}` })

	// A revision whose app never passes the group's check: the circuit breaker rolls back.
	rolledBack("never-healthy revision", revision("sick", types.KeyValuePair{Name: aws.String("SICK"), Value: aws.String("1")}), false, nil, nil)

	// An alarm that goes into ALARM during bake time (production already on green) rolls
	// back: the weights return to blue.
	var shifted bool
	r = rolledBack("alarm during BAKE_TIME", revision("v4"), true, nil, func(p gecs.Progress) {
		if p.LifecycleStage == "BAKE_TIME" && p.Status == "IN_PROGRESS" {
			shifted = true
			alarms.set("api-5xx", "ALARM")
		}
	})
	alarms.set("api-5xx", "OK")
	if !shifted || r.Last.Alarms == nil || !slices.Contains(r.Last.Alarms.Triggered, "api-5xx") {
		t.Errorf("alarm during BAKE_TIME: bake time seen %v, alarms %+v", shifted, r.Last.Alarms)
	}
	// The rollback invokes the traffic shift hooks again with the weights back on blue.
	last := map[string]hookEvent{}
	for _, ev := range hooks.take() {
		last[ev.LifecycleStage] = ev
	}
	for stage, ev := range map[string]map[string]float64{"TEST_TRAFFIC_SHIFT": last["TEST_TRAFFIC_SHIFT"].ExecutionDetails.TestTrafficWeights,
		"PRODUCTION_TRAFFIC_SHIFT": last["PRODUCTION_TRAFFIC_SHIFT"].ExecutionDetails.ProductionTrafficWeights} {
		green := last[stage].ExecutionDetails.TargetServiceRevisionArn
		if w, ok := ev[green]; !ok || w != 0 || len(ev) != 2 {
			t.Errorf("alarm during BAKE_TIME: the last %s event's weights %v, want green (%s) 0 and blue 100", stage, ev, green)
		}
	}

	// LINEAR and CANARY step the production weights; sampled over time and seen by the
	// PRODUCTION_TRAFFIC_SHIFT hook at each step.
	stepped := func(what string, dc *types.DeploymentConfiguration, want []float64) {
		t.Helper()
		hooks.take()
		var seen []int32
		sampled := make(chan struct{})
		stop := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				out, err := v.elb.DescribeRules(ctx, &elb.DescribeRulesInput{RuleArns: []string{prodRule}})
				if err == nil {
					for _, tt := range out.Rules[0].Actions[0].ForwardConfig.TargetGroups {
						if *tt.TargetGroupArn == greenTG && (len(seen) == 0 || seen[len(seen)-1] != *tt.Weight) {
							seen = append(seen, *tt.Weight)
						}
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		l := startLoad(url)
		since := time.Now()
		td := *ecslocaltest.Must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0].TaskDefinition
		ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), ForceNewDeployment: true, DeploymentConfiguration: dc})).Get(t)
		r := watch(since, td, nil)
		close(stop)
		<-sampled
		l.end()
		if r.Outcome != gecs.Succeeded || l.failed.Load() != 0 {
			t.Fatalf("%s: %s (%s); %d of %d requests failed (first: %s); events:\n%s", what, r.Outcome, r.Cause, l.failed.Load(), l.total.Load(), l.firstFailure, events(since))
		}
		var got []float64
		for _, ev := range hooks.take() {
			if ev.LifecycleStage == "PRODUCTION_TRAFFIC_SHIFT" {
				got = append(got, ev.ExecutionDetails.ProductionTrafficWeights[ev.ExecutionDetails.TargetServiceRevisionArn])
			}
		}
		wantSeen := []int32{0}
		for _, p := range want {
			wantSeen = append(wantSeen, int32(p))
		}
		if !slices.Equal(got, want) || !slices.Equal(seen, wantSeen) {
			t.Errorf("%s: the PRODUCTION_TRAFFIC_SHIFT hook saw green at %v (want %v); the rule's green weight over time %v (want %v)", what, got, want, seen, wantSeen)
		}
		t.Logf("%s: %d requests, 0 failed, green weights over time %v", what, l.total.Load(), seen)
		blueTG, greenTG = greenTG, blueTG // the next deployment goes the other way
	}
	// v2 runs in the group that was green; the next deployment goes to the other one.
	blueTG, greenTG = greenTG, blueTG
	stepped("LINEAR", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear, BakeTimeInMinutes: aws.Int32(0),
		LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(40), StepBakeTimeInMinutes: aws.Int32(1)}}, []float64{40, 80, 100})
	stepped("CANARY", &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary,
		CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(25), CanaryBakeTimeInMinutes: aws.Int32(1)}}, []float64{25, 100})
}

// isSubsequence reports whether every element of got appears in want, in want's order.
func isSubsequence(got, want []string) bool {
	i := 0
	for _, g := range got {
		for i < len(want) && want[i] != g {
			i++
		}
		if i == len(want) {
			return false
		}
	}
	return true
}
