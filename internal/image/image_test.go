package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The inputs of the builds under test: what the Makefile takes from git.
var (
	testVersion  = "v0.1.0-test"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
	testCreated  = time.Date(2026, 11, 20, 9, 30, 15, 0, time.UTC)
)

// gangwayImage builds cmd/gangway-image once (without the race detector: it compresses tens
// of megabytes) for the tests that run it as `make image` does.
var gangwayImage = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "gangway-image-test-")
	if err != nil {
		return "", err
	}
	shared.binDir = dir
	bin := filepath.Join(dir, "gangway-image")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gangway-image")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gangway-image: %v\n%s", err, out)
	}
	return bin, nil
})

// output is one run of `gangway-image build`.
type output struct {
	dir    string
	stdout string
	*Built
}

// buildImage runs `gangway-image build` into dir, with the environment's umask and TMPDIR,
// and reads back the layout it wrote.
func buildImage(t *testing.T, dir string) *output {
	t.Helper()
	bin, err := gangwayImage()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "build", "-module", "../..", "-out", dir,
		"-version", testVersion, "-revision", testRevision, "-created", fmt.Sprint(testCreated.Unix()))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gangway-image build: %v\n%s", err, stderr.String())
	}
	idx, err := ReadLayout(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	b := &Built{Index: idx}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		b.Images = append(b.Images, img)
		b.Platforms = append(b.Platforms, Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant})
	}
	return &output{dir: dir, stdout: stdout.String(), Built: b}
}

// shared is the build most tests inspect; TestMain removes it.
var shared struct {
	once   sync.Once
	dir    string // the shared build
	binDir string // gangwayImage's binary
	out    *output
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{shared.dir, shared.binDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

func built(t *testing.T) *output {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "gangway-image-shared-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		shared.out = buildImage(t, dir)
	})
	if shared.out == nil {
		t.Fatal("the shared build failed (see the first test that used it)")
	}
	return shared.out
}

func digestOf(t *testing.T, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestReproducible builds twice, the second time with a umask that would leak into file
// modes and another temporary directory, and expects the same index digest and the same
// bytes in every file written: the layout and the docker tarballs.
func TestReproducible(t *testing.T) {
	first := built(t)

	old := syscall.Umask(0o077)
	t.Setenv("TMPDIR", t.TempDir())
	second := buildImage(t, t.TempDir())
	syscall.Umask(old)

	if a, b := digestOf(t, first.Index), digestOf(t, second.Index); a != b {
		t.Fatalf("two builds of one commit: index %s, then %s", a, b)
	}
	if !strings.Contains(first.stdout, "index "+digestOf(t, first.Index).String()) {
		t.Errorf("build does not print the index digest:\n%s", first.stdout)
	}
	files := func(root string) map[string]string {
		out := map[string]string{}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			rel, _ := filepath.Rel(root, path)
			out[rel] = sha256Hex(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := files(first.dir), files(second.dir)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("the outputs differ:\n%v\n%v", a, b)
	}
	for _, want := range []string{"oci/index.json", "oci/oci-layout", "proxy-amd64.tar", "proxy-arm64.tar"} {
		if _, ok := a[want]; !ok {
			t.Errorf("build wrote no %s: %v", want, a)
		}
	}

	// The inputs reach the image: another commit time is another layer.
	l1, _ := newLayer(systemEntries(), testCreated)
	l2, _ := newLayer(systemEntries(), testCreated.Add(time.Second))
	if digestOf(t, l1) == digestOf(t, l2) {
		t.Fatal("the commit time does not reach the layers")
	}
}

func TestIndexHoldsBothPlatforms(t *testing.T) {
	b := built(t)
	m, err := b.Index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", m.MediaType, types.OCIImageIndex)
	}
	var got []string
	for i, d := range m.Manifests {
		if d.MediaType != types.OCIManifestSchema1 {
			t.Errorf("manifest %d: media type %s", i, d.MediaType)
		}
		if d.Digest != digestOf(t, b.Images[i]) {
			t.Errorf("manifest %d: digest %s, image %s", i, d.Digest, digestOf(t, b.Images[i]))
		}
		got = append(got, d.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64/v8"}; !slices.Equal(got, want) {
		t.Fatalf("platforms %v, want %v", got, want)
	}
}

func TestImageConfig(t *testing.T) {
	b := built(t)
	for i, img := range b.Images {
		p := b.Platforms[i]
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		checks := []struct {
			what      string
			got, want any
		}{
			{"os/architecture/variant", cf.OS + "/" + cf.Architecture + "/" + cf.Variant, p.OS + "/" + p.Architecture + "/" + p.Variant},
			{"created", cf.Created.Time, testCreated},
			{"User", c.User, "65532:65532"},
			{"Entrypoint", c.Entrypoint, []string{"/proxy"}},
			{"Cmd", c.Cmd, []string{"run"}},
			{"ExposedPorts", c.ExposedPorts, map[string]struct{}{"8080/tcp": {}}},
			{"Healthcheck", *c.Healthcheck, v1.HealthConfig{Test: []string{"CMD", "/healthcheck"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: 15 * time.Second, Retries: 3}},
			{"Labels", c.Labels, map[string]string{
				"org.opencontainers.image.source":   "https://github.com/gangway-ecs/gangway",
				"org.opencontainers.image.revision": testRevision,
				"org.opencontainers.image.version":  testVersion,
				"org.opencontainers.image.created":  "2026-11-20T09:30:15Z",
				"org.opencontainers.image.title":    "gangway-proxy",
			}},
			{"history entries", len(cf.History), 2},
			{"diff IDs", len(cf.RootFS.DiffIDs), 2},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: %s = %v, want %v", p, c.what, c.got, c.want)
			}
		}
		for _, h := range cf.History {
			if !h.Created.Time.Equal(testCreated) {
				t.Errorf("%s: history %q created %v, want the commit time", p, h.CreatedBy, h.Created.Time)
			}
		}
	}
}

// entry is what a test checks of one tar header.
type entry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Owner    string // Uname:Gname
	ModTime  time.Time
}

func layerEntries(t *testing.T, l v1.Layer) ([]entry, map[string][]byte) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []entry
	files := map[string][]byte{}
	readTar(t, rc, func(h *tar.Header, data []byte) {
		out = append(out, entry{h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname + ":" + h.Gname, h.ModTime.UTC()})
		if h.Typeflag == tar.TypeReg {
			files[h.Name] = data
		}
	})
	return out, files
}

// readTar calls each with every member of the archive r and its contents.
func readTar(t *testing.T, r io.Reader, each func(h *tar.Header, data []byte)) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		each(h, data)
	}
}

// TestLayers: each image holds exactly the listed files, owned by root, with their modes and
// the commit time; the binaries are static executables for the image's architecture, built
// with the version and the compiled-in CA roots.
func TestLayers(t *testing.T) {
	b := built(t)
	want := [][]entry{
		{
			{"etc/", tar.TypeDir, 0o755, 0, 0, ":", testCreated},
			{"etc/group", tar.TypeReg, 0o644, 0, 0, ":", testCreated},
			{"etc/passwd", tar.TypeReg, 0o644, 0, 0, ":", testCreated},
		},
		{
			{"healthcheck", tar.TypeReg, 0o755, 0, 0, ":", testCreated},
			{"proxy", tar.TypeReg, 0o755, 0, 0, ":", testCreated},
		},
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for i, img := range b.Images {
		p := b.Platforms[i]
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != len(want) {
			t.Fatalf("%s: %d layers, want %d", p, len(layers), len(want))
		}
		files := map[string][]byte{}
		for j, l := range layers {
			if mt, _ := l.MediaType(); mt != types.OCILayer {
				t.Errorf("%s: layer %d media type %s", p, j, mt)
			}
			got, data := layerEntries(t, l)
			if !reflect.DeepEqual(got, want[j]) {
				t.Errorf("%s: layer %d:\n got %+v\nwant %+v", p, j, got, want[j])
			}
			for k, v := range data {
				files[k] = v
			}
		}
		if s := string(files["etc/passwd"]); !strings.Contains(s, "\nnonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd lacks nonroot 65532:\n%s", p, s)
		}
		if s := string(files["etc/group"]); !strings.Contains(s, "\nnonroot:x:65532:") {
			t.Errorf("%s: /etc/group lacks nonroot 65532:\n%s", p, s)
		}
		for _, bin := range []string{"proxy", "healthcheck"} {
			f, err := elf.NewFile(bytes.NewReader(files[bin]))
			if err != nil {
				t.Fatalf("%s: /%s: %v", p, bin, err)
			}
			if f.Machine != machines[p.Architecture] {
				t.Errorf("%s: /%s is built for %s", p, bin, f.Machine)
			}
			for _, prog := range f.Progs {
				if prog.Type == elf.PT_INTERP {
					t.Errorf("%s: /%s is dynamically linked", p, bin)
				}
			}
			info, err := buildinfo.Read(bytes.NewReader(files[bin]))
			if err != nil {
				t.Fatalf("%s: /%s: %v", p, bin, err)
			}
			settings := map[string]string{}
			for _, s := range info.Settings {
				settings[s.Key] = s.Value
			}
			if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
				t.Errorf("%s: /%s build settings %v", p, bin, settings)
			}
			if !bytes.Contains(files[bin], []byte(testVersion)) {
				t.Errorf("%s: /%s is not stamped with the version %s", p, bin, testVersion)
			}
			if bin == "proxy" && !slices.ContainsFunc(info.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
				t.Errorf("%s: /proxy lacks the compiled-in CA roots", p)
			}
		}
	}
}

// TestDockerTarball checks what `docker load` reads (no engine runs here): manifest.json
// names the config and the layers by their paths in the archive, with the tag, and each
// file's sha256 is what the image's config and manifest say.
func TestDockerTarball(t *testing.T) {
	b := built(t)
	img := b.Images[0]
	path := filepath.Join(t.TempDir(), "proxy-amd64.tar")
	if err := WriteTarball(path, img, "v0.1.0-test-amd64"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	members := map[string][]byte{}
	readTar(t, f, func(h *tar.Header, data []byte) { members[h.Name] = data })
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(members["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 1 {
		t.Fatalf("manifest.json lists %d images", len(manifest))
	}
	m := manifest[0]
	if want := []string{Repository + ":v0.1.0-test-amd64"}; !slices.Equal(m.RepoTags, want) {
		t.Errorf("RepoTags %v, want %v", m.RepoTags, want)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256Hex(members[m.Config]); "sha256:"+got != cfgName.String() {
		t.Errorf("config %s has sha256 %s, want %s", m.Config, got, cfgName)
	}
	layers, _ := img.Layers()
	if len(m.Layers) != len(layers) {
		t.Fatalf("%d layers in manifest.json, want %d", len(m.Layers), len(layers))
	}
	for i, l := range layers {
		d, _ := l.Digest()
		if got := sha256Hex(members[m.Layers[i]]); "sha256:"+got != d.String() {
			t.Errorf("layer %s has sha256 %s, want %s", m.Layers[i], got, d)
		}
	}
}

func TestTrafficPortIsTheDefaultListener(t *testing.T) {
	if got := TrafficPort(); got != "8080/tcp" {
		t.Fatalf("TrafficPort() = %s", got)
	}
}

func TestTag(t *testing.T) {
	for in, want := range map[string]string{"v0.1.0": "v0.1.0", "v0.1.0-3-gabc-dirty": "v0.1.0-3-gabc-dirty", "1.0+meta": "1.0-meta"} {
		if got := Tag(in); got != want {
			t.Errorf("Tag(%q) = %q, want %q", in, got, want)
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
