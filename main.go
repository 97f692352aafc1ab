// Command apivideo_exporter is a Prometheus exporter for the delegated
// upload tokens of an api.video account.
package main

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	slgokit "github.com/tjhop/slog-gokit"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
)

const (
	exporterName = "apivideo_exporter"
	defaultPort  = ":9856"
	// idleTimeout closes keep-alive connections left idle this long, so
	// that clients holding connections open cannot exhaust file descriptors.
	idleTimeout = 60 * time.Second
	// maxRequestHeaderBytes bounds a request's headers; a scrape's are
	// under 1 KiB.
	maxRequestHeaderBytes = 64 << 10
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	app := kingpin.New(exporterName, "Prometheus exporter for the delegated upload tokens of an api.video account.")
	var (
		webConfig     = kingpinflag.AddFlags(app, defaultPort)
		metricsPath   = app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		maxRequests   = app.Flag("web.max-requests", "Most scrapes served at once; more get 503 at once (0: no limit).").Default("40").Int()
		timeoutOffset = app.Flag("web.timeout-offset", "Seconds to subtract from Prometheus' scrape timeout (X-Prometheus-Scrape-Timeout-Seconds) to leave time to answer.").Default("0.5").Float64()
		apiURL        = app.Flag("apivideo.url", "api.video API base URL (https://sandbox.api.video for the sandbox).").Envar("APIVIDEO_URL").Default(apiclient.DefaultURL).String()
		keyFile       = app.Flag("apivideo.api-key-file", "File holding the api.video API key, read again at each login so a rotated key is picked up. Otherwise the key comes from the APIVIDEO_API_KEY environment variable.").Envar("APIVIDEO_API_KEY_FILE").PlaceHolder("PATH").String()
		apiTimeout    = app.Flag("apivideo.timeout", "Longest time a scrape may spend on api.video; a shorter Prometheus scrape timeout takes precedence.").Envar("APIVIDEO_TIMEOUT").Default("10s").Duration()
		concurrency   = app.Flag("apivideo.concurrency", "Pages of upload tokens fetched at once (1-32).").Envar("APIVIDEO_CONCURRENCY").Default(strconv.Itoa(apiclient.DefaultConcurrency)).Int()
		cacheTTL      = app.Flag("apivideo.cache-ttl", "Reuse the last successful listing for scrapes within this time (0: fetch on every scrape). Seconds until expiry are still computed at scrape time.").Envar("APIVIDEO_CACHE_TTL").Default("0s").Duration()
		tokenLabel    = app.Flag("collector.token-label", "What the token label of per-token series holds: redacted (a prefix), full (the whole token, a credential) or none (no per-token series).").Default("redacted").Enum("redacted", "full", "none")
		maxSeries     = app.Flag("collector.max-token-series", "Most per-token series to publish, keeping the tokens closest to expiry (0-100000). Counts always cover every token.").Default(strconv.Itoa(collector.DefaultMaxTokenSeries)).Int()
		logLevel      = app.Flag("log.level", "Only log messages with the given severity or above.").Default("info").Enum("debug", "info", "warn", "error")
		logFormat     = app.Flag("log.format", "Output format of log messages.").Default("logfmt").Enum("logfmt", "json")
		demo          = app.Flag("demo", "Serve a simulated account from a built-in fake of api.video, no API key needed.").Bool()
	)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", exporterName, err)
		return 2
	}
	base := newBaseLogger(*logFormat, *logLevel)
	logger := log.With(base, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)

	switch {
	case *timeoutOffset < 0:
		return usage(logger, "--web.timeout-offset must not be negative")
	case *maxRequests < 0:
		return usage(logger, "--web.max-requests must not be negative")
	case *apiTimeout <= 0 || *apiTimeout > 5*time.Minute:
		return usage(logger, "--apivideo.timeout must be between 0 and 5m")
	case *concurrency < 1 || *concurrency > 32:
		return usage(logger, "--apivideo.concurrency must be between 1 and 32")
	case *cacheTTL < 0:
		return usage(logger, "--apivideo.cache-ttl must not be negative")
	case *maxSeries < 0 || *maxSeries > 100000:
		return usage(logger, "--collector.max-token-series must be between 0 and 100000")
	}
	apiBase, err := apiclient.ParseBaseURL(*apiURL)
	if err != nil {
		return usage(logger, "--apivideo.url must be an http or https URL, such as "+apiclient.DefaultURL)
	}

	key, keyErr := keySource(*keyFile)
	if keyErr != nil && !*demo {
		level.Error(logger).Log("msg", keyErr)
		return 1
	}
	level.Info(logger).Log("msg", "starting "+exporterName, "version", version.Info())
	level.Info(logger).Log("build_context", version.BuildContext())
	if *demo {
		fake := fakeapi.NewDemo()
		defer fake.Close()
		*apiURL, key = fake.URL, apiclient.StaticKey(fake.APIKey())
		level.Info(logger).Log("msg", "demo mode: serving a simulated api.video account", "url", fake.URL)
	} else if apiBase.Scheme == "http" {
		level.Warn(logger).Log("msg", "--apivideo.url is plain http: the API key and the tokens cross the network unencrypted", "url", *apiURL)
	}

	userAgent := exporterName
	if version.Version != "" {
		userAgent += "/" + version.Version
	}
	reg := newRegistry()
	client, err := apiclient.New(apiclient.Config{
		BaseURL:     *apiURL,
		Key:         key,
		UserAgent:   userAgent,
		Concurrency: *concurrency,
		Registerer:  reg,
		Logger:      log.With(logger, "component", "apiclient"),
	})
	if err != nil {
		level.Error(logger).Log("msg", "invalid api.video settings", "err", err)
		return 1
	}
	mode, _ := collector.ParseLabelMode(*tokenLabel)
	if mode == collector.LabelFull {
		level.Warn(logger).Log("msg", "--collector.token-label=full publishes whole upload tokens: anyone who can read the metrics can upload into the account")
	}
	tokens := collector.New(client, collector.Options{
		TokenLabel:     mode,
		MaxTokenSeries: *maxSeries,
		Timeout:        *apiTimeout,
		CacheTTL:       *cacheTTL,
		Logger:         log.With(logger, "component", "collector"),
	})

	mux := http.NewServeMux()
	mux.Handle(*metricsPath, metricsHandler(reg, tokens, *timeoutOffset, *apiTimeout, *maxRequests, logger))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	// Readiness never depends on api.video: a failing sidecar probe would
	// take the whole pod out of its Service.
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Ready") })
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "api.video exporter",
			Description: "Prometheus exporter for the delegated upload tokens of an api.video account",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: *metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
		})
		if err != nil {
			level.Error(logger).Log("msg", "building the landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}

	srv := newServer(mux, idleTimeout, base)
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- web.ListenAndServe(srv, webConfig, slog.New(slgokit.NewGoKitHandler(base, nil)))
	}()

	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			level.Error(logger).Log("msg", "serving HTTP", "err", err)
			return 1
		}
	case sig := <-term:
		level.Info(logger).Log("msg", "shutting down", "signal", sig)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			level.Error(logger).Log("msg", "shutting down", "err", err)
			return 1
		}
	}
	return 0
}

// newRegistry holds the exporter's own metrics: build info, Go runtime and
// process.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// keySource chooses where the API key comes from: the file, read again at
// every login, else the environment. It checks the key is there now, so
// that a missing key fails at start rather than at the first scrape.
func keySource(file string) (apiclient.KeySource, error) {
	if file != "" {
		src := apiclient.FileKey(file)
		key, err := src(context.Background())
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, fmt.Errorf("API key file %s is empty", file)
		}
		return src, nil
	}
	if key := apiclient.CleanKey(os.Getenv("APIVIDEO_API_KEY")); key != "" {
		return apiclient.StaticKey(key), nil
	}
	return nil, errors.New("no api.video API key: set the APIVIDEO_API_KEY environment variable or pass --apivideo.api-key-file (or run with --demo)")
}

// newServer bounds what a client can hold: header size, time to send the
// headers, idle keep-alive connections. Its own errors (TLS handshakes
// that fail, for one) go to logger.
func newServer(h http.Handler, idle time.Duration, logger log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       idle,
		MaxHeaderBytes:    maxRequestHeaderBytes,
		ErrorLog:          stdlog.New(serverErrorWriter{logger}, "", 0),
	}
}

// serverErrorWriter takes net/http's error lines into the exporter's log.
// A failed TLS handshake, which any port scan or TCP health check causes
// once a connection, is logged at debug level; the rest as errors.
type serverErrorWriter struct{ logger log.Logger }

func (w serverErrorWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	lvl := level.Error
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		lvl = level.Debug
	}
	lvl(log.With(w.logger, "ts", log.DefaultTimestampUTC, "component", "http")).Log("msg", msg)
	return len(p), nil
}

// metricsHandler serves the exporter's own metrics together with a token
// scrape bounded by the scrape timeout Prometheus announces, less offset,
// and never longer than limit. At most maxRequests are served at once (no
// limit when 0); more get 503 as promhttp's MaxRequestsInFlight gives it.
// The limit is kept here, not in promhttp, because a promhttp handler is
// built for each request to carry its deadline, and its limit would not be
// shared.
func metricsHandler(reg *prometheus.Registry, tokens *collector.Collector, offset float64, limit time.Duration, maxRequests int, logger log.Logger) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorLog:          promhttpLogger{logger},
		EnableOpenMetrics: true,
		Registry:          reg,
	}
	var inFlight chan struct{}
	if maxRequests > 0 {
		inFlight = make(chan struct{}, maxRequests)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", maxRequests), http.StatusServiceUnavailable)
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout(r.Header, offset, limit))
		defer cancel()
		scrape := prometheus.NewRegistry()
		scrape.MustRegister(tokens.WithContext(ctx))
		// The scrape is gathered first so that the request counters include it.
		promhttp.HandlerFor(prometheus.Gatherers{scrape, reg}, opts).ServeHTTP(w, r)
	})
	return promhttp.InstrumentMetricHandler(reg, h)
}

// scrapeTimeout is Prometheus' announced scrape timeout less offset, capped
// by limit; limit alone when the header is absent or unusable.
func scrapeTimeout(h http.Header, offset float64, limit time.Duration) time.Duration {
	v := h.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if v == "" {
		return limit
	}
	seconds, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(seconds) || seconds <= 0 {
		return limit
	}
	// Compared in seconds first: a huge or infinite header would overflow
	// a Duration.
	if seconds-offset >= limit.Seconds() {
		return limit
	}
	if seconds <= offset {
		// No time would be left: take half the announced time rather than none.
		return time.Duration(seconds * float64(time.Second) / 2)
	}
	return time.Duration((seconds - offset) * float64(time.Second))
}

// newBaseLogger logs to stderr at lvl and above. The toolkit's slog records
// go to it directly, since the bridge adds their own time and caller.
func newBaseLogger(format, lvl string) log.Logger {
	w := log.NewSyncWriter(os.Stderr)
	var logger log.Logger
	if format == "json" {
		logger = log.NewJSONLogger(w)
	} else {
		logger = log.NewLogfmtLogger(w)
	}
	return level.NewFilter(logger, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
}

func usage(logger log.Logger, msg string) int {
	level.Error(logger).Log("msg", msg)
	return 2
}

// promhttpLogger adapts go-kit's logger to promhttp's Println logger.
type promhttpLogger struct{ logger log.Logger }

func (l promhttpLogger) Println(v ...any) {
	level.Error(l.logger).Log("msg", fmt.Sprint(v...))
}
