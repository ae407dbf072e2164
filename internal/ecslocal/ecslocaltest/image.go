package ecslocaltest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RequireRoot skips a test that needs root on Linux (namespaces, runc), saying why, unless
// the suite requires it (GANGWAY_ECSLOCAL_REQUIRE, as make test-ecslocal sets, or CI=true),
// where it fails instead.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	required := os.Getenv("GANGWAY_ECSLOCAL_REQUIRE") != "" || os.Getenv("CI") == "true"
	why := ""
	switch {
	case runtime.GOOS != "linux":
		why = "tasks run in Linux namespaces; this is " + runtime.GOOS
	case os.Geteuid() != 0:
		why = "tasks need root (network namespaces, runc); run the suite as root: sudo make test-ecslocal"
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil && why == "" {
			why = tool + " is not installed; make test-ecslocal installs it"
		}
	}
	if why == "" {
		return
	}
	if required {
		t.Fatal(why)
	}
	t.Skip(why)
}

// BuildGo builds the main package in dir as a static binary for this machine and returns
// its path.
func BuildGo(t testing.TB, dir string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(dir))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, b)
	}
	return out
}

// ImageLayout writes an OCI image layout of one image for this machine's platform: files
// (path in the image → content, mode 0755) in one layer, and cfg as its configuration. It
// returns the layout's directory.
func ImageLayout(t testing.TB, files map[string][]byte, cfg v1.Config) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{Architecture: runtime.GOARCH, OS: "linux", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}
