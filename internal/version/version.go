// Package version holds the build's version, set at link time or read from the
// module's build information.
package version

import "runtime/debug"

// Version is set with -ldflags "-X github.com/certfleet/certfleet/internal/version.Version=v1.2.3"
// by release builds; otherwise it is derived from the build information.
var Version = ""

// String returns the version of this binary: the linker-set one, the module
// version when installed with `go install`, the VCS revision, or "dev".
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
}
