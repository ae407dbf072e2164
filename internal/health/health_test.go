package health

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for staleness tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestRegistry() (*Registry, *fakeClock) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return NewRegistry(WithClock(clk.Now)), clk
}

const all = Startup | Readiness | Liveness

// TestAggregationRules walks every rule of the model: each case builds a registry state and
// states the verdict of each probe.
func TestAggregationRules(t *testing.T) {
	errDep := errors.New("upstream unreachable")
	tests := []struct {
		name                         string
		setup                        func(r *Registry, clk *fakeClock)
		exclude                      []string
		startup, readiness, liveness bool
		reason                       string // substring of the readiness failure
	}{
		{
			name:    "no checks: everything passes",
			setup:   func(r *Registry, _ *fakeClock) {},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "registered but never reported: not started, not ready, alive",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "config.build", Gates: all})
			},
			startup: false, readiness: false, liveness: true,
			reason: "status STARTING",
		},
		{
			name: "running: all pass",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "config.build", Gates: all}).Running("")
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "first report is an error: still starting",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "config.build", Gates: Startup | Readiness}).Fail(errors.New("bad yaml"))
			},
			startup: false, readiness: false, liveness: true,
			reason: "STARTING: bad yaml",
		},
		{
			name: "running then error: started, not ready",
			setup: func(r *Registry, _ *fakeClock) {
				c := r.Register(Spec{Name: "upstream.cluster.app", Gates: Startup | Readiness})
				c.Running("")
				c.Fail(errDep)
			},
			startup: true, readiness: false, liveness: true,
			reason: "upstream unreachable",
		},
		{
			name: "a dependency error does not fail liveness",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "process.loop", Gates: Liveness}).Running("")
				c := r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
				c.Running("")
				c.Fail(errDep)
			},
			startup: true, readiness: false, liveness: true,
		},
		{
			name: "a process fault fails liveness",
			setup: func(r *Registry, _ *fakeClock) {
				c := r.Register(Spec{Name: "process.loop", Gates: Liveness})
				c.Running("")
				c.Fail(errors.New("event loop stuck"))
			},
			startup: true, readiness: true, liveness: false,
		},
		{
			name: "recovery clears the error",
			setup: func(r *Registry, _ *fakeClock) {
				c := r.Register(Spec{Name: "upstream.cluster.app", Gates: all})
				c.Running("")
				c.Fail(errDep)
				c.Running("")
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "terminating check: not ready, still alive, still started",
			setup: func(r *Registry, _ *fakeClock) {
				c := r.Register(Spec{Name: "proxy.listener.public", Gates: all})
				c.Running("")
				c.Terminating()
			},
			startup: true, readiness: false, liveness: true,
			reason: "status TERMINATING",
		},
		{
			name: "process shutdown: not ready at once, alive",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "config.build", Gates: all}).Running("")
				r.BeginShutdown()
			},
			startup: true, readiness: false, liveness: true,
			reason: "process is terminating",
		},
		{
			name: "shutdown cannot be excluded",
			setup: func(r *Registry, _ *fakeClock) {
				r.BeginShutdown()
			},
			exclude: []string{ShutdownCheckName},
			startup: true, readiness: false, liveness: true,
		},
		{
			name: "fresh within TTL",
			setup: func(r *Registry, clk *fakeClock) {
				r.Register(Spec{Name: "process.loop", Gates: all, TTL: 10 * time.Second}).Running("")
				clk.Add(9 * time.Second)
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "stale past TTL fails readiness and liveness",
			setup: func(r *Registry, clk *fakeClock) {
				r.Register(Spec{Name: "process.loop", Gates: all, TTL: 10 * time.Second}).Running("")
				clk.Add(11 * time.Second)
			},
			startup: true, readiness: false, liveness: false,
			reason: "stale",
		},
		{
			name: "an unchanged report refreshes the TTL",
			setup: func(r *Registry, clk *fakeClock) {
				c := r.Register(Spec{Name: "process.loop", Gates: all, TTL: 10 * time.Second})
				c.Running("")
				clk.Add(8 * time.Second)
				c.Running("")
				clk.Add(8 * time.Second)
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "versioned check at the current version",
			setup: func(r *Registry, _ *fakeClock) {
				r.SetConfigVersion("v2")
				r.Register(Spec{Name: "xds.listener", Gates: all, Versioned: true}).Running("v2")
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "versioned check lagging the current version: not ready",
			setup: func(r *Registry, _ *fakeClock) {
				r.SetConfigVersion("v1")
				c := r.Register(Spec{Name: "xds.listener", Gates: all, Versioned: true})
				c.Running("v1")
				r.SetConfigVersion("v2")
			},
			startup: true, readiness: false, liveness: true,
			reason: `at config version "v1", current is "v2"`,
		},
		{
			name: "unversioned check ignores the config version",
			setup: func(r *Registry, _ *fakeClock) {
				r.SetConfigVersion("v2")
				r.Register(Spec{Name: "admin.listener", Gates: all}).Running("")
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "excluded failing check does not count",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "config.build", Gates: all}).Running("")
				c := r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
				c.Running("")
				c.Fail(errDep)
			},
			exclude: []string{"upstream.cluster.app"},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "a check gates only the probes it declares",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "xds.connection", Gates: 0}).Fail(errors.New("control plane lost"))
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "readiness waits for a startup-only check",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "config.build", Gates: Startup})
			},
			startup: false, readiness: false, liveness: true,
			reason: "[-]config.build: not started",
		},
		{
			name: "an error on a started startup-only check leaves readiness green",
			setup: func(r *Registry, _ *fakeClock) {
				c := r.Register(Spec{Name: "config.build", Gates: Startup})
				c.Running("v1")
				c.Fail(errors.New("reload rejected: line 3: bad duration"))
			},
			startup: true, readiness: true, liveness: true,
		},
		{
			name: "unregistered check no longer gates",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "upstream.cluster.old", Gates: all})
				r.Unregister("upstream.cluster.old")
			},
			startup: true, readiness: true, liveness: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clk := newTestRegistry()
			tt.setup(r, clk)
			snap := r.Snapshot()
			for _, pc := range []struct {
				p    Probe
				want bool
			}{{Startup, tt.startup}, {Readiness, tt.readiness}, {Liveness, tt.liveness}} {
				res := snap.Evaluate(pc.p, tt.exclude...)
				if res.OK != pc.want {
					t.Errorf("%s = %v, want %v\n%s", pc.p, res.OK, pc.want, FormatResult(res, true))
				}
			}
			if tt.reason != "" {
				res := snap.Evaluate(Readiness, tt.exclude...)
				if got := FormatResult(res, true); !strings.Contains(got, tt.reason) {
					t.Errorf("readiness output lacks %q:\n%s", tt.reason, got)
				}
			}
		})
	}
}

func TestUnknownExcludeIsReported(t *testing.T) {
	r, _ := newTestRegistry()
	r.Register(Spec{Name: "config.build", Gates: all}).Running("")
	res := r.Evaluate(Readiness, "nope")
	if !res.OK || len(res.UnknownExcludes) != 1 || res.UnknownExcludes[0] != "nope" {
		t.Fatalf("got %+v", res)
	}
	if out := FormatResult(res, true); !strings.Contains(out, `warn: no check named "nope"`) {
		t.Fatalf("output:\n%s", out)
	}
}

func TestSinceChangesOnlyOnChange(t *testing.T) {
	r, clk := newTestRegistry()
	c := r.Register(Spec{Name: "a", Gates: all})
	c.Running("v1", A("k", "v"))
	first := r.Snapshot().Records[0].Since
	clk.Add(time.Second)
	c.Running("v1", A("k", "v"))
	if got := r.Snapshot().Records[0].Since; !got.Equal(first) {
		t.Fatalf("since moved on an unchanged report: %v -> %v", first, got)
	}
	clk.Add(time.Second)
	c.Running("v1", A("k", "w"))
	if got := r.Snapshot().Records[0].Since; got.Equal(first) {
		t.Fatal("since did not move on an attribute change")
	}
}

func TestFailKeepsVersionAndReplacesAttributes(t *testing.T) {
	r, _ := newTestRegistry()
	c := r.Register(Spec{Name: "config.build", Gates: all, Versioned: true})
	c.Running("v1", A("source", "file"))
	c.Fail(errors.New("line 3: bad"), A("rejected_version", "v2"))
	rec := r.Snapshot().Records[0]
	if rec.Version != "v1" || rec.Status != Running || rec.Err != "line 3: bad" {
		t.Fatalf("record = %+v", rec)
	}
	if len(rec.Attrs) != 1 || rec.Attrs[0] != A("rejected_version", "v2") {
		t.Fatalf("attrs = %+v", rec.Attrs)
	}
}

func TestReRegisterKeepsState(t *testing.T) {
	r, _ := newTestRegistry()
	r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness}).Running("")
	r.Register(Spec{Name: "upstream.cluster.app", Gates: Startup | Readiness})
	rec := r.Snapshot().Records[0]
	if rec.Status != Running || rec.Gates != Startup|Readiness {
		t.Fatalf("record = %+v", rec)
	}
}

func TestSubscribeCoalescesAndStops(t *testing.T) {
	r, _ := newTestRegistry()
	ch, cancel := r.Subscribe()
	c := r.Register(Spec{Name: "a", Gates: all})
	c.Running("")
	c.Fail(errors.New("x"))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	select {
	case <-ch:
		t.Fatal("notifications were not coalesced")
	default:
	}
	c.Running("") // a change after draining the channel notifies again
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no second notification")
	}
	cancel()
	c.Fail(errors.New("y"))
	select {
	case <-ch:
		t.Fatal("notified after cancel")
	default:
	}
}

// TestConcurrentReporters runs reporters, evaluators and subscribers at once; -race finds
// unsynchronised access, and the final state must be consistent.
func TestConcurrentReporters(t *testing.T) {
	r := NewRegistry()
	ch, cancel := r.Subscribe()
	defer cancel()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				_ = r.Evaluate(Readiness)
			case <-stop:
				return
			}
		}
	}()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := r.Register(Spec{Name: "check." + string(rune('a'+i)), Gates: all, TTL: time.Minute})
			for j := 0; j < 500; j++ {
				if j%2 == 0 {
					c.Running("", A("j", "even"))
				} else {
					c.Fail(errors.New("odd"))
				}
				_ = r.Snapshot()
			}
			c.Running("")
		}(i)
	}
	wg.Wait()
	close(stop)
	if res := r.Evaluate(Readiness); !res.OK || len(res.Checks) != 8 {
		t.Fatalf("final readiness: %+v", res)
	}
}

// TestContainerProbe walks the container probe's rule: it fails until readiness has passed
// once, and after that only on liveness.
func TestContainerProbe(t *testing.T) {
	errDep := errors.New("0/2 endpoints healthy")
	tests := []struct {
		name    string
		setup   func(r *Registry, clk *fakeClock)
		exclude []string
		want    bool
		reason  string // substring of the verbose output
	}{
		{
			name: "config never built: fails",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "config.build", Gates: Startup}).Fail(errors.New("line 3: bad duration"))
			},
			reason: "[-]config.build: never ready: STARTING: line 3: bad duration",
		},
		{
			name: "required upstream never healthy: fails",
			setup: func(r *Registry, _ *fakeClock) {
				// Registered first, as a data plane does: the config alone is no readiness.
				up := r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
				r.Register(Spec{Name: "config.build", Gates: Startup}).Running("v1")
				up.Report(Report{Status: Running, Err: errDep})
			},
			reason: "[-]upstream.cluster.app: never ready: 0/2 endpoints healthy",
		},
		{
			name: "ready once, then the upstream fails: passes",
			setup: func(r *Registry, _ *fakeClock) {
				up := r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
				up.Running("")
				up.Fail(errDep)
			},
			want: true,
		},
		{
			name: "ready once, then a reload adds a cluster that never turns healthy: passes",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness}).Running("")
				r.Register(Spec{Name: "upstream.cluster.new", Gates: Readiness})
			},
			want: true,
		},
		{
			name: "ready once, then shutdown: passes",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "proxy.listener.public", Gates: all}).Running("")
				r.BeginShutdown()
			},
			want: true,
		},
		{
			name: "ready once, then the loop is stuck: fails",
			setup: func(r *Registry, clk *fakeClock) {
				r.Register(Spec{Name: "process.loop", Gates: Liveness, TTL: 10 * time.Second}).Running("")
				clk.Add(11 * time.Second)
			},
			reason: "[-]process.loop: stale",
		},
		{
			name: "never ready and not alive: both reasons",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "process.loop", Gates: Liveness}).Fail(errors.New("probe server stopped"))
				r.Register(Spec{Name: "config.build", Gates: Startup})
			},
			reason: "[-]config.build: never ready: not started: STARTING\n[-]process.loop: probe server stopped",
		},
		{
			name: "nothing registered: not started",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "ecs.task"}).Running("")
			},
			reason: "containerz check failed",
		},
		{
			name: "shutdown before the first readiness: fails",
			setup: func(r *Registry, _ *fakeClock) {
				r.BeginShutdown()
			},
			reason: "[-]shutdown: never ready: process is terminating",
		},
		{
			name: "an unchanged report that ends a staleness completes startup",
			setup: func(r *Registry, clk *fakeClock) {
				r.BeginShutdown() // holds readiness while the check is fresh
				c := r.Register(Spec{Name: "tls.certificates", Gates: Readiness, TTL: 10 * time.Second})
				c.Running("")
				clk.Add(11 * time.Second)
				r.mu.Lock()
				r.terminating = false // no notification: only the next report may latch
				r.mu.Unlock()
				c.Running("")
				c.Fail(errDep)
			},
			want: true,
		},
		{
			name: "ready within a Batch: latched when the Batch ends",
			setup: func(r *Registry, _ *fakeClock) {
				c := r.Register(Spec{Name: "xds.listener", Gates: Startup, Versioned: true})
				r.Batch(func() {
					r.SetConfigVersion("v1")
					c.Running("v1")
				})
				r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
			},
			want: true,
		},
		{
			name: "an excluded check does not hold startup",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
			},
			exclude: []string{"upstream.cluster.app"},
			want:    true,
		},
		{
			name: "an exclude that names a readiness check is not unknown",
			setup: func(r *Registry, _ *fakeClock) {
				r.Register(Spec{Name: "upstream.cluster.app", Gates: Readiness})
			},
			exclude: []string{"upstream.cluster.app", "nothing"},
			want:    true,
			reason:  "warn: no check named \"nothing\" to exclude\ncontainerz check passed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clk := newTestRegistry()
			tt.setup(r, clk)
			res := r.Evaluate(Container, tt.exclude...)
			out := FormatResult(res, true)
			if res.OK != tt.want {
				t.Errorf("container = %v, want %v\n%s", res.OK, tt.want, out)
			}
			if tt.reason != "" && !strings.Contains(out, tt.reason) {
				t.Errorf("output lacks %q:\n%s", tt.reason, out)
			}
		})
	}
}

func TestParseProbe(t *testing.T) {
	for in, want := range map[string]Probe{"ready": Readiness, "live": Liveness, "startup": Startup, "readiness": Readiness, "container": Container, "containerz": Container} {
		if got, err := ParseProbe(in); err != nil || got != want {
			t.Errorf("ParseProbe(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseProbe("bogus"); err == nil {
		t.Error("ParseProbe(bogus) succeeded")
	}
}

// TestBatchIsAtomicForObservers moves the config version and a versioned check together
// while readers evaluate: no reader may see the check lagging or leading the version.
func TestBatchIsAtomicForObservers(t *testing.T) {
	r := NewRegistry()
	c := r.Register(Spec{Name: "proxy.listener.public", Gates: Readiness, Versioned: true})
	r.SetConfigVersion("v0")
	c.Running("v0")
	stop := make(chan struct{})
	var failures, reads int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			reads++
			if !r.Evaluate(Readiness).OK {
				failures++
			}
		}
	}()
	for i := 1; i <= 2000; i++ {
		v := "v" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		r.Batch(func() {
			r.SetConfigVersion(v)
			c.Running(v)
		})
	}
	close(stop)
	wg.Wait()
	if failures != 0 {
		t.Fatalf("%d of %d readers saw a half-applied version", failures, reads)
	}
}
