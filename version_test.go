package main

import (
	"runtime/debug"
	"testing"

	"github.com/prometheus/common/version"
	"github.com/stretchr/testify/assert"
)

func TestStampVersion(t *testing.T) {
	saved := version.Version
	savedBranch := version.Branch
	t.Cleanup(func() { version.Version, version.Branch = saved, savedBranch })

	for _, tc := range []struct {
		ldflags, module, want string
	}{
		{"", "v0.0.0-20261129035800-20dbdf5abc12+dirty", "0.0.0-20261129035800-20dbdf5abc12+dirty"},
		{"", "v1.2.3", "1.2.3"},
		{"", "(devel)", "devel"},
		{"", "", "devel"},
		{"1.4.0", "v0.0.0-20261129035800-20dbdf5abc12", "1.4.0"},
	} {
		version.Version, version.Branch = tc.ldflags, ""
		stampVersion(&debug.BuildInfo{Main: debug.Module{Version: tc.module}})
		assert.Equal(t, tc.want, version.Version, "-ldflags %q, module %q", tc.ldflags, tc.module)
		assert.Equal(t, "unknown", version.Branch)
	}
	version.Branch = "main"
	stampVersion(&debug.BuildInfo{})
	assert.Equal(t, "main", version.Branch, "a stamped branch is kept")
}
