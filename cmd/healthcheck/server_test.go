package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/health"
	"github.com/gangway-ecs/gangway/internal/probecmd"
)

// serveHealth serves the real probe handler of reg on 127.0.0.1 until the test ends.
func serveHealth(t *testing.T, reg *health.Registry) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: health.Handler(reg), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestAgainstHealthServer probes the server's real handler: the verdicts, the failing
// checks in the output, and -exclude reaching the registry.
func TestAgainstHealthServer(t *testing.T) {
	reg := health.NewRegistry()
	all := health.Startup | health.Readiness | health.Liveness
	// Every check is registered before any reports, as a process does: the registry has
	// never been ready.
	cfg := reg.Register(health.Spec{Name: "config.build", Gates: all})
	app := reg.Register(health.Spec{Name: "upstream.cluster.app", Gates: health.Readiness})
	reg.Register(health.Spec{Name: "listener.ingress/tls 443", Gates: health.Readiness | health.Startup}) // never started
	cfg.Running("")
	app.Report(health.Report{Status: health.Running, Err: errors.New("no healthy endpoint")})
	addr := serveHealth(t, reg)

	tests := []struct {
		args   []string
		code   probecmd.ExitCode
		stdout string
	}{
		{[]string{"-probe", "live"}, exitHealthy, `^live: ok \(` + addr + `, [^)]+\)\n$`},
		{[]string{"-probe", "startup"}, exitUnhealthy, `^startup: unhealthy: 503 Service Unavailable \([^)]+\)\n` +
			`\[-\]listener\.ingress/tls 443: not started: STARTING\n$`},
		{[]string{"-probe", "ready"}, exitUnhealthy, `^ready: unhealthy: 503 Service Unavailable \([^)]+\)\n` +
			`\[-\]listener\.ingress/tls 443: status STARTING\n` +
			`\[-\]upstream\.cluster\.app: no healthy endpoint\n$`},
		{nil, exitUnhealthy, `^container: unhealthy: 503 Service Unavailable \([^)]+\)\n` +
			`\[-\]listener\.ingress/tls 443: never ready: status STARTING\n` +
			`\[-\]upstream\.cluster\.app: never ready: no healthy endpoint\n$`},
		{[]string{"-probe", "ready", "-exclude", "upstream.cluster.app", "-exclude", "listener.ingress/tls 443"}, exitHealthy, `^ready: ok `},
		{[]string{"-probe", "ready", "-exclude", "upstream.cluster.app", "-exclude", "nope"}, exitUnhealthy, `^ready: unhealthy: 503 Service Unavailable \([^)]+\)\n` +
			`\[-\]listener\.ingress/tls 443: status STARTING\n` +
			`warn: no check named "nope" to exclude\n$`},
		{[]string{"-probe", "startup", "-v", "-exclude", "listener.ingress/tls 443"}, exitHealthy, `^startup: ok \([^)]+\)\n` +
			`\[\+\]config\.build ok\n\[\+\]listener\.ingress/tls 443 excluded: ok\nstartupz check passed\n$`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			code, stdout, _ := runProbe(t, nil, append([]string{"-addr", addr}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("stdout:\n%s\nwant match for:\n%s", stdout, tt.stdout)
			}
		})
	}
}

// TestContainerProbeAfterStartup: once the registry has been ready, the default probe
// (container) passes through a dependency outage that fails readiness, and fails on a
// liveness fault.
func TestContainerProbeAfterStartup(t *testing.T) {
	reg := health.NewRegistry()
	loop := reg.Register(health.Spec{Name: "process.loop", Gates: health.Liveness})
	app := reg.Register(health.Spec{Name: "upstream.cluster.app", Gates: health.Readiness})
	loop.Running("")
	app.Running("")
	app.Fail(errors.New("no healthy endpoint"))
	addr := serveHealth(t, reg)

	if code, stdout, _ := runProbe(t, nil, "-addr", addr); code != exitHealthy || !strings.HasPrefix(stdout, "container: ok ") {
		t.Errorf("container after startup, upstream down: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ := runProbe(t, nil, "-addr", addr, "-probe", "ready"); code != exitUnhealthy {
		t.Errorf("ready with the upstream down: exit %d\n%s", code, stdout)
	}
	loop.Fail(errors.New("event loop stuck"))
	code, stdout, _ := runProbe(t, nil, "-addr", addr)
	if code != exitUnhealthy || !strings.Contains(stdout, "[-]process.loop: event loop stuck\n") {
		t.Errorf("container with a stuck loop: exit %d\n%s", code, stdout)
	}
}

// With many checks the server's body outgrows its buffer and goes out chunked.
func TestAgainstHealthServerChunked(t *testing.T) {
	reg := health.NewRegistry()
	for i := range 400 {
		c := reg.Register(health.Spec{Name: fmt.Sprintf("upstream.cluster.c%03d", i), Gates: health.Readiness})
		c.Running("")
		if i == 399 {
			c.Fail(errors.New("no healthy endpoint"))
		}
	}
	addr := serveHealth(t, reg)

	// The raw response shows that the probe meets chunked framing here.
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, requestText(addr, "/readyz?verbose", "test")); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\r\nTransfer-Encoding: chunked\r\n")) {
		t.Fatalf("response is not chunked:\n%.300s", raw)
	}
	resp, err := readResponse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != 503 || !bytes.HasSuffix(resp.body, []byte("\nreadyz check failed\n")) || len(resp.body) < 8000 {
		t.Fatalf("status %d, body of %d bytes ending %q", resp.status, len(resp.body), resp.body[max(0, len(resp.body)-40):])
	}

	code, stdout, _ := runProbe(t, nil, "-addr", addr, "-probe", "ready")
	want := `^ready: unhealthy: 503 Service Unavailable \([^)]+\)\n\[-\]upstream\.cluster\.c399: no healthy endpoint\n$`
	if code != exitUnhealthy || !regexp.MustCompile(want).MatchString(stdout) {
		t.Errorf("exit code %d, stdout:\n%s", code, stdout)
	}
}
