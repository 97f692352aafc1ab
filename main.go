// Command apivideo_exporter is a Prometheus exporter for the delegated
// upload tokens of an api.video account.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/accounts"
	demoaccount "github.com/apivideo-exporter/apivideo_exporter/internal/demo"
)

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT sets one: a million kept tokens take 40 MiB.
const defaultMemoryLimit = 52 << 20

const (
	exporterName = "apivideo_exporter"
	defaultPort  = ":9856"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", exporterName, err)
		return 2
	}
	logger, toolkitLogger := newLoggers(os.Stderr, cfg.logFormat, cfg.logLevel)
	if os.Getenv("GOMEMLIMIT") == "" {
		// The kept tokens of a large account are most of the heap: a soft
		// limit keeps the garbage of reading pages from doubling it.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if err := cfg.validate(); err != nil {
		for _, e := range unjoin(err) {
			level.Error(logger).Log("msg", e)
		}
		return 2
	}
	if err := checkWebConfig(*cfg.web.WebConfigFile); err != nil {
		level.Error(logger).Log("msg", err)
		return 1
	}
	reg := newRegistry()
	src, err := buildSources(cfg, reg, logger)
	if err != nil {
		level.Error(logger).Log("msg", err)
		return 1
	}
	defer src.close()
	mux, err := routes(cfg, src, reg, logger)
	if err != nil {
		level.Error(logger).Log("msg", err)
		return 1
	}
	return serve(cfg, mux, src.accounts, logger, toolkitLogger)
}

// sources are what the exporter reads api.video for: the account of its
// own (single), the accounts of --config.file (accounts), or both; close
// ends their listings and connections, and the demo account.
type sources struct {
	single   *collector.Collector
	accounts *accounts.Set
	closers  []func()
}

// close ends what buildSources started, the latest first.
func (s *sources) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// mode decides what the exporter serves from whether a key was found
// (keyErr nil), --demo, --config.file and --apivideo.api-key-file: whether
// /metrics serves an account of its own, or the error to stop with.
func mode(keyErr error, demo bool, configFile, keyFile string) (single bool, err error) {
	if keyErr == nil || demo {
		return true, nil
	}
	// With an accounts file, /metrics serves an account of its own only
	// when a key is given; a key file that fails is an error.
	if configFile != "" && keyFile == "" {
		return false, nil
	}
	if keyFile == "" && errors.Is(keyErr, apiclient.ErrNoAPIKey) {
		return false, errors.New("no api.video API key: set the APIVIDEO_API_KEY environment variable or pass --apivideo.api-key-file (or run with --demo)")
	}
	return false, keyErr
}

// buildSources builds the exporter's accounts: its own, wired as any
// account of an accounts file is, and the accounts file's, loaded once.
func buildSources(cfg *config, reg *prometheus.Registry, logger log.Logger) (*sources, error) {
	keyCtx, cancelKey := context.WithTimeout(context.Background(), apiclient.KeyCheckTimeout)
	key, keyErr := apiclient.LoadKey(keyCtx, cfg.keyFile, "APIVIDEO_API_KEY")
	cancelKey()
	single, err := mode(keyErr, cfg.demo, cfg.configFile, cfg.keyFile)
	if err != nil {
		return nil, err
	}
	level.Info(logger).Log("msg", "starting "+exporterName, "version", version.Info())
	level.Info(logger).Log("build_context", version.BuildContext())
	if cfg.resyncSet {
		level.Warn(logger).Log("msg", "--apivideo.resync-interval is deprecated and ignored: the incremental listing checks a page of its kept tokens on every scrape instead")
	}
	if cfg.deprecatedNames {
		level.Warn(logger).Log("msg", "--collector.deprecated-metric-names publishes apivideo_upload_tokens_expires_in_seconds and apivideo_sync_progress beside apivideo_upload_tokens_expiry_seconds and apivideo_sync_progress_ratio; the flag and the old names go in 0.3.0")
	}
	if cfg.tokenLabel == collector.LabelFull {
		level.Warn(logger).Log("msg", "--collector.token-label=full publishes whole upload tokens: anyone who can read the metrics can upload into the account")
	}
	src := &sources{}
	wiring := accounts.Wiring{
		UserAgent:       exporterName + "/" + version.Version,
		TokenLabel:      cfg.tokenLabel,
		MaxTokenSeries:  cfg.maxSeries,
		DeprecatedNames: cfg.deprecatedNames,
		RateLimitShare:  cfg.rateLimitShare,
	}
	if single {
		apiURL := cfg.apiURL
		if cfg.demo {
			account, err := demoaccount.Start()
			if err != nil {
				return nil, fmt.Errorf("starting the demo account: %w", err)
			}
			src.closers = append(src.closers, func() { account.Close() })
			apiURL, key = account.URL, apiclient.StaticKey(demoaccount.APIKey)
			level.Info(logger).Log("msg", "demo mode: serving a simulated api.video account", "url", account.URL)
		} else if strings.HasPrefix(strings.ToLower(apiURL), "http:") {
			level.Warn(logger).Log("msg", "--apivideo.url is plain http: the API key and the tokens cross the network unencrypted", "url", apiURL)
		}
		own := wiring
		own.Registerer, own.Logger = reg, logger
		wired, err := accounts.Wire(accounts.Settings{
			URL: apiURL, Concurrency: cfg.concurrency, Timeout: cfg.apiTimeout, CacheTTL: cfg.cacheTTL, Listing: cfg.listing,
		}, key, own)
		if err != nil {
			src.close()
			return nil, fmt.Errorf("invalid api.video settings: %w", err)
		}
		src.single = wired.Tokens
		src.closers = append(src.closers, wired.Client.Close, wired.Tokens.Close)
	}
	if cfg.configFile != "" {
		src.accounts = accounts.New(cfg.configFile, accounts.Options{
			Defaults: accounts.Defaults{
				Concurrency: cfg.concurrency, CacheTTL: cfg.cacheTTL, Timeout: cfg.apiTimeout, Listing: cfg.listing,
			},
			Wiring:              wiring,
			MaxConcurrentProbes: cfg.maxProbes,
			Registerer:          reg,
			Logger:              logger,
		})
		// Reload logs why it failed.
		if err := src.accounts.Reload(context.Background()); err != nil {
			src.close()
			return nil, errors.New("the accounts file could not be loaded")
		}
		src.closers = append(src.closers, src.accounts.Close)
	}
	return src, nil
}

// routes mounts /metrics, /probe and /-/reload (with an accounts file),
// the health endpoints and the landing page.
func routes(cfg *config, src *sources, reg *prometheus.Registry, logger log.Logger) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	if src.accounts != nil {
		probeTimeout := func(r *http.Request, limit time.Duration) time.Duration {
			return scrapeTimeout(r.Header, cfg.timeoutOffset, limit)
		}
		mux.Handle("/probe", limitRequests(src.accounts.ProbeHandler(probeTimeout, promhttpLogger{logger}), cfg.maxRequests))
		mux.Handle("/-/reload", src.accounts.ReloadHandler())
	}
	mux.Handle(cfg.metricsPath, metricsHandler(reg, src.single, cfg.timeoutOffset, cfg.apiTimeout, cfg.maxRequests, logger))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	// Readiness never depends on api.video: a failing sidecar probe would
	// take the whole pod out of its Service.
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Ready") })
	if cfg.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "api.video exporter",
			Description: "Prometheus exporter for the delegated upload tokens of an api.video account",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: cfg.metricsPath, Text: "Metrics"},
				{Address: "/-/healthy", Text: "Health"},
				{Address: "/-/ready", Text: "Readiness"},
			},
			// No /debug/pprof handlers are mounted.
			Profiling: "false",
		})
		if err != nil {
			return nil, fmt.Errorf("building the landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}

// serve serves mux until SIGTERM or SIGINT, reloading the accounts file,
// when there is one, on SIGHUP.
func serve(cfg *config, mux *http.ServeMux, set *accounts.Set, logger log.Logger, toolkitLogger *slog.Logger) int {
	// Signals are caught before the server answers anything, so that a
	// SIGTERM right after the first answer still shuts down cleanly.
	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	// SIGHUP is always caught: its default action would end the exporter.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	srv := newServer(mux, idleTimeout, logger)
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- web.ListenAndServe(srv, cfg.web, toolkitLogger)
	}()
	for {
		select {
		case <-hup:
			if set == nil {
				level.Info(logger).Log("msg", "SIGHUP received: nothing to reload without --config.file")
				continue
			}
			// Off the signal loop, so that a key file on a hung mount never
			// delays a SIGTERM; Reload logs its outcome, and one that
			// finds another running says so.
			go func() {
				if err := set.Reload(context.Background()); errors.Is(err, accounts.ErrReloadInProgress) {
					level.Warn(logger).Log("msg", "SIGHUP received during a reload: ignored", "err", err)
				}
			}()
		case err := <-serveErr:
			if !errors.Is(err, http.ErrServerClosed) {
				level.Error(logger).Log("msg", "serving HTTP", "err", err)
				return 1
			}
			return 0
		case sig := <-term:
			level.Info(logger).Log("msg", "shutting down", "signal", sig)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				level.Error(logger).Log("msg", "shutting down", "err", err)
				return 1
			}
			return 0
		}
	}
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
