package lb_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
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

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
)

// haproxyChildren returns the PIDs of the HAProxy processes this test process started (the
// load balancer's children): one a change of structure would replace.
func haproxyChildren(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid …
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if s[open+1:end] == "haproxy" && len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			out = append(out, pid)
		}
	}
	return out
}

// load sends GETs and POSTs through the listener on keep-alive connections until stop is
// called (or a minute has passed), counting every request and every failure: a status other
// than 200 or an answer from no known target.
type load struct {
	// seq numbers the requests in the order they start, the load's and the test's own
	// alike: each carries its number in X-Seq, and each app keeps the highest it served.
	// A request numbered above seq's value at some moment started after that moment.
	seq              *atomic.Int64
	requests, failed atomic.Int64
	first            atomic.Value
	mu               sync.Mutex
	seen             map[string]int64 // answers by target name
	stop             chan struct{}
	done             sync.WaitGroup
}

func startLoad(url string, seq *atomic.Int64, names ...string) *load {
	l := &load{seq: seq, seen: map[string]int64{}, stop: make(chan struct{})}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	deadline := time.Now().Add(time.Minute)
	for i := range 4 {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for n := 0; time.Now().Before(deadline); n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.requests.Add(1)
				method, body := http.MethodGet, io.Reader(nil)
				if n%2 == 1 {
					method, body = http.MethodPost, strings.NewReader(fmt.Sprint(i, n))
				}
				req, _ := http.NewRequest(method, url, body)
				req.Header.Set("X-Seq", strconv.FormatInt(l.seq.Add(1), 10))
				resp, err := client.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode != http.StatusOK:
						err = fmt.Errorf("status %d %q", resp.StatusCode, b)
					case !known[string(b)]:
						err = fmt.Errorf("answered by %q", b)
					default:
						l.mu.Lock()
						l.seen[string(b)]++
						l.mu.Unlock()
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.first.CompareAndSwap(nil, err.Error())
				}
				time.Sleep(time.Duration(i+1) * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.done.Wait()
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed (first: %v)", l.failed.Load(), l.requests.Load(), l.first.Load())
	}
	t.Logf("%d requests, %d failed, answered by %v", l.requests.Load(), l.failed.Load(), l.seen)
}

// TestRuntimeChangesUnderLoad shifts a listener's weights between two target groups and
// swaps a group's targets (register, then deregister with draining) under keep-alive load,
// as a blue/green deployment and a rolling one do: no request fails, and the HAProxy that
// served the first request serves the last, the only one ever started. A change of weights
// reaches a connection that was open before it, as with an ALB.
func TestRuntimeChangesUnderLoad(t *testing.T) {
	ctx, c, balancer := serveLB(t)

	blue, blue2, green := newApp(t, "blue"), newApp(t, "blue2"), newApp(t, "green")
	group := func(name string, a *app) string {
		arn := *ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: types.ProtocolEnumHttp,
			Port: aws.Int32(a.port), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
			HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2)})).Get(t).TargetGroups[0].TargetGroupArn
		ecslocaltest.Must(c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
			Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("1")}}})).Get(t)
		return arn
	}
	target := func(a *app) []types.TargetDescription {
		return []types.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(a.port)}}
	}
	blueTG, greenTG := group("blue", blue), group("green", green)
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(blueTG), Targets: target(blue)})).Get(t)
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(greenTG), Targets: target(green)})).Get(t)
	weights := func(b, g int32) []types.Action {
		return []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
			{TargetGroupArn: aws.String(blueTG), Weight: aws.Int32(b)}, {TargetGroupArn: aws.String(greenTG), Weight: aws.Int32(g)}}}}}
	}
	port := ecslocaltest.FreePort(t)
	lbArn := ecslocaltest.Must(c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("front")})).Get(t).LoadBalancers[0].LoadBalancerArn
	listener := ecslocaltest.Must(c.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lbArn, Port: aws.Int32(port), Protocol: types.ProtocolEnumHttp,
		DefaultActions: weights(1, 0)})).Get(t).Listeners[0].ListenerArn
	setWeights := func(b, g int32) {
		ecslocaltest.Must(c.ModifyListener(ctx, &elb.ModifyListenerInput{ListenerArn: listener, DefaultActions: weights(b, g)})).Get(t)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// One keep-alive connection, watched: it must stay the same connection across the changes.
	var reused atomic.Bool
	trace := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused.Store(i.Reused) }})
	kept := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var seq atomic.Int64
	ask := func() (string, bool) {
		req, _ := http.NewRequestWithContext(trace, http.MethodGet, url, nil)
		req.Header.Set("X-Seq", strconv.FormatInt(seq.Add(1), 10))
		resp, err := kept.Do(req)
		if err != nil {
			return err.Error(), false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprint(resp.StatusCode, " ", string(b)), reused.Load()
	}
	until(t, "blue and green healthy", func() bool {
		a := balancer.Applied()
		return strings.Contains(a, fmt.Sprintf("127.0.0.1:%d weight 100", blue.port)) && strings.Contains(a, fmt.Sprintf("127.0.0.1:%d weight 100", green.port))
	})
	until(t, "blue serving", func() bool { b, _ := ask(); return b == "200 blue" })
	pids := haproxyChildren(t)
	if len(pids) != 1 {
		t.Fatalf("HAProxy processes before the changes: %v, want one", pids)
	}
	var sampled sync.Map // every HAProxy PID seen while the load runs
	stopSampling := make(chan struct{})
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for {
			for _, p := range haproxyChildren(t) {
				sampled.Store(p, true)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	l := startLoad(url, &seq, "blue", "blue2", "green")

	// All to green: the connection opened before the change is sent there too.
	setWeights(0, 1)
	until(t, "the kept connection answered by green", func() bool { b, r := ask(); return b == "200 green" && r })
	for range 20 {
		if b, r := ask(); b != "200 green" || !r {
			t.Fatalf("after the shift to green, the kept connection (reused %v) answered %s", r, b)
		}
	}
	// Half and half.
	setWeights(1, 1)
	seen := map[string]int{}
	until(t, "both groups answering", func() bool { b, _ := ask(); seen[b]++; return seen["200 blue"] > 0 && seen["200 green"] > 0 })

	// A rolling swap of blue's target: blue2 registered, turns healthy, blue deregistered and
	// drained, then removed.
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(blueTG), Targets: target(blue2)})).Get(t)
	until(t, "blue2 serving", func() bool {
		return strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d weight 100", blue2.port))
	})
	ecslocaltest.Must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(blueTG), Targets: target(blue)})).Get(t)
	until(t, "blue draining", func() bool {
		return strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d weight 0", blue.port))
	})
	// Requests numbered above cut started after blue was set draining: HAProxy must send
	// none of them to blue. (Counting blue's requests from here would also count those
	// HAProxy had sent it before, still on their way.)
	cut := seq.Load()
	until(t, "blue removed", func() bool { return !strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d ", blue.port)) })
	// Back to blue alone.
	setWeights(1, 0)
	until(t, "the kept connection answered by blue2", func() bool { b, _ := ask(); return b == "200 blue2" })
	time.Sleep(200 * time.Millisecond) // load on the final state
	l.end(t)
	close(stopSampling)
	<-sampling

	if last := blue.lastSeq.Load(); last > cut {
		t.Errorf("blue served request %d, which started after it was set draining (after request %d)", last, cut)
	}
	var all []int
	sampled.Range(func(k, _ any) bool { all = append(all, k.(int)); return true })
	if now := haproxyChildren(t); len(all) != 1 || all[0] != pids[0] || len(now) != 1 || now[0] != pids[0] {
		t.Errorf("HAProxy processes: %v before, %v during, %v after; a change of weights or targets must not start another", pids, all, now)
	}
}

// TestDrainEndsAtDelay: a request still in flight on a deregistered target when its
// deregistration delay ends is cut (the load balancer answers it), and the target leaves
// HAProxy; a request in flight on a target that turns unhealthy finishes.
func TestDrainEndsAtDelay(t *testing.T) {
	ctx, c, balancer := serveLB(t)

	blue, green := newApp(t, "blue"), newApp(t, "green")
	arn := *ecslocaltest.Must(c.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: types.ProtocolEnumHttp,
		Port: aws.Int32(blue.port), VpcId: aws.String("vpc-1"), TargetType: types.TargetTypeEnumIp, HealthCheckPath: aws.String("/ready"),
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2)})).Get(t).TargetGroups[0].TargetGroupArn
	// The delay (1 s) is shorter than the /slower request (3 s).
	ecslocaltest.Must(c.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("1")}}})).Get(t)
	target := func(a *app) []types.TargetDescription {
		return []types.TargetDescription{{Id: aws.String("127.0.0.1"), Port: aws.Int32(a.port)}}
	}
	ecslocaltest.Must(c.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: append(target(blue), target(green)...)})).Get(t)
	base := forwardTo(ctx, t, c, arn)
	until(t, "both healthy", func() bool {
		a := balancer.Applied()
		return strings.Contains(a, fmt.Sprintf("127.0.0.1:%d weight 100", blue.port)) && strings.Contains(a, fmt.Sprintf("127.0.0.1:%d weight 100", green.port))
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	slow := func(a *app, path string) chan string {
		out := make(chan string, 1)
		before := a.inflight.Load()
		go func() {
			// Round robin over two targets: a few tries reach a.
			for {
				resp, err := client.Get(base + "/" + path)
				if err != nil {
					out <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) == a.name || resp.StatusCode != http.StatusOK {
					out <- fmt.Sprint(resp.StatusCode, " ", string(b))
					return
				}
			}
		}()
		until(t, "a slow request on "+a.name, func() bool { return a.inflight.Load() > before })
		return out
	}

	// green turns unhealthy while serving a slow request: the request finishes.
	inGreen := slow(green, "slow")
	green.ready.Store(503)
	until(t, "green out of service", func() bool { return !strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d ", green.port)) })
	if got := <-inGreen; got != "200 green" {
		t.Errorf("the request in flight on the target that turned unhealthy: %s, want 200 green", got)
	}
	green.ready.Store(200)
	until(t, "green back", func() bool {
		return strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d weight 100", green.port))
	})

	// blue is deregistered while serving a request longer than its delay: the request is
	// cut when the delay ends, not when the target answers.
	inBlue := slow(blue, "slower")
	start := time.Now()
	ecslocaltest.Must(c.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target(blue)})).Get(t)
	got := <-inBlue
	if took := time.Since(start); got == "200 blue" || took < 900*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("the request in flight on blue, deregistered with a delay of 1 s, ended %s later with %q; want it cut when the delay ends", took, got)
	}
	until(t, "blue removed", func() bool { return !strings.Contains(balancer.Applied(), fmt.Sprintf("127.0.0.1:%d ", blue.port)) })
}
