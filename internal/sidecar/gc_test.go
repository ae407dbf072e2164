package sidecar

import (
	"io/fs"
	"maps"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestGCSettings(t *testing.T) {
	const mib = 1 << 20
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	// In a container (a cgroup namespace) the process's cgroup is "/".
	const v2, v1 = "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	v2self := map[string]string{"/proc/self/cgroup": "0::/\n"}
	v1self := map[string]string{"/proc/self/cgroup": "9:memory:/\n8:cpu,cpuacct:/\n"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	const exe = 33 * 1000 * 1000 // the size of a release build of bin/proxy
	cases := []struct {
		name    string
		env     map[string]string
		files   map[string]string
		exe     int64
		percent int
		limit   int64
		warning string // a part of the warning, "" for none
	}{
		{name: "no container limit", files: v2self, exe: exe, percent: runGCPercent, limit: -1},
		{name: "no cgroup file", exe: exe, percent: runGCPercent, limit: -1},
		{name: "cgroup v2, 1 GiB: 80 %", files: with(v2self, v2, "1073741824\n"), exe: exe, percent: runGCPercent, limit: 858993459},
		{name: "cgroup v2 no limit", files: with(v2self, v2, "max\n"), exe: exe, percent: runGCPercent, limit: -1},
		{name: "cgroup v1, 1 GiB: 80 %", files: with(v1self, v1, "1073741824\n"), exe: exe, percent: runGCPercent, limit: 858993459},
		{name: "cgroup v1 unlimited", files: with(v1self, v1, "9223372036854771712\n"), exe: exe, percent: runGCPercent, limit: -1},
		// 128 MiB: 80 % would be 102.4 MiB, but the binary and the margin leave 92.5.
		{name: "128 MiB: the binary taken out", files: with(v2self, v2, "134217728"), exe: exe, percent: runGCPercent, limit: 128*mib - exe - binaryMargin},
		{name: "64 MiB: the binary taken out", files: with(v2self, v2, "67108864"), exe: exe, percent: runGCPercent, limit: 64*mib - exe - binaryMargin},
		{name: "56 MiB: too small", files: with(v2self, v2, "58720256"), exe: exe, percent: runGCPercent, limit: 56*mib - exe - binaryMargin,
			warning: "memory limit of 56 MiB leaves 20 MiB for the proxy's heap beside its 31 MiB executable"},
		{name: "32 MiB: a quarter, at least", files: with(v2self, v2, "33554432"), exe: exe, percent: runGCPercent, limit: 8 * mib,
			warning: "leaves 0 MiB for the proxy's heap beside its 31 MiB executable, whose pages the kernel may count against the limit: under load the garbage collector will run most of the time, or the kernel will page the proxy's code in and out; give the container at least 64 MiB"},
		{name: "executable unknown", files: with(v2self, v2, "67108864"), percent: runGCPercent, limit: 53687091},
		// The least limit of the cgroup and its ancestors: a task's limit above a container's.
		{name: "v2, the task's limit below the container's", exe: exe, percent: runGCPercent, limit: 858993459, files: map[string]string{
			"/proc/self/cgroup":                      "0::/ecs/task/app\n",
			"/sys/fs/cgroup/ecs/task/app/memory.max": "max\n",
			"/sys/fs/cgroup/ecs/task/memory.max":     "1073741824\n",
			"/sys/fs/cgroup/ecs/memory.max":          "max\n",
		}},
		{name: "v1, the container's own limit", exe: exe, percent: runGCPercent, limit: 858993459, files: map[string]string{
			"/proc/self/cgroup": "5:memory:/ecs/task/app\n",
			"/sys/fs/cgroup/memory/ecs/task/app/memory.limit_in_bytes": "1073741824\n",
			"/sys/fs/cgroup/memory/ecs/task/memory.limit_in_bytes":     "2147483648\n",
			v1: "9223372036854771712\n",
		}},
		// A container without a cgroup namespace: /proc/self/cgroup names the host's path,
		// and the container's own cgroup is mounted at the hierarchy's root.
		{name: "v1, no cgroup namespace", exe: exe, percent: runGCPercent, limit: 858993459, files: with(
			map[string]string{"/proc/self/cgroup": "5:memory:/ecs/task/app\n"}, v1, "1073741824\n")},
		{name: "GOGC set", env: map[string]string{"GOGC": "100"}, files: with(v2self, v2, "1073741824"), exe: exe, percent: -1, limit: 858993459},
		{name: "GOMEMLIMIT set", env: map[string]string{"GOMEMLIMIT": "1GiB"}, files: with(v2self, v2, "1073741824"), exe: exe, percent: runGCPercent, limit: -1},
		{name: "GOMEMLIMIT set, the container too small: still warned", env: map[string]string{"GOMEMLIMIT": "40MiB"}, files: with(v2self, v2, "33554432"), exe: exe,
			percent: runGCPercent, limit: -1, warning: "give the container at least 64 MiB"},
		{name: "both set", env: map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, files: with(v2self, v2, "1073741824"), exe: exe, percent: -1, limit: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := gcSettings(env(c.env), fakeFiles(c.files), c.exe)
			if s.percent != c.percent || s.limit != c.limit {
				t.Fatalf("gcSettings = percent %d, limit %d; want %d, %d", s.percent, s.limit, c.percent, c.limit)
			}
			switch {
			case c.warning == "" && s.warning != "":
				t.Fatalf("warning %q, want none", s.warning)
			case !strings.Contains(s.warning, c.warning):
				t.Fatalf("warning %q, want it to contain %q", s.warning, c.warning)
			}
		})
	}
}

// fakeFiles reads files from kv; any other name does not exist.
func fakeFiles(kv map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if v, ok := kv[name]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func TestShouldRelease(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name      string
		prev, now memSample
		floor     uint64
		want      bool
	}{
		{"quiet, a burst's memory left", memSample{gcs: 7, spare: 12 * mib}, memSample{gcs: 7, spare: 12 * mib}, 2 * mib, true},
		{"quiet, little left", memSample{gcs: 7, spare: 5 * mib}, memSample{gcs: 7, spare: 5 * mib}, 2 * mib, false},
		{"busy: a collection ran", memSample{gcs: 7, spare: 40 * mib}, memSample{gcs: 8, spare: 40 * mib}, 2 * mib, false},
		{"exactly the minimum over the floor", memSample{gcs: 1, spare: 6 * mib}, memSample{gcs: 1, spare: 6 * mib}, 2 * mib, true},
	}
	for _, c := range cases {
		if got := shouldRelease(c.prev, c.now, c.floor); got != c.want {
			t.Errorf("%s: shouldRelease = %v, want %v", c.name, got, c.want)
		}
	}
}

// After a burst of garbage, a quiet process gives the memory back within two checks, once;
// the checks after it leave the process alone.
func TestReleaserGivesBackABurst(t *testing.T) {
	released := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	var calls int
	r := newReleaser(func() { calls++; debug.FreeOSMemory() })
	burst(4096, 8<<10) // 32 MiB
	runtime.GC()       // the burst is free heap now, and this collection is the burst's
	before := released()
	// Another test's allocations may start a collection between two checks: try a while.
	for i := 0; i < 100 && calls == 0; i++ {
		r.check()
		time.Sleep(10 * time.Millisecond)
	}
	if calls != 1 {
		t.Fatalf("no release after a 32 MiB burst in 100 checks")
	}
	if got := released() - before; got < 16<<20 {
		t.Fatalf("%d MiB given back after a 32 MiB burst, want at least 16", got>>20)
	}
	for range 3 {
		r.check()
	}
	if calls != 1 {
		t.Fatalf("%d releases, want 1: nothing new to give back after the first", calls)
	}
}

// burst allocates n blocks of size bytes, all live until it returns.
func burst(n, size int) {
	blocks := make([][]byte, 0, n)
	for range n {
		blocks = append(blocks, make([]byte, size))
	}
	runtime.KeepAlive(blocks)
}
