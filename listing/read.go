package listing

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

const (
	// pageSize is the largest page api.video serves: the fewest requests.
	pageSize = apiclient.MaxPageSize
	// step is how far a window moves when it must look lower or higher: a
	// page less a margin, so that one try overlaps the one before.
	step = pageSize - 10
	// maxTokens bounds the list a listing accepts, so that a garbled total
	// cannot plan millions of requests: ten million tokens, 100,000 pages,
	// 400 MB kept by an incremental listing.
	maxTokens = 100_000 * pageSize
)

// run is one page read: the tokens at positions [start, start+len(tokens))
// of the list at one instant between sent and received.
type run struct {
	start  int
	size   int
	tokens []apiclient.Token
	// total is the itemsTotal the page gave.
	total int
	// atEnd means no token lay past the run when it was read: the page was
	// short, or past the end of the list.
	atEnd bool
	// pastEnd means the page was past the end of the list (404, 400, an
	// empty page, or the last page again): it holds no tokens.
	pastEnd        bool
	sent, received time.Time
	// clock bounds api.video's clock against ours when the run was read.
	clock clockBounds
}

func (r *run) empty() bool { return len(r.tokens) == 0 }

// first and last are the oldest and newest createdAt seconds the run holds;
// the run must not be empty.
func (r *run) first() uint32 { return r.tokens[0].Created }
func (r *run) last() uint32  { return r.tokens[len(r.tokens)-1].Created }

// holds reports whether the run holds the token id.
func (r *run) holds(id uint64) bool {
	for _, t := range r.tokens {
		if t.ID() == id {
			return true
		}
	}
	return false
}

// linked reports whether two runs share a token: then every token that
// stayed in the list while both were read, and sorts between the oldest of
// one and the newest of the other, is in one of them.
func linked(a, b *run) bool {
	for _, t := range a.tokens {
		if b.holds(t.ID()) {
			return true
		}
	}
	return false
}

// errPaused ends a scrape whose share of requests or time is spent; a
// listing that pauses goes on at the next scrape.
var errPaused = errors.New("request budget or time of this scrape spent")

// reader reads windows of the list for one scrape. It is safe for
// concurrent use.
type reader struct {
	pager       Pager
	now         func() time.Time
	concurrency int
	// budget, when positive, caps this scrape's requests; reserve is the
	// time before the deadline at which no new request starts.
	budget  int
	reserve time.Duration
	// sustained, when positive, is the budget every scrape has, whatever
	// is left of the current minute (see Lister.sustained).
	sustained int
	// limits, when set, gives budget and sustained once api.video has
	// sent its rate-limit headers: the first scrape learns them from its
	// first reply. mu guards budget and sustained.
	limits  func() (budget, sustained int)
	onIssue func(Anomaly)
	// started is when the scrape began: a run received before it may
	// have moved since by any number of positions.
	started time.Time
	// clock bounds api.video's clock against ours for this scrape; dates,
	// when set, takes the Date of each reply to narrow it for the next.
	clock clockBounds
	dates *clockEstimate
	// slots bounds the requests in flight to concurrency, however many
	// goroutines read.
	slots chan struct{}

	mu       sync.Mutex
	requests int
	latency  time.Duration // the longest a request of this scrape took
}

// planned is the budget a full listing must fit to be made: the lesser
// of this scrape's and the one every scrape has, so that a full listing on
// every scrape stays within the share of the rate limit, rather than
// spending a fresh minute's over a few scrapes; 0 for no bound.
func (rd *reader) planned() int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.lesserBudget()
}

// lesserBudget is the lesser of the scrape's budget and the one every
// scrape has; 0 for no bound; rd.mu is held.
func (rd *reader) lesserBudget() int {
	rd.learnLimits()
	if rd.sustained > 0 && (rd.budget <= 0 || rd.sustained < rd.budget) {
		return rd.sustained
	}
	return rd.budget
}

// learnLimits sets the budgets from the rate-limit headers, until they
// are known; rd.mu is held.
func (rd *reader) learnLimits() {
	if rd.budget == 0 && rd.limits != nil {
		rd.budget, rd.sustained = rd.limits()
	}
}

// read fetches a window of the list that covers positions lo to hi, or as
// much of the middle of them as a page can (see window).
func (rd *reader) read(ctx context.Context, lo, hi int) (*run, error) {
	number, size := window(lo, hi)
	return rd.page(ctx, number, size)
}

// page fetches one page and checks what the listings rely on: its size,
// its createdAt order, and where the end of the list lies.
func (rd *reader) page(ctx context.Context, number, size int) (*run, error) {
	return rd.fetch(ctx, number, size, true)
}

// pageUnordered fetches a page of pageSize without requiring createdAt order.
func (rd *reader) pageUnordered(ctx context.Context, number int) (*run, error) {
	return rd.fetch(ctx, number, pageSize, false)
}

func (rd *reader) fetch(ctx context.Context, number, size int, sorted bool) (*run, error) {
	r := &run{start: (number - 1) * size, size: size, clock: rd.clock}
	// The slot first: a request that waited for one may have waited
	// past the scrape's time.
	select {
	case rd.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := rd.spend(ctx); err != nil {
		<-rd.slots
		return nil, err
	}
	r.sent = rd.now()
	p, err := rd.pager.Page(ctx, number, size)
	r.received = rd.now()
	<-rd.slots
	rd.mu.Lock()
	rd.latency = max(rd.latency, r.received.Sub(r.sent))
	rd.mu.Unlock()
	switch {
	case number > 1 && apiclient.PastEnd(err):
		r.atEnd, r.pastEnd, r.total = true, true, -1
		return r, nil
	case err != nil:
		return nil, err
	case len(p.Tokens) > size:
		return nil, fmt.Errorf("%w: page %d holds %d tokens, more than its size %d", apiclient.ErrMalformedResponse, number, len(p.Tokens), size)
	case p.PageSize != 0 && p.PageSize != size:
		return nil, fmt.Errorf("%w: asked for pages of %d, got pages of %d", apiclient.ErrMalformedResponse, size, p.PageSize)
	case p.ItemsTotal > maxTokens:
		return nil, fmt.Errorf("%w: itemsTotal %d is above %d", apiclient.ErrMalformedResponse, p.ItemsTotal, maxTokens)
	}
	r.total = p.ItemsTotal
	if rd.dates != nil {
		rd.dates.observe(r.sent, r.received, p.Date)
	}
	if p.CurrentPage != 0 && p.CurrentPage != number || number > 1 && len(p.Tokens) == 0 {
		// The last page again, or an empty one: the list ends before it.
		r.atEnd, r.pastEnd = true, true
		return r, nil
	}
	for i := 1; sorted && i < len(p.Tokens); i++ {
		if p.Tokens[i].Created < p.Tokens[i-1].Created {
			rd.onIssue(AnomalyUnsorted)
			return nil, fmt.Errorf("%w: page %d is not in createdAt order: api.video ignored sortBy", ErrUpstream, number)
		}
	}
	// The values stay substrings of the page's one string: runs live no
	// longer than a scrape, and what is kept is copied into entries.
	r.tokens = p.Tokens
	short, end := len(r.tokens) < size, r.start+len(r.tokens)
	// A short page says where the list ends, and a full one that a list
	// holds more than its total: either way that total lags.
	lags := short && end != r.total || end > r.total
	if lags {
		rd.onIssue(AnomalyTotalsLag)
	}
	// Only the page itself says that the list ends there: a total that
	// lags can put the end at a full page with more tokens past it.
	r.atEnd = short
	return r, nil
}

// spend takes one request from the scrape's budget.
func (rd *reader) spend(ctx context.Context) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	rd.learnLimits()
	if rd.budget > 0 && rd.requests >= rd.budget {
		return fmt.Errorf("%w (%d requests)", errPaused, rd.budget)
	}
	if deadline, ok := ctx.Deadline(); ok && deadline.Sub(rd.now()) < rd.reserve+2*rd.latency {
		return fmt.Errorf("%w (%s left before the deadline)", errPaused, deadline.Sub(rd.now()).Round(time.Millisecond))
	}
	rd.requests++
	return nil
}

// capacity is how many pages, read in segments, the scrape can still
// afford: its requests left, less a re-read where each segment meets the
// one below it, and the rounds of requests that fit before the deadline.
func (rd *reader) capacity(ctx context.Context) int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	pages := maxTokens / pageSize
	rd.learnLimits()
	if rd.budget > 0 {
		left := rd.budget - rd.requests
		pages = max(left-(left+minSegment-1)/minSegment, 1)
	}
	if deadline, ok := ctx.Deadline(); ok && rd.latency > 0 {
		rounds := int((deadline.Sub(rd.now()) - rd.reserve - 2*rd.latency) / rd.latency)
		pages = min(pages, max(rounds*rd.concurrency, 1))
	}
	return pages
}

// slowest is the longest a request of this scrape took.
func (rd *reader) slowest() time.Duration {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.latency
}

// sustainedLeft is how many requests are left of the share every scrape
// has, or of the scrape's budget when that is less; 0 for no bound.
func (rd *reader) sustainedLeft() int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	budget := rd.lesserBudget()
	if budget <= 0 {
		return 0
	}
	return max(budget-rd.requests, 1)
}

// left is how many requests the scrape may still make; 0 for no bound.
func (rd *reader) left() int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.learnLimits()
	if rd.budget <= 0 {
		return 0
	}
	return max(rd.budget-rd.requests, 1)
}

func (rd *reader) spent() int {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.requests
}

// recovering returns fn with a panic turned into a *PanicError: a panic
// in a goroutine cannot be recovered from outside it, and would end the
// process.
func recovering(fn func() error) func() error {
	return func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
		return fn()
	}
}

// readFrom reads the page that holds position lo and reaches furthest
// above it: a window that must hold what lies just above lo, and is read
// on upwards when that is not enough.
func (rd *reader) readFrom(ctx context.Context, lo int) (*run, error) {
	number, size := windowFrom(lo)
	return rd.page(ctx, number, size)
}

// windowFrom returns the page number and size, of at most pageSize, whose
// page holds position lo and ends furthest above it.
func windowFrom(lo int) (number, size int) {
	lo = max(lo, 0)
	top := -1
	for s := pageSize; s >= pageSize/2; s-- {
		if end := (lo/s+1)*s - 1; end > top {
			number, size, top = lo/s+1, s, end
		}
	}
	return number, size
}

// readBelow reads the page that holds position end and starts furthest
// below it: where the list ends at end, a short page.
func (rd *reader) readBelow(ctx context.Context, end int) (*run, error) {
	number, size := windowBelow(end)
	return rd.page(ctx, number, size)
}

// windowBelow returns the page number and size, of at most pageSize, whose
// page holds position end and starts furthest below it.
func windowBelow(end int) (number, size int) {
	end = max(end, 0)
	low := end + 1
	for s := pageSize; s >= pageSize/2; s-- {
		if start := end / s * s; start < low {
			number, size, low = end/s+1, s, start
		}
	}
	return number, size
}

// window returns a page number and size whose page covers positions lo to
// hi or, when no page of at most pageSize does, as much of the middle of
// that range as a page can.
func window(lo, hi int) (number, size int) {
	hi = max(hi, 0)
	lo = min(max(lo, 0, hi-pageSize+1), hi)
	step := max((hi-lo)/10, 1)
	for lo <= hi {
		for size = pageSize; size >= hi-lo+1; size-- {
			number = lo/size + 1
			if number*size > hi {
				return number, size
			}
		}
		lo, hi = lo+step, hi-step
	}
	return (lo+hi)/2/pageSize + 1, pageSize
}
