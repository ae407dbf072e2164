package rollout

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/haproxy"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/load"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/replica"
	"github.com/gangway-ecs/gangway/internal/config"
)

func TestTable(t *testing.T) {
	results := []Result{
		{Variant: "gangway", Scenario: Rolling, Actions: 3, Load: load.Result{Requests: 1000, HTTP: load.Percentiles{P99: 2 * time.Millisecond}}},
		{Variant: "gangway", Scenario: Kill9, Actions: 1, Load: load.Result{Requests: 500, Failures: map[string]int64{"h1 status 503": 5}}},
		{Variant: "baseline", Scenario: Rolling, Actions: 3, Load: load.Result{Requests: 800, Failures: map[string]int64{"ws close 1006": 8}}},
	}
	var b bytes.Buffer
	Table(&b, results)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"| scenario | gangway actions | gangway requests | gangway failures | gangway failure % | gangway p99 | baseline actions | baseline requests | baseline failures | baseline failure % | baseline p99 |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
		"| rolling | 3 | 1000 | 0 | 0% | 2ms | 3 | 800 | 8 | 1.000% | 0s |",
		"| kill9 | 1 | 500 | 5 | 1.000% | 0s | | | | | |",
		"| **total** | 4 | 1500 | 5 | 0.333% | | 3 | 800 | 8 | 1.000% | |",
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", b.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
}

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		n, of int64
		want  string
	}{{0, 0, "-"}, {0, 10, "0%"}, {1, 1_000_000_000, "<0.001%"}, {3, 30000, "0.010%"}} {
		if got := percent(c.n, c.of); got != c.want {
			t.Errorf("percent(%d, %d) = %q, want %q", c.n, c.of, got, c.want)
		}
	}
}

func TestAttribute(t *testing.T) {
	f := &fleet{}
	t0 := time.Now()
	m := &member{r: &replica.Replica{Name: "r4"}, slot: 2}
	m.events = []event{{t0, "starting"}, {t0.Add(time.Second), "in service"}, {t0.Add(2 * time.Second), "sigterm"}, {t0.Add(3 * time.Second), "slot freed"}}
	n := &member{r: &replica.Replica{Name: "r5"}, slot: 2}
	n.events = []event{{t0.Add(4 * time.Second), "starting"}}
	f.history = []*member{m, n}
	server := haproxy.Backend + "/" + haproxy.SlotName(2)
	for _, c := range []struct {
		start, end time.Duration
		want       string
	}{
		{1500 * time.Millisecond, 1600 * time.Millisecond, "r4 (in service)"},
		{1500 * time.Millisecond, 2500 * time.Millisecond, "r4 (in service → sigterm)"},
		{4500 * time.Millisecond, 4600 * time.Millisecond, "r5 (starting)"},
		{3500 * time.Millisecond, 3600 * time.Millisecond, server}, // nobody held the slot
	} {
		if got := f.attribute(server, t0.Add(c.start), t0.Add(c.end)); got != c.want {
			t.Errorf("attribute at %v-%v = %q, want %q", c.start, c.end, got, c.want)
		}
	}
}

// moduleRoot finds the directory of go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// TestSmoke runs the real harness at its smallest size: two replicas of bin/proxy behind
// HAProxy, one action per scenario, Gangway only. It needs `make build` and HAProxy, so it
// runs when GANGWAY_ROLLOUT_SMOKE=1 (`make test-rollout-smoke` sets it, after installing
// and building what it needs).
//
// It asserts the product's promise: no failed request in any scenario but kill9 and the
// upstream outage, every replica exits 0 after SIGTERM within stopTimeout; through the
// outage no task is restarted and the replicas are ready again within about one upstream
// health-check interval (1s) of the upstream's return. And it asserts that the harness sees
// failures where there must be some: a replica killed under load fails requests, and with the
// container health check on readiness, ECS's scheduler restarts tasks during the outage.
func TestSmoke(t *testing.T) {
	if os.Getenv("GANGWAY_ROLLOUT_SMOKE") != "1" {
		t.Skip("the rollout smoke test needs bin/proxy, bin/healthcheck and HAProxy: run make test-rollout-smoke (sets GANGWAY_ROLLOUT_SMOKE=1)")
	}
	root := moduleRoot(t)
	hap, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o := Options{
		ProxyBin:       filepath.Join(root, "bin/proxy"),
		HealthcheckBin: filepath.Join(root, "bin/healthcheck"),
		HAProxyBin:     hap,
		OutDir:         t.TempDir(),
		Replicas:       2,
		Actions:        1,
		Requests:       1000,
		MaxScenario:    2 * time.Minute,
		Scenarios:      append(append([]string(nil), AllScenarios...), UpstreamOutage),
		Outage:         6 * time.Second,
		// The shutdown delay is twice the load balancer's detection time (2 × 500ms + 500ms),
		// a margin for a shared CI machine whose timers run late.
		Variants: []Variant{Gangway(3*time.Second, 3*time.Second)},
		Load: load.Options{
			H1Clients: 4, H2Conns: 1, H2Streams: 4, WSClients: 2, WSInterval: 10 * time.Millisecond,
			Timeout: 10 * time.Second, SlowEvery: 20, SlowDelay: 200 * time.Millisecond,
		},
		ContainerCheck:      replica.HealthCheck{Interval: 500 * time.Millisecond, Timeout: 2 * time.Second, Retries: 3, StartPeriod: 10 * time.Second},
		LBCheck:             haproxy.Check{Interval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2},
		DeregistrationDelay: 2 * time.Second,
		StopTimeout:         3*time.Second + 3*time.Second + config.ShutdownMargin,
		StartTimeout:        30 * time.Second,
		Log:                 &log,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	results, err := Run(ctx, o)
	var report bytes.Buffer
	Table(&report, results)
	Details(&report, results)
	t.Logf("harness log:\n%s\n%s", log.String(), report.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(o.Scenarios) {
		t.Fatalf("%d results, want %d", len(results), len(o.Scenarios))
	}
	for _, r := range results {
		if len(r.Errors) > 0 {
			t.Errorf("%s: %v", r.Scenario, r.Errors)
		}
		if r.Actions < 1 || r.Load.Requests == 0 {
			t.Errorf("%s: %d actions, %d requests: the scenario did not run", r.Scenario, r.Actions, r.Load.Requests)
		}
		if r.Scenario == Kill9 {
			if r.Load.Failed() == 0 {
				t.Errorf("kill9: no failed request counted; a replica killed under load must fail some")
			}
			continue
		}
		if r.Scenario == UpstreamOutage {
			// The replicas' upstream health check runs every 1s: ready again within that,
			// with a second's margin for a loaded machine; traffic through the load
			// balancer needs its rise (2 × 500ms) on top.
			if r.Restarts != 0 || r.ReadyAfter < 0 || r.ReadyAfter > 2*time.Second || r.TrafficAfter < 0 || r.TrafficAfter > 4*time.Second {
				t.Errorf("upstream outage with the container probe: %d tasks restarted, ready after %s, traffic after %s; want none restarted, ready within 2s, traffic within 4s",
					r.Restarts, r.ReadyAfter, r.TrafficAfter)
			}
			if r.Load.Failed() == 0 {
				t.Errorf("upstream outage: no failed request counted while the upstream was down")
			}
			continue
		}
		if r.Load.Failed() != 0 || r.SigKilled != 0 || r.BadExits != 0 {
			t.Errorf("%s: %d failed requests %v, %d SIGKILLs after stopTimeout, %d bad exits; want none",
				r.Scenario, r.Load.Failed(), r.Load.Failures, r.SigKilled, r.BadExits)
		}
	}

	// The same outage with the container health check on readiness: ECS's scheduler
	// replaces tasks that a replacement cannot fix.
	log.Reset()
	o.Scenarios, o.Variants = []string{UpstreamOutage}, []Variant{ReadinessCheck(3*time.Second, 3*time.Second)}
	o.OutDir = t.TempDir()
	results, err = Run(ctx, o)
	report.Reset()
	OutageTable(&report, results, o.Outage)
	Details(&report, results)
	t.Logf("harness log:\n%s\n%s", log.String(), report.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Restarts == 0 {
		t.Errorf("upstream outage with the container check on readiness: no task restarted; the scheduler must restart them")
	}
}
