package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/probecmd"
	"github.com/gangway-ecs/gangway/internal/version"
)

// maxBinaryBytes is the size budget of the stripped static binary that ships in every
// task's image.
const maxBinaryBytes = 2_621_440 // 2.5 MiB

const (
	testVersion = "v1.2.3-test"
	testCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// buildBinary builds the binary as `make build` does.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := t.TempDir() + "/healthcheck"
	out, err := goCommand(t, "build", "-trimpath", "-ldflags", version.LDFlags(testVersion, testCommit), "-o", bin, ".")
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func goCommand(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binary: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd.CombinedOutput()
}

func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("size", func(t *testing.T) {
		fi, err := os.Stat(bin)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("binary: %d bytes (budget %d)", fi.Size(), maxBinaryBytes)
		if fi.Size() >= maxBinaryBytes {
			t.Errorf("binary is %d bytes, budget %d", fi.Size(), maxBinaryBytes)
		}
	})

	t.Run("static and stripped", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skipf("the ELF checks apply to the linux images, not %s", runtime.GOOS)
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("dynamically linked: has a %s program header", p.Type)
			}
		}
		if f.Section(".symtab") != nil {
			t.Error("not stripped: has a .symtab section")
		}
	})

	t.Run("no net/http", func(t *testing.T) {
		out, err := goCommand(t, "list", "-deps", ".")
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 || !slices.Contains(deps, "net") {
			t.Fatalf("go list -deps gave %d packages, without net: %q", len(deps), out)
		}
		for _, d := range deps {
			if d == "net/http" || strings.HasPrefix(d, "net/http/") {
				t.Errorf("links %s", d)
			}
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		healthy := serve(t, reply(httpResponse("200 OK", passingBody)))
		unhealthy := serve(t, reply(httpResponse("503 Service Unavailable", failingBody)))
		silent := serve(t, hang(""))
		tests := []struct {
			name   string
			env    string
			args   []string
			code   probecmd.ExitCode
			stdout string
			stderr string
		}{
			{name: "healthy", args: []string{"-addr", healthy.addr}, code: exitHealthy, stdout: "container: ok (" + healthy.addr + ", "},
			{name: "env addr", env: healthy.addr, args: []string{"-probe", "live"}, code: exitHealthy, stdout: "live: ok (" + healthy.addr + ", "},
			{name: "unhealthy", args: []string{"-addr", unhealthy.addr}, code: exitUnhealthy,
				stdout: "[-]upstream.cluster.app: no healthy endpoint\n"},
			{name: "timeout", args: []string{"-addr", silent.addr, "-timeout", "300ms"}, code: exitUnreachable, stdout: "container: timed out after 300ms: "},
			{name: "nothing listening", args: []string{"-addr", deadAddr(t)}, code: exitUnreachable, stdout: "container: unreachable: "},
			{name: "unknown flag", args: []string{"-bogus"}, code: exitUsage, stderr: "flag provided but not defined: -bogus"},
			{name: "bad probe", args: []string{"-probe", "bogus"}, code: exitUsage, stderr: `-probe "bogus"`},
			{name: "help", args: []string{"-h"}, code: exitHealthy, stdout: "Usage: healthcheck"},
			{name: "version", args: []string{"-version"}, code: exitHealthy, stdout: "gangway-healthcheck " + testVersion + " (commit " + testCommit + ")\n"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, tt.args...)
				cmd.Env = []string{"GANGWAY_HEALTH_ADDR=" + tt.env}
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var code probecmd.ExitCode
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					code = probecmd.ExitCode(exit.ExitCode())
				} else if err != nil {
					t.Fatal(err)
				}
				if code != tt.code {
					t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, &stdout, &stderr)
				}
				if !strings.Contains(stdout.String(), tt.stdout) || (tt.stdout == "" && stdout.Len() > 0) {
					t.Errorf("stdout %q, want it to contain %q", &stdout, tt.stdout)
				}
				if !strings.Contains(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() > 0) {
					t.Errorf("stderr %q, want it to contain %q", &stderr, tt.stderr)
				}
			})
		}
		ua := "\r\nUser-Agent: gangway-healthcheck/" + testVersion + "\r\n"
		if got := healthy.Requests(); len(got) != 2 || !strings.Contains(got[0], ua) {
			t.Errorf("server saw %q, want 2 requests with %q", got, ua)
		}
	})

	// ECS kills a health check that outlasts its timeout, and the check's output goes with
	// it. With its default -timeout the probe must give up first, say why and exit 3 within
	// the smallest timeout ECS allows, counted as ECS counts it: from the process's start.
	t.Run("gives up before ECS does", func(t *testing.T) {
		silent := serve(t, hang(""))
		ecsTimeout := budget.MinContainerTimeout
		ctx, cancel := context.WithTimeout(context.Background(), ecsTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = []string{"GANGWAY_HEALTH_ADDR=" + silent.addr}
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		start := time.Now()
		err := cmd.Run()
		elapsed := time.Since(start)
		if ctx.Err() != nil {
			t.Fatalf("killed at ECS's %s timeout, before the probe gave up (after %s); its output is lost: %q", ecsTimeout, elapsed, &stdout)
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || probecmd.ExitCode(exit.ExitCode()) != exitUnreachable {
			t.Fatalf("exit %v, want %d: %q", err, exitUnreachable, &stdout)
		}
		if want := "container: timed out after " + budget.DefaultProbeTimeout.String() + ": "; !strings.HasPrefix(stdout.String(), want) {
			t.Errorf("stdout %q, want it to start with %q", &stdout, want)
		}
		t.Logf("gave up after %s, %s before ECS's timeout", elapsed.Round(time.Millisecond), (ecsTimeout - elapsed).Round(time.Millisecond))
	})
}
