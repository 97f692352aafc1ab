package chart_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the chart's README.md from values.yaml")

const readmeFile = chartDir + "/README.md"

// TestChartReadme fails when charts/apivideo-exporter/README.md is not what
// values.yaml and Chart.yaml give: every value with its default and the
// comment above it. `go test ./chart -run TestChartReadme -update`
// rewrites it.
func TestChartReadme(t *testing.T) {
	want := chartReadme(t)
	if *update {
		require.NoError(t, os.WriteFile(readmeFile, []byte(want), 0o644))
	}
	got, err := os.ReadFile(readmeFile)
	require.NoError(t, err)
	assert.True(t, string(got) == want, "%s differs from what values.yaml gives: go test ./chart -run TestChartReadme -update (from deploy/)", readmeFile)
}

// TestChartReadmeListsEveryValue checks the generator itself: every leaf of
// values.yaml has its row, and every commented key its description.
func TestChartReadmeListsEveryValue(t *testing.T) {
	readme := chartReadme(t)
	root := valuesNode(t)
	n := 0
	walkValues(root, "", "", func(path, comment string, _ *yaml.Node) {
		n++
		assert.Contains(t, readme, "| `"+path+"` |", path)
		if comment != "" {
			assert.Contains(t, readme, oneLine(comment), path)
		}
	}, func(string, string) {})
	assert.Greater(t, n, 60)
}

func valuesNode(t *testing.T) *yaml.Node {
	t.Helper()
	data, err := os.ReadFile(chartDir + "/values.yaml")
	require.NoError(t, err)
	var doc yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &doc))
	require.Equal(t, yaml.DocumentNode, doc.Kind)
	return doc.Content[0]
}

// walkValues calls leaf for every value that is not a non-empty map, with
// its dotted path and the comment above its key, and section for every
// top-level key first, with its comment when it is a map.
func walkValues(n *yaml.Node, prefix, comment string, leaf func(path, comment string, value *yaml.Node), section func(path, comment string)) {
	topLevel := prefix != "" && !strings.Contains(prefix, ".")
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 || prefix == "accounts" {
		if topLevel {
			section(prefix, "")
		}
		leaf(prefix, comment, n)
		return
	}
	if topLevel {
		section(prefix, comment)
	}
	for i := 0; i < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		path := key.Value
		if prefix != "" {
			path = prefix + "." + key.Value
		}
		walkValues(value, path, commentText(key.HeadComment), leaf, section)
	}
}

// commentText strips the # of a comment; lines indented past "# " (the
// examples) are kept apart for a code block.
func commentText(c string) string {
	var lines []string
	for _, l := range strings.Split(c, "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "#")
		l = strings.TrimPrefix(l, " ")
		lines = append(lines, l)
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// oneLine is a comment's prose for a table cell: the example lines (those
// indented in the comment) are left to the values file.
func oneLine(c string) string {
	var words []string
	example := false
	for _, l := range strings.Split(c, "\n") {
		if strings.HasPrefix(l, "  ") {
			example = true
			continue
		}
		words = append(words, strings.TrimSpace(l))
	}
	text := strings.TrimSpace(strings.Join(words, " "))
	if example {
		text += " (example in values.yaml)"
	}
	return strings.ReplaceAll(text, "|", "\\|")
}

// defaultValue renders a value's default as compact JSON.
func defaultValue(t *testing.T, n *yaml.Node) string {
	t.Helper()
	var v any
	require.NoError(t, n.Decode(&v))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return strings.ReplaceAll(strings.TrimSpace(buf.String()), "|", "\\|")
}

func chartReadme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(chartDir + "/Chart.yaml")
	require.NoError(t, err)
	var chart struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Version     string `json:"version"`
		AppVersion  string `json:"appVersion"`
		Home        string `json:"home"`
	}
	require.NoError(t, sigsyaml.Unmarshal(data, &chart))

	var b strings.Builder
	fmt.Fprintf(&b, `<!-- Generated from values.yaml and Chart.yaml by deploy/chart/readme_test.go:
     edit those, then run (cd deploy && go test ./chart -run TestChartReadme -update). -->
# %s

%s.

Chart version %s, for apivideo_exporter %s. The exporter's own documentation is at
<%s>.

## Install

Build and push the image (the tag defaults to the chart's appVersion), create the Secret of the
API key, then install:

`+"```sh"+`
make docker DOCKER_IMAGE=registry.example.com/apivideo_exporter   # apivideo_exporter:%s
docker push registry.example.com/apivideo_exporter:%s
kubectl create namespace apivideo
kubectl -n apivideo create secret generic apivideo-api-key --from-file=api-key=./api-key.txt
helm install apivideo-exporter ./charts/apivideo-exporter -n apivideo \
  --set image.repository=registry.example.com/apivideo_exporter \
  --set podMonitor.enabled=true --set prometheusRule.enabled=true
`+"```"+`

values.schema.json rejects unknown keys, so a misspelt value fails the install instead of
being ignored.

## Values

Each value with its default, and the comment above it in values.yaml, which has the examples.
`, chart.Name, strings.TrimSuffix(chart.Description, "."), chart.Version, chart.AppVersion, chart.Home, chart.AppVersion, chart.AppVersion)

	inTable := false
	walkValues(valuesNode(t), "", "", func(path, comment string, value *yaml.Node) {
		if !inTable {
			b.WriteString("\n| value | default | description |\n| --- | --- | --- |\n")
			inTable = true
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", path, defaultValue(t, value), oneLine(comment))
	}, func(path, comment string) {
		fmt.Fprintf(&b, "\n### %s\n", path)
		if text := oneLine(comment); text != "" {
			fmt.Fprintf(&b, "\n%s\n", text)
		}
		inTable = false
	})
	return b.String()
}
