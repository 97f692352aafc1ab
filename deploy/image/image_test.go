// Package image_test checks the Dockerfile and its build context for what
// the image must carry: the license and the OCI labels.
package image_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const root = "../.."

// finalStage returns the instructions of the Dockerfile's last stage, one
// per element, with continuation lines joined.
func finalStage(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	var instructions []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		instructions = append(instructions, cur.String())
		cur.Reset()
	}
	last := -1
	for i, ins := range instructions {
		if strings.HasPrefix(ins, "FROM ") {
			last = i
		}
	}
	require.GreaterOrEqual(t, last, 0, "no FROM")
	return instructions[last:]
}

func TestImageCarriesLicense(t *testing.T) {
	license, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	require.NoError(t, err)
	assert.Contains(t, string(license), "Apache License\n                           Version 2.0, January 2004")
	assert.Contains(t, string(license), "END OF TERMS AND CONDITIONS")

	assert.Contains(t, finalStage(t), "COPY LICENSE /license/LICENSE")

	// The build context keeps the file.
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	for _, line := range strings.Split(string(ignore), "\n") {
		pattern := strings.TrimSpace(line)
		if pattern == "" || strings.HasPrefix(pattern, "#") || strings.HasPrefix(pattern, "!") {
			continue
		}
		matched, err := filepath.Match(strings.TrimPrefix(pattern, "/"), "LICENSE")
		require.NoError(t, err, pattern)
		assert.False(t, matched, ".dockerignore pattern %q drops the LICENSE", pattern)
	}
}

func TestImageLabels(t *testing.T) {
	stage := finalStage(t)
	var label string
	declared := map[string]bool{}
	for _, ins := range stage {
		if arg, ok := strings.CutPrefix(ins, "ARG "); ok {
			name, _, _ := strings.Cut(arg, "=")
			declared[name] = true
		}
		if l, ok := strings.CutPrefix(ins, "LABEL "); ok {
			label = l
		}
	}
	for _, want := range []string{
		`org.opencontainers.image.created="${BUILD_DATE}"`,
		`org.opencontainers.image.version="${VERSION}"`,
		`org.opencontainers.image.revision="${REVISION}"`,
		`org.opencontainers.image.licenses="Apache-2.0"`,
	} {
		assert.Contains(t, label, want)
	}
	// A build argument is empty in a stage that does not declare it.
	for _, arg := range []string{"BUILD_DATE", "VERSION", "REVISION"} {
		assert.True(t, declared[arg], "ARG %s missing from the final stage", arg)
	}
}
