package listing

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// fullRetries is how many more times a full listing reads a still list
// whose distinct tokens fall short of its itemsTotal: tokens of one second
// that api.video returned in another order on each request.
const fullRetries = 2

// comfortTime and comfortRequests are the shares of a scrape's time and
// requests a full listing may plan to use: the rest absorbs slow replies
// and the re-reads that close gaps.
const (
	comfortTime     = 0.5
	comfortRequests = 0.8
)

// estimate is what a full listing of an account would cost.
type estimate struct {
	requests int
	duration time.Duration
}

// estimateFull is the cost of a full listing of tokens tokens, given how
// long a request takes and how many run at once: page 1, then the other
// pages in segments read one page after another, and a re-read where each
// segment meets the one below it.
func estimateFull(tokens int, latency time.Duration, concurrency int) estimate {
	pages := max((tokens+pageSize-1)/pageSize, 1)
	segments := min(concurrency, (pages-1+minSegment-1)/minSegment)
	requests, rounds := pages+segments, 1
	if segments > 0 {
		rounds += (pages-1+segments-1)/segments + 1
	}
	return estimate{requests: requests, duration: time.Duration(rounds) * latency}
}

// fits reports whether e fits comfortably within what the scrape has left.
func (e estimate) fits(ctx context.Context, now time.Time, budget int) bool {
	if budget > 0 && float64(e.requests) > comfortRequests*float64(budget) {
		return false
	}
	if deadline, ok := ctx.Deadline(); ok && e.duration.Seconds() > comfortTime*deadline.Sub(now).Seconds() {
		return false
	}
	return true
}

// full reads the whole list on each scrape: page 1, then the other pages
// in segments, each from its last page down, every page joined to the
// next (see walk), keeping the tokens as they come.
//
// spare, when it has room, holds the tokens of the last full listing, which
// the caller no longer reads: this one reuses it rather than allocating 40
// MB a scrape for a million tokens. The tokens it read come back to be
// kept as the next spare; when the listing succeeded they are every token
// of the list as the incremental listing keeps them, complete through the
// second before the first request.
func full(ctx context.Context, rd *reader, keep int, spare known) (*TokenList, known, error) {
	first, err := rd.page(ctx, 1, pageSize)
	if err != nil {
		return nil, spare, err
	}
	if e := estimateFull(first.total, rd.slowest(), rd.concurrency); !e.fits(ctx, rd.now(), rd.planned()) {
		return nil, spare, &TooLargeError{Tokens: first.total, Estimate: e, Concurrency: rd.concurrency}
	}
	seen := newCollection(first.total, spare.entries)
	stillTotal := true
	for try := 0; ; try++ {
		seen.add(first.tokens)
		_, err := rd.walk(ctx, first, atListEnd, toListEnd, 0, func(r *run) {
			seen.add(r.tokens)
			stillTotal = stillTotal && r.total == first.total
		})
		if err != nil {
			return nil, seen.known, err
		}
		// A still list of itemsTotal tokens must show that many: fewer
		// means pages contradicting each other, such as ties of one
		// second in another order on each request.
		if !stillTotal || seen.len() >= first.total {
			break
		}
		if try == fullRetries {
			return nil, seen.known, fmt.Errorf("%w: %d distinct tokens on pages that all say the list holds %d", ErrInconsistent, seen.len(), first.total)
		}
		if first, err = rd.page(ctx, 1, pageSize); err != nil {
			return nil, seen.known, err
		}
		stillTotal = first.total == seen.total
	}
	list := seen.list(rd.now(), rd.clock, keep, rd.spent())
	return list, seen.known, nil
}

// atListEnd holds for a run that reached the end of the list.
func atListEnd(r *run) bool { return r.atEnd && !r.pastEnd }

// collection gathers the tokens of a full listing, 40 bytes each with
// their values as an incremental listing keeps them, then keeps each once.
type collection struct {
	total int
	known known
}

func newCollection(total int, spare []entry) *collection {
	c := &collection{total: total}
	if need := total + total/16 + pageSize; cap(spare) >= need && cap(spare) <= 2*need {
		c.known.entries = spare[:0]
	} else {
		c.known.entries = make([]entry, 0, need)
	}
	c.known.long = map[uint64]string{}
	return c
}

func (c *collection) add(tokens []apiclient.Token) {
	c.known.entries = grow(c.known.entries, len(tokens))
	for _, t := range tokens {
		c.known.entries = append(c.known.entries, newEntry(t, c.known.long))
	}
}

// len is how many distinct tokens the collection holds; it sorts them.
func (c *collection) len() int {
	slices.SortFunc(c.known.entries, compareEntries)
	c.known.entries = slices.CompactFunc(c.known.entries, func(a, b entry) bool { return a.ID() == b.ID() })
	return len(c.known.entries)
}

// list drops the tokens that had certainly expired by now, and keeps the
// values of the keep first in the order of publication among those
// active now.
func (c *collection) list(now time.Time, clock clockBounds, keep, requests int) *TokenList {
	c.len()
	c.known.remove(func(e *entry) bool { return expiredBy(e.Record, now.Add(clock.lo)) })
	return &TokenList{
		records:   c.known.records(),
		count:     c.known.len(),
		Values:    c.known.firstValues(now.Unix(), keep),
		Requests:  requests,
		FetchedAt: now,
	}
}

// unordered lists an account whose pages are not in createdAt order: it
// reads every page at once and keeps each token once. Without an order,
// shifts between pages cannot be told from missing tokens, so it succeeds
// only on a list that stood still: every page gives the same itemsTotal,
// and that many distinct tokens.
func unordered(ctx context.Context, rd *reader, keep int) (*TokenList, error) {
	first, err := rd.pageUnordered(ctx, 1)
	if err != nil {
		return nil, err
	}
	if e := estimateFull(first.total, rd.slowest(), rd.concurrency); !e.fits(ctx, rd.now(), rd.planned()) {
		return nil, fmt.Errorf("%w: api.video ignores sortBy, and reading all %d tokens in one scrape does not fit: %w", ErrUpstream, first.total, &TooLargeError{Tokens: first.total, Estimate: e, Concurrency: rd.concurrency})
	}
	seen := newCollection(first.total, nil)
	seen.add(first.tokens)
	pages := (first.total + pageSize - 1) / pageSize
	runs := make([]*run, pages+1)
	g, gctx := errgroup.WithContext(ctx)
	for number := 2; number <= pages; number++ {
		g.Go(recovering(func() (err error) {
			runs[number], err = rd.pageUnordered(gctx, number)
			return err
		}))
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, r := range runs[2:] {
		if r.total != first.total {
			return nil, fmt.Errorf("%w: api.video ignores sortBy, and the list changed while it was read (%d tokens, then %d)", ErrUpstream, first.total, r.total)
		}
		seen.add(r.tokens)
	}
	if seen.len() != first.total {
		return nil, fmt.Errorf("%w: api.video ignores sortBy, and its pages hold %d distinct tokens of the %d it lists", ErrUpstream, seen.len(), first.total)
	}
	return seen.list(rd.now(), rd.clock, keep, rd.spent()), nil
}
