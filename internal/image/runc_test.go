package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// runcEnv turns on TestRunsUnderRuncLikeECS; `make test-image` sets it after installing runc.
const runcEnv = "GANGWAY_IMAGE_RUNC"

// requireRunc skips the test, saying why, when it cannot run here; under `make test-image`
// (runcEnv set) on CI, which runs as root, it fails instead.
func requireRunc(t *testing.T) {
	t.Helper()
	if os.Getenv(runcEnv) == "" {
		t.Skipf("%s is not set: `make test-image` installs runc and runs the image under it", runcEnv)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("runc and network namespaces need root, and CI runs as root: run the tests as root")
		}
		t.Skip("runc and network namespaces need root; run `make test-image` as root")
	}
	for _, tool := range []string{"runc", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: `make test-image` installs it (scripts/apt-install.sh runc iproute2)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testNet is a network namespace with a veth pair to the host: the container's own network,
// as awsvpc gives each task, reachable from the test at addr.
type testNet struct {
	name string // /var/run/netns/NAME
	addr string // the namespace's address
}

const netPrefix = "gangway-image-"

// newTestNet creates the namespace; names carry the test's pid, and namespaces left by a
// test process that no longer runs are removed first. Addresses come from 198.19.0.0/16
// (RFC 2544's benchmarking range), a /30 per pid.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	removeStaleNets()
	pid := os.Getpid()
	n := &testNet{name: fmt.Sprintf("%s%d", netPrefix, pid)}
	host := fmt.Sprintf("gwimg%d", pid)
	block := pid % 16384
	a, b := block/64, (block%64)*4
	hostIP, nsIP := fmt.Sprintf("198.19.%d.%d", a, b+1), fmt.Sprintf("198.19.%d.%d", a, b+2)
	n.addr = nsIP
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", n.name).Run()
	})
	run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n.name)
	run(t, "ip", "addr", "add", hostIP+"/30", "dev", host)
	run(t, "ip", "link", "set", host, "up")
	run(t, "ip", "-n", n.name, "addr", "add", nsIP+"/30", "dev", "eth0")
	run(t, "ip", "-n", n.name, "link", "set", "eth0", "up")
	run(t, "ip", "-n", n.name, "link", "set", "lo", "up")
	return n
}

// removeStaleNets removes the namespaces, links and containers of test processes that died
// before their cleanup ran.
func removeStaleNets() {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), netPrefix))
		if !strings.HasPrefix(e.Name(), netPrefix) || err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		exec.Command("runc", "delete", "-f", e.Name()).Run()
		exec.Command("ip", "link", "del", fmt.Sprintf("gwimg%d", pid)).Run()
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// unpack writes img's file system into dir, with the owners and modes of its layers.
func unpack(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	readTar(t, rc, func(h *tar.Header, data []byte) {
		path := filepath.Join(dir, filepath.Clean("/"+h.Name))
		var err error
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			err = os.WriteFile(path, data, 0o600)
		default:
			t.Fatalf("unexpected entry %s (type %c)", h.Name, h.Typeflag)
		}
		if err == nil {
			err = os.Chmod(path, os.FileMode(h.Mode)&os.ModePerm)
		}
		if err == nil {
			err = os.Lchown(path, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
}

// bundle writes an OCI runtime bundle for img the way ECS runs the proxy's container
// (taskdefs/fargate-proxy-app.json): the image's entrypoint, command and user, a read-only
// root file system, no /tmp (the image has none and nothing mounts one), no capabilities,
// nofile up to 65536, in the network namespace netns.
func bundle(t *testing.T, img v1.Image, netns string, env []string) string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	unpack(t, img, rootfs)
	run(t, "runc", "spec", "-b", dir)
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	uid, gid, _ := strings.Cut(cf.Config.User, ":")
	u, _ := strconv.Atoi(uid)
	g, _ := strconv.Atoi(gid)
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["user"] = map[string]any{"uid": u, "gid": g}
	proc["args"] = append(append([]string{}, cf.Config.Entrypoint...), cf.Config.Cmd...)
	proc["env"] = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	proc["cwd"] = "/"
	proc["capabilities"] = map[string]any{"bounding": []string{}, "effective": []string{}, "permitted": []string{}, "ambient": []string{}}
	// The task definition's nofile, where this machine's own limit allows it (raising it
	// needs a capability the container does not have).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile := min(lim.Max, 65536)
	proc["rlimits"] = []map[string]any{{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}}
	spec["root"] = map[string]any{"path": "rootfs", "readonly": true}
	linux := spec["linux"].(map[string]any)
	for _, ns := range linux["namespaces"].([]any) {
		if m := ns.(map[string]any); m["type"] == "network" {
			m["path"] = "/var/run/netns/" + netns
		}
	}
	out, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunsUnderRuncLikeECS runs the linux/amd64 image with runc as ECS runs it: read-only
// root, user 65532, no /tmp, no shell, its own network namespace. The proxy becomes ready,
// /healthcheck exits 0 inside the container, the traffic port answers with the demo
// upstream, and SIGTERM makes it exit 0 within its shutdown deadline.
func TestRunsUnderRuncLikeECS(t *testing.T) {
	requireRunc(t)
	b := built(t)
	var img v1.Image
	for i, p := range b.Platforms {
		if p.Architecture == "amd64" {
			img = b.Images[i]
		}
	}
	if img == nil {
		t.Fatal("no linux/amd64 image")
	}
	net := newTestNet(t)
	// The shipped task definition's shutdown is 12 s + 15 s within 30 s; these keep the
	// test short and still exercise delay, drain and the deadline.
	const deadline = 6 * time.Second
	dir := bundle(t, img, net.name, []string{
		"GANGWAY_SHUTDOWN_DELAY=1s",
		"GANGWAY_SHUTDOWN_DRAIN_TIMEOUT=1s",
		"GANGWAY_SHUTDOWN_DEADLINE=" + deadline.String(),
	})
	if _, err := os.Stat(filepath.Join(dir, "rootfs", "tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the image has a /tmp (%v)", err)
	}

	id := net.name
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	container := exec.CommandContext(ctx, "runc", "run", "-b", dir, id)
	var logs syncBuffer
	container.Stdout, container.Stderr = &logs, &logs
	if err := container.Start(); err != nil {
		t.Fatal(err)
	}
	// done closes when the container has exited; waitErr is then runc's exit status.
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = container.Wait(); close(done) }()
	t.Cleanup(func() {
		exec.Command("runc", "delete", "-f", id).Run()
		cancel()
		<-done
	})

	// Ready: /healthcheck, run in the container as the proxy's user, exits 0.
	healthcheck := func() (int, string) {
		out, err := exec.Command("runc", "exec", "--user", User, id, "/healthcheck").CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &ee):
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("runc exec: %v", err)
		return 0, ""
	}
	ready := false
	var code int
	var out string
	for start := time.Now(); time.Since(start) < 30*time.Second && !ready; time.Sleep(200 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("the container exited (%v) before it was ready:\n%s", waitErr, logs.String())
		default:
		}
		code, out = healthcheck()
		ready = code == 0
	}
	if !ready {
		t.Fatalf("/healthcheck did not exit 0 within 30s (last exit %d: %s); logs:\n%s", code, out, logs.String())
	}

	// How ECS runs it: read-only root, user and group 65532.
	var state struct{ Pid int }
	if err := json.Unmarshal([]byte(run(t, "runc", "state", id)), &state); err != nil {
		t.Fatal(err)
	}
	mountinfo, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", state.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !rootReadOnly(string(mountinfo)) {
		t.Errorf("the root file system is not read-only:\n%s", mountinfo)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", state.Pid))
	for _, want := range []string{"Uid:\t65532\t65532\t65532\t65532", "Gid:\t65532\t65532\t65532\t65532"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("the proxy does not run as 65532:65532:\n%s", status)
		}
	}

	// Traffic through the container's own network.
	client := &http.Client{Timeout: 5 * time.Second}
	for path, want := range map[string]string{"/": "Hello from the Gangway demo upstream.", "/gangway/ready": ""} {
		resp, err := client.Get("http://" + net.addr + ":8080" + path)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, logs.String())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s = %d %q, want 200 with %q", path, resp.StatusCode, body, want)
		}
	}

	// SIGTERM: the shutdown choreography, then exit 0 within the deadline.
	start := time.Now()
	run(t, "runc", "kill", id, "TERM")
	select {
	case <-done:
		took := time.Since(start)
		if waitErr != nil {
			t.Fatalf("after SIGTERM: %v (want exit 0) after %v:\n%s", waitErr, took, logs.String())
		}
		if took > deadline {
			t.Fatalf("exited after %v, beyond its shutdown deadline %v", took, deadline)
		}
		t.Logf("exit 0 %v after SIGTERM (deadline %v)", took.Round(time.Millisecond), deadline)
	case <-time.After(deadline + 10*time.Second):
		t.Fatalf("still running %v after SIGTERM:\n%s", deadline+10*time.Second, logs.String())
	}
	for _, phase := range []string{`"phase":"delay"`, `"phase":"drain"`} {
		if !strings.Contains(logs.String(), phase) {
			t.Errorf("the shutdown did not go through %s:\n%s", phase, logs.String())
		}
	}
}

// rootReadOnly reports whether the mount at / in a mountinfo file is read-only.
func rootReadOnly(mountinfo string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			return strings.HasPrefix(f[5], "ro,") || f[5] == "ro"
		}
	}
	return false
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
