// The apivideo_exporter monitoring mixin: alerting rules and a Grafana
// dashboard, configured through _config (see config.libsonnet).
(import 'config.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
