package lb_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
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
	"github.com/gangway-ecs/gangway/internal/ecslocal/lb"
	"github.com/gangway-ecs/gangway/internal/ecslocal/targethealth"
)

func requireHAProxy(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("GANGWAY_ECSLOCAL_REQUIRE") != "" || os.Getenv("CI") == "true" {
			t.Fatal("haproxy is required here:", err)
		}
		t.Skip("haproxy is not installed; make test-ecslocal installs it")
	}
}

// app is a target: it answers its name on every path, /ready with the status the test
// sets, /slow after a second and /slower after three.
type app struct {
	name     string
	ready    atomic.Int32
	inflight atomic.Int32 // /slow requests being served
	served   atomic.Int64 // requests other than health checks
	lastSeq  atomic.Int64 // the highest X-Seq of a request served (see startLoad)
	failed   atomic.Int64 // of which answered 500
	srv      *httptest.Server
	port     int32
}

func newApp(t *testing.T, name string) *app {
	a := &app{name: name}
	a.ready.Store(200)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Base(r.URL.Path) != "ready" {
			a.served.Add(1)
			if n, err := strconv.ParseInt(r.Header.Get("X-Seq"), 10, 64); err == nil {
				for old := a.lastSeq.Load(); n > old && !a.lastSeq.CompareAndSwap(old, n); old = a.lastSeq.Load() {
				}
			}
		}
		switch path.Base(r.URL.Path) {
		case "ready":
			w.WriteHeader(int(a.ready.Load()))
			return
		case "fail":
			a.failed.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "slow", "slower":
			a.inflight.Add(1)
			if path.Base(r.URL.Path) == "slower" {
				time.Sleep(3 * time.Second)
			} else {
				time.Sleep(time.Second)
			}
			a.inflight.Add(-1)
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(a.srv.Close)
	_, p, _ := net.SplitHostPort(a.srv.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	a.port = int32(n)
	return a
}

// TestRoutingHealthAndFailOpen serves a listener through HAProxy: rules by path and header,
// a weighted forward, a fixed response, targets that take traffic once healthy, fail-open
// when all are unhealthy, and 503 with none.
func TestRoutingHealthAndFailOpen(t *testing.T) {
	requireHAProxy(t)
	ctx, cancel := context.WithCancel(context.Background())
	api := elbapi.New(elbapi.Options{})
	c := ecslocaltest.Start(t, ecsapi.New(ecsapi.Options{}), api).ELB
	dir := t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			cfg, _ := os.ReadFile(filepath.Join(dir, "haproxy.cfg"))
			log, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
			t.Logf("haproxy.cfg:\n%s\nhaproxy.log:\n%s", cfg, log)
		}
	})
	done := make(chan struct{}, 2)
	go func() {
		// Health-check timing at a tenth: the 2 s timeout is 200 ms, room for a loaded
		// machine (at a fiftieth, 40 ms timed checks out and failed the target).
		_ = targethealth.New(api, targethealth.Options{Scale: 0.1, Reconcile: 10 * time.Millisecond}).Run(ctx)
		done <- struct{}{}
	}()
	balancer := lb.New(api, lb.Options{Dir: dir, Poll: 20 * time.Millisecond})
	go func() {
		_ = balancer.Run(ctx)
		done <- struct{}{}
	}()
	defer func() { cancel(); <-done; <-done }()

	blue, green := newApp(t, "blue"), newApp(t, "green")
	group := func(a *app) string {
		arn := *ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(a.name), Protocol: types.ProtocolEnumHttp,
			Port: aws.Int32(a.port), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
			HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
		})).Get(t).TargetGroups[0].TargetGroupArn
		ecslocaltest.Must(c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
			Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("0")}}})).Get(t)
		ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String("127.0.0.1")}}})).Get(t)
		return arn
	}
	blueTG, greenTG := group(blue), group(green)
	port := ecslocaltest.FreePort(t)
	lbArn := ecslocaltest.Must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	listener := ecslocaltest.Must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Port: aws.Int32(port), Protocol: types.ProtocolEnumHttp,
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(blueTG)}}})).Get(t).Listeners[0].ListenerArn
	rule := func(prio int32, cond types.RuleCondition, act types.Action) {
		ecslocaltest.Must(c.CreateRule(ctx, &elb.CreateRuleInput{ListenerArn: listener, Priority: aws.Int32(prio), Conditions: []types.RuleCondition{cond}, Actions: []types.Action{act}})).Get(t)
	}
	rule(5, types.RuleCondition{Field: aws.String("path-pattern"), Values: []string{"/fixed"}},
		types.Action{Type: types.ActionTypeEnumFixedResponse, FixedResponseConfig: &types.FixedResponseActionConfig{StatusCode: aws.String("418"), MessageBody: aws.String("tea\tpot\n")}})
	rule(10, types.RuleCondition{Field: aws.String("path-pattern"), Values: []string{"/green/*"}},
		types.Action{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(greenTG)})
	rule(20, types.RuleCondition{Field: aws.String("http-header"), HttpHeaderConfig: &types.HttpHeaderConditionConfig{HttpHeaderName: aws.String("X-Canary"), Values: []string{"y*"}}},
		types.Action{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
			{TargetGroupArn: aws.String(blueTG), Weight: aws.Int32(1)}, {TargetGroupArn: aws.String(greenTG), Weight: aws.Int32(1)}}}})

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Each request on a new connection: a connection left idle across a reload is answered
	// by the replaced HAProxy's configuration (docs/ecslocal.md, Reloads), and this test
	// asks between changes.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string, header ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	await := func(what, path string, status int, body string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			s, b := get(path)
			if s == status && (b == body || body == "*") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET %s answered %d %q, want %d %q", what, path, s, b, status, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	await("healthy blue behind the default rule", "/", 200, "blue")
	await("the path rule", "/green/x", 200, "green")
	// A body of several lines (the template's fixed 404s end with a newline) is sent as set.
	if s, b := get("/fixed"); s != 418 || b != "tea\tpot\n" {
		t.Errorf("fixed response: %d %q", s, b)
	}
	// The weighted rule's backend learns green's health on its own checks: wait until it
	// has sent one request there before counting.
	until(t, "the weighted rule reaching green", func() bool { _, b := get("/", "X-Canary", "yes"); return b == "green" })
	seen := map[string]int{}
	for range 200 {
		_, b := get("/", "X-Canary", "yes")
		seen[b]++
	}
	if seen["blue"] < 60 || seen["green"] < 60 || seen["blue"]+seen["green"] != 200 {
		t.Errorf("a 1:1 weighted forward sent %v", seen)
	}

	// Every request is counted for its target group: ten more to green (the only target of
	// its group), the five 500s it answers as its own, none as the load balancer's. Counted
	// from here: the awaits above may have met the group before it was healthy (503s of the
	// load balancer's own).
	before, served, failed := settled(t, balancer, greenTG), green.served.Load(), green.failed.Load()
	for range 5 {
		get("/green/x")
		get("/green/fail")
	}
	if n, f := green.served.Load()-served, green.failed.Load()-failed; n != 10 || f != 5 {
		t.Fatalf("green served %d requests, %d of them 500s; want 10 and 5", n, f)
	}
	want := lb.Counters{Requests: before.Requests + 10, Target5XX: before.Target5XX + 5, ELB5XX: before.ELB5XX,
		ResponseTimes: before.ResponseTimes} // the response times are compared on their own below
	// HAProxy's counters of a request and of its status move a moment apart.
	until(t, "the green requests counted", func() bool {
		c := balancer.Counters()[greenTG]
		return c.Requests >= want.Requests && c.Target5XX >= want.Target5XX
	})
	got := balancer.Counters()[greenTG]
	if times := got.ResponseTimes.Sub(before.ResponseTimes); times.Count != 10 {
		t.Errorf("green response times: %d more, want 10 (every request the target answered)", times.Count)
	}
	got.ResponseTimes = want.ResponseTimes
	if got != want {
		t.Errorf("green counters %+v, want %+v (ten more requests, five more 500s of the target's, no more of the load balancer's)", got, want)
	}

	// Blue fails its checks: it is the group's only target, so the group fails open.
	blue.ready.Store(503)
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := ecslocaltest.Must(c.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(blueTG)})).Get(t)
		if h.TargetHealthDescriptions[0].TargetHealth.State == types.TargetHealthStateEnumUnhealthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("blue did not turn unhealthy")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a reload, if one were (wrongly) made, has happened
	if s, b := get("/"); s != 200 || b != "blue" {
		t.Errorf("fail-open: GET / answered %d %q, want blue", s, b)
	}

	// With no target left, the group answers 503.
	ecslocaltest.Must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(blueTG), Targets: []types.TargetDescription{{Id: aws.String("127.0.0.1")}}})).Get(t)
	await("no registered target", "/", 503, "*")
	until(t, "the 503 counted", func() bool { return balancer.Counters()[blueTG].ELB5XX > 0 })
	if c := balancer.Counters()[blueTG]; c.Target5XX != 0 {
		t.Errorf("blue counters %+v: the 503s without a target are the load balancer's", c)
	}
}

// TestDraining: a deregistered target finishes the request it is serving and takes no new
// one, while the group's other target takes them all.
func TestDraining(t *testing.T) {
	ctx, c, balancer := serveLB(t)

	blue, green := newApp(t, "blue"), newApp(t, "green")
	arn := *ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp,
		Port: aws.Int32(blue.port), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2)})).Get(t).TargetGroups[0].TargetGroupArn
	register := func(a *app) {
		ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn),
			Targets: []types.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(a.port)}}})).Get(t)
	}
	register(blue)
	base := forwardTo(ctx, t, c, arn)
	// New connections, as in TestRoutingHealthAndFailOpen.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for s, b := get("/"); s != 200 || b != "blue"; s, b = get("/") {
		if time.Now().After(deadline) {
			t.Fatalf("blue never served: %d %q", s, b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A slow request is in flight on blue when blue is deregistered.
	slow := make(chan string, 1)
	go func() {
		s, b := get("/slow")
		slow <- fmt.Sprint(s, " ", b)
	}()
	until(t, "the slow request reaches blue", func() bool { return blue.inflight.Load() == 1 })
	register(green)
	until(t, "green healthy and serving", func() bool {
		return strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d weight 100", green.port))
	})
	ecslocaltest.Must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(arn),
		Targets: []types.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(blue.port)}}})).Get(t)
	until(t, "the configuration with blue draining applied", func() bool {
		return strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d weight 0", blue.port))
	})
	// A configuration is in effect once the HAProxy that loaded it accepts connections; the
	// one it replaces answers until then. From then on, no new request goes to blue.
	until(t, "the new configuration answering", func() bool { _, b := get("/"); return b == "green" })
	for range 20 {
		if s, b := get("/"); s != 200 || b != "green" {
			t.Fatalf("a new request while blue drains: %d %q, want green", s, b)
		}
	}
	if got := <-slow; got != "200 blue" {
		t.Errorf("the request in flight on the draining target: %s, want 200 blue", got)
	}
}

// settled returns the target group's counters once they have stopped moving: HAProxy's
// counters of a request that has been answered can still be a poll behind.
func settled(t *testing.T, balancer *lb.LB, tg string) lb.Counters {
	t.Helper()
	last := balancer.Counters()[tg]
	stable := 0
	until(t, "the counters settled", func() bool {
		time.Sleep(50 * time.Millisecond)
		now := balancer.Counters()[tg]
		if now == last {
			stable++
		} else {
			stable, last = 0, now
		}
		return stable >= 3
	})
	return last
}

// serveLB runs the target health checks (at a tenth of their intervals and timeouts: a 2 s
// timeout is 200 ms, room for a loaded machine) and a load balancer until the test ends,
// and returns a client for their API.
func serveLB(t *testing.T) (context.Context, *elb.Client, *lb.LB) {
	requireHAProxy(t)
	ctx, cancel := context.WithCancel(context.Background())
	api := elbapi.New(elbapi.Options{})
	c := ecslocaltest.Start(t, ecsapi.New(ecsapi.Options{}), api).ELB
	done := make(chan struct{}, 2)
	go func() {
		_ = targethealth.New(api, targethealth.Options{Scale: 0.1, Reconcile: 10 * time.Millisecond}).Run(ctx)
		done <- struct{}{}
	}()
	balancer := lb.New(api, lb.Options{Dir: t.TempDir(), Poll: 10 * time.Millisecond})
	go func() {
		_ = balancer.Run(ctx)
		done <- struct{}{}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return ctx, c, balancer
}

// forwardTo creates a load balancer whose listener, on a free port of 127.0.0.1, forwards
// every request to the target group arn, and returns its base URL ("http://127.0.0.1:PORT").
func forwardTo(ctx context.Context, t *testing.T, c *elb.Client, arn string) string {
	t.Helper()
	port := ecslocaltest.FreePort(t)
	lbArn := ecslocaltest.Must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	ecslocaltest.Must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Port: aws.Int32(port), Protocol: types.ProtocolEnumHttp,
		DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(arn)}}})).Get(t)
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// until waits for cond, for at most 15 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 15 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadKeepsIdleClientConnections changes the configuration again and again while
// keep-alive clients send POSTs through the listener, pausing between requests: an ALB does
// not restart when its targets change, so no request may fail. A HAProxy that is replaced
// closes its idle client connections, and a client whose POST crosses that close sees EOF
// (net/http does not resend a POST), unless the old one keeps them until their next request
// and answers it with Connection: close.
func TestReloadKeepsIdleClientConnections(t *testing.T) {
	ctx, c, balancer := serveLB(t)

	blue, green := newApp(t, "blue"), newApp(t, "green")
	arn := *ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp,
		Port: aws.Int32(blue.port), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2)})).Get(t).TargetGroups[0].TargetGroupArn
	ecslocaltest.Must(c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("0")}}})).Get(t)
	target := func(a *app) []types.TargetDescription {
		return []types.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(a.port)}}
	}
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target(blue)})).Get(t)
	url := forwardTo(ctx, t, c, arn) + "/"
	until(t, "blue serving", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	stop := make(chan struct{})
	var requests, failed atomic.Int64
	var firstFailure atomic.Value
	clients := make(chan struct{}, 4)
	for i := range 4 {
		go func() {
			defer func() { clients <- struct{}{} }()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				requests.Add(1)
				resp, err := client.Post(url, "text/plain", strings.NewReader(fmt.Sprint(i, n)))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
				time.Sleep(time.Duration(i+1) * time.Millisecond)
			}
		}()
	}
	greenServer := fmt.Sprintf("127.0.0.1:%d weight 100", green.port)
	for range 15 {
		ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target(green)})).Get(t)
		until(t, "green serving", func() bool { return strings.Contains(balancer.Applied(), greenServer) })
		ecslocaltest.Must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target(green)})).Get(t)
		until(t, "green gone", func() bool { return !strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d ", green.port)) })
	}
	close(stop)
	for range 4 {
		<-clients
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across 30 reloads (first: %v)", failed.Load(), requests.Load(), firstFailure.Load())
	}
	t.Logf("%d requests across 30 reloads, 0 failed", requests.Load())
}

// TestCountsEveryRequest sends requests on many connections at once: every one the target
// answered is counted, none lost on the way from HAProxy's log to the counters (a HAProxy
// of several threads drops a log line when two threads write one at the same moment).
func TestCountsEveryRequest(t *testing.T) {
	ctx, c, balancer := serveLB(t)
	web := newApp(t, "web")
	arn := *ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp,
		Port: aws.Int32(web.port), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2)})).Get(t).TargetGroups[0].TargetGroupArn
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn),
		Targets: []types.TargetDescription{{Id: aws.String("127.0.0.1")}}})).Get(t)
	url := forwardTo(ctx, t, c, arn) + "/"
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	get := func(path string) int {
		resp, err := client.Get(url + path)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	until(t, "web serving", func() bool { return get("") == 200 })
	before, served := settled(t, balancer, arn), web.served.Load()

	// 16 clients, 300 requests each, half of them the target's 500s.
	const clients, each = 16, 300
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range clients {
		wg.Go(func() {
			for i := range each {
				want, path := 200, "x"
				if i%2 == 1 {
					want, path = 500, "fail"
				}
				if get(path) != want {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of %d requests not answered as the target answered them", n, clients*each)
	}
	if n := web.served.Load() - served; n != clients*each {
		t.Fatalf("the target served %d requests, want %d", n, clients*each)
	}
	got := settled(t, balancer, arn)
	if n, f := got.Requests-before.Requests, got.Target5XX-before.Target5XX; n != clients*each || f != clients*each/2 {
		t.Errorf("counted %d requests and %d target 5xx, want %d and %d: log lines lost", n, f, clients*each, clients*each/2)
	}
	if n := got.ResponseTimes.Sub(before.ResponseTimes).Count; n != clients*each {
		t.Errorf("counted %d response times, want %d", n, clients*each)
	}
}
