package collector_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// stubSource returns a fixed listing, or an error, after an optional delay,
// and counts its calls.
type stubSource struct {
	list  *listing.TokenList
	err   error
	delay time.Duration
	calls atomic.Int32
	rl    *apiclient.RateLimit
}

func (s *stubSource) ListUploadTokens(ctx context.Context, _ int) (*listing.TokenList, error) {
	s.calls.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.list, s.err
}

func (s *stubSource) RateLimit() (apiclient.RateLimit, bool) {
	if s.rl == nil {
		return apiclient.RateLimit{}, false
	}
	return *s.rl, true
}

// tok is a token created a minute ago that expires in in (never when 0).
func tok(value string, in time.Duration) apiclient.Token {
	h := fnv.New64a()
	h.Write([]byte(value))
	t := apiclient.Token{Value: value, Record: apiclient.Record{Hash: h.Sum64(), Created: uint32(now.Add(-time.Minute).Unix())}}
	if in != 0 {
		t.Expires = uint32(now.Add(in).Unix())
	}
	return t
}

// standing is a token without expiry created age ago.
func standing(value string, age time.Duration) apiclient.Token {
	t := tok(value, 0)
	t.Created = uint32(now.Add(-age).Unix())
	return t
}

// listOf is a listing of tokens that kept every value.
func listOf(tokens ...apiclient.Token) *listing.TokenList {
	var records []apiclient.Record
	for _, t := range tokens {
		records = append(records, t.Record)
	}
	list := listing.NewTokenList(records, tokens, now)
	list.Requests = 1
	return list
}

// sampleList has tokens without expiry, one of them created 40 days ago,
// tokens across the histograms' range, two tokens that share nine
// characters and two that share twelve.
func sampleList() *listing.TokenList {
	return listOf(
		tok("to37YfoPDRR2pcDKa6LsUE0M", time.Hour),
		standing("to1W3ZS9PdUBZWzzTEZr1B79", 40*24*time.Hour),
		tok("toSAMEPREFIXaaaaaaaaaaaa", 10*time.Minute),
		tok("toSAMEPREFIXbbbbbbbbbbbb", 2*24*time.Hour),
		standing("toNoExpiry00000000000000", 2*time.Hour),
		tok("toFarAway000000000000000", 20*24*time.Hour),
		tok("toSoon000000000000000000", 90*time.Second),
		tok("toPAIRED0aXXXXXXXXXXXXXX", 5*time.Hour),
		tok("toPAIRED0bYYYYYYYYYYYYYY", 5*time.Hour+time.Second),
	)
}

func golden(t *testing.T, name string, c prometheus.Collector, names ...string) {
	t.Helper()
	path := filepath.Join("testdata", name+".prom")
	if *update {
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(c))
		var buf bytes.Buffer
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range families {
			if contains(names, mf.GetName()) {
				_, err := expfmtText(&buf, mf)
				require.NoError(t, err)
			}
		}
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, testutil.CollectAndCompare(c, f, names...))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var tokenMetrics = []string{
	"apivideo_up",
	"apivideo_upload_tokens_active",
	"apivideo_upload_tokens_without_expiry",
	"apivideo_upload_token_expires_in_seconds",
	"apivideo_upload_tokens_expiry_seconds",
	"apivideo_upload_token_without_expiry_created_timestamp_seconds",
	"apivideo_upload_tokens_ttl_seconds",
	"apivideo_upload_tokens_created_total",
	"apivideo_ratelimit_limit",
	"apivideo_ratelimit_remaining",
}

func TestCollectGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts collector.Options
	}{
		{"redacted", collector.Options{TokenLabel: collector.LabelRedacted, MaxTokenSeries: 1000}},
		{"full", collector.Options{TokenLabel: collector.LabelFull, MaxTokenSeries: 1000}},
		{"none", collector.Options{TokenLabel: collector.LabelNone, MaxTokenSeries: 1000}},
		// The two tokens without expiry first, then the two closest to expiry.
		{"capped", collector.Options{TokenLabel: collector.LabelRedacted, MaxTokenSeries: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &stubSource{list: sampleList(), rl: &apiclient.RateLimit{Limit: 500, Remaining: 431}}
			tc.opts.Now = func() time.Time { return now }
			golden(t, "collect-"+tc.name, collector.New(src, tc.opts), tokenMetrics...)
		})
	}
}

func TestCollectAndLint(t *testing.T) {
	src := &stubSource{list: sampleList(), rl: &apiclient.RateLimit{Limit: 500, Remaining: 431}}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000, Now: func() time.Time { return now }})
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestFailedScrapePublishesNoCounts(t *testing.T) {
	var logs bytes.Buffer
	src := &stubSource{err: fmt.Errorf("GET /upload-tokens: %w", apiclient.ErrMalformedResponse)}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000, Logger: log.NewLogfmtLogger(&logs)})
	families := gather(t, c)
	// The counters of created tokens and of panics are the exporter's own
	// tallies, not counts of the account: they stay, unchanged.
	assert.ElementsMatch(t, []string{"apivideo_up", "apivideo_scrape_duration_seconds", "apivideo_upload_tokens_created_total",
		"apivideo_listing_panics_total"}, names(families))
	assert.Equal(t, 0.0, families["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, 0.0, families["apivideo_upload_tokens_created_total"].GetMetric()[0].GetCounter().GetValue())
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 1, "one log line says why")
	assert.Contains(t, lines[0], "malformed response from api.video")
	assert.Contains(t, lines[0], "level=error")

	// Rate-limit headroom is still shown: a 429 is when it matters most.
	src.rl = &apiclient.RateLimit{Limit: 500, Remaining: 0}
	assert.ElementsMatch(t, []string{"apivideo_up", "apivideo_scrape_duration_seconds", "apivideo_upload_tokens_created_total",
		"apivideo_listing_panics_total", "apivideo_ratelimit_limit", "apivideo_ratelimit_remaining"}, names(gather(t, c)))
}

func TestScrapeHonoursTheContextDeadline(t *testing.T) {
	src := &stubSource{list: sampleList(), delay: time.Minute}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	families := gather(t, c.WithContext(ctx))
	assert.Less(t, time.Since(start), 30*time.Second, "ended at the deadline, not after the source's minute")
	assert.Equal(t, 0.0, families["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.NotContains(t, names(families), "apivideo_upload_tokens_active")
}

func TestConcurrentScrapesShareOneFetch(t *testing.T) {
	// A second is ample for 50 goroutines to join, even on a loaded machine.
	src := &stubSource{list: sampleList(), delay: time.Second}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000})
	var wg sync.WaitGroup
	var ups atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if testutil.ToFloat64(onlyUp{c}) == 1 {
				ups.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), src.calls.Load(), "one upstream fetch")
	assert.Equal(t, int32(50), ups.Load(), "every scrape got the result")
}

func TestJoinerWithALongerDeadlineExtendsTheSharedListing(t *testing.T) {
	src := &stubSource{list: sampleList(), delay: 300 * time.Millisecond}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000})
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	long, cancelLong := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelLong()

	shortUp := make(chan float64, 1)
	go func() { shortUp <- testutil.ToFloat64(onlyUp{c.WithContext(short)}) }()
	require.Eventually(t, func() bool { return src.calls.Load() > 0 }, 5*time.Second, time.Millisecond)
	// The long scrape joins the listing the short one started, which then
	// runs to the long one's deadline.
	assert.Equal(t, 1.0, testutil.ToFloat64(onlyUp{c.WithContext(long)}))
	assert.Equal(t, 0.0, <-shortUp)
	assert.Equal(t, int32(1), src.calls.Load(), "one listing, run to the longer deadline")
}

// Clients that loop on scrapes with very short timeouts keep starting
// listings with little time; a scrape with a normal timeout that joins one
// still gets its own time, and is up.
func TestShortDeadlinesCannotFailOtherScrapes(t *testing.T) {
	src := &stubSource{list: sampleList(), delay: 200 * time.Millisecond}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000})
	stop := make(chan struct{})
	var attackers sync.WaitGroup
	for range 4 {
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
				testutil.ToFloat64(onlyUp{c.WithContext(ctx)})
				cancel()
			}
		}()
	}
	up := 0
	const scrapes = 10
	for range scrapes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		up += int(testutil.ToFloat64(onlyUp{c.WithContext(ctx)}))
		cancel()
	}
	close(stop)
	attackers.Wait()
	assert.Equal(t, scrapes, up, "scrapes up among those with a normal timeout")
}

func TestSharedFetchAgainstFakeAPI(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 1050, WithoutExpiry: 10, Latency: 300 * time.Millisecond, Seed: 4})
	defer s.Close()
	client, err := apiclient.New(apiclient.Config{BaseURL: s.URL, Key: apiclient.StaticKey(s.APIKey())})
	require.NoError(t, err)
	c := collector.New(listing.New(client, listing.Options{Concurrency: apiclient.DefaultConcurrency}), collector.Options{MaxTokenSeries: 1000})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.Equal(t, 1.0, testutil.ToFloat64(onlyUp{c}))
		}()
	}
	wg.Wait()
	st := s.Stats()
	assert.Equal(t, 11+2, st.ListRequests, "one listing: eleven pages, and a re-read where each of the two segments of pages 2 to 11 meets the pages below it")
	assert.Equal(t, 1, st.Logins)
}

func TestCache(t *testing.T) {
	clock := now
	src := &stubSource{list: sampleList()}
	c := collector.New(src, collector.Options{
		MaxTokenSeries: 1000, TokenLabel: collector.LabelFull, CacheTTL: time.Minute,
		Now: func() time.Time { return clock },
	})
	expiresIn := func() float64 {
		for _, m := range gather(t, c)["apivideo_upload_token_expires_in_seconds"].GetMetric() {
			if m.GetLabel()[0].GetValue() == "toSoon000000000000000000" {
				return m.GetGauge().GetValue()
			}
		}
		t.Fatal("no series for the token")
		return 0
	}
	assert.Equal(t, 90.0, expiresIn())
	assert.Equal(t, int32(1), src.calls.Load(), "miss: fetched")

	clock = now.Add(30 * time.Second)
	assert.Equal(t, 60.0, expiresIn(), "computed at collect time from the cached expiry")
	assert.Equal(t, int32(1), src.calls.Load(), "hit: not fetched again")

	clock = now.Add(61 * time.Second)
	assert.Equal(t, 29.0, expiresIn())
	assert.Equal(t, int32(2), src.calls.Load(), "expired: fetched again")
}

func TestCachedTokensThatExpiredAreNotActive(t *testing.T) {
	clock := now
	src := &stubSource{list: sampleList()}
	c := collector.New(src, collector.Options{
		MaxTokenSeries: 1000, CacheTTL: time.Hour, Now: func() time.Time { return clock },
	})
	families := gather(t, c)
	assert.Equal(t, 9.0, families["apivideo_upload_tokens_active"].GetMetric()[0].GetGauge().GetValue())

	clock = now.Add(2 * time.Minute) // toSoon (90 s) has expired
	families = gather(t, c)
	assert.Equal(t, int32(1), src.calls.Load(), "served from the cache")
	assert.Equal(t, 8.0, families["apivideo_upload_tokens_active"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, 2.0, families["apivideo_upload_tokens_without_expiry"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, uint64(6), families["apivideo_upload_tokens_expiry_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
	for _, m := range families["apivideo_upload_token_expires_in_seconds"].GetMetric() {
		assert.Positive(t, m.GetGauge().GetValue(), "no series for an expired token")
	}
}

func TestCacheKeepsNoFailure(t *testing.T) {
	src := &stubSource{err: errors.New("boom")}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000, CacheTTL: time.Minute})
	assert.Equal(t, 0.0, testutil.ToFloat64(onlyUp{c}))
	src.err, src.list = nil, sampleList()
	assert.Equal(t, 1.0, testutil.ToFloat64(onlyUp{c}), "the next scrape recovers")
	assert.Equal(t, int32(2), src.calls.Load())
}

// TestAgainstFakeAPI checks the acceptance case: 257 tokens, 43
// without expiry, dates in every format, pages of 100.
func TestAgainstFakeAPI(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 257, WithoutExpiry: 43, Seed: 9})
	defer s.Close()
	client, err := apiclient.New(apiclient.Config{BaseURL: s.URL, Key: apiclient.StaticKey(s.APIKey())})
	require.NoError(t, err)
	c := collector.New(listing.New(client, listing.Options{Concurrency: apiclient.DefaultConcurrency}), collector.Options{MaxTokenSeries: 1000})
	families := gather(t, c)
	at := time.Now()

	assert.Equal(t, 1.0, families["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, 257.0, families["apivideo_upload_tokens_active"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, 43.0, families["apivideo_upload_tokens_without_expiry"].GetMetric()[0].GetGauge().GetValue())
	hist := families["apivideo_upload_tokens_expiry_seconds"].GetMetric()[0].GetHistogram()
	assert.Equal(t, uint64(214), hist.GetSampleCount())

	series := families["apivideo_upload_token_expires_in_seconds"].GetMetric()
	require.Len(t, series, 214)
	truth := s.Tokens()
	for _, m := range series {
		label := m.GetLabel()[0].GetValue()
		var matched []fakeapi.TokenInfo
		for _, tk := range truth {
			assert.NotContains(t, label, tk.Token, "a full token in a label")
			if strings.HasPrefix(tk.Token, strings.TrimSuffix(label, "...")) {
				matched = append(matched, tk)
			}
		}
		require.Len(t, matched, 1, "label %q finds exactly one token", label)
		want := matched[0].ExpiresAt().Sub(at).Seconds()
		assert.InDelta(t, want, m.GetGauge().GetValue(), 2, "seconds until expiry")
	}
}

// onlyUp exposes just apivideo_up, for testutil.ToFloat64.
type onlyUp struct{ c prometheus.Collector }

func (o onlyUp) Describe(ch chan<- *prometheus.Desc) { o.c.Describe(ch) }
func (o onlyUp) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { o.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"apivideo_up"`) {
			ch <- m
		}
	}
}

func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]*dto.MetricFamily{}
	for _, mf := range families {
		out[mf.GetName()] = mf
	}
	return out
}

func names(families map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range families {
		out = append(out, n)
	}
	return out
}

// panickingSource panics on its first listing and lists normally after.
type panickingSource struct {
	stubSource
	panicked, resets int
}

func (s *panickingSource) ListUploadTokens(ctx context.Context, keep int) (*listing.TokenList, error) {
	if s.panicked == 0 {
		s.panicked++
		var known []int
		_ = known[3]
	}
	return s.stubSource.ListUploadTokens(ctx, keep)
}

func (s *panickingSource) Reset() { s.resets++ }

// TestListingPanicIsRecovered: a listing that panics ends its scrape at
// apivideo_up 0 with the stack logged and counted, the source starts
// again clean, and the next scrape is up.
func TestListingPanicIsRecovered(t *testing.T) {
	var logs bytes.Buffer
	src := &panickingSource{stubSource: stubSource{list: sampleList()}}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000, Logger: log.NewLogfmtLogger(&logs)})

	families := gather(t, c)
	assert.Equal(t, 0.0, families["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, 1.0, families["apivideo_listing_panics_total"].GetMetric()[0].GetCounter().GetValue())
	assert.NotContains(t, families, "apivideo_upload_tokens_active", "no partial counts")
	assert.Equal(t, 1, src.resets, "the source starts again from a clean state")
	assert.Contains(t, logs.String(), "listing panicked")
	assert.Contains(t, logs.String(), "index out of range", "the panic is logged")
	assert.Contains(t, logs.String(), "collector_test.go", "with its stack")

	families = gather(t, c)
	assert.Equal(t, 1.0, families["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, 1.0, families["apivideo_listing_panics_total"].GetMetric()[0].GetCounter().GetValue())
}

// Close ends the listing in progress: no listing outlives the collector.
func TestCloseEndsTheListingInProgress(t *testing.T) {
	src := &stubSource{list: sampleList(), delay: time.Minute}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	up := make(chan float64, 1)
	go func() { up <- testutil.ToFloat64(onlyUp{c.WithContext(ctx)}) }()
	require.Eventually(t, func() bool { return src.calls.Load() > 0 }, 5*time.Second, time.Millisecond)
	c.Close()
	select {
	case v := <-up:
		assert.Equal(t, 0.0, v)
	case <-time.After(30 * time.Second):
		t.Fatal("the listing went on after Close")
	}
}

// statusSource is a listing part-way through a reading of the whole list.
type statusSource struct {
	stubSource
	progress float64
}

func (s *statusSource) Status() listing.Status {
	return listing.Status{Mode: listing.ModeIncremental, SyncProgress: s.progress}
}

// The series renamed in 0.2.0 keep their old names, with the same values,
// only with DeprecatedNames.
func TestDeprecatedNames(t *testing.T) {
	renamed := map[string]string{
		"apivideo_upload_tokens_expires_in_seconds": "apivideo_upload_tokens_expiry_seconds",
		"apivideo_sync_progress":                    "apivideo_sync_progress_ratio",
	}
	for _, deprecated := range []bool{false, true} {
		t.Run(fmt.Sprintf("DeprecatedNames=%t", deprecated), func(t *testing.T) {
			src := &statusSource{stubSource: stubSource{list: sampleList()}, progress: 0.25}
			c := collector.New(src, collector.Options{
				TokenLabel: collector.LabelRedacted, MaxTokenSeries: 1000,
				Now: func() time.Time { return now }, DeprecatedNames: deprecated,
			})
			families := gather(t, c)
			for old, current := range renamed {
				require.Contains(t, families, current)
				if !deprecated {
					assert.NotContains(t, families, old)
					continue
				}
				require.Contains(t, families, old)
				assert.Equal(t, families[current].GetType(), families[old].GetType(), old)
				assert.Equal(t, families[current].GetMetric(), families[old].GetMetric(), "%s carries the values of %s", old, current)
				assert.Contains(t, families[old].GetHelp(), "Deprecated: "+current)
			}
			assert.Equal(t, 0.25, families["apivideo_sync_progress_ratio"].GetMetric()[0].GetGauge().GetValue())
		})
	}
}

// A prepared listing is published once: collected again, or after Close
// gave it back, it publishes apivideo_up 0, never a listing that may have
// been reused since.
func TestPreparedListingIsPublishedOnce(t *testing.T) {
	src := &stubSource{list: sampleList()}
	c := collector.New(src, collector.Options{MaxTokenSeries: 1000})
	p := c.Prepare(context.Background())
	first := gather(t, p)
	assert.Equal(t, 1.0, first["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.Contains(t, names(first), "apivideo_upload_tokens_active")
	again := gather(t, p)
	assert.Equal(t, 0.0, again["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.NotContains(t, names(again), "apivideo_upload_tokens_active")

	closed := c.Prepare(context.Background())
	closed.Close()
	assert.Equal(t, 0.0, gather(t, closed)["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
	assert.Equal(t, int32(2), src.calls.Load(), "one listing a Prepare")
}
