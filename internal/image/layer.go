package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one file or directory of a layer. Every entry is owned by root (0:0): the
// binaries are world-readable and executable (0755), so that user 65532 runs them but cannot
// change them.
type Entry struct {
	Path string // absolute, e.g. "/etc/passwd"; a directory ends in "/"
	Mode int64  // permission bits
	Data []byte // nil for a directory
}

// Dir reports whether the entry is a directory.
func (e Entry) Dir() bool { return strings.HasSuffix(e.Path, "/") }

// rootfs holds /etc/passwd and /etc/group: root and the non-root user the proxy runs as,
// neither with a shell (the image has none). The Dockerfile copies the same files.
//
//go:embed rootfs/etc
var rootfs embed.FS

// systemEntries are the first layer: the same for every build.
func systemEntries() []Entry {
	file := func(name string) []byte {
		b, err := rootfs.ReadFile("rootfs" + name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		return b
	}
	return []Entry{
		{Path: "/etc/", Mode: 0o755},
		{Path: "/etc/group", Mode: 0o644, Data: file("/etc/group")},
		{Path: "/etc/passwd", Mode: 0o644, Data: file("/etc/passwd")},
	}
}

// binaryEntries are the second layer: the two static binaries.
func binaryEntries(proxy, healthcheck []byte) []Entry {
	return []Entry{
		{Path: "/healthcheck", Mode: 0o755, Data: healthcheck},
		{Path: "/proxy", Mode: 0o755, Data: proxy},
	}
}

// gzipLevel trades build time for the smallest download: layers are built once and pulled
// by every task.
const gzipLevel = gzip.BestCompression

// tarLayer writes entries, sorted by path, into an uncompressed tar: owners 0:0, no user or
// group names, every time set to mtime. The result depends on the entries and mtime only.
func tarLayer(entries []Entry, mtime time.Time) ([]byte, error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if !path.IsAbs(e.Path) {
			return nil, fmt.Errorf("layer entry %q: not an absolute path", e.Path)
		}
		h := &tar.Header{
			Name:    strings.TrimPrefix(e.Path, "/"),
			Mode:    e.Mode,
			ModTime: mtime.UTC().Truncate(time.Second),
			Format:  tar.FormatUSTAR,
		}
		if e.Dir() {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// newLayer compresses the tar once and returns it as an OCI layer.
func newLayer(entries []Entry, mtime time.Time) (v1.Layer, error) {
	raw, err := tarLayer(entries, mtime)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzipLevel)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
