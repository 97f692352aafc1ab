package main

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/common/version"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStampVersion(t *testing.T) {
	saved := version.Version
	savedBranch := version.Branch
	t.Cleanup(func() { version.Version, version.Branch = saved, savedBranch })

	for _, tc := range []struct {
		ldflags, file, module, want string
	}{
		{"", "0.2.0\n", "v0.0.0-20261129035800-20dbdf5abc12+dirty", "0.2.0"},
		{"", "", "v0.0.0-20261129035800-20dbdf5abc12+dirty", "0.0.0-20261129035800-20dbdf5abc12+dirty"},
		{"", " \n", "v1.2.3", "1.2.3"},
		{"", "", "(devel)", "devel"},
		{"", "", "", "devel"},
		{"1.4.0", "0.2.0", "v0.0.0-20261129035800-20dbdf5abc12", "1.4.0"},
	} {
		version.Version, version.Branch = tc.ldflags, ""
		stampVersion(&debug.BuildInfo{Main: debug.Module{Version: tc.module}}, tc.file)
		assert.Equal(t, tc.want, version.Version, "-ldflags %q, VERSION %q, module %q", tc.ldflags, tc.file, tc.module)
		assert.Equal(t, "unknown", version.Branch)
	}
	version.Branch = "main"
	stampVersion(&debug.BuildInfo{}, "")
	assert.Equal(t, "main", version.Branch, "a stamped branch is kept")
}

// The VERSION file is one release number: the Makefile, the chart's
// appVersion and the binary all read it.
func TestVersionFile(t *testing.T) {
	data, err := os.ReadFile("VERSION")
	require.NoError(t, err)
	assert.Regexp(t, `^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?\n$`, string(data))
	assert.Equal(t, string(data), releaseVersion, "the embedded VERSION")
	assert.Equal(t, strings.TrimSpace(string(data)), version.Version, "a test binary without -ldflags reports VERSION")
}
