package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memCgroups makes the memory cgroups of -memory-limit: one per process start, each made
// just before its process starts and removed once it has ended, all in one parent made
// for the run. A cgroup keeps the page cache charged to it after its processes end, so a
// process started in one an earlier process used would find its binary's pages there,
// already paid for.
type memCgroups struct {
	parent string // the directory they are made in
	v2     bool
	limit  int64 // bytes
	made   int   // how many were made, which names the next
	// ownParent is false when the parent is -cpu-limit's cgroup (v2, where a process is in
	// one cgroup only, and one inside that cgroup is under its CPU limit too): run removes
	// that one.
	ownParent bool
}

// memController finds the memory controller under root (/sys/fs/cgroup): cgroup v2 when
// the root's children may use it (memory in cgroup.subtree_control), else v1's hierarchy
// at root/memory. dir is where cgroups are made.
func memController(root string) (dir string, v2 bool, err error) {
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.subtree_control")); err == nil && slices.Contains(strings.Fields(string(b)), "memory") {
		return root, true, nil
	}
	mount := filepath.Join(root, "memory")
	if _, err := os.Stat(filepath.Join(mount, "memory.limit_in_bytes")); err == nil {
		return mount, false, nil
	}
	return "", false, errors.New("no cgroup memory controller to limit the proxies with (cgroup v2 with memory in cgroup.subtree_control, or v1 at /sys/fs/cgroup/memory)")
}

// makeMemCgroups makes the parent of the memory cgroups under root, for cgroups of mib MiB
// each; cpuCgroup is -cpu-limit's cgroup, or "".
func makeMemCgroups(root string, mib int, cpuCgroup string) (*memCgroups, error) {
	dir, v2, err := memController(root)
	if err != nil {
		return nil, err
	}
	m := &memCgroups{v2: v2, limit: int64(mib) << 20}
	if v2 && cpuCgroup != "" && filepath.Dir(cpuCgroup) == dir {
		m.parent = cpuCgroup
	} else {
		m.parent = filepath.Join(dir, fmt.Sprintf("gangway-bench-%d", os.Getpid()))
		if err := os.Mkdir(m.parent, 0o755); err != nil {
			return nil, fmt.Errorf("%w (run as root, or without -memory-limit)", err)
		}
		m.ownParent = true
	}
	if v2 {
		// Under v2 the parent's children have a memory.max only once the parent lets them
		// use the controller.
		if err := os.WriteFile(filepath.Join(m.parent, "cgroup.subtree_control"), []byte("+memory"), 0o644); err != nil {
			m.close()
			return nil, err
		}
	}
	return m, nil
}

// limitFile is the file that holds a cgroup's memory limit.
func (m *memCgroups) limitFile() string {
	if m.v2 {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}

// make makes a fresh cgroup limited to m.limit.
func (m *memCgroups) make() (string, error) {
	m.made++
	dir := filepath.Join(m.parent, fmt.Sprintf("start-%d", m.made))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, m.limitFile()), fmt.Append(nil, m.limit), 0o644); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// close removes the parent, once every cgroup made in it has been removed.
func (m *memCgroups) close() {
	if m.ownParent {
		if err := removeCgroup(m.parent); err != nil {
			fmt.Fprintln(os.Stderr, "proxy-bench:", err)
		}
	}
}

// removeCgroup removes the cgroup dir once no process is left in it: the other processes
// of a killed group (nginx's workers) leave it as they exit, which may be a moment after
// the one waited for.
func removeCgroup(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// evict drops the pages of the file at path from the page cache, so that the next process
// to run it reads it from disk and the kernel charges those pages to that process's memory
// cgroup. It returns how much of the file is still cached after: the pages that a running
// process maps stay (the upstream's, for nginx; the benchmark's own, for the Go floor).
func evict(path string) (cached, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	// A binary just built may not be written out yet, and dirty pages stay in the cache.
	if err := f.Sync(); err != nil {
		return 0, 0, err
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return 0, 0, err
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, 0, err
	}
	size = fi.Size()
	// Mapping the file reads none of it; mincore tells which of its pages are cached.
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, size, err
	}
	defer unix.Munmap(b)
	page := int64(os.Getpagesize())
	vec := make([]byte, (size+page-1)/page)
	// x/sys/unix has no mincore for Linux.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, size, errno
	}
	for _, v := range vec {
		if v&1 != 0 {
			cached += page
		}
	}
	return min(cached, size), size, nil
}

// memRun is what a target did with its memory over a load run, under -memory-limit.
type memRun struct {
	majflt int64 // major page faults of the target's processes
	peak   int64 // its cgroup's peak memory in bytes, -1 when the kernel does not tell
	// peakSinceStart is set when the peak could not be started again for the run (cgroup v2
	// before Linux 6.12), so that it covers the process's whole life.
	peakSinceStart bool
	hits           int64 // times the cgroup reached its limit, -1 when not known
}

// memWatch reads a memory cgroup's peak and limit hits over a load run: watch before it,
// end after.
type memWatch struct {
	dir  string
	v2   bool
	peak *os.File // v2: memory.peak, started again through this descriptor
	hits int64
}

func (m *memCgroups) watch(dir string) *memWatch {
	w := &memWatch{dir: dir, v2: m.v2}
	if m.v2 {
		// A write to memory.peak starts it again for reads through the same descriptor.
		if f, err := os.OpenFile(filepath.Join(dir, "memory.peak"), os.O_RDWR, 0); err == nil {
			if _, err := f.WriteString("reset\n"); err == nil {
				w.peak = f
			} else {
				f.Close()
			}
		}
	} else {
		// v1 starts its maximum again from the current usage on a write of 0.
		os.WriteFile(filepath.Join(dir, "memory.max_usage_in_bytes"), []byte("0"), 0o644)
	}
	w.hits = limitHits(dir, m.v2)
	return w
}

func (w *memWatch) end() *memRun {
	r := &memRun{peak: -1, hits: -1}
	switch {
	case w.peak != nil:
		b := make([]byte, 64)
		n, _ := w.peak.ReadAt(b, 0)
		w.peak.Close()
		r.peak = parseCount(b[:n])
	case w.v2:
		b, _ := os.ReadFile(filepath.Join(w.dir, "memory.peak"))
		r.peak, r.peakSinceStart = parseCount(b), true
	default:
		b, _ := os.ReadFile(filepath.Join(w.dir, "memory.max_usage_in_bytes"))
		r.peak = parseCount(b)
	}
	if h := limitHits(w.dir, w.v2); h >= 0 && w.hits >= 0 {
		r.hits = h - w.hits
	}
	return r
}

// limitHits is how many times the cgroup dir reached its memory limit: v1's
// memory.failcnt, v2's max count in memory.events; -1 when it cannot be read.
func limitHits(dir string, v2 bool) int64 {
	if v2 {
		b, err := os.ReadFile(filepath.Join(dir, "memory.events"))
		if err != nil {
			return -1
		}
		return eventCount(b, "max")
	}
	b, _ := os.ReadFile(filepath.Join(dir, "memory.failcnt"))
	return parseCount(b)
}

// eventCount is key's count in a flat keyed file such as memory.events ("low 0\nhigh
// 0\nmax 12\noom 0\n..."), -1 when it has none.
func eventCount(b []byte, key string) int64 {
	for line := range bytes.Lines(b) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), " ")
		if ok && k == key {
			return parseCount([]byte(v))
		}
	}
	return -1
}

// parseCount parses a cgroup file's single number, -1 when there is none.
func parseCount(b []byte) int64 {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// printMem prints, under -memory-limit, what each proxy did with its memory in its median
// rounds.
func printMem(o *options, rows []row) {
	if o.mem == nil {
		return
	}
	files := "memory.max_usage_in_bytes and memory.failcnt"
	if o.mem.v2 {
		files = "memory.peak and the max count of memory.events"
	}
	fmt.Printf("\nMemory under -memory-limit %d MiB over the measured run, median rounds: major page faults of the proxy's processes (pages read from disk, its own code among them), its cgroup's peak memory and how many times the cgroup reached its limit (%s):\n\n", o.memoryLimit, files)
	fmt.Printf("| target | HTTP/1.1 major faults | peak | limit hits | HTTP/2 major faults | peak | limit hits |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		if r.h1.mem == nil {
			continue // the upstream, which runs in no memory cgroup
		}
		fmt.Printf("| %s | %s | %s |\n", r.name, memCells(r.h1), memCells(r.h2))
	}
}

// memCells is the three cells of one run in printMem's table, dashes for a protocol the
// target does not serve.
func memCells(r result) string {
	if r.mem == nil {
		return "— | — | —"
	}
	peak := mib(r.mem.peak)
	if r.mem.peakSinceStart && r.mem.peak >= 0 {
		peak += " (since its start)"
	}
	hits := "—"
	if r.mem.hits >= 0 {
		hits = strconv.FormatInt(r.mem.hits, 10)
	}
	return fmt.Sprintf("%d | %s | %s", r.mem.majflt, peak, hits)
}
