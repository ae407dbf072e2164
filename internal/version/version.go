// Package version holds the build's version and commit, stamped in at link time with the
// flags LDFlags returns: the Makefile, the image builder (internal/image), the Dockerfile and
// make release all pass those same flags, so every binary of one commit says the same.
package version

import (
	"fmt"
	"runtime/debug"
)

// Version and Commit are set at link time (LDFlags). Version is a semantic version tag such as
// v0.1.0, or what `git describe --tags --always --dirty` says between tags; Commit is the
// full commit hash.
var (
	Version = ""
	Commit  = ""
)

// String returns the stamped version, or the module version recorded by the Go toolchain,
// or "dev".
func String() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// Revision returns the stamped commit, or the one `go build` recorded from the work tree
// (with "-dirty" when it had changes), or "unknown".
func Revision() string {
	if Commit != "" {
		return Commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "unknown"
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}

// Line is what a program's version flag prints: "gangway proxy v0.1.0 (commit 508f047...)".
func Line(program string) string {
	return fmt.Sprintf("%s %s (commit %s)", program, String(), Revision())
}

// LDFlags are the link flags of every release build: stripped, with version and commit
// stamped. The Makefile's LDFLAGS is this with $(VERSION) and $(COMMIT); a test holds them
// equal.
func LDFlags(version, commit string) string {
	const pkg = "github.com/gangway-ecs/gangway/internal/version"
	return "-s -w -X " + pkg + ".Version=" + version + " -X " + pkg + ".Commit=" + commit
}
