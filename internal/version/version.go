// Package version holds the build's version, stamped in by the Makefile with -ldflags.
package version

import "runtime/debug"

// Version is set at link time (-X github.com/gangway-ecs/gangway/internal/version.Version=...).
var Version = ""

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
