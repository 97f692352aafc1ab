package listing

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// syntheticPager serves a still list of n tokens made up on demand, so that
// a benchmark measures the listing's memory and not the fake's.
type syntheticPager struct{ n int }

func (p syntheticPager) Page(_ context.Context, number, size int) (*apiclient.Page, error) {
	start := (number - 1) * size
	page := &apiclient.Page{CurrentPage: number, PageSize: size, ItemsTotal: p.n, PagesTotal: (p.n + size - 1) / size}
	for i := start; i < min(start+size, p.n); i++ {
		page.Tokens = append(page.Tokens, apiclient.Token{
			Value:  fmt.Sprintf("to%022d", i),
			Record: apiclient.Record{Hash: uint64(i)*0x9e3779b97f4a7c15 | 1, Created: 1_800_000_000 + uint32(i/20)},
		})
	}
	return page, nil
}

// BenchmarkMillionTokensMemory lists a still list of a million tokens in
// full and incrementally, and reports the peak of the Go heap in use during
// the listing and the heap left in use after it.
//
//	go test -run '^$' -bench MillionTokensMemory -benchtime 1x ./listing
func BenchmarkMillionTokensMemory(b *testing.B) {
	for _, mode := range []Mode{ModeFull, ModeIncremental} {
		b.Run(mode.String(), func(b *testing.B) {
			for b.Loop() {
				l := New(syntheticPager{1_000_000}, Options{Mode: mode, Concurrency: 8, Now: func() time.Time { return time.Unix(1_900_000_000, 0) }})
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				peak, stop := samplePeakHeap()
				list, err := l.ListUploadTokens(context.Background(), 1000)
				stop()
				if err != nil || list.Len() != 1_000_000 {
					b.Fatalf("listed %v tokens: %v", list, err)
				}
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(*peak-base.HeapInuse)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(after.HeapInuse-base.HeapInuse)/(1<<20), "kept-heap-MiB")
				runtime.KeepAlive(list)
			}
		})
	}
}

// samplePeakHeap samples HeapInuse every millisecond until stop is called.
func samplePeakHeap() (*uint64, func()) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return &peak, func() { close(done); wg.Wait() }
}
