package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// Limits of the flags' values, stated in --help and checked by validate;
// those an account of the accounts file shares are apiclient's.
const (
	maxTokenSeries = 100000
	maxProbes      = 1024
	// maxTimeoutOffset is far above any sensible offset: Prometheus'
	// scrape timeouts are seconds.
	maxTimeoutOffset = 300
)

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"logfmt", "json"}
)

// config is the exporter's settings: one field per flag. A new flag is a
// field here, its declaration in newApp, its checks in validate and its rows
// in TestParseFlags and TestValidate.
type config struct {
	web           *web.FlagConfig
	metricsPath   string
	maxRequests   int
	timeoutOffset float64

	apiURL      string
	keyFile     string
	apiTimeout  time.Duration
	concurrency int
	cacheTTL    time.Duration
	// listing is one of listing.ModeNames; rateLimitShare applies to auto
	// and incremental. resyncInterval is accepted for old command lines.
	listing        string
	resyncInterval time.Duration
	resyncSet      bool
	rateLimitShare float64

	tokenLabel      collector.LabelMode
	maxSeries       int
	deprecatedNames bool

	logLevel  string
	logFormat string
	demo      bool

	configFile string
	maxProbes  int
}

// Bounds of --apivideo.resync-interval.
const (
	minResync = time.Minute
	maxResync = 24 * time.Hour
)

// newApp declares the flags, each bound to a field of cfg. Parse errors
// name the flag they belong to.
func newApp(cfg *config) *kingpin.Application {
	app := kingpin.New(exporterName, "Prometheus exporter for the delegated upload tokens of an api.video account.")
	cfg.web = kingpinflag.AddFlags(app, defaultPort)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").
		Default("/metrics").StringVar(&cfg.metricsPath)
	app.Flag("web.max-requests", "Most scrapes served at once by /metrics, and by /probe, 0 or more (0: no limit); more get 503 at once.").
		Default("40").SetValue(intValue{&cfg.maxRequests})
	app.Flag("web.timeout-offset", fmt.Sprintf("Seconds to subtract from Prometheus' scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) to leave time to answer (0-%d).", maxTimeoutOffset)).
		Default("0.5").Float64Var(&cfg.timeoutOffset)

	app.Flag("apivideo.url", "api.video API base URL: scheme, host and optional path (https://sandbox.api.video for the sandbox).").
		Envar("APIVIDEO_URL").Default(apiclient.DefaultURL).StringVar(&cfg.apiURL)
	app.Flag("apivideo.api-key-file", "File holding the api.video API key, read again at each login so a rotated key is picked up. Otherwise the key comes from the APIVIDEO_API_KEY environment variable.").
		Envar("APIVIDEO_API_KEY_FILE").PlaceHolder("PATH").StringVar(&cfg.keyFile)
	app.Flag("apivideo.timeout", fmt.Sprintf("Longest time a scrape may spend on api.video, a duration with a unit, above 0 and at most %s (such as 10s or 1m); a shorter Prometheus scrape timeout takes precedence.", apiclient.MaxTimeout)).
		Envar("APIVIDEO_TIMEOUT").Default("10s").DurationVar(&cfg.apiTimeout)
	app.Flag("apivideo.concurrency", fmt.Sprintf("Pages of upload tokens fetched at once (1-%d).", apiclient.MaxConcurrency)).
		Envar("APIVIDEO_CONCURRENCY").Default(strconv.Itoa(apiclient.DefaultConcurrency)).SetValue(intValue{&cfg.concurrency})
	app.Flag("apivideo.cache-ttl", "Reuse the last successful listing for scrapes within this time (0: fetch on every scrape). Seconds until expiry are still computed at scrape time.").
		Envar("APIVIDEO_CACHE_TTL").Default("0s").DurationVar(&cfg.cacheTTL)
	listingModes := listing.ModeNames()
	app.Flag("apivideo.listing", "How scrapes list the tokens: auto (full while a full listing fits the scrape's time and share of the rate limit, else incremental), full (every page on each scrape) or incremental (keep the tokens between scrapes and read only what changed). One of: ["+strings.Join(listingModes, ", ")+"]").
		Envar("APIVIDEO_LISTING").Default(listingModes[0]).EnumVar(&cfg.listing, listingModes...)
	app.Flag("apivideo.resync-interval", fmt.Sprintf("Deprecated and ignored: the incremental listing checks a page of its kept tokens against api.video on every scrape instead of reading the whole list again periodically. Still accepted, between %s and %s.", minResync, maxResync)).
		Envar("APIVIDEO_RESYNC_INTERVAL").Default("10m").IsSetByUser(&cfg.resyncSet).DurationVar(&cfg.resyncInterval)
	app.Flag("apivideo.ratelimit-share", "In auto and incremental listing, the most of api.video's rate limit the scrapes may spend, above 0 and at most 1.").
		Envar("APIVIDEO_RATELIMIT_SHARE").Default("0.5").Float64Var(&cfg.rateLimitShare)

	app.Flag("collector.token-label", "What the token label of per-token series holds: redacted (a prefix), full (the whole token, a credential) or none (no per-token series). One of: ["+strings.Join(collector.LabelModeNames(), ", ")+"]").
		Default(collector.LabelRedacted.String()).SetValue(textValue{&cfg.tokenLabel})
	app.Flag("collector.max-token-series", fmt.Sprintf("Most per-token series to publish, of both kinds together: first the tokens that never expire, oldest first, then the tokens closest to expiry (0-%d). Counts and histograms always cover every token.", maxTokenSeries)).
		Default(strconv.Itoa(collector.DefaultMaxTokenSeries)).SetValue(intValue{&cfg.maxSeries})

	app.Flag("collector.deprecated-metric-names", "Also publish the series renamed in 0.2.0 under their old names (apivideo_upload_tokens_expires_in_seconds, apivideo_sync_progress), for dashboards and alerts not yet moved to the new ones. Removed in 0.3.0.").
		BoolVar(&cfg.deprecatedNames)

	app.Flag("log.level", "Only log messages with the given severity or above. One of: ["+strings.Join(logLevels, ", ")+"]").
		Default("info").EnumVar(&cfg.logLevel, logLevels...)
	app.Flag("log.format", "Output format of log messages. One of: ["+strings.Join(logFormats, ", ")+"]").
		Default(logFormats[0]).EnumVar(&cfg.logFormat, logFormats...)
	app.Flag("demo", "Serve a simulated api.video account, no API key needed.").BoolVar(&cfg.demo)

	app.Flag("config.file", "YAML file of api.video accounts, each served on /probe?account=NAME; reloaded on SIGHUP and POST /-/reload.").
		Envar("APIVIDEO_CONFIG_FILE").PlaceHolder("PATH").StringVar(&cfg.configFile)
	app.Flag("probe.max-concurrent", fmt.Sprintf("Accounts of --config.file read from api.video at once (1-%d); further probes wait for a slot within their scrape timeout.", maxProbes)).
		Default("16").SetValue(intValue{&cfg.maxProbes})

	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	nameParseErrors(app)
	return app
}

// parseFlags parses the command line (and the flags' environment
// variables) into a config, without validating it.
func parseFlags(args []string) (*config, error) {
	cfg := &config{}
	if _, err := newApp(cfg).Parse(args); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate checks the values that parse but that the exporter cannot use.
// It reads no file and no environment; every message names its flag.
func (c *config) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	if c.web != nil && c.web.WebListenAddresses != nil {
		for _, addr := range *c.web.WebListenAddresses {
			if strings.HasPrefix(addr, "vsock://") {
				continue
			}
			if _, _, err := net.SplitHostPort(addr); err != nil {
				errs = append(errs, fmt.Errorf("--web.listen-address=%s must be host:port or :port, such as %s: %w", addr, defaultPort, err))
			}
		}
	}
	check(c.metricsPath != "" && strings.HasPrefix(c.metricsPath, "/"),
		"--web.telemetry-path must start with /, got %q", c.metricsPath)
	check(c.maxRequests >= 0, "--web.max-requests must not be negative, got %d", c.maxRequests)
	check(c.timeoutOffset >= 0 && c.timeoutOffset <= maxTimeoutOffset,
		"--web.timeout-offset must be a number of seconds between 0 and %d, got %v", maxTimeoutOffset, c.timeoutOffset)
	if _, err := apiclient.ParseBaseURL(c.apiURL); err != nil {
		errs = append(errs, fmt.Errorf("--apivideo.url must be an http or https URL such as %s: %w", apiclient.DefaultURL, err))
	}
	check(c.apiTimeout > 0 && c.apiTimeout <= apiclient.MaxTimeout,
		"--apivideo.timeout must be above 0 and at most %s, got %s", apiclient.MaxTimeout, c.apiTimeout)
	check(c.concurrency >= 1 && c.concurrency <= apiclient.MaxConcurrency,
		"--apivideo.concurrency must be between 1 and %d, got %d", apiclient.MaxConcurrency, c.concurrency)
	check(c.cacheTTL >= 0, "--apivideo.cache-ttl must not be negative, got %s", c.cacheTTL)
	check(c.resyncInterval >= minResync && c.resyncInterval <= maxResync,
		"--apivideo.resync-interval must be between %s and %s, got %s", minResync, maxResync, c.resyncInterval)
	check(c.rateLimitShare > 0 && c.rateLimitShare <= 1,
		"--apivideo.ratelimit-share must be above 0 and at most 1, got %v", c.rateLimitShare)
	check(c.maxSeries >= 0 && c.maxSeries <= maxTokenSeries,
		"--collector.max-token-series must be between 0 and %d, got %d", maxTokenSeries, c.maxSeries)
	check(c.maxProbes >= 1 && c.maxProbes <= maxProbes,
		"--probe.max-concurrent must be between 1 and %d, got %d", maxProbes, c.maxProbes)
	return errors.Join(errs...)
}

// unjoin returns the errors joined in err, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// checkWebConfig loads --web.config.file as the server will, so that a
// missing or broken file stops the exporter before it listens.
func checkWebConfig(path string) error {
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("--web.config.file=%s: %w", path, err)
	}
	return nil
}

// nameParseErrors makes every flag's parse errors say which flag they
// are about: kingpin reports only the value's own error, such as
// "time: missing unit in duration".
func nameParseErrors(app *kingpin.Application) {
	for _, f := range app.Model().Flags {
		switch v := f.Value.(type) {
		case interface{ IsBoolFlag() bool }:
			if v.IsBoolFlag() {
				continue // takes no value
			}
		case interface{ IsCumulative() bool }:
			if v.IsCumulative() {
				continue // kingpin asks the value itself whether it repeats
			}
		}
		app.GetFlag(f.Name).SetValue(namedValue{flag: f.Name, envar: f.Envar, Value: f.Value})
	}
}

// namedValue prefixes a flag value's parse errors with the flag.
type namedValue struct {
	flag, envar string
	kingpin.Value
}

func (v namedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err == nil {
		return nil
	}
	// strconv's errors repeat the function name and the input.
	var numErr *strconv.NumError
	if errors.As(err, &numErr) {
		err = numErr.Err
	}
	name := "--" + v.flag
	if v.envar != "" {
		name += " (or " + v.envar + ")"
	}
	return fmt.Errorf("%s: invalid value %q: %w", name, s, err)
}

// textValue is a flag backed by a type that parses and prints itself.
type textValue struct {
	v interface {
		UnmarshalText([]byte) error
		String() string
	}
}

func (t textValue) Set(s string) error { return t.v.UnmarshalText([]byte(s)) }
func (t textValue) String() string     { return t.v.String() }

// intValue is a whole-number flag. kingpin's Int parses a float and
// truncates it, so that 1.5 would pass as 1 and 1e30 would overflow.
type intValue struct{ v *int }

func (i intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	*i.v = n
	return nil
}

func (i intValue) String() string { return strconv.Itoa(*i.v) }
