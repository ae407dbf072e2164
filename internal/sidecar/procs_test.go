package sidecar

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestProcsSetting(t *testing.T) {
	const v2self, hybrid = "0::/\n", "4:memory:/x\n1:cpu:/task/app\n0::/\n"
	cases := []struct {
		name  string
		env   string // GOMAXPROCS
		files map[string]string
		want  int
		from  string
		limit float64
	}{
		{name: "no cgroup", want: 1, from: "no cpu limit"},
		{name: "v2, no limit", files: map[string]string{"/proc/self/cgroup": v2self, "/sys/fs/cgroup/cpu.max": "max 100000\n"}, want: 1, from: "no cpu limit"},
		{name: "v2, a quarter CPU", files: map[string]string{"/proc/self/cgroup": v2self, "/sys/fs/cgroup/cpu.max": "25000 100000\n"}, want: 1, from: "cpu limit 0.25", limit: 0.25},
		{name: "v2, one CPU", files: map[string]string{"/proc/self/cgroup": v2self, "/sys/fs/cgroup/cpu.max": "100000 100000\n"}, want: 1, from: "cpu limit 1", limit: 1},
		{name: "v2, one and a half CPU: Go's default", files: map[string]string{"/proc/self/cgroup": v2self, "/sys/fs/cgroup/cpu.max": "150000 100000\n"}, want: -1, from: "cpu limit 1.5", limit: 1.5},
		{name: "v2, the limit on a parent", files: map[string]string{"/proc/self/cgroup": "0::/task/app\n",
			"/sys/fs/cgroup/task/app/cpu.max": "max 100000", "/sys/fs/cgroup/task/cpu.max": "50000 100000"}, want: 1, from: "cpu limit 0.5", limit: 0.5},
		{name: "v1, half a CPU", files: map[string]string{"/proc/self/cgroup": hybrid,
			"/sys/fs/cgroup/cpu/task/app/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/task/app/cpu.cfs_period_us": "100000\n",
			"/sys/fs/cgroup/cpu/task/cpu.cfs_quota_us": "50000\n", "/sys/fs/cgroup/cpu/task/cpu.cfs_period_us": "100000\n"}, want: 1, from: "cpu limit 0.5", limit: 0.5},
		{name: "v1 under cpu,cpuacct, two CPUs", files: map[string]string{"/proc/self/cgroup": "3:cpuacct,cpu:/\n",
			"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "200000", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000"}, want: -1, from: "cpu limit 2", limit: 2},
		{name: "v1, unlimited", files: map[string]string{"/proc/self/cgroup": "1:cpu:/\n",
			"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000"}, want: 1, from: "no cpu limit"},
		{name: "GOMAXPROCS set", env: "4", files: map[string]string{"/proc/self/cgroup": v2self, "/sys/fs/cgroup/cpu.max": "25000 100000"}, want: -1, from: "GOMAXPROCS", limit: 0.25},
		{name: "GOMAXPROCS set, no limit", env: "2", want: -1, from: "GOMAXPROCS"},
		{name: "GOMAXPROCS that Go ignores, no limit", env: "two", want: 1, from: `no cpu limit (GOMAXPROCS "two" ignored)`},
		{name: "GOMAXPROCS zero, two CPUs", env: "0", files: map[string]string{"/proc/self/cgroup": v2self, "/sys/fs/cgroup/cpu.max": "200000 100000"},
			want: -1, from: `cpu limit 2 (GOMAXPROCS "0" ignored)`, limit: 2},
		{name: "unreadable quota", files: map[string]string{"/proc/self/cgroup": v2self, "/sys/fs/cgroup/cpu.max": "lots 100000"}, want: 1, from: "no cpu limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "GOMAXPROCS" {
					return c.env
				}
				return ""
			}
			if got := cpuLimit(fakeFiles(c.files)); got != c.limit {
				t.Errorf("cpuLimit = %v, want %v", got, c.limit)
			}
			if got, from := procsSetting(getenv, fakeFiles(c.files)); got != c.want || from != c.from {
				t.Errorf("procsSetting = %d, %q; want %d, %q", got, from, c.want, c.from)
			}
		})
	}
}

// The start-up line reports what the runtime runs with, read without changing it.
func TestRuntimeSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(250))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(48 << 20))
	threads, gogc, limit := runtimeSettings()
	if threads != int64(runtime.GOMAXPROCS(0)) || gogc != 250 || limit != 48<<20 {
		t.Fatalf("threads %d, gogc %d, memory limit %d; want %d, 250, %d", threads, gogc, limit, runtime.GOMAXPROCS(0), 48<<20)
	}
	debug.SetGCPercent(-1)
	if _, gogc, _ := runtimeSettings(); gogc != -1 {
		t.Fatalf("gogc %d with the collector off, want -1", gogc)
	}
}
