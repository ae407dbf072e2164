package sidecar

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
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
	go newReleaser(debug.FreeOSMemory).run(releaseCheck)
}

// A burst (a deployment's storm of new connections, a flood of requests) leaves memory
// behind when it is over: the heap it grew and the stacks of the goroutines that served
// it, free but kept by the runtime, which gives free memory back to the system only above
// 110% of the heap goal (five times the live heap at GOGC 400) or near the soft memory
// limit. After a thousand keep-alive connections had each sent a request, that was 8 KiB
// per connection, more than the idle connections themselves held. So `proxy run` gives it
// back once quiet: every releaseCheck, when no collection has run since the last check
// (the process allocates little, so it is not busy) and the free heap and the stacks have
// grown by releaseMin since memory was last given back, it calls debug.FreeOSMemory (one
// collection, then everything free is returned). Under load collections run several times
// a second and it never fires; a quiet process pays one collection after each burst.
const (
	releaseCheck = 2 * time.Second
	releaseMin   = 4 << 20
)

// releaser decides when a quiet process gives memory back.
type releaser struct {
	samples []metrics.Sample
	last    memSample // at the previous check
	floor   uint64    // the least spare memory seen since memory was last given back
	release func()
}

// memSample is what releaser reads: collections so far, and the free heap plus the
// stacks (in use or free: the runtime frees a dead goroutine's stack only at a collection).
type memSample struct{ gcs, spare uint64 }

func newReleaser(release func()) *releaser {
	r := &releaser{release: release, samples: []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}}
	r.last = r.read()
	r.floor = r.last.spare
	return r
}

func (r *releaser) read() memSample {
	metrics.Read(r.samples)
	return memSample{gcs: r.samples[0].Value.Uint64(), spare: r.samples[1].Value.Uint64() + r.samples[2].Value.Uint64()}
}

func (r *releaser) run(every time.Duration) {
	for range time.Tick(every) {
		r.check()
	}
}

// check gives memory back when shouldRelease says so, and reports whether it did.
func (r *releaser) check() bool {
	now := r.read()
	release := shouldRelease(r.last, now, r.floor)
	r.floor = min(r.floor, now.spare)
	r.last = now
	if !release {
		return false
	}
	r.release()
	r.last = r.read() // the release's own collection is not the process's work
	r.floor = r.last.spare
	return true
}

// shouldRelease: no collection ran between prev and now, and the spare memory is
// releaseMin over the least seen since the last release.
func shouldRelease(prev, now memSample, floor uint64) bool {
	return now.gcs == prev.gcs && now.spare >= floor+releaseMin
}
