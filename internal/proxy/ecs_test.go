package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/spec"
)

// fakeECS stands in for Options.ECS: ECS itself cannot run here (cmd/proxy tests the real
// discovery against recorded ECS responses). Each event the test pushes is delivered from
// the discovery's own goroutine, as the real one does.
type fakeECS struct {
	events chan ecsEvent

	mu      sync.Mutex
	running map[string]spec.ECSDiscovery // by service
	runs    int                          // discoveries started
}

type ecsEvent struct {
	addrs []string
	err   error
}

func newFakeECS() *fakeECS {
	return &fakeECS{events: make(chan ecsEvent), running: map[string]spec.ECSDiscovery{}}
}

func (f *fakeECS) run(ctx context.Context, d spec.ECSDiscovery, update func([]string), onError func(error)) {
	f.mu.Lock()
	f.running[d.Service] = d
	f.runs++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.running, d.Service)
		f.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-f.events:
			if ev.err != nil {
				onError(ev.err)
			} else {
				update(ev.addrs)
			}
		}
	}
}

func (f *fakeECS) send(t *testing.T, ev ecsEvent) {
	t.Helper()
	select {
	case f.events <- ev:
	case <-time.After(10 * time.Second):
		t.Fatal("no ECS discovery is running to take the event")
	}
}

func (f *fakeECS) push(t *testing.T, addrs ...string) { t.Helper(); f.send(t, ecsEvent{addrs: addrs}) }
func (f *fakeECS) fail(t *testing.T, err error)       { t.Helper(); f.send(t, ecsEvent{err: err}) }

func (f *fakeECS) active() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.running)
}

func ecsCluster(hc *spec.HealthCheck) spec.Cluster {
	return spec.Cluster{Name: "app", ECS: &spec.ECSDiscovery{Cluster: "prod", Service: "app", Port: 8080, Refresh: time.Second}, HealthCheck: hc}
}

// clusterState is the check of cluster app: its status, error, and healthy/total attributes.
func clusterState(srv *testServer) (rec health.Record, healthy, total string) {
	rec, _ = record(srv.reg, "upstream.cluster.app")
	return rec, attr(rec, "healthy"), attr(rec, "total")
}

// TestECSDiscoveryEndpoints: discovered endpoints take traffic once their health check
// passes, leave rotation when discovery drops them, and a failed discovery keeps the last
// set in service with the error on the cluster's check.
func TestECSDiscoveryEndpoints(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	hc := &spec.HealthCheck{Type: spec.HTTPHealthCheck, Path: "/healthz", Expected: []spec.StatusRange{{Min: 200, Max: 299}}, Interval: 100 * time.Millisecond, Timeout: 2 * time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1}
	route := prefixRoute("app", "/", "app")
	route.Required = true
	fake := newFakeECS()
	srv := startServer(t, testSpec([]spec.Route{route}, []spec.Cluster{ecsCluster(hc)}), func(o *Options) { o.ECS = fake.run })
	c := newClient()

	// Nothing discovered yet: STARTING, and readiness waits for the required cluster.
	if rec, _, _ := clusterState(srv); rec.Status != health.Starting {
		t.Fatalf("before the first discovery: %s", rec.Status)
	}
	if code, _ := get(t, c, srv.url("public", "/")); code != http.StatusServiceUnavailable {
		t.Fatalf("before the first discovery: status %d, want 503", code)
	}
	if code, _ := get(t, c, srv.url("public", "/gangway/ready")); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness before the first discovery: %d, want 503", code)
	}

	fake.push(t, a.addr)
	eventually(t, "a in rotation", func() bool { _, h, n := clusterState(srv); return h == "1" && n == "1" })
	if code, body := get(t, c, srv.url("public", "/")); code != 200 || !strings.HasPrefix(body, "a ") {
		t.Fatalf("after discovering a: %d %q", code, body)
	}
	if code, _ := get(t, c, srv.url("public", "/gangway/ready")); code != 200 {
		t.Fatalf("readiness with a healthy endpoint: %d", code)
	}

	// b appears but fails its health check: it takes no traffic until the check passes.
	b.status.Store(http.StatusServiceUnavailable)
	fake.push(t, a.addr, b.addr)
	eventually(t, "b discovered", func() bool { _, _, n := clusterState(srv); return n == "2" })
	if _, h, _ := clusterState(srv); h != "1" {
		t.Fatalf("healthy %s with b failing its check, want 1", h)
	}
	for range 6 {
		if code, body := get(t, c, srv.url("public", "/")); code != 200 || !strings.HasPrefix(body, "a ") {
			t.Fatalf("b failing its check: %d %q", code, body)
		}
	}
	if b.hits.Load() != 0 {
		t.Fatalf("b took %d requests before its health check passed", b.hits.Load())
	}
	b.status.Store(0)
	eventually(t, "b healthy", func() bool { _, h, _ := clusterState(srv); return h == "2" })
	a.hits.Store(0)
	for range 10 {
		get(t, c, srv.url("public", "/"))
	}
	if a.hits.Load() != 5 || b.hits.Load() != 5 {
		t.Fatalf("two healthy endpoints: a %d b %d of 10", a.hits.Load(), b.hits.Load())
	}

	// a disappears: it leaves rotation and its series goes.
	fake.push(t, b.addr)
	eventually(t, "a gone", func() bool { _, h, n := clusterState(srv); return h == "1" && n == "1" })
	a.hits.Store(0)
	for range 6 {
		if code, body := get(t, c, srv.url("public", "/")); code != 200 || !strings.HasPrefix(body, "b ") {
			t.Fatalf("after a disappeared: %d %q", code, body)
		}
	}
	if a.hits.Load() != 0 {
		t.Fatalf("a took %d requests after it disappeared", a.hits.Load())
	}
	if n := testutil.CollectAndCount(srv.metrics.endpointHealthy); n != 1 {
		t.Fatalf("%d endpoint_healthy series, want 1 (b)", n)
	}

	// A failed poll keeps b in service; the error shows on the check without failing it.
	fake.fail(t, errors.New("ListTasks: ThrottlingException: Rate exceeded"))
	eventually(t, "discovery error on the check", func() bool {
		rec, _, _ := clusterState(srv)
		return strings.Contains(attr(rec, "discovery_error"), "ThrottlingException")
	})
	if rec, h, _ := clusterState(srv); rec.Err != "" || h != "1" {
		t.Fatalf("after a failed poll: err %q healthy %s, want no error and b kept", rec.Err, h)
	}
	if code, body := get(t, c, srv.url("public", "/")); code != 200 || !strings.HasPrefix(body, "b ") {
		t.Fatalf("after a failed poll: %d %q", code, body)
	}
	if code, _ := get(t, c, srv.url("public", "/gangway/ready")); code != 200 {
		t.Fatalf("readiness after a failed poll with a healthy endpoint: %d", code)
	}
	// A good poll, even of the same set, clears it.
	fake.push(t, b.addr)
	eventually(t, "discovery error cleared", func() bool {
		rec, _, _ := clusterState(srv)
		return attr(rec, "discovery_error") == "" && attr(rec, "healthy") == "1"
	})

	// No task left: 503, and the check fails with the reason; a failed poll then says why.
	fake.push(t)
	eventually(t, "no endpoint", func() bool { _, _, n := clusterState(srv); return n == "0" })
	if code, _ := get(t, c, srv.url("public", "/")); code != http.StatusServiceUnavailable {
		t.Fatalf("no endpoint: status %d, want 503", code)
	}
	fake.fail(t, errors.New("ListTasks: AccessDeniedException"))
	eventually(t, "the error fails the empty cluster", func() bool {
		rec, _, _ := clusterState(srv)
		return strings.Contains(rec.Err, "no healthy endpoint") && strings.Contains(rec.Err, "AccessDeniedException")
	})
	if code, _ := get(t, c, srv.url("public", "/gangway/ready")); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness with no endpoint: %d, want 503", code)
	}
}

// TestECSUpdateKeepsEndpointState: an endpoint that stays across discoveries keeps its
// state (here an outlier ejection); new ones join healthy when there is no health check.
func TestECSUpdateKeepsEndpointState(t *testing.T) {
	a, b, d := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "d")
	b.status.Store(http.StatusInternalServerError)
	cl := ecsCluster(nil)
	cl.Outlier = &spec.Outlier{Consecutive5xx: 1, BaseEjectionTime: time.Minute, MaxEjectionPercent: 100}
	fake := newFakeECS()
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{cl}), func(o *Options) { o.ECS = fake.run })
	c := newClient()
	fake.push(t, a.addr, b.addr)
	eventually(t, "two endpoints", func() bool { _, h, _ := clusterState(srv); return h == "2" })
	for range 2 {
		get(t, c, srv.url("public", "/"))
	}
	eventually(t, "b ejected", func() bool { _, h, _ := clusterState(srv); return h == "1" })

	fake.push(t, a.addr, b.addr, d.addr)
	eventually(t, "d discovered", func() bool { _, _, n := clusterState(srv); return n == "3" })
	if _, h, _ := clusterState(srv); h != "2" {
		t.Fatalf("healthy %s after adding d, want 2: b must stay ejected", h)
	}
	b.hits.Store(0)
	for range 6 {
		if code, _ := get(t, c, srv.url("public", "/")); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	if b.hits.Load() != 0 || d.hits.Load() != 3 {
		t.Fatalf("b %d d %d of 6 requests, want 0 and 3", b.hits.Load(), d.hits.Load())
	}
}

// TestECSDiscoveryLifecycle: a cluster's discovery runs from its start to its stop; without
// Options.ECS an ECS cluster fails Start and Apply, and the failed Apply changes nothing.
func TestECSDiscoveryLifecycle(t *testing.T) {
	a := startBackend(t, "a")
	static := spec.Cluster{Name: "static", Endpoints: []string{a.addr}}

	s, err := New(testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{ecsCluster(nil)}), Options{Health: health.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), `cluster "app": ecs discovery of service "app" is not available`) {
		t.Fatalf("Start without Options.ECS: %v", err)
	}
	s.Close()

	noECS := startServer(t, testSpec([]spec.Route{prefixRoute("static", "/", "static")}, []spec.Cluster{static}))
	next := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{ecsCluster(nil)})
	next.Version = "v2"
	next.Listeners[0].Address = noECS.Addr("public")
	if err := noECS.Apply(next); err == nil || !strings.Contains(err.Error(), "proxy.Options.ECS") {
		t.Fatalf("Apply without Options.ECS: %v", err)
	}
	if code, body := get(t, newClient(), noECS.url("public", "/")); code != 200 || !strings.HasPrefix(body, "a ") {
		t.Fatalf("after the failed Apply: %d %q", code, body)
	}

	fake := newFakeECS()
	srv := startServer(t, testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{ecsCluster(nil), static}), func(o *Options) { o.ECS = fake.run })
	eventually(t, "discovery running", func() bool { return fake.active() == 1 })
	fake.mu.Lock()
	got := fake.running["app"]
	fake.mu.Unlock()
	if want := *ecsCluster(nil).ECS; got != want {
		t.Fatalf("discovery runs with %+v, want %+v", got, want)
	}

	// An unchanged ECS cluster keeps its discovery across Apply; a changed one restarts it.
	pinned := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{ecsCluster(nil), static})
	pinned.Version = "v2"
	pinned.Listeners[0].Address = srv.Addr("public")
	if err := srv.Apply(pinned); err != nil {
		t.Fatal(err)
	}
	changed := *pinned
	changed.Version = "v3"
	changed.Clusters = []spec.Cluster{ecsCluster(nil), static}
	changed.Clusters[0].ECS.Refresh = 2 * time.Second
	if err := srv.Apply(&changed); err != nil {
		t.Fatal(err)
	}
	// The new discovery starts in its own goroutine; the old one has stopped by now.
	eventually(t, "the changed cluster's discovery", func() bool {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return fake.running["app"].Refresh == 2*time.Second
	})
	fake.mu.Lock()
	runs := fake.runs
	fake.mu.Unlock()
	if runs != 2 {
		t.Fatalf("%d discoveries started, want 2 (one restart, for the changed cluster)", runs)
	}

	// Removing the cluster stops its discovery before Apply returns.
	gone := changed
	gone.Version = "v4"
	gone.Routes = []spec.Route{prefixRoute("static", "/", "static")}
	gone.Clusters = []spec.Cluster{static}
	if err := srv.Apply(&gone); err != nil {
		t.Fatal(err)
	}
	if n := fake.active(); n != 0 {
		t.Fatalf("%d discoveries still running after their cluster was removed", n)
	}
}

// TestECSReportsAcrossApply: discovery reports while Apply moves the cluster to new versions
// (run with -race); the check ends at the last version, with the last error.
func TestECSReportsAcrossApply(t *testing.T) {
	a := startBackend(t, "a")
	fake := newFakeECS()
	spec := testSpec([]spec.Route{prefixRoute("app", "/", "app")}, []spec.Cluster{ecsCluster(nil)})
	srv := startServer(t, spec, func(o *Options) { o.ECS = fake.run })
	spec.Listeners[0].Address = srv.Addr("public")
	fake.push(t, a.addr)
	// One failed poll lands before the Applies start, so the error is there to keep.
	fake.events <- ecsEvent{err: fmt.Errorf("poll failed before the applies")}
	eventually(t, "the first failed poll reported", func() bool {
		rec, _, _ := clusterState(srv)
		return strings.Contains(attr(rec, "discovery_error"), "failed")
	})

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case fake.events <- ecsEvent{err: fmt.Errorf("poll %d failed", i)}:
			}
		}
	})
	for i := range 20 {
		next := *spec
		next.Version = fmt.Sprintf("v%d", i+2)
		if err := srv.Apply(&next); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	rec, h, _ := clusterState(srv)
	if rec.Version != "v21" || h != "1" || !strings.Contains(attr(rec, "discovery_error"), "failed") {
		t.Fatalf("after 20 Applies under failing polls: version %q healthy %s attributes %v", rec.Version, h, rec.Attrs)
	}
}
