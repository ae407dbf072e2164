package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRoot makes a directory standing for /sys/fs/cgroup with files (path relative to it,
// contents).
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestMemController(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		dir     string // relative to the root, "-" for an error
		v2      bool
		wantErr string
	}{
		{name: "v2", files: map[string]string{"cgroup.subtree_control": "cpuset cpu io memory pids\n"}, dir: "", v2: true},
		{name: "v2 without memory, v1 memory", files: map[string]string{
			"cgroup.subtree_control":       "cpu pids\n",
			"memory/memory.limit_in_bytes": "9223372036854771712\n",
		}, dir: "memory"},
		{name: "v1", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, dir: "memory"},
		// memory_recursiveprot is no memory controller.
		{name: "none", files: map[string]string{"cgroup.subtree_control": "cpu memory_recursiveprot\n"}, dir: "-", wantErr: "no cgroup memory controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRoot(t, tc.files)
			dir, v2, err := memController(root)
			if tc.dir == "-" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, tc.dir); dir != want || v2 != tc.v2 {
				t.Errorf("memController = %s, v2 %t; want %s, v2 %t", dir, v2, want, tc.v2)
			}
		})
	}
}

func TestMemCgroupsV1(t *testing.T) {
	root := fakeRoot(t, map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"})
	// A cgroup with a CPU limit, in v1's cpu hierarchy: the memory cgroups do not go in it.
	m, err := makeMemCgroups(root, 64, filepath.Join(root, "cpu", "gangway-bench-1"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "memory", fmt.Sprintf("gangway-bench-%d", os.Getpid())); m.parent != want || !m.ownParent || m.v2 {
		t.Fatalf("parent %s (own %t, v2 %t), want %s, own, v1", m.parent, m.ownParent, m.v2, want)
	}
	a, err := m.make()
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.make()
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two starts got the same cgroup %s", a)
	}
	if got, _ := os.ReadFile(filepath.Join(a, "memory.limit_in_bytes")); string(got) != "67108864" {
		t.Errorf("memory.limit_in_bytes = %q, want 67108864", got)
	}

	write := func(file, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(a, file), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.failcnt", "7\n")
	write("memory.max_usage_in_bytes", "99999999\n")
	w := m.watch(a)
	if got, _ := os.ReadFile(filepath.Join(a, "memory.max_usage_in_bytes")); string(got) != "0" {
		t.Errorf("watch left memory.max_usage_in_bytes at %q, want it started again (0)", got)
	}
	write("memory.failcnt", "19\n")
	write("memory.max_usage_in_bytes", "5242880\n")
	r := w.end()
	if r.peak != 5<<20 || r.hits != 12 || r.peakSinceStart {
		t.Errorf("end = %+v, want peak 5 MiB and 12 hits over the run", *r)
	}
}

func TestMemCgroupsV2(t *testing.T) {
	root := fakeRoot(t, map[string]string{"cgroup.subtree_control": "cpu memory\n"})
	cpu := filepath.Join(root, "gangway-bench-1")
	if err := os.Mkdir(cpu, 0o755); err != nil {
		t.Fatal(err)
	}
	// Under v2 a process is in one cgroup only: the memory cgroups go in the one with the
	// CPU limit, which lets its children use the memory controller.
	m, err := makeMemCgroups(root, 256, cpu)
	if err != nil {
		t.Fatal(err)
	}
	if m.parent != cpu || m.ownParent || !m.v2 {
		t.Fatalf("parent %s (own %t, v2 %t), want %s, not own, v2", m.parent, m.ownParent, m.v2, cpu)
	}
	if got, _ := os.ReadFile(filepath.Join(cpu, "cgroup.subtree_control")); string(got) != "+memory" {
		t.Errorf("cgroup.subtree_control = %q, want +memory", got)
	}
	a, err := m.make()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(a) != cpu {
		t.Errorf("cgroup %s is not in %s", a, cpu)
	}
	if got, _ := os.ReadFile(filepath.Join(a, "memory.max")); string(got) != "268435456" {
		t.Errorf("memory.max = %q, want 268435456", got)
	}

	events := "low 0\nhigh 0\nmax %d\noom 0\noom_kill 0\noom_group_kill 0\n"
	write := func(file, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(a, file), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.events", fmt.Sprintf(events, 3))
	write("memory.peak", "100000000\n")
	w := m.watch(a)
	write("memory.events", fmt.Sprintf(events, 40))
	write("memory.peak", "2097152\n")
	r := w.end()
	if r.peak != 2<<20 || r.hits != 37 || r.peakSinceStart {
		t.Errorf("end = %+v, want peak 2 MiB and 37 hits over the run", *r)
	}

	// Without memory.peak (before Linux 5.19), the peak is not known; the hits still are.
	os.Remove(filepath.Join(a, "memory.peak"))
	w = m.watch(a)
	if r := w.end(); r.peak != -1 || r.hits != 0 {
		t.Errorf("end without memory.peak = %+v, want peak -1, 0 hits", *r)
	}
}

func TestMakeMemCgroupsNoController(t *testing.T) {
	_, err := makeMemCgroups(t.TempDir(), 64, "")
	if err == nil || !strings.Contains(err.Error(), "no cgroup memory controller") {
		t.Fatalf("err = %v, want no cgroup memory controller", err)
	}
}

func TestEventCount(t *testing.T) {
	b := []byte("low 0\nhigh 5\nmax 12\noom 1\noom_kill 1\n")
	for key, want := range map[string]int64{"max": 12, "high": 5, "oom": 1, "oom_kill": 1, "ma": -1, "swap": -1} {
		if got := eventCount(b, key); got != want {
			t.Errorf("eventCount(%q) = %d, want %d", key, got, want)
		}
	}
	if got := eventCount(nil, "max"); got != -1 {
		t.Errorf("eventCount of nothing = %d, want -1", got)
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int64{"67108864\n": 64 << 20, " 0 ": 0, "max\n": -1, "": -1} {
		if got := parseCount([]byte(in)); got != want {
			t.Errorf("parseCount(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestRemoveCgroup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "start-1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := removeCgroup(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", dir, err)
	}
	// Already gone (say, removed with its parent) is no error.
	if err := removeCgroup(dir); err != nil {
		t.Fatal(err)
	}
}

// TestStartCmdJoinsEveryCgroup runs startCmd's shell with two fake cgroup directories: it
// writes its pid (the program's, once it execs) into each cgroup.procs, and does not run
// the program when it cannot join one.
func TestStartCmdJoinsEveryCgroup(t *testing.T) {
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu"), filepath.Join(dir, "memory")
	for _, d := range []string{cpu, mem} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	marker := filepath.Join(dir, "ran")
	cmd, err := startCmd(context.Background(), dir, nil, []string{cpu, mem}, "/usr/bin/touch", marker)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{cpu, mem} {
		if got, _ := os.ReadFile(filepath.Join(d, "cgroup.procs")); strings.TrimSpace(string(got)) != fmt.Sprint(cmd.Process.Pid) {
			t.Errorf("%s/cgroup.procs = %q, want %d", d, got, cmd.Process.Pid)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the program did not run: %v", err)
	}

	os.Remove(marker)
	cmd, err = startCmd(context.Background(), dir, nil, []string{cpu, filepath.Join(dir, "missing")}, "/usr/bin/touch", marker)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("the shell succeeded without joining a cgroup")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the program ran outside a cgroup it should have joined")
	}
}

func TestEvict(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(path, make([]byte, 3*os.Getpagesize()+1), 0o755); err != nil {
		t.Fatal(err)
	}
	cached, size, err := evict(path)
	if err != nil {
		t.Fatal(err)
	}
	// How much stays cached depends on the file system (tmpfs keeps it all).
	if size != int64(3*os.Getpagesize()+1) || cached < 0 || cached > size {
		t.Errorf("evict = %d cached of %d", cached, size)
	}
	if _, _, err := evict(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("evict of a missing file: no error")
	}
}
