package sidecar

import (
	"io/fs"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCSettings(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	files := func(kv map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := kv[name]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
	}
	v2, v1 := cgroupMemoryLimits[0], cgroupMemoryLimits[1]
	cases := []struct {
		name       string
		env, files map[string]string
		percent    int
		limit      int64
	}{
		{name: "no container limit", percent: runGCPercent, limit: -1},
		{name: "cgroup v2 limit", files: map[string]string{v2: "536870912\n"}, percent: runGCPercent, limit: 429496729},
		{name: "cgroup v2 no limit", files: map[string]string{v2: "max\n", v1: "1073741824\n"}, percent: runGCPercent, limit: -1},
		{name: "cgroup v1 limit", files: map[string]string{v1: "1073741824\n"}, percent: runGCPercent, limit: 858993459},
		{name: "cgroup v1 unlimited", files: map[string]string{v1: "9223372036854771712\n"}, percent: runGCPercent, limit: -1},
		{name: "GOGC set", env: map[string]string{"GOGC": "100"}, files: map[string]string{v2: "536870912"}, percent: -1, limit: 429496729},
		{name: "GOMEMLIMIT set", env: map[string]string{"GOMEMLIMIT": "1GiB"}, files: map[string]string{v2: "536870912"}, percent: runGCPercent, limit: -1},
		{name: "both set", env: map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB"}, files: map[string]string{v2: "536870912"}, percent: -1, limit: -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, l := gcSettings(env(c.env), files(c.files))
			if p != c.percent || l != c.limit {
				t.Fatalf("gcSettings = %d, %d; want %d, %d", p, l, c.percent, c.limit)
			}
		})
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
