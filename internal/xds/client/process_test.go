package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/proxy"
	"github.com/gangway-ecs/gangway/internal/xds/resource"
	"github.com/gangway-ecs/gangway/internal/xds/server"
)

// The process tests run the control plane and the data planes as separate processes: this
// test binary, started again with GANGWAY_XDS_ROLE set. Each process serves its health
// registry on /status, /readyz like `proxy run` does. (When `proxy run` takes
// services: control|proxy, these roles are what it runs.)
func TestMain(m *testing.M) {
	switch os.Getenv("GANGWAY_XDS_ROLE") {
	case "control":
		os.Exit(controlProcess())
	case "proxy":
		os.Exit(proxyProcess())
	}
	os.Exit(m.Run())
}

// serveAdmin serves the registry on 127.0.0.1 and prints "admin ADDRESS" on stdout.
func serveAdmin(reg *health.Registry) (*http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: health.Handler(reg), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("admin %s\n", ln.Addr())
	return srv, nil
}

// controlProcess publishes GANGWAY_XDS_CONFIG on GANGWAY_XDS_LISTEN. SIGHUP publishes the
// file again; SIGUSR1 publishes it with what only Envoy runs; SIGTERM ends it.
func controlProcess() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	reg := health.NewRegistry()
	srv, err := server.NewServer(server.ServerOptions{Health: reg, Logger: log})
	if err != nil {
		log.Error("server", "error", err)
		return 1
	}
	file := os.Getenv("GANGWAY_XDS_CONFIG")
	publish := func(envoyOnly bool) {
		cfg, err := config.Load(file)
		if err != nil {
			log.Error("load", "error", err)
			return
		}
		res, err := resource.Compile(cfg)
		if err != nil {
			log.Error("compile", "error", err)
			return
		}
		if envoyOnly {
			res.Clusters[0].CircuitBreakers = &cluster.CircuitBreakers{}
			res.Version = res.Hash()
		}
		if err := srv.PublishResources(context.Background(), res); err != nil {
			log.Error("publish", "error", err)
		}
	}
	publish(false)
	ln, err := net.Listen("tcp", os.Getenv("GANGWAY_XDS_LISTEN"))
	if err != nil {
		log.Error("listen", "error", err)
		return 1
	}
	admin, err := serveAdmin(reg)
	if err != nil {
		return 1
	}
	defer admin.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM)
	for s := range sigs {
		switch s {
		case syscall.SIGHUP:
			publish(false)
		case syscall.SIGUSR1:
			publish(true)
		default:
			cancel()
			<-done
			return 0
		}
	}
	return 0
}

// proxyProcess runs a data plane fed by GANGWAY_XDS_CONTROL, as node GANGWAY_XDS_NODE,
// until SIGTERM. It logs every applied version on stderr.
func proxyProcess() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	reg := health.NewRegistry()
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	dp := proxy.NewDataPlane(ctx, proxy.Options{Health: reg, Logger: log})
	client, err := NewClient(ClientOptions{
		ControlPlane: []string{os.Getenv("GANGWAY_XDS_CONTROL")},
		Node:         &core.Node{Id: os.Getenv("GANGWAY_XDS_NODE")},
		Apply:        dp.Apply,
		Health:       reg,
		Logger:       log,
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   500 * time.Millisecond,
	})
	if err != nil {
		log.Error("client", "error", err)
		return 1
	}
	admin, err := serveAdmin(reg)
	if err != nil {
		return 1
	}
	defer admin.Close()
	client.Run(ctx)
	if srv := dp.Server(); srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}
	return 0
}

// process is a started role.
type process struct {
	cmd    *exec.Cmd
	admin  string
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func startProcess(t *testing.T, role string, env ...string) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(append(os.Environ(), "GANGWAY_XDS_ROLE="+role), env...)
	p.cmd.Stderr = p
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "admin "); ok {
				lines <- a
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case p.admin = <-lines:
	case <-p.done:
		t.Fatalf("%s exited at start:\n%s", role, p.logs())
	case <-time.After(waitLimit):
		t.Fatalf("%s did not start:\n%s", role, p.logs())
	}
	return p
}

// stop sends sig and waits for the process (SIGKILL after a while).
func (p *process) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) status(t *testing.T) map[string]health.StatusJSON {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]health.StatusJSON{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("status: %v", err)
	}
	return out
}

func attrOf(s health.StatusJSON, key string) string { return s.Attributes[key] }

func (p *process) ready(t *testing.T) bool {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// get sends a request through a data plane's "public" listener and returns the X-Config
// response header.
func (p *process) get(t *testing.T) string {
	t.Helper()
	addr := attrOf(p.status(t)["proxy.listener.public"], "address")
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/hello")
	if err != nil {
		t.Fatalf("through %s: %v", addr, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("through %s: status %d", addr, resp.StatusCode)
	}
	return resp.Header.Get("X-Config")
}

func (p *process) applies() int {
	return strings.Count(p.logs(), `"msg":"xds version applied"`)
}

// TestSplitModeProcesses: one control plane process and three data-plane processes. A
// change reaches all three, each reporting the new version on /status; a rejected version
// is NACKed, visible on the control plane, while traffic flows on the old one; killing the
// control plane leaves traffic and readiness untouched; restarting it does not make the data
// planes apply again; a second control plane compiling the same file publishes the same
// version.
func TestSplitModeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped with -short")
	}
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "backend")
	})}
	go backend.Serve(backendLn)
	t.Cleanup(func() { backend.Close() })

	file := filepath.Join(t.TempDir(), "gangway.yaml")
	writeConfig := func(tag string) {
		yaml := fmt.Sprintf(`
listeners: [{name: public, address: "127.0.0.1:0"}]
routes: [{name: app, cluster: app, set_response_headers: {X-Config: %s}}]
clusters: [{name: app, endpoints: [%q]}]
`, tag, backendLn.Addr().String())
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("one")
	xdsAddr := freeLoopback(t)
	control := startProcess(t, "control", "GANGWAY_XDS_CONFIG="+file, "GANGWAY_XDS_LISTEN="+xdsAddr)
	version := func(p *process) string { return attrOf(p.status(t)[server.ServerCheckName], "version") }
	v1 := version(control)

	var dps []*process
	for i := range 3 {
		dps = append(dps, startProcess(t, "proxy", "GANGWAY_XDS_CONTROL="+xdsAddr, fmt.Sprintf("GANGWAY_XDS_NODE=task-%d", i)))
	}
	atVersion := func(p *process, v string) bool {
		s := p.status(t)[ListenerCheckName]
		return s.Status == "RUNNING" && s.Version == v && s.Error == ""
	}
	for i, dp := range dps {
		waitFor(t, fmt.Sprintf("task-%d at %s", i, v1), func() bool { return atVersion(dp, v1) && dp.ready(t) })
		if got := dp.get(t); got != "one" {
			t.Errorf("task-%d serves X-Config %q, want one", i, got)
		}
	}
	waitFor(t, "3/3 nodes", func() bool { return attrOf(control.status(t)[server.ServerCheckName], "nodes") == "3/3" })

	// A change reaches all three.
	writeConfig("two")
	control.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "a new version", func() bool { return version(control) != v1 })
	v2 := version(control)
	for i, dp := range dps {
		waitFor(t, fmt.Sprintf("task-%d at %s", i, v2), func() bool { return atVersion(dp, v2) })
		if got := dp.get(t); got != "two" {
			t.Errorf("task-%d serves X-Config %q after the change, want two", i, got)
		}
	}

	// A version the data planes reject.
	control.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, "three NACKs on the control plane", func() bool {
		return attrOf(control.status(t)[server.ServerCheckName], "nodes_rejecting") == "3"
	})
	st := control.status(t)[server.ServerCheckName]
	if r := attrOf(st, "last_nack_reason"); !strings.Contains(r, `cluster "app": circuit_breakers`) || !strings.HasPrefix(attrOf(st, "last_nack_node"), "task-") {
		t.Errorf("control plane shows NACK %q from %q", r, attrOf(st, "last_nack_node"))
	}
	for i, dp := range dps {
		if got := dp.get(t); got != "two" {
			t.Errorf("task-%d after a NACK serves X-Config %q, want two", i, got)
		}
		if !dp.ready(t) {
			t.Errorf("task-%d not ready after a NACK", i)
		}
		if e := dp.status(t)[ClusterCheckName].Error; !strings.Contains(e, "circuit_breakers") {
			t.Errorf("task-%d xds.cluster error %q", i, e)
		}
	}

	// The control plane dies.
	control.stop(syscall.SIGKILL)
	for i, dp := range dps {
		waitFor(t, fmt.Sprintf("task-%d notices", i), func() bool { return dp.status(t)[ConnectionCheckName].Error != "" })
		if !dp.ready(t) {
			t.Errorf("task-%d not ready without a control plane", i)
		}
		if got := dp.get(t); got != "two" {
			t.Errorf("task-%d without a control plane serves X-Config %q", i, got)
		}
	}

	// It comes back with the same file: nothing is applied again.
	control = startProcess(t, "control", "GANGWAY_XDS_CONFIG="+file, "GANGWAY_XDS_LISTEN="+xdsAddr)
	if v := version(control); v != v2 {
		t.Fatalf("the restarted control plane publishes %s, want %s", v, v2)
	}
	waitFor(t, "3/3 nodes after the restart", func() bool { return attrOf(control.status(t)[server.ServerCheckName], "nodes") == "3/3" })
	for i, dp := range dps {
		waitFor(t, fmt.Sprintf("task-%d reconnected", i), func() bool {
			s := dp.status(t)[ConnectionCheckName]
			return s.Status == "RUNNING" && s.Error == ""
		})
		if n := dp.applies(); n != 2 {
			t.Errorf("task-%d applied %d versions, want 2 (v1, v2): an unchanged version was applied again", i, n)
		}
	}

	// A second replica compiling the same file.
	replica := startProcess(t, "control", "GANGWAY_XDS_CONFIG="+file, "GANGWAY_XDS_LISTEN=127.0.0.1:0")
	if v := version(replica); v != v2 {
		t.Errorf("replicas publish %s and %s for the same file", v2, v)
	}
}
