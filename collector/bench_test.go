package collector_test

// Benchmarks of a whole scrape: list the tokens from a local fake of
// api.video with no latency, build the metrics, and encode the exposition
// as promhttp does for Prometheus, into nothing.
//
//	go test -run '^$' -bench 'Collect' -benchmem ./collector
//
// fake=fakeapi serves the listing from the fakeapi fake, whose
// own work (it renders JSON on every page request) runs in the same
// process and is included in the figures.
// fake=replay serves the same page bodies, rendered once beforehand, so
// that the figures are the exporter's own cost plus a loopback HTTP
// exchange per page.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// errorCounter counts the log lines the collector writes: any is a failed scrape.
type errorCounter struct{ n atomic.Int64 }

func (e *errorCounter) Log(...any) error { e.n.Add(1); return nil }

func BenchmarkCollect(b *testing.B) {
	for _, tokens := range []int{100, 1000, 10000, 100000} {
		fake := fakeapi.NewServer(fakeapi.Options{Tokens: tokens, WithoutExpiry: tokens / 10, Seed: 1})
		rep := fake.NewReplay()
		for _, kind := range []string{"fakeapi", "replay"} {
			url := fake.URL
			if kind == "replay" {
				url = rep.URL
			}
			b.Run(fmt.Sprintf("tokens=%d/fake=%s", tokens, kind), func(b *testing.B) {
				benchCollect(b, url, fake.APIKey(), tokens)
			})
		}
		rep.Close()
		fake.Close()
	}
}

func benchCollect(b *testing.B, url, key string, tokens int) {
	client, err := apiclient.New(apiclient.Config{BaseURL: url, Key: apiclient.StaticKey(key)})
	if err != nil {
		b.Fatal(err)
	}
	var errs errorCounter
	c := collector.New(listing.New(client, listing.Options{Mode: listing.ModeFull, Concurrency: apiclient.DefaultConcurrency}), collector.Options{
		TokenLabel:     collector.LabelRedacted,
		MaxTokenSeries: collector.DefaultMaxTokenSeries,
		Timeout:        time.Minute,
		Logger:         log.Logger(&errs),
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	// What Prometheus 3 asks for, less gzip: the text format, uncompressed.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=0.9,*/*;q=0.1")

	// The first scrape logs in and opens the connections; check it worked.
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	if got := gaugeValue(families, "apivideo_up"); got != 1 {
		b.Fatalf("apivideo_up %v after the first scrape", got)
	}
	if got := gaugeValue(families, "apivideo_upload_tokens_active"); got != float64(tokens) {
		b.Fatalf("apivideo_upload_tokens_active %v, want %d", got, tokens)
	}
	var out *testsupport.Discard
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.TotalAlloc
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = testsupport.NewDiscard()
		handler.ServeHTTP(out, req)
	}
	b.StopTimer()
	runtime.ReadMemStats(&m)
	if errs.n.Load() != 0 || (out.Status != 0 && out.Status != http.StatusOK) {
		b.Fatalf("%d scrapes failed; last status %d", errs.n.Load(), out.Status)
	}
	n := float64(b.N) * float64(tokens)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/token")
	b.ReportMetric(float64(m.TotalAlloc-before)/n, "B/token")
	b.ReportMetric(float64(out.Bytes), "exposition-B")
}

func gaugeValue(families []*dto.MetricFamily, name string) float64 {
	for _, mf := range families {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
