// Package startpages gives back the pages of the executable that start-up touched and
// serving does not use.
//
// Package initialisation (the protobuf registries, the AWS SDK's schemas) and the
// configuration's first trip through xDS touch about 23 MiB of `proxy`'s 33 MB executable;
// an idle proxy references under 2 MiB of it again. Those pages stay mapped, count in the
// process's resident set, and the kernel keeps mapped code ahead of other pages when it
// reclaims memory. Release, called once the proxy is built, marks each read-only mapping of
// the executable cold (MADV_COLD, Linux 5.4: its pages move to the inactive list, the first
// the kernel reclaims and which container memory figures such as `docker stats` leave out)
// and unmaps it (MADV_DONTNEED). The file is unchanged and its pages stay in the page cache
// until reclaimed, so a page touched again is mapped back by a minor fault, without I/O.
//
// A read-only mapping that holds any anonymous (copied-on-write) page is kept: what was
// written there would be lost. A position-independent executable's relocated data
// (.data.rel.ro, written by the dynamic linker before it is made read-only) is one; a
// debugger's breakpoints another. So is a mapping whose smaps entry does not count its
// anonymous pages (a kernel or sandbox that leaves the line out).
package startpages

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Release releases the executable's read-only mappings; see the package comment.
func Release() (Result, error) {
	exe, err := os.Stat("/proc/self/exe")
	if err != nil {
		return Result{}, err
	}
	st, ok := exe.Sys().(*syscall.Stat_t)
	if !ok {
		return Result{}, errors.New("no inode for /proc/self/exe")
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return Result{}, err
	}
	spans, kept, err := releasable(f, st.Ino)
	f.Close()
	if err != nil {
		return Result{}, err
	}
	res := Result{Kept: kept}
	for _, s := range spans {
		// Without MADV_COLD (before Linux 5.4) the pages are only unmapped.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, unix.MADV_COLD)
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, unix.MADV_DONTNEED); e != 0 {
			return res, fmt.Errorf("madvise %#x-%#x: %w", s.start, s.end, e)
		}
		res.Released += s.rss
		res.Mappings++
	}
	return res, nil
}

// mapping is one mapping of /proc/self/smaps that Release may release.
type mapping struct {
	start, end uintptr
	rss        int64 // resident bytes
}

// releasable reads smaps and returns the private read-only mappings (code r-xp, data r--p)
// of the file with inode ino that hold no anonymous page, and how many such mappings were
// kept: they hold one, or their entry has no Anonymous line to say.
func releasable(r io.Reader, ino uint64) (spans []mapping, kept int, err error) {
	var (
		cur     mapping
		ok      bool // cur is the file's and read-only
		anon    int64
		counted bool // cur's entry has an Anonymous line
	)
	flush := func() {
		switch {
		case !ok:
		case counted && anon == 0:
			spans = append(spans, cur)
		default:
			kept++
		}
		ok, anon, counted = false, 0, false
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") {
			// A mapping's first line: "start-end perms offset dev inode [path]".
			flush()
			if len(fields) < 5 {
				return nil, 0, fmt.Errorf("smaps: bad mapping line %q", line)
			}
			lo, hi, found := strings.Cut(fields[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			inode, err3 := strconv.ParseUint(fields[4], 10, 64)
			if !found || err1 != nil || err2 != nil || err3 != nil || end <= start {
				return nil, 0, fmt.Errorf("smaps: bad mapping line %q", line)
			}
			cur = mapping{start: uintptr(start), end: uintptr(end)}
			ok = inode == ino && (fields[1] == "r-xp" || fields[1] == "r--p")
			continue
		}
		if !ok || len(fields) < 3 || fields[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("smaps: bad line %q", line)
		}
		switch fields[0] {
		case "Rss:":
			cur.rss = kb << 10
		case "Anonymous:":
			anon, counted = kb, true
		}
	}
	flush()
	return spans, kept, sc.Err()
}
