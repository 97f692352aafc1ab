// Package dashboards holds the exporter's Grafana dashboard and Prometheus
// alerting rules, embedded for tests, and helpers to read the PromQL in
// them. Both files are generated from the monitoring mixin in mixin/.
package dashboards

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DashboardJSON is apivideo-exporter.json, the Grafana dashboard.
//
//go:embed apivideo-exporter.json
var DashboardJSON []byte

// AlertRulesYAML is apivideo-alerts.rules.yml, the alerting rules.
//
//go:embed apivideo-alerts.rules.yml
var AlertRulesYAML []byte

// Files beside this one, relative to the repository root.
const (
	DashboardFile = "dashboards/apivideo-exporter.json"
	RulesFile     = "dashboards/apivideo-alerts.rules.yml"
	RulesTestFile = "dashboards/apivideo-alerts.test.yml"
)

// Dashboard is the part of a Grafana dashboard model the tests read.
type Dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	Editable      bool   `json:"editable"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
	Links  []Link  `json:"links"`
}

// Link is a link shown in the dashboard's header.
type Link struct {
	Title string `json:"title"`
	Type  string `json:"type"`
	URL   string `json:"url"`
}

// Variable is a dashboard template variable.
type Variable struct {
	Name       string      `json:"name"`
	Label      string      `json:"label"`
	Type       string      `json:"type"`
	Datasource *Datasource `json:"datasource"`
	// Query is a string for datasource variables, an object for query ones.
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Refresh    int             `json:"refresh"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// QueryString returns the variable's query whether stored as a string or as
// a {"query": ...} object.
func (v Variable) QueryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil {
		return o.Query
	}
	return ""
}

// Datasource is a panel's, target's or variable's data source reference.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Panel is a dashboard panel.
type Panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Datasource  *Datasource `json:"datasource"`
	Targets     []Target    `json:"targets"`
	Panels      []Panel     `json:"panels"` // of collapsed rows
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

// Target is a panel's query.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
	Instant    bool        `json:"instant"`
	Format     string      `json:"format"`
}

// Load decodes the embedded dashboard.
func Load() (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(DashboardJSON, &d); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", DashboardFile, err)
	}
	return &d, nil
}

// AllPanels returns the panels, those of collapsed rows included.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// RuleGroups is a Prometheus rule file, or the spec of a PrometheusRule.
type RuleGroups struct {
	Groups []RuleGroup `json:"groups" yaml:"groups"`
}

// RuleGroup is a named group of rules.
type RuleGroup struct {
	Name  string `json:"name" yaml:"name"`
	Rules []Rule `json:"rules" yaml:"rules"`
}

// Rule is an alerting or recording rule.
type Rule struct {
	Alert       string            `json:"alert,omitempty" yaml:"alert,omitempty"`
	Record      string            `json:"record,omitempty" yaml:"record,omitempty"`
	Expr        string            `json:"expr" yaml:"expr"`
	For         string            `json:"for,omitempty" yaml:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
}

// ParseRules decodes a rule file, rejecting unknown and duplicate fields.
func ParseRules(data []byte) (RuleGroups, error) {
	var g RuleGroups
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&g); err != nil {
		return RuleGroups{}, err
	}
	return g, nil
}

// Rules decodes the embedded alerting rules, rejecting unknown fields.
func Rules() ([]Rule, error) {
	g, err := ParseRules(AlertRulesYAML)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", RulesFile, err)
	}
	var out []Rule
	for _, grp := range g.Groups {
		out = append(out, grp.Rules...)
	}
	return out, nil
}

// FilterVariables are the dashboard's optional filters, whose "All" value
// (".*") also matches series without the label: account matches a
// single-account exporter's series that way.
var FilterVariables = []string{"cluster", "namespace", "account"}

// Substitute replaces Grafana variables in expr the way Grafana would for
// the given job and instance regexps, with the filter variables set to
// "All", and $__rate_interval, $__interval and $__range set to
// rateInterval.
func Substitute(expr, job, instance, rateInterval string) string {
	pairs := []string{
		"${datasource}", "", "$datasource", "",
		"${job}", job, "$job", job,
		"${instance}", instance, "$instance", instance,
		"${__rate_interval}", rateInterval, "$__rate_interval", rateInterval,
		// Longer names first: the replacer tries them in this order.
		"$__interval_ms", "15000", "${__interval}", rateInterval, "$__interval", rateInterval,
		"$__range_s", "60", "${__range}", rateInterval, "$__range", rateInterval,
	}
	for _, v := range FilterVariables {
		pairs = append(pairs, "${"+v+"}", ".*", "$"+v, ".*")
	}
	return strings.NewReplacer(pairs...).Replace(expr)
}

var notSelectors = map[string]bool{
	// Aggregations.
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
	"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true,
	"quantile": true, "limitk": true, "limit_ratio": true,
	// Keywords and literals.
	"and": true, "or": true, "unless": true, "offset": true, "bool": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true,
}

var groupingKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true,
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

// Selectors returns the instant vector selectors of a PromQL expression
// (metric name and label matchers, without range or offset), e.g.
// `apivideo_up{job=~"$job"}`. It is a small scanner for the expressions of
// this repository, not a full PromQL parser: Prometheus itself checks that
// the expressions parse.
func Selectors(expr string) []string {
	var out []string
	i := 0
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '[':
			for i < len(expr) && expr[i] != ']' {
				i++
			}
			i++
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.') {
				i++
			}
		case c == '{':
			// A selector without a metric name.
			end := skipBraces(expr, i)
			out = append(out, expr[i:end])
			i = end
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
			name := expr[start:i]
			j := i
			for j < len(expr) && expr[j] == ' ' {
				j++
			}
			switch {
			case groupingKeywords[name]:
				// Skip the label list.
				if j < len(expr) && expr[j] == '(' {
					for j < len(expr) && expr[j] != ')' {
						j++
					}
					i = j + 1
				}
			case notSelectors[name]:
			case j < len(expr) && expr[j] == '(':
				// A function call.
			case i < len(expr) && expr[i] == '{':
				end := skipBraces(expr, i)
				out = append(out, expr[start:end])
				i = end
			default:
				out = append(out, name)
			}
		default:
			i++
		}
	}
	return out
}

func skipString(s string, i int) int {
	q := s[i]
	i++
	for i < len(s) && s[i] != q {
		if s[i] == '\\' && q != '`' {
			i++
		}
		i++
	}
	return i + 1
}

func skipBraces(s string, i int) int {
	for i < len(s) && s[i] != '}' {
		if s[i] == '"' || s[i] == '\'' || s[i] == '`' {
			i = skipString(s, i)
			continue
		}
		i++
	}
	return i + 1
}
