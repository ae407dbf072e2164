package sidecar

import (
	"fmt"
	"iter"
	"os"
	"path"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// A sidecar runs its Go code on one thread at a time unless it is given more than one CPU.
// With no CPU limit it can see (a container on EC2 without a hard limit, or a task whose
// limit is on a cgroup the container cannot see), it shares the host's CPUs with the
// application it fronts, and a proxy handles only that application's traffic: under the
// benchmark's saturating load on two CPUs one thread served 0-8 % fewer HTTP/1.1 requests a
// second than two and 8-16 % more HTTP/2 requests, for 10-14 % less CPU per HTTP/1.1
// request and 20-24 % less per HTTP/2 request (docs/benchmarks.md, "Sidecar cost"), as
// Linkerd's sidecar runs one worker by default. Under a limit of one CPU or less, Go's
// own default (the limit rounded up, but never below 2) would spend the CFS quota twice as
// fast, and the kernel then stops every process under that limit (on Fargate, the
// application too) until the next period: 22 % more requests per second, 18 % less CPU per
// request and a p99 of 4.5 ms instead of 63 ms with one thread. Under a limit above one
// CPU, Go's default stands: whoever set it meant the proxy to use it. GOMAXPROCS in the
// environment wins over all of these.

// cgroupV1CPUDirs are where cgroup v1's cpu controller is mounted, by distribution.
var cgroupV1CPUDirs = []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"}

// procsSetting returns the GOMAXPROCS `proxy run` sets, or -1 to leave Go's default, and
// why, for the start-up log line: GOMAXPROCS in the environment wins; under a CPU limit
// above one CPU, Go's default; else 1. A GOMAXPROCS that Go ignores (not a whole number
// above zero, as the runtime parses it) counts as unset, and why says so.
func procsSetting(getenv func(string) string, readFile func(string) ([]byte, error)) (int, string) {
	var ignored string
	if v := getenv("GOMAXPROCS"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n > 0 {
			return -1, "GOMAXPROCS"
		}
		ignored = fmt.Sprintf(" (GOMAXPROCS %q ignored)", v)
	}
	switch l := cpuLimit(readFile); {
	case l > 1:
		return -1, fmt.Sprintf("cpu limit %g", l) + ignored
	case l > 0:
		return 1, fmt.Sprintf("cpu limit %g", l) + ignored
	default:
		return 1, "no cpu limit" + ignored
	}
}

// cpuLimit returns the CPU limit (quota ÷ period, in CPUs) of the process's cgroup and its
// ancestors, the least of them, or 0 when there is none: cgroup v2's cpu.max, v1's
// cpu.cfs_quota_us and cpu.cfs_period_us.
func cpuLimit(readFile func(string) ([]byte, error)) float64 {
	var least float64
	for dir, v2 := range cgroupDirs(readFile, "cpu", cgroupV1CPUDirs) {
		var l float64
		if v2 {
			l = v2Limit(readFile, path.Join(dir, "cpu.max"))
		} else {
			l = v1Limit(readFile, dir)
		}
		if l > 0 && (least == 0 || l < least) {
			least = l
		}
	}
	return least
}

// cgroupDirs yields the directories of the process's cgroup and of each of its ancestors
// that hold controller's files, each with whether it is cgroup v2's: from
// /proc/self/cgroup, under /sys/fs/cgroup for v2 and under each of v1Mounts for v1. Under a
// cgroup namespace (a container) the process's own cgroup is the root of what it sees; a
// directory that does not exist (the host's path of a container's cgroup) reads as no file.
func cgroupDirs(readFile func(string) ([]byte, error), controller string, v1Mounts []string) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		self, err := readFile("/proc/self/cgroup")
		if err != nil {
			return
		}
		for line := range strings.SplitSeq(string(self), "\n") {
			// hierarchy-ID:controllers:path; v2's line is 0::path.
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
				continue
			}
			if f[0] == "0" && f[1] == "" {
				for dir := range ancestors(f[2]) {
					if !yield(path.Join("/sys/fs/cgroup", dir), true) {
						return
					}
				}
				continue
			}
			if !hasController(f[1], controller) {
				continue
			}
			for _, mount := range v1Mounts {
				for dir := range ancestors(f[2]) {
					if !yield(path.Join(mount, dir), false) {
						return
					}
				}
			}
		}
	}
}

// ancestors yields p and each of its parents, up to "/".
func ancestors(p string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for p = path.Clean(p); ; p = path.Dir(p) {
			if !yield(p) || p == "/" {
				return
			}
		}
	}
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// v2Limit reads a cpu.max file: "max PERIOD" (no limit) or "QUOTA PERIOD".
func v2Limit(readFile func(string) ([]byte, error), file string) float64 {
	b, err := readFile(file)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	return ratio(f[0], f[1])
}

// v1Limit reads cpu.cfs_quota_us (-1: no limit) and cpu.cfs_period_us in dir.
func v1Limit(readFile func(string) ([]byte, error), dir string) float64 {
	q, err := readFile(path.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return 0
	}
	p, err := readFile(path.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0
	}
	return ratio(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func ratio(quota, period string) float64 {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	return float64(q) / float64(p)
}

// runtimeSettings reads what the runtime runs with, for the start-up log line: the threads
// that run Go code at once (GOMAXPROCS), the GC percentage (-1: off) and the soft memory
// limit in bytes (math.MaxInt64: none). Read, not set: reading the GC percentage through
// debug.SetGCPercent would change it for a moment.
func runtimeSettings() (threads, gogc, memoryLimit int64) {
	s := []metrics.Sample{{Name: "/sched/gomaxprocs:threads"}, {Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(s)
	v := func(i int) int64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(s[i].Value.Uint64())
	}
	return v(0), v(1), v(2)
}

// TuneProcs applies procsSetting to the process and returns why the thread count is what
// it is: cmd/proxy calls it for `proxy run` only.
func TuneProcs() string {
	n, why := procsSetting(os.Getenv, os.ReadFile)
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	return why
}
