// Package buildinfo holds the version stamped into the binaries by `make build`
// (-ldflags "-X github.com/larder-lockers/larder/internal/buildinfo.Version=…").
// An unstamped build (go run, go test) reports the module version or "dev".
package buildinfo

import "runtime/debug"

// Version is the software version; set at link time.
var Version = ""

// String returns Version, or the module version from the build info, or "dev".
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
