//lint:file-ignore SA1019 dashboard.Dashboard is the classic JSON model that Grafana imports and provisions from files; dashboardv2 is another format.

// Package mixin_test renders the monitoring mixin in mixin/ and checks the
// files generated from it, and the Grafana dashboard against Grafana's own
// schema.
package mixin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-jsonnet"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
)

var update = flag.Bool("update", false, "write the rendered files instead of comparing them")

// The repository root and the mixin, from this directory.
const (
	root     = "../.."
	mixinDir = root + "/mixin"
)

func newVM() *jsonnet.VM {
	vm := jsonnet.MakeVM()
	vm.Importer(&jsonnet.FileImporter{JPaths: []string{mixinDir}})
	return vm
}

// TestGeneratedFilesUpToDate fails when a file generated from the mixin was
// edited by hand or not regenerated after a change to the mixin. Regenerate
// with `go test ./mixin -update` from deploy/, or with
// `go run github.com/google/go-jsonnet/cmd/jsonnet@v0.22.0 -S -m . mixin/render.jsonnet`
// from the repository root: both give the same bytes.
func TestGeneratedFilesUpToDate(t *testing.T) {
	vm := newVM()
	vm.StringOutput = true
	files, err := vm.EvaluateFileMulti(filepath.Join(mixinDir, "render.jsonnet"))
	require.NoError(t, err)
	require.Contains(t, files, dashboards.DashboardFile)
	require.Contains(t, files, dashboards.RulesFile)
	for name, want := range files {
		path := filepath.Join(root, name)
		if *update {
			require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.True(t, string(got) == want, "%s differs from what mixin/render.jsonnet renders: regenerate it (see mixin/render.jsonnet)", name)
	}
}

// render evaluates the mixin with overrides of its _config and returns the
// alert rules and the dashboard.
func render(t *testing.T, config string) (dashboards.RuleGroups, map[string]any) {
	t.Helper()
	out, err := newVM().EvaluateAnonymousSnippet("override.jsonnet", `
local mixin = (import 'mixin.libsonnet') + { _config+:: `+config+` };
{
  rules: std.manifestYamlDoc(mixin.prometheusAlerts),
  dashboard: mixin.grafanaDashboards['apivideo-exporter.json'],
}`)
	require.NoError(t, err)
	var r struct {
		Rules     string         `json:"rules"`
		Dashboard map[string]any `json:"dashboard"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	rules, err := dashboards.ParseRules([]byte(r.Rules))
	require.NoError(t, err)
	promtoolCheck(t, r.Rules)
	return rules, r.Dashboard
}

// promtoolCheck runs `promtool check rules` on a rendering: every _config
// must give rules Prometheus loads.
func promtoolCheck(t *testing.T, rules string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool (Debian's prometheus package) is needed")
	file := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(file, []byte(rules), 0o600))
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestConfigOverrides renders the mixin as a vendoring user would, with
// their own selector, grouping, thresholds and dashboard settings, and
// checks that each setting reaches the output.
func TestConfigOverrides(t *testing.T) {
	rules, dash := render(t, `{
    exporterSelector: 'job="apivideo", env="prod"',
    groupLabels: ['job', 'account'],
    dashboardFilterLabels: [],
    scrapeFailingFor: '3m',
    tokensWithoutExpiryThreshold: 4,
    activeTokensJumpMin: 500,
    standingTokenMaxAgeDays: 7,
    tokenMintingWindow: '15m',
    tokenMintingBaselineWindow: '6h',
    tokenMintingRatio: 3,
    tokenMintingMinPerMinute: 0.5,
    runbookURLBase: 'https://wiki.example.com/apivideo',
    dashboardUID: 'my-uid',
    dashboardTags: ['video'],
    dashboardRefresh: '5m',
  }`)

	require.Len(t, rules.Groups, 1)
	byName := map[string]dashboards.Rule{}
	for _, r := range rules.Groups[0].Rules {
		byName[r.Alert] = r
		assert.Equal(t, "https://wiki.example.com/apivideo#"+strings.ToLower(r.Alert), r.Annotations["runbook_url"])
		assert.NotContains(t, r.Expr, ".*apivideo.*")
		for _, sel := range dashboards.Selectors(r.Expr) {
			assert.Contains(t, sel, `job="apivideo", env="prod"`, r.Alert)
		}
		assert.NotContains(t, r.Expr, "by (job)", r.Alert)
	}
	assert.Equal(t, "3m", byName["ApivideoScrapeFailing"].For)
	assert.Contains(t, byName["ApivideoScrapeFailing"].Annotations["description"], "for 3m")
	assert.Contains(t, byName["ApivideoScrapeFailing"].Expr, "max by (job, account) (")
	assert.Contains(t, byName["ApivideoExporterAbsent"].Expr, "group by (job, account) (")
	assert.True(t, strings.HasSuffix(byName["ApivideoTokensWithoutExpiry"].Expr, "> 4"), byName["ApivideoTokensWithoutExpiry"].Expr)
	assert.Contains(t, byName["ApivideoActiveTokensJump"].Expr, "> 500")
	standing := byName["ApivideoStandingTokenTooOld"]
	assert.True(t, strings.HasSuffix(standing.Expr, "> 604800"), standing.Expr)
	assert.Contains(t, standing.Expr, "min by (job, account, token) (")
	assert.Contains(t, standing.Annotations["summary"], "more than 7 days old")
	minting := byName["ApivideoTokenMintingSpike"]
	assert.Contains(t, minting.Expr, "[15m]))\n  > 0.5\n")
	assert.Contains(t, minting.Expr, "> 3 * avg_over_time((max by (job, account) (rate(")
	assert.Contains(t, minting.Expr, "[6h:15m] offset 15m)")
	assert.Contains(t, minting.Annotations["description"], "more than 3 times its average rate over the 6h before and more than 0.5 a minute")

	assert.Equal(t, "my-uid", dash["uid"])
	assert.Equal(t, []any{"video"}, dash["tags"])
	assert.Equal(t, "5m", dash["refresh"])
	var variables []string
	for _, v := range dash["templating"].(map[string]any)["list"].([]any) {
		variables = append(variables, v.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"datasource", "job", "instance"}, variables)
	raw, err := json.Marshal(dash)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `max by (job, account) (apivideo_up{job=\"apivideo\", env=\"prod\", job=~\"$job\", instance=~\"$instance\"})`)
	assert.NotContains(t, string(raw), "$cluster")
}

// TestDefaultConfig checks the defaults that the tests of dashboards/ and
// the Go code rely on.
func TestDefaultConfig(t *testing.T) {
	out, err := newVM().EvaluateAnonymousSnippet("config.jsonnet", `(import 'mixin.libsonnet')._config`)
	require.NoError(t, err)
	var cfg struct {
		Selector string   `json:"exporterSelector"`
		Filters  []string `json:"dashboardFilterLabels"`
		Group    []string `json:"groupLabels"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &cfg))
	assert.Equal(t, `job=~".*apivideo.*"`, cfg.Selector)
	assert.Equal(t, dashboards.FilterVariables, cfg.Filters)
	assert.Equal(t, []string{"job", "account"}, cfg.Group)
}

// TestDashboardStrict decodes the dashboard with Grafana's own schema (the
// Foundation SDK's strict decoder, which knows every panel type's options and
// field config) and validates it.
func TestDashboardStrict(t *testing.T) {
	d, err := decodeDashboard(dashboards.DashboardJSON)
	require.NoError(t, err)
	assert.Equal(t, dashboard.NewDashboard().SchemaVersion, d.SchemaVersion, "the schema version of current Grafana")
	require.NotNil(t, d.Uid)
	assert.Equal(t, "apivideo-exporter", *d.Uid)
}

// decodeDashboard decodes a dashboard strictly and validates it.
func decodeDashboard(data []byte) (*dashboard.Dashboard, error) {
	plugins.RegisterDefaultPlugins()
	var d dashboard.Dashboard
	if err := sdkError(d.UnmarshalJSONStrict(data)); err != nil {
		return nil, err
	}
	if err := sdkError(d.Validate()); err != nil {
		return nil, err
	}
	return &d, nil
}

// sdkError turns the SDK's empty error list, which it returns as a non-nil
// error, into nil.
func sdkError(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

// TestDashboardStrictRejectsTypos makes sure the strict decoding catches a
// misspelt field at every level instead of dropping it.
func TestDashboardStrictRejectsTypos(t *testing.T) {
	tests := []struct{ name, from, to string }{
		{"dashboard field", `"graphTooltip":`, `"graphTooltips":`},
		{"panel field", `"gridPos":`, `"gridPosition":`},
		{"stat option", `"colorMode":`, `"colourMode":`},
		{"timeseries field config", `"drawStyle":`, `"drawstyle":`},
		{"query field", `"legendFormat":`, `"legend":`},
		{"variable field", `"includeAll":`, `"includeALL":`},
		{"link field", `"targetBlank":`, `"targetblank":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, string(dashboards.DashboardJSON), tt.from)
			bad := bytes.Replace(dashboards.DashboardJSON, []byte(tt.from), []byte(tt.to), 1)
			_, err := decodeDashboard(bad)
			assert.Error(t, err)
		})
	}
}

// TestRulesTestCoversEveryAlert keeps the promtool unit tests in step with
// the alerts the mixin renders.
func TestRulesTestCoversEveryAlert(t *testing.T) {
	rules, err := dashboards.Rules()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, dashboards.RulesTestFile))
	require.NoError(t, err)
	var tested []string
	for _, line := range strings.Split(string(data), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "alertname: "); ok && !slices.Contains(tested, name) {
			tested = append(tested, name)
		}
	}
	for _, r := range rules {
		assert.Contains(t, tested, r.Alert)
	}
}

// TestReadmeListsConfig fails when a _config field is missing from the
// table of mixin/README.md, or the table lists one that is gone.
func TestReadmeListsConfig(t *testing.T) {
	out, err := newVM().EvaluateAnonymousSnippet("fields.jsonnet", `std.objectFieldsAll((import 'mixin.libsonnet')._config)`)
	require.NoError(t, err)
	var fields []string
	require.NoError(t, json.Unmarshal([]byte(out), &fields))
	require.NotEmpty(t, fields)

	readme, err := os.ReadFile(filepath.Join(mixinDir, "README.md"))
	require.NoError(t, err)
	var listed []string
	for _, line := range strings.Split(string(readme), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ := strings.Cut(rest, "`")
			listed = append(listed, name)
		}
	}
	assert.ElementsMatch(t, fields, listed, "the _config table of mixin/README.md")
}
