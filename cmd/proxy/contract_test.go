//go:build linux

package main

// The contract suite: Gangway's parts configure each other (task definitions write the
// proxy's environment, the target group asks its readiness path, the healthcheck binary
// finds its probe server, data planes and stock Envoys find the control plane, make install
// lays out what the systemd unit runs), so each pair runs here with the producer's exact
// output fed to its consumer. Every row is named "producer → consumer"; a new producer or
// consumer adds its row, and docs/architecture.md ("Contracts") lists them.
//
// Each task runs in a network and mount namespace of its own, as awsvpc gives every task its
// own network: the task definitions' fixed ports (8080, 28080, 18000, the app's 80) are used
// as shipped, without colliding with each other or with anything else on the machine, and
// the names a task dials are mapped in that task's /etc/hosts.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/nstest"
	"github.com/gangway-ecs/gangway/internal/probecmd"
)

const repoRoot = "../.."

// imageFiles maps the files the task definitions name inside the image to the repository
// files the image carries there (taskdefs/README.md: build FROM the image and COPY them in).
func imageFiles() map[string]string {
	return map[string]string{
		"/etc/gangway/control.yaml": "docs/examples/split-control.yaml",
		"/etc/gangway/proxy.yaml":   "docs/examples/split-proxy.yaml",
	}
}

// The image's paths: the proxy is the entrypoint, the probe sits next to it.
const (
	imageProxy       = "/proxy"
	imageHealthcheck = "/healthcheck"
)

// taskDef is the part of a task definition file the contracts read.
type taskDef struct {
	path                 string
	Family               string
	ContainerDefinitions []containerDef
}

type containerDef struct {
	Name         string
	Command      []string
	Environment  []struct{ Name, Value string }
	PortMappings []struct{ ContainerPort int }
	HealthCheck  *struct{ Command []string }
}

func readTaskDef(t *testing.T, path string) *taskDef {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	td := &taskDef{path: path}
	if err := json.Unmarshal(data, td); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return td
}

// gangway is the container whose health check runs the image's probe binary.
func (td *taskDef) gangway(t *testing.T) *containerDef {
	t.Helper()
	for i, c := range td.ContainerDefinitions {
		if c.HealthCheck != nil && len(c.HealthCheck.Command) >= 2 && c.HealthCheck.Command[1] == imageHealthcheck {
			return &td.ContainerDefinitions[i]
		}
	}
	t.Fatalf("%s: no container's health check runs %s", td.path, imageHealthcheck)
	return nil
}

// app is the other container that maps a port: the application the proxy fronts.
func (td *taskDef) app(gw *containerDef) *containerDef {
	for i, c := range td.ContainerDefinitions {
		if c.Name != gw.Name && len(c.PortMappings) > 0 {
			return &td.ContainerDefinitions[i]
		}
	}
	return nil
}

// env is the container's environment as the proxy in the image sees it: files named inside
// the image become the repository files the image carries.
func (c *containerDef) env(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range c.Environment {
		m[kv.Name] = kv.Value
	}
	if f := m[config.EnvConfigFile]; f != "" {
		local, ok := imageFiles()[f]
		if !ok {
			t.Fatalf("container %s: %s=%s is not a file the image carries (imageFiles)", c.Name, config.EnvConfigFile, f)
		}
		abs, err := filepath.Abs(filepath.Join(repoRoot, local))
		if err != nil {
			t.Fatal(err)
		}
		m[config.EnvConfigFile] = abs
	}
	return m
}

func environ(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// targetGroup is the shipped target group: the port and path its health check asks.
func targetGroup(t *testing.T) (port int, path string) {
	t.Helper()
	var doc struct {
		TargetGroups []struct {
			Port            int
			HealthCheckPort string
			HealthCheckPath string
		}
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "taskdefs/settings/target-group.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil || len(doc.TargetGroups) != 1 {
		t.Fatalf("taskdefs/settings/target-group.json: %v (%d groups)", err, len(doc.TargetGroups))
	}
	tg := doc.TargetGroups[0]
	port = tg.Port
	if tg.HealthCheckPort != "traffic-port" {
		if port, err = strconv.Atoi(tg.HealthCheckPort); err != nil {
			t.Fatalf("HealthCheckPort %q: %v", tg.HealthCheckPort, err)
		}
	}
	return port, tg.HealthCheckPath
}

// netTask is one task's network: a network and mount namespace with loopback up, the extra
// addresses given on it, and an /etc/hosts naming the hosts given. A holder process keeps the
// namespaces alive; processes join them with nsenter, and the test's own sockets are opened
// from a thread that has joined the network namespace.
type netTask struct {
	t      *testing.T
	name   string
	procs  procStarter
	holder *exec.Cmd
	netns  *os.File
}

// procStarter starts processes from one locked thread that lives as long as the suite: their
// parent-death signal (Pdeathsig) fires when the thread that started them ends, and the
// threads that join a task's network end with their goroutine.
type procStarter chan func()

func newProcStarter(t *testing.T) procStarter {
	s := make(procStarter)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		for f := range s {
			f()
		}
		close(done)
	}()
	t.Cleanup(func() { close(s); <-done })
	return s
}

// start starts cmd, which is killed if the test binary dies.
func (s procStarter) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error, 1)
	s <- func() { errc <- cmd.Start() }
	return <-errc
}

// output runs cmd to its end and returns its stdout and stderr.
func (s procStarter) output(cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := s.start(cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

func newNetTask(t *testing.T, procs procStarter, name string, hosts map[string]string, addrs ...string) *netTask {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the contract suite runs each task in network and mount namespaces of its own, which needs root")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s (util-linux, iproute2) is needed to give each task its own network: %v", tool, err)
		}
	}
	dir := t.TempDir()
	var h strings.Builder
	h.WriteString("127.0.0.1 localhost\n::1 localhost\n")
	for name, ip := range hosts {
		fmt.Fprintf(&h, "%s %s\n", ip, name)
	}
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(h.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "set -e; ip link set lo up; "
	for _, a := range addrs {
		script += "ip addr add " + a + "/32 dev lo; "
	}
	script += "mount --bind " + hostsFile + " /etc/hosts; echo up; exec sleep 600"
	holder := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", script)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	holder.Stderr = &stderr
	if err := procs.start(holder); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "up\n" {
		holder.Wait()
		t.Fatalf("task %s: namespaces not set up: %q %s", name, line, stderr.String())
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return &netTask{t: t, name: name, procs: procs, holder: holder, netns: ns}
}

// inside runs f in the task's network namespace.
func (n *netTask) inside(f func() error) error { return nstest.Do(n.netns, f) }

func (n *netTask) listen(addr string) net.Listener {
	n.t.Helper()
	var ln net.Listener
	if err := n.inside(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		n.t.Fatalf("task %s: listen %s: %v", n.name, addr, err)
	}
	n.t.Cleanup(func() { ln.Close() })
	return ln
}

// dialer dials from inside the task, from local when it is set.
func (n *netTask) dialer(local string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		var c net.Conn
		err := n.inside(func() (err error) { c, err = d.DialContext(ctx, network, addr); return err })
		return c, err
	}
}

func (n *netTask) client(local string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: n.dialer(local), DisableKeepAlives: true}}
}

// command runs bin inside the task with exactly env.
func (n *netTask) command(env map[string]string, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(n.holder.Process.Pid), "--net", "--mount", "--", bin}, args...)...)
	cmd.Env = environ(env)
	return cmd
}

// start runs bin in the task until the test ends, and logs its output if the test failed.
func (n *netTask) start(env map[string]string, bin string, args ...string) {
	n.t.Helper()
	cmd := n.command(env, bin, args...)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := n.procs.start(cmd); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if n.t.Failed() {
			n.t.Logf("task %s, %s %q:\n%s", n.name, filepath.Base(bin), args, logs.String())
		}
	})
}

// relay carries connections to listen in task n to target in task to: the network between
// two tasks of a VPC.
func (n *netTask) relay(listen string, to *netTask, target string) {
	ln := n.listen(listen)
	dial := to.dialer("")
	var wg sync.WaitGroup
	n.t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				u, err := dial(context.Background(), "tcp", target)
				if err != nil {
					return
				}
				done := make(chan struct{}, 2)
				go func() { io.Copy(u, c); done <- struct{}{} }()
				go func() { io.Copy(c, u); done <- struct{}{} }()
				<-done // either side ended the connection
				u.Close()
				c.Close()
				<-done
			})
		}
	})
}

// serveApp stands in for the application container on its mapped port: it answers every
// request with the forwarding headers it received.
func (n *netTask) serveApp(port int) {
	ln := n.listen(fmt.Sprintf("127.0.0.1:%d", port))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app xff=%q proto=%q", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	})}
	go srv.Serve(ln)
	n.t.Cleanup(func() { srv.Close() })
}

// eventually retries f every 100ms until it succeeds or within passes.
func eventually(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type binaries struct{ proxy, healthcheck string }

// loadBalancer is what the load balancer expects of a task: the target group's health-check
// port and path, and the application's port behind the proxy (0: the port the task
// definition's application container maps, when it has one).
type loadBalancer struct {
	port    int
	path    string
	appPort int
}

// shippedLB is the shipped target group (taskdefs/settings/target-group.json).
func shippedLB(t *testing.T) loadBalancer {
	port, path := targetGroup(t)
	return loadBalancer{port: port, path: path}
}

// runTask runs the task definition's Gangway container (and its application, when it has
// one) in a network of its own, the way ECS would, and returns once the container's health
// check passes and, when the container maps the target group's port, the target group's
// health check passes on that port and path and traffic reaches the application.
func runTask(t *testing.T, bins binaries, td *taskDef, n *netTask, lb loadBalancer) {
	t.Helper()
	gw := td.gangway(t)
	env := gw.env(t)
	if lb.appPort == 0 {
		if app := td.app(gw); app != nil {
			lb.appPort = app.PortMappings[0].ContainerPort
		}
	}
	if lb.appPort != 0 {
		n.serveApp(lb.appPort)
	}
	n.start(env, bins.proxy, gw.Command...)

	hc := gw.HealthCheck.Command
	if hc[0] != "CMD" {
		t.Fatalf("%s: container %s: health check %q: want the exec form [\"CMD\", %q, ...]", td.path, gw.Name, hc, imageHealthcheck)
	}
	eventually(t, 30*time.Second, fmt.Sprintf("%s: health check %q", td.path, hc), func() error {
		out, err := n.procs.output(n.command(env, bins.healthcheck, hc[2:]...))
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})

	if !slices.ContainsFunc(gw.PortMappings, func(p struct{ ContainerPort int }) bool { return p.ContainerPort == lb.port }) {
		return // not behind the target group (the control plane)
	}
	healthCheckPasses(t, n, td.path, lb.port, lb.path)
	c := n.client("")
	base := fmt.Sprintf("http://127.0.0.1:%d", lb.port)
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "app ") {
		t.Fatalf("%s: traffic on %s/ = %s %q, want the application's answer (on port %d)", td.path, base, resp.Status, body, lb.appPort)
	}
}

// healthCheckPasses waits until the target group's health check, GET path on port in the
// task, answers 200 from the proxy's readiness: an application's 200 (serveApp answers every
// path) would pass the load balancer's check whether or not the proxy is ready.
func healthCheckPasses(t *testing.T, n *netTask, what string, port int, path string) {
	t.Helper()
	c := n.client("")
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	eventually(t, 30*time.Second, fmt.Sprintf("%s: target group health check %s", what, url), func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, body)
		}
		if strings.HasPrefix(string(body), "app ") {
			t.Fatalf("%s: target group health check %s: answered by the application (%q), not the proxy's readiness", what, url, body)
		}
		return nil
	})
}

// vpcPeer is the load balancer node's address in the task's network: inside the VPC ranges a
// sidecar trusts by default.
const vpcPeer = "10.0.3.7"

// checkForwarding sends what an ALB sends (the client's address and scheme) from the load
// balancer's address, and from a peer outside the VPC's ranges, and returns what the
// application received.
func checkForwarding(t *testing.T, n *netTask, port int) {
	t.Helper()
	ask := func(local, host string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d/", host, port), nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Port", "443")
		resp, err := n.client(local).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if got, want := ask(vpcPeer, vpcPeer), `app xff="203.0.113.9, 10.0.3.7" proto="https"`; got != want {
		t.Errorf("from the load balancer (%s) the application saw %s, want %s", vpcPeer, got, want)
	}
	if got, want := ask("", "127.0.0.1"), `app xff="127.0.0.1" proto="http"`; got != want {
		t.Errorf("from an untrusted peer (127.0.0.1) the application saw %s, want %s", got, want)
	}
}

func shippedTaskDefs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "taskdefs", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no task definitions: %v", err)
	}
	return files
}

// dataPlane reports whether the container's configuration is a split-mode data plane, which
// runs only with a control plane (the split-mode row runs it).
func dataPlane(t *testing.T, env map[string]string) bool {
	t.Helper()
	cfg, _, err := config.Resolve("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Services == config.ServicesProxy
}

// runProxyMain runs a proxy command in this process with exactly the environment vars.
func runProxyMain(vars map[string]string, args ...string) (probecmd.ExitCode, string) {
	var out bytes.Buffer
	e := env{stdout: &out, stderr: &out, getenv: func(k string) string { return vars[k] }}
	return runMain(context.Background(), args, e), out.String()
}

func TestContracts(t *testing.T) {
	bins := func() func() binaries {
		var once sync.Once
		var b binaries
		return func() binaries {
			once.Do(func() { b.proxy, b.healthcheck = buildBinaries(t) })
			return b
		}
	}()
	taskdefs := shippedTaskDefs(t)
	procs := newProcStarter(t)

	for _, path := range taskdefs {
		rel, _ := filepath.Rel(repoRoot, path)
		t.Run(rel+" → proxy validate", func(t *testing.T) {
			gw := readTaskDef(t, path).gangway(t)
			if code, out := runProxyMain(gw.env(t), "validate"); code != exitOK {
				t.Fatalf("exit %d:\n%s", code, out)
			}
		})
		t.Run(rel+" → proxy lint", func(t *testing.T) {
			td := readTaskDef(t, path)
			gw := td.gangway(t)
			args := []string{"lint", "-container", gw.Name,
				"-target-group", filepath.Join(repoRoot, "taskdefs/settings/target-group.json"),
				"-service", filepath.Join(repoRoot, "taskdefs/settings/service.json")}
			if f := gw.env(t)[config.EnvConfigFile]; f != "" {
				args = append(args, "-config", f)
			}
			if code, out := runProxyMain(nil, append(args, path)...); code != exitOK {
				t.Fatalf("exit %d:\n%s", code, out)
			}
		})
		if td := readTaskDef(t, path); dataPlane(t, td.gangway(t).env(t)) {
			continue // a data plane runs with its control plane: the split-mode row
		}
		t.Run(rel+" → proxy run, target group, healthcheck", func(t *testing.T) {
			td := readTaskDef(t, path)
			gw := td.gangway(t)
			n := newNetTask(t, procs, td.Family, nil, vpcPeer)
			runTask(t, bins(), td, n, shippedLB(t))
			if _, ok := gw.env(t)[config.EnvUpstream]; ok {
				port, _ := targetGroup(t)
				checkForwarding(t, n, port)
			}
		})
	}

	cdkRows(t, procs, bins)

	t.Run("taskdefs/split-control-plane.json + split-proxy.json (docs/examples/split-*.yaml) → proxy run ×2, ready", func(t *testing.T) {
		control, proxy := splitMode(t, procs, bins())
		port, _ := targetGroup(t)
		checkForwarding(t, proxy, port)
		t.Run("docs/xds.md bootstrap → control plane", func(t *testing.T) {
			_, doc := docsBootstrap(t)
			envoyADS(t, control, doc)
		})
	})

	t.Run("docs/xds.md bootstrap → proxy bootstrap envoy", func(t *testing.T) {
		args, want := docsBootstrap(t)
		code, got := runProxyMain(nil, append([]string{"bootstrap", "envoy"}, args...)...)
		if code != exitOK || got != want {
			t.Fatalf("exit %d; the bootstrap docs/xds.md shows differs from `proxy bootstrap envoy %s`:\n%s", code, strings.Join(args, " "), got)
		}
	})

	t.Run("taskdefs/settings/service.json → task definition, target group", func(t *testing.T) {
		serviceLoadBalancer(t, taskdefs)
	})

	t.Run("packaging/systemd unit → make install", func(t *testing.T) {
		makeInstall(t, bins())
	})

	t.Run("image paths → docs and comments", func(t *testing.T) {
		imagePathsInDocs(t)
	})
}

// splitMode runs the shipped control-plane task and data-plane task, each in its own network,
// the data plane's control_plane_url names pointing at 127.0.0.1 and carried to the control
// plane's task, until both are ready.
func splitMode(t *testing.T, procs procStarter, bins binaries) (control, proxy *netTask) {
	t.Helper()
	ctd := readTaskDef(t, filepath.Join(repoRoot, "taskdefs/split-control-plane.json"))
	ptd := readTaskDef(t, filepath.Join(repoRoot, "taskdefs/split-proxy.json"))
	pgw := ptd.gangway(t)
	penv := pgw.env(t)
	cfg, _, err := config.Resolve("", func(k string) string { return penv[k] })
	if err != nil {
		t.Fatal(err)
	}
	control = newNetTask(t, procs, ctd.Family, nil)
	runTask(t, bins, ctd, control, shippedLB(t))

	hosts := map[string]string{}
	var relays []string
	for _, u := range cfg.ControlPlaneURL {
		addr := u
		for _, scheme := range []string{"dns:///", "grpcs://", "grpc://"} {
			addr = strings.TrimPrefix(addr, scheme)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("control_plane_url %q: %v", u, err)
		}
		hosts[host] = "127.0.0.1"
		relays = append(relays, port)
	}
	proxy = newNetTask(t, procs, ptd.Family, hosts, vpcPeer)
	for _, port := range relays {
		proxy.relay("127.0.0.1:"+port, control, "127.0.0.1:"+port)
	}
	runTask(t, bins, ptd, proxy, shippedLB(t))
	return control, proxy
}

// docsBootstrap returns the `proxy bootstrap envoy` flags docs/xds.md shows (with a
// control-plane URL and the TLS flags) and the bootstrap it shows next to them.
func docsBootstrap(t *testing.T) (args []string, bootstrap string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs/xds.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(proxy bootstrap envoy [^`]*?)> envoy.yaml\n.*?```yaml\n(.*?)```").FindSubmatch(data)
	if m == nil {
		t.Fatal("docs/xds.md shows no `proxy bootstrap envoy ... > envoy.yaml` followed by the bootstrap")
	}
	fields := strings.Fields(strings.ReplaceAll(string(m[1]), "\\\n", " "))
	return fields[3:], string(m[2])
}

// envoyADS does what a stock Envoy does with the bootstrap: it connects to the bootstrap's
// control-plane address with its TLS settings and asks for listeners over ADS. It also checks
// that the control plane refuses a bootstrap without TLS.
func envoyADS(t *testing.T, control *netTask, doc string) {
	t.Helper()
	var tree any
	if err := yaml.Unmarshal([]byte(doc), &tree); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(tree)
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("the bootstrap is not an Envoy v3 bootstrap: %v", err)
	}
	cl := b.GetStaticResources().GetClusters()[0]
	sa := cl.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	var up tlsv3.UpstreamTlsContext
	if err := cl.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatalf("the bootstrap's control-plane cluster has no TLS: %v", err)
	}
	ctx := up.GetCommonTlsContext()
	file := func(name string) string { return filepath.Join(repoRoot, name) }
	cert, err := tls.LoadX509KeyPair(file(ctx.GetTlsCertificates()[0].GetCertificateChain().GetFilename()),
		file(ctx.GetTlsCertificates()[0].GetPrivateKey().GetFilename()))
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(file(ctx.GetValidationContext().GetTrustedCa().GetFilename()))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: up.GetSni(), NextProtos: ctx.GetAlpnProtocols()}

	// The bootstrap's name resolves, in the task that runs Envoy, to the control plane: here
	// the control plane's task is dialled directly on the bootstrap's port.
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(sa.GetPortValue())))
	ask := func(creds credentials.TransportCredentials) (*discovery.DiscoveryResponse, error) {
		conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(creds),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return control.dialer("")(ctx, "tcp", addr) }))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(cctx)
		if err != nil {
			return nil, err
		}
		if err := stream.Send(&discovery.DiscoveryRequest{
			Node:    &core.Node{Id: b.GetNode().GetId(), Cluster: b.GetNode().GetCluster()},
			TypeUrl: resourcev3.ListenerType,
		}); err != nil {
			return nil, err
		}
		return stream.Recv()
	}
	resp, err := ask(credentials.NewTLS(tc))
	if err != nil {
		t.Fatalf("ADS with the bootstrap's TLS settings (%s, SNI %q): %v", sa.GetAddress(), up.GetSni(), err)
	}
	if len(resp.GetResources()) == 0 || resp.GetVersionInfo() == "" {
		t.Fatalf("the control plane sent no listeners: %v", resp)
	}
	if _, err := ask(insecure.NewCredentials()); err == nil {
		t.Fatal("the control plane served a bootstrap without TLS; docs/xds.md says it requires mutual TLS")
	}
}

// serviceLoadBalancer: the shipped service sends the target group's traffic to a container
// and port that its task definition has, on the port the target group declares.
func serviceLoadBalancer(t *testing.T, taskdefs []string) {
	t.Helper()
	var svc struct {
		TaskDefinition string
		LoadBalancers  []struct {
			ContainerName string
			ContainerPort int
		}
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "taskdefs/settings/service.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &svc); err != nil || len(svc.LoadBalancers) == 0 {
		t.Fatalf("taskdefs/settings/service.json: %v (%d load balancers)", err, len(svc.LoadBalancers))
	}
	tgPort, _ := targetGroup(t)
	var td *taskDef
	for _, p := range taskdefs {
		if d := readTaskDef(t, p); d.Family == svc.TaskDefinition {
			td = d
		}
	}
	if td == nil {
		t.Fatalf("service.json runs task definition %q; no file in taskdefs/ has that family", svc.TaskDefinition)
	}
	for _, lb := range svc.LoadBalancers {
		if lb.ContainerPort != tgPort {
			t.Errorf("service.json: loadBalancers containerPort %d, the target group's port is %d", lb.ContainerPort, tgPort)
		}
		i := slices.IndexFunc(td.ContainerDefinitions, func(c containerDef) bool { return c.Name == lb.ContainerName })
		if i < 0 {
			t.Fatalf("service.json: loadBalancers container %q is not in %s", lb.ContainerName, td.path)
		}
		c := td.ContainerDefinitions[i]
		if !slices.ContainsFunc(c.PortMappings, func(p struct{ ContainerPort int }) bool { return p.ContainerPort == lb.ContainerPort }) {
			t.Errorf("service.json: container %q of %s does not map port %d", lb.ContainerName, td.path, lb.ContainerPort)
		}
		if c.Name != td.gangway(t).Name {
			t.Errorf("service.json: the load balancer sends traffic to %q, not to the Gangway container", c.Name)
		}
	}
}

// makeInstall runs `make install` into a scratch root and runs what the systemd unit's
// ExecStart names there.
func makeInstall(t *testing.T, bins binaries) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make: %v", err)
	}
	dest := t.TempDir()
	// -o build: the binaries are the ones this test built, from BINDIR.
	cmd := exec.Command("make", "-s", "-o", "build", "install", "DESTDIR="+dest, "BINDIR="+filepath.Dir(bins.proxy))
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "/usr/local/lib/systemd/system/gangway-proxy.service"))
	if err != nil {
		t.Fatalf("make install with the default PREFIX: %v", err)
	}
	shipped, err := os.ReadFile(filepath.Join(repoRoot, "packaging/systemd/gangway-proxy.service"))
	if err != nil {
		t.Fatal(err)
	}
	// With the default PREFIX the installed unit is the shipped one.
	if !bytes.Equal(unit, shipped) {
		t.Errorf("the installed unit differs from packaging/systemd/gangway-proxy.service with the default PREFIX")
	}
	m := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("the unit has no ExecStart")
	}
	bin := filepath.Join(dest, string(m[1]))
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("ExecStart's %s, as installed: %v\n%s", m[1], err, out)
	}
	hc := filepath.Join(filepath.Dir(bin), "gangway-healthcheck")
	if out, err := exec.Command(hc, "-version").CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", hc, err, out)
	}
}

// imagePathsInDocs: the docs and comments name the binaries by the image's paths or by the
// paths make install uses, never by a third.
func imagePathsInDocs(t *testing.T) {
	t.Helper()
	known := map[string]bool{"/usr/local/bin/gangway-proxy": true, "/usr/local/bin/gangway-healthcheck": true}
	re := regexp.MustCompile(`/usr/local/bin/[A-Za-z0-9_.-]+`)
	err := filepath.WalkDir(repoRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "cdk.out", "bin", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".md" && ext != ".go" && ext != ".service" && ext != ".json" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAll(data, -1) {
			if !known[string(m)] {
				t.Errorf("%s names %s, a path neither the image (%s, %s) nor make install uses", p, m, imageProxy, imageHealthcheck)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
