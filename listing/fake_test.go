package listing_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// These tests list the fake api.video account over HTTP through a real
// client; the model-based harness (model_test.go) covers live lists.

func newClient(t testing.TB, s *fakeapi.Server) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(apiclient.Config{BaseURL: s.URL, Key: apiclient.StaticKey(s.APIKey())})
	require.NoError(t, err)
	return c
}

func listCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// aMinuteAgo is the clock of a fake account whose tokens are all at least a
// minute old: none of them is of the second being read, whose tokens
// api.video may reorder as more are created.
func aMinuteAgo() time.Time { return time.Now().Add(-time.Minute) }

// keepAll asks a listing to keep the values of every token, so that tests
// can compare them with the fake's.
const keepAll = 1 << 20

// requireMatchesFake asserts that list holds exactly the fake's tokens with
// the fake's creation and expiry times, each once.
func requireMatchesFake(t *testing.T, s *fakeapi.Server, list *listing.TokenList) {
	t.Helper()
	want := s.Tokens()
	got := map[string]apiclient.Record{}
	for _, tok := range list.Values {
		got[tok.Value] = tok.Record
	}
	hashes := map[uint64]bool{}
	for r := range list.Records() {
		hashes[r.Hash] = true
	}
	require.Equal(t, len(want), list.Len(), "every token once")
	require.Len(t, hashes, len(want), "every token once")
	require.Equal(t, len(want), len(got), "every value kept once")
	for _, w := range want {
		g, ok := got[w.Token]
		require.True(t, ok, "a token is missing from the listing")
		require.True(t, hashes[g.Hash], "a kept value has no record")
		require.True(t, w.ExpiresAt().Equal(g.ExpiresAt()), "expiry of a token: want %v, got %v", w.ExpiresAt(), g.ExpiresAt())
		require.True(t, w.CreatedAt.Equal(g.CreatedAt()), "creation of a token: want %v, got %v", w.CreatedAt, g.CreatedAt())
	}
}

func TestFullListingReadsEachWindowOnce(t *testing.T) {
	for _, tc := range []struct {
		name          string
		tokens        int
		withoutExpiry int
	}{
		{"empty account", 0, 0},
		{"one token", 1, 0},
		{"one full page", 100, 10},
		{"just over a page", 101, 1},
		{"several pages", 257, 43},
		{"all without expiry", 250, 250},
		{"thirteen pages", 1300, 20},
		{"hundred pages", 10000, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeapi.NewServer(fakeapi.Options{Tokens: tc.tokens, WithoutExpiry: tc.withoutExpiry, Seed: 7, Now: aMinuteAgo})
			defer s.Close()
			l := listing.New(newClient(t, s), listing.Options{Mode: listing.ModeFull, Concurrency: apiclient.DefaultConcurrency})
			list, err := l.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			requireMatchesFake(t, s, list)
			without := 0
			for r := range list.Records() {
				if r.NeverExpires() {
					without++
				}
			}
			assert.Equal(t, tc.withoutExpiry, without)
			// Page 1, the other pages in segments each read from its last
			// page down, and one re-read where each segment meets the one
			// below it. A list that ends on a full page costs two more: the
			// page past it, and a window that reaches the end from below.
			pages := (tc.tokens + 99) / 100
			want := 1
			if pages > 1 {
				want += pages - 1 + min(apiclient.DefaultConcurrency, (pages-1+5)/6)
			}
			if tc.tokens > 0 && tc.tokens%100 == 0 {
				want += 2
			}
			assert.Equal(t, want, s.Stats().ListRequests)
			assert.Equal(t, want, list.Requests)
			assert.Equal(t, 1, s.Stats().Logins)
		})
	}
}

func TestPagesAreFetchedConcurrently(t *testing.T) {
	for _, concurrency := range []int{1, 4, apiclient.DefaultConcurrency} {
		t.Run(fmt.Sprint(concurrency), func(t *testing.T) {
			s := fakeapi.NewServer(fakeapi.Options{Tokens: 5050, Seed: 2, Latency: 20 * time.Millisecond, Now: aMinuteAgo})
			defer s.Close()
			l := listing.New(newClient(t, s), listing.Options{Mode: listing.ModeFull, Concurrency: concurrency})
			list, err := l.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			assert.Equal(t, 5050, list.Len())
			st := s.Stats()
			assert.Equal(t, 51+min(concurrency, 9), st.ListRequests, "every page, and a re-read where segments meet")
			assert.Equal(t, concurrency, st.MaxInFlight, "pages in flight at once, never more than the limit")
		})
	}
}

// BenchmarkListLatency lists 1, 10 and 100 pages from a fake that takes
// 50 ms to answer each request, at several concurrencies. A listing cannot
// be faster than the first page plus ceil((windows-1)/concurrency) rounds
// of the rest: that floor is reported with the measured wall time, their
// ratio and the requests each listing made.
//
//	go test -run '^$' -bench ListLatency -benchmem ./listing
func BenchmarkListLatency(b *testing.B) {
	const latency = 50 * time.Millisecond
	for _, pages := range []int{1, 10, 100} {
		tokens := pages * apiclient.MaxPageSize
		s := fakeapi.NewServer(fakeapi.Options{Tokens: tokens, WithoutExpiry: tokens / 10, Seed: 1, Latency: latency})
		for _, conc := range []int{1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("pages=%d/concurrency=%d", pages, conc), func(b *testing.B) {
				c := newClient(b, s)
				defer c.Close()
				l := listing.New(c, listing.Options{Mode: listing.ModeFull, Concurrency: conc})
				ctx := listCtx(b, 5*time.Minute)
				// Log in and open the connections outside the timer: a
				// running exporter reuses both from scrape to scrape.
				if list, err := l.ListUploadTokens(ctx, 1000); err != nil || list.Len() != tokens {
					b.Fatalf("warm-up listing: %v", err)
				}
				s.ResetStats()
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					list, err := l.ListUploadTokens(ctx, 1000)
					if err != nil {
						b.Fatal(err)
					}
					if list.Len() != tokens {
						b.Fatalf("listed %d tokens, want %d", list.Len(), tokens)
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
				b.ReportMetric(float64(st.MaxInFlight), "max-inflight")
			})
		}
		s.Close()
	}
}
