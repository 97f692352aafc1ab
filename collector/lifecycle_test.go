package collector_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

const (
	createdName   = "apivideo_upload_token_without_expiry_created_timestamp_seconds"
	expiresInName = "apivideo_upload_token_expires_in_seconds"
	createdTotal  = "apivideo_upload_tokens_created_total"
)

// series returns the token label of each per-token series, with the name
// of its metric.
func series(families map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for _, name := range []string{createdName, expiresInName} {
		for _, m := range families[name].GetMetric() {
			out[m.GetLabel()[0].GetValue()] = name
		}
	}
	return out
}

func TestTokenSeriesOrderUnderCap(t *testing.T) {
	// sampleList in the order of publication: without expiry, oldest
	// first, then closest to expiry first.
	order := []string{
		"to1W3ZS9PdUBZWzzTEZr1B79", "toNoExpiry00000000000000",
		"toSoon000000000000000000", "toSAMEPREFIXaaaaaaaaaaaa", "to37YfoPDRR2pcDKa6LsUE0M",
		"toPAIRED0aXXXXXXXXXXXXXX", "toPAIRED0bYYYYYYYYYYYYYY", "toSAMEPREFIXbbbbbbbbbbbb", "toFarAway000000000000000",
	}
	for _, tc := range []struct {
		name string
		cap  int
		mode collector.LabelMode
		want int
	}{
		{"no series", 0, collector.LabelFull, 0},
		{"fewer than the tokens without expiry: the oldest", 1, collector.LabelFull, 1},
		{"just the tokens without expiry", 2, collector.LabelFull, 2},
		{"the tokens without expiry, then the closest to expiry", 3, collector.LabelFull, 3},
		{"both kinds counted together", 6, collector.LabelFull, 6},
		{"room for all", 100, collector.LabelFull, 9},
		{"no token label, no per-token series", 100, collector.LabelNone, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &stubSource{list: sampleList()}
			c := collector.New(src, collector.Options{TokenLabel: tc.mode, MaxTokenSeries: tc.cap, Now: func() time.Time { return now }})
			got := series(gather(t, c))
			want := map[string]string{}
			for i, v := range order[:tc.want] {
				want[v] = expiresInName
				if i < 2 {
					want[v] = createdName
				}
			}
			assert.Equal(t, want, got)
		})
	}
}

// TestTokenSeriesOrderAgainstFakeAPI checks, in both listing modes, that
// the series published under a tight cap are the first in the order of
// publication: no token left out comes before one published.
func TestTokenSeriesOrderAgainstFakeAPI(t *testing.T) {
	for _, mode := range []string{"full", "incremental"} {
		for _, tc := range []struct {
			cap, wantStanding, wantExpiring int
		}{{20, 20, 0}, {43, 43, 0}, {60, 43, 17}} {
			t.Run(fmt.Sprintf("%s/cap=%d", mode, tc.cap), func(t *testing.T) {
				s := fakeapi.NewServer(fakeapi.Options{Tokens: 257, WithoutExpiry: 43, Spread: 6 * time.Hour,
					TTLs: []int{86400, 7 * 86400, 2 * 86400, 3600}, Seed: 11})
				defer s.Close()
				client, err := apiclient.New(apiclient.Config{BaseURL: s.URL, Key: apiclient.StaticKey(s.APIKey())})
				require.NoError(t, err)
				var m listing.Mode
				require.NoError(t, m.UnmarshalText([]byte(mode)))
				src := listing.New(client, listing.Options{Mode: m, Concurrency: apiclient.DefaultConcurrency})
				c := collector.New(src, collector.Options{TokenLabel: collector.LabelFull, MaxTokenSeries: tc.cap})
				// check, with wantStanding -1, checks only the order.
				check := func(wantStanding, wantExpiring int) {
					t.Helper()
					got := series(gather(t, c))
					var published, left []fakeapi.TokenInfo
					standing, expiring := 0, 0
					for _, tk := range s.Tokens() {
						switch got[tk.Token] {
						case createdName:
							require.Zero(t, tk.TTL, "a token with a ttl published as without expiry")
							standing++
							published = append(published, tk)
						case expiresInName:
							require.NotZero(t, tk.TTL, "a token without expiry published as expiring")
							expiring++
							published = append(published, tk)
						default:
							left = append(left, tk)
						}
					}
					if wantStanding >= 0 {
						assert.Equal(t, wantStanding, standing, "series of tokens without expiry")
						assert.Equal(t, wantExpiring, expiring, "series of expiring tokens")
					}
					for _, p := range published {
						for _, l := range left {
							require.False(t, publishedBefore(l, p), "a token left out comes before a published one")
						}
					}
				}
				check(tc.wantStanding, tc.wantExpiring)
				// The oldest token without expiry is deleted, and tokens
				// of both kinds are created: the order still holds.
				for i, tk := range s.Tokens() {
					if tk.TTL == 0 {
						s.RemoveToken(i)
						break
					}
				}
				s.AddTokens(2, 0)
				s.AddTokens(2, 60)
				check(-1, -1)
			})
		}
	}
}

// publishedBefore reports whether a comes strictly before b in the order
// of publication, by dates alone (tokens of the same second are in either
// order).
func publishedBefore(a, b fakeapi.TokenInfo) bool {
	switch {
	case a.TTL == 0 && b.TTL == 0:
		return a.CreatedAt.Before(b.CreatedAt)
	case a.TTL == 0 || b.TTL == 0:
		return a.TTL == 0
	}
	return a.ExpiresAt().Before(b.ExpiresAt())
}

// at is a token created at the given offset from now, with no expiry, and
// a hash of its own.
func at(value string, offset time.Duration) apiclient.Token {
	t := tok(value, 0)
	t.Created = uint32(now.Add(offset).Unix())
	return t
}

func TestCreatedTotal(t *testing.T) {
	a, b, c, d := at("toA", -time.Hour), at("toB", 5*time.Second), at("toC", 6*time.Second), at("toD", 10*time.Second)
	// Tokens of the same second as the newest shown.
	s1, s2, s3 := at("toS1", 0), at("toS2", 0), at("toS3", 0)
	// The same token, with the bit an incremental lister uses for itself.
	boom := errors.New("boom")
	type step struct {
		tokens []apiclient.Token
		err    error
		want   float64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"the first listing only sets the baseline", []step{{tokens: []apiclient.Token{a, b, c}, want: 0}}},
		{"tokens created later count once", []step{
			{tokens: []apiclient.Token{a}, want: 0},
			{tokens: []apiclient.Token{a, b, c}, want: 2},
			{tokens: []apiclient.Token{a, b, c}, want: 2},
			{tokens: []apiclient.Token{a, b, c, d}, want: 3},
		}},
		{"tokens created in the same second as the newest shown", []step{
			{tokens: []apiclient.Token{a, s1}, want: 0},
			{tokens: []apiclient.Token{a, s1, s2}, want: 1},
			{tokens: []apiclient.Token{s2, a, s3, s1}, want: 2},
			{tokens: []apiclient.Token{a, s1, s2, s3}, want: 2},
		}},
		{"tokens created and gone between two listings are not seen", []step{
			{tokens: []apiclient.Token{a}, want: 0},
			{tokens: []apiclient.Token{a}, want: 0}, // b and c came and went
			{tokens: []apiclient.Token{a, d}, want: 1},
		}},
		{"the newest token goes: the newest date shown stays", []step{
			{tokens: []apiclient.Token{a, s1}, want: 0},
			{tokens: []apiclient.Token{a}, want: 0},
			{tokens: []apiclient.Token{a, s1, s2}, want: 1},
			{tokens: []apiclient.Token{a, s2, b}, want: 2},
		}},
		{"a failed scrape counts nothing and loses nothing", []step{
			{tokens: []apiclient.Token{a}, want: 0},
			{err: boom, want: 0},
			{tokens: []apiclient.Token{a, b}, want: 1},
			{err: boom, want: 1},
			{tokens: []apiclient.Token{a, b, c}, want: 2},
		}},
		{"a scrape that fails before the first success sets no baseline", []step{
			{err: boom, want: 0},
			{tokens: []apiclient.Token{a, b}, want: 0},
			{tokens: []apiclient.Token{a, b, c}, want: 1},
		}},
		{"an empty account at first", []step{
			{tokens: nil, want: 0},
			{tokens: []apiclient.Token{b}, want: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &stubSource{}
			col := collector.New(src, collector.Options{MaxTokenSeries: 10, Now: func() time.Time { return now }})
			for i, st := range tc.steps {
				src.list, src.err = listOf(st.tokens...), st.err
				families := gather(t, col)
				require.Contains(t, families, createdTotal, "step %d", i)
				assert.Equal(t, st.want, families[createdTotal].GetMetric()[0].GetCounter().GetValue(), "step %d", i)
			}
		})
	}
}

func TestCreatedTotalCountsACachedListingOnce(t *testing.T) {
	clock := now
	src := &stubSource{list: listOf(at("toA", -time.Hour))}
	c := collector.New(src, collector.Options{MaxTokenSeries: 10, CacheTTL: time.Minute, Now: func() time.Time { return clock }})
	count := func() float64 { return gather(t, c)[createdTotal].GetMetric()[0].GetCounter().GetValue() }
	assert.Equal(t, 0.0, count())
	src.list = listOf(at("toA", -time.Hour), at("toB", time.Second), at("toC", 2*time.Second))
	src.list.FetchedAt = now.Add(61 * time.Second) // when it will be fetched
	clock = now.Add(10 * time.Second)
	assert.Equal(t, 0.0, count(), "the cached listing, which has not seen them")
	clock = now.Add(61 * time.Second)
	assert.Equal(t, 2.0, count())
	clock = now.Add(90 * time.Second)
	assert.Equal(t, 2.0, count(), "the same listing from the cache, not counted again")
	assert.Equal(t, 2.0, count())
	assert.Equal(t, int32(2), src.calls.Load())
}

// TestCreatedTotalAgainstFakeAPI counts, in both listing modes, the tokens
// created between scrapes, in the same second as the newest listed or
// later, not those that came and went between two scrapes, and starts
// again from 0 with no jump after a restart.
func TestCreatedTotalAgainstFakeAPI(t *testing.T) {
	for _, mode := range []string{"full", "incremental"} {
		t.Run(mode, func(t *testing.T) {
			clk := testsupport.NewClock(now)
			s := fakeapi.NewServer(fakeapi.Options{Tokens: 300, WithoutExpiry: 20, Seed: 5, Now: clk.Now})
			defer s.Close()
			start := func() prometheus.Collector {
				client, err := apiclient.New(apiclient.Config{BaseURL: s.URL, Key: apiclient.StaticKey(s.APIKey()), Now: clk.Now})
				require.NoError(t, err)
				var m listing.Mode
				require.NoError(t, m.UnmarshalText([]byte(mode)))
				src := listing.New(client, listing.Options{Mode: m, Concurrency: apiclient.DefaultConcurrency, Now: clk.Now})
				return collector.New(src, collector.Options{MaxTokenSeries: 10, Now: clk.Now})
			}
			count := func(c prometheus.Collector) float64 {
				t.Helper()
				families := gather(t, c)
				require.Equal(t, 1.0, families["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
				return families[createdTotal].GetMetric()[0].GetCounter().GetValue()
			}
			first := start()
			assert.Equal(t, 0.0, count(first), "the account's 300 tokens are not counted")

			// In the second of the newest token listed, and later.
			s.AddTokens(3, 3600)
			assert.Equal(t, 3.0, count(first))
			clk.Advance(5 * time.Second)
			s.AddTokens(2, 0)
			s.AddTokens(1, 600)
			clk.Advance(5 * time.Second)
			assert.Equal(t, 6.0, count(first))

			// Created and expired between two scrapes: never listed.
			s.AddTokens(4, 30)
			clk.Advance(time.Minute)
			assert.Equal(t, 6.0, count(first))

			// Created, then an older token deleted.
			s.AddTokens(2, 3600)
			s.RemoveToken(0)
			clk.Advance(time.Second)
			assert.Equal(t, 8.0, count(first))
			assert.Equal(t, 8.0, count(first), "nothing new")

			// A restart: a new collector counts from 0, not the
			// account's tokens.
			second := start()
			assert.Equal(t, 0.0, count(second))
			s.AddTokens(1, 0)
			clk.Advance(time.Second)
			assert.Equal(t, 1.0, count(second))
			assert.Equal(t, 9.0, count(first))
		})
	}
}

// TestTTLHistogramCountsEveryExpiringToken checks the ttl histogram
// against the fake's tokens, whatever the cap on per-token series.
func TestTTLHistogramCountsEveryExpiringToken(t *testing.T) {
	ttls := []int{300, 3600, 86400, 7 * 86400, 45 * 86400}
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 257, WithoutExpiry: 43, Spread: 3 * time.Minute, TTLs: ttls, Seed: 3})
	defer s.Close()
	client, err := apiclient.New(apiclient.Config{BaseURL: s.URL, Key: apiclient.StaticKey(s.APIKey())})
	require.NoError(t, err)
	c := collector.New(listing.New(client, listing.Options{Concurrency: apiclient.DefaultConcurrency}), collector.Options{TokenLabel: collector.LabelNone, MaxTokenSeries: 5})
	families := gather(t, c)
	truth := s.Tokens()

	var expiring uint64
	var sum float64
	byBucket := map[float64]uint64{}
	for _, tk := range truth {
		if tk.TTL == 0 {
			continue
		}
		expiring++
		sum += float64(tk.TTL)
		for _, le := range []float64{300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400} {
			if float64(tk.TTL) <= le {
				byBucket[le]++
			}
		}
	}
	require.Equal(t, uint64(214), expiring)
	h := families["apivideo_upload_tokens_ttl_seconds"].GetMetric()[0].GetHistogram()
	assert.Equal(t, expiring, h.GetSampleCount(), "every expiring token, none without expiry")
	assert.Equal(t, families["apivideo_upload_tokens_expiry_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(), h.GetSampleCount())
	assert.Equal(t, sum, h.GetSampleSum())
	got := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		got[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	assert.Equal(t, byBucket, got)
	assert.Less(t, got[30*86400], expiring, "ttls past 30 days are only in +Inf")
}
