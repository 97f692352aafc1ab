{
  grafanaDashboards+:: {
    'apivideo-exporter.json': (import 'apivideo-exporter.libsonnet').new($._config),
  },
}
