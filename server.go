package main

import (
	"fmt"
	stdlog "log"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/scrape"
)

const (
	// idleTimeout closes keep-alive connections left idle this long, so
	// that clients holding connections open cannot exhaust file
	// descriptors: an HTTP/2 connection whose streams were ended at their
	// write deadline (at most 30 s by default) is gone a minute after it
	// stalled.
	idleTimeout = 30 * time.Second
	// maxRequestHeaderBytes bounds a request's headers; a scrape's are
	// under 1 KiB.
	maxRequestHeaderBytes = 64 << 10
	// readTimeout bounds reading a whole request, body included: no
	// handler takes a body, so a client that dribbles one is cut off.
	readTimeout = 15 * time.Second
	// writeTimeout bounds writing a response, for the handlers that set no
	// deadline of their own; a scrape sets its own (see scrape.Handler).
	writeTimeout = 30 * time.Second
	// maxStreams bounds the HTTP/2 streams of one connection, so that one
	// connection cannot take every --web.max-requests slot; Prometheus
	// uses one at a time.
	maxStreams = 8
)

// newServer bounds what a client can hold: header size, time to send the
// request and to take the response, HTTP/2 streams, idle keep-alive
// connections. Its own errors (TLS handshakes
// that fail, for one) go to logger.
func newServer(h http.Handler, idle time.Duration, logger log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxStreams},
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
	lvl(log.With(w.logger, "component", "http")).Log("msg", msg)
	return len(p), nil
}

// metricsHandler serves the exporter's own metrics together with a token
// scrape, when tokens is set, bounded by the scrape timeout
// Prometheus announces, less offset, and never longer than limit. At most
// maxRequests are served at once (see limitRequests).
func metricsHandler(reg *prometheus.Registry, tokens *collector.Collector, offset float64, limit time.Duration, maxRequests int, logger log.Logger) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorLog:          promhttpLogger{logger},
		EnableOpenMetrics: true,
		Registry:          reg,
	}
	target := scrape.Target{Tokens: tokens, Limit: limit, Gatherers: prometheus.Gatherers{reg}}
	h := scrape.Handler(func(*http.Request) (scrape.Target, error) { return target, nil }, func(r *http.Request, limit time.Duration) time.Duration {
		return scrapeTimeout(r.Header, offset, limit)
	}, opts)
	return promhttp.InstrumentMetricHandler(reg, limitRequests(h, maxRequests))
}

// limitRequests serves at most maxRequests at once (no limit when 0); more
// get 503 as promhttp's MaxRequestsInFlight gives it. The limit is kept
// here, not in promhttp, because a promhttp handler is built for each
// request to carry its deadline, and its limit would not be shared.
func limitRequests(next http.Handler, maxRequests int) http.Handler {
	if maxRequests <= 0 {
		return next
	}
	inFlight := make(chan struct{}, maxRequests)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
			defer func() { <-inFlight }()
		default:
			http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", maxRequests), http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
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
		// No time would be left: take half the announced time rather than
		// none, still capped by limit (and so never overflowing).
		if seconds/2 >= limit.Seconds() {
			return limit
		}
		return time.Duration(seconds * float64(time.Second) / 2)
	}
	return time.Duration((seconds - offset) * float64(time.Second))
}

// promhttpLogger adapts go-kit's logger to promhttp's Println logger.
type promhttpLogger struct{ logger log.Logger }

func (l promhttpLogger) Println(v ...any) {
	level.Error(l.logger).Log("msg", fmt.Sprint(v...))
}
