// Package rehearse runs Gangway's task definition, the proxy image of `make image` with a test
// application beside it, on bin/ecslocal behind its HAProxy load balancer, and drives it as
// an operator does: `proxy rollout deploy` and `proxy rollout watch` through AWS_ENDPOINT_URL,
// StopTask, scaling. The load generator of bench/rollout counts every request through the
// load balancer; every scenario must fail none.
//
// The short run is part of `make test` (make test-ecslocal); GANGWAY_REHEARSE=full is
// `make rehearse`: more tasks and longer load, and a table for docs/benchmarks.md.
package rehearse_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/load"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/timeline"
	gecs "github.com/gangway-ecs/gangway/internal/ecs"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// size is what differs between the short run and the full one.
type size struct {
	tasks   int32 // the service's desired count
	scaleTo int32 // scale out to this, then in to 1, then back
	clients int
	rate    float64
	hold    time.Duration // load before and after each scenario's action
}

var (
	short = size{tasks: 2, scaleTo: 3, clients: 4, rate: 80, hold: 500 * time.Millisecond}
	full  = size{tasks: 4, scaleTo: 6, clients: 8, rate: 200, hold: 5 * time.Second}
)

// The timing budget, shrunk so that a scenario takes seconds and still holds
// internal/budget's rules in ecslocal's time: the target group checks every 5 s × 0.2 = 1 s
// with a timeout of 0.4 s and an unhealthy threshold of 2, so the load balancer has seen a
// failing readiness probe 2.4 s after SIGTERM, within the proxy's 6 s shutdown delay (3.6 s
// to spare for a loaded machine); 6 s delay + 3 s drain + 3 s margin = 12 s = the stop
// timeout; the deregistration delay (2 s) and the drain timeout outlast the longest request
// (300 ms).
const (
	healthScale  = "0.2"
	shutdownEnv  = "6s"
	drainEnv     = "3s"
	deadlineEnv  = "12s"
	stopTimeout  = 12
	deregDelay   = "2"
	deregistered = 2 * time.Second
	slowDelay    = 300 * time.Millisecond
)

// row is one line of the table.
type row struct {
	scenario         string
	exit, wantExit   string
	requests, failed int64
	// wsCut is the WebSocket connections that ended without a close frame (1006), counted
	// apart from failed: on a blue/green or rolling deployment a WebSocket on a deregistered
	// task lives until the deregistration delay ends and the load balancer cuts it, as an
	// ALB does, before the task (and its proxy, which could close it cleanly) gets SIGTERM.
	wsCut    int64
	wall     time.Duration
	failures map[string]int64
	stages   string
}

func TestProxyOnECSLocal(t *testing.T) {
	if os.Getenv("GANGWAY_ECSLOCAL_BIN") == "" {
		// Like h2spec's suite: `go test ./...` leaves it to its make target, which builds the
		// binaries and the image first and runs it once, alone.
		t.Skip("GANGWAY_ECSLOCAL_BIN is not set: the rehearsal runs in make test-ecslocal (part of make test) and make rehearse, with the binaries and image make builds")
	}
	ecslocaltest.RequireRoot(t, "runc", "ip", "haproxy")
	sz := short
	if os.Getenv("GANGWAY_REHEARSE") == "full" {
		sz = full
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	ecslocalBin := binary(t, "GANGWAY_ECSLOCAL_BIN", "ecslocal")
	proxyBin := binary(t, "GANGWAY_PROXY_BIN", "proxy")
	proxyLayout := proxyImage(t)
	appLayout := appImage(t)

	td := taskDefinition(t)
	tdFile := filepath.Join(t.TempDir(), "taskdef.json")
	raw, _ := json.MarshalIndent(td, "", "  ")
	if err := os.WriteFile(tdFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	images := td.containerImages()

	endpoint := startECSLocal(t, ecslocalBin, "-health-scale", healthScale, "-image", images["proxy"]+"="+proxyLayout, "-image", images["app"]+"="+appLayout)
	awsEnv := []string{"AWS_ENDPOINT_URL=" + endpoint, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 3,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})}
	c, e := ecs.NewFromConfig(cfg), elb.NewFromConfig(cfg)

	// The target group of taskdefs/settings/target-group.json with a short deregistration
	// delay, and a listener on a free port.
	tg := *ecslocaltest.Must(e.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("gangway-app"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(8080), VpcId: aws.String("vpc-1"), TargetType: elbtypes.TargetTypeEnumIp, HealthCheckPath: aws.String("/gangway/ready"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
		Matcher: &elbtypes.Matcher{HttpCode: aws.String("200")},
	})).Get(t).TargetGroups[0].TargetGroupArn
	ecslocaltest.Must(e.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(deregDelay)}}})).Get(t)
	port := ecslocaltest.FreePort(t)
	lbArn := ecslocaltest.Must(e.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	listener := *ecslocaltest.Must(e.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Port: aws.Int32(port), Protocol: elbtypes.ProtocolEnumHttp,
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}})).Get(t).Listeners[0].ListenerArn

	first, err := gecs.ReadTaskDefinition(tdFile)
	if err != nil {
		t.Fatal(err)
	}
	v1Arn := *ecslocaltest.Must(c.RegisterTaskDefinition(ctx, first)).Get(t).TaskDefinition.TaskDefinitionArn
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")})).Get(t)
	ecslocaltest.Must(c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("app"), TaskDefinition: aws.String(v1Arn),
		DesiredCount: aws.Int32(sz.tasks), HealthCheckGracePeriodSeconds: aws.Int32(20),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}},
		LoadBalancers:        []types.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("proxy"), ContainerPort: aws.Int32(8080)}},
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})).Get(t)

	proxy := func(args ...string) (int, string) { return runProxy(ctx, t, proxyBin, awsEnv, args...) }
	watchArgs := []string{"-cluster", "prod", "-service", "app", "-interval", "500ms", "-timeout", "5m"}
	// The target group as lint reads it. Lint finds one problem, rightly for an ALB: the
	// shutdown delay is shorter than the 5 s × 2 + 2 s the target group takes to see a
	// failing target. ecslocal runs the checks at 0.2× (-health-scale), where the shortened
	// delay holds; so the deploys pass -force, and this lint run makes sure that the finding
	// is the only one.
	tgFile := filepath.Join(t.TempDir(), "target-group.json")
	tgJSON := `{"TargetGroups": [{"TargetGroupName": "gangway-app", "Protocol": "HTTP", "Port": 8080, "TargetType": "ip",
  "HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port", "HealthCheckPath": "/gangway/ready", "HealthCheckIntervalSeconds": 5,
  "HealthCheckTimeoutSeconds": 2, "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2, "Matcher": {"HttpCode": "200"}}],
  "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "` + deregDelay + `"}]}`
	if err := os.WriteFile(tgFile, []byte(tgJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	lintArgs := []string{"-target-group", tgFile, "-longest-request", slowDelay.String()}
	code, out := proxy(append(append([]string{"lint"}, lintArgs...), tdFile)...)
	if n := strings.Count(out, "; fix: "); code != 1 || n != 1 || !strings.Contains(out, "environment.GANGWAY_SHUTDOWN_DELAY = "+shutdownEnv) {
		t.Errorf("proxy lint exits %d with %d findings, want 1 with the shortened shutdown delay's only:\n%s", code, n, out)
	}
	deploy := func(env ...string) (int, string) {
		args := append([]string{"rollout", "deploy", "-taskdef", tdFile, "-force"}, lintArgs...)
		for _, e := range env {
			args = append(args, "-env", e)
		}
		return proxy(append(args, watchArgs...)...)
	}
	if code, out := proxy(append([]string{"rollout", "watch"}, watchArgs...)...); code != 0 {
		t.Fatalf("the first deployment: proxy rollout watch exits %d:\n%s", code, out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitServing(t, url)

	var (
		rows      []row
		scenarios []timeline.Scenario
	)
	defer func() { report(t, rows, scenarios) }()
	// scenario runs action under load and records its row and its timeline; the load runs
	// sz.hold before and after the action.
	scenario := func(name, wantExit string, action func() string) {
		t.Helper()
		g := load.Start(ctx, load.Options{HTTPURL: url, H1Clients: sz.clients, Timeout: 10 * time.Second, Rate: sz.rate,
			SlowEvery: 20, SlowDelay: slowDelay, MaxRequests: 2_000_000})
		rec := timeline.Record(ctx, name, timeline.Source{ECS: c, ELB: e, Cluster: "prod", Service: "app",
			Groups: map[string]string{"gangway-app": tg}, Production: listener, Load: g})
		pause(sz.hold)
		begin := time.Now()
		rec.Mark("action")
		exit := action()
		wall := time.Since(begin)
		rec.Mark("done")
		pause(sz.hold)
		res := g.Stop()
		tl := rec.Stop(fmt.Sprintf("exit %s (want %s); %d of %d requests failed; deployment wall time %.1f s", exit, wantExit, res.Failed(), res.Requests, wall.Seconds()))
		scenarios = append(scenarios, tl)
		rows = append(rows, row{scenario: name, exit: exit, wantExit: wantExit, requests: res.Requests, failed: res.Failed(), wall: wall,
			failures: res.Failures, stages: stageLine(tl, begin)})
		t.Logf("%s: exit %s (want %s) in %s; load %s; failures %v", name, exit, wantExit, wall.Round(time.Millisecond), res, res.Failures)
		if res.Failed() != 0 || exit != wantExit || res.Requests == 0 {
			t.Errorf("%s: exit %s, want %s; %d of %d requests failed: %v", name, exit, wantExit, res.Failed(), res.Requests, res.Failures)
		}
	}

	// A good revision: every old task is deregistered, drains, and only then gets SIGTERM.
	old := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("app")})).Get(t).TaskArns
	scenario("rolling deploy, good revision", "0", func() string {
		mon := monitorDrain(ctx, c, e, tg, old)
		code, out := deploy("app:GREETING=v2")
		mon.stop()
		if code != 0 {
			t.Logf("proxy rollout deploy:\n%s", out)
		}
		mon.check(t)
		return fmt.Sprint(code)
	})
	if got := get(t, url+"/"); !strings.Contains(got, "greeting=v2") {
		t.Errorf("after the deploy the service answers %q, want greeting=v2", got)
	}

	// A revision whose app never turns healthy: the proxy, which waits for it (dependsOn
	// HEALTHY), never starts; the circuit breaker rolls back.
	scenario("rolling deploy, app never healthy", "5", func() string {
		code, out := deploy("app:GREETING=v3", "app:SICK=1")
		if code != 5 {
			t.Logf("proxy rollout deploy:\n%s", out)
		}
		wcode, wout := proxy(append([]string{"rollout", "watch"}, watchArgs...)...)
		if wcode != 5 {
			t.Errorf("proxy rollout watch after the rollback exits %d, want 5:\n%s", wcode, wout)
		}
		return fmt.Sprint(code)
	})
	if got := get(t, url+"/"); !strings.Contains(got, "greeting=v2") {
		t.Errorf("after the rollback the service answers %q, want greeting=v2", got)
	}

	// StopTask of every task in turn: SIGTERM with no deregistration first. The proxy fails
	// its readiness, keeps serving until the load balancer has seen it, then drains.
	scenario("StopTask of every task in turn", "-", func() string {
		tasks := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("app")})).Get(t).TaskArns
		for _, arn := range tasks {
			ecslocaltest.Must(c.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("prod"), Task: aws.String(arn), Reason: aws.String("rehearsal")})).Get(t)
			waitSteady(t, ctx, c, e, tg, sz.tasks, arn)
		}
		return "-"
	})

	scenario(fmt.Sprintf("scale %d → %d → 1 → %d", sz.tasks, sz.scaleTo, sz.tasks), "-", func() string {
		for _, n := range []int32{sz.scaleTo, 1, sz.tasks} {
			ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("app"), DesiredCount: aws.Int32(n)})).Get(t)
			waitSteady(t, ctx, c, e, tg, n, "")
		}
		return "-"
	})
}

// binary returns the path in env, or builds the command.
func binary(t *testing.T, env, cmd string) string {
	if p := os.Getenv(env); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	return ecslocaltest.BuildGo(t, filepath.Join(repoRoot(t), "cmd", cmd))
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// proxyImage is the OCI layout of `make image` (GANGWAY_PROXY_LAYOUT, as make sets it), or
// one built here the same way.
func proxyImage(t *testing.T) string {
	if p := os.Getenv("GANGWAY_PROXY_LAYOUT"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./cmd/gangway-image", "build", "-out", out, "-version", "rehearse", "-revision", "rehearse", "-created", "0")
	cmd.Dir = repoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the proxy image: %v\n%s", err, b)
	}
	return filepath.Join(out, "oci")
}

// appImage is the test application of ecslocal's own tests, as an image.
func appImage(t *testing.T) string {
	bin := ecslocaltest.BuildGo(t, filepath.Join(repoRoot(t), "internal", "ecslocal", "tasks", "testdata", "app"))
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return ecslocaltest.ImageLayout(t, map[string][]byte{"app": raw}, v1.Config{Entrypoint: []string{"/app"}})
}

// taskDef is a task definition file as JSON.
type taskDef map[string]any

func (td taskDef) containers() []map[string]any {
	var out []map[string]any
	for _, c := range td["containerDefinitions"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

func (td taskDef) containerImages() map[string]string {
	m := map[string]string{}
	for _, c := range td.containers() {
		m[c["name"].(string)] = c["image"].(string)
	}
	return m
}

// taskDefinition is taskdefs/fargate-proxy-app.json as it runs here: this machine's CPU
// architecture, the shortened budget in the proxy's environment and stop timeouts, and the
// test application in place of nginx (listening on port 80, checked with its own -check,
// since the image has no shell; a start timeout short enough for a failing app to fail the
// task in seconds). The proxy container is as shipped: the image, `run`, the container
// check `/healthcheck -probe container`, read-only root, user 65532, dependsOn app HEALTHY.
func taskDefinition(t *testing.T) taskDef {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "taskdefs", "fargate-proxy-app.json"))
	if err != nil {
		t.Fatal(err)
	}
	var td taskDef
	if err := json.Unmarshal(raw, &td); err != nil {
		t.Fatal(err)
	}
	arch := map[string]string{"amd64": "X86_64", "arm64": "ARM64"}[runtime.GOARCH]
	td["runtimePlatform"].(map[string]any)["cpuArchitecture"] = arch
	for _, c := range td.containers() {
		c["stopTimeout"] = stopTimeout
		switch c["name"] {
		case "proxy":
			for _, kv := range c["environment"].([]any) {
				kv := kv.(map[string]any)
				switch kv["name"] {
				case "GANGWAY_SHUTDOWN_DELAY":
					kv["value"] = shutdownEnv
				case "GANGWAY_SHUTDOWN_DRAIN_TIMEOUT":
					kv["value"] = drainEnv
				case "GANGWAY_SHUTDOWN_DEADLINE":
					kv["value"] = deadlineEnv
				}
			}
		case "app":
			c["environment"] = []any{map[string]any{"name": "PORT", "value": "80"}, map[string]any{"name": "GREETING", "value": "v1"}}
			hc := c["healthCheck"].(map[string]any)
			hc["command"] = []any{"CMD", "/app", "-check"}
			c["startTimeout"] = 8
		}
	}
	return td
}

// startECSLocal runs bin/ecslocal on a free port of 127.0.0.1 with its own name and subnet,
// and stops it (SIGTERM: it stops the tasks and removes what it made) when the test ends.
func startECSLocal(t *testing.T, bin string, args ...string) string {
	var b [1]byte
	_, _ = rand.Read(b[:])
	addr := fmt.Sprintf("127.0.0.1:%d", ecslocaltest.FreePort(t))
	args = append([]string{"-addr", addr, "-name", fmt.Sprintf("rh%02x", b[0]), "-subnet", fmt.Sprintf("198.19.%d.0/24", 100+b[0]%50),
		"-state-dir", t.TempDir()}, args...)
	ecslocaltest.Background(t, "ecslocal", exec.Command(bin, args...), "serving", 60*time.Second)
	return "http://" + addr
}

func pause(d time.Duration) { time.Sleep(d) }

// get asks on a new connection: ecslocal's HAProxy, replaced on every change, keeps an
// idle connection to answer its next request by the configuration it had (docs/ecslocal.md).
func get(t *testing.T, url string) string {
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitServing waits until the load balancer answers the application through the proxy.
func waitServing(t *testing.T, url string) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url + "/echo?id=ready")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(b) == "ready" {
				return
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load balancer does not serve the application after 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSteady waits until the service has n running tasks, none of them gone, each a healthy
// target and the only targets, and no task being stopped.
func waitSteady(t *testing.T, ctx context.Context, c *ecs.Client, e *elb.Client, tg string, n int32, gone string) {
	t.Helper()
	waitSteadyIn(t, ctx, c, e, "prod", "app", tg, n, gone)
}

// waitSteadyIn is waitSteady for the service in cluster, within 5 minutes.
func waitSteadyIn(t *testing.T, ctx context.Context, c *ecs.Client, e *elb.Client, cluster, service, tg string, n int32, gone string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		svc := ecslocaltest.Must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})).Get(t).Services[0]
		tasks := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service)})).Get(t).TaskArns
		health := ecslocaltest.Must(e.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})).Get(t).TargetHealthDescriptions
		healthy := 0
		for _, h := range health {
			if h.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				healthy++
			}
		}
		if svc.RunningCount == n && len(tasks) == int(n) && !slices.Contains(tasks, gone) && healthy == int(n) && len(health) == int(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %d tasks running and healthy after 5 minutes: running %d, tasks %d, targets %d healthy of %d", n, svc.RunningCount, len(tasks), healthy, len(health))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runProxy runs bin/proxy with the AWS environment env and returns its exit code and output.
func runProxy(ctx context.Context, t *testing.T, bin string, env []string, args ...string) (int, string) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("proxy %s: %v", strings.Join(args, " "), err)
	return 0, ""
}

// drainMonitor watches the tasks a deployment replaces, through ecslocal's APIs: each
// task's status (STOPPING is recorded as the stop sequence, SIGTERM first, begins) and its
// target's state in the target group.
type drainMonitor struct {
	done     chan struct{}
	finished chan struct{}
	mu       sync.Mutex
	addr     map[string]string // task → its target's address
	draining map[string]bool   // the task's target was seen draining
	early    map[string]string // the task was stopping while its target was still listed
	errs     []string
	c        *ecs.Client
	old      []string
}

func monitorDrain(ctx context.Context, c *ecs.Client, e *elb.Client, tg string, old []string) *drainMonitor {
	m := &drainMonitor{done: make(chan struct{}), finished: make(chan struct{}), addr: map[string]string{}, draining: map[string]bool{},
		early: map[string]string{}, c: c, old: old}
	d, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: old})
	if err != nil {
		m.errs = append(m.errs, err.Error())
		close(m.finished)
		return m
	}
	for _, task := range d.Tasks {
		m.addr[*task.TaskArn] = address(task)
	}
	go func() {
		defer close(m.finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Tasks first, then targets: a target listed after the task was seen stopping was
			// listed while it stopped (a target that has left never comes back).
			d, err1 := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: old})
			h, err2 := e.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
			if err := errors.Join(err1, err2); err != nil {
				m.mu.Lock()
				m.errs = append(m.errs, err.Error())
				m.mu.Unlock()
				continue
			}
			listed := map[string]elbtypes.TargetHealthStateEnum{}
			for _, th := range h.TargetHealthDescriptions {
				listed[aws.ToString(th.Target.Id)] = th.TargetHealth.State
			}
			m.mu.Lock()
			for _, task := range d.Tasks {
				state, ok := listed[m.addr[*task.TaskArn]]
				if state == elbtypes.TargetHealthStateEnumDraining {
					m.draining[*task.TaskArn] = true
				}
				switch aws.ToString(task.LastStatus) {
				case "STOPPING", "DEPROVISIONING", "STOPPED":
					if ok && m.early[*task.TaskArn] == "" {
						m.early[*task.TaskArn] = fmt.Sprintf("%s while its target %s was %s", aws.ToString(task.LastStatus), m.addr[*task.TaskArn], state)
					}
				}
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func address(task types.Task) string {
	for _, a := range task.Attachments {
		for _, kv := range a.Details {
			if aws.ToString(kv.Name) == "privateIPv4Address" {
				return aws.ToString(kv.Value)
			}
		}
	}
	return ""
}

func (m *drainMonitor) stop() { close(m.done); <-m.finished }

// check asserts that every old task was deregistered and drained before it was stopped:
// its target was seen draining, never listed once the task was stopping, and ecslocal's
// timestamps put at least the deregistration delay between the stop request and the end of
// its containers.
func (m *drainMonitor) check(t *testing.T) {
	t.Helper()
	for _, err := range m.errs {
		t.Errorf("watching the old tasks: %s", err)
	}
	d := ecslocaltest.Must(m.c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: m.old})).Get(t)
	for _, task := range d.Tasks {
		arn := *task.TaskArn
		switch {
		case aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeServiceSchedulerInitiated:
			t.Errorf("old task %s: %s, stop code %q, want STOPPED by the scheduler", arn, aws.ToString(task.LastStatus), task.StopCode)
		case !m.draining[arn]:
			t.Errorf("old task %s: its target %s was never seen draining", arn, m.addr[arn])
		case m.early[arn] != "":
			t.Errorf("old task %s got SIGTERM before its target finished draining: %s", arn, m.early[arn])
		case task.ExecutionStoppedAt.Sub(*task.StoppingAt) < deregistered:
			t.Errorf("old task %s: its containers ended %s after the stop request, within the deregistration delay", arn, task.ExecutionStoppedAt.Sub(*task.StoppingAt))
		}
	}
}

// stageLine is the scenario's stages as seconds from the action: "action 0.0 s → IN_PROGRESS
// 0.4 s → SUCCESSFUL 31.2 s → done 31.3 s".
func stageLine(s timeline.Scenario, begin time.Time) string {
	var parts []string
	for _, m := range s.Stages {
		if d := m.At.Sub(begin); d >= 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f s", m.Name, d.Seconds()))
		}
	}
	return strings.Join(parts, " → ")
}

// report logs the table of one test's scenarios and adds them to what TestMain writes.
func report(t *testing.T, rows []row, scenarios []timeline.Scenario) {
	t.Logf("\n%s", table(rows))
	collected.rows = append(collected.rows, rows...)
	collected.scenarios = append(collected.scenarios, scenarios...)
}

// collected is every test's rows and timelines, in the order run (tests run one at a time).
var collected struct {
	rows      []row
	scenarios []timeline.Scenario
}

func table(rows []row) string {
	var b strings.Builder
	b.WriteString("| scenario | exit code | expected | requests | failed | WebSockets cut (1006) | deployment wall time | stages (s from the action) |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %.1f s | %s |\n", r.scenario, r.exit, r.wantExit, r.requests, r.failed, r.wsCut, r.wall.Seconds(), r.stages)
	}
	return b.String()
}

// TestMain writes the table of every scenario run to GANGWAY_REHEARSE_TABLE and their
// timelines to the HTML page GANGWAY_REHEARSE_REPORT, when set.
func TestMain(m *testing.M) {
	code := m.Run()
	if len(collected.rows) > 0 {
		if err := writeReport(); err != nil {
			fmt.Fprintln(os.Stderr, "rehearse:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func writeReport() error {
	if p := os.Getenv("GANGWAY_REHEARSE_TABLE"); p != "" {
		if err := os.WriteFile(p, []byte(table(collected.rows)), 0o644); err != nil {
			return err
		}
	}
	if p := os.Getenv("GANGWAY_REHEARSE_REPORT"); p != "" {
		var page bytes.Buffer
		if err := timeline.Render(&page, "Gangway on ecslocal: the rehearsal", collected.scenarios); err != nil {
			return err
		}
		if err := os.WriteFile(p, page.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Println("timelines:", p)
	}
	return nil
}
