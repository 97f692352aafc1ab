// Package scrape serves one scrape over HTTP, the same way for /metrics and
// /probe: the token collector bound to the scrape's deadline, gathered
// with the target's other metrics, and a write deadline so that a client
// that stops reading cannot hold the request, nor its slot, for long.
package scrape

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apivideo-exporter/apivideo_exporter/collector"
)

// WriteGrace is how long after its scrape's deadline a response may take
// to be written: a client that reads slower than that loses it. A variable
// for tests only.
var WriteGrace = 20 * time.Second

// Target is what one scrape serves.
type Target struct {
	// Tokens is the token collector; none when nil.
	Tokens *collector.Collector
	// Limit is the longest the scrape may take, whatever Prometheus
	// announces.
	Limit time.Duration
	// Gatherers hold the target's other metrics, gathered after the tokens
	// so that request counters include the scrape.
	Gatherers prometheus.Gatherers
}

// Resolve returns the target of a request, or an error to answer with 400.
type Resolve func(*http.Request) (Target, error)

// Timeout returns a request's scrape timeout, at most limit.
type Timeout func(r *http.Request, limit time.Duration) time.Duration

// Handler serves the scrapes of the targets resolve finds.
func Handler(resolve Resolve, timeout Timeout, opts promhttp.HandlerOpts) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := resolve(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d := timeout(r, t.Limit)
		// Not every ResponseWriter supports deadlines (httptest's does
		// not); the server's WriteTimeout then still applies.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + WriteGrace))
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		scrape := prometheus.NewRegistry()
		if t.Tokens != nil {
			scrape.MustRegister(t.Tokens.WithContext(ctx))
		}
		promhttp.HandlerFor(append(prometheus.Gatherers{scrape}, t.Gatherers...), opts).ServeHTTP(w, r)
	})
}
