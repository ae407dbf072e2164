package upstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/spec"
)

// reports records what a source reports, and fails the test on a report after run returned.
type reports struct {
	t        *testing.T
	mu       sync.Mutex
	sets     [][]string
	errs     []error
	returned bool
	got      chan struct{}
}

func newReports(t *testing.T) *reports { return &reports{t: t, got: make(chan struct{}, 100)} }

func (r *reports) update(addrs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.returned {
		r.t.Errorf("update %v after run returned", addrs)
	}
	r.sets = append(r.sets, slices.Clone(addrs))
	r.got <- struct{}{}
}

func (r *reports) onError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.returned {
		r.t.Errorf("onError %v after run returned", err)
	}
	r.errs = append(r.errs, err)
	r.got <- struct{}{}
}

// run runs s until it returns or stop is closed, then marks the end.
func (r *reports) run(s source, ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, r.update, r.onError)
		r.mu.Lock()
		r.returned = true
		r.mu.Unlock()
	}()
	return done
}

func (r *reports) wait(n int) {
	r.t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			r.t.Fatalf("waited 10s for a report; sets %v errors %v", r.sets, r.errs)
		}
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestStaticSourceReportsItsListOnce(t *testing.T) {
	r := newReports(t)
	<-r.run(newSource(spec.Cluster{Endpoints: []string{"10.0.0.1:80", "10.0.0.2:80"}}, Deps{}, discard), context.Background())
	if len(r.sets) != 1 || !slices.Equal(r.sets[0], []string{"10.0.0.1:80", "10.0.0.2:80"}) || len(r.errs) != 0 {
		t.Fatalf("sets %v errors %v", r.sets, r.errs)
	}
}

// TestDNSSourceKeepsTryingAfterAFailedLookup: a failed lookup is reported with the name and
// the source resolves again at the next refresh, until its context ends.
func TestDNSSourceKeepsTryingAfterAFailedLookup(t *testing.T) {
	refused := errors.New("no DNS server here")
	resolver := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) { return nil, refused }}
	c := spec.Cluster{DNS: &spec.DNSDiscovery{Name: "app.gangway.test", Port: 80, Refresh: 10 * time.Millisecond}}
	r := newReports(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := r.run(newSource(c, Deps{Resolver: resolver}, discard), ctx)
	r.wait(2)
	cancel()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) != 0 || len(r.errs) < 2 || !strings.HasPrefix(r.errs[0].Error(), "resolve app.gangway.test: ") {
		t.Fatalf("sets %v errors %v", r.sets, r.errs)
	}
}

// TestECSSourceReportsDiscoveryThatStops: discovery that returns while the cluster runs is
// an error; after the context ends, nothing is reported.
func TestECSSourceReportsDiscoveryThatStops(t *testing.T) {
	c := spec.Cluster{ECS: &spec.ECSDiscovery{Service: "orders", Port: 80, Refresh: time.Second}}
	once := func(_ context.Context, _ spec.ECSDiscovery, update func([]string), _ func(error)) {
		update([]string{"10.0.0.1:80"})
	}
	r := newReports(t)
	<-r.run(newSource(c, Deps{ECS: once}, discard), context.Background())
	if len(r.sets) != 1 || len(r.errs) != 1 || !strings.Contains(r.errs[0].Error(), `ecs discovery of service "orders" stopped`) {
		t.Fatalf("sets %v errors %v", r.sets, r.errs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	untilCancelled := func(ctx context.Context, _ spec.ECSDiscovery, _ func([]string), onError func(error)) {
		cancel()
		onError(errors.New("poll failed as the cluster stopped"))
	}
	r = newReports(t)
	<-r.run(newSource(c, Deps{ECS: untilCancelled}, discard), ctx)
	if len(r.sets) != 0 || len(r.errs) != 0 {
		t.Fatalf("after the context ended: sets %v errors %v", r.sets, r.errs)
	}
}
