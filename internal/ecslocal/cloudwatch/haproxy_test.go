package cloudwatch_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/cloudwatch"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/lb"
	"github.com/gangway-ecs/gangway/internal/ecslocal/targethealth"
)

// until polls cond every 20 ms for at most 15 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// haproxyGroup is a target group of one target (app) behind a listener that a real HAProxy
// serves, with ecslocal's CloudWatch (time scale 0.01) sampling its counters.
type haproxyGroup struct {
	cw       *cloudwatch.Service
	balancer *lb.LB
	tgARN    string
	dims     []cloudwatch.Dimension // LoadBalancer and TargetGroup
	get      func(path string) int  // a request through the listener; 0 when it failed
}

func startHAProxyGroup(t *testing.T, app http.Handler) *haproxyGroup {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("GANGWAY_ECSLOCAL_REQUIRE") != "" || os.Getenv("CI") == "true" {
			t.Fatal("haproxy is required here:", err)
		}
		t.Skip("haproxy is not installed; make test-ecslocal installs it")
	}
	ctx, cancel := context.WithCancel(context.Background())
	api := elbapi.New(elbapi.Options{Region: "us-east-1", Account: "000000000000"})
	c := ecslocaltest.Start(t, ecsapi.New(ecsapi.Options{}), api).ELB
	balancer := lb.New(api, lb.Options{Dir: t.TempDir(), Poll: 20 * time.Millisecond})
	cw := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", Account: "000000000000", TimeScale: 0.01, ELB: api, Counters: balancer})
	done := make(chan struct{}, 3)
	for _, run := range []func(context.Context) error{
		targethealth.New(api, targethealth.Options{Scale: 0.1, Reconcile: 10 * time.Millisecond}).Run,
		balancer.Run,
		cw.Run,
	} {
		go func() {
			_ = run(ctx)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() { cancel(); <-done; <-done; <-done })

	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	appPort, _ := strconv.Atoi(p)

	tg := ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("green"), Protocol: types.ProtocolEnumHttp,
		Port: aws.Int32(int32(appPort)), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2),
	})).Get(t).TargetGroups[0]
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: tg.TargetGroupArn, Targets: []types.TargetDescription{{Id: aws.String("127.0.0.1")}}})).Get(t)
	front := ecslocaltest.Must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web")})).Get(t).LoadBalancers[0]
	port := ecslocaltest.FreePort(t)
	ecslocaltest.Must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: front.LoadBalancerArn, Port: aws.Int32(port), Protocol: types.ProtocolEnumHttp,
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}}})).Get(t)
	// A new connection per request: an idle one may be answered by a replaced HAProxy.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	g := &haproxyGroup{cw: cw, balancer: balancer, tgARN: *tg.TargetGroupArn, get: func(path string) int {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}}
	until(t, "the target serving through HAProxy", func() bool { return g.get("/") == 200 })

	tgDim := *tg.TargetGroupArn
	tgDim = tgDim[strings.Index(tgDim, ":targetgroup/")+1:]
	lbDim := *front.LoadBalancerArn
	lbDim = lbDim[strings.Index(lbDim, ":loadbalancer/")+len(":loadbalancer/"):]
	g.dims = []cloudwatch.Dimension{{Name: "LoadBalancer", Value: lbDim}, {Name: "TargetGroup", Value: tgDim}}
	return g
}

// The construct's target-5xx alarm on a target group that HAProxy serves: the target's 500s,
// counted from HAProxy's log, trip it, and it returns to OK once the errors stop.
func TestAlarmOnHAProxyCounters(t *testing.T) {
	g := startHAProxyGroup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	if err := g.cw.PutMetricAlarm(cloudwatch.Alarm{AlarmName: "green-target-5xx", Namespace: "AWS/ApplicationELB", MetricName: "HTTPCode_Target_5XX_Count",
		Statistic: "Sum", Period: 60, EvaluationPeriods: 1, DatapointsToAlarm: 1, Threshold: 5, ComparisonOperator: "GreaterThanOrEqualToThreshold",
		TreatMissingData: "notBreaching", Dimensions: g.dims}); err != nil {
		t.Fatal(err)
	}
	state := func() string { s, _ := g.cw.AlarmState("green-target-5xx"); return s }
	until(t, "the alarm OK before any error", func() bool { return state() == cloudwatch.StateOK })
	// The target's 500s, ten at a time, until the alarm sees them: at least five in one
	// scaled period (0.6 s), however slowly a loaded machine answers.
	var sent atomic.Int64
	deadline := time.Now().Add(15 * time.Second)
	for state() != cloudwatch.StateAlarm {
		if time.Now().After(deadline) {
			t.Fatalf("the target-5xx alarm not in ALARM within 15 s of target 500s (%d sent)", sent.Load())
		}
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if got := g.get("/fail"); got != 500 {
					t.Errorf("GET /fail through the load balancer: %d, want the target's 500", got)
				}
				sent.Add(1)
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	// Every answer counted, none lost between HAProxy and the counters.
	until(t, fmt.Sprintf("the counters at the %d target 5xx sent", sent.Load()), func() bool {
		return g.balancer.Counters()[g.tgARN].Target5XX == sent.Load()
	})
	until(t, "the alarm OK again once the errors stop", func() bool { return state() == cloudwatch.StateOK })
}

// The construct's p99-latency alarm (TargetResponseTime, p99) on a target group that HAProxy
// serves: a target that takes 300 ms to answer trips a 200 ms threshold, the statistics
// say how long it took, and the alarm returns to OK once the target is fast again.
func TestLatencyAlarmOnHAProxy(t *testing.T) {
	g := startHAProxyGroup(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
	}))
	if err := g.cw.PutMetricAlarm(cloudwatch.Alarm{AlarmName: "green-p99-latency", Namespace: "AWS/ApplicationELB", MetricName: "TargetResponseTime",
		ExtendedStatistic: "p99", Period: 60, EvaluationPeriods: 1, DatapointsToAlarm: 1, Threshold: 0.2, ComparisonOperator: "GreaterThanOrEqualToThreshold",
		TreatMissingData: "notBreaching", Dimensions: g.dims}); err != nil {
		t.Fatal(err)
	}
	state := func() string { s, _ := g.cw.AlarmState("green-p99-latency"); return s }
	until(t, "the alarm OK while the target is fast", func() bool { g.get("/"); return state() == cloudwatch.StateOK })
	// Slow answers for a few scaled periods (0.6 s each), until the alarm sees them.
	deadline := time.Now().Add(15 * time.Second)
	for state() != cloudwatch.StateAlarm {
		if time.Now().After(deadline) {
			t.Fatal("the p99-latency alarm not in ALARM within 15 s of 300 ms answers")
		}
		if got := g.get("/slow"); got != 200 {
			t.Fatalf("GET /slow through the load balancer: %d, want 200", got)
		}
	}
	times := g.balancer.Counters()[g.tgARN].ResponseTimes
	if p := times.Percentile(100); p < 280 || p > 2000 {
		t.Errorf("the slowest response time counted: %g ms, want the 300 ms answers' (a loaded machine may add some)", p)
	}
	until(t, "the alarm OK again once the target is fast", func() bool { g.get("/"); return state() == cloudwatch.StateOK })
}
