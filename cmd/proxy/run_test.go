package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecs/ecstest"
	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/version"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running command.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// writeConfig writes a config whose listeners and admin server use free loopback ports.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gangway.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const testConfig = `
admin:
  address: 127.0.0.1:0
log:
  level: debug
shutdown:
  delay: %s
  drain_timeout: 2s
  deadline: 20s
demo_upstream:
  enabled: true
  address: 127.0.0.1:0
listeners:
  - name: public
    address: 127.0.0.1:0
    readiness_path: /gangway/ready
clusters:
  - name: demo
    endpoints: ["127.0.0.1:1"]
routes:
  - name: all
    cluster: demo
`

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startRun runs `proxy run` in-process and returns the admin address, the signal channel
// and a channel with the exit code.
func startRun(t *testing.T, cfgPath string, extra ...string) (string, chan os.Signal, <-chan probecmd.ExitCode, *syncBuffer) {
	t.Helper()
	return startRunEnv(t, nil, append([]string{"-config", cfgPath}, extra...)...)
}

// startRunEnv runs `proxy run args...` in-process with the environment vars, and returns
// the admin address, the signal channel, a channel with the exit code, and the logs.
func startRunEnv(t *testing.T, vars map[string]string, args ...string) (string, chan os.Signal, <-chan probecmd.ExitCode, *syncBuffer) {
	t.Helper()
	var stderr syncBuffer
	sigs := make(chan os.Signal, 4)
	addrC := make(chan string, 1)
	e := env{stdout: io.Discard, stderr: &stderr, getenv: func(k string) string { return vars[k] }}
	cmd := &RunCommand{env: e, signals: sigs, ready: func(a string) { addrC <- a }}
	code := make(chan probecmd.ExitCode, 1)
	go func() { code <- exited(cmd.Run(context.Background(), args), &stderr) }()
	select {
	case a := <-addrC:
		return a, sigs, code, &stderr
	case c := <-code:
		t.Fatalf("run exited early with %d:\n%s", c, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("run did not start:\n%s", stderr.String())
	}
	return "", nil, nil, nil
}

// expectExit waits up to within for the exit code of a command run by startRun.
func expectExit(t *testing.T, code <-chan probecmd.ExitCode, want probecmd.ExitCode, within time.Duration, logs *syncBuffer) {
	t.Helper()
	select {
	case c := <-code:
		if c != want {
			t.Fatalf("exit %d, want %d:\n%s", c, want, logsOf(logs))
		}
	case <-time.After(within):
		t.Fatalf("did not exit within %v:\n%s", within, logsOf(logs))
	}
}

func logsOf(b *syncBuffer) string {
	if b == nil {
		return "(logs not kept)"
	}
	return b.String()
}

// exited prints a command's error to stderr and returns the exit code runMain gives it.
func exited(err error, stderr io.Writer) probecmd.ExitCode {
	if err != nil {
		fmt.Fprintln(stderr, err)
	}
	return exitCode(err)
}

func waitStatus(t *testing.T, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		// A server still starting refuses connections: keep asking until the deadline.
		code, body := 0, ""
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
		} else {
			body = err.Error()
		}
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d, want %d:\n%s", url, code, want, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRunProbesAndShutdown(t *testing.T) {
	addr, sigs, code, stderr := startRun(t, writeConfig(t, fmt.Sprintf(testConfig, "1500ms")))
	base := "http://" + addr
	waitStatus(t, base+"/startupz", 200)
	body := waitStatus(t, base+"/readyz?verbose", 200)
	for _, want := range []string{"[+]config.build ok", "[+]admin.listener ok"} {
		if !strings.Contains(body, want) {
			t.Errorf("readyz lacks %q:\n%s", want, body)
		}
	}
	if c, _ := httpGet(t, base+"/livez"); c != 200 {
		t.Fatalf("livez = %d", c)
	}
	if c, body := httpGet(t, base+"/metrics"); c != 200 || !strings.Contains(body, `gangway_health_probe_ok{probe="readiness"} 1`) {
		t.Fatalf("metrics = %d:\n%.2000s", c, body)
	}

	sigs <- syscall.SIGTERM
	// Readiness fails at once; the probe server keeps answering during the delay.
	body = waitStatus(t, base+"/readyz", 503)
	if !strings.Contains(body, "[-]shutdown: process is terminating") {
		t.Fatalf("readyz while terminating:\n%s", body)
	}
	if c, _ := httpGet(t, base+"/livez"); c != 200 {
		t.Fatalf("livez while terminating = %d", c)
	}
	expectExit(t, code, 0, 15*time.Second, nil)
	log := stderr.String()
	for _, phase := range []string{`"phase":"delay"`, `"phase":"drain"`, `"phase":"close"`} {
		if !strings.Contains(log, phase) {
			t.Errorf("log lacks %s:\n%s", phase, log)
		}
	}
}

func TestRunSecondSignalExitsAtOnce(t *testing.T) {
	addr, sigs, code, stderr := startRun(t, writeConfig(t, fmt.Sprintf(testConfig, "8s")))
	waitStatus(t, "http://"+addr+"/readyz", 200)
	sigs <- syscall.SIGTERM
	waitStatus(t, "http://"+addr+"/readyz", 503)
	sigs <- syscall.SIGINT
	select {
	case c := <-code:
		if c != 1 {
			t.Fatalf("exit %d after a second signal:\n%s", c, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("a second signal did not end the 8s delay:\n%s", stderr.String())
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	var stderr syncBuffer
	e := env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	path := writeConfig(t, "listeners:\n  - name: x\n    adress: \":80\"\n")
	c := runMain(context.Background(), []string{"run", "-config", path}, e)
	if c != 1 || !strings.Contains(stderr.String(), "gangway.yaml:3") {
		t.Fatalf("exit %d:\n%s", c, stderr.String())
	}
}

func TestUnknownCommandAndFlag(t *testing.T) {
	e := env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	if c := runMain(context.Background(), []string{"bogus"}, e); c != exitUsage {
		t.Fatalf("unknown command exit %d", c)
	}
	if c := runMain(context.Background(), []string{"run", "-bogus"}, e); c != exitUsage {
		t.Fatalf("unknown flag exit %d", c)
	}
	if c := runMain(context.Background(), []string{"health", "-probe", "x"}, e); c != exitUsage {
		t.Fatalf("bad probe exit %d", c)
	}
}

// TestRunTellsATerminalAboutCtrlC: on a terminal (make run), proxy run says how long Ctrl-C
// drains and that a second one exits, and the second one does; logs to a file or a pipe stay
// JSON only.
func TestRunTellsATerminalAboutCtrlC(t *testing.T) {
	var stderr syncBuffer
	sigs := make(chan os.Signal, 4)
	ready := make(chan string, 1)
	cmd := &RunCommand{env: env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }, terminal: true},
		signals: sigs, ready: func(a string) { ready <- a }}
	code := make(chan probecmd.ExitCode, 1)
	go func() {
		code <- exited(cmd.Run(context.Background(), []string{"-config", writeConfig(t, fmt.Sprintf(testConfig, "12s"))}), &stderr)
	}()
	select {
	case <-ready:
	case c := <-code:
		t.Fatalf("exit %d:\n%s", c, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("did not start:\n%s", stderr.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	if want := "Ctrl-C drains: readiness fails at once and requests are still served for 12s (shutdown.delay), then requests in flight get up to 2s (shutdown.drain_timeout); a second Ctrl-C exits at once."; !strings.Contains(stderr.String(), want) {
		t.Errorf("no %q:\n%s", want, stderr.String())
	}
	sigs <- syscall.SIGINT
	for !strings.Contains(stderr.String(), "Ctrl-C again to exit now") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sigs <- syscall.SIGINT
	expectExit(t, code, exitFailure, 5*time.Second, &stderr)
	if !strings.Contains(stderr.String(), "gangway: draining for 12s, then up to 2s for requests in flight; Ctrl-C again to exit now.") {
		t.Errorf("the first Ctrl-C did not say what it does:\n%s", stderr.String())
	}

	// Not a terminal: JSON lines only.
	_, sigs2, code2, stderr2 := startRunEnv(t, nil, "-config", writeConfig(t, fmt.Sprintf(testConfig, "0s")))
	sigs2 <- syscall.SIGINT
	expectExit(t, code2, exitOK, 20*time.Second, stderr2)
	for line := range strings.Lines(stderr2.String()) {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("a line that is not JSON without a terminal: %q", line)
		}
	}
}

// TestBusyListenAddress: a traffic address in use is the first error, naming the address and
// the setting, before the control plane publishes anything the data plane would reject.
func TestBusyListenAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		args    []string
		setting string
	}{
		{"sidecar", map[string]string{"GANGWAY_UPSTREAM": "127.0.0.1:9", "GANGWAY_LISTEN_ADDR": addr}, nil, "($GANGWAY_LISTEN_ADDR)"},
		{"file", nil, []string{"-config", writeConfig(t, strings.Replace(fmt.Sprintf(testConfig, "0s"), "    address: 127.0.0.1:0\n    readiness", "    address: "+addr+"\n    readiness", 1))}, ": listeners[0].address)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"GANGWAY_HEALTH_ADDR": "127.0.0.1:0"}
			maps.Copy(vars, tc.vars)
			var stderr syncBuffer
			e := env{stdout: io.Discard, stderr: &stderr, getenv: func(k string) string { return vars[k] }}
			code := runMain(context.Background(), append([]string{"run"}, tc.args...), e)
			out := stderr.String()
			if code != exitFailure {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			if strings.Contains(out, "xds version") || strings.Contains(out, "probe server listening") {
				t.Errorf("something started before the address was found busy:\n%s", out)
			}
			last := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
			for _, want := range []string{`listener "public" cannot listen on ` + addr, tc.setting, "address already in use", "another process is listening there"} {
				if !strings.Contains(last, want) {
					t.Errorf("the error lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// The version and commit buildBinaries stamps.
const (
	testVersion = "v0.1.0-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// buildBinaries builds bin/proxy and bin/healthcheck as `make build` does, into a temp dir.
func buildBinaries(t *testing.T) (proxy, healthcheck string) {
	t.Helper()
	dir := t.TempDir()
	for _, b := range []struct{ out, pkg string }{{"proxy", "."}, {"healthcheck", "../healthcheck"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", version.LDFlags(testVersion, testCommit), "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return filepath.Join(dir, "proxy"), filepath.Join(dir, "healthcheck")
}

// TestVersionFlags: every way of asking either binary its version prints the version and the
// commit stamped at link time, and exits 0.
func TestVersionFlags(t *testing.T) {
	proxyBin, hcBin := buildBinaries(t)
	for _, tc := range []struct {
		bin  string
		args []string
		want string
	}{
		{proxyBin, []string{"version"}, "gangway proxy"},
		{proxyBin, []string{"--version"}, "gangway proxy"},
		{proxyBin, []string{"-version"}, "gangway proxy"},
		{proxyBin, []string{"health", "-version"}, "gangway proxy"},
		{hcBin, []string{"-version"}, "gangway-healthcheck"},
		{hcBin, []string{"--version"}, "gangway-healthcheck"},
	} {
		code, out := runBin(t, nil, tc.bin, tc.args...)
		want := tc.want + " " + testVersion + " (commit " + testCommit + ")\n"
		if code != exitOK || out != want {
			t.Errorf("%s %v: exit %d, %q; want exit 0, %q", filepath.Base(tc.bin), tc.args, code, out, want)
		}
	}
}

// TestBinariesEndToEnd runs the real binaries with real signals: the healthcheck binary
// and `proxy health` agree with /readyz before and during shutdown, and the container probe
// passes through the drain.
func TestBinariesEndToEnd(t *testing.T) {
	proxyBin, hcBin := buildBinaries(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := writeConfig(t, strings.Replace(fmt.Sprintf(testConfig, "3s"), "address: 127.0.0.1:0\nlog", "address: "+addr+"\nlog", 1))

	var stderr syncBuffer
	proc := exec.Command(proxyBin, "run", "-config", cfg)
	proc.Stderr = &stderr
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- proc.Wait() }()
	t.Cleanup(func() { proc.Process.Kill() })

	probe := func(bin string, args ...string) (probecmd.ExitCode, string) { return runBin(t, nil, bin, args...) }
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, out := probe(hcBin, "-addr", addr)
		if c == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed (%d): %s\n%s", c, out, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, out := probe(proxyBin, "health", "-addr", addr, "-probe", "ready", "-v"); c != 0 || !strings.Contains(out, "[+]config.build ok") {
		t.Fatalf("proxy health = %d:\n%s", c, out)
	}

	proc.Process.Signal(syscall.SIGTERM)
	deadline = time.Now().Add(10 * time.Second)
	for {
		c, out := probe(hcBin, "-addr", addr, "-probe", "ready")
		if c == 1 {
			if !strings.Contains(out, "shutdown") {
				t.Fatalf("healthcheck output while terminating lacks the reason:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck did not report unhealthy while terminating (%d): %s", c, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, out := probe(proxyBin, "health", "-addr", addr, "-probe", "ready"); c != 1 || !strings.Contains(out, "[-]shutdown") {
		t.Fatalf("proxy health while terminating = %d:\n%s", c, out)
	}
	// A draining replica is started and alive: the container check leaves it to finish.
	if c, out := probe(hcBin, "-addr", addr); c != 0 {
		t.Fatalf("healthcheck (container) while terminating = %d:\n%s", c, out)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("proxy exited with %v:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("proxy did not exit:\n%s", stderr.String())
	}
	if c, out := probe(hcBin, "-addr", addr); c != 3 {
		t.Fatalf("healthcheck with nothing listening = %d: %s", c, out)
	}
	if c, out := probe(proxyBin, "health", "-addr", addr); c != 3 {
		t.Fatalf("proxy health with nothing listening = %d: %s", c, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	// A port the test names before the proxy binds it is free only until then. One from
	// the kernel's ephemeral range could be taken meanwhile by any outgoing connection or
	// ":0" listener of a test package running in parallel, so it comes from below that
	// range (Linux's default starts at 32768) and from below the admin port's default
	// (28080), where only a chance pick of another test of this kind can collide.
	for range 100 {
		port := 20000 + rand.IntN(8000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port found between 20000 and 28000 in 100 tries")
	return 0
}

// TestRunSidecarFromEnvironment: with no file, GANGWAY_UPSTREAM and friends configure a
// one-route sidecar, as the CDK construct and task definitions do.
func TestRunSidecarFromEnvironment(t *testing.T) {
	up := startUpstream(t)
	traffic := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	vars := map[string]string{
		"GANGWAY_UPSTREAM":               strings.TrimPrefix(up.URL, "http://"),
		"GANGWAY_LISTEN_ADDR":            traffic,
		"GANGWAY_READY_PATH":             "/ready",
		"GANGWAY_SHUTDOWN_DELAY":         "0",
		"GANGWAY_SHUTDOWN_DRAIN_TIMEOUT": "1s",
		"GANGWAY_SHUTDOWN_DEADLINE":      "5",
	}
	admin, sigs, code, _ := startRunEnv(t, vars, "-admin-addr", "127.0.0.1:0")
	waitStatus(t, "http://"+traffic+"/ready", 200)
	if c, body := httpGet(t, "http://"+traffic+"/"); c != 200 || body != "hello" {
		t.Fatalf("traffic: %d %q", c, body)
	}
	if _, body := httpGet(t, "http://"+admin+"/status"); !strings.Contains(body, "$GANGWAY_UPSTREAM") {
		t.Fatalf("status does not name the source:\n%s", body)
	}
	sigs <- syscall.SIGTERM
	expectExit(t, code, 0, 10*time.Second, nil)
}

// TestRunTaskMetadata serves a recorded task metadata v4 document (the endpoint exists only
// inside an ECS task, so a local server stands in for it) and checks that the task's
// identity reaches /status and the logs.
func TestRunTaskMetadata(t *testing.T) {
	mdURL := ecstest.TaskMetadata(t)
	up := startUpstream(t)
	vars := map[string]string{
		"ECS_CONTAINER_METADATA_URI_V4": mdURL,
		"GANGWAY_UPSTREAM":              strings.TrimPrefix(up.URL, "http://"),
		"GANGWAY_LISTEN_ADDR":           "127.0.0.1:0",
		"GANGWAY_SHUTDOWN_DELAY":        "0",
	}
	admin, sigs, code, stderr := startRunEnv(t, vars, "-admin-addr", "127.0.0.1:0")
	_, body := httpGet(t, "http://"+admin+"/status")
	if !strings.Contains(body, `"ecs.task"`) || !strings.Contains(body, "ecs.task_arn") || !strings.Contains(body, "arn:aws:ecs:") {
		t.Fatalf("status lacks the task identity:\n%s", body)
	}
	if !strings.Contains(stderr.String(), `"ecs_task_arn":"arn:aws:ecs:`) {
		t.Fatalf("logs lack the task identity:\n%s", stderr.String())
	}
	sigs <- syscall.SIGTERM
	select {
	case <-code:
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit")
	}
}
