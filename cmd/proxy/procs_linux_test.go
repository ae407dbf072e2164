package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// `proxy run` in a cgroup limited to half a CPU runs Go code on one thread (Go's own default
// would be 2), and outside any limit keeps Go's default: the real binary, in a real cgroup
// v1 cpu controller, read back from its go_sched_gomaxprocs_threads metric.
func TestRunUsesOneThreadUnderOneCPU(t *testing.T) {
	const v1 = "/sys/fs/cgroup/cpu"
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a cgroup with a CPU quota")
	}
	if _, err := os.Stat(filepath.Join(v1, "cpu.cfs_quota_us")); err != nil {
		t.Skipf("no cgroup v1 cpu controller at %s (%v): the quota cannot be set here", v1, err)
	}
	cg := filepath.Join(v1, fmt.Sprintf("gangway-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot make a cgroup (%v): the quota cannot be set here", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	for file, v := range map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"} {
		if err := os.WriteFile(filepath.Join(cg, file), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "proxy")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name, cgroup string
		want         string
	}{
		{"half a CPU", cg, "1"},
		{"no limit", "", fmt.Sprint(runtime.NumCPU())},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.cgroup == "" && (os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) != runtime.NumCPU()) {
				t.Skip("this test runs under a CPU limit or GOMAXPROCS of its own: Go's default without a limit cannot be known here")
			}
			if got := runProcs(t, bin, c.cgroup); got != c.want {
				t.Fatalf("go_sched_gomaxprocs_threads %s, want %s", got, c.want)
			}
		})
	}
}

// runProcs starts `bin run` (in cgroup, unless empty) and returns the GOMAXPROCS its
// metrics report.
func runProcs(t *testing.T, bin, cgroup string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	cfg := writeConfig(t, fmt.Sprintf("admin: {address: %q}\nlisteners:\n  - name: public\n    address: 127.0.0.1:0\nclusters:\n  - name: c\n    endpoints: [\"127.0.0.1:1\"]\nroutes:\n  - name: all\n    cluster: c\n", admin))
	script := `exec "$0" run -config "$1"`
	if cgroup != "" {
		script = `echo $$ > "$2/cgroup.procs" && ` + script
	}
	cmd := exec.Command("sh", "-c", script, bin, cfg, cgroup)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "go_sched_gomaxprocs_threads "); ok {
				resp.Body.Close()
				return v
			}
		}
		resp.Body.Close()
		t.Fatalf("no go_sched_gomaxprocs_threads in /metrics")
	}
	t.Fatalf("admin %s does not answer within 10 s:\n%s", admin, stderr.String())
	return ""
}
