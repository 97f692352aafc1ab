package main

// BenchmarkMetricsHandler measures the exporter's /metrics handler as
// run() wires it (version, Go and process collectors, instrumented API
// client, default collector options), answering a scrape as Prometheus
// sends it: OpenMetrics Accept header, gzip, a 10 s scrape timeout. The
// pages come from pre-rendered fakeapi bodies replayed by a loopback
// server, so that the figures are the exporter's cost.
//
//	go test -run '^$' -bench MetricsHandler -benchmem .
//	go test -run '^$' -bench 'MetricsHandler/tokens=10000$' -cpuprofile cpu.out .
//	go tool pprof -top -ignore 'net/http.\(\*conn\).serve' cpu.out

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

func BenchmarkMetricsHandler(b *testing.B) {
	for _, tokens := range []int{100, 1000, 10000, 100000} {
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			fake := fakeapi.NewServer(fakeapi.Options{Tokens: tokens, WithoutExpiry: tokens / 10, Seed: 1})
			srv := fake.NewReplay()
			defer fake.Close()
			defer srv.Close()
			reg := newRegistry()
			client, err := apiclient.New(apiclient.Config{
				BaseURL:    srv.URL,
				Key:        apiclient.StaticKey("replay-key"),
				UserAgent:  exporterName + "/bench",
				Registerer: reg,
			})
			if err != nil {
				b.Fatal(err)
			}
			tokensCollector := collector.New(listing.New(client, listing.Options{Concurrency: apiclient.DefaultConcurrency}), collector.Options{
				TokenLabel:     collector.LabelRedacted,
				MaxTokenSeries: collector.DefaultMaxTokenSeries,
				Timeout:        10 * time.Second,
				Logger:         log.NewNopLogger(),
			})
			h := metricsHandler(reg, tokensCollector, 0.5, 10*time.Second, 0, log.NewNopLogger())
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", testsupport.PrometheusAccept)
			req.Header.Set("Accept-Encoding", "gzip")
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
			scrape := func() *testsupport.Discard {
				out := testsupport.NewDiscard()
				h.ServeHTTP(out, req)
				return out
			}
			// The first scrape logs in; check that a scrape works.
			rec := httptest.NewRecorder()
			plain := req.Clone(req.Context())
			plain.Header.Del("Accept-Encoding")
			h.ServeHTTP(rec, plain)
			if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, "\napivideo_up 1.0\n") ||
				!strings.Contains(body, fmt.Sprintf("\napivideo_upload_tokens_active %d.0\n", tokens)) {
				b.Fatalf("first scrape failed: %d\n%.2000s", rec.Code, body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var out *testsupport.Discard
			for i := 0; i < b.N; i++ {
				out = scrape()
			}
			b.StopTimer()
			if out.Status != 0 && out.Status != http.StatusOK {
				b.Fatalf("status %d", out.Status)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(tokens), "ns/token")
			b.ReportMetric(float64(out.Bytes), "gzip-B")
		})
	}
}
