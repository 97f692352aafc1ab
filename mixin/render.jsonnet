// Renders the mixin with its default _config into the files committed in
// this repository. From the repository root:
//   go run github.com/google/go-jsonnet/cmd/jsonnet@v0.22.0 -S -m . mixin/render.jsonnet
// (jsonnet -m ends each file with a newline.) deploy/mixin checks that the
// committed files equal this output.
local mixin = import 'mixin.libsonnet';

local yaml(value) = std.manifestYamlDoc(value, indent_array_in_object=true, quote_keys=false);

local rules = |||
  # Prometheus alerting rules for apivideo_exporter, generated from mixin/
  # with its default _config: edit the mixin, not this file, then run
  #   go run github.com/google/go-jsonnet/cmd/jsonnet@v0.22.0 -S -m . mixin/render.jsonnet
  #
  # Load with `rule_files:` in prometheus.yml (deploy/kubernetes/prometheusrule.yaml
  # and the Helm chart carry the same groups for the Prometheus Operator).
  # Unit tests: promtool test rules dashboards/apivideo-alerts.test.yml
  #
  # Several sidecar replicas may report the same api.video account under
  # different instance/pod labels: every rule aggregates with max/min by
  # (job, account) so that duplicate series are never summed. The one
  # exception is the request counter, where each replica's requests are
  # real, distinct calls against the account's rate limit. The account
  # label is set by relabelling when one exporter probes several accounts
  # (/probe); a single-account exporter's series have none, and the rules
  # then group by job alone.
  #
  # Every rule selects %(selector)s; a job named otherwise
  # needs its own rendering of the mixin (see docs/dashboards-and-alerts.md).
||| % { selector: mixin._config.exporterSelector } + yaml(mixin.prometheusAlerts);

local prometheusRule = |||
  # The alerting rules of dashboards/apivideo-alerts.rules.yml for the
  # Prometheus Operator, generated from mixin/ (see that file's header).
  # Set the labels to what your Prometheus' ruleSelector expects.
||| + yaml({
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'PrometheusRule',
  metadata: {
    name: 'apivideo-exporter',
    labels: {
      'app.kubernetes.io/name': 'apivideo-exporter',
      release: 'prometheus',
    },
  },
  spec: mixin.prometheusAlerts,
});

// manifestJsonEx writes an empty array or object over three lines, the
// middle one blank: join them into "[]" and "{}". Strings hold no raw
// newline, so a blank line is never anything else.
local compactEmpty(json) =
  local lines = std.split(json, '\n');
  local n = std.length(lines);
  std.join('\n', [
    if i + 2 < n && lines[i + 1] == '' then lines[i] + std.lstripChars(lines[i + 2], ' ') else lines[i]
    for i in std.range(0, n - 1)
    if lines[i] != '' && !(i > 0 && lines[i - 1] == '')
  ]);

local dashboard = compactEmpty(std.manifestJsonEx(mixin.grafanaDashboards['apivideo-exporter.json'], '  '));

{
  'dashboards/apivideo-exporter.json': dashboard,
  'dashboards/apivideo-alerts.rules.yml': rules,
  'deploy/kubernetes/prometheusrule.yaml': prometheusRule,
  // The chart can only read files inside its own directory.
  'charts/apivideo-exporter/files/apivideo-exporter.json': dashboard,
  'charts/apivideo-exporter/files/apivideo-alerts.rules.yml': rules,
}
