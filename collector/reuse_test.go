package collector_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// reusingSource lists its listings in turn (the last one over and over)
// into one array of records that it fills again at each call, as
// apiclient's listers do: a full listing refills its spare array, an
// incremental one edits its records in place, and a shorter listing
// leaves a zeroed tail behind, as slices.DeleteFunc does. A zeroed record
// reads as a token without expiry.
type reusingSource struct {
	now      func() time.Time
	listings [][]apiclient.Token

	mu      sync.Mutex
	records []apiclient.Record
	calls   atomic.Int32

	// When held is set, the first RateLimit call closes it and waits for
	// release.
	held, release chan struct{}
	holding       atomic.Bool
}

func (s *reusingSource) ListUploadTokens(context.Context, int) (*listing.TokenList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tokens := s.listings[min(int(s.calls.Add(1))-1, len(s.listings)-1)]
	previous := len(s.records)
	s.records = s.records[:0]
	for _, t := range tokens {
		s.records = append(s.records, t.Record)
	}
	if previous > len(s.records) {
		clear(s.records[len(s.records):previous])
	}
	list := listing.NewTokenList(s.records, slices.Clone(tokens), s.now())
	list.Requests = 1
	return list, nil
}

func (s *reusingSource) RateLimit() (apiclient.RateLimit, bool) {
	if s.held != nil && s.holding.CompareAndSwap(false, true) {
		close(s.held)
		<-s.release
	}
	return apiclient.RateLimit{Limit: 500, Remaining: 400}, true
}

// expiring is n tokens that expire in the given time.
func expiring(prefix string, n int, in time.Duration) []apiclient.Token {
	var out []apiclient.Token
	for i := range n {
		out = append(out, tok(fmt.Sprintf("%s%021d", prefix, i), in))
	}
	return out
}

// Two listings of expiring tokens only: the second is shorter, so that
// the first one's records, read after the second was made, would show
// tokens without expiry.
var (
	firstListing  = expiring("toA", 5, time.Hour)
	secondListing = expiring("toB", 2, 2*time.Hour)
)

// collectFamilies gathers c, as gather does, but returns the error, for
// use off the test's goroutine.
func collectFamilies(c prometheus.Collector) (map[string]*dto.MetricFamily, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	families, err := reg.Gather()
	out := map[string]*dto.MetricFamily{}
	for _, mf := range families {
		out[mf.GetName()] = mf
	}
	return out, err
}

func gauge(families map[string]*dto.MetricFamily, name string) float64 {
	return families[name].GetMetric()[0].GetGauge().GetValue()
}

// assertListing checks that a scrape published exactly the tokens of
// listing, all of which expire.
func assertListing(t *testing.T, families map[string]*dto.MetricFamily, listing []apiclient.Token, msg string) {
	t.Helper()
	require.Equal(t, 1.0, gauge(families, "apivideo_up"), msg)
	assert.Equal(t, float64(len(listing)), gauge(families, "apivideo_upload_tokens_active"), msg)
	assert.Equal(t, 0.0, gauge(families, "apivideo_upload_tokens_without_expiry"), msg)
	assert.Equal(t, uint64(len(listing)), families["apivideo_upload_tokens_expiry_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(), msg)
	var want, got []string
	for _, tk := range listing {
		want = append(want, tk.Value)
	}
	for _, m := range families[expiresInName].GetMetric() {
		got = append(got, m.GetLabel()[0].GetValue())
	}
	assert.ElementsMatch(t, want, got, msg)
}

// TestScrapeHeldAfterItsListingPublishesThatListing holds a scrape in
// RateLimit, after its listing came back, while another scrape makes the
// next listing into the same records: the first scrape still publishes
// its own listing, and the second does not wait for it.
func TestScrapeHeldAfterItsListingPublishesThatListing(t *testing.T) {
	clk := testsupport.NewClock(now)
	src := &reusingSource{now: clk.Now, listings: [][]apiclient.Token{firstListing, secondListing},
		held: make(chan struct{}), release: make(chan struct{})}
	c := collector.New(src, collector.Options{TokenLabel: collector.LabelFull, MaxTokenSeries: 100, Now: clk.Now})

	type result struct {
		families map[string]*dto.MetricFamily
		err      error
	}
	first := make(chan result, 1)
	go func() {
		f, err := collectFamilies(c)
		first <- result{f, err}
	}()
	<-src.held

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	second := gather(t, c.WithContext(ctx))
	assertListing(t, second, secondListing, "the second scrape, which a held scrape does not hold back")
	assert.Equal(t, int32(2), src.calls.Load())

	close(src.release)
	r := <-first
	require.NoError(t, r.err)
	assertListing(t, r.families, firstListing, "the held scrape publishes its own listing")
}

// gated forwards the first metric of a scrape, then stops reading the
// scrape's metrics until open is closed: the scrape is held in the middle
// of publishing.
type gated struct {
	c           prometheus.Collector
	first, open chan struct{}
}

func (g gated) Describe(ch chan<- *prometheus.Desc) { g.c.Describe(ch) }
func (g gated) Collect(ch chan<- prometheus.Metric) {
	inner := make(chan prometheus.Metric)
	go func() { g.c.Collect(inner); close(inner) }()
	n := 0
	for m := range inner {
		ch <- m
		if n++; n == 1 {
			close(g.first)
			<-g.open
		}
	}
}

// TestNoListingWhileAScrapePublishesThePreviousOne holds a scrape in the
// middle of publishing a listing, fetched or cached, while another scrape
// comes: the next listing, which would reuse the records being published,
// does not start until the first scrape is done; the second scrape says
// apivideo_up 0 when its deadline comes first, and the first publishes its
// listing whole.
func TestNoListingWhileAScrapePublishesThePreviousOne(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache time.Duration
	}{
		{"fetched", 0},
		{"cached", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testsupport.NewClock(now)
			src := &reusingSource{now: clk.Now, listings: [][]apiclient.Token{firstListing, secondListing}}
			c := collector.New(src, collector.Options{TokenLabel: collector.LabelFull, MaxTokenSeries: 100, CacheTTL: tc.cache, Now: clk.Now})
			if tc.cache > 0 {
				assertListing(t, gather(t, c), firstListing, "the listing that the cache keeps")
			}

			g := gated{c: c, first: make(chan struct{}), open: make(chan struct{})}
			type result struct {
				families map[string]*dto.MetricFamily
				err      error
			}
			first := make(chan result, 1)
			go func() {
				f, err := collectFamilies(g)
				first <- result{f, err}
			}()
			<-g.first
			clk.Advance(2 * tc.cache) // the cache, if any, is stale

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			second := gather(t, c.WithContext(ctx))
			assert.Equal(t, int32(1), src.calls.Load(), "no listing while a scrape publishes the previous one")
			assert.Equal(t, 0.0, gauge(second, "apivideo_up"))
			assert.NotContains(t, second, "apivideo_upload_tokens_active")

			close(g.open)
			r := <-first
			require.NoError(t, r.err)
			assertListing(t, r.families, firstListing, "the held scrape publishes its own listing")

			// The second scrape's listing may still have started after
			// all, once its wait for the first scrape ended.
			assertListing(t, gather(t, c), secondListing, "the next scrape")
		})
	}
}

// TestConcurrentScrapesOfReusedRecords runs scrapes at once, some from
// the cache, some sharing a listing, some starting the next one, with
// listings that reuse one array of records: each publishes one listing
// whole.
func TestConcurrentScrapesOfReusedRecords(t *testing.T) {
	listings := [][]apiclient.Token{
		expiring("toA", 5, time.Hour), expiring("toB", 2, 2*time.Hour), expiring("toC", 7, 3*time.Hour),
	}
	sizes := []float64{5, 2, 7}
	var script [][]apiclient.Token
	for range 10 {
		script = append(script, listings...)
	}
	var ticks atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(ticks.Load()) * time.Millisecond) }
	src := &reusingSource{now: clock, listings: script}
	c := collector.New(src, collector.Options{TokenLabel: collector.LabelRedacted, MaxTokenSeries: 100, CacheTTL: 3 * time.Millisecond, Now: clock})

	var wg sync.WaitGroup
	errs := make(chan error, 8*40)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				ticks.Add(1)
				f, err := collectFamilies(c)
				switch {
				case err != nil:
					errs <- err
				case gauge(f, "apivideo_up") != 1:
					errs <- errors.New("apivideo_up 0")
				default:
					active := gauge(f, "apivideo_upload_tokens_active")
					hist := f["apivideo_upload_tokens_expiry_seconds"].GetMetric()[0].GetHistogram().GetSampleCount()
					if w := gauge(f, "apivideo_upload_tokens_without_expiry"); w != 0 || !slices.Contains(sizes, active) || float64(hist) != active ||
						len(f[expiresInName].GetMetric()) != int(active) {
						errs <- fmt.Errorf("not one listing: active %v, without expiry %v, expiring %d, series %d", active, w, hist, len(f[expiresInName].GetMetric()))
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Greater(t, src.calls.Load(), int32(1))
}

// slowSource is a reusingSource whose listings take a while.
type slowSource struct {
	reusingSource
	delay   time.Duration
	started atomic.Int32
}

func (s *slowSource) ListUploadTokens(ctx context.Context, keep int) (*listing.TokenList, error) {
	s.started.Add(1)
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.reusingSource.ListUploadTokens(ctx, keep)
}

// TestScrapesThatGoAwayHoldNothingBack checks that a scrape which stops
// waiting for a shared listing, or whose publication panics, leaves no
// lease behind: the next listing starts at once, where a lease left behind
// would keep it waiting until the scrape's deadline, apivideo_up 0.
func TestScrapesThatGoAwayHoldNothingBack(t *testing.T) {
	var panics atomic.Bool
	clock := func() time.Time {
		if panics.Load() {
			panic("clock")
		}
		return now
	}
	src := &slowSource{reusingSource: reusingSource{now: func() time.Time { return now },
		listings: [][]apiclient.Token{firstListing, secondListing}}, delay: 200 * time.Millisecond}
	c := collector.New(src, collector.Options{TokenLabel: collector.LabelFull, MaxTokenSeries: 100, Now: clock})
	scrape := func(timeout time.Duration) (map[string]*dto.MetricFamily, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return collectFamilies(c.WithContext(ctx))
	}

	starter := make(chan map[string]*dto.MetricFamily, 1)
	go func() {
		f, _ := scrape(5 * time.Second)
		starter <- f
	}()
	for src.started.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	f, err := scrape(20 * time.Millisecond) // joins, and goes before the listing is done
	require.NoError(t, err)
	assert.Equal(t, 0.0, gauge(f, "apivideo_up"), "the scrape that went away")
	assertListing(t, <-starter, firstListing, "the scrape that started the listing")

	// Publishing panics (the registry recovers): the lease is given back.
	panics.Store(true)
	_, err = scrape(5 * time.Second)
	require.ErrorContains(t, err, "panic")
	panics.Store(false)

	f, err = scrape(2 * time.Second)
	require.NoError(t, err)
	assertListing(t, f, secondListing, "the next listing, which nothing held back")
}
