package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// `proxy run` runs Go code on one thread under a limit of one CPU or less (Go's own default
// would be 2) and with no limit it can see, and keeps Go's default under a limit above one
// CPU: the real binary, in a real cgroup v1 cpu controller, read back from its
// go_sched_gomaxprocs_threads metric, and its start-up line's threads_from.
func TestRunThreads(t *testing.T) {
	bin, _ := buildBinaries(t)
	for _, c := range []struct {
		name  string
		quota string // cpu.cfs_quota_us over a period of 100 ms; "" for no cgroup of its own
		env   string // GOMAXPROCS
		want  string
		from  string
	}{
		{"half a CPU", "50000", "", "1", "cpu limit 0.5"},
		{"two CPUs: Go's default", "200000", "", fmt.Sprint(min(runtime.NumCPU(), 2)), "cpu limit 2"},
		{"no limit", "", "", "1", "no cpu limit"},
		// Go ignores "two" and would run a thread per host CPU.
		{"no limit, a GOMAXPROCS Go ignores", "", "two", "1", `no cpu limit (GOMAXPROCS "two" ignored)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cg := ""
			if c.quota != "" {
				cg = v1Cgroup(t, "/sys/fs/cgroup/cpu", "a CPU quota", "cpu.cfs_quota_us",
					map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": c.quota})
			}
			got, stderr := runMetric(t, bin, cg, "go_sched_gomaxprocs_threads", "GOMAXPROCS="+c.env)
			from := startingAttr(stderr, "threads_from")
			if from == "" {
				t.Fatalf("no threads_from in the start-up line:\n%s", stderr)
			}
			if c.quota == "" && strings.HasPrefix(from, "cpu limit") {
				t.Skipf("this test runs under a CPU limit of its own (%s): the case without one cannot be made here", from)
			}
			if got != c.want || from != c.from {
				t.Fatalf("go_sched_gomaxprocs_threads %s, threads_from %q; want %s, %q; the log:\n%s", got, from, c.want, c.from, stderr)
			}
		})
	}
}

// startingAttr returns the string attribute name of the JSON log's "starting" line, or "".
func startingAttr(log, name string) string {
	for line := range strings.SplitSeq(log, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "starting" {
			v, _ := rec[name].(string)
			return v
		}
	}
	return ""
}

// `proxy run` in a container with a memory limit leaves its own executable outside the
// soft memory limit it gives Go, since the kernel may charge the executable's pages to the
// container, and warns when the limit leaves too little for the heap: the real binary, in a
// real cgroup v1 memory controller, read back from its go_gc_gomemlimit_bytes metric and
// its log.
func TestRunLeavesItsExecutableOutOfTheMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	requireV1Controller(t, "/sys/fs/cgroup/memory", "a memory limit", "memory.limit_in_bytes")
	bin, _ := buildBinaries(t)
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	exe := fi.Size()
	page := func(n int64) int64 { return n &^ 4095 } // the kernel keeps a limit in whole pages
	for _, c := range []struct {
		name    string
		limit   int64 // the container's
		warning bool
	}{
		// Room for a heap of 64 MiB beside the executable: all of it, less than 80 %.
		{"room for the heap", page(exe + 4*mib + 64*mib), false},
		// 20 MiB of room: too little, said so; the soft limit is still the room left (more
		// than a quarter of the limit while the executable is under 56 MiB).
		{"too small", page(exe + 4*mib + 20*mib), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cg := v1Cgroup(t, "/sys/fs/cgroup/memory", "a memory limit", "memory.limit_in_bytes",
				map[string]string{"memory.limit_in_bytes": fmt.Sprint(c.limit)})
			v, stderr := runMetric(t, bin, cg, "go_gc_gomemlimit_bytes")
			got, err := strconv.ParseFloat(v, 64)
			if want := c.limit - exe - 4*mib; err != nil || int64(got) != want {
				t.Fatalf("go_gc_gomemlimit_bytes %s in a container limited to %d bytes with a %d-byte executable, want %d", v, c.limit, exe, want)
			}
			if warned := strings.Contains(stderr, "memory limit too small"); warned != c.warning {
				t.Fatalf("warned %v, want %v; the log:\n%s", warned, c.warning, stderr)
			}
		})
	}
}

// v1Cgroup makes a cgroup in the cgroup v1 hierarchy mounted at mount, with files written
// in it, and removes it when the test ends (runMetric has waited for its process by then).
// The test is skipped where that cannot be done: not root, no such controller (probe, one of
// its files, missing), or no cgroup can be made; what is what the cgroup sets, for the reason.
func v1Cgroup(t *testing.T, mount, what, probe string, files map[string]string) string {
	t.Helper()
	requireV1Controller(t, mount, what, probe)
	cg := filepath.Join(mount, fmt.Sprintf("gangway-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot make a cgroup (%v): %s cannot be set here", err, what)
	}
	t.Cleanup(func() { os.Remove(cg) })
	for file, v := range files {
		if err := os.WriteFile(filepath.Join(cg, file), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cg
}

// requireV1Controller skips the test unless it runs as root and a cgroup v1 controller is
// mounted at mount (probe, one of its files, is there).
func requireV1Controller(t *testing.T, mount, what, probe string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to make a cgroup with %s", what)
	}
	if _, err := os.Stat(filepath.Join(mount, probe)); err != nil {
		t.Skipf("no cgroup v1 controller at %s (%v): %s cannot be set here", mount, err, what)
	}
}

// runMetric starts `bin run` (in cgroup, unless empty) and returns the value of metric
// on its admin port, and what it logged by then.
func runMetric(t *testing.T, bin, cgroup, metric string, env ...string) (value, stderr string) {
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
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS=", "GOMEMLIMIT=", "GOGC="), env...)
	var log syncBuffer
	cmd.Stderr = &log
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
			if v, ok := strings.CutPrefix(sc.Text(), metric+" "); ok {
				resp.Body.Close()
				return v, log.String()
			}
		}
		resp.Body.Close()
		t.Fatalf("no %s in /metrics", metric)
	}
	t.Fatalf("admin %s does not answer within 10 s:\n%s", admin, log.String())
	return "", ""
}
