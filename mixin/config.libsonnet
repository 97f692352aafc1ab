{
  _config+:: {
    // Label matchers that select the exporter's series, in every alert and
    // dashboard query. The default matches the job names of the examples in
    // this repository ("apivideo", "<namespace>/apivideo-exporter" for a
    // PodMonitor, "<release>-apivideo-exporter" for the Helm chart). With an
    // equality matcher (job="apivideo") ApivideoExporterAbsent names the job
    // even when it has never been seen.
    exporterSelector: 'job=~".*apivideo.*"',

    // Labels the alerts and the dashboard aggregate by: one alert per
    // exporter job and account. Sidecar replicas of one job report the same
    // account, so gauges are taken as max or min by these labels, never
    // summed. The account label is set by relabelling when one exporter
    // probes several accounts (/probe?account=NAME); a single-account
    // exporter's series have none, and the grouping falls back to job.
    groupLabels: ['job', 'account'],

    // Dashboard filters shown before job and instance, each with an "All"
    // that also matches series without the label: remove the ones
    // Prometheus does not add.
    dashboardFilterLabels: ['cluster', 'namespace', 'account'],

    // Severity of the alerts about the monitoring itself
    // (ApivideoScrapeFailing, ApivideoExporterAbsent): the token metrics
    // are missing, the account is not at risk.
    exporterHealthSeverity: 'warning',

    // ApivideoScrapeFailing: no replica of a job reads api.video.
    scrapeFailingFor: '10m',

    // ApivideoExporterAbsent: a job seen within the lookback has no
    // apivideo_up series, or no series matches the selector at all.
    exporterAbsentFor: '10m',
    exporterAbsentLookback: '1d',

    // ApivideoExporterConfigReloadFailed: the accounts file has failed to
    // load for this long.
    configReloadFailedFor: '5m',

    // ApivideoRateLimitHeadroomLow: share of the rate limit left.
    rateLimitHeadroomThreshold: 0.1,
    rateLimitHeadroomFor: '5m',

    // ApivideoAPIThrottled: 429 replies within the window.
    apiThrottledWindow: '10m',
    apiThrottledFor: '5m',

    // ApivideoTokensWithoutExpiry: more standing tokens than this.
    tokensWithoutExpiryThreshold: 0,
    tokensWithoutExpiryFor: '15m',

    // ApivideoActiveTokensJump: active tokens more than Min above and more
    // than Ratio times their value Window ago.
    activeTokensJumpWindow: '30m',
    activeTokensJumpMin: 100,
    activeTokensJumpRatio: 1.5,
    activeTokensJumpFor: '5m',

    // ApivideoStandingTokenTooOld: a token that never expires was created
    // more than this many days ago. One alert per token, named by its
    // (redacted) token label.
    standingTokenMaxAgeDays: 30,
    standingTokenTooOldFor: '15m',

    // ApivideoTokenMintingSpike: tokens minted per minute over Window more
    // than Ratio times their average rate over the BaselineWindow before
    // it, and more than MinPerMinute, so that a handful of tokens on a
    // quiet account does not fire.
    tokenMintingWindow: '10m',
    tokenMintingBaselineWindow: '1d',
    tokenMintingRatio: 5,
    tokenMintingMinPerMinute: 5,
    tokenMintingFor: '5m',

    // Each alert's runbook_url is runbookURLBase + '#' + the alert name in
    // lower case (the anchor of its section in docs/runbook.md).
    runbookURLBase: 'https://github.com/apivideo-exporter/apivideo_exporter/blob/main/docs/runbook.md',
    readmeURL: 'https://github.com/apivideo-exporter/apivideo_exporter#readme',

    dashboardUID: 'apivideo-exporter',
    dashboardTitle: 'api.video upload tokens',
    dashboardTags: ['apivideo', 'prometheus'],
    dashboardRefresh: '1m',
    dashboardTimeFrom: 'now-6h',
  },
}
