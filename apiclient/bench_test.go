package apiclient

// Benchmarks for the api.video client:
//
//	go test -run '^$' -bench 'DecodePage' -benchmem ./apiclient
//	go test -run '^$' -bench 'ListLatency' -benchmem ./apiclient
//
// BenchmarkDecodePage measures the decoding of one full page of 100 tokens
// as the fakeapi fake renders it. BenchmarkListLatency measures whole
// listings against the fake with 50 ms of latency per request, compared
// with the floor that latency sets for a given concurrency.

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
)

// benchPageBody fetches page 1 of an account of tokens tokens from a fresh
// fake, authenticating with Basic auth so that no login is involved.
func benchPageBody(b *testing.B, tokens, withoutExpiry int) []byte {
	b.Helper()
	s := fakeapi.NewServer(fakeapi.Options{Tokens: tokens, WithoutExpiry: withoutExpiry, Seed: 1})
	defer s.Close()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/upload-tokens?currentPage=1&pageSize=100", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.SetBasicAuth(s.APIKey(), "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("fetching a page from the fake: %d %v", resp.StatusCode, err)
	}
	return body
}

// allocatedBytes is the heap allocated so far, for per-token byte metrics.
func allocatedBytes() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func BenchmarkDecodePage(b *testing.B) {
	const tokens = 100
	body := benchPageBody(b, tokens, tokens/10)
	d := &pageDecoder{seed: maphash.MakeSeed()}
	p, err := d.decode(body)
	if err != nil {
		b.Fatal(err)
	}
	if len(p.Tokens) != tokens || p.ItemsTotal != tokens {
		b.Fatalf("decoded %d of %d tokens, want %d", len(p.Tokens), p.ItemsTotal, tokens)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	before := allocatedBytes()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.decode(body); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N) * tokens
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/token")
	b.ReportMetric(float64(allocatedBytes()-before)/n, "B/token")
}

// BenchmarkListLatency lists 1, 10 and 100 pages from a fake that takes
// 50 ms to answer each request, at several concurrencies. A listing cannot
// be faster than the first page plus ceil((pages-1)/concurrency) rounds of
// the rest: that floor is reported with the measured wall time, their
// ratio and the requests each listing made.
func BenchmarkListLatency(b *testing.B) {
	const latency = 50 * time.Millisecond
	for _, pages := range []int{1, 10, 100} {
		tokens := pages * MaxPageSize
		s := fakeapi.NewServer(fakeapi.Options{Tokens: tokens, WithoutExpiry: tokens / 10, Seed: 1, Latency: latency})
		for _, conc := range []int{1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("pages=%d/concurrency=%d", pages, conc), func(b *testing.B) {
				c, err := New(Config{BaseURL: s.URL, Key: StaticKey(s.APIKey()), Concurrency: conc})
				if err != nil {
					b.Fatal(err)
				}
				defer c.http.CloseIdleConnections()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				// Log in and open the connections outside the timer: a
				// running exporter reuses both from scrape to scrape.
				if list, err := c.ListUploadTokens(ctx, 1000); err != nil || len(list.Records) != tokens {
					b.Fatalf("warm-up listing: %v", err)
				}
				s.ResetStats()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					list, err := c.ListUploadTokens(ctx, 1000)
					if err != nil {
						b.Fatal(err)
					}
					if len(list.Records) != tokens {
						b.Fatalf("listed %d tokens, want %d", len(list.Records), tokens)
					}
				}
				b.StopTimer()
				st := s.Stats()
				floor := latency * time.Duration(1+int(math.Ceil(float64(pages-1)/float64(conc))))
				wall := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(float64(floor)/1e6, "floor-ms")
				b.ReportMetric(wall/1e6, "wall-ms")
				b.ReportMetric(wall/float64(floor), "wall/floor")
				b.ReportMetric(float64(st.ListRequests)/float64(b.N), "req/op")
				b.ReportMetric(float64(st.Logins+st.Refreshes)/float64(b.N), "logins/op")
				b.ReportMetric(float64(st.MaxInFlight), "max-inflight")
			})
		}
		s.Close()
	}
}
