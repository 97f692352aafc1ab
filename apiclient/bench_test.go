package apiclient

// Benchmarks for the api.video client:
//
//	go test -run '^$' -bench 'DecodePage' -benchmem ./apiclient
//
// BenchmarkDecodePage measures the decoding of one full page of 100 tokens
// as the fakeapi fake renders it. Whole listings are benchmarked in the
// listing package.

import (
	"hash/maphash"
	"io"
	"net/http"
	"runtime"
	"testing"

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
