// The "api.video upload tokens" dashboard, in plain jsonnet (no grafonnet,
// so that rendering needs nothing outside this repository).
local utils = import '../lib/utils.libsonnet';

local datasource = { type: 'prometheus', uid: '${datasource}' };

local gridPos(x, y, w, h) = { x: x, y: y, w: w, h: h };

local target(expr, legend, refId='A', instant=false, format='time_series') = {
  datasource: datasource,
  expr: expr,
  legendFormat: legend,
  refId: refId,
  editorMode: 'code',
  format: format,
  instant: instant,
  range: !instant,
};

local steps(list) = {
  mode: 'absolute',
  steps: [{ color: s[0], value: s[1] } for s in list],
};

local row(id, title, y) = {
  type: 'row',
  id: id,
  title: title,
  collapsed: false,
  panels: [],
  gridPos: gridPos(0, y, 24, 1),
};

local panel(type, id, title, description, pos, targets) = {
  type: type,
  id: id,
  title: title,
  description: description,
  datasource: datasource,
  gridPos: pos,
  targets: targets,
};

local reduceOptions = { calcs: ['lastNotNull'], fields: '', values: false };

local stat(id, title, description, pos, targets, unit='none', thresholdSteps=[['green', null]], colorMode='value', decimals=0, mappings=[]) =
  panel('stat', id, title, description, pos, targets) + {
    fieldConfig: {
      defaults: {
        unit: unit,
        color: { mode: 'thresholds' },
        thresholds: steps(thresholdSteps),
        mappings: mappings,
      } + (if decimals != null then { decimals: decimals } else {}),
      overrides: [],
    },
    options: {
      reduceOptions: reduceOptions,
      colorMode: colorMode,
      graphMode: 'area',
      justifyMode: 'auto',
      orientation: 'auto',
      textMode: 'auto',
      wideLayout: true,
      showPercentChange: false,
      percentChangeColorMode: 'standard',
    },
  };

local timeseries(id, title, description, pos, targets, unit, fillOpacity=10) =
  panel('timeseries', id, title, description, pos, targets) + {
    fieldConfig: {
      defaults: {
        unit: unit,
        color: { mode: 'palette-classic' },
        custom: {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: fillOpacity,
          showPoints: 'never',
          spanNulls: false,
          axisSoftMin: 0,
        },
        thresholds: steps([['green', null]]),
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull', 'max'] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  };

local fixedColor(color) = { id: 'color', value: { mode: 'fixed', fixedColor: color } };

// buckets shows a histogram of the current state as bars, one for each
// bucket (Grafana's heatmap format turns the cumulative buckets into counts).
local buckets(id, title, description, pos, targets) =
  panel('bargauge', id, title, description, pos, targets) + {
    fieldConfig: {
      defaults: {
        unit: 'none',
        decimals: 0,
        min: 0,
        color: { mode: 'thresholds' },
        thresholds: steps([['blue', null]]),
      },
      overrides: [],
    },
    options: {
      orientation: 'vertical',
      displayMode: 'basic',
      showUnfilled: true,
      valueMode: 'color',
      namePlacement: 'auto',
      sizing: 'auto',
      minVizWidth: 8,
      minVizHeight: 16,
      maxVizHeight: 300,
      legend: { displayMode: 'list', placement: 'bottom', showLegend: false, calcs: [] },
      reduceOptions: reduceOptions,
    },
  };

{
  new(cfg)::
    local by(extra=[]) = utils.by(cfg.groupLabels + extra);
    local legend = std.join(' ', ['{{%s}}' % l for l in cfg.groupLabels]);
    local filters =
      [utils.selector([cfg.exporterSelector])]
      + ['%s=~"$%s"' % [l, l] for l in cfg.dashboardFilterLabels];
    // m returns metric with the dashboard's matchers and any extra ones.
    local m(metric, extra=[]) =
      '%s{%s}' % [metric, utils.selector(filters + ['job=~"$job"', 'instance=~"$instance"'] + extra)];

    local queryVariable(name, label, query, allValue) = {
      name: name,
      label: label,
      type: 'query',
      datasource: datasource,
      definition: query,
      query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
      refresh: 2,
      multi: true,
      includeAll: true,
      allValue: allValue,
      current: { selected: true, text: ['All'], value: ['$__all'] },
      options: [],
      regex: '',
      sort: 1,
      hide: 0,
      skipUrlSync: false,
    };
    // Each filter variable narrows the values offered by the next ones.
    local filterVariables = [
      local previous = cfg.dashboardFilterLabels[0:i];
      queryVariable(
        cfg.dashboardFilterLabels[i],
        std.asciiUpper(cfg.dashboardFilterLabels[i][0]) + cfg.dashboardFilterLabels[i][1:],
        'label_values(apivideo_up{%s}, %s)' % [
          utils.selector([cfg.exporterSelector] + ['%s=~"$%s"' % [l, l] for l in previous]),
          cfg.dashboardFilterLabels[i],
        ],
        // Matches series without the label too.
        '.*',
      )
      for i in std.range(0, std.length(cfg.dashboardFilterLabels) - 1)
    ];

    {
      annotations: {
        list: [{
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        }],
      },
      description: 'Delegated upload tokens of api.video accounts, from apivideo_exporter: exporter health, active tokens and tokens without expiry, tokens closest to expiry, the expiry distribution, standing credentials, the minting rate and token lifetimes, API requests and rate-limit headroom.',
      editable: false,
      fiscalYearStartMonth: 0,
      graphTooltip: 1,
      id: null,
      links: [
        {
          title: 'README',
          type: 'link',
          url: cfg.readmeURL,
          tooltip: 'apivideo_exporter: metrics, flags and deployment',
          icon: 'doc',
          tags: [],
          asDropdown: false,
          targetBlank: true,
          includeVars: false,
          keepTime: false,
        },
        {
          title: 'Runbook',
          type: 'link',
          url: cfg.runbookURLBase,
          tooltip: 'What each alert means and what to do',
          icon: 'info',
          tags: [],
          asDropdown: false,
          targetBlank: true,
          includeVars: false,
          keepTime: false,
        },
      ],
      panels: [
        row(1, 'Exporter and api.video health', 0),
        stat(
          2,
          'api.video read',
          "Whether the account's upload tokens were read from api.video on the last scrape (apivideo_up). With several sidecar replicas reporting the same account this is the best replica (max by job and account): FAILING means no replica could read every page. Per-replica state is in the graph beside.",
          gridPos(0, 1, 4, 5),
          [target('max %s (%s)' % [by(), m('apivideo_up')], legend, instant=true)],
          thresholdSteps=[['red', null], ['green', 1]],
          colorMode='background',
          mappings=[{
            type: 'value',
            options: {
              '0': { text: 'FAILING', color: 'red', index: 0 },
              '1': { text: 'OK', color: 'green', index: 1 },
            },
          }],
        ),
        stat(
          3,
          'Replicas reading api.video',
          'Exporter replicas (sidecars) whose last scrape read api.video successfully, out of those scraped. Each replica reads the whole account on every scrape: N replicas cost N times the API reads.',
          gridPos(4, 1, 4, 5),
          [
            target('sum %s (%s)' % [by(), m('apivideo_up')], legend + ' reading', instant=true),
            target('count %s (%s)' % [by(), m('apivideo_up')], legend + ' scraped', 'B', instant=true),
          ],
        ),
        stat(
          4,
          'Scrape duration',
          "Time the slowest replica's last scrape spent reading the upload tokens from api.video (apivideo_scrape_duration_seconds, max by job and account). Close to --apivideo.timeout or to the Prometheus scrape timeout means scrapes are about to fail.",
          gridPos(8, 1, 4, 5),
          [target('max %s (%s)' % [by(), m('apivideo_scrape_duration_seconds')], legend, instant=true)],
          unit='s',
          thresholdSteps=[['green', null], ['orange', 5], ['red', 8]],
          decimals=null,
        ),
        timeseries(
          5,
          'api.video read per replica',
          "apivideo_up of every exporter replica (1: the last scrape read every page from api.video) and Prometheus' own up for the target (1: the exporter answered the scrape).",
          gridPos(12, 1, 6, 5),
          [
            target('min %s (%s)' % [by(['instance']), m('apivideo_up')], legend + ' {{instance}} apivideo_up'),
            target('min %s (%s)' % [by(['instance']), m('up')], legend + ' {{instance}} up', 'B'),
          ],
          'none',
          fillOpacity=0,
        ) + {
          fieldConfig+: {
            defaults+: {
              custom+: { lineInterpolation: 'stepAfter' },
              min: 0,
              max: 1,
              decimals: 0,
            },
          },
        },
        timeseries(
          6,
          'Scrape duration per replica',
          'apivideo_scrape_duration_seconds of every replica: the time each scrape spent listing the upload tokens from api.video (or the cache when --apivideo.cache-ttl is set).',
          gridPos(18, 1, 6, 5),
          [target('max %s (%s)' % [by(['instance']), m('apivideo_scrape_duration_seconds')], legend + ' {{instance}}')],
          's',
        ),

        row(7, 'Upload tokens', 6),
        stat(
          8,
          'Active upload tokens',
          'Delegated upload tokens active in the account now (apivideo_upload_tokens_active). Replicas report the same account, so this is max by job and account, never a sum.',
          gridPos(0, 7, 6, 5),
          [target('max %s (%s)' % [by(), m('apivideo_upload_tokens_active')], legend, instant=true)],
          thresholdSteps=[['blue', null]],
        ),
        stat(
          9,
          'Tokens without expiry',
          'Active upload tokens that never expire (apivideo_upload_tokens_without_expiry). Each one is a standing upload credential: anyone holding it can upload videos to the account until it is deleted. Red as soon as there is one.',
          gridPos(6, 7, 6, 5),
          [target('max %s (%s)' % [by(), m('apivideo_upload_tokens_without_expiry')], legend, instant=true)],
          thresholdSteps=[['green', null], ['red', 1]],
          colorMode='background',
        ),
        stat(
          10,
          'Expiring within 1 hour',
          'Expiring upload tokens that expire within the next hour, from the le="3600" bucket of apivideo_upload_tokens_expiry_seconds (max by job and account).',
          gridPos(12, 7, 6, 5),
          [target('max %s (%s)' % [by(), m('apivideo_upload_tokens_expiry_seconds_bucket', ['le=~"3600(\\\\.0)?"'])], legend, instant=true)],
          thresholdSteps=[['text', null]],
        ),
        stat(
          11,
          'Expiring within 24 hours',
          'Expiring upload tokens that expire within the next 24 hours, from the le="86400" bucket of apivideo_upload_tokens_expiry_seconds (max by job and account).',
          gridPos(18, 7, 6, 5),
          [target('max %s (%s)' % [by(), m('apivideo_upload_tokens_expiry_seconds_bucket', ['le=~"86400(\\\\.0)?"'])], legend, instant=true)],
          thresholdSteps=[['text', null]],
        ),
        timeseries(
          12,
          'Active tokens and tokens without expiry',
          'Active upload tokens and, in red, those that never expire, over time (max by job and account, so that sidecar replicas reporting the same account are not added up). A sudden climb of active tokens can be a loop or a leaked API key minting tokens.',
          gridPos(0, 12, 12, 8),
          [
            target('max %s (%s)' % [by(), m('apivideo_upload_tokens_active')], legend + ' active'),
            target('max %s (%s)' % [by(), m('apivideo_upload_tokens_without_expiry')], legend + ' without expiry', 'B'),
          ],
          'none',
        ) + {
          fieldConfig+: {
            defaults+: { decimals: 0 },
            overrides: [{
              matcher: { id: 'byFrameRefID', options: 'B' },
              properties: [
                fixedColor('red'),
                { id: 'custom.lineWidth', value: 2 },
                { id: 'custom.fillOpacity', value: 25 },
              ],
            }],
          },
        },
        panel(
          'table',
          13,
          'Tokens closest to expiry',
          'The 25 upload tokens that expire soonest (bottomk over apivideo_upload_token_expires_in_seconds, min by job, account and token so that replicas do not list a token twice). Tokens are shown as the redacted prefix the exporter publishes (--collector.token-label). Tokens without expiry are not listed.',
          gridPos(12, 12, 12, 8),
          [target('bottomk(25, min %s (%s))' % [by(['token']), m('apivideo_upload_token_expires_in_seconds')], '{{token}}', instant=true, format='table')],
        ) + {
          fieldConfig: {
            defaults: {
              unit: 's',
              decimals: 0,
              color: { mode: 'thresholds' },
              custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false },
              thresholds: steps([['red', null], ['orange', 3600], ['yellow', 86400], ['green', 604800]]),
            },
            overrides: [{
              matcher: { id: 'byName', options: 'Expires in' },
              properties: [{ id: 'custom.cellOptions', value: { type: 'color-background' } }],
            }],
          },
          options: {
            showHeader: true,
            cellHeight: 'sm',
            frameIndex: 0,
            sortBy: [{ displayName: 'Expires in', desc: false }],
            footer: { show: false, reducer: ['sum'], fields: '' },
          },
          transformations: [{
            id: 'organize',
            options: {
              excludeByName: { Time: true },
              indexByName: { [cfg.groupLabels[i]]: i for i in std.range(0, std.length(cfg.groupLabels) - 1) } + {
                token: std.length(cfg.groupLabels),
                Value: std.length(cfg.groupLabels) + 1,
              },
              renameByName: { [l]: std.asciiUpper(l[0]) + l[1:] for l in cfg.groupLabels } + {
                Value: 'Expires in',
                token: 'Token (redacted)',
              },
            },
          }],
        },
        buckets(
          14,
          'Expiry distribution',
          'How many expiring upload tokens expire within each bucket of time from now (apivideo_upload_tokens_expiry_seconds histogram, bucket upper bounds in seconds: 300 = 5 min, 3600 = 1 h, 86400 = 1 d, 604800 = 7 d, 2.592e+06 = 30 d). Max over the replicas of each job and account, so replicas are not added up, then summed over the selected accounts: pick one account to see its own.',
          gridPos(0, 20, 12, 8),
          [target('sum by (le) (max %s (%s))' % [by(['le']), m('apivideo_upload_tokens_expiry_seconds_bucket')], '{{le}}', instant=true, format='heatmap')],
        ),
        panel(
          'heatmap',
          15,
          'Expiry distribution over time',
          'The expiry histogram over time: each column is a scrape, each cell how many tokens expire within that bucket (max over the replicas of each job and account, summed over the selected accounts).',
          gridPos(12, 20, 12, 8),
          [target('sum by (le) (max %s (%s))' % [by(['le']), m('apivideo_upload_tokens_expiry_seconds_bucket')], '{{le}}', format='heatmap')],
        ) + {
          fieldConfig: {
            defaults: {
              unit: 'none',
              custom: {
                hideFrom: { legend: false, tooltip: false, viz: false },
                scaleDistribution: { type: 'linear' },
              },
            },
            overrides: [],
          },
          options: {
            calculate: false,
            cellGap: 1,
            showValue: 'auto',
            color: {
              mode: 'scheme',
              scheme: 'Oranges',
              exponent: 0.5,
              fill: 'dark-orange',
              reverse: false,
              scale: 'exponential',
              steps: 64,
            },
            yAxis: { axisPlacement: 'left', unit: 's', reverse: false },
            rowsFrame: { layout: 'le' },
            cellValues: { unit: 'none' },
            tooltip: { mode: 'single', yHistogram: false, showColorScale: false },
            legend: { show: true },
            exemplars: { color: 'rgba(255,0,255,0.7)' },
            filterValues: { le: 1e-09 },
          },
        },

        row(21, 'Standing credentials and token lifecycle', 28),
        panel(
          'table',
          22,
          'Standing credentials',
          'Every active upload token that never expires, oldest first: its redacted prefix, when it was created and how long it has existed (apivideo_upload_token_without_expiry_created_timestamp_seconds, min by job, account and token so that replicas do not list a token twice). Each one lets anyone holding it upload videos to the account until it is deleted. Red past %s days, the ApivideoStandingTokenTooOld threshold. Empty with --collector.token-label=none.' % utils.number(cfg.standingTokenMaxAgeDays),
          gridPos(0, 29, 12, 8),
          [
            target('1000 * min %s (%s)' % [by(['token']), m('apivideo_upload_token_without_expiry_created_timestamp_seconds')], '{{token}}', instant=true, format='table'),
            target('time() - min %s (%s)' % [by(['token']), m('apivideo_upload_token_without_expiry_created_timestamp_seconds')], '{{token}}', 'B', instant=true, format='table'),
          ],
        ) + {
          fieldConfig: {
            defaults: {
              unit: 'dtdurations',
              color: { mode: 'thresholds' },
              custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false },
              thresholds: steps([['orange', null], ['red', cfg.standingTokenMaxAgeDays * 86400]]),
            },
            overrides: [
              {
                matcher: { id: 'byName', options: 'Created' },
                properties: [{ id: 'unit', value: 'dateTimeAsIso' }],
              },
              {
                matcher: { id: 'byName', options: 'Age' },
                properties: [
                  { id: 'decimals', value: 2 },
                  { id: 'custom.cellOptions', value: { type: 'color-background' } },
                ],
              },
            ],
          },
          options: {
            showHeader: true,
            cellHeight: 'sm',
            frameIndex: 0,
            sortBy: [{ displayName: 'Age', desc: true }],
            footer: { show: false, reducer: ['sum'], fields: '' },
          },
          // The two queries give one frame each: merge joins them on the
          // labels into one row per token.
          transformations: [
            { id: 'merge', options: {} },
            {
              id: 'organize',
              options: {
                excludeByName: { Time: true },
                indexByName: { [cfg.groupLabels[i]]: i for i in std.range(0, std.length(cfg.groupLabels) - 1) } + {
                  token: std.length(cfg.groupLabels),
                  'Value #A': std.length(cfg.groupLabels) + 1,
                  'Value #B': std.length(cfg.groupLabels) + 2,
                },
                renameByName: { [l]: std.asciiUpper(l[0]) + l[1:] for l in cfg.groupLabels } + {
                  token: 'Token (redacted)',
                  'Value #A': 'Created',
                  'Value #B': 'Age',
                },
              },
            },
          ],
        },
        timeseries(
          23,
          'Tokens minted a minute',
          'Upload tokens created per minute (rate of apivideo_upload_tokens_created_total: tokens that a listing shows for the first time with a createdAt after the previous listing). Max by job and account, since every replica counts the same tokens of the account. A leaked API key or a loop in an application shows here as a spike long before the active count looks odd (ApivideoTokenMintingSpike).',
          gridPos(12, 29, 12, 8),
          [target('60 * max %s (rate(%s[$__rate_interval]))' % [by(), m('apivideo_upload_tokens_created_total')], legend)],
          'short',
        ),
        stat(
          24,
          'Oldest standing credential',
          'Age of the oldest active upload token that never expires (time since its createdAt, from apivideo_upload_token_without_expiry_created_timestamp_seconds). Red past %s days, the ApivideoStandingTokenTooOld threshold.' % utils.number(cfg.standingTokenMaxAgeDays),
          gridPos(0, 37, 6, 4),
          [target('time() - min %s (%s)' % [by(), m('apivideo_upload_token_without_expiry_created_timestamp_seconds')], legend, instant=true)],
          unit='dtdurations',
          thresholdSteps=[['orange', null], ['red', cfg.standingTokenMaxAgeDays * 86400]],
          decimals=2,
        ) + { fieldConfig+: { defaults+: { noValue: 'None' } } },
        stat(
          25,
          'Tokens living over a day',
          'Share of the active upload tokens whose ttl is more than a day, or which never expire: 1 minus the le="86400" bucket of apivideo_upload_tokens_ttl_seconds over apivideo_upload_tokens_active (max by job and account). A ttl of a week is nearly as risky as none.',
          gridPos(0, 41, 6, 4),
          [target('1 - max %s (%s) / max %s (%s)' % [
            by(),
            m('apivideo_upload_tokens_ttl_seconds_bucket', ['le=~"86400(\\\\.0)?"']),
            by(),
            m('apivideo_upload_tokens_active'),
          ], legend, instant=true)],
          unit='percentunit',
          thresholdSteps=[['green', null], ['orange', 0.1], ['red', 0.5]],
        ),
        buckets(
          26,
          'Lifetime (ttl) distribution',
          'How many expiring upload tokens were created with a ttl within each bucket (apivideo_upload_tokens_ttl_seconds histogram of the active tokens, bucket upper bounds in seconds: 300 = 5 min, 3600 = 1 h, 86400 = 1 d, 604800 = 7 d, 2.592e+06 = 30 d). It describes the tokens active now, so a bucket falls when its tokens expire. Tokens without expiry are not in it. Max over the replicas of each job and account, so replicas are not added up, then summed over the selected accounts: pick one account to see its own.',
          gridPos(6, 37, 18, 8),
          [target('sum by (le) (max %s (%s))' % [by(['le']), m('apivideo_upload_tokens_ttl_seconds_bucket')], '{{le}}', instant=true, format='heatmap')],
        ),

        row(16, 'api.video API', 45),
        timeseries(
          17,
          'API requests by status code',
          "Requests the exporter sent to api.video per second, by HTTP status code (apivideo_api_requests_total). Summed over replicas on purpose: each replica's requests are real calls that count against the account's rate limit. 401 means a bad API key, 429 rate limiting, 5xx an api.video problem.",
          gridPos(0, 46, 8, 8),
          [target('sum %s (rate(%s[$__rate_interval]))' % [by(['code']), m('apivideo_api_requests_total')], legend + ' {{code}}')],
          'reqps',
          fillOpacity=60,
        ) + {
          fieldConfig+: {
            defaults+: {
              custom+: { drawStyle: 'bars', stacking: { mode: 'normal', group: 'A' } },
            },
            overrides: [{
              matcher: { id: 'byRegexp', options: '/(^| )[45]\\d\\d$/' },
              properties: [fixedColor('red')],
            }],
          },
        },
        timeseries(
          18,
          'API request latency',
          "Median and 99th percentile of the duration of the exporter's requests to api.video (apivideo_api_request_duration_seconds).",
          gridPos(8, 46, 8, 8),
          [
            target('histogram_quantile(0.5, sum %s (rate(%s[$__rate_interval])))' % [by(['le']), m('apivideo_api_request_duration_seconds_bucket')], legend + ' p50'),
            target('histogram_quantile(0.99, sum %s (rate(%s[$__rate_interval])))' % [by(['le']), m('apivideo_api_request_duration_seconds_bucket')], legend + ' p99', 'B'),
          ],
          's',
        ),
        panel(
          'gauge',
          19,
          'Rate-limit headroom',
          "Share of api.video's per-minute rate limit still available, from the X-RateLimit-Remaining and X-RateLimit-Limit headers of the latest replies (lowest remaining over the replicas divided by the limit). The key's quota is shared with every application using the same API key.",
          gridPos(16, 46, 4, 8),
          [target('min %s (%s) / max %s (%s)' % [by(), m('apivideo_ratelimit_remaining'), by(), m('apivideo_ratelimit_limit')], legend, instant=true)],
        ) + {
          fieldConfig: {
            defaults: {
              unit: 'percentunit',
              min: 0,
              max: 1,
              decimals: 0,
              color: { mode: 'thresholds' },
              thresholds: steps([['red', null], ['orange', cfg.rateLimitHeadroomThreshold], ['green', 0.25]]),
            },
            overrides: [],
          },
          options: {
            reduceOptions: reduceOptions,
            showThresholdLabels: false,
            showThresholdMarkers: true,
            orientation: 'auto',
            sizing: 'auto',
            minVizHeight: 75,
            minVizWidth: 75,
          },
        },
        timeseries(
          20,
          'Rate limit remaining',
          "Requests left in the current rate-limit window (lowest over the replicas) against the limit, from api.video's X-RateLimit-* headers.",
          gridPos(20, 46, 4, 8),
          [
            target('min %s (%s)' % [by(), m('apivideo_ratelimit_remaining')], legend + ' remaining'),
            target('max %s (%s)' % [by(), m('apivideo_ratelimit_limit')], legend + ' limit', 'B'),
          ],
          'short',
        ) + {
          fieldConfig+: {
            defaults+: { decimals: 0 },
            overrides: [{
              matcher: { id: 'byFrameRefID', options: 'B' },
              properties: [
                { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
                { id: 'custom.fillOpacity', value: 0 },
              ],
            }],
          },
        },
      ],
      refresh: cfg.dashboardRefresh,
      schemaVersion: 42,
      tags: cfg.dashboardTags,
      templating: {
        list: [
          {
            name: 'datasource',
            label: 'Data source',
            type: 'datasource',
            query: 'prometheus',
            hide: 0,
            includeAll: false,
            multi: false,
            options: [],
            refresh: 1,
            regex: '',
            skipUrlSync: false,
          },
        ] + filterVariables + [
          queryVariable(
            'job',
            'Job',
            'label_values(apivideo_up{%s}, job)' % utils.selector(filters),
            '.+',
          ),
          queryVariable(
            'instance',
            'Instance',
            'label_values(apivideo_up{%s}, instance)' % utils.selector(filters + ['job=~"$job"']),
            '.+',
          ),
        ],
      },
      time: { from: cfg.dashboardTimeFrom, to: 'now' },
      timepicker: {},
      timezone: '',
      title: cfg.dashboardTitle,
      uid: cfg.dashboardUID,
      version: 1,
      weekStart: '',
    },
}
