package rootfs

import (
	"archive/tar"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestPullFromRegistry: an image that is not in the image map is pulled from its registry
// (go-containerregistry's in-process registry on 127.0.0.1, with an image pushed there as a
// multi-platform index), unpacked with its configuration, and unpacked once: a second Get
// fetches the manifest again but no layer. An image the registry does not have is an error
// that names it.
func TestPullFromRegistry(t *testing.T) {
	var blobs atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			blobs.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(archive(t, entry{name: "srv/hello", data: "from the registry", typ: tar.TypeReg})), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH,
		Config: v1.Config{Entrypoint: []string{"/srv/app"}, User: "65532", Env: []string{"A=1"}}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	ref, err := name.ParseReference(host + "/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}

	s := NewStore(t.TempDir(), map[string]string{})
	got, err := s.Get(ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(got.Rootfs, "srv/hello")); err != nil || string(b) != "from the registry" {
		t.Errorf("the pulled image's file: %q %v", b, err)
	}
	want, _ := img.Digest()
	if got.Digest != want.String() || got.User != "65532" || len(got.Entrypoint) != 1 || got.Entrypoint[0] != "/srv/app" {
		t.Errorf("pulled image %+v, want digest %s and its configuration", got, want)
	}
	fetched := blobs.Load()
	again, err := s.Get(ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if again != got || blobs.Load() != fetched {
		t.Errorf("a second Get of the same digest fetched %d more blobs (same image: %v); want none", blobs.Load()-fetched, again == got)
	}

	_, err = s.Get(host + "/team/missing:1")
	if err == nil || !strings.Contains(err.Error(), host+"/team/missing:1") || !strings.Contains(err.Error(), "NAME_UNKNOWN") {
		t.Errorf("an image the registry does not have: %v", err)
	}
}
