package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/gangway-ecs/gangway/internal/version"
)

// Options are a build's inputs. Version, Revision and Created come from the commit (the
// Makefile passes `git describe`, `git rev-parse HEAD` and the commit time); nothing else
// about the machine reaches the image.
type Options struct {
	// ModuleDir is the root of the Gangway module (where go.mod is).
	ModuleDir string
	// Version is stamped into both binaries and labelled.
	Version string
	// Revision is the commit, labelled.
	Revision string
	// Created is the commit time: every file's mtime, the config's "created", the label.
	Created time.Time
	// Platforms to build; default Platforms.
	Platforms []Platform
	// Go is the go command; default "go".
	Go string
	// Log receives the commands run; default io.Discard.
	Log io.Writer
	// BinDir, when set, keeps the compiled binaries as BinDir/gangway-proxy-OS-ARCH and
	// BinDir/gangway-healthcheck-OS-ARCH (make release ships them beside the image).
	BinDir string
}

// Built is a build's result.
type Built struct {
	Index v1.ImageIndex
	// Images are the index's images, in the order of Options.Platforms.
	Images    []v1.Image
	Platforms []Platform
}

// Build compiles /proxy and /healthcheck for each platform and assembles the index.
func Build(ctx context.Context, o Options) (*Built, error) {
	if o.Version == "" || o.Revision == "" || o.Created.IsZero() {
		return nil, errors.New("image: Version, Revision and Created are required")
	}
	if o.Platforms == nil {
		o.Platforms = Platforms
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	tmp, err := os.MkdirTemp("", "gangway-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if o.BinDir != "" {
		// go build runs in ModuleDir, so a relative -o would land there.
		if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(o.BinDir, 0o755); err != nil {
			return nil, err
		}
	}

	system, err := newLayer(systemEntries(), o.Created)
	if err != nil {
		return nil, err
	}
	b := &Built{Index: mutate.IndexMediaType(empty.Index, types.OCIImageIndex), Platforms: o.Platforms}
	for _, p := range o.Platforms {
		dir, proxyOut, hcOut := filepath.Join(tmp, p.Architecture+p.Variant), "proxy", "healthcheck"
		if o.BinDir != "" {
			suffix := "-" + p.OS + "-" + p.Architecture
			dir, proxyOut, hcOut = o.BinDir, "gangway-proxy"+suffix, "gangway-healthcheck"+suffix
		}
		proxy, err := compile(ctx, o, p, "./cmd/proxy", filepath.Join(dir, proxyOut), version.LDFlags(o.Version, o.Revision))
		if err != nil {
			return nil, err
		}
		hc, err := compile(ctx, o, p, "./cmd/healthcheck", filepath.Join(dir, hcOut), version.LDFlags(o.Version, o.Revision))
		if err != nil {
			return nil, err
		}
		bins, err := newLayer(binaryEntries(proxy, hc), o.Created)
		if err != nil {
			return nil, err
		}
		img, err := assemble(o, p, system, bins)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", p, err)
		}
		b.Images = append(b.Images, img)
		b.Index = mutate.AppendManifests(b.Index, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}},
		})
	}
	return b, nil
}

// buildSettings are the variables that change the generated code, set for every build, so
// that a developer's GOFLAGS or GOAMD64 cannot make their image differ from CI's. The
// Dockerfile sets the same.
func buildSettings(p Platform) map[string]string {
	return map[string]string{
		"CGO_ENABLED":  "0",
		"GOOS":         p.OS,
		"GOARCH":       p.Architecture,
		"GOAMD64":      "v1",
		"GOARM64":      "v8.0",
		"GOFLAGS":      "-buildvcs=false",
		"GOEXPERIMENT": "",
	}
}

// buildEnv is the environment of `go build` for p: the caller's, with buildSettings.
func buildEnv(p Platform) []string {
	override := buildSettings(p)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := override[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range override {
		env = append(env, k+"="+v)
	}
	return env
}

// compile builds pkg for p into out and returns the binary.
func compile(ctx context.Context, o Options, p Platform, pkg, out, ldflags string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = o.ModuleDir
	cmd.Env = buildEnv(p)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = o.Log, io.MultiWriter(o.Log, &stderr)
	fmt.Fprintf(o.Log, "GOOS=%s GOARCH=%s %s\n", p.OS, p.Architecture, strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, stderr.String())
	}
	return os.ReadFile(out)
}

// assemble makes one platform's image: the two layers, then the config.
func assemble(o Options, p Platform, system, bins v1.Layer) (v1.Image, error) {
	created := v1.Time{Time: o.Created.UTC().Truncate(time.Second)}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img,
		mutate.Addendum{Layer: system, History: v1.History{Created: created, CreatedBy: "gangway-image: /etc/passwd, /etc/group", Comment: "user " + User}},
		mutate.Addendum{Layer: bins, History: v1.History{Created: created, CreatedBy: "gangway-image: /proxy, /healthcheck", Comment: o.Version}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   Entrypoint,
		Cmd:          Cmd,
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{TrafficPort(): {}},
		Labels:       Labels(o.Version, o.Revision, o.Created),
		Healthcheck:  Healthcheck(),
	}
	return mutate.ConfigFile(img, cf)
}
