package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
)

// clearFlagEnv unsets the environment variables flags read, for the test.
func clearFlagEnv(t *testing.T) {
	t.Helper()
	cfg := &config{}
	for _, f := range newApp(cfg).Model().Flags {
		if f.Envar != "" {
			t.Setenv(f.Envar, "") // restored after the test
			os.Unsetenv(f.Envar)
		}
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	clearFlagEnv(t)
	cfg, err := parseFlags(nil)
	require.NoError(t, err)
	assert.Equal(t, []string{":9856"}, *cfg.web.WebListenAddresses)
	assert.Empty(t, *cfg.web.WebConfigFile)
	assert.Equal(t, "/metrics", cfg.metricsPath)
	assert.Equal(t, 40, cfg.maxRequests)
	assert.Equal(t, 0.5, cfg.timeoutOffset)
	assert.Equal(t, apiclient.DefaultURL, cfg.apiURL)
	assert.Empty(t, cfg.keyFile)
	assert.Equal(t, 10*time.Second, cfg.apiTimeout)
	assert.Equal(t, apiclient.DefaultConcurrency, cfg.concurrency)
	assert.Zero(t, cfg.cacheTTL)
	assert.Equal(t, "auto", cfg.listing)
	assert.Equal(t, 10*time.Minute, cfg.resyncInterval)
	assert.Equal(t, 0.5, cfg.rateLimitShare)
	assert.Equal(t, collector.LabelRedacted, cfg.tokenLabel)
	assert.Equal(t, collector.DefaultMaxTokenSeries, cfg.maxSeries)
	assert.False(t, cfg.deprecatedNames, "the names of 0.1 only on request")
	assert.Equal(t, "info", cfg.logLevel)
	assert.Equal(t, "logfmt", cfg.logFormat)
	assert.False(t, cfg.demo)
	assert.Empty(t, cfg.configFile)
	assert.Equal(t, 16, cfg.maxProbes)
	assert.NoError(t, cfg.validate(), "the defaults are valid")
}

func TestParseFlags(t *testing.T) {
	clearFlagEnv(t)
	cfg, err := parseFlags([]string{
		"--web.listen-address=127.0.0.1:1", "--web.listen-address=127.0.0.1:2",
		"--web.telemetry-path=/m", "--web.max-requests=5", "--web.timeout-offset=1.5",
		"--apivideo.url=https://sandbox.api.video", "--apivideo.api-key-file=/k",
		"--apivideo.timeout=1m", "--apivideo.concurrency=4", "--apivideo.cache-ttl=30s",
		"--apivideo.listing=incremental", "--apivideo.resync-interval=1h", "--apivideo.ratelimit-share=0.25",
		"--collector.token-label=none", "--collector.max-token-series=10", "--collector.deprecated-metric-names",
		"--log.level=debug", "--log.format=json", "--demo",
		"--config.file=/accounts.yml", "--probe.max-concurrent=4",
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, *cfg.web.WebListenAddresses)
	assert.Equal(t, &config{
		web: cfg.web, metricsPath: "/m", maxRequests: 5, timeoutOffset: 1.5,
		apiURL: "https://sandbox.api.video", keyFile: "/k", apiTimeout: time.Minute, concurrency: 4, cacheTTL: 30 * time.Second,
		listing: "incremental", resyncInterval: time.Hour, resyncSet: true, rateLimitShare: 0.25,
		tokenLabel: collector.LabelNone, maxSeries: 10, deprecatedNames: true,
		logLevel: "debug", logFormat: "json", demo: true,
		configFile: "/accounts.yml", maxProbes: 4,
	}, cfg)
}

func TestParseFlagsFromEnvironment(t *testing.T) {
	clearFlagEnv(t)
	t.Setenv("APIVIDEO_URL", "http://127.0.0.1:8080/api")
	t.Setenv("APIVIDEO_CONCURRENCY", "3")
	t.Setenv("APIVIDEO_TIMEOUT", "5s")
	t.Setenv("APIVIDEO_LISTING", "incremental")
	cfg, err := parseFlags(nil)
	require.NoError(t, err)
	assert.Equal(t, "incremental", cfg.listing)
	assert.Equal(t, "http://127.0.0.1:8080/api", cfg.apiURL)
	assert.Equal(t, 3, cfg.concurrency)
	assert.Equal(t, 5*time.Second, cfg.apiTimeout)

	t.Setenv("APIVIDEO_CONCURRENCY", "three")
	_, err = parseFlags(nil)
	assert.ErrorContains(t, err, `--apivideo.concurrency (or APIVIDEO_CONCURRENCY): invalid value "three"`)
}

// TestParseErrorsNameTheFlag covers the values kingpin itself rejects.
func TestParseErrorsNameTheFlag(t *testing.T) {
	clearFlagEnv(t)
	for _, tc := range []struct {
		arg  string
		want string
	}{
		{"--apivideo.concurrency=abc", `--apivideo.concurrency (or APIVIDEO_CONCURRENCY): invalid value "abc": invalid syntax`},
		{"--apivideo.concurrency=99999999999999999999", `--apivideo.concurrency (or APIVIDEO_CONCURRENCY): invalid value "99999999999999999999": value out of range`},
		{"--apivideo.timeout=10", `--apivideo.timeout (or APIVIDEO_TIMEOUT): invalid value "10": time: missing unit`},
		{"--apivideo.cache-ttl=soon", `--apivideo.cache-ttl (or APIVIDEO_CACHE_TTL): invalid value "soon"`},
		{"--web.max-requests=many", `--web.max-requests: invalid value "many": invalid syntax`},
		{"--web.timeout-offset=half", `--web.timeout-offset: invalid value "half": invalid syntax`},
		{"--collector.max-token-series=1.5", `--collector.max-token-series: invalid value "1.5": invalid syntax`},
		{"--probe.max-concurrent=some", `--probe.max-concurrent: invalid value "some": invalid syntax`},
		{"--apivideo.concurrency=1e1", `--apivideo.concurrency (or APIVIDEO_CONCURRENCY): invalid value "1e1": invalid syntax`},
		{"--collector.token-label=partial", `--collector.token-label: invalid value "partial": unknown token label mode "partial": want one of redacted, full, none`},
		{"--log.level=verbose", `--log.level: invalid value "verbose": enum value must be one of debug,info,warn,error`},
		{"--log.format=xml", `--log.format: invalid value "xml": enum value must be one of logfmt,json`},
		{"--apivideo.listing=partial", `--apivideo.listing (or APIVIDEO_LISTING): invalid value "partial": enum value must be one of auto,full,incremental`},
		{"--apivideo.resync-interval=10", `--apivideo.resync-interval (or APIVIDEO_RESYNC_INTERVAL): invalid value "10": time: missing unit`},
		{"--apivideo.ratelimit-share=half", `--apivideo.ratelimit-share (or APIVIDEO_RATELIMIT_SHARE): invalid value "half": invalid syntax`},
		{"--no-such-flag", "unknown long flag '--no-such-flag'"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			_, err := parseFlags([]string{tc.arg})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidate(t *testing.T) {
	clearFlagEnv(t)
	for _, tc := range []struct {
		name string
		edit func(*config)
		want string // empty: valid
	}{
		{"defaults", func(*config) {}, ""},
		{"listen address without port", func(c *config) { *c.web.WebListenAddresses = []string{"localhost"} }, "--web.listen-address=localhost must be host:port or :port, such as :9856: address localhost: missing port in address"},
		{"second listen address without port", func(c *config) { *c.web.WebListenAddresses = []string{":9856", "[::1]"} }, "--web.listen-address=[::1] must be host:port"},
		{"listen addresses", func(c *config) { *c.web.WebListenAddresses = []string{"127.0.0.1:9856", "[::1]:9856", "vsock://:9856"} }, ""},
		{"telemetry path without slash", func(c *config) { c.metricsPath = "metrics" }, `--web.telemetry-path must start with /, got "metrics"`},
		{"empty telemetry path", func(c *config) { c.metricsPath = "" }, "--web.telemetry-path must start with /"},
		{"no request limit", func(c *config) { c.maxRequests = 0 }, ""},
		{"negative request limit", func(c *config) { c.maxRequests = -1 }, "--web.max-requests must not be negative, got -1"},
		{"zero timeout offset", func(c *config) { c.timeoutOffset = 0 }, ""},
		{"negative timeout offset", func(c *config) { c.timeoutOffset = -1 }, "--web.timeout-offset must be a number of seconds between 0 and 300, got -1"},
		{"NaN timeout offset", func(c *config) { c.timeoutOffset = math.NaN() }, "--web.timeout-offset must be a number of seconds between 0 and 300, got NaN"},
		{"largest timeout offset", func(c *config) { c.timeoutOffset = 300 }, ""},
		{"timeout offset too large", func(c *config) { c.timeoutOffset = 300.5 }, "--web.timeout-offset must be a number of seconds between 0 and 300, got 300.5"},
		{"infinite timeout offset", func(c *config) { c.timeoutOffset = math.Inf(1) }, "--web.timeout-offset must be a number of seconds between 0 and 300, got +Inf"},
		{"sandbox URL", func(c *config) { c.apiURL = "https://sandbox.api.video" }, ""},
		{"URL with a path", func(c *config) { c.apiURL = "http://127.0.0.1:8080/apivideo" }, ""},
		{"ftp URL", func(c *config) { c.apiURL = "ftp://example.com" }, "--apivideo.url must be an http or https URL such as https://ws.api.video"},
		{"URL without scheme", func(c *config) { c.apiURL = "ws.api.video" }, "--apivideo.url must be an http or https URL"},
		{"URL with a query", func(c *config) { c.apiURL = "http://host?x=1" }, "--apivideo.url must be an http or https URL such as https://ws.api.video: invalid base URL: \"http://host?x=1\" has a query"},
		{"URL with a fragment", func(c *config) { c.apiURL = "http://host/#x" }, "has a fragment"},
		{"URL with user info", func(c *config) { c.apiURL = "https://key:secret@ws.api.video" }, "user info is not allowed"},
		{"zero timeout", func(c *config) { c.apiTimeout = 0 }, "--apivideo.timeout must be above 0 and at most 5m0s, got 0s"},
		{"negative timeout", func(c *config) { c.apiTimeout = -time.Second }, "--apivideo.timeout must be above 0"},
		{"longest timeout", func(c *config) { c.apiTimeout = 5 * time.Minute }, ""},
		{"too long a timeout", func(c *config) { c.apiTimeout = 10 * time.Minute }, "--apivideo.timeout must be above 0 and at most 5m0s, got 10m0s"},
		{"concurrency 0", func(c *config) { c.concurrency = 0 }, "--apivideo.concurrency must be between 1 and 32, got 0"},
		{"concurrency 1", func(c *config) { c.concurrency = 1 }, ""},
		{"concurrency 32", func(c *config) { c.concurrency = 32 }, ""},
		{"concurrency 33", func(c *config) { c.concurrency = 33 }, "--apivideo.concurrency must be between 1 and 32, got 33"},
		{"negative cache TTL", func(c *config) { c.cacheTTL = -time.Second }, "--apivideo.cache-ttl must not be negative, got -1s"},
		{"cache TTL", func(c *config) { c.cacheTTL = time.Minute }, ""},
		{"resync every minute", func(c *config) { c.resyncInterval = time.Minute }, ""},
		{"resync every day", func(c *config) { c.resyncInterval = 24 * time.Hour }, ""},
		{"resync too often", func(c *config) { c.resyncInterval = 59 * time.Second }, "--apivideo.resync-interval must be between 1m0s and 24h0m0s, got 59s"},
		{"resync too seldom", func(c *config) { c.resyncInterval = 25 * time.Hour }, "--apivideo.resync-interval must be between 1m0s and 24h0m0s, got 25h0m0s"},
		{"the whole rate limit", func(c *config) { c.rateLimitShare = 1 }, ""},
		{"no rate limit share", func(c *config) { c.rateLimitShare = 0 }, "--apivideo.ratelimit-share must be above 0 and at most 1, got 0"},
		{"more than the rate limit", func(c *config) { c.rateLimitShare = 1.5 }, "--apivideo.ratelimit-share must be above 0 and at most 1, got 1.5"},
		{"no token series", func(c *config) { c.maxSeries = 0 }, ""},
		{"most token series", func(c *config) { c.maxSeries = 100000 }, ""},
		{"negative token series", func(c *config) { c.maxSeries = -1 }, "--collector.max-token-series must be between 0 and 100000, got -1"},
		{"too many token series", func(c *config) { c.maxSeries = 100001 }, "--collector.max-token-series must be between 0 and 100000, got 100001"},
		{"one probe at once", func(c *config) { c.maxProbes = 1 }, ""},
		{"most probes at once", func(c *config) { c.maxProbes = 1024 }, ""},
		{"no probe at once", func(c *config) { c.maxProbes = 0 }, "--probe.max-concurrent must be between 1 and 1024, got 0"},
		{"too many probes at once", func(c *config) { c.maxProbes = 1025 }, "--probe.max-concurrent must be between 1 and 1024, got 1025"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(nil)
			require.NoError(t, err)
			tc.edit(cfg)
			err = cfg.validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Len(t, unjoin(err), 1, "one error for one bad value")
			assert.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestValidateReportsEveryBadValue(t *testing.T) {
	clearFlagEnv(t)
	cfg, err := parseFlags([]string{"--apivideo.concurrency=0", "--apivideo.cache-ttl=-1s", "--collector.max-token-series=-1"})
	require.NoError(t, err)
	errs := unjoin(cfg.validate())
	require.Len(t, errs, 3)
	for i, flag := range []string{"--apivideo.concurrency", "--apivideo.cache-ttl", "--collector.max-token-series"} {
		assert.True(t, strings.HasPrefix(errs[i].Error(), flag), "%v", errs[i])
	}
	assert.Equal(t, []error{errors.New("x")}, unjoin(errors.New("x")))
}

func TestCheckWebConfig(t *testing.T) {
	assert.NoError(t, checkWebConfig(""), "no file: plain HTTP")

	missing := filepath.Join(t.TempDir(), "missing.yml")
	assert.ErrorContains(t, checkWebConfig(missing), "--web.config.file="+missing+": open "+missing)

	broken := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(broken, []byte("tls_server_config: [\n"), 0o600))
	assert.ErrorContains(t, checkWebConfig(broken), "--web.config.file="+broken)

	unknown := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(unknown, []byte("basic_auth_user:\n  a: b\n"), 0o600))
	assert.ErrorContains(t, checkWebConfig(unknown), "--web.config.file="+unknown)

	good := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(good, []byte("http_server_config:\n  http2: false\n"), 0o600))
	assert.NoError(t, checkWebConfig(good))
}

func TestHelpStatesAllowedValues(t *testing.T) {
	app := newApp(&config{})
	for flag, want := range map[string]string{
		"log.level":                  "One of: [debug, info, warn, error]",
		"log.format":                 "One of: [logfmt, json]",
		"collector.token-label":      "One of: [redacted, full, none]",
		"apivideo.timeout":           "above 0 and at most 5m0s",
		"apivideo.concurrency":       "(1-32)",
		"collector.max-token-series": "(0-100000)",
		"web.timeout-offset":         "(0-300)",
		"web.max-requests":           "0 or more (0: no limit)",
		"apivideo.listing":           "One of: [auto, full, incremental]",
		"apivideo.resync-interval":   "between 1m0s and 24h0m0s",
		"apivideo.ratelimit-share":   "above 0 and at most 1",
		"probe.max-concurrent":       "(1-1024)",
	} {
		f := app.GetFlag(flag)
		require.NotNil(t, f, flag)
		assert.Contains(t, f.Model().Help, want, flag)
	}
}
