package sidecar

// The ECS API is served by recorded responses (internal/ecs/ecstest, answering by
// X-Amz-Target) and the task metadata endpoint by a local server: neither exists outside
// AWS. moto cannot stand in here: its DescribeTasks answers do not decode with the Go SDK
// without an adapter (see localstack/), and the SDK client under test is built from the
// default configuration.

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// runDiscovery runs e.Run for d in a goroutine and returns its events ("update a,b" or
// "error ...") and a stop function that cancels it and waits for it to return.
func runDiscovery(t *testing.T, e *ecsDiscovery, d spec.ECSDiscovery) (<-chan string, func()) {
	t.Helper()
	events := make(chan string, 256)
	send := func(s string) {
		select {
		case events <- s:
		default: // the test has read what it needed
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx, d, func(addrs []string) { send("update " + strings.Join(addrs, ",")) }, func(err error) { send("error " + err.Error()) })
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return events, stop
}

func nextEvent(t *testing.T, events <-chan string) string {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no discovery event within 20s")
		return ""
	}
}

// TestECSDiscoveryInOwnCluster: with no ecs.cluster and no configured region, the task's
// metadata gives both; endpoints come as ip:port, a failed poll is reported and the next
// good one (even of the same set) is published again.
func TestECSDiscoveryInOwnCluster(t *testing.T) {
	s := ecstest.NewServer(t)
	s.SetEnv(t, "")
	s.On("ListTasks", ecstest.OK(`{"taskArns": ["t1"]}`), ecstest.Throttled, ecstest.OK(`{"taskArns": ["t1"]}`))
	s.On("DescribeTasks", ecstest.OK(`{"tasks": [`+ecstest.RunningTask("t1", "10.0.1.5")+`]}`))
	md := ecstest.TaskMetadata(t)
	e := newECSDiscovery(func(k string) string { return map[string]string{"ECS_CONTAINER_METADATA_URI_V4": md}[k] }, discardLogger())

	events, stop := runDiscovery(t, e, spec.ECSDiscovery{Service: "orders", Port: 3000, Refresh: 20 * time.Millisecond})
	want := []string{"update 10.0.1.5:3000", "error ecs service orders: ListTasks", "update 10.0.1.5:3000"}
	for i, w := range want {
		if ev := nextEvent(t, events); !strings.HasPrefix(ev, w) {
			t.Fatalf("event %d: %q, want %q...", i, ev, w)
		}
	}
	stop()
	req := s.Requests("ListTasks")[0]
	for _, w := range []string{`"cluster":"arn:aws:ecs:us-west-2:111122223333:cluster/default"`, `"serviceName":"orders"`, `"desiredStatus":"RUNNING"`} {
		if !strings.Contains(req, w) {
			t.Errorf("ListTasks request %s lacks %s", req, w)
		}
	}
	if r := e.client.Options().Region; r != "us-west-2" {
		t.Errorf("client region %q, want the task's us-west-2", r)
	}
}

// TestECSDiscoveryOutsideECS: without ecs.cluster outside a task, the discovery reports why
// and retries, without calling ECS; with ecs.cluster it polls that cluster.
func TestECSDiscoveryOutsideECS(t *testing.T) {
	s := ecstest.NewServer(t)
	s.SetEnv(t, "eu-west-1")
	s.Default("ListTasks", ecstest.OK(`{"taskArns": []}`))
	e := newECSDiscovery(func(string) string { return "" }, discardLogger())

	events, stop := runDiscovery(t, e, spec.ECSDiscovery{Service: "orders", Port: 3000, Refresh: 10 * time.Millisecond})
	for i := range 2 {
		ev := nextEvent(t, events)
		if !strings.Contains(ev, "ecs service orders: no ecs.cluster, and the task's own cluster is unknown: not in an ECS task (ECS_CONTAINER_METADATA_URI_V4 is not set)") {
			t.Fatalf("attempt %d: %q", i, ev)
		}
	}
	stop()
	if n := len(s.Requests("ListTasks")); n != 0 {
		t.Fatalf("%d ListTasks calls without a cluster to ask", n)
	}

	events, _ = runDiscovery(t, e, spec.ECSDiscovery{Cluster: "prod", Service: "orders", Port: 3000, Refresh: time.Hour})
	if ev := nextEvent(t, events); ev != "update " {
		t.Fatalf("with ecs.cluster: %q, want an empty update", ev)
	}
	if req := s.Requests("ListTasks"); len(req) != 1 || !strings.Contains(req[0], `"cluster":"prod"`) {
		t.Fatalf("ListTasks requests %q", req)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
