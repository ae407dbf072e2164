// Package image builds Gangway's proxy container image without a container engine, with
// go-containerregistry: one OCI image index for linux/amd64 and linux/arm64, each image
// holding only what the proxy needs on ECS:
//
//	/etc/group, /etc/passwd   root and the non-root user 65532 (nonroot) the proxy runs as
//	/healthcheck              the task definition's health probe (cmd/healthcheck)
//	/proxy                    the entrypoint (cmd/proxy); CA roots are compiled in
//
// The build is reproducible: the same commit, built with the same Go toolchain, gives the
// same index digest on any machine. Binaries are built with -trimpath and -buildvcs=false and
// an environment that names every setting that changes code generation; layer entries are
// sorted, owned by 0:0 with fixed modes, and dated at the commit time (SOURCE_DATE_EPOCH),
// which is also the config's "created"; gzip is the standard library's at a fixed level, with
// no name or time in its header.
//
// The image's contract (user, entrypoint, command, port, health check, files) is declared
// here once; the Dockerfile at the repository root gives the same, and a test holds them
// together.
package image

import (
	"fmt"
	"net"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/config"
)

// Where the image is published, and the reference every shipped task definition, the CDK
// app, the README and the runbooks name (a test checks that they agree).
const (
	Repository = "ghcr.io/gangway-ecs/gangway-proxy"
	// ReleaseTag is the release the shipped files pin; it is the version a release build
	// stamps into the binaries (git describe of the release tag), see internal/version.
	ReleaseTag = "v0.1.0"
	Reference  = Repository + ":" + ReleaseTag
	// Source is the org.opencontainers.image.source label.
	Source = "https://github.com/gangway-ecs/gangway"
)

// The image's runtime contract.
const (
	UID      = 65532
	GID      = 65532
	UserName = "nonroot"
	// User is the config's User: numeric, so that no /etc/passwd lookup is needed and a
	// runtime that checks "runs as non-root" can tell from the config alone.
	User = "65532:65532"
)

var (
	Entrypoint = []string{"/proxy"}
	Cmd        = []string{"run"}
	// HealthTest is the Docker health check; ECS runs the task definition's, which is the same
	// command.
	HealthTest = []string{"CMD", "/healthcheck"}
)

// Healthcheck is the Docker health check, with the timings of the shipped task definitions
// (the timing budget's container health check).
func Healthcheck() *v1.HealthConfig {
	d := budget.Defaults()
	return &v1.HealthConfig{
		Test:        HealthTest,
		Interval:    d.ContainerInterval,
		Timeout:     d.ContainerTimeout,
		StartPeriod: d.ContainerStartPeriod,
		Retries:     d.ContainerRetries,
	}
}

// TrafficPort is the exposed port: the traffic listener of the embedded default
// configuration ("8080/tcp").
func TrafficPort() string {
	_, port, err := net.SplitHostPort(config.Default().Listeners[0].Address)
	if err != nil {
		panic(fmt.Sprintf("image: the default listener's address: %v", err)) // tested
	}
	if _, err := strconv.Atoi(port); err != nil {
		panic(fmt.Sprintf("image: the default listener's port %q", port))
	}
	return port + "/tcp"
}

// Platform is one image of the index.
type Platform struct {
	OS, Architecture, Variant string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Platforms are what the index holds: x86-64 and Graviton (Fargate's ARM64).
var Platforms = []Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
}

// Labels are the OCI labels of each image's config.
func Labels(version, revision string, created time.Time) map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":   Source,
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.created":  created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.title":    "gangway-proxy",
	}
}
