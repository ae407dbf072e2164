//go:build linux

package hook

// The readiness hook's row of the contract suite (docs/architecture.md, "Contracts"): the
// hook configured exactly as the construct configures it (the function's environment in the
// synthesized template) against a real `proxy run` configured exactly as the construct
// configures the Gangway container, through a stand-in for the load balancer's test listener
// that routes as the template's listener rules do. The AWS calls of the capacity check go to
// awsFake, answering from the template's production rule and service.
//
// The templates are read as cdk/cmd/ecs-input renders them (one directory per template), from
// the directory GANGWAY_CDK_ECS_INPUT names; `make cdk-contracts` writes and names it. The
// proxy and its application run in a network namespace of their own (a task's awsvpc
// network), so the ports are the template's, which needs root, unshare, nsenter and ip.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/nstest"
)

const envCDKInput = "GANGWAY_CDK_ECS_INPUT"

// rendered is one template as ecs-input wrote it: each file decoded, by logical ID.
type rendered struct {
	dir                                       string
	functions, listeners, rules, targetGroups map[string]map[string]any
	taskDefs, services                        map[string]map[string]any
}

func readRendered(t *testing.T, dir string) rendered {
	t.Helper()
	r := rendered{dir: dir}
	for prefix, dst := range map[string]*map[string]map[string]any{
		"function": &r.functions, "listener": &r.listeners, "rule": &r.rules, "target-group": &r.targetGroups,
		"taskdef": &r.taskDefs, "service": &r.services,
	} {
		*dst = map[string]map[string]any{}
		files, _ := filepath.Glob(filepath.Join(dir, prefix+"-*.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			(*dst)[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), prefix+"-"), ".json")] = v
		}
	}
	return r
}

// hookEnv is the environment of the template's readiness hook function, if it has one.
func (r rendered) hookEnv() (map[string]string, bool) {
	for _, fn := range r.functions {
		vars, _ := dig(fn, "Environment", "Variables").(map[string]any)
		if _, ok := vars[EnvURL]; !ok {
			continue
		}
		env := map[string]string{}
		for k, v := range vars {
			env[k] = fmt.Sprint(v)
		}
		return env, true
	}
	return nil, false
}

// dig walks nested objects.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func num(v any) int { f, _ := v.(float64); return int(f) }

// rule is a listener rule as the load balancer evaluates it.
type rule struct {
	id         string
	priority   int
	conditions []any
	forward    map[string]int // target group → weight
}

// forwards returns an action list's target groups and weights.
func forwards(actions any) map[string]int {
	out := map[string]int{}
	for _, a := range actions.([]any) {
		if tgs, ok := dig(a, "ForwardConfig", "TargetGroups").([]any); ok {
			for _, tg := range tgs {
				out[fmt.Sprint(dig(tg, "TargetGroupArn"))] += num(dig(tg, "Weight"))
			}
		} else if tg, ok := dig(a, "TargetGroupArn").(string); ok {
			out[tg] = 1
		}
	}
	return out
}

// listenerRules are the rules of a listener, in the order the load balancer evaluates them.
func (r rendered) listenerRules(listener string) []rule {
	var out []rule
	for id, rl := range r.rules {
		if dig(rl, "ListenerArn") == listener {
			conds, _ := dig(rl, "Conditions").([]any)
			out = append(out, rule{id: id, priority: num(dig(rl, "Priority")), conditions: conds, forward: forwards(dig(rl, "Actions"))})
		}
	}
	slices.SortFunc(out, func(a, b rule) int { return a.priority - b.priority })
	return out
}

// glob is a listener rule's wildcard match (* any run, ? one character), case-insensitive
// for headers, as Elastic Load Balancing documents it.
func glob(pattern, s string, fold bool) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	if fold {
		re = "(?i)" + re
	}
	return regexp.MustCompile(re).MatchString(s)
}

// matches reports whether a request meets every condition of a rule. Only the conditions
// the construct uses are known; any other fails the test.
func (rl rule) matches(t *testing.T, r *http.Request) bool {
	for _, c := range rl.conditions {
		switch field := dig(c, "Field"); field {
		case "path-pattern":
			vals, _ := dig(c, "PathPatternConfig", "Values").([]any)
			if !slices.ContainsFunc(vals, func(v any) bool { return glob(fmt.Sprint(v), r.URL.Path, false) }) {
				return false
			}
		case "http-header":
			name := fmt.Sprint(dig(c, "HttpHeaderConfig", "HttpHeaderName"))
			vals, _ := dig(c, "HttpHeaderConfig", "Values").([]any)
			if !slices.ContainsFunc(vals, func(v any) bool {
				return slices.ContainsFunc(r.Header.Values(name), func(h string) bool { return glob(fmt.Sprint(v), h, true) })
			}) {
				return false
			}
		default:
			t.Errorf("rule %s: condition %v: not known to this stand-in for the load balancer", rl.id, field)
			return false
		}
	}
	return true
}

// netns is a network namespace with loopback up: a task's network. A holder process keeps it
// alive; processes join it with nsenter, the test's sockets from a thread that joined it.
type netns struct {
	t      *testing.T
	holder *exec.Cmd
	ns     *os.File
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the proxy runs in a network namespace of its own (the task's ports as synthesized), which needs root")
	}
	holder := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep 600")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare (util-linux) and ip (iproute2) are needed: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	line := make([]byte, 3)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "up\n" {
		t.Fatalf("network namespace not set up: %q %v", line, err)
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return &netns{t: t, holder: holder, ns: ns}
}

func (n *netns) inside(f func() error) error { return nstest.Do(n.ns, f) }

func (n *netns) serve(addr string, h http.Handler) {
	n.t.Helper()
	var ln net.Listener
	if err := n.inside(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		n.t.Fatalf("listen %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	n.t.Cleanup(func() { srv.Close() })
}

func (n *netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.inside(func() (err error) { c, err = (&net.Dialer{}).DialContext(ctx, network, addr); return err })
	return c, err
}

// start runs bin in the namespace with exactly env until the test ends.
func (n *netns) start(env map[string]string, bin string, args ...string) *exec.Cmd {
	n.t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(n.holder.Process.Pid), "--net", "--", bin}, args...)...)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &strings.Builder{}
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	// No Pdeathsig: it fires when the thread that started the process ends, and the threads
	// that join the namespace end with their goroutines; the cleanup kills it instead.
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if n.t.Failed() {
			mu.Lock()
			n.t.Logf("%s %q:\n%s", filepath.Base(bin), args, logs.String())
			mu.Unlock()
		}
	})
	return cmd
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// buildProxy builds the proxy from the main module, beside this one.
func buildProxy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "proxy")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/proxy")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the proxy: %v\n%s", err, out)
	}
	return bin
}

// gangwayContainer is the task definition's container whose health check runs the image's
// probe, with its command and environment.
func gangwayContainer(t *testing.T, r rendered) (command []string, env map[string]string) {
	t.Helper()
	for _, td := range r.taskDefs {
		for _, c := range dig(td, "containerDefinitions").([]any) {
			hc, _ := dig(c, "healthCheck", "command").([]any)
			if len(hc) < 2 || hc[1] != "/healthcheck" {
				continue
			}
			for _, a := range dig(c, "command").([]any) {
				command = append(command, fmt.Sprint(a))
			}
			env = map[string]string{}
			for _, kv := range dig(c, "environment").([]any) {
				env[fmt.Sprint(dig(kv, "name"))] = fmt.Sprint(dig(kv, "value"))
			}
			return command, env
		}
	}
	t.Fatalf("%s: no container's health check runs /healthcheck", r.dir)
	return nil, nil
}

// TestContractHookAgainstProxy is the row "cdk readiness hook → proxy run through the test
// listener": for every synthesized template with a readiness hook.
func TestContractHookAgainstProxy(t *testing.T) {
	root := os.Getenv(envCDKInput)
	if root == "" {
		t.Skipf("%s is not set: `make cdk-contracts` (part of make cdk-test and make test) synthesizes the templates, renders them and runs this row", envCDKInput)
	}
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("%s: %v", envCDKInput, err)
	}
	proxyBin := buildProxy(t)
	ran := 0
	for _, d := range dirs {
		r := readRendered(t, filepath.Join(root, d.Name()))
		env, ok := r.hookEnv()
		if !ok {
			continue
		}
		ran++
		t.Run(d.Name(), func(t *testing.T) {
			hookAgainstProxy(t, r, env, proxyBin)
		})
	}
	if ran == 0 {
		t.Fatalf("%s=%s: no template has a readiness hook function", envCDKInput, root)
	}
}

func hookAgainstProxy(t *testing.T, r rendered, hookEnv map[string]string, proxyBin string) {
	cfg, err := FromEnv(func(k string) string { return hookEnv[k] })
	if err != nil {
		t.Fatalf("the synthesized hook environment: %v", err)
	}

	// The test listener: the one on the readiness URL's port, of the load balancer the URL
	// names (the template's stand-in for the load balancer's DNS name is "<ID>.DNSName").
	u, err := url.Parse(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	var listener string
	for id, l := range r.listeners {
		if num(dig(l, "Port")) == port && fmt.Sprint(dig(l, "LoadBalancerArn"))+".DNSName" == u.Hostname() {
			listener = id
		}
	}
	if listener == "" || u.Scheme != strings.ToLower(fmt.Sprint(dig(r.listeners[listener], "Protocol"))) {
		t.Fatalf("%s=%s: no %s listener of that load balancer on port %d", EnvURL, cfg.URL, u.Scheme, port)
	}
	rules := r.listenerRules(listener)

	// The task: the Gangway container's command and environment as synthesized, its
	// application where that environment sends traffic.
	command, env := gangwayContainer(t, r)
	appAddr, err := nstest.AppAddr(env)
	if err != nil {
		t.Fatal(err)
	}
	task := newNetns(t)
	var appStatus atomic.Int64
	appStatus.Store(http.StatusOK)
	// The application answers its own routes (the smoke checks' paths) and 404 elsewhere, as
	// an application does: a readiness probe that reaches it instead of the proxy's
	// readiness fails.
	task.serve(appAddr, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !slices.ContainsFunc(cfg.Smoke, func(sc SmokeCheck) bool { return sc.Path == req.URL.RequestURI() }) {
			http.Error(w, "app: no route "+req.URL.Path, http.StatusNotFound)
			return
		}
		w.WriteHeader(int(appStatus.Load()))
		fmt.Fprintln(w, "app")
	}))
	proxy := task.start(env, proxyBin, command...)

	// The test listener's stand-in, in the task's network on the listener's port: each request
	// goes to the first rule (by priority) it matches, forwarded to the target group with
	// weight, on the group's port; a request no rule matches gets the default action, which
	// forwards to no task (the construct's NoRoute): 404.
	var routed sync.Map // rule ID → *atomic.Int64
	count := func(id string) int64 {
		v, _ := routed.LoadOrStore(id, new(atomic.Int64))
		return v.(*atomic.Int64).Load()
	}
	task.serve(fmt.Sprintf("127.0.0.1:%d", port), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		for _, rl := range rules {
			if !rl.matches(t, req) {
				continue
			}
			v, _ := routed.LoadOrStore(rl.id, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			for tg, weight := range rl.forward {
				if weight == 0 {
					continue
				}
				target := &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", num(dig(r.targetGroups[tg], "Port")))}
				rp := httputil.NewSingleHostReverseProxy(target)
				rp.Transport = &http.Transport{DialContext: task.dial, DisableKeepAlives: true}
				rp.ErrorLog = log.New(io.Discard, "", 0) // a refused target is the 502 the hook reports
				rp.ServeHTTP(w, req)
				return
			}
			http.Error(w, "rule "+rl.id+" forwards to no target group with weight", http.StatusServiceUnavailable)
			return
		}
		http.Error(w, "no rule of the test listener matched", http.StatusNotFound)
	}))

	// The hook's requests reach the test listener only when they name its load balancer and
	// port: the load balancer's DNS name resolves there, and nothing else is reachable.
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != u.Host {
				return nil, fmt.Errorf("dial %s: only the test listener %s is reachable", addr, u.Host)
			}
			return task.dial(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
		}},
	}
	first := time.Now()
	now := first
	hook := func(c Config) *Hook {
		return &Hook{Config: c, Client: client, Now: func() time.Time { return now },
			Sleep: func(context.Context, time.Duration) error { return nil }} // the probe interval is not the contract
	}
	shift := Event{LifecycleStage: StagePostTestTrafficShift}
	verdict := func(c Config) (inProgress, final Response) {
		t.Helper()
		now = first
		inProgress, err := hook(c).Handle(context.Background(), shift)
		if err != nil {
			t.Fatal(err)
		}
		if inProgress.HookStatus == StatusSucceeded {
			return inProgress, inProgress
		}
		now = first.Add(c.Deadline)
		final, err = hook(c).Handle(context.Background(), Event{LifecycleStage: StagePostTestTrafficShift, HookDetails: inProgress.HookDetails})
		if err != nil {
			t.Fatal(err)
		}
		return inProgress, final
	}

	// Ready, and the smoke checks answer as expected: SUCCEEDED, every probe through a rule.
	var ready Response
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ready, _ = verdict(cfg); ready.HookStatus == StatusSucceeded || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ready.HookStatus != StatusSucceeded {
		t.Fatalf("proxy ready, application answering 200: hook %s (%s), want %s", ready.HookStatus, ready.Reason, StatusSucceeded)
	}
	total := int64(0)
	for _, rl := range rules {
		total += count(rl.id)
	}
	if total == 0 {
		t.Fatalf("the hook succeeded, yet no request matched a rule of the test listener %s", listener)
	}

	// A revision whose application answers 5xx: the smoke checks fail it.
	if len(cfg.Smoke) > 0 {
		appStatus.Store(http.StatusInternalServerError)
		wait, failed := verdict(cfg)
		if wait.HookStatus != StatusInProgress || failed.HookStatus != StatusFailed || !strings.Contains(failed.Reason, "smoke check") {
			t.Errorf("application answering 500: hook %s then %s (%s), want %s then %s naming the smoke check",
				wait.HookStatus, failed.HookStatus, failed.Reason, StatusInProgress, StatusFailed)
		}
		appStatus.Store(http.StatusOK)
	}

	// The test listener forwards only requests with the header: without it the probes never
	// reach the proxy.
	if cfg.Header != "" {
		wrong := cfg
		wrong.HeaderValue += "-other"
		if _, failed := verdict(wrong); failed.HookStatus != StatusFailed || !strings.Contains(failed.Reason, "404") {
			t.Errorf("header %s with another value: hook %s (%s), want %s with the listener's 404", cfg.Header, failed.HookStatus, failed.Reason, StatusFailed)
		}
	}

	// Capacity at POST_SCALE_UP, through the SDK against the fake: the production rule the
	// hook names, its weights, the desired count of the template's service.
	if cfg.ProductionRule != "" {
		capacity(t, r, cfg, hook)
	}

	// A task that is not ready (draining after SIGTERM, within its shutdown delay): FAILED.
	if err := proxy.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wait, failed := verdict(cfg)
	if wait.HookStatus != StatusInProgress || failed.HookStatus != StatusFailed || !strings.Contains(failed.Reason, "503") {
		t.Errorf("proxy draining: hook %s then %s (%s), want %s then %s with the proxy's 503",
			wait.HookStatus, failed.HookStatus, failed.Reason, StatusInProgress, StatusFailed)
	}
}

// capacity runs the hook's POST_SCALE_UP check with the synthesized environment against
// awsFake answering from the template: the rule GANGWAY_PRODUCTION_RULE names (a custom
// rule's ARN is "<ID>.Rules.0.RuleArn"), the target groups, the service's desired count.
func capacity(t *testing.T, r rendered, cfg Config, hook func(Config) *Hook) {
	t.Helper()
	rules := map[string]map[string]int{}
	for id, rl := range r.rules {
		rules[id+".Rules.0.RuleArn"] = forwards(dig(rl, "Actions"))
	}
	if len(r.services) != 1 {
		t.Fatalf("%s: %d services, want 1", r.dir, len(r.services))
	}
	var service map[string]any
	for _, s := range r.services {
		service = s
	}
	desired := num(dig(service, "desiredCount"))
	if desired == 0 {
		desired = 1 // CloudFormation's default
	}
	serviceARN := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:service/%s/%s", dig(service, "cluster"), "web")
	targets := map[string][]Target{}
	for tg := range r.targetGroups {
		for i := range desired {
			targets[tg] = append(targets[tg], Target{ID: fmt.Sprintf("10.0.%d.%d", i, i+5), State: "healthy"})
		}
	}
	fake := newAWSFake(t, rules, targets, map[string]int{serviceARN: desired})
	h := hook(cfg)
	h.Fleet = fake.fleet(cfg.ProductionRule)
	ev := Event{ExecutionDetails: &ExecutionDetails{LifecycleStage: StagePostScaleUp, ServiceARN: serviceARN}}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.HookStatus != StatusSucceeded {
		t.Fatalf("POST_SCALE_UP, %d of %d desired tasks healthy: hook %s (%s); AWS calls %q", desired, desired, resp.HookStatus, resp.Reason, fake.log())
	}
	// The idle group (no production weight) is the one asked about, and it is one of the
	// production rule's two groups.
	weights := rules[cfg.ProductionRule]
	var asked []string
	for _, c := range fake.log() {
		if g, ok := strings.CutPrefix(c, "DescribeTargetHealth "); ok {
			asked = append(asked, g)
		}
	}
	if len(asked) != 1 || weights[asked[0]] != 0 || !slices.Contains(cfg.TargetGroups, asked[0]) {
		t.Errorf("DescribeTargetHealth asked about %q; the production rule's weights are %v, the hook's groups %v", asked, weights, cfg.TargetGroups)
	}
	// One target short of the desired count: not yet.
	idle := asked[0]
	targets[idle][0].State = "unhealthy"
	if resp, _ := h.Handle(context.Background(), ev); resp.HookStatus != StatusInProgress {
		t.Errorf("POST_SCALE_UP, one new task unhealthy: hook %s (%s), want %s", resp.HookStatus, resp.Reason, StatusInProgress)
	}
}
