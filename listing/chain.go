package listing

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// A chain is a sequence of runs, each joined to the next (see joined).
// Whenever its runs were read, it holds every token that stayed in the
// list while they were read and sorts between the oldest token of its
// first run and the newest of its last (see the package doc).

// joined reports whether the runs lower and upper leave no token between
// them unseen: whatever sorts between them and stayed in the list while
// both were read is in one of them. That holds when they share a token;
// when upper's oldest token is of an older second than lower's newest, so
// that they overlap in the order of the list; when lower reached the end
// of the list, so that it holds everything newer than its oldest token;
// and when upper starts the list, so that nothing sorts below it.
func joined(lower, upper *run) bool {
	if lower.empty() || upper.empty() {
		return false
	}
	if readBefore(upper, lower) && lower.start+len(lower.tokens) >= upper.start &&
		upper.first() <= secondBefore(upper.sent.Add(upper.clock.lo)) {
		// A token between them was below upper.start when upper was read.
		// It was of a second already over, so it could only move down:
		// when lower was read it lay within lower's positions, yet sorted
		// after lower's newest token. (A token of the current second can
		// move up, when api.video sorts one created after it before it.)
		return true
	}
	return lower.atEnd || upper.start == 0 || upper.first() < lower.last() || linked(lower, upper)
}

// readBefore reports whether a was answered before b was asked for.
func readBefore(a, b *run) bool { return !a.received.After(b.sent) }

const (
	// maxEndTries bounds the re-reads that look for the end of a list
	// that shrinks while it is read.
	maxEndTries = 4
	// maxJoinTries bounds the windows, each twice as far down as the one
	// before, that look for the tokens below a gap.
	maxJoinTries = 8
	// maxDepth bounds how deep joins that climb, and climbs that join,
	// may nest.
	maxDepth = 3
	// firstStep is how far below a gap's upper run the first window that
	// closes it starts: where the tokens that slipped between two runs lie
	// after a few dozen deletions.
	firstStep = 60
)

// toListEnd, as the estEnd of a climb, is the end of the list as the
// newest run read counts it.
const toListEnd = -1

// climb reads windows upwards from base, each joined to the one below it,
// until done holds for the newest run or a run reaches the end of the
// list; estEnd is the position just past the run the caller expects to
// satisfy done, or toListEnd, so that the pages up to it are read at once
// and no further. It returns the chain from base up;
// when a read fails, the chain up to it, with the error, so that a listing
// that pauses keeps what it read.
func (rd *reader) climb(ctx context.Context, base *run, done func(*run) bool, estEnd int) ([]*run, error) {
	return rd.climbFrom(ctx, base, done, estEnd, 0)
}

func (rd *reader) climbFrom(ctx context.Context, base *run, done func(*run) bool, estEnd, depth int) ([]*run, error) {
	chain := []*run{base}
	_, err := rd.walk(ctx, base, done, estEnd, depth, func(r *run) { chain = append(chain, r) })
	return chain, err
}

// walk climbs as climb does, but hands each run of the chain above base to
// visit as it joins the chain and keeps none of them but the newest, so
// that reading a million tokens holds one page at a time. It returns the
// newest run of the chain.
func (rd *reader) walk(ctx context.Context, base *run, done func(*run) bool, estEnd, depth int, visit func(*run)) (*run, error) {
	top := base
	followTotal := estEnd == toListEnd
	if followTotal {
		estEnd = base.total
	}
	for batch, endTries := 0, 0; !done(top) && !atListEnd(top); batch++ {
		// The pages of pageSize from the one just above top up to the one
		// that should end the list.
		first := (top.start+len(top.tokens))/pageSize + 1
		last := max((estEnd+pageSize-1)/pageSize, first)
		// No more than the scrape can read: a segment cut short keeps
		// only its highest pages, which join nothing. And no more than
		// maxSegment pages a segment at once: a batch's pages are all held
		// until it is joined, 6.5 KB each.
		last = min(last, first+rd.capacity(ctx)-1, first+maxSegment*rd.concurrency-1)
		if batch == 0 && base.received.Before(rd.started) {
			// base was read scrapes ago, since when the list may have
			// moved by thousands of positions: one page first, so that
			// joining it to base finds the gap while requests remain,
			// instead of a batch spending them on pages that join nothing.
			last = first
		}
		runs, err := rd.readSegments(ctx, first, last)
		if err != nil {
			return top, err
		}
		for _, r := range runs {
			if r.pastEnd {
				// The list ends between the newest run and r: read a window
				// that reaches its end from below.
				if endTries++; endTries > maxEndTries {
					return top, fmt.Errorf("%w: the end of the list moved away %d times", ErrInconsistent, maxEndTries)
				}
				// Where the page said the list ends, or, without a total,
				// where top ends, then further down at each try. The window
				// holds the position past that end, so that a page that is
				// not short shows the list goes on.
				end := top.start + len(top.tokens) - (endTries-1)*step
				if r.total >= 0 {
					end = r.total
				}
				if r, err = rd.readBelow(ctx, end); err != nil {
					return top, err
				}
				if r.pastEnd || r.empty() {
					break
				}
			}
			between, err := rd.join(ctx, top, r, depth)
			for _, b := range between {
				visit(b)
			}
			if err != nil {
				// The runs between, each joined to the one before, hold
				// whatever a reading that resumes needs no longer read.
				if len(between) > 0 {
					top = between[len(between)-1]
				}
				return top, err
			}
			visit(r)
			top = r
			if followTotal {
				estEnd = max(estEnd, r.total)
			}
			if done(r) || r.atEnd {
				break
			}
		}
	}
	return top, nil
}

// minSegment and maxSegment bound the pages a segment reads at once: each
// segment's lowest page costs a re-read where it meets the segment below,
// and each page read is held until its batch is joined.
const (
	minSegment = 6
	maxSegment = 64
)

// readSegments reads pages first to last of pageSize, in as many
// contiguous segments as the concurrency allows, each from its highest
// page down: within a segment, a token can only move into a page not yet
// read, so each page is joined to the one above it (see joined). The runs
// come back in page order.
func (rd *reader) readSegments(ctx context.Context, first, last int) ([]*run, error) {
	n := last - first + 1
	segments := min(rd.concurrency, (n+minSegment-1)/minSegment)
	runs := make([]*run, n)
	g, gctx := errgroup.WithContext(ctx)
	for s := range segments {
		lo, hi := s*n/segments, (s+1)*n/segments
		g.Go(recovering(func() error {
			for i := hi - 1; i >= lo; i-- {
				r, err := rd.page(gctx, first+i, pageSize)
				if err != nil {
					return err
				}
				runs[i] = r
			}
			return nil
		}))
	}
	err := g.Wait()
	// On an error, the pages read from the lowest up, for a listing that
	// pauses to keep.
	for i, r := range runs {
		if r == nil {
			return runs[:i], err
		}
	}
	return runs, err
}

// join returns the runs to read between lower and upper so that each is
// joined to the next: none when they already are. Tokens only move down
// the list, so it looks below upper for a window that reaches lower's
// newest token, twice as far down at each try, then climbs from there to
// upper.
func (rd *reader) join(ctx context.Context, lower, upper *run, depth int) ([]*run, error) {
	if joined(lower, upper) {
		return nil, nil
	}
	if lower.empty() || upper.empty() || depth >= maxDepth {
		return nil, fmt.Errorf("%w: a gap between two reads of the list could not be closed", ErrInconsistent)
	}
	step := firstStep
	for try := 0; ; try++ {
		lo := max(upper.start-step, 0)
		w, err := rd.read(ctx, lo, lo+pageSize-1)
		if err != nil {
			return nil, err
		}
		if joined(lower, w) {
			if joined(w, upper) {
				return []*run{w}, nil
			}
			up, err := rd.climbFrom(ctx, w, func(r *run) bool { return joined(r, upper) }, upper.start+1, depth+1)
			return up, err
		}
		if lo == 0 || try == maxJoinTries {
			return nil, fmt.Errorf("%w: %d reads did not close a gap left by tokens moving while the list was read", ErrInconsistent, try+1)
		}
		step *= 2
	}
}
