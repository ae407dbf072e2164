package rootfs

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, link, data string
	typ              byte
}

func archive(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

func TestUntar(t *testing.T) {
	dir := t.TempDir()
	err := Untar(archive(t,
		entry{name: "etc/passwd", data: "root:x:0:0::/:/bin/sh\n", typ: tar.TypeReg},
		entry{name: "bin/app", data: "binary", typ: tar.TypeReg},
		entry{name: "usr/bin/app", link: "/bin/app", typ: tar.TypeSymlink},
		entry{name: "bin/app2", link: "bin/app", typ: tar.TypeLink},
	), dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "bin/app2")); string(b) != "binary" {
		t.Errorf("hard link: %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "usr/bin/app")); l != "/bin/app" {
		t.Errorf("symbolic link: %q", l)
	}
}

// An image is untrusted input: nothing it holds may be written outside the root.
func TestUntarStaysInside(t *testing.T) {
	outside := t.TempDir()
	for name, entries := range map[string][]entry{
		"dot-dot":        {{name: "../../escape", data: "x", typ: tar.TypeReg}},
		"through a link": {{name: "etc", link: outside, typ: tar.TypeSymlink}, {name: "etc/escape", data: "x", typ: tar.TypeReg}},
		"hard link out":  {{name: "passwd", link: "../../../etc/passwd", typ: tar.TypeLink}},
	} {
		dir := filepath.Join(t.TempDir(), "root")
		err := Untar(archive(t, entries...), dir)
		if name == "dot-dot" || name == "hard link out" {
			// Cleaned to a path inside the root: allowed, and it must be inside.
			if _, serr := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); serr == nil {
				t.Errorf("%s: wrote outside the root", name)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
		if _, serr := os.Stat(filepath.Join(outside, "escape")); serr == nil {
			t.Errorf("%s: wrote outside the root", name)
		}
	}
}
