// Command rollout is Gangway's rollout harness: it rolls real `proxy run` replicas behind a
// real HAProxy under load, the way ECS replaces tasks, and counts every request. Each
// scenario runs with Gangway configured as recommended and with a naive configuration, and
// both tables are printed side by side. `make bench-rollout` runs the full size and records
// the result in docs/benchmarks.md; see that file's "Rollout" section for what counts as a
// failure.
//
//	go run ./bench/rollout -replicas 2 -actions 1 -requests 2000      # a quick look
//	go run ./bench/rollout -scenarios upstream-outage -variants gangway,ready-check
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/rollout"
	"github.com/gangway-ecs/gangway/internal/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the run failed, or -check found failures where the goal allows none
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rollout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o          rollout.Options
		scenarios  = fs.String("scenarios", strings.Join(rollout.AllScenarios, ","), "scenarios to run, in order")
		variants   = fs.String("variants", "gangway,baseline", "gangway, baseline, ready-check (Gangway with the container health check on readiness), comma-separated")
		markdown   = fs.String("markdown", "", "write the results into a section of this Markdown file (-section)")
		section    = fs.String("section", "## Rollout", "the Markdown section -markdown replaces")
		check      = fs.Bool("check", false, "exit 1 unless Gangway failed no request outside kill9 and every action succeeded")
		delay      = fs.Duration("delay", 3*time.Second, "Gangway's shutdown.delay (>= lb-interval*lb-fall + lb-timeout; the default is twice that)")
		drain      = fs.Duration("drain", 3*time.Second, "Gangway's shutdown.drain_timeout")
		quiet      = fs.Bool("q", false, "no progress lines")
		lbInterval = fs.Duration("lb-interval", 500*time.Millisecond, "target group health-check interval")
		lbTimeout  = fs.Duration("lb-timeout", 500*time.Millisecond, "target group health-check timeout")
	)
	fs.StringVar(&o.ProxyBin, "proxy", "bin/proxy", "the proxy binary")
	fs.StringVar(&o.HealthcheckBin, "healthcheck", "bin/healthcheck", "the container health-check binary")
	fs.StringVar(&o.HAProxyBin, "haproxy", "haproxy", "the HAProxy binary")
	fs.StringVar(&o.OutDir, "out", "bench/out/rollout", "directory for generated configurations and logs")
	fs.IntVar(&o.Replicas, "replicas", 3, "replicas in service")
	fs.IntVar(&o.Actions, "actions", 2, "minimum replacements (stops, kills) per scenario")
	fs.Int64Var(&o.Requests, "requests", 20000, "minimum requests of the rolling and stoptask scenarios: they go on replacing replicas until they have them")
	fs.Int64Var(&o.MaxRequests, "max-requests", 0, "cap on the requests of one scenario (default 10,000,000)")
	fs.DurationVar(&o.MaxScenario, "max-scenario", 10*time.Minute, "cap on the time of one scenario")
	fs.IntVar(&o.Load.H1Clients, "h1", 8, "HTTP/1.1 keep-alive clients")
	fs.IntVar(&o.Load.H2Conns, "h2-conns", 2, "HTTP/2 connections")
	fs.IntVar(&o.Load.H2Streams, "h2-streams", 4, "concurrent clients per HTTP/2 connection")
	fs.IntVar(&o.Load.WSClients, "ws", 4, "WebSocket clients")
	fs.Float64Var(&o.Load.Rate, "rate", 0, "HTTP requests per second in all, paced (0: as fast as the clients can)")
	fs.DurationVar(&o.Load.WSInterval, "ws-interval", 10*time.Millisecond, "pause of a WebSocket client between an echo and its next message")
	fs.DurationVar(&o.Load.Timeout, "timeout", 10*time.Second, "timeout of one request or WebSocket round trip")
	fs.IntVar(&o.Load.SlowEvery, "slow-every", 20, "every n-th HTTP request of a client waits -slow-delay upstream (0: none)")
	fs.DurationVar(&o.Load.SlowDelay, "slow-delay", 200*time.Millisecond, "upstream delay of the slow requests")
	fs.IntVar(&o.LBCheck.Rise, "lb-rise", 2, "target group healthy threshold")
	fs.IntVar(&o.LBCheck.Fall, "lb-fall", 2, "target group unhealthy threshold")
	fs.DurationVar(&o.DeregistrationDelay, "dereg-delay", 3*time.Second, "target group deregistration delay")
	fs.DurationVar(&o.ContainerCheck.Interval, "hc-interval", time.Second, "container health check interval")
	fs.DurationVar(&o.ContainerCheck.Timeout, "hc-timeout", 2*time.Second, "container health check timeout")
	fs.IntVar(&o.ContainerCheck.Retries, "hc-retries", 3, "container health check retries")
	fs.DurationVar(&o.ContainerCheck.StartPeriod, "hc-start-period", 10*time.Second, "container health check start period")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 9*time.Second, "container stopTimeout (also shutdown.deadline); at least -delay + -drain + the proxy's shutdown margin")
	fs.DurationVar(&o.StartTimeout, "start-timeout", 60*time.Second, "how long a new replica may take to be in service")
	fs.DurationVar(&o.Outage, "outage", 20*time.Second, "how long the upstream fails in the upstream-outage scenario")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	o.LBCheck.Interval, o.LBCheck.Timeout = *lbInterval, *lbTimeout
	o.Scenarios = splitList(*scenarios)
	for _, s := range o.Scenarios {
		if rollout.Describe(s) == "" {
			fmt.Fprintf(stderr, "rollout: unknown scenario %q (known: %s)\n", s, strings.Join(rollout.AllScenarios, ", "))
			return exitUsage
		}
	}
	for _, v := range splitList(*variants) {
		switch v {
		case "gangway":
			o.Variants = append(o.Variants, rollout.Gangway(*delay, *drain))
		case "baseline":
			o.Variants = append(o.Variants, rollout.Baseline())
		case "ready-check":
			o.Variants = append(o.Variants, rollout.ReadinessCheck(*delay, *drain))
		default:
			fmt.Fprintf(stderr, "rollout: unknown variant %q (gangway, baseline, ready-check)\n", v)
			return exitUsage
		}
	}
	if o.Replicas < 1 || o.Actions < 1 {
		fmt.Fprintln(stderr, "rollout: -replicas and -actions must be at least 1")
		return exitUsage
	}
	if detect := time.Duration(o.LBCheck.Fall)*o.LBCheck.Interval + o.LBCheck.Timeout; *delay < detect {
		fmt.Fprintf(stderr, "rollout: warning: -delay %s is shorter than the load balancer's detection time %s (lb-interval × lb-fall + lb-timeout): Gangway's timing budget is not met\n", *delay, detect)
	}
	if *delay+*drain+config.ShutdownMargin > o.StopTimeout {
		fmt.Fprintf(stderr, "rollout: -delay + -drain + %s must fit -stop-timeout (%s): the proxy refuses such a configuration\n", config.ShutdownMargin, o.StopTimeout)
		return exitUsage
	}
	for _, bin := range []string{o.ProxyBin, o.HealthcheckBin} {
		if _, err := os.Stat(bin); err != nil {
			fmt.Fprintf(stderr, "rollout: %v (run make build)\n", err)
			return exitUsage
		}
	}
	if _, err := exec.LookPath(o.HAProxyBin); err != nil {
		fmt.Fprintf(stderr, "rollout: %v (run scripts/apt-install.sh haproxy)\n", err)
		return exitUsage
	}
	if !*quiet {
		o.Log = stderr
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "rollout:", err)
		return exitFailed
	}

	began := time.Now()
	results, err := rollout.Run(ctx, o)
	var out bytes.Buffer
	rollout.Table(&out, results)
	rollout.OutageTable(&out, results, o.Outage)
	fmt.Fprintln(&out)
	rollout.Details(&out, results)
	stdout.Write(out.Bytes())
	if err != nil {
		fmt.Fprintln(stderr, "rollout:", err)
		return exitFailed
	}
	verdict := goal(results)
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, verdict.String())

	if *markdown != "" {
		text := markdownSection(o, *section, args, began, out.String(), verdict)
		if err := replaceSection(*markdown, *section, text); err != nil {
			fmt.Fprintln(stderr, "rollout:", err)
			return exitFailed
		}
		fmt.Fprintf(stderr, "rollout: wrote the results to %s\n", *markdown)
	}
	if *check && !verdict.met {
		return exitFailed
	}
	return exitOK
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// verdict is the goal of the rollout harness, checked on Gangway's results: no failure in
// any scenario but kill9, and every action done. Requests and actions are counted outside
// kill9, whose failures are expected and reported on their own.
type verdict struct {
	met                bool
	requests, failures int64
	actions            int
	kill9Requests      int64
	kill9Failures      int64
	outages            []string // the upstream-outage results, one sentence each
	problems           []string
}

func goal(results []rollout.Result) verdict {
	v := verdict{}
	seen := false
	for _, r := range results {
		if r.Variant != "gangway" {
			continue
		}
		seen = true
		for _, e := range r.Errors {
			v.problems = append(v.problems, r.Scenario+": "+e)
		}
		if r.Scenario == rollout.Kill9 {
			v.kill9Requests += r.Load.Requests
			v.kill9Failures += r.Load.Failed()
			continue
		}
		if r.Scenario == rollout.UpstreamOutage {
			// Requests fail while the upstream is down; the goal is that no task is
			// restarted and that traffic flows again once it is back.
			v.outages = append(v.outages, fmt.Sprintf("upstream outage: %d tasks restarted, replicas ready %s and traffic through the load balancer %s after the upstream's return",
				r.Restarts, r.ReadyAfter.Round(10*time.Millisecond), r.TrafficAfter.Round(10*time.Millisecond)))
			if r.Restarts > 0 {
				v.problems = append(v.problems, fmt.Sprintf("%s: %d tasks restarted", r.Scenario, r.Restarts))
			}
			if r.TrafficAfter < 0 {
				v.problems = append(v.problems, r.Scenario+": traffic did not recover")
			}
			continue
		}
		v.requests += r.Load.Requests
		v.actions += r.Actions
		v.failures += r.Load.Failed()
		if r.Load.Failed() > 0 {
			v.problems = append(v.problems, fmt.Sprintf("%s: %d failed requests", r.Scenario, r.Load.Failed()))
		}
		if r.SigKilled > 0 {
			v.problems = append(v.problems, fmt.Sprintf("%s: %d replicas needed SIGKILL", r.Scenario, r.SigKilled))
		}
	}
	if !seen {
		v.problems = append(v.problems, "Gangway did not run")
	}
	v.met = len(v.problems) == 0
	return v
}

func (v verdict) String() string {
	kill9 := ""
	if v.kill9Requests > 0 {
		kill9 = fmt.Sprintf("; kill9: %d of %d requests failed", v.kill9Failures, v.kill9Requests)
	}
	outages := strings.Join(v.outages, "; ")
	if v.met && v.requests == 0 && outages != "" {
		return "Gangway: " + outages + "."
	}
	if outages != "" {
		kill9 += "; " + outages
	}
	if v.met {
		return fmt.Sprintf("Gangway: 0 failed requests in %d requests and %d actions outside kill9%s.", v.requests, v.actions, kill9)
	}
	return fmt.Sprintf("Gangway: goal not met (%d failed of %d requests, %d actions outside kill9%s): %s.",
		v.failures, v.requests, v.actions, kill9, strings.Join(v.problems, "; "))
}

func markdownSection(o rollout.Options, heading string, args []string, began time.Time, tables string, v verdict) string {
	var b strings.Builder
	// The command shown leaves out where the binaries and the results go: make
	// bench-rollout runs copies of bin/proxy and bin/healthcheck, which are the defaults.
	cmd := "go run ./bench/rollout"
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		switch name {
		case "markdown", "section", "proxy", "healthcheck":
			if !hasValue {
				i++ // and its value
			}
		default:
			cmd += " " + args[i]
		}
	}
	fmt.Fprintf(&b, "%s\n\n", heading)
	reproduce := "`make bench-rollout`"
	if heading != "## Rollout" {
		reproduce = "`scripts/bench-rollout.sh` with the flags below that follow `-max-scenario 10m`"
	}
	fmt.Fprintf(&b, "Recorded on %s with %s, on %d cores (%s, shared), HAProxy %s, %s. Reproduce with %s, which installs HAProxy, builds `bin/proxy` and `bin/healthcheck`, and runs:\n\n",
		began.UTC().Format("2006-01-02"), proxyVersion(o.ProxyBin), runtime.NumCPU(), cpuModel(), haproxyVersion(o.HAProxyBin), runtime.Version(), reproduce)
	mdFlags := "-markdown docs/benchmarks.md"
	if heading != "## Rollout" {
		mdFlags += fmt.Sprintf(" -section %q", heading)
	}
	fmt.Fprintf(&b, "```sh\n%s %s\n```\n\n", cmd, mdFlags)
	fmt.Fprintf(&b, "%d replicas of `bin/proxy run` behind HAProxy (target group: GET readiness path every %s, timeout %s, rise %d, fall %d; deregistration delay %s; HAProxy does not retry, like an ALB), in front of an HTTP and WebSocket echo upstream. ",
		o.Replicas, o.LBCheck.Interval, o.LBCheck.Timeout, o.LBCheck.Rise, o.LBCheck.Fall, o.DeregistrationDelay)
	fmt.Fprintf(&b, "The ECS agent's part: container health check `bin/healthcheck` every %s (timeout %s, retries %d, start period %s), stopTimeout %s. ",
		o.ContainerCheck.Interval, o.ContainerCheck.Timeout, o.ContainerCheck.Retries, o.ContainerCheck.StartPeriod, o.StopTimeout)
	for _, va := range o.Variants {
		switch va.Name {
		case "gangway":
			fmt.Fprintf(&b, "Gangway: shutdown.delay %s, drain_timeout %s, deadline %s; the load balancer asks for readiness, the container health check for the container probe (`-probe container`: started and alive); ECS waits for the target to be healthy before draining the old one. ",
				va.Delay, va.Drain, o.StopTimeout)
		case "ready-check":
			fmt.Fprintf(&b, "ready-check: Gangway, but the container health check asks for readiness (`-probe ready`), the mistake the container probe exists to avoid. ")
		case "baseline":
			fmt.Fprintf(&b, "Baseline (naive): readiness is liveness (HAProxy checks `/livez`, the container health check asks for liveness), shutdown.delay 0s, drain_timeout 0s, and the old replica is drained as soon as the new container is healthy. ")
		}
	}
	for _, s := range o.Scenarios {
		if s == rollout.UpstreamOutage {
			fmt.Fprintf(&b, "The upstream's outage lasts %s; each replica's proxy checks it every 1s (healthy threshold 1, unhealthy threshold 3). ", o.Outage)
		}
	}
	fmt.Fprintf(&b, "\n\n")
	pace := "as fast as they can"
	if o.Load.Rate > 0 {
		pace = fmt.Sprintf("paced to %.0f HTTP requests/s in all", o.Load.Rate)
	}
	fmt.Fprintf(&b, "Load: %d HTTP/1.1 keep-alive clients and %d HTTP/2 (h2c) connections × %d streams, %s, and %d WebSocket clients sending a message %s after each echo; 1 in %d HTTP requests waits %s upstream; timeout %s. ",
		o.Load.H1Clients, o.Load.H2Conns, o.Load.H2Streams, pace, o.Load.WSClients, o.Load.WSInterval, o.Load.SlowEvery, o.Load.SlowDelay, o.Load.Timeout)
	fmt.Fprintf(&b, "Scenarios:\n\n")
	for _, s := range o.Scenarios {
		fmt.Fprintf(&b, "- `%s`: %s.\n", s, rollout.Describe(s))
	}
	fmt.Fprintf(&b, "\nA failure is any HTTP response other than 200 with the exact echoed body, any connection error or timeout, any failed WebSocket dial, and any WebSocket that ends other than with a close frame 1000 or 1001 or whose echo differs. Not failures, but counted: a request that Go's transport retried on a new connection because the reused one was closed before any response byte (GET, or a body never written); a WebSocket closed with 1001 \"going away\", after which the client reconnects and sends the unanswered message again. The p99 is of successful HTTP requests, without the delay a slow request asked the upstream for. In the details, `http/<NOSRV>: 0 PR--` is HAProxy's record of the HTTP/2 connections that the clients close when a scenario's load stops, with no request on them. Each variant's configurations, logs, HAProxy's log and a `timeline.log` of every replica's phases and load-balancer status are left in `bench/out/rollout/`.\n\n")
	b.WriteString(tables)
	fmt.Fprintf(&b, "\n%s\n", v.String())
	return b.String()
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

// proxyVersion is what `proxy version` prints: "gangway proxy <commit>".
func proxyVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "bin/proxy (unknown version)"
	}
	return "`" + strings.TrimSpace(string(out)) + "`"
}

func haproxyVersion(bin string) string {
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return "(unknown version)"
	}
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return f[2]
	}
	return "(unknown version)"
}

// replaceSection replaces the section that starts with the line heading, up to the next
// heading of the same level, with section; or appends it. The rest of the file is kept.
func replaceSection(path, heading, section string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(data)
	if doc == "" {
		doc = "# Benchmarks\n"
	}
	section = strings.TrimRight(section, "\n") + "\n"
	lines := strings.SplitAfter(doc, "\n")
	start, end := -1, len(lines)
	inFence := false
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		if strings.HasPrefix(t, "```") {
			inFence = !inFence
		}
		if inFence {
			continue
		}
		if start < 0 && t == heading {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(t, "## ") {
			end = i
			break
		}
	}
	var out string
	if start < 0 {
		out = strings.TrimRight(doc, "\n") + "\n\n" + section
	} else {
		before := strings.Join(lines[:start], "")
		after := strings.Join(lines[end:], "")
		if after != "" {
			section += "\n"
		}
		out = before + section + after
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
