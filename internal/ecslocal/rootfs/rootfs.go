// Package rootfs turns container images into root filesystems for runc. An image map says
// which OCI image layout stands in for an image name of a task definition (a name that cannot
// be pulled here); any other name is pulled from its registry. The image, or the image for
// this machine's platform in a multi-platform index, is flattened with go-containerregistry
// and unpacked once per digest.
package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Image is an unpacked image: its root filesystem and the parts of its configuration that
// decide how a container starts.
type Image struct {
	Name       string
	Digest     string
	Rootfs     string // unpacked, shared: never written to
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	StopSignal string // the signal a stop sends first; SIGTERM when empty
}

// Store unpacks images under a directory.
type Store struct {
	dir    string
	images map[string]string // image name in task definitions → OCI layout directory

	mu       sync.Mutex
	unpacked map[string]*Image // by digest
}

// NewStore unpacks under dir the images that images maps to OCI layouts.
func NewStore(dir string, images map[string]string) *Store {
	return &Store{dir: dir, images: images, unpacked: map[string]*Image{}}
}

// Get returns the unpacked image for name, unpacking it on first use of its digest: the
// image map's layout, or else the image pulled from its registry (name is a reference, as in
// a task definition: "registry.example:5000/app:1", "app@sha256:…", "nginx" for Docker Hub).
// A pull is bounded by pullTimeout.
func (s *Store) Get(name string) (*Image, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
	defer cancel() // after unpacking: a pulled image's layers are read as they are unpacked
	var img v1.Image
	var err error
	if path, ok := s.images[name]; ok {
		if img, err = load(path); err != nil {
			return nil, fmt.Errorf("image %q: layout %s: %w", name, path, err)
		}
	} else if img, err = pull(ctx, name); err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.unpacked[digest.String()]; u != nil {
		return u, nil
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %q: config: %w", name, err)
	}
	dir := filepath.Join(s.dir, digest.Hex)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := Untar(rc, dir); err != nil {
		return nil, fmt.Errorf("image %q: unpacking: %w", name, err)
	}
	u := &Image{Name: name, Digest: digest.String(), Rootfs: dir,
		Entrypoint: cfg.Config.Entrypoint, Cmd: cfg.Config.Cmd, Env: cfg.Config.Env,
		User: cfg.Config.User, WorkingDir: cfg.Config.WorkingDir, StopSignal: cfg.Config.StopSignal}
	s.unpacked[digest.String()] = u
	return u, nil
}

// pullTimeout bounds a pull, unpacking included.
const pullTimeout = 5 * time.Minute

// pull fetches an image's manifest (for linux and this machine's architecture, from a
// multi-platform index) and returns the image, whose layers are fetched as they are read.
// Credentials come from the Docker configuration (~/.docker/config.json and its helpers),
// none otherwise; a registry on a loopback or private address is spoken to over HTTP.
func pull(ctx context.Context, ref string) (v1.Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		return nil, err
	}
	return desc.Image()
}

// load finds the image in an OCI layout: the only one, or the one for linux and this
// machine's architecture, looking into nested indexes.
func load(path string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(path)
	if err != nil {
		return nil, err
	}
	return pick(idx)
}

func pick(idx v1.ImageIndex) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Image
	for _, d := range m.Manifests {
		if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != runtime.GOARCH) {
			continue
		}
		switch {
		case d.MediaType.IsIndex():
			inner, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			img, err := pick(inner)
			if err != nil {
				return nil, err
			}
			found = append(found, img)
		case d.MediaType.IsImage():
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no image for linux/%s", runtime.GOARCH)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d images for linux/%s; want one", len(found), runtime.GOARCH)
}

// Untar unpacks a flattened image filesystem into dir. Entries that would land outside dir
// are refused; device nodes are skipped (runc provides /dev).
func Untar(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		target, err := inside(dir, h.Name)
		if err != nil {
			return err
		}
		if err := noSymlinkParent(dir, target); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(h.Mode).Perm() | os.FileMode(h.Mode)&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := inside(dir, h.Linkname)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return err
			}
		default:
			continue // devices and FIFOs
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil && !errors.Is(err, os.ErrPermission) {
			return err
		}
	}
}

// inside resolves an archive path under dir, refusing one that escapes it.
func inside(dir, name string) (string, error) {
	clean := filepath.Clean("/" + name)
	target := filepath.Join(dir, clean)
	if target != dir && !strings.HasPrefix(target, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("archive entry %q escapes the root", name)
	}
	return target, nil
}

// noSymlinkParent refuses an entry whose parent directories include a symbolic link: writing
// through one (an entry "etc -> /etc" and then "etc/passwd") would write outside the root.
func noSymlinkParent(dir, target string) error {
	rel, err := filepath.Rel(dir, filepath.Dir(target))
	if err != nil || rel == "." {
		return err
	}
	p := dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("archive entry %q is under the symbolic link %q", target[len(dir):], p[len(dir):])
		}
	}
	return nil
}
