package main

import (
	_ "embed"
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"
)

// releaseVersion is the VERSION file, the version of the release the code
// belongs to; `make` stamps it as well, with the commit, through -ldflags.
//
//go:embed VERSION
var releaseVersion string

func init() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	stampVersion(bi, releaseVersion)
}

// stampVersion fills in what no -ldflags stamp set, so that --version, the
// landing page and apivideo_exporter_build_info are never blank: the
// VERSION file, or when it is empty the module version Go records in the
// binary (a pseudo-version for go build in a checkout, devel for go run).
// The revision already comes from the build information
// (version.GetRevision); no branch is recorded.
func stampVersion(bi *debug.BuildInfo, fileVersion string) {
	if version.Version == "" {
		v := strings.TrimSpace(fileVersion)
		if v == "" {
			v = strings.TrimPrefix(bi.Main.Version, "v")
		}
		if v == "" || v == "(devel)" {
			v = "devel"
		}
		version.Version = v
	}
	if version.Branch == "" {
		version.Branch = "unknown"
	}
}
