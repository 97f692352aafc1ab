// Package scrape serves one scrape over HTTP, the same way for /metrics and
// /probe: the token collector bound to the scrape's deadline, gathered
// with the target's other metrics, and a write deadline so that a client
// that stops reading cannot hold the request, nor its slot, for long.
//
// A scrape lists the tokens first, which may wait on api.video for
// seconds, then gathers and encodes its metrics, a few scrapes at a time,
// into a compressed buffer, which it then writes: the metric families of
// a scrape, several MB with many token series, are held only while it
// encodes them, and a client that does not read holds only the
// compressed exposition.
package scrape

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apivideo-exporter/apivideo_exporter/collector"
)

// WriteGrace is how long after its scrape's deadline a response may take
// to be written: a client that reads slower than that loses it. A variable
// for tests only.
var WriteGrace = 20 * time.Second

// MaxEncoding is how many scrapes gather and encode their metrics at once,
// across every account: each holds its metric families meanwhile.
const MaxEncoding = 2

// encoding holds a slot for each scrape gathering and encoding.
var encoding = make(chan struct{}, MaxEncoding)

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
			tokens := t.Tokens.Prepare(ctx)
			defer tokens.Close()
			scrape.MustRegister(tokens)
		}
		// A listing that ran out of time is still published, as
		// apivideo_up 0: the wait for a slot ends only with the request.
		select {
		case encoding <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		// Encoded compressed whatever the client takes: the buffer is
		// what a client that does not read holds.
		encoded := &buffer{header: http.Header{}}
		inner := r.Clone(r.Context())
		inner.Header.Set("Accept-Encoding", "gzip")
		func() {
			defer func() { <-encoding }()
			promhttp.HandlerFor(append(prometheus.Gatherers{scrape}, t.Gatherers...), opts).ServeHTTP(encoded, inner)
		}()
		encoded.writeTo(w, acceptsGzip(r.Header))
	})
}

// buffer is a response held in memory.
type buffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *buffer) Header() http.Header { return b.header }

func (b *buffer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *buffer) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// writeTo writes the response to w, decompressed when the client does not
// take gzip. Errors are the client's: it went away or stopped reading.
func (b *buffer) writeTo(w http.ResponseWriter, gzipOK bool) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	if b.header.Get("Content-Encoding") != "gzip" || gzipOK {
		w.Header().Set("Content-Length", strconv.Itoa(b.body.Len()))
		w.WriteHeader(status)
		_, _ = w.Write(b.body.Bytes())
		return
	}
	w.Header().Del("Content-Encoding")
	w.Header().Del("Content-Length")
	zr, err := gzip.NewReader(&b.body)
	if err != nil {
		http.Error(w, "encoding the metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = io.Copy(w, zr)
}

// acceptsGzip reports whether a request's Accept-Encoding takes gzip.
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "*" {
				continue
			}
			q := 1.0
			if name, value, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(name) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
					q = f
				}
			}
			if q > 0 {
				return true
			}
		}
	}
	return false
}
