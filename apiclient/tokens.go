package apiclient

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log/level"
	"golang.org/x/sync/errgroup"
)

// maxPages bounds how many pages one listing may claim, so that a garbled
// pagesTotal cannot start millions of requests. 10,000 pages of 100 is a
// million tokens.
const maxPages = 10000

// The list is read oldest first: new tokens are appended at its end and
// leave every other token where it is, while a token that expires or is
// deleted moves every later token one place towards the start.
const listOrder = "sortBy=createdAt&sortOrder=asc"

// ListUploadTokens returns every active upload token as Records, and the
// values of the tokens the caller may publish: the keep tokens first in the
// order of publication (see TokenList and Before).
//
// The list is live: tokens are created, expire and are deleted while it is
// read, and its pages shift. A listing spanning [t0, t1] returns every
// token active during the whole of [t0, t1], and only tokens active at
// some instant of it, each once:
//
//   - Pages are read oldest first, so that a shift only ever moves a token
//     towards the start of the list.
//   - Page 1 gives the totals. Pages 2..n are split into contiguous
//     segments, as many as --apivideo.concurrency allows, and each segment
//     is read from its last page down to its first, one page at a time; the
//     first segment ends with page 1 again. Within a segment a token can
//     only shift into a page not yet read, so none is skipped; a shift can
//     only list a token twice, and duplicates are dropped on their hash.
//   - Where two segments meet, a token may have shifted from the upper
//     segment's first page into the lower segment's last page after that
//     page was read. Such a token sorts between the last token of the one
//     page and the first of the other, and a targeted re-read of the
//     positions around that boundary, continued downwards until it reaches
//     the lower page's last token, finds it (closeGap).
//   - Last, the end of the list is read again, so that the tokens created
//     meanwhile are listed too. A listing of n tokens so costs about
//     ceil(n/100) + segments + 1 requests: 109 at 10,000 tokens.
//   - A page past the end (404, 400, an empty page, or the last page
//     again) means the list shrank while it was read: it is an empty page
//     at the end of the list, not a failure.
func (c *Client) ListUploadTokens(ctx context.Context, keep int) (*TokenList, error) {
	c.spareMu.Lock()
	l := &listing{c: c, keep: newKeeper(keep), records: c.spare[:0]}
	c.spare = nil
	c.spareMu.Unlock()
	if err := l.full(ctx); err != nil {
		return nil, err
	}
	list := l.result(c.now())
	c.spareMu.Lock()
	c.spare = list.Records
	c.spareMu.Unlock()
	return list, nil
}

// listing accumulates the reads of one listing. A listing of the
// incremental mode may pause at a scrape's deadline or request budget and
// go on at the next scrape (see plan).
type listing struct {
	c    *Client
	keep *keeper
	// budget, when positive, caps the requests of this scrape; reserve,
	// when positive, is the time before the deadline at which no new
	// request starts. Both end the scrape with errPaused.
	budget  int
	reserve time.Duration
	// sink, when set, takes the tokens of every page instead of records;
	// discard keeps no records.
	sink    func(tokens []Token, itemsTotal int)
	discard bool

	mu       sync.Mutex
	records  []Record
	requests int
	spent    int // requests of the current scrape
	// lastTook is how long the latest request took.
	lastTook time.Duration
	// latestTotal is the itemsTotal of the latest page that gave one.
	latestTotal int
	// newest is the most recently created token seen, at newestAt in the
	// list when it was seen.
	newest   Record
	newestAt int
	plan     *plan
}

// errPaused ends a scrape of a listing that goes on at the next one.
var errPaused = errors.New("paused until the next scrape")

// ErrRequestBudget means a scrape would have spent more than its share of
// the rate limit.
var ErrRequestBudget = errors.New("request budget for this scrape spent")

// run is what a listing keeps of one page read.
type run struct {
	// start and end are the positions the page covered: [start, end).
	start, end int
	// n is how many tokens the page held; first and last are valid when
	// it held some.
	n           int
	first, last Record
	// atEnd means that no token lay past the page when it was read.
	atEnd bool
	// pastEnd, when set, is why the page counted as past the end of the list.
	pastEnd    error
	itemsTotal int
	pagesTotal int
	// sent and received bound the instant the page was read.
	sent, received time.Time
}

// read fetches page number of size tokens. It keeps its tokens and returns
// them (valid until the next read) with what the listing needs to know of
// the page.
func (l *listing) read(ctx context.Context, number, size int) (run, []Token, error) {
	r := run{start: (number - 1) * size, end: number * size, itemsTotal: -1}
	l.mu.Lock()
	if l.budget > 0 && l.spent >= l.budget {
		l.mu.Unlock()
		return r, nil, fmt.Errorf("%w (%d requests)", ErrRequestBudget, l.budget)
	}
	if deadline, ok := ctx.Deadline(); ok && l.reserve > 0 && time.Until(deadline) < l.reserve {
		l.mu.Unlock()
		return r, nil, errPaused
	}
	l.requests++
	l.spent++
	l.mu.Unlock()
	r.sent = l.c.now()
	p, err := l.c.fetchPage(ctx, number, size)
	r.received = l.c.now()
	l.mu.Lock()
	l.lastTook = r.received.Sub(r.sent)
	l.mu.Unlock()
	var apiErr *APIError
	if number > 1 && errors.As(err, &apiErr) &&
		(apiErr.StatusCode == http.StatusNotFound || apiErr.StatusCode == http.StatusBadRequest) {
		// A page past the end: the list shrank since its totals were read.
		r.atEnd, r.pastEnd = true, err
		return r, nil, nil
	}
	if err != nil {
		return r, nil, err
	}
	if p.pageSize != 0 && p.pageSize != size {
		return r, nil, fmt.Errorf("%w: asked for pages of %d, got pages of %d", ErrMalformedResponse, size, p.pageSize)
	}
	if len(p.tokens) > size {
		return r, nil, fmt.Errorf("%w: page %d holds %d tokens, more than its size %d", ErrMalformedResponse, number, len(p.tokens), size)
	}
	if p.itemsTotal > maxPages*MaxPageSize {
		return r, nil, fmt.Errorf("%w: itemsTotal %d is above %d", ErrMalformedResponse, p.itemsTotal, maxPages*MaxPageSize)
	}
	for i := 1; i < len(p.tokens); i++ {
		if p.tokens[i].Created < p.tokens[i-1].Created {
			return r, nil, fmt.Errorf("%w: page %d is not in createdAt order", ErrMalformedResponse, number)
		}
	}
	r.itemsTotal, r.pagesTotal = p.itemsTotal, p.pagesTotal
	l.keepTokens(p.tokens, p.itemsTotal, r.start)
	if p.currentPage != 0 && p.currentPage != number {
		// The last page again, for a page past the end. Its tokens were
		// active, but it says nothing of the positions asked for.
		r.atEnd, r.pastEnd = true, fmt.Errorf("page %d answered with page %d", number, p.currentPage)
		return r, nil, nil
	}
	if len(p.tokens) < size && r.start+len(p.tokens) < p.itemsTotal {
		return r, nil, fmt.Errorf("%w: page %d holds %d tokens, but the list holds %d",
			ErrMalformedResponse, number, len(p.tokens), p.itemsTotal)
	}
	r.n = len(p.tokens)
	if r.n == 0 && number > 1 {
		r.pastEnd = fmt.Errorf("page %d is empty", number)
	}
	if r.n > 0 {
		r.first, r.last = p.tokens[0].Record, p.tokens[r.n-1].Record
	}
	r.atEnd = r.n < size || r.end >= p.itemsTotal
	return r, p.tokens, nil
}

func (l *listing) keepTokens(tokens []Token, itemsTotal, start int) {
	l.keep.offer(tokens)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latestTotal = itemsTotal
	if n := len(tokens); n > 0 && (tokens[n-1].Created > l.newest.Created ||
		tokens[n-1].Created == l.newest.Created && start+n-1 > l.newestAt) {
		l.newest, l.newestAt = tokens[n-1].Record, start+n-1
	}
	switch {
	case l.sink != nil:
		l.sink(tokens, itemsTotal)
		return
	case l.discard:
		return
	}
	if need := itemsTotal + itemsTotal/32 + 4*MaxPageSize; len(l.records) == 0 && (cap(l.records) < need || cap(l.records) > 4*need) {
		// Room for the list as page 1 saw it and some growth, so that a
		// million tokens are not copied on the way.
		l.records = make([]Record, 0, need)
	}
	for _, t := range tokens {
		l.records = append(l.records, t.Record)
	}
}

// plan is the progress of a full listing.
type plan struct {
	size, pagesTotal int
	runs             []run
	// segment[p] is the segment that reads page p; next[s] is the next
	// page segment s reads, below lo[s] once it is done.
	segment      []int
	lo, hi, next []int
	gaps         []gap
	gapsDone     []bool
	// endRead is set once the end of the list was read last.
	endRead bool
}

// progress is the share of the listing's requests done, from 0 to 1.
func (p *plan) progress() float64 {
	if p == nil {
		return 0
	}
	total, done := 1, 1 // page 1
	for s := range p.lo {
		total += p.hi[s] - p.lo[s] + 1
		done += p.hi[s] - p.next[s]
	}
	if p.gaps == nil {
		total += max(len(p.lo)-1, 0) // a re-read where segments meet
	}
	total += len(p.gaps) + 1 // and the end of the list again
	if p.endRead {
		done++
	}
	for _, d := range p.gapsDone {
		if d {
			done++
		}
	}
	return min(float64(done)/float64(total), 1)
}

// full reads every page, as ListUploadTokens describes. A listing that
// pauses (errPaused) goes on where it stopped when full is called again.
func (l *listing) full(ctx context.Context) error {
	if l.plan == nil {
		if err := l.start(ctx); err != nil {
			return err
		}
	}
	p := l.plan
	if p.gaps == nil {
		g, gctx := errgroup.WithContext(ctx)
		for s := range p.lo {
			g.Go(func() error {
				for ; p.next[s] >= p.lo[s]; p.next[s]-- {
					number := p.next[s]
					r, _, err := l.read(gctx, number, p.size)
					if err != nil {
						return err
					}
					p.runs[number] = r
					// A page past the end just above a page that finds the
					// list a page longer than that: the list cannot have
					// grown so fast, and the answer was no sign of a shift.
					if number < p.pagesTotal && p.segment[number+1] == p.segment[number] &&
						p.runs[number+1].pastEnd != nil && r.itemsTotal >= (number+1)*p.size {
						return fmt.Errorf("%w: %w, but page %d then found %d tokens in the list",
							ErrInconsistentListing, p.runs[number+1].pastEnd, number, r.itemsTotal)
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		p.gaps = l.findGaps()
		p.gapsDone = make([]bool, len(p.gaps))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(l.c.concurrency)
	if l.budget > 0 {
		// One re-read at a time, so that a budget that runs out leaves
		// every started re-read finished.
		g.SetLimit(1)
	}
	for i, gp := range p.gaps {
		if p.gapsDone[i] {
			continue
		}
		g.Go(func() error {
			if err := l.closeGap(gctx, gp, p.pagesTotal, nil); err != nil {
				return err
			}
			p.gapsDone[i] = true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Last, the end of the list once more, down to the newest token seen:
	// the tokens created while the list was read are then listed too, and
	// the listing holds what the list held as it ended, not as it began.
	l.mu.Lock()
	newest, any := l.newest, l.requests > 1 && l.newest.Hash != 0
	l.mu.Unlock()
	if !any || p.endRead {
		return nil
	}
	if err := l.closeGap(ctx, gap{low: newest, hint: l.latestTotal}, p.pagesTotal, nil); err != nil {
		return err
	}
	p.endRead = true
	return nil
}

// start reads page 1 and plans the rest: pages 2..n in contiguous
// segments, each read from its last page down.
func (l *listing) start(ctx context.Context) error {
	size := l.c.pageSize
	first, _, err := l.read(ctx, 1, size)
	if err != nil {
		return err
	}
	pagesTotal := first.pagesTotal
	if pagesTotal > maxPages {
		return fmt.Errorf("%w: pagesTotal %d is above %d", ErrMalformedResponse, pagesTotal, maxPages)
	}
	// An empty list may say 0 pages or 1.
	if want := (first.itemsTotal + size - 1) / size; pagesTotal != want && !(want == 0 && pagesTotal == 1) {
		return fmt.Errorf("%w: pagesTotal %d does not fit itemsTotal %d in pages of %d",
			ErrMalformedResponse, pagesTotal, first.itemsTotal, size)
	}
	pagesTotal = max(pagesTotal, 1)
	p := &plan{size: size, pagesTotal: pagesTotal, runs: make([]run, pagesTotal+1), segment: make([]int, pagesTotal+1)}
	p.runs[1] = first
	if pagesTotal > 1 {
		// Segments of at least minSegment pages: each boundary costs a
		// re-read, and short segments would gain little time.
		const minSegment = 6
		segments := min(l.c.concurrency, (pagesTotal-1+minSegment-1)/minSegment)
		for s := range segments {
			// Pages lo..hi, read from hi down; the first segment then reads
			// page 1 again, so that no gap opens above page 1.
			lo := 2 + s*(pagesTotal-1)/segments
			hi := 1 + (s+1)*(pagesTotal-1)/segments
			if s == 0 {
				lo = 1
			}
			for number := lo; number <= hi; number++ {
				p.segment[number] = s + 1
			}
			p.lo = append(p.lo, lo)
			p.hi = append(p.hi, hi)
			p.next = append(p.next, hi)
		}
	}
	l.plan = p
	return nil
}

// findGaps lists the boundaries where a token may have been skipped:
// between pages read by different segments, above the lower page unless
// it reached the end of the list.
func (l *listing) findGaps() []gap {
	p := l.plan
	gaps := []gap{}
	for k := 1; k <= p.pagesTotal; k++ {
		lower := p.runs[k]
		if lower.atEnd || lower.n == 0 {
			continue
		}
		if k < p.pagesTotal && p.segment[k] == p.segment[k+1] {
			continue // page k+1 was read before page k
		}
		g := gap{low: lower.last, hint: lower.end}
		if k < p.pagesTotal && p.runs[k+1].n > 0 {
			high := p.runs[k+1].first
			g.high = &high
		} else {
			l.mu.Lock()
			g.hint = max(g.hint, l.latestTotal)
			l.mu.Unlock()
		}
		gaps = append(gaps, g)
	}
	return gaps
}

// gap is a boundary between two reads that a token may have crossed
// unseen: such a token sorts after low and before high (the end of the
// list when high is nil). hint is roughly where the boundary lay.
type gap struct {
	low  Record
	high *Record
	hint int
}

// closeGap reads the positions around a gap until it has seen every token
// that stayed active across the gap since it opened. It first finds a
// window that reaches past high, then reads windows downwards, each
// overlapping the one above it, until one reaches before low. Tokens only
// ever move towards the start, so a token that sorts between low and high
// cannot jump over a window read after the one above it.
//
// seen, when set, is called with each read's run and tokens.
func (l *listing) closeGap(ctx context.Context, g gap, pagesTotal int, seen func(run, []Token)) error {
	maxReads := 8 + pagesTotal/10
	// A first page that holds both sides of the boundary, from wide to
	// narrow: the tokens below it may have moved down a little.
	lo, hi := g.hint-50, g.hint+10
	for _, margin := range [][2]int{{50, 10}, {30, 6}, {12, 3}, {3, 1}} {
		if number, size := window(g.hint-margin[0], g.hint+margin[1]); (number-1)*size <= g.hint-margin[0] && number*size > g.hint+margin[1] {
			lo, hi = g.hint-margin[0], g.hint+margin[1]
			break
		}
	}
	reads := 0
	read := func() (run, []Token, error) {
		reads++
		if reads > maxReads {
			return run{}, nil, fmt.Errorf("%w: %d re-reads did not close a gap left by tokens moving while they were read",
				ErrInconsistentListing, maxReads)
		}
		number, size := window(lo, hi)
		return l.read(ctx, number, size)
	}
	for {
		r, tokens, err := read()
		if err != nil {
			return err
		}
		if seen != nil {
			seen(r, tokens)
		}
		reachesHigh := r.atEnd ||
			(g.high != nil && (r.n > 0 && r.last.Created > g.high.Created || holds(tokens, g.high.Hash)))
		if !reachesHigh {
			// The boundary has moved up past this window: look above it,
			// up to the end of the list if the page said where that is.
			hi = max(r.end+60, r.itemsTotal+10)
			lo = hi - 95
			continue
		}
		for {
			if r.start == 0 || r.n > 0 && r.first.Created < g.low.Created || holds(tokens, g.low.Hash) {
				return nil
			}
			lo, hi = r.start-90, r.start-1
			if r.n == 0 && r.itemsTotal >= 0 && r.itemsTotal <= r.start {
				// A read past the end that gave the list's total: the
				// positions from that total up were empty then, and tokens
				// only move towards the start, so none between low and high
				// can lie there unseen. Go on from the end of the list.
				lo, hi = r.itemsTotal-90, r.itemsTotal-1
			}
			if r, tokens, err = read(); err != nil {
				return err
			}
			if seen != nil {
				seen(r, tokens)
			}
		}
	}
}

func holds(tokens []Token, hash uint64) bool {
	for _, t := range tokens {
		if t.Hash == hash {
			return true
		}
	}
	return false
}

// window returns a page number and size whose page covers positions lo to
// hi or, when no page of at most MaxPageSize does, as much of the middle of
// that range as a page can.
func window(lo, hi int) (number, size int) {
	hi = max(hi, 0)
	lo = min(max(lo, 0, hi-MaxPageSize+1), hi)
	step := max((hi-lo)/10, 1)
	for lo <= hi {
		for size = MaxPageSize; size >= hi-lo+1; size-- {
			number = lo/size + 1
			if number*size > hi {
				return number, size
			}
		}
		lo, hi = lo+step, hi-step
	}
	return (lo+hi)/2/MaxPageSize + 1, MaxPageSize
}

// result drops the duplicates a shift produced and the tokens expired by
// now, and keeps the values of the tokens that remain.
func (l *listing) result(now time.Time) *TokenList {
	l.mu.Lock()
	defer l.mu.Unlock()
	records := l.records
	slices.SortFunc(records, func(a, b Record) int { return cmp.Compare(a.Hash, b.Hash) })
	records = slices.CompactFunc(records, func(a, b Record) bool { return a.Hash == b.Hash })
	records = slices.DeleteFunc(records, func(r Record) bool { return !r.ActiveAt(now) })
	values := slices.DeleteFunc(l.keep.values(), func(t Token) bool { return !t.ActiveAt(now) })
	if dropped := len(l.records) - len(records); dropped > 0 {
		level.Debug(l.c.logger).Log("msg", "listing reconciled", "requests", l.requests, "duplicates_or_expired", dropped)
	}
	return &TokenList{Records: records, Values: values, Requests: l.requests, FetchedAt: now}
}

// fetchPage requests one page, logging in first if needed and once more
// after a 401, in case the access token was revoked or expired early.
func (c *Client) fetchPage(ctx context.Context, number, size int) (*page, error) {
	buf := c.bodies.Get().(*bytes.Buffer)
	defer c.bodies.Put(buf)
	path := fmt.Sprintf("/upload-tokens?currentPage=%d&pageSize=%d&%s", number, size, listOrder)
	for relogged := false; ; relogged = true {
		bearer, err := c.auth.token(ctx)
		if err != nil {
			return nil, err
		}
		err = c.do(ctx, request{method: http.MethodGet, path: path, bearer: bearer}, buf)
		var apiErr *APIError
		if !relogged && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized {
			level.Debug(c.logger).Log("msg", "access token refused, logging in again", "page", number)
			c.auth.invalidate(bearer)
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	dec := c.decoders.Get().(*pageDecoder)
	defer c.decoders.Put(dec)
	p, err := dec.decode(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return p, nil
}
