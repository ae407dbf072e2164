package ecs

// Health filtering, throttling and API errors are driven through recorded ECS responses
// (moto reports every task HEALTHY and never throttles); localstack/ runs discovery against
// moto server for the real ListTasks/DescribeTasks round trip.

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
)

const (
	tdChecked   = "arn:aws:ecs:us-east-1:123456789012:task-definition/checked:1"
	tdUnchecked = "arn:aws:ecs:us-east-1:123456789012:task-definition/unchecked:1"
)

func task(id, td, last, health, ip string) string {
	attach := ""
	if ip != "" {
		attach = fmt.Sprintf(`, "attachments": [{"type": "ElasticNetworkInterface", "status": "ATTACHED",
			"details": [{"name": "subnetId", "value": "subnet-1"}, {"name": "privateIPv4Address", "value": %q}]}]`, ip)
	}
	return fmt.Sprintf(`{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/%s", "taskDefinitionArn": %q,
		"lastStatus": %q, "desiredStatus": "RUNNING", "healthStatus": %q%s}`, id, td, last, health, attach)
}

func discoveryServer(t *testing.T) *ecstest.Server {
	s := ecstest.NewServer(t)
	s.OnBody("DescribeTaskDefinition", "/checked:1", ecstest.OK(`{"taskDefinition": {"containerDefinitions": [
		{"name": "proxy", "healthCheck": {"command": ["CMD", "/healthcheck"]}}]}}`))
	s.OnBody("DescribeTaskDefinition", "/unchecked:1", ecstest.OK(`{"taskDefinition": {"containerDefinitions": [
		{"name": "app"}, {"name": "sidecar", "essential": false, "healthCheck": {"command": ["CMD", "true"]}}]}}`))
	return s
}

func TestDiscoveryEndpoints(t *testing.T) {
	s := discoveryServer(t)
	s.On("ListTasks", ecstest.OK(`{"taskArns": ["t1", "t2", "t3", "t4", "t5", "t6", "t7"]}`))
	s.On("DescribeTasks", ecstest.OK(`{"tasks": [`+strings.Join([]string{
		task("t1", tdChecked, "RUNNING", "HEALTHY", "10.0.1.5"),
		task("t2", tdChecked, "RUNNING", "UNHEALTHY", "10.0.1.6"),
		task("t3", tdChecked, "RUNNING", "UNKNOWN", "10.0.1.7"),   // starting: its check has not passed
		task("t4", tdUnchecked, "RUNNING", "UNKNOWN", "10.0.1.8"), // no essential health check: UNKNOWN for ever
		task("t5", tdChecked, "PENDING", "UNKNOWN", "10.0.1.9"),
		task("t6", tdChecked, "RUNNING", "HEALTHY", ""), // bridge mode: no IP of its own
		task("t7", tdChecked, "RUNNING", "HEALTHY", "10.0.1.1"),
	}, ",")+`]}`))

	d := &Discovery{Client: s.Client(), Cluster: "prod", Service: "app", Port: 8080}
	for i := 0; i < 2; i++ {
		got, err := d.Endpoints(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := []netip.AddrPort{
			netip.MustParseAddrPort("10.0.1.1:8080"), netip.MustParseAddrPort("10.0.1.5:8080"), netip.MustParseAddrPort("10.0.1.8:8080"),
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("poll %d: endpoints %v, want %v", i, got, want)
		}
	}
	if n := len(s.Requests("DescribeTaskDefinition")); n != 2 {
		t.Errorf("DescribeTaskDefinition called %d times over two polls, want 2 (once per task definition)", n)
	}
	if req := s.Requests("ListTasks"); !strings.Contains(req[0], `"serviceName":"app"`) || !strings.Contains(req[0], `"desiredStatus":"RUNNING"`) || !strings.Contains(req[0], `"cluster":"prod"`) {
		t.Errorf("ListTasks request %s", req[0])
	}
}

// TestDiscoveryRunKeepsLastGoodSet: throttling and errors leave the endpoints in force and
// slow the polling down; a recovered poll publishes the new set.
func TestDiscoveryRunKeepsLastGoodSet(t *testing.T) {
	s := ecstest.NewServer(t)
	one := ecstest.OK(`{"tasks": [` + task("t1", tdChecked, "RUNNING", "HEALTHY", "10.0.1.5") + `]}`)
	two := ecstest.OK(`{"tasks": [` + task("t1", tdChecked, "RUNNING", "HEALTHY", "10.0.1.5") + "," + task("t2", tdChecked, "RUNNING", "HEALTHY", "10.0.1.6") + `]}`)
	s.On("ListTasks", ecstest.OK(`{"taskArns": ["t1"]}`), ecstest.OK(`{"taskArns": ["t1"]}`), ecstest.Throttled, ecstest.Throttled,
		ecstest.Error(500, "ServerException", "internal error"), ecstest.OK(`{"taskArns": ["t1", "t2"]}`))
	s.On("DescribeTasks", one, one, two)

	// In a synctest bubble (the server started outside it), the polls run on the fake
	// clock: each backoff is waited exactly, in no real time.
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var updates [][]netip.AddrPort
		var errs []string
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		start := time.Now()
		var polls []time.Duration
		d := &Discovery{Client: s.InProcessClient(), Service: "app", Port: 80, Interval: 10 * time.Millisecond, MaxInterval: 40 * time.Millisecond}
		go func() {
			defer close(done)
			d.Run(ctx, func(eps []netip.AddrPort) {
				mu.Lock()
				defer mu.Unlock()
				updates = append(updates, eps)
				if len(eps) == 2 {
					cancel()
				}
			}, func(err error) {
				mu.Lock()
				defer mu.Unlock()
				errs = append(errs, err.Error())
				polls = append(polls, time.Since(start))
			})
		}()
		<-done
		mu.Lock()
		defer mu.Unlock()
		want := [][]netip.AddrPort{
			{netip.MustParseAddrPort("10.0.1.5:80")},
			{netip.MustParseAddrPort("10.0.1.5:80"), netip.MustParseAddrPort("10.0.1.6:80")},
		}
		if !reflect.DeepEqual(updates, want) {
			t.Errorf("updates %v, want %v (an unchanged set or a failed poll must not publish)", updates, want)
		}
		if len(errs) != 3 || !strings.Contains(errs[0], "ThrottlingException") || !strings.Contains(errs[0], "keeping 1 endpoints; next poll in 20ms") ||
			!strings.Contains(errs[1], "next poll in 40ms") || !strings.Contains(errs[2], "ServerException") || !strings.Contains(errs[2], "next poll in 40ms") {
			t.Errorf("errors %q", errs)
		}
		// Polls at 0 and 10ms succeed; the throttled ones at 20ms and 40ms (after 20ms), the
		// failed one at 80ms (after 40ms, MaxInterval).
		if want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}; !slices.Equal(polls, want) {
			t.Errorf("failed polls at %v, want %v", polls, want)
		}
	})
}

func TestDiscoveryRunStops(t *testing.T) {
	s := ecstest.NewServer(t)
	s.Default("ListTasks", ecstest.OK(`{"taskArns": []}`))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	updated := make(chan []netip.AddrPort, 1)
	d := &Discovery{Client: s.Client(), Service: "app", Port: 80, Interval: time.Hour}
	go func() {
		defer close(done)
		d.Run(ctx, func(eps []netip.AddrPort) { updated <- eps }, nil)
	}()
	if eps := <-updated; len(eps) != 0 {
		t.Errorf("first update %v, want the empty set", eps)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
