// Package image_test checks the Dockerfile and its build context for what
// the image must carry: the license and the OCI labels.
package image_test

import (
	"os"
	"path/filepath"
	"regexp"
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

// inContext reports whether .dockerignore keeps path in the build context:
// the last pattern that matches it or one of its parent directories wins,
// and a pattern starting with ! keeps what it matches.
func inContext(t *testing.T, path string) bool {
	t.Helper()
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	kept := true
	for _, line := range strings.Split(string(ignore), "\n") {
		pattern := strings.TrimSpace(line)
		if pattern == "" || strings.HasPrefix(pattern, "#") {
			continue
		}
		exception := strings.HasPrefix(pattern, "!")
		pattern = strings.TrimPrefix(strings.TrimPrefix(pattern, "!"), "/")
		for p := path; p != "."; p = filepath.Dir(p) {
			matched, err := filepath.Match(pattern, p)
			require.NoError(t, err, pattern)
			if matched {
				kept = exception
				break
			}
		}
	}
	return kept
}

func TestImageCarriesLicenses(t *testing.T) {
	license, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	require.NoError(t, err)
	assert.Contains(t, string(license), "Apache License\n                           Version 2.0, January 2004")
	assert.Contains(t, string(license), "END OF TERMS AND CONDITIONS")
	notice, err := os.ReadFile(filepath.Join(root, "NOTICE"))
	require.NoError(t, err)
	assert.Contains(t, string(notice), "third_party_licenses/")

	stage := finalStage(t)
	assert.Contains(t, stage, "COPY LICENSE NOTICE /license/")
	assert.Contains(t, stage, "COPY .build/third_party_licenses /license/third_party_licenses")
	assert.Contains(t, stage, "COPY .build/${OS}-${ARCH}/apivideo_exporter /bin/apivideo_exporter")

	// The build context keeps what the image copies, and nothing else.
	for _, path := range []string{"LICENSE", "NOTICE", ".build/linux-amd64/apivideo_exporter", ".build/linux-arm64/apivideo_exporter",
		".build/third_party_licenses/MODULES.txt", ".build/third_party_licenses/go/LICENSE"} {
		assert.True(t, inContext(t, path), "%s left out of the build context", path)
	}
	for _, path := range []string{"main.go", "go.mod", ".git/config", "README.md", ".build/darwin-arm64/apivideo_exporter", ".tarballs/sha256sums.txt", "charts/apivideo-exporter/values.yaml"} {
		assert.False(t, inContext(t, path), "%s in the build context", path)
	}
}

// TestDockerfileWithoutBuildKit keeps the Dockerfile buildable by the
// classic docker builder and by buildah: no BuildKit syntax or automatic
// platform arguments, and base images pinned by digest with their tag in
// the comment above.
func TestDockerfileWithoutBuildKit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	froms := 0
	for i, line := range lines {
		for _, buildkit := range []string{"# syntax=", "--mount=", "$BUILDPLATFORM", "${BUILDPLATFORM}", "TARGETARCH", "TARGETOS", "TARGETPLATFORM", "COPY --link", "<<"} {
			assert.NotContains(t, line, buildkit, "line %d needs BuildKit", i+1)
		}
		image, ok := strings.CutPrefix(line, "FROM ")
		if !ok {
			continue
		}
		froms++
		name, digest, ok := strings.Cut(strings.Fields(image)[0], "@sha256:")
		require.True(t, ok, "line %d: %s is not pinned by digest", i+1, image)
		assert.Regexp(t, `^[0-9a-f]{64}$`, digest)
		var comment strings.Builder
		for j := i - 1; j >= 0 && strings.HasPrefix(lines[j], "#"); j-- {
			comment.WriteString(lines[j])
		}
		assert.Regexp(t, regexp.QuoteMeta(name)+`:[\w.-]+`, comment.String(), "line %d: the tag of %s belongs in the comment above", i+1, name)
	}
	assert.Positive(t, froms)
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
