package image

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refNameAnnotation names the index in the layout's index.json, as OCI tools expect
// (`umoci unpack --image DIR:TAG`, `skopeo copy oci:DIR:TAG`).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Tag is the tag a build of version gets in the OCI layout and the docker tarballs: version
// with the characters a tag cannot hold replaced by '-'.
func Tag(version string) string {
	t := badTagChars.ReplaceAllString(version, "-")
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// WriteLayout writes the index as an OCI image layout in dir, replacing what was there, with
// index.json naming it by tag.
func WriteLayout(dir string, idx v1.ImageIndex, tag string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: tag})); err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout reads the index WriteLayout wrote.
func ReadLayout(dir string) (v1.ImageIndex, error) {
	outer, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w (run `make image` first)", dir, err)
	}
	m, err := outer.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("oci layout %s: index.json lists %d entries, want the one index `make image` writes", dir, len(m.Manifests))
	}
	return outer.ImageIndex(m.Manifests[0].Digest)
}

// WriteTarball writes one platform's image as a tarball that `docker load` accepts
// (manifest.json with its RepoTags, the config and the gzipped layers). A docker tarball
// holds images, not an index, so each platform gets its own.
func WriteTarball(path string, img v1.Image, tag string) error {
	t, err := name.NewTag(Repository + ":" + tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(path, t, img); err != nil {
		return fmt.Errorf("docker tarball %s: %w", path, err)
	}
	return nil
}

// Sizes are an image's download and unpacked sizes: the sum of its layers, compressed and
// uncompressed (the config and manifest add about a kilobyte).
type Sizes struct {
	Compressed, Uncompressed int64
}

// SizesOf measures img.
func SizesOf(img v1.Image) (Sizes, error) {
	var s Sizes
	layers, err := img.Layers()
	if err != nil {
		return s, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return s, err
		}
		s.Compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			return s, err
		}
		u, err := countBytes(rc)
		rc.Close()
		if err != nil {
			return s, err
		}
		s.Uncompressed += u
	}
	return s, nil
}

func countBytes(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }
