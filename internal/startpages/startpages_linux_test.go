package startpages

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const smapsSample = `00400000-011fe000 r-xp 00000000 fe:00 77 /proxy
Size:              14328 kB
Rss:                1848 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw
011fe000-022dc000 r--p 00dfe000 fe:00 77 /proxy
Size:              17272 kB
Rss:                3392 kB
Anonymous:             0 kB
VmFlags: rd mr mw me dw
022dc000-02398000 rw-p 01edc000 fe:00 77 /proxy
Rss:                 688 kB
Anonymous:           120 kB
02398000-023a0000 r--p 01f98000 fe:00 77 /proxy
Rss:                  32 kB
Anonymous:             4 kB
023a0000-023b0000 r--p 01fa0000 fe:00 77 /proxy
Rss:                  64 kB
7ff04d08e000-7ff04d1e4000 r-xp 00026000 fe:00 326269 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 968 kB
Anonymous:             0 kB
c000000000-c000400000 rw-p 00000000 00:00 0
Rss:                4096 kB
Anonymous:          4096 kB
7ffe8c83e000-7ffe8c860000 rw-p 00000000 00:00 0                          [stack]
Rss:                  16 kB
Anonymous:            16 kB
`

// Only the executable's read-only mappings with no copied-on-write page are released: not
// its writable data, not a read-only mapping a linker or debugger wrote to or one whose
// anonymous pages smaps does not count, not a library.
func TestReleasable(t *testing.T) {
	got, kept, err := releasable(strings.NewReader(smapsSample), 77)
	if err != nil {
		t.Fatal(err)
	}
	want := []mapping{{0x400000, 0x11fe000, 1848 << 10}, {0x11fe000, 0x22dc000, 3392 << 10}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || kept != 2 {
		t.Fatalf("releasable mappings: %+v, kept %d; want %+v, kept 2", got, kept, want)
	}
	if got, kept, _ := releasable(strings.NewReader(smapsSample), 5); len(got) != 0 || kept != 0 {
		t.Fatalf("another file's inode: %+v, kept %d; want none", got, kept)
	}
	for _, bad := range []string{"zz-011fe000 r-xp 0 fe:00 77 /x\n", "011fe000-00400000 r-xp 0 fe:00 77 /x\n", "00400000-011fe000 r-xp 0\n"} {
		if _, _, err := releasable(strings.NewReader(bad), 77); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// In this process: the release lowers the resident set by file pages, and the process goes
// on running the code it released.
func TestRelease(t *testing.T) {
	before := statusKB(t, "RssFile")
	res, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := statusKB(t, "RssFile")
	if res.Released <= 0 || res.Mappings == 0 || after >= before {
		t.Fatalf("%+v; RssFile %d kB before, %d kB after: want fewer after", res, before, after)
	}
	runtime.GC()
	if _, err := strconv.Atoi(strings.Repeat("7", 9)); err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v; RssFile %d → %d kB", res, before, after)
}

// A position-independent executable's relocated read-only data is kept: released, it would
// read back from the file without the dynamic linker's relocations, and the program would
// crash on its first interface call or map of composite literals.
func TestReleaseKeepsRelocatedData(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pie")
	build := exec.Command("go", "build", "-buildmode=pie", "-o", bin, "./testdata/pie")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=pie: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	typ := f.Type
	f.Close()
	if typ != elf.ET_DYN {
		t.Fatalf("%s is %v, not a position-independent executable", bin, typ)
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(out), "\nok\n") {
		t.Fatalf("the PIE program after Release: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "kept 0\n") || strings.Contains(string(out), "released 0 ") {
		t.Fatalf("the PIE program kept or released nothing, so this test checks nothing:\n%s", out)
	}
	t.Log(strings.TrimSpace(string(out)))
}

func statusKB(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
