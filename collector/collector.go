// Package collector turns api.video's list of upload tokens into Prometheus
// metrics, fetching it afresh (or from a short cache) on each scrape.
package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// Source lists the account's tokens, keeping the values of the keep tokens
// first in the order of publication (listing.ComparePublication: tokens
// without expiry, oldest first, then the tokens closest to expiry);
// *listing.Lister is one. A Collector calls it once at a time, and only
// when no scrape still reads the list it returned last, so that a Source
// may reuse that list's records (see listing.TokenList).
type Source interface {
	ListUploadTokens(ctx context.Context, keep int) (*listing.TokenList, error)
}

// RateLimitSource reports the rate-limit headers of the latest reply;
// *apiclient.Client is one.
type RateLimitSource interface {
	RateLimit() (apiclient.RateLimit, bool)
}

// StatusSource reports the listing mode in use, the progress of a reading
// of the whole list, re-reads and upstream anomalies; *listing.Lister is
// one.
type StatusSource interface {
	Status() listing.Status
}

// Resetter drops a Source's kept state after a listing panicked.
type Resetter interface {
	Reset()
}

// Options configure a Collector.
type Options struct {
	// TokenLabel says what the token label of per-token series holds.
	TokenLabel LabelMode
	// MaxTokenSeries caps per-token series, of both kinds together: the
	// tokens without expiry come first, oldest first, then the tokens
	// closest to expiry.
	MaxTokenSeries int
	// Timeout bounds a scrape whose context has no deadline of its own.
	Timeout time.Duration
	// CacheTTL, when positive, lets scrapes within it reuse the last
	// successful listing instead of asking api.video again.
	CacheTTL time.Duration
	Logger   log.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// DeprecatedNames also publishes the series renamed in 0.2.0 under
	// their old names (--collector.deprecated-metric-names).
	DeprecatedNames bool
}

// DefaultMaxTokenSeries is the default cap on per-token series.
const DefaultMaxTokenSeries = 1000

// expiryBuckets run from minutes to a month, the range of upload token
// lives; the ttl histogram has the same.
var expiryBuckets = []float64{
	300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
	86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400,
}

var (
	upDesc = prometheus.NewDesc("apivideo_up",
		"1 if this scrape established the account's upload tokens, else 0.", nil, nil)
	durationDesc = prometheus.NewDesc("apivideo_scrape_duration_seconds",
		"Time this scrape spent getting the upload tokens from api.video (or the cache).", nil, nil)
	activeDesc = prometheus.NewDesc("apivideo_upload_tokens_active",
		"Active delegated upload tokens in the account.", nil, nil)
	withoutExpiryDesc = prometheus.NewDesc("apivideo_upload_tokens_without_expiry",
		"Active delegated upload tokens that never expire (ttl 0): standing upload credentials.", nil, nil)
	expiresInDesc = prometheus.NewDesc("apivideo_upload_token_expires_in_seconds",
		"Seconds until the upload token expires, for the tokens closest to expiry within --collector.max-token-series.",
		[]string{"token"}, nil)
	withoutExpiryCreatedDesc = prometheus.NewDesc("apivideo_upload_token_without_expiry_created_timestamp_seconds",
		"Unix time the upload token that never expires was created, oldest first within --collector.max-token-series.",
		[]string{"token"}, nil)
	expiryHistogramDesc = prometheus.NewDesc("apivideo_upload_tokens_expiry_seconds",
		"Seconds until each expiring upload token expires.", nil, nil)
	ttlHistogramDesc = prometheus.NewDesc("apivideo_upload_tokens_ttl_seconds",
		"Configured lifetime (ttl) of each active expiring upload token.", nil, nil)
	createdTotalDesc = prometheus.NewDesc("apivideo_upload_tokens_created_total",
		"Upload tokens that successful listings showed created while the exporter runs.", nil, nil)
	rateLimitDesc = prometheus.NewDesc("apivideo_ratelimit_limit",
		"Requests per minute that api.video allows, from the X-RateLimit-Limit header of the latest reply.", nil, nil)
	rateRemainingDesc = prometheus.NewDesc("apivideo_ratelimit_remaining",
		"Requests left in the current minute, from the X-RateLimit-Remaining header of the latest reply.", nil, nil)
	syncProgressDesc = prometheus.NewDesc("apivideo_sync_progress_ratio",
		"Share of a reading of the whole token list that spans scrapes done, from 0 to 1.", nil, nil)
	listingModeDesc = prometheus.NewDesc("apivideo_listing_mode",
		"1 for the listing mode in use, full or incremental, else 0.", []string{"mode"}, nil)
	rereadsDesc = prometheus.NewDesc("apivideo_listing_rereads_total",
		"Readings of the whole token list that the incremental listing's kept state could not avoid, by reason.", []string{"reason"}, nil)
	anomalyDesc = prometheus.NewDesc("apivideo_upstream_anomaly",
		"1 once api.video's list replies were seen to depart from the documented contract this way, else 0.", []string{"anomaly"}, nil)
	panicsDesc = prometheus.NewDesc("apivideo_listing_panics_total",
		"Listings that panicked, each ending its scrape at apivideo_up 0 and starting the next listing clean.", nil, nil)
	listingRequestsDesc = prometheus.NewDesc("apivideo_listing_requests",
		"List requests the latest successful listing made.", nil, nil)
)

// The names of 0.1, published beside the new ones with
// Options.DeprecatedNames until 0.3.0 removes them, so that dashboards and
// alerts can move over within one release.
var (
	deprecatedExpiryHistogramDesc = prometheus.NewDesc("apivideo_upload_tokens_expires_in_seconds",
		"Deprecated: apivideo_upload_tokens_expiry_seconds under its name before 0.2.0; removed in 0.3.0.", nil, nil)
	deprecatedSyncProgressDesc = prometheus.NewDesc("apivideo_sync_progress",
		"Deprecated: apivideo_sync_progress_ratio under its name before 0.2.0; removed in 0.3.0.", nil, nil)
)

// Collector is a prometheus.Collector for the account's upload tokens.
// Concurrent scrapes share one listing.
//
// A listing's records are reused by the next listing (see
// listing.TokenList), so a scrape holds a lease on the listing it
// publishes, taken before it can see the listing, and the next listing
// starts only once every lease on the last one is given back.
type Collector struct {
	src  Source
	opts Options

	// mu guards listing, cached, leases and drained.
	mu sync.Mutex
	// listing is the listing in progress, if any.
	listing *flight
	// cached is the last listing, kept for CacheTTL while no other
	// listing has started.
	cached *listing.TokenList
	// leases counts the scrapes publishing the last listing; drained,
	// when set, is closed when that falls to 0.
	leases  int
	drained chan struct{}

	// created counts the tokens the listings show being created.
	created creations
	// panics counts the listings that panicked.
	panics atomic.Uint64

	// life is the parent of every listing's context; Close cancels it, so
	// that no listing outlives the collector.
	life     context.Context
	shutdown context.CancelFunc
}

// flight is a listing that the scrapes waiting for it share.
type flight struct {
	done chan struct{} // closed when list and err are set
	list *listing.TokenList
	err  error
	// waiting counts the scrapes waiting for the listing: each gets a
	// lease on it when it succeeds.
	waiting int
	// shared is the listing's deadline, which each scrape that joins moves
	// to its own when that is later; nil for a listing without one.
	shared *sharedDeadline
}

// New returns a Collector reading from src.
func New(src Source, opts Options) *Collector {
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	life, shutdown := context.WithCancel(context.Background())
	return &Collector{src: src, opts: opts, life: life, shutdown: shutdown}
}

// Close ends the listing in progress, if any, and fails the scrapes that
// come after: the collector is no longer served.
func (c *Collector) Close() { c.shutdown() }

// Describe sends every descriptor the collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, durationDesc, activeDesc, withoutExpiryDesc,
		expiresInDesc, withoutExpiryCreatedDesc, expiryHistogramDesc, ttlHistogramDesc, createdTotalDesc,
		rateLimitDesc, rateRemainingDesc, syncProgressDesc, listingRequestsDesc, listingModeDesc, rereadsDesc,
		anomalyDesc, panicsDesc} {
		ch <- d
	}
	if c.opts.DeprecatedNames {
		ch <- deprecatedExpiryHistogramDesc
		ch <- deprecatedSyncProgressDesc
	}
}

// Collect scrapes with the collector's own timeout.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.collect(context.Background(), ch)
}

// WithContext returns a collector whose scrapes run under ctx, so that one
// HTTP request's deadline bounds the scrape it triggers.
func (c *Collector) WithContext(ctx context.Context) prometheus.Collector {
	return scoped{c: c, ctx: ctx}
}

type scoped struct {
	c   *Collector
	ctx context.Context
}

func (s scoped) Describe(ch chan<- *prometheus.Desc) { s.c.Describe(ch) }
func (s scoped) Collect(ch chan<- prometheus.Metric) { s.c.collect(s.ctx, ch) }

func (c *Collector) collect(ctx context.Context, ch chan<- prometheus.Metric) {
	c.Prepare(ctx).Collect(ch)
}

// Prepared is a scrape's listing, ready to be published: see Prepare.
type Prepared struct {
	c       *Collector
	list    *listing.TokenList
	release func()
	err     error
	took    time.Duration
	done    sync.Once
}

// errPublished is a Prepared collected a second time: its listing may have
// been reused since.
var errPublished = errors.New("this scrape's listing was already published")

// Prepare lists the tokens for one scrape under ctx, as Collect does, and
// returns a collector that publishes that listing once. A scrape can so
// list first, waiting on api.video, and then gather and encode under a
// limit that such waits should not hold. Close gives the listing back
// when the scrape does not collect it.
func (c *Collector) Prepare(ctx context.Context) *Prepared {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	start := time.Now()
	p := &Prepared{c: c}
	p.list, p.release, p.err = c.fetch(ctx)
	p.took = time.Since(start)
	return p
}

// Close gives back the listing, if Collect did not.
func (p *Prepared) Close() {
	p.done.Do(func() {
		if p.release != nil {
			p.release()
		}
	})
}

// Describe describes the collector's metrics.
func (p *Prepared) Describe(ch chan<- *prometheus.Desc) { p.c.Describe(ch) }

// Collect publishes the listing, or apivideo_up 0 when it failed.
func (p *Prepared) Collect(ch chan<- prometheus.Metric) {
	c, err := p.c, p.err
	published := false
	p.done.Do(func() {
		if err == nil {
			c.publish(p.list, p.release, ch)
			published = true
		}
	})
	if err == nil && !published {
		err = errPublished
	}
	ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, p.took.Seconds())
	if rl, ok := c.src.(RateLimitSource); ok {
		if r, known := rl.RateLimit(); known {
			ch <- prometheus.MustNewConstMetric(rateLimitDesc, prometheus.GaugeValue, float64(r.Limit))
			ch <- prometheus.MustNewConstMetric(rateRemainingDesc, prometheus.GaugeValue, float64(r.Remaining))
		}
	}
	if s, ok := c.src.(StatusSource); ok {
		emitStatus(s.Status(), c.opts.DeprecatedNames, ch)
	}
	ch <- prometheus.MustNewConstMetric(panicsDesc, prometheus.CounterValue, float64(c.panics.Load()))
	// The counter is the exporter's own tally, true whether or not this
	// scrape could read api.video: a counter that vanished with every
	// failed scrape would break rate() and the dashboards around it.
	ch <- prometheus.MustNewConstMetric(createdTotalDesc, prometheus.CounterValue, float64(c.created.total()))
	if err != nil {
		level.Error(c.opts.Logger).Log("msg", "scrape failed, publishing apivideo_up 0", "err", err)
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
	}
}

// fetch returns a listing, with a lease on it that the caller gives back
// with release once done with the listing: from the cache when it is
// fresh, else from the one listing in flight, which the first scrape to
// arrive starts and every concurrent scrape shares. The shared listing
// runs to the latest deadline of the scrapes that joined it, even if they
// go away, so that a client announcing a tiny scrape timeout cannot fail
// the scrapes that join its listing; each scrape waits no longer than its
// own deadline. A scrape that joined a listing which still ran out of time
// fetches once more under its own.
func (c *Collector) fetch(ctx context.Context) (list *listing.TokenList, release func(), err error) {
	for retried := false; ; retried = true {
		c.mu.Lock()
		if cached := c.cachedList(); cached != nil {
			c.leases++
			c.mu.Unlock()
			return cached, c.release, nil
		}
		f, started := c.listing, false
		if f == nil {
			f, started = c.start(ctx), true
		} else if deadline, ok := ctx.Deadline(); ok && f.shared != nil {
			f.shared.extend(deadline)
		}
		f.waiting++
		c.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			c.mu.Lock()
			select {
			case <-f.done:
				// The listing came back meanwhile, with a lease for
				// this scrape if it succeeded.
				if f.err == nil {
					c.releaseLocked()
				}
			default:
				f.waiting--
			}
			c.mu.Unlock()
			return nil, nil, fmt.Errorf("waiting for api.video: %w", ctx.Err())
		}
		if f.err == nil {
			return f.list, c.release, nil
		}
		if !retried && !started && errors.Is(f.err, context.DeadlineExceeded) && ctx.Err() == nil {
			continue
		}
		return nil, nil, f.err
	}
}

// cachedList returns the cached listing while it may be used, else nil; c.mu
// is held.
func (c *Collector) cachedList() *listing.TokenList {
	if c.cached != nil && c.opts.Now().Sub(c.cached.FetchedAt) < c.opts.CacheTTL {
		return c.cached
	}
	return nil
}

// start starts a listing under ctx's deadline; c.mu is held.
func (c *Collector) start(ctx context.Context) *flight {
	f := &flight{done: make(chan struct{})}
	c.listing = f
	// The new listing reuses the last one's records: from now on no
	// scrape may take the last listing up.
	c.cached = nil
	// The listing keeps the scrape's values, not its cancellation: it
	// ends at the shared deadline, or when the collector is closed.
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	unhook := context.AfterFunc(c.life, cancel)
	if deadline, ok := ctx.Deadline(); ok {
		f.shared = newSharedDeadline(lctx, deadline)
		lctx = f.shared
	}
	go func() {
		defer func() {
			if f.shared != nil {
				f.shared.stop()
			}
			unhook()
			cancel()
		}()
		list, err := c.list(lctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.listing = nil
		f.list, f.err = list, err
		if err == nil {
			c.leases += f.waiting
			if c.opts.CacheTTL > 0 {
				c.cached = list
			}
		}
		close(f.done)
	}()
	return f
}

// list makes a listing once every scrape publishing the last one is done.
func (c *Collector) list(ctx context.Context) (*listing.TokenList, error) {
	var drained chan struct{}
	c.mu.Lock()
	if c.leases > 0 {
		drained = make(chan struct{})
		c.drained = drained
	}
	c.mu.Unlock()
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the scrapes publishing the last listing: %w", ctx.Err())
		}
	}
	list, err := c.listRecovering(ctx)
	if err != nil {
		return nil, err
	}
	// Once a listing, here rather than at each scrape, so that a cached
	// listing is not counted again.
	c.created.observe(list.Records())
	return list, nil
}

// listRecovering asks the source for a listing. A listing that panics is
// an error like any other for the scrape: it is logged with its stack,
// counted, and the source starts again from a clean state.
func (c *Collector) listRecovering(ctx context.Context) (list *listing.TokenList, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &listing.PanicError{Value: v, Stack: debug.Stack()}
		}
		if p, ok := errors.AsType[*listing.PanicError](err); ok {
			c.panics.Add(1)
			level.Error(c.opts.Logger).Log("msg", "listing panicked; starting again from a clean state", "panic", fmt.Sprint(p.Value), "stack", string(p.Stack))
			if r, ok := c.src.(Resetter); ok {
				r.Reset()
			}
		}
	}()
	return c.src.ListUploadTokens(ctx, c.keep())
}

// release gives back a lease on the last listing.
func (c *Collector) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseLocked()
}

func (c *Collector) releaseLocked() {
	c.leases--
	if c.leases == 0 && c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
}

// keep is how many token values a listing must keep for the per-token series.
func (c *Collector) keep() int {
	if c.opts.TokenLabel == LabelNone {
		return 0
	}
	return c.opts.MaxTokenSeries
}

// publish publishes a listing, then gives back the scrape's lease on it,
// even if publishing panics (the registry recovers from that).
func (c *Collector) publish(list *listing.TokenList, release func(), ch chan<- prometheus.Metric) {
	defer release()
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(listingRequestsDesc, prometheus.GaugeValue, float64(list.Requests))
	c.emitTokens(list, ch)
}

// emitTokens publishes the counts, the histograms and the per-token
// series. Seconds until expiry are computed now, so that a cached listing
// still gives exact values.
func (c *Collector) emitTokens(list *listing.TokenList, ch chan<- prometheus.Metric) {
	now := c.opts.Now()
	expiresIn, ttl := newHistogram(), newHistogram()
	var withoutExpiry uint64
	for r := range list.Records() {
		if r.NeverExpires() {
			withoutExpiry++
			continue
		}
		// A token that expired since the listing (a cached one, say) is no
		// longer active.
		if !r.ActiveAt(now) {
			continue
		}
		expiresIn.observe(r.ExpiresAt().Sub(now).Seconds())
		ttl.observe(r.TTL().Seconds())
	}
	ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, float64(withoutExpiry+expiresIn.count))
	ch <- prometheus.MustNewConstMetric(withoutExpiryDesc, prometheus.GaugeValue, float64(withoutExpiry))
	ch <- expiresIn.metric(expiryHistogramDesc)
	if c.opts.DeprecatedNames {
		ch <- expiresIn.metric(deprecatedExpiryHistogramDesc)
	}
	ch <- ttl.metric(ttlHistogramDesc)

	// The listing kept the values of the tokens first in the order of
	// publication: any token it did not keep comes after all of those.
	published := make([]apiclient.Token, 0, len(list.Values))
	for _, t := range list.Values {
		if t.ActiveAt(now) {
			published = append(published, t)
		}
	}
	slices.SortFunc(published, func(a, b apiclient.Token) int {
		return cmp.Or(listing.ComparePublication(a.Record, b.Record), strings.Compare(a.Value, b.Value))
	})
	published = published[:min(len(published), c.keep())]
	values := make([]string, len(published))
	for i, t := range published {
		values[i] = t.Value
	}
	labels := Labels(c.opts.TokenLabel, values)
	dropped := 0
	for i, t := range published {
		desc, value := expiresInDesc, t.ExpiresAt().Sub(now).Seconds()
		if t.NeverExpires() {
			desc, value = withoutExpiryCreatedDesc, float64(t.Created)
		}
		// A label Labels could not make valid, or one the registry would
		// still refuse, drops that series, never the whole exposition.
		m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, value, labels[i])
		if labels[i] == "" || err != nil {
			dropped++
			continue
		}
		ch <- m
	}
	if dropped > 0 {
		// The tokens themselves are not logged: they are credentials.
		level.Warn(c.opts.Logger).Log("msg", "dropped per-token series whose token cannot be a label value (not valid UTF-8, or repeated)",
			"dropped", dropped, "token_label", c.opts.TokenLabel)
	}
}

// emitStatus publishes the listing's mode, progress, re-reads and the
// anomalies seen, every label value always, so that rates and alerts see
// a series from the start.
func emitStatus(s listing.Status, deprecatedNames bool, ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(syncProgressDesc, prometheus.GaugeValue, s.SyncProgress)
	if deprecatedNames {
		ch <- prometheus.MustNewConstMetric(deprecatedSyncProgressDesc, prometheus.GaugeValue, s.SyncProgress)
	}
	for _, m := range []listing.Mode{listing.ModeFull, listing.ModeIncremental} {
		ch <- prometheus.MustNewConstMetric(listingModeDesc, prometheus.GaugeValue, boolValue(s.Mode == m), m.String())
	}
	for _, reason := range listing.Reasons() {
		ch <- prometheus.MustNewConstMetric(rereadsDesc, prometheus.CounterValue, float64(s.Rereads[reason]), reason)
	}
	for _, a := range listing.Anomalies() {
		ch <- prometheus.MustNewConstMetric(anomalyDesc, prometheus.GaugeValue, boolValue(s.Anomalies[a]), string(a))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// histogram accumulates a const histogram over expiryBuckets.
type histogram struct {
	counts []uint64
	count  uint64
	sum    float64
}

func newHistogram() *histogram { return &histogram{counts: make([]uint64, len(expiryBuckets))} }

func (h *histogram) observe(v float64) {
	h.count++
	h.sum += v
	for i, le := range expiryBuckets {
		if v <= le {
			h.counts[i]++
		}
	}
}

func (h *histogram) metric(desc *prometheus.Desc) prometheus.Metric {
	buckets := make(map[float64]uint64, len(expiryBuckets))
	for i, le := range expiryBuckets {
		buckets[le] = h.counts[i]
	}
	return prometheus.MustNewConstHistogram(desc, h.count, h.sum, buckets)
}
