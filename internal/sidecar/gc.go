package sidecar

import (
	"fmt"
	"math"
	"os"
	"path"
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

// The soft memory limit: memoryLimitShare of the container's memory limit, but never
// more than what the limit leaves once the proxy's executable and binaryMargin are taken
// out of it, nor less than a quarter of it. The executable counts because the kernel
// charges the page cache of the files a container reads to that container: a task started
// on a host whose page cache no longer holds the image reads its 33 MB binary from disk,
// and start-up reads about 23 MiB of it (unmapped once the proxy is built, see
// internal/startpages, but cached and charged until the kernel reclaims them; the pages
// serving uses stay). With the whole 80 % given to the heap,
// `proxy run` in a 64 MiB container grew its heap to 43 MiB after one burst of requests,
// the kernel paged the proxy's code in and out to stay under the limit (12,000 major
// faults), and served 3,000 HTTP/2 requests a second, against 53,000 with this rule
// (docs/benchmarks.md, "Sidecar cost"). Under minHeapRoom a warning says how much the container needs.
const (
	memoryLimitShare = 0.8
	binaryMargin     = 4 << 20
	minHeapRoom      = 28 << 20
)

// cgroupV1MemoryDirs are where cgroup v1's memory controller is mounted.
var cgroupV1MemoryDirs = []string{"/sys/fs/cgroup/memory"}

// gcSetting is what `proxy run` sets for the garbage collector.
type gcSetting struct {
	percent int   // GC percent, -1 to leave it alone
	limit   int64 // soft memory limit in bytes, -1 to leave it alone
	// warning, when not "", says that the container's memory limit is too small.
	warning string
}

// gcSettings returns the garbage collector settings for `proxy run`, given the size of its
// executable in bytes: GOGC and GOMEMLIMIT in the environment win, and without a container
// memory limit there is no soft limit.
func gcSettings(getenv func(string) string, readFile func(string) ([]byte, error), exeSize int64) gcSetting {
	s := gcSetting{percent: -1, limit: -1}
	if getenv("GOGC") == "" {
		s.percent = runGCPercent
	}
	container := memoryLimit(readFile)
	if container <= 0 {
		return s
	}
	room := container - exeSize - binaryMargin
	if room < minHeapRoom {
		const mib = 1 << 20
		s.warning = fmt.Sprintf("the container's memory limit of %d MiB leaves %d MiB for the proxy's heap "+
			"beside its %d MiB executable, whose pages the kernel may count against the limit: "+
			"under load the garbage collector will run most of the time, or the kernel will page the "+
			"proxy's code in and out; give the container at least %d MiB",
			container/mib, max(room, 0)/mib, exeSize/mib, (exeSize+binaryMargin+minHeapRoom+mib-1)/mib)
	}
	if getenv("GOMEMLIMIT") == "" {
		s.limit = max(min(int64(float64(container)*memoryLimitShare), room), container/4)
	}
	return s
}

// memoryLimit returns the memory limit in bytes of the process's cgroup and its ancestors,
// the least of them, or 0 when there is none: cgroup v2's memory.max, v1's
// memory.limit_in_bytes.
func memoryLimit(readFile func(string) ([]byte, error)) int64 {
	var least int64
	for dir, v2 := range cgroupDirs(readFile, "memory", cgroupV1MemoryDirs) {
		file := "memory.limit_in_bytes"
		if v2 {
			file = "memory.max"
		}
		b, err := readFile(path.Join(dir, file))
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 || v >= math.MaxInt64/2 { // "max", or cgroup v1's "unlimited"
			continue
		}
		if least == 0 || v < least {
			least = v
		}
	}
	return least
}

// executableSize returns the size of the running executable, 0 when it cannot be known.
func executableSize() int64 {
	exe, err := os.Executable()
	if err != nil {
		return 0
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// TuneGC applies gcSettings to the process: cmd/proxy calls it for `proxy run` only, since
// the settings are process-wide. It returns gcSettings' warning, for `proxy run` to log.
func TuneGC() (warning string) {
	s := gcSettings(os.Getenv, os.ReadFile, executableSize())
	if s.percent >= 0 {
		debug.SetGCPercent(s.percent)
	}
	if s.limit >= 0 {
		debug.SetMemoryLimit(s.limit)
	}
	go newReleaser(debug.FreeOSMemory).run(releaseCheck)
	return s.warning
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
