package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/probecmd"
)

// runBin runs a built binary with the extra environment and returns its exit code and output.
func runBin(t *testing.T, env []string, bin string, args ...string) (probecmd.ExitCode, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return probecmd.ExitCode(ee.ExitCode()), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// waitBin runs the binary until it exits with want, for at most 20 s.
func waitBin(t *testing.T, env []string, want probecmd.ExitCode, bin string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, out := runBin(t, env, bin, args...)
		if c == want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v: exit %d, want %d:\n%s", bin, args, c, want, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startProxyProcess runs `bin run args...` as a process with the extra environment; the
// returned channel is closed when it has exited. The test's end kills it if it still runs.
func startProxyProcess(t *testing.T, env []string, bin string, args ...string) (*exec.Cmd, *syncBuffer, <-chan struct{}) {
	t.Helper()
	var stderr syncBuffer
	proc := exec.Command(bin, append([]string{"run"}, args...)...)
	proc.Env = append(os.Environ(), env...)
	proc.Stderr = &stderr
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { proc.Wait(); close(exited) }()
	t.Cleanup(func() { proc.Process.Kill(); <-exited })
	return proc, &stderr, exited
}

// TestHealthAddrMovesBothSides: GANGWAY_HEALTH_ADDR moves `proxy run`'s probe server, and
// bin/healthcheck and `proxy health` find it there with no flag, so a task that sets the
// variable passes its own health check.
func TestHealthAddrMovesBothSides(t *testing.T) {
	proxyBin, hcBin := buildBinaries(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	vars := []string{envHealthAddr + "=" + addr}
	// The file says 127.0.0.1:0; the variable wins over it.
	proc, stderr, done := startProxyProcess(t, vars, proxyBin, "-config", writeConfig(t, fmt.Sprintf(testConfig, "0s")), "-watch=false")

	waitBin(t, vars, exitOK, hcBin, "-probe", "ready")
	if c, out := runBin(t, vars, hcBin); c != exitOK {
		t.Fatalf("healthcheck (container) = %d:\n%s\n%s", c, out, stderr.String())
	}
	if c, out := runBin(t, vars, proxyBin, "health", "-probe", "ready", "-v"); c != exitOK || !strings.Contains(out, "[+]admin.listener ok") {
		t.Fatalf("proxy health = %d:\n%s", c, out)
	}
	if !strings.Contains(stderr.String(), `"address":"`+addr+`"`) {
		t.Errorf("the log does not name the probe server at %s:\n%s", addr, stderr.String())
	}
	proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if c := probecmd.ExitCode(proc.ProcessState.ExitCode()); c != exitOK {
			t.Fatalf("proxy exited with %d:\n%s", c, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("proxy did not exit:\n%s", stderr.String())
	}

	// -admin-addr still wins over the variable; a bad variable is named in the error.
	var errOut syncBuffer
	bad := env{stdout: io.Discard, stderr: &errOut, getenv: func(k string) string {
		if k == envHealthAddr {
			return "127.0.0.1:notaport"
		}
		return ""
	}}
	if c := runMain(context.Background(), []string{"run", "-config", writeConfig(t, fmt.Sprintf(testConfig, "0s"))}, bad); c != exitFailure ||
		!strings.Contains(errOut.String(), envHealthAddr+": admin.address 127.0.0.1:notaport") {
		t.Fatalf("bad %s: exit %d:\n%s", envHealthAddr, c, errOut.String())
	}
}

// requiredUpstreamConfig is lcConfig with an active health check on the required cluster.
func requiredUpstreamConfig(traffic, upstream string) string {
	cfg := lcConfig(traffic, upstream, lcOptions{delay: "0s", drain: "2s"})
	return strings.Replace(cfg, "    endpoints: [", `    health_check:
      type: http
      path: /healthz
      interval: 200ms
      timeout: 150ms
      healthy_threshold: 1
      unhealthy_threshold: 1
    endpoints: [`, 1)
}

// switchableUpstream answers its health check with 200 while up is true, else 503.
func switchableUpstream(t *testing.T, up *atomic.Bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestContainerProbeProcess runs the real proxy with a required upstream. The container
// probe (bin/healthcheck's default) stays 0 through an outage of the upstream after
// startup, while readiness fails; a proxy whose required upstream is never healthy fails
// it, so ECS still replaces a revision that never starts.
func TestContainerProbeProcess(t *testing.T) {
	proxyBin, hcBin := buildBinaries(t)

	t.Run("upstream down after startup", func(t *testing.T) {
		var up atomic.Bool
		up.Store(true)
		upstream := switchableUpstream(t, &up)
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		env := []string{envHealthAddr + "=" + addr}
		_, stderr, _ := startProxyProcess(t, env, proxyBin, "-config", writeConfig(t, requiredUpstreamConfig(fmt.Sprintf("127.0.0.1:%d", freePort(t)), upstream.URL)), "-watch=false")
		waitBin(t, env, exitOK, hcBin, "-probe", "ready")

		up.Store(false)
		out := waitBin(t, env, exitFailure, hcBin, "-probe", "ready")
		if !strings.Contains(out, "[-]upstream.cluster.app") {
			t.Fatalf("readiness fails without naming the cluster:\n%s", out)
		}
		// Several health-check intervals of outage: the container probe never fails.
		for range 8 {
			if c, out := runBin(t, env, hcBin); c != exitOK {
				t.Fatalf("healthcheck (container) during the outage = %d:\n%s\n%s", c, out, stderr.String())
			}
			if c, out := runBin(t, env, proxyBin, "health"); c != exitOK {
				t.Fatalf("proxy health (container) during the outage = %d:\n%s", c, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if c, _ := runBin(t, env, hcBin, "-probe", "ready"); c != exitFailure {
			t.Fatalf("readiness recovered while the upstream was down: exit %d", c)
		}
		up.Store(true)
		waitBin(t, env, exitOK, hcBin, "-probe", "ready")
	})

	t.Run("upstream never healthy", func(t *testing.T) {
		var up atomic.Bool
		upstream := switchableUpstream(t, &up)
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		env := []string{envHealthAddr + "=" + addr}
		_, stderr, _ := startProxyProcess(t, env, proxyBin, "-config", writeConfig(t, requiredUpstreamConfig(fmt.Sprintf("127.0.0.1:%d", freePort(t)), upstream.URL)), "-watch=false")
		// The probe server answers (liveness passes), but startup never completes.
		waitBin(t, env, exitOK, hcBin, "-probe", "live")
		for range 8 {
			c, out := runBin(t, env, hcBin)
			if c != exitFailure || !strings.Contains(out, "[-]upstream.cluster.app: never ready: ") {
				t.Fatalf("healthcheck (container) with the upstream never healthy = %d:\n%s\n%s", c, out, stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}
