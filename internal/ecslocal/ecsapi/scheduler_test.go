package ecsapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	gecs "github.com/gangway-ecs/gangway/internal/ecs"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// load sends requests one after the other through the load balancer until stopped, and
// counts them, the failed ones, and the answers.
type load struct {
	url            string
	total, failed  atomic.Int64
	mu             sync.Mutex
	bodies         map[string]int
	firstFailure   string
	stop, finished chan struct{}
}

func startLoad(url string) *load {
	l := &load{url: url, bodies: map[string]int{}, stop: make(chan struct{}), finished: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(l.finished)
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			resp, err := client.Get(l.url)
			l.total.Add(1)
			if err != nil {
				l.fail(err.Error())
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				l.fail(fmt.Sprintf("%d %s", resp.StatusCode, b))
				continue
			}
			l.mu.Lock()
			l.bodies[string(b)]++
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *load) fail(why string) {
	if l.failed.Add(1) == 1 {
		l.mu.Lock()
		l.firstFailure = why
		l.mu.Unlock()
	}
}

func (l *load) end() { close(l.stop); <-l.finished }

// TestRollingDeployment deploys a service behind the load balancer with real containers:
// a good revision replaces every task with 0 failed requests, each old task stopped only
// after its target drained; a revision whose tasks never start is rolled back by the circuit
// breaker, which the rollout watcher reports, again with 0 failed requests.
func TestRollingDeployment(t *testing.T) {
	v := startEnv(t, ecsapi.Options{})
	ctx, c, e := v.ctx, v.c, v.e

	// A target group checked every second, healthy after 2 passes, with a 2 s
	// deregistration delay; a listener on a free port.
	tg := v.targetGroup(t, "web")
	lbArn := ecslocaltest.Must(e.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	port, _ := v.listener(t, lbArn, []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}})
	revision := func(greeting string, env ...types.KeyValuePair) string { return v.revision(t, greeting, env...) }
	v1Arn := revision("v1")
	ecslocaltest.Must(c.CreateCluster(ctx, &ecs.CreateClusterInput{})).Get(t)
	ecslocaltest.Must(c.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(v1Arn), DesiredCount: aws.Int32(2),
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"s"}}},
		LoadBalancers:        []types.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}},
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})).Get(t)
	watch := func(since time.Time, want string) gecs.Result {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
		defer wcancel()
		w := &gecs.Watcher{Client: c, Service: "api", Since: since, Interval: 200 * time.Millisecond, MaxInterval: 500 * time.Millisecond, Timeout: 90 * time.Second, TaskDefinition: want}
		return w.Watch(wctx)
	}
	if r := watch(time.Time{}, v1Arn); r.Outcome != gecs.Succeeded {
		t.Fatalf("the first deployment: %s: %s", r.Outcome, r.Cause)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	// The load balancer applies what the API says a moment later: wait until it serves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load balancer does not serve the service: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l := startLoad(url)
	since := time.Now()
	v2Arn := revision("v2")
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(v2Arn)})).Get(t)
	r := watch(since, v2Arn)
	time.Sleep(500 * time.Millisecond) // requests after the last old task left
	l.end()
	if r.Outcome != gecs.Succeeded || l.failed.Load() != 0 || l.bodies["uid=0 greeting=v2\n"] == 0 {
		t.Fatalf("good revision: %s (%s); %d of %d requests failed (first: %s); answers %v", r.Outcome, r.Cause, l.failed.Load(), l.total.Load(), l.firstFailure, l.bodies)
	}
	t.Logf("good revision: %d requests, 0 failed, answers %v", l.total.Load(), l.bodies)
	// Every v1 task was stopped after its target drained: at least the 2 s delay between the
	// stop request and the containers' exit.
	stopped := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{ServiceName: aws.String("api"), DesiredStatus: types.DesiredStatusStopped})).Get(t)
	d := ecslocaltest.Must(c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: stopped.TaskArns})).Get(t)
	for _, task := range d.Tasks {
		if gap := task.ExecutionStoppedAt.Sub(*task.StoppingAt); gap < 2*time.Second || task.StopCode != types.TaskStopCodeServiceSchedulerInitiated ||
			!strings.HasPrefix(aws.ToString(task.StoppedReason), "Scaling activity initiated by (deployment ecs-svc/") {
			t.Errorf("old task %s: stopped %s after the stop request (want ≥ 2 s of draining), %s %q", *task.TaskArn, gap, task.StopCode, aws.ToString(task.StoppedReason))
		}
	}

	// A revision whose container exits at once never gets a task running: the circuit
	// breaker (threshold 3 for 2 tasks) rolls back to v2.
	l = startLoad(url)
	since = time.Now()
	bad := revision("bad", types.KeyValuePair{Name: aws.String("EXIT_AFTER"), Value: aws.String("0s")}, types.KeyValuePair{Name: aws.String("EXIT_CODE"), Value: aws.String("1")})
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(bad)})).Get(t)
	r = watch(since, bad)
	l.end()
	if r.Outcome != gecs.RolledBack || l.failed.Load() != 0 {
		t.Fatalf("bad revision: %s (%s), want rolled_back; %d of %d requests failed (first: %s)", r.Outcome, r.Cause, l.failed.Load(), l.total.Load(), l.firstFailure)
	}

	// Scale out to 3 and in to 1 under load: new tasks take requests once healthy, removed
	// ones drain first.
	l = startLoad(url)
	running := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			svc := ecslocaltest.Must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
			tasks := ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{ServiceName: aws.String("api")})).Get(t)
			health := ecslocaltest.Must(e.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})).Get(t)
			healthy := 0
			for _, h := range health.TargetHealthDescriptions {
				if h.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
					healthy++
				}
			}
			if svc.RunningCount == int32(n) && len(tasks.TaskArns) == n && healthy == n && len(health.TargetHealthDescriptions) == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not %d tasks running and healthy after 60 s: running %d, tasks %d, targets %d healthy of %d", n, svc.RunningCount, len(tasks.TaskArns), healthy, len(health.TargetHealthDescriptions))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), DesiredCount: aws.Int32(3)})).Get(t)
	running(3)
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), DesiredCount: aws.Int32(1)})).Get(t)
	running(1)
	l.end()
	if l.failed.Load() != 0 {
		t.Errorf("scaling: %d of %d requests failed (first: %s)", l.failed.Load(), l.total.Load(), l.firstFailure)
	}

	// A revision whose app runs but never passes the target group's check: its tasks are
	// replaced as unhealthy until the circuit breaker rolls back; the old task serves
	// throughout.
	l = startLoad(url)
	since = time.Now()
	sick := revision("sick", types.KeyValuePair{Name: aws.String("SICK"), Value: aws.String("1")})
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(sick)})).Get(t)
	r = watch(since, sick)
	l.end()
	if r.Outcome != gecs.RolledBack || l.failed.Load() != 0 {
		t.Fatalf("never-healthy revision: %s (%s), want rolled_back; %d of %d requests failed (first: %s)", r.Outcome, r.Cause, l.failed.Load(), l.total.Load(), l.firstFailure)
	}
	stopped = ecslocaltest.Must(c.ListTasks(ctx, &ecs.ListTasksInput{ServiceName: aws.String("api"), DesiredStatus: types.DesiredStatusStopped})).Get(t)
	d = ecslocaltest.Must(c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: stopped.TaskArns})).Get(t)
	unhealthy := 0
	for _, task := range d.Tasks {
		if aws.ToString(task.StoppedReason) == "Task failed ELB health checks in (target-group "+tg+")" {
			unhealthy++
		}
	}
	if unhealthy < 1 {
		t.Errorf("no task stopped for failing the target group's checks")
	}

	// The same revision with the circuit breaker off goes on failing until the deployment is
	// rolled back as proxy rollout rollback does it: StopServiceDeployment, stopType ROLLBACK.
	l = startLoad(url)
	since = time.Now()
	ecslocaltest.Must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(sick), ForceNewDeployment: true,
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{}}})).Get(t)
	list := ecslocaltest.Must(c.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Service: aws.String("api")})).Get(t)
	plan, err := gecs.Rollback(ctx, c, "", "api", *list.ServiceDeployments[0].ServiceDeploymentArn)
	if err != nil {
		t.Fatalf("proxy rollout rollback: %v", err)
	}
	r = watch(since, sick)
	l.end()
	if r.Outcome != gecs.RolledBack || l.failed.Load() != 0 {
		t.Fatalf("rollback on request (%+v): %s (%s), want rolled_back; %d of %d requests failed (first: %s)", plan, r.Outcome, r.Cause, l.failed.Load(), l.total.Load(), l.firstFailure)
	}

	svc := ecslocaltest.Must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
	if *svc.TaskDefinition != v2Arn {
		t.Errorf("after the rollback the service runs %s, want %s", *svc.TaskDefinition, v2Arn)
	}
	var events []string
	for _, ev := range svc.Events {
		events = append(events, *ev.Message)
	}
	joined := strings.Join(events, "\n")
	for _, want := range []string{"deployment failed: tasks failed to start.", "rolling back to deployment ecs-svc/", "has reached a steady state.",
		"has begun draining connections on 1 tasks.", "is unhealthy in (target-group " + tg + ")"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no event with %q in:\n%s", want, joined)
		}
	}

	// DeleteService drains and stops the tasks, then the service is INACTIVE.
	ecslocaltest.Must(c.DeleteService(ctx, &ecs.DeleteServiceInput{Service: aws.String("api"), Force: aws.Bool(true)})).Get(t)
	deadline = time.Now().Add(30 * time.Second)
	for {
		svc := ecslocaltest.Must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"api"}})).Get(t).Services[0]
		targets := ecslocaltest.Must(e.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})).Get(t).TargetHealthDescriptions
		if *svc.Status == "INACTIVE" && len(targets) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DeleteService: the service is %s with %d targets after 30 s", *svc.Status, len(targets))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
