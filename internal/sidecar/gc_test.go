package sidecar

import (
	"io/fs"
	"testing"
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
