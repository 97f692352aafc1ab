package main

import (
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"
)

func init() {
	bi, ok := debug.ReadBuildInfo()
	if ok {
		stampVersion(bi)
	}
}

// stampVersion fills in what no -ldflags stamp set, from the build
// information Go records in every binary, so that --version, the landing
// page and apivideo_exporter_build_info are never blank: the module version
// (a pseudo-version such as 0.0.0-20260101120000-0123456789ab+dirty for
// go build in a checkout, devel for go run). The revision already comes
// from the build information (version.GetRevision); no branch is recorded.
func stampVersion(bi *debug.BuildInfo) {
	if version.Version == "" {
		v := strings.TrimPrefix(bi.Main.Version, "v")
		if v == "" || v == "(devel)" {
			v = "devel"
		}
		version.Version = v
	}
	if version.Branch == "" {
		version.Branch = "unknown"
	}
}
