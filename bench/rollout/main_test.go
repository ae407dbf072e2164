package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/load"
	"github.com/gangway-ecs/gangway/bench/rollout/internal/rollout"
)

func TestReplaceSection(t *testing.T) {
	section := "## Rollout\n\nnew table\n"
	for name, c := range map[string]struct{ before, after string }{
		"missing file": {"", "# Benchmarks\n\n## Rollout\n\nnew table\n"},
		"appended":     {"# Benchmarks\n\n## Health check\n\nfast\n", "# Benchmarks\n\n## Health check\n\nfast\n\n## Rollout\n\nnew table\n"},
		"replaced in the middle": {
			"# B\n\n## Rollout\n\nold\n```sh\n## not a heading\n```\n\n## Proxy\n\nkept\n",
			"# B\n\n## Rollout\n\nnew table\n\n## Proxy\n\nkept\n",
		},
		"replaced at the end": {"# B\n\n## Proxy\n\nkept\n\n## Rollout\n\nold\n", "# B\n\n## Proxy\n\nkept\n\n## Rollout\n\nnew table\n"},
	} {
		path := filepath.Join(t.TempDir(), "benchmarks.md")
		if c.before != "" {
			os.WriteFile(path, []byte(c.before), 0o644)
		}
		if err := replaceSection(path, "## Rollout", section); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != c.after {
			t.Errorf("%s:\n got %q\nwant %q", name, got, c.after)
		}
	}
}

func TestGoal(t *testing.T) {
	ok := []rollout.Result{
		{Variant: "gangway", Scenario: rollout.Rolling, Actions: 2, Load: load.Result{Requests: 100}},
		{Variant: "gangway", Scenario: rollout.Kill9, Actions: 2, Load: load.Result{Requests: 100, Failures: map[string]int64{"h1 eof": 3}}},
		{Variant: "baseline", Scenario: rollout.Rolling, Actions: 2, Load: load.Result{Requests: 100, Failures: map[string]int64{"h1 eof": 3}}},
	}
	if v := goal(ok); !v.met || v.requests != 100 || v.actions != 2 || v.kill9Failures != 3 {
		t.Errorf("goal(%+v) = %+v: kill9 and baseline failures do not count against it", ok, v)
	}
	bad := append(ok, rollout.Result{Variant: "gangway", Scenario: rollout.StopTask, Actions: 1, SigKilled: 1,
		Load: load.Result{Requests: 10, Failures: map[string]int64{"ws close 1006": 1}}})
	v := goal(bad)
	if v.met || !strings.Contains(v.String(), "stoptask: 1 failed requests") || !strings.Contains(v.String(), "SIGKILL") {
		t.Errorf("goal with a stoptask failure: %s", v)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-scenarios", "rolling,nope"},
		{"-variants", "fancy"},
		{"-replicas", "0"},
		{"-delay", "10s", "-drain", "10s", "-stop-timeout", "6s"},
		{"-proxy", "/nonexistent/proxy"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want %d; stderr: %s", args, code, exitUsage, stderr.String())
		}
	}
}

func TestMarkdownCommand(t *testing.T) {
	args := []string{"-replicas", "3", "-proxy", "x/proxy", "-healthcheck=x/hc", "-markdown", "docs/b.md", "-rate", "10"}
	section := markdownSection(rollout.Options{}, "## Rollout", args, time.Now(), "", verdict{})
	if !strings.Contains(section, "go run ./bench/rollout -replicas 3 -rate 10 -markdown docs/benchmarks.md\n") {
		t.Errorf("the reproducing command is not the flags without the paths:\n%s", section)
	}
	args = []string{"-scenarios", "upstream-outage", "-section", "## Rollout: upstream outage", "-markdown", "docs/b.md"}
	section = markdownSection(rollout.Options{}, "## Rollout: upstream outage", args, time.Now(), "", verdict{})
	if !strings.HasPrefix(section, "## Rollout: upstream outage\n") ||
		!strings.Contains(section, `go run ./bench/rollout -scenarios upstream-outage -markdown docs/benchmarks.md -section "## Rollout: upstream outage"`+"\n") {
		t.Errorf("another section's heading and command:\n%s", section)
	}
}

func TestOutageVerdict(t *testing.T) {
	results := []rollout.Result{
		{Variant: "gangway", Scenario: rollout.UpstreamOutage, ReadyAfter: 461 * time.Millisecond, TrafficAfter: 970 * time.Millisecond},
		{Variant: "ready-check", Scenario: rollout.UpstreamOutage, Restarts: 6},
	}
	v := goal(results)
	want := "Gangway: upstream outage: 0 tasks restarted, replicas ready 460ms and traffic through the load balancer 970ms after the upstream's return."
	if !v.met || v.String() != want {
		t.Errorf("verdict %v %q, want met %q", v.met, v.String(), want)
	}
	results[0].Restarts = 2
	if v := goal(results); v.met || !strings.Contains(v.String(), "2 tasks restarted") {
		t.Errorf("restarts with the container probe: verdict %v %q, want not met", v.met, v.String())
	}
}
