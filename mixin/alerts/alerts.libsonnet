local utils = import '../lib/utils.libsonnet';

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local by = utils.by(cfg.groupLabels),
    local sel(extra=[]) = utils.selector([cfg.exporterSelector] + extra),
    local runbook(alert) = cfg.runbookURLBase + '#' + utils.githubAnchor(alert),
    local alert(name, severity, expr, forDuration, summary, description) = {
      alert: name,
      expr: expr,
      'for': forDuration,
      labels: { severity: severity },
      annotations: {
        summary: summary,
        description: description,
        runbook_url: runbook(name),
      },
    },

    groups+: [
      {
        name: 'apivideo-exporter',
        rules: [
          alert(
            'ApivideoScrapeFailing',
            cfg.exporterHealthSeverity,
            'max %s (apivideo_up{%s}) == 0' % [by, sel()],
            cfg.scrapeFailingFor,
            'apivideo_exporter cannot read api.video ({{ $labels.job }}{{ with $labels.account }}, account {{ . }}{{ end }})',
            'No replica of job {{ $labels.job }}{{ with $labels.account }} (account {{ . }}){{ end }} has read the upload tokens from api.video for %s (apivideo_up == 0); token metrics are missing.' % cfg.scrapeFailingFor,
          ),

          // A job that was seen within the lookback and has no series now
          // keeps its labels; "absent" covers a selector that has never
          // matched anything (it keeps only the selector's equality
          // matchers), and "or on ()" keeps it from doubling the first.
          alert(
            'ApivideoExporterAbsent',
            cfg.exporterHealthSeverity,
            |||
              (
                group %(by)s (present_over_time(apivideo_up{%(sel)s}[%(lookback)s]))
                unless
                group %(by)s (apivideo_up{%(sel)s})
              )
              or on ()
              absent(apivideo_up{%(sel)s})
            ||| % { by: by, sel: sel(), lookback: cfg.exporterAbsentLookback },
            cfg.exporterAbsentFor,
            'apivideo_exporter has disappeared from Prometheus{{ with $labels.job }} ({{ . }}{{ with $labels.account }}, account {{ . }}{{ end }}){{ end }}',
            'No apivideo_up series {{ with $labels.job }}of job {{ . }}{{ with $labels.account }} (account {{ . }}){{ end }}{{ else }}matching %s{{ end }} has been scraped for %s: the exporter is down, not scraped (PodMonitor, ServiceMonitor, scrape annotations or target discovery broken) or its job was renamed.' % [cfg.exporterSelector, cfg.exporterAbsentFor],
          ),

          // One alert per exporter process: each reads its own accounts
          // file, and the series carries no account.
          alert(
            'ApivideoExporterConfigReloadFailed',
            'warning',
            'max %s (apivideo_exporter_config_last_reload_successful{%s}) == 0' % [utils.by(['job', 'instance']), sel()],
            cfg.configReloadFailedFor,
            'apivideo_exporter could not load its accounts file ({{ $labels.job }}, {{ $labels.instance }})',
            'The last load of the accounts file (--config.file) by {{ $labels.instance }} of job {{ $labels.job }} failed %s or more ago: the exporter keeps probing the accounts of the last good file, and a change to the accounts has not taken effect.' % cfg.configReloadFailedFor,
          ),

          alert(
            'ApivideoRateLimitHeadroomLow',
            'warning',
            'min %(by)s (apivideo_ratelimit_remaining{%(sel)s}) / max %(by)s (apivideo_ratelimit_limit{%(sel)s}) < %(threshold)s' % {
              by: by,
              sel: sel(),
              threshold: utils.number(cfg.rateLimitHeadroomThreshold),
            },
            cfg.rateLimitHeadroomFor,
            'api.video rate-limit headroom nearly gone ({{ $labels.job }}{{ with $labels.account }}, account {{ . }}{{ end }})',
            'Only {{ $value | humanizePercentage }} of the api.video rate limit is left for job {{ $labels.job }}{{ with $labels.account }} (account {{ . }}){{ end }}; further reads (by the exporter and the applications sharing the key) will get 429.',
          ),

          // Each replica's requests are real, distinct calls against the
          // account's rate limit: this one counter is summed.
          alert(
            'ApivideoAPIThrottled',
            'warning',
            'sum %s (increase(apivideo_api_requests_total{%s}[%s])) > 0' % [by, sel(['code="429"']), cfg.apiThrottledWindow],
            cfg.apiThrottledFor,
            'api.video is rate-limiting the exporter ({{ $labels.job }}{{ with $labels.account }}, account {{ . }}{{ end }})',
            'api.video answered {{ $value | humanize }} requests of job {{ $labels.job }}{{ with $labels.account }} (account {{ . }}){{ end }} with 429 Too Many Requests in the last %s.' % cfg.apiThrottledWindow,
          ),

          alert(
            'ApivideoTokensWithoutExpiry',
            'warning',
            'max %s (apivideo_upload_tokens_without_expiry{%s}) > %s' % [by, sel(), utils.number(cfg.tokensWithoutExpiryThreshold)],
            cfg.tokensWithoutExpiryFor,
            'api.video upload tokens that never expire ({{ $labels.job }}{{ with $labels.account }}, account {{ . }}{{ end }})',
            '{{ $value }} delegated upload tokens of job {{ $labels.job }}{{ with $labels.account }} (account {{ . }}){{ end }} have no TTL: each is a standing credential that lets anyone holding it upload videos to the account.',
          ),

          alert(
            'ApivideoActiveTokensJump',
            'warning',
            |||
              (
                max %(by)s (apivideo_upload_tokens_active{%(sel)s})
                - max %(by)s (apivideo_upload_tokens_active{%(sel)s} offset %(window)s)
                > %(min)s
              )
              and
              (
                max %(by)s (apivideo_upload_tokens_active{%(sel)s})
                > %(ratio)s * max %(by)s (apivideo_upload_tokens_active{%(sel)s} offset %(window)s)
              )
            ||| % {
              by: by,
              sel: sel(),
              window: cfg.activeTokensJumpWindow,
              min: utils.number(cfg.activeTokensJumpMin),
              ratio: utils.number(cfg.activeTokensJumpRatio),
            },
            cfg.activeTokensJumpFor,
            'Sudden jump in active api.video upload tokens ({{ $labels.job }}{{ with $labels.account }}, account {{ . }}{{ end }})',
            'Job {{ $labels.job }}{{ with $labels.account }} (account {{ . }}){{ end }} has {{ $value }} more active upload tokens than %s ago (more than %s and more than %s%% up).' % [
              cfg.activeTokensJumpWindow,
              utils.number(cfg.activeTokensJumpMin),
              std.floor((cfg.activeTokensJumpRatio - 1) * 100 + 0.5),
            ],
          ),

          // One alert per standing token, so that it names the token.
          // Replicas publish the same createdAt: min keeps one series.
          alert(
            'ApivideoStandingTokenTooOld',
            'warning',
            'time() - min %s (apivideo_upload_token_without_expiry_created_timestamp_seconds{%s}) > %s' % [
              utils.by(cfg.groupLabels + ['token']),
              sel(),
              utils.number(cfg.standingTokenMaxAgeDays * 86400),
            ],
            cfg.standingTokenTooOldFor,
            'Standing api.video upload token {{ $labels.token }} is more than %s days old ({{ $labels.job }}{{ with $labels.account }}, account {{ . }}{{ end }})' % utils.number(cfg.standingTokenMaxAgeDays),
            'Upload token {{ $labels.token }} of job {{ $labels.job }}{{ with $labels.account }} (account {{ . }}){{ end }} has no TTL and was created {{ $value | humanizeDuration }} ago (more than %s days): a standing credential that lets anyone holding it upload videos to the account until it is deleted.' % utils.number(cfg.standingTokenMaxAgeDays),
          ),

          // Each replica counts the same tokens of the account: max, not
          // sum. The baseline is the average of the job's rate over the
          // baseline window, ending where the current window starts so that
          // a spike does not raise its own baseline. Averaging the per-job
          // rate, rather than taking rate() over the whole baseline window,
          // keeps it right when there is less history than that (a new
          // Prometheus, a replaced pod whose series starts afresh).
          alert(
            'ApivideoTokenMintingSpike',
            'warning',
            |||
              (
                60 * max %(by)s (rate(apivideo_upload_tokens_created_total{%(sel)s}[%(window)s]))
                > %(min)s
              )
              and
              (
                max %(by)s (rate(apivideo_upload_tokens_created_total{%(sel)s}[%(window)s]))
                > %(ratio)s * avg_over_time((max %(by)s (rate(apivideo_upload_tokens_created_total{%(sel)s}[%(window)s])))[%(baseline)s:%(window)s] offset %(window)s)
              )
            ||| % {
              by: by,
              sel: sel(),
              window: cfg.tokenMintingWindow,
              baseline: cfg.tokenMintingBaselineWindow,
              min: utils.number(cfg.tokenMintingMinPerMinute),
              ratio: utils.number(cfg.tokenMintingRatio),
            },
            cfg.tokenMintingFor,
            'api.video upload tokens minted far faster than usual ({{ $labels.job }}{{ with $labels.account }}, account {{ . }}{{ end }})',
            'Job {{ $labels.job }}{{ with $labels.account }} (account {{ . }}){{ end }} has minted {{ $value | humanize }} upload tokens a minute over the last %s, more than %s times its average rate over the %s before and more than %s a minute. A leaked API key or a loop in an application can mint tokens in bulk.' % [
              cfg.tokenMintingWindow,
              utils.number(cfg.tokenMintingRatio),
              cfg.tokenMintingBaselineWindow,
              utils.number(cfg.tokenMintingMinPerMinute),
            ],
          ),
        ],
      },
    ],
  },
}
