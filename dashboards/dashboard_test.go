package dashboards_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
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

// Defaults of the mixin's _config that the generated files carry.
const (
	exporterSelector = `job=~".*apivideo.*"`
	runbookURL       = "https://github.com/apivideo-exporter/apivideo_exporter/blob/main/docs/runbook.md"
	readmeURL        = "https://github.com/apivideo-exporter/apivideo_exporter#readme"
)

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
	// Grafana 12's schema; older versions are migrated on load.
	assert.GreaterOrEqual(t, d.SchemaVersion, 42)
	ids := map[int]bool{}
	for _, p := range d.AllPanels() {
		assert.False(t, ids[p.ID], "duplicate panel id %d", p.ID)
		ids[p.ID] = true
	}

	// No leftovers of a UI export.
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(dashboards.DashboardJSON, &raw))
	for _, k := range []string{"__requires", "__inputs", "__elements"} {
		assert.NotContains(t, raw, k)
	}
	assert.NotContains(t, string(dashboards.DashboardJSON), "${DS_", "an export's data source input")

	links := map[string]string{}
	for _, l := range d.Links {
		assert.Equal(t, "link", l.Type, l.Title)
		links[l.Title] = l.URL
	}
	assert.Equal(t, map[string]string{"README": readmeURL, "Runbook": runbookURL}, links)
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

	// Optional filters: "All" is ".*", which also matches series without
	// the label, so they cost nothing where Prometheus adds no such label.
	var names []string
	for _, v := range d.Templating.List {
		names = append(names, v.Name)
	}
	assert.Equal(t, append(append([]string{"datasource"}, dashboards.FilterVariables...), "job", "instance"), names)
	for i, name := range dashboards.FilterVariables {
		t.Run(name, func(t *testing.T) {
			v := variable(t, d, name)
			assert.Equal(t, "query", v.Type)
			assert.True(t, v.IncludeAll)
			assert.True(t, v.Multi)
			assert.Equal(t, ".*", v.AllValue)
			assert.Equal(t, 2, v.Refresh)
			assert.Regexp(t, `^label_values\(apivideo_up\{.*\}, `+name+`\)$`, v.QueryString())
			// Each filter narrows the next variables.
			for _, later := range append(slices.Clone(dashboards.FilterVariables[i+1:]), "job", "instance") {
				assert.Contains(t, variable(t, d, later).QueryString(), name+`=~"$`+name+`"`, later)
			}
		})
	}
}

var (
	rangeRe   = regexp.MustCompile(`\[([^\]]*)\]`)
	byRe      = regexp.MustCompile(`by \(([^)]*)\)`)
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
					assert.Contains(t, s, exporterSelector, "selector %s of %s", s, tg.Expr)
					for _, f := range dashboards.FilterVariables {
						assert.Contains(t, s, f+`=~"$`+f+`"`, "selector %s of %s", s, tg.Expr)
					}
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
				// Accounts probed through /probe stay apart: every
				// aggregation keeps the account label, but the outer sum
				// over buckets of the distributions.
				for _, by := range byRe.FindAllStringSubmatch(tg.Expr, -1) {
					if by[1] != "le" {
						assert.Contains(t, by[1], "account", "%s of %s", by[0], tg.Expr)
					}
				}
				// Several sidecars report the same account: the gauges, and
				// the counter of created tokens (each replica counts the same
				// tokens), are aggregated, never summed across replicas.
				for _, g := range []string{"apivideo_upload_tokens_active", "apivideo_upload_tokens_without_expiry",
					"apivideo_upload_token_expires_in_seconds", "apivideo_upload_tokens_expiry_seconds_bucket",
					"apivideo_upload_token_without_expiry_created_timestamp_seconds", "apivideo_upload_tokens_ttl_seconds_bucket",
					"apivideo_upload_tokens_created_total",
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
		"apivideo_upload_tokens_expiry_seconds_bucket", "apivideo_api_requests_total",
		"apivideo_api_request_duration_seconds_bucket", "apivideo_ratelimit_limit", "apivideo_ratelimit_remaining",
		"apivideo_upload_token_without_expiry_created_timestamp_seconds", "apivideo_upload_tokens_ttl_seconds_bucket",
		"apivideo_upload_tokens_created_total",
	} {
		assert.Contains(t, all.String(), m+"{")
	}
	assert.Contains(t, all.String(), "bottomk(")
}

func TestAlertRules(t *testing.T) {
	rules, err := dashboards.Rules()
	require.NoError(t, err)
	runbook, err := os.ReadFile("../docs/runbook.md")
	require.NoError(t, err)
	anchors := markdownAnchors(string(runbook))
	var names []string
	for _, r := range rules {
		t.Run(r.Alert, func(t *testing.T) {
			require.NotEmpty(t, r.Alert, "only alerting rules here")
			names = append(names, r.Alert)
			assert.Equal(t, []string{"description", "runbook_url", "summary"}, slices.Sorted(maps.Keys(r.Annotations)))
			for a, v := range r.Annotations {
				assert.NotEmpty(t, v, a)
			}
			// The runbook_url points at the alert's own section.
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookURL+"#")
			require.True(t, ok, r.Annotations["runbook_url"])
			section, ok := anchors[anchor]
			require.True(t, ok, "docs/runbook.md has no heading for #%s", anchor)
			assert.Equal(t, r.Alert, section)
			// Every selector goes through the exporter selector.
			for _, sel := range dashboards.Selectors(r.Expr) {
				assert.Contains(t, sel, exporterSelector, r.Expr)
			}
			assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"])
			assert.NotEmpty(t, r.For)
			for _, g := range []string{"apivideo_upload_tokens_active", "apivideo_upload_tokens_without_expiry",
				"apivideo_upload_token_without_expiry_created_timestamp_seconds", "apivideo_upload_tokens_created_total",
				"apivideo_ratelimit_remaining", "apivideo_ratelimit_limit", "apivideo_up"} {
				assert.NotRegexp(t, `sum[^(]*\([^()]*\b`+g+`\b`, r.Expr, "summing duplicates of %s", g)
			}
		})
	}
	for _, want := range []string{"ApivideoScrapeFailing", "ApivideoExporterAbsent", "ApivideoRateLimitHeadroomLow",
		"ApivideoTokensWithoutExpiry", "ApivideoActiveTokensJump", "ApivideoStandingTokenTooOld", "ApivideoTokenMintingSpike"} {
		assert.True(t, slices.Contains(names, want), want)
	}
}

// TestRunbookSections checks that each runbook section says what the alert
// means, how to confirm it and what to do, and that every section belongs to
// an alert.
func TestRunbookSections(t *testing.T) {
	data, err := os.ReadFile("../docs/runbook.md")
	require.NoError(t, err)
	rules, err := dashboards.Rules()
	require.NoError(t, err)
	var alerts []string
	for _, r := range rules {
		alerts = append(alerts, r.Alert)
	}
	sections := strings.Split(string(data), "\n## ")[1:]
	var headings []string
	for _, sec := range sections {
		heading, body, _ := strings.Cut(sec, "\n")
		headings = append(headings, heading)
		t.Run(heading, func(t *testing.T) {
			for _, sub := range []string{"### Meaning", "### Confirm", "### Act"} {
				assert.Contains(t, body, sub+"\n")
			}
		})
	}
	assert.ElementsMatch(t, alerts, headings)
}

// markdownAnchors returns the anchors GitHub gives the "## " headings of a
// Markdown document, mapped to the heading text.
func markdownAnchors(doc string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(doc, "\n") {
		heading, ok := strings.CutPrefix(line, "## ")
		if !ok {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(heading) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		out[b.String()] = heading
	}
	return out
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
		{"(group by (job) (present_over_time(a{x=\"y\"}[1d])) unless group by (job) (a{x=\"y\"})) or on () absent(a{x=\"y\"})",
			[]string{`a{x="y"}`, `a{x="y"}`, `a{x="y"}`}},
		{`a / on (job) group_left (version) b`, []string{"a", "b"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, dashboards.Selectors(tt.expr), tt.expr)
	}
}

func TestParseRulesStrict(t *testing.T) {
	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"valid", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n", true},
		{"unknown field", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        runbok: x\n", false},
		{"duplicate field", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        expr: up\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := dashboards.ParseRules([]byte(tt.doc))
			if !tt.ok {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "up == 0", g.Groups[0].Rules[0].Expr)
		})
	}
}

// TestLifecyclePanels checks the panels of standing credentials, minting
// and token lifetimes: what each queries and how the table reads.
func TestLifecyclePanels(t *testing.T) {
	d := load(t)
	byTitle := map[string]dashboards.Panel{}
	for _, p := range d.AllPanels() {
		byTitle[p.Title] = p
	}
	tests := []struct {
		title, typ string
		exprs      []*regexp.Regexp
	}{
		{"Standing credentials", "table", []*regexp.Regexp{
			regexp.MustCompile(`^1000 \* min by \(job, account, token\) \(apivideo_upload_token_without_expiry_created_timestamp_seconds\{`),
			regexp.MustCompile(`^time\(\) - min by \(job, account, token\) \(apivideo_upload_token_without_expiry_created_timestamp_seconds\{`),
		}},
		{"Oldest standing credential", "stat", []*regexp.Regexp{
			regexp.MustCompile(`^time\(\) - min by \(job, account\) \(apivideo_upload_token_without_expiry_created_timestamp_seconds\{`),
		}},
		{"Tokens minted a minute", "timeseries", []*regexp.Regexp{
			regexp.MustCompile(`^60 \* max by \(job, account\) \(rate\(apivideo_upload_tokens_created_total\{[^}]*\}\[\$__rate_interval\]\)\)$`),
		}},
		{"Tokens living over a day", "stat", []*regexp.Regexp{
			regexp.MustCompile(`^1 - max by \(job, account\) \(apivideo_upload_tokens_ttl_seconds_bucket\{[^}]*le=~"86400\(\\\\\.0\)\?"\}\) / max by \(job, account\) \(apivideo_upload_tokens_active\{`),
		}},
		{"Lifetime (ttl) distribution", "bargauge", []*regexp.Regexp{
			regexp.MustCompile(`^sum by \(le\) \(max by \(job, account, le\) \(apivideo_upload_tokens_ttl_seconds_bucket\{[^}]*\}\)\)$`),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.title, func(t *testing.T) {
			p, ok := byTitle[tt.title]
			require.True(t, ok, "no panel %q", tt.title)
			assert.Equal(t, tt.typ, p.Type)
			require.Len(t, p.Targets, len(tt.exprs))
			for i, re := range tt.exprs {
				assert.Regexp(t, re, p.Targets[i].Expr)
			}
		})
	}

	// The table joins created and age into one row per token, oldest first.
	type tablePanel struct {
		Title   string `json:"title"`
		Targets []struct {
			Instant bool   `json:"instant"`
			Format  string `json:"format"`
		} `json:"targets"`
		Options struct {
			SortBy []struct {
				DisplayName string `json:"displayName"`
				Desc        bool   `json:"desc"`
			} `json:"sortBy"`
		} `json:"options"`
		Transformations []struct {
			ID      string `json:"id"`
			Options struct {
				RenameByName map[string]string `json:"renameByName"`
			} `json:"options"`
		} `json:"transformations"`
	}
	var raw struct {
		Panels []tablePanel `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(dashboards.DashboardJSON, &raw))
	i := slices.IndexFunc(raw.Panels, func(p tablePanel) bool { return p.Title == "Standing credentials" })
	require.GreaterOrEqual(t, i, 0)
	table := raw.Panels[i]
	for _, tg := range table.Targets {
		assert.True(t, tg.Instant)
		assert.Equal(t, "table", tg.Format)
	}
	require.Len(t, table.Options.SortBy, 1)
	assert.Equal(t, "Age", table.Options.SortBy[0].DisplayName)
	assert.True(t, table.Options.SortBy[0].Desc, "oldest first")
	require.Len(t, table.Transformations, 2)
	assert.Equal(t, "merge", table.Transformations[0].ID)
	assert.Equal(t, "organize", table.Transformations[1].ID)
	renames := table.Transformations[1].Options.RenameByName
	assert.Equal(t, "Created", renames["Value #A"])
	assert.Equal(t, "Age", renames["Value #B"])
	assert.Equal(t, "Token (redacted)", renames["token"])
}
