package dashboards_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
)

// The checks below follow grafana/dashboard-linter's rules, so that the
// dashboard lints clean without the tool.

// Units the linter's panel-units-rule accepts that fit this dashboard.
var validUnits = []string{"none", "short", "percent", "percentunit", "s", "ms", "reqps", "ops", "dtdurations", "bool"}

func load(t *testing.T) *dashboards.Dashboard {
	t.Helper()
	d, err := dashboards.Load()
	require.NoError(t, err)
	return d
}

func variable(t *testing.T, d *dashboards.Dashboard, name string) dashboards.Variable {
	t.Helper()
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no %q variable", name)
	return dashboards.Variable{}
}

func isTemplatedDatasource(ds *dashboards.Datasource) bool {
	return ds != nil && (ds.UID == "${datasource}" || ds.UID == "$datasource")
}

func TestDashboardBasics(t *testing.T) {
	d := load(t)
	assert.NotEmpty(t, d.UID)
	assert.NotEmpty(t, d.Title)
	assert.False(t, d.Editable, "uneditable-dashboard-rule")
	assert.GreaterOrEqual(t, d.SchemaVersion, 36)
	ids := map[int]bool{}
	for _, p := range d.AllPanels() {
		assert.False(t, ids[p.ID], "duplicate panel id %d", p.ID)
		ids[p.ID] = true
	}
}

func TestTemplateVariables(t *testing.T) {
	d := load(t)
	// template-datasource-rule
	ds := variable(t, d, "datasource")
	assert.Equal(t, "datasource", ds.Type)
	assert.Equal(t, "prometheus", ds.QueryString())
	assert.Equal(t, "Data source", ds.Label)

	// template-job-rule, template-instance-rule,
	// template-on-time-change-reload-rule
	for _, name := range []string{"job", "instance"} {
		t.Run(name, func(t *testing.T) {
			v := variable(t, d, name)
			assert.Equal(t, "query", v.Type)
			assert.True(t, isTemplatedDatasource(v.Datasource), "datasource %+v", v.Datasource)
			assert.Equal(t, strings.ToUpper(name[:1])+name[1:], v.Label)
			assert.True(t, v.Multi)
			assert.True(t, v.IncludeAll)
			assert.Equal(t, ".+", v.AllValue)
			assert.Equal(t, 2, v.Refresh, "refresh on time range change")
			assert.Regexp(t, `^label_values\(apivideo_up.*, `+name+`\)$`, v.QueryString())
		})
	}
	assert.Contains(t, variable(t, d, "instance").QueryString(), `job=~"$job"`)
}

var (
	rangeRe   = regexp.MustCompile(`\[([^\]]*)\]`)
	counterRe = regexp.MustCompile(`(\w+)\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*_total\{[^}]*\}\[`)
)

func TestPanels(t *testing.T) {
	d := load(t)
	var targets int
	for _, p := range d.AllPanels() {
		if p.Type == "row" {
			continue
		}
		t.Run(fmt.Sprintf("%d %s", p.ID, p.Title), func(t *testing.T) {
			// panel-title-description-rule
			assert.NotEmpty(t, p.Title)
			assert.NotEmpty(t, p.Description)
			// panel-datasource-rule
			assert.True(t, isTemplatedDatasource(p.Datasource), "panel datasource %+v", p.Datasource)
			// panel-units-rule
			switch p.Type {
			case "stat", "singlestat", "graph", "table", "timeseries", "gauge":
				assert.Contains(t, validUnits, p.FieldConfig.Defaults.Unit)
			}
			// panel-no-targets-rule
			require.NotEmpty(t, p.Targets)
			refIDs := map[string]bool{}
			for _, tg := range p.Targets {
				targets++
				assert.False(t, refIDs[tg.RefID], "duplicate refId %s", tg.RefID)
				refIDs[tg.RefID] = true
				assert.True(t, isTemplatedDatasource(tg.Datasource), "target datasource %+v", tg.Datasource)
				require.NotEmpty(t, tg.Expr)
				// target-job-rule, target-instance-rule
				sels := dashboards.Selectors(tg.Expr)
				require.NotEmpty(t, sels, tg.Expr)
				for _, s := range sels {
					assert.Contains(t, s, `job=~"$job"`, "selector %s of %s", s, tg.Expr)
					assert.Contains(t, s, `instance=~"$instance"`, "selector %s of %s", s, tg.Expr)
				}
				// target-rate-interval-rule
				for _, m := range rangeRe.FindAllStringSubmatch(tg.Expr, -1) {
					assert.Equal(t, "$__rate_interval", m[1], tg.Expr)
				}
				// target-counter-agg-rule
				if strings.Contains(tg.Expr, "_total") {
					m := counterRe.FindStringSubmatch(tg.Expr)
					require.NotNil(t, m, "counter not in rate/increase: %s", tg.Expr)
					assert.Contains(t, []string{"rate", "irate", "increase"}, m[1])
				}
				// Several sidecars report the same account: the gauges are
				// aggregated, never summed across replicas.
				for _, g := range []string{"apivideo_upload_tokens_active", "apivideo_upload_tokens_without_expiry",
					"apivideo_upload_token_expires_in_seconds", "apivideo_upload_tokens_expires_in_seconds_bucket",
					"apivideo_ratelimit_remaining", "apivideo_ratelimit_limit", "apivideo_scrape_duration_seconds"} {
					assert.NotRegexp(t, `sum[^(]*\([^()]*\b`+g+`\{`, tg.Expr, "summing duplicates of %s", g)
				}
			}
		})
	}
	assert.Greater(t, targets, 10)
}

func TestDashboardCoversMetrics(t *testing.T) {
	d := load(t)
	var all strings.Builder
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	for _, m := range []string{
		"apivideo_up", "apivideo_scrape_duration_seconds", "apivideo_upload_tokens_active",
		"apivideo_upload_tokens_without_expiry", "apivideo_upload_token_expires_in_seconds",
		"apivideo_upload_tokens_expires_in_seconds_bucket", "apivideo_api_requests_total",
		"apivideo_api_request_duration_seconds_bucket", "apivideo_ratelimit_limit", "apivideo_ratelimit_remaining",
	} {
		assert.Contains(t, all.String(), m+"{")
	}
	assert.Contains(t, all.String(), "bottomk(")
}

func TestAlertRules(t *testing.T) {
	rules, err := dashboards.Rules()
	require.NoError(t, err)
	var names []string
	for _, r := range rules {
		t.Run(r.Alert, func(t *testing.T) {
			require.NotEmpty(t, r.Alert, "only alerting rules here")
			names = append(names, r.Alert)
			for _, a := range []string{"summary", "description", "runbook"} {
				assert.NotEmpty(t, r.Annotations[a], a)
			}
			assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"])
			assert.NotEmpty(t, r.For)
			for _, g := range []string{"apivideo_upload_tokens_active", "apivideo_upload_tokens_without_expiry",
				"apivideo_ratelimit_remaining", "apivideo_ratelimit_limit", "apivideo_up"} {
				assert.NotRegexp(t, `sum[^(]*\([^()]*\b`+g+`\b`, r.Expr, "summing duplicates of %s", g)
			}
		})
	}
	for _, want := range []string{"ApivideoScrapeFailing", "ApivideoExporterAbsent", "ApivideoRateLimitHeadroomLow",
		"ApivideoTokensWithoutExpiry", "ApivideoActiveTokensJump"} {
		assert.True(t, slices.Contains(names, want), want)
	}
}

func TestSelectors(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`max by (job) (apivideo_up{job=~"$job"}) == 0`, []string{`apivideo_up{job=~"$job"}`}},
		{`sum by (job, code) (rate(x_total{a="}"}[$__rate_interval]))`, []string{`x_total{a="}"}`}},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{le=~"1(\\.0)?"}[5m])))`, []string{`h_bucket{le=~"1(\\.0)?"}`}},
		{`(a - b offset 30m > 100) and (a > 1.5 * b offset 30m)`, []string{"a", "b", "a", "b"}},
		{`bottomk(25, min by (job, token) (m{x="y"}))`, []string{`m{x="y"}`}},
		{`absent(apivideo_up{job=~".*apivideo.*"})`, []string{`apivideo_up{job=~".*apivideo.*"}`}},
		{`a / on (job) group_left (version) b`, []string{"a", "b"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, dashboards.Selectors(tt.expr), tt.expr)
	}
}
