package sidecar

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// runGCPercent is the garbage collector's target heap growth for `proxy run` (Go's default
// is 100). The data plane's live heap is small and its allocation rate high, so with the
// default it collects dozens of times a second under load; 400 collects a quarter as often
// for a few tens of MiB more heap.
const runGCPercent = 400

// memoryLimitShare is the share of the container's memory limit given to Go as a soft
// memory limit: near it, the collector works harder instead of letting the heap grow into
// the container's hard limit.
const memoryLimitShare = 0.8

// cgroupMemoryLimits are the files that hold the container's memory limit (cgroup v2, v1).
var cgroupMemoryLimits = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// gcSettings returns the garbage collector settings for `proxy run`: the GC percent and the
// soft memory limit in bytes, each -1 when it is left alone: GOGC and GOMEMLIMIT in the
// environment win, and without a container memory limit there is no soft limit.
func gcSettings(getenv func(string) string, readFile func(string) ([]byte, error)) (percent int, limit int64) {
	percent, limit = -1, -1
	if getenv("GOGC") == "" {
		percent = runGCPercent
	}
	if getenv("GOMEMLIMIT") == "" {
		if l := containerMemoryLimit(readFile); l > 0 {
			limit = int64(float64(l) * memoryLimitShare)
		}
	}
	return percent, limit
}

// containerMemoryLimit returns the cgroup memory limit in bytes, or 0 when there is none.
func containerMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	for _, f := range cgroupMemoryLimits {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 || v >= math.MaxInt64/2 { // "max", or cgroup v1's "unlimited"
			return 0
		}
		return v
	}
	return 0
}

// TuneGC applies gcSettings to the process: cmd/proxy calls it for `proxy run` only, since
// the settings are process-wide.
func TuneGC() {
	percent, limit := gcSettings(os.Getenv, os.ReadFile)
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
}
