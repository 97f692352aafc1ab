// Command churn measures scrapes of a busy account: the share that publish
// apivideo_up 1, the list requests each makes, and whether each published
// count lies between the smallest and the largest true count during the
// scrape. The fake (internal/fakeapi) runs in this process in real time:
// tokens created, expiring and deleted every second, a latency on every
// request, a page past the end answered 404. The exporter's client and
// collector run in this process too, as main wires them. It prints a
// Markdown row: listing, tokens, scrapes, share up, requests a scrape
// (mean, × ceil(tokens/100), median, max), median scrape time, and the
// scrapes whose count was outside the true counts, by how many tokens.
//
//	go run ./bench/churn -tokens 10000 -mode full -scrapes 100
//	go run ./bench/churn -tokens 10000 -mode incremental -scrapes 100 -interval 5s
//
// The account starts with -tokens tokens created over the last hour with a
// one-hour ttl (1 % without expiry), so that -tokens/3600 expire and as
// many are created each second, and one is deleted every -delete-every.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

func main() {
	tokens := flag.Int("tokens", 10000, "tokens in the account")
	mode := flag.String("mode", "auto", "auto, full or incremental")
	scrapes := flag.Int("scrapes", 100, "measured scrapes")
	interval := flag.Duration("interval", 0, "pause between scrapes")
	latency := flag.Duration("latency", 100*time.Millisecond, "fake latency per request")
	timeout := flag.Duration("timeout", 10*time.Second, "scrape deadline")
	deleteEvery := flag.Duration("delete-every", 2*time.Second, "a token deleted this often (0: none)")
	concurrency := flag.Int("concurrency", apiclient.DefaultConcurrency, "--apivideo.concurrency")
	debug := flag.Bool("debug", false, "log the client's debug lines to standard error")
	flag.Parse()
	if *debug {
		logger = level.NewFilter(log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr)), level.AllowDebug())
	}
	if err := run(*tokens, *mode, *scrapes, *interval, *latency, *timeout, *deleteEvery, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "churn:", err)
		os.Exit(1)
	}
}

// logger receives the client's log lines; silent unless -debug.
var logger = log.NewNopLogger()

func run(tokens int, mode string, scrapes int, interval, latency, timeout, deleteEvery time.Duration, concurrency int) error {
	churn := apimodel.Churn{CreatePerSecond: float64(tokens) / 3600, TTLs: []int{3600}}
	if deleteEvery > 0 {
		churn.DeletePerSecond = 1 / deleteEvery.Seconds()
	}
	fake := fakeapi.NewServer(fakeapi.Options{
		Tokens: tokens, WithoutExpiry: tokens / 100, Spread: time.Hour, TTLs: []int{3600}, Seed: 1,
		Churn: churn, PastEnd: apimodel.PastEnd404, Latency: latency, RateLimit: 1 << 30,
	})
	defer fake.Close()
	// The true count at every request of the scrape under way.
	var mu sync.Mutex
	lo, hi := math.MaxInt, 0
	fake.OnList(func(int) {
		n := fake.Account().Len()
		mu.Lock()
		lo, hi = min(lo, n), max(hi, n)
		mu.Unlock()
	})
	var sent atomic.Int64
	client, err := apiclient.New(apiclient.Config{
		BaseURL: fake.URL, Key: apiclient.StaticKey(fake.APIKey()), Concurrency: concurrency, Logger: logger,
		Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/upload-tokens" {
				sent.Add(1)
			}
			return http.DefaultTransport.RoundTrip(r)
		}),
	})
	if err != nil {
		return err
	}
	var m listing.Mode
	if err := m.UnmarshalText([]byte(mode)); err != nil {
		return err
	}
	source := listing.New(client, listing.Options{Mode: m, Concurrency: concurrency, Logger: logger})
	c := collector.New(source, collector.Options{TokenLabel: collector.LabelRedacted, MaxTokenSeries: collector.DefaultMaxTokenSeries, Timeout: timeout})

	var (
		up, outside, firstUp int
		off                  float64
		requests, durations  []float64
		start                = time.Now()
	)
	for i := 0; ; i++ {
		mu.Lock()
		lo, hi = fake.Account().Len(), 0
		hi = lo
		mu.Unlock()
		sent.Store(0)
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		isUp, active, err := scrape(ctx, c)
		cancel()
		took := time.Since(began)
		mu.Lock()
		n := fake.Account().Len()
		lo, hi = min(lo, n), max(hi, n)
		low, high := lo, hi
		mu.Unlock()
		// The first scrapes of the incremental mode read the whole list:
		// they are reported apart, and not measured.
		if mode == "incremental" && firstUp == 0 {
			if isUp {
				firstUp = i + 1
				fmt.Printf("first sync: %d scrape(s), %.1f s; last of them %d requests\n", firstUp, time.Since(start).Seconds(), sent.Load())
			} else if i > 50 {
				return fmt.Errorf("the first sync did not end: %v", err)
			}
			time.Sleep(interval)
			continue
		}
		if isUp {
			up++
			if active < float64(low) || active > float64(high) {
				outside++
				off = max(off, float64(low)-active, active-float64(high))
			}
		}
		requests = append(requests, float64(sent.Load()))
		durations = append(durations, took.Seconds())
		if len(requests) == scrapes {
			break
		}
		time.Sleep(interval)
	}
	pages := math.Ceil(float64(tokens) / 100)
	mean := avg(requests)
	fmt.Printf("| %s | %d | %d | %.1f %% | %.1f | %.2f × | %.0f | %.0f | %.2f s | %d (by at most %.0f) |\n",
		mode, tokens, scrapes, 100*float64(up)/float64(scrapes), mean, mean/pages,
		pct(requests, 50), pct(requests, 100), pct(durations, 50), outside, off)
	return nil
}

// scrape collects once and returns apivideo_up and apivideo_upload_tokens_active.
func scrape(ctx context.Context, c *collector.Collector) (bool, float64, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.WithContext(ctx))
	families, err := reg.Gather()
	if err != nil {
		return false, 0, err
	}
	var isUp bool
	var active float64
	for _, mf := range families {
		switch mf.GetName() {
		case "apivideo_up":
			isUp = mf.GetMetric()[0].GetGauge().GetValue() == 1
		case "apivideo_upload_tokens_active":
			active = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return isUp, active, nil
}

func avg(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}

func pct(xs []float64, p int) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, (len(s)-1)*p/100)]
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
