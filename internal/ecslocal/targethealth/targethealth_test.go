package targethealth_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/targethealth"
)

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		matcher string
		code    int
		want    bool
	}{
		{"200", 200, true}, {"200", 204, false}, {"200,202", 202, true}, {"200-299", 299, true},
		{"200-299", 300, false}, {"200,300-399", 302, true},
	} {
		if got, err := targethealth.Matches(c.matcher, c.code); err != nil || got != c.want {
			t.Errorf("Matches(%q, %d) = %v, %v; want %v", c.matcher, c.code, got, err, c.want)
		}
	}
}

// target is an HTTP server on 127.0.0.1 whose answer to the check the test changes, and
// that counts the answers of each kind.
type target struct {
	status atomic.Int32
	delay  atomic.Int64 // nanoseconds before answering
	mu     sync.Mutex
	served map[int]int
	first  *http.Request
}

func (tg *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(time.Duration(tg.delay.Load()))
	code := int(tg.status.Load())
	tg.mu.Lock()
	tg.served[code]++
	if tg.first == nil {
		tg.first = r.Clone(context.Background())
	}
	tg.mu.Unlock()
	w.WriteHeader(code)
}

func (tg *target) count(code int) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.served[code]
}

// TestHealthStates drives one target through the ALB states with real checks, time scaled
// by 1/50 (interval 5 s → 100 ms, timeout 2 s → 40 ms).
func TestHealthStates(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := elbapi.New(elbapi.Options{})
	c := ecslocaltest.Start(t, ecsapi.New(ecsapi.Options{}), api).ELB
	checker := targethealth.New(api, targethealth.Options{Scale: 0.02, Reconcile: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- checker.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	tg := &target{served: map[int]int{}}
	tg.status.Store(200)
	srv := httptest.NewServer(tg)
	defer srv.Close()
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)

	arn := *ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp,
		Port: aws.Int32(int32(port)), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(3), UnhealthyThresholdCount: aws.Int32(2),
	})).Get(t).TargetGroups[0].TargetGroupArn
	lb := ecslocaltest.Must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0]
	ecslocaltest.Must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Port: aws.Int32(80), Protocol: types.ProtocolEnumHttp,
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(arn)}}})).Get(t)
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String("127.0.0.1")}}})).Get(t)

	health := func() types.TargetHealth {
		out := ecslocaltest.Must(c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})).Get(t)
		return *out.TargetHealthDescriptions[0].TargetHealth
	}
	// await polls until the target is in state, and returns the health then.
	await := func(state types.TargetHealthStateEnum) types.TargetHealth {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if h := health(); h.State == state {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("target not %s after 10 s: %+v", state, health())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// One pass makes a new target healthy.
	await(types.TargetHealthStateEnumHealthy)
	tg.mu.Lock()
	first := tg.first
	tg.mu.Unlock()
	if first.URL.Path != "/ready" || first.UserAgent() != "ELB-HealthChecker/2.0" || first.Method != http.MethodGet || !first.Close {
		t.Errorf("check request: %s %s, User-Agent %q, Connection close %v", first.Method, first.URL.Path, first.UserAgent(), first.Close)
	}

	// UnhealthyThresholdCount (2) failures in a row make it unhealthy.
	tg.status.Store(503)
	h := await(types.TargetHealthStateEnumUnhealthy)
	if n := tg.count(503); n < 2 {
		t.Errorf("unhealthy after %d failed checks, want 2", n)
	}
	if h.Reason != types.TargetHealthReasonEnumResponseCodeMismatch || aws.ToString(h.Description) != "Health checks failed with these codes: [503]" {
		t.Errorf("unhealthy: %s %q", h.Reason, aws.ToString(h.Description))
	}

	// HealthyThresholdCount (3) passes in a row make it healthy again.
	before := tg.count(200)
	tg.status.Store(200)
	await(types.TargetHealthStateEnumHealthy)
	if n := tg.count(200) - before; n < 3 {
		t.Errorf("healthy again after %d passed checks, want 3", n)
	}

	// A check slower than the timeout is Target.Timeout.
	tg.delay.Store(int64(200 * time.Millisecond))
	h = await(types.TargetHealthStateEnumUnhealthy)
	if h.Reason != types.TargetHealthReasonEnumTimeout || aws.ToString(h.Description) != "Request timed out" {
		t.Errorf("timed out: %s %q", h.Reason, aws.ToString(h.Description))
	}
}
