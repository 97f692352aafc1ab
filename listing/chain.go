package listing

import (
	"context"
	"fmt"
)

// A chain is a sequence of runs in which each shares a token with the
// next. Whenever its runs were read, it holds every token that stayed in
// the list while they were read and sorts between the oldest token of its
// first run and the newest of its last (see the package doc).

// bridgeOffsets are where, relative to the start of the upper run of a gap,
// successive bridges start: first just below it, where the tokens that
// slipped between the two runs lie after a few deletions, then further
// down for many deletions, and above for a list that grew.
var bridgeOffsets = []int{-60, -110, -10, -180, 40, -280}

// maxEndTries bounds the re-reads that look for the end of a list that
// shrinks while it is read.
const maxEndTries = 4

// climb reads windows upwards from base, each linked to the one below it,
// until done holds for the newest run; estTop is where the caller expects
// that run to start, so that the windows up to it are read at once. It
// returns the chain from base up; when a read fails, the chain up to it,
// with the error, so that a listing that pauses keeps what it read.
func (rd *reader) climb(ctx context.Context, base *run, done func(*run) bool, estTop int) ([]*run, error) {
	chain := []*run{base}
	for endTries := 0; !done(chain[len(chain)-1]); {
		top := chain[len(chain)-1]
		if top.atEnd {
			// The list ended within top: a predicate about newer tokens
			// cannot hold any more.
			return chain, nil
		}
		n := min(max((estTop-top.start+stride-1)/stride, 1), rd.concurrency)
		starts := make([]int, n)
		for k := range starts {
			starts[k] = top.start + (k+1)*stride
		}
		runs, err := rd.readAll(ctx, starts)
		if err != nil {
			return chain, err
		}
		for _, r := range runs {
			if r.pastEnd {
				// The list ends between the newest run and r: read a window
				// that reaches its end from below.
				if endTries++; endTries > maxEndTries {
					return chain, fmt.Errorf("%w: the end of the list moved away %d times", ErrInconsistent, maxEndTries)
				}
				end := max(r.total, top.start+len(top.tokens)-overlap)
				if r, err = rd.read(ctx, end-60, end+39); err != nil {
					return chain, err
				}
				if r.pastEnd {
					break
				}
			}
			bridges, err := rd.join(ctx, top, r)
			if err != nil {
				return chain, err
			}
			chain = append(append(chain, bridges...), r)
			top = r
			estTop = max(estTop, r.total-stride)
			if done(r) || r.atEnd {
				break
			}
		}
	}
	return chain, nil
}

// join returns the runs to read between lower and upper so that each
// shares a token with the next: none when they already share one.
func (rd *reader) join(ctx context.Context, lower, upper *run) ([]*run, error) {
	seq := []*run{lower, upper}
	for tries := 0; ; tries++ {
		gap := -1
		for i := 0; i+1 < len(seq); i++ {
			if !linked(seq[i], seq[i+1]) {
				gap = i
				break
			}
		}
		if gap < 0 {
			return seq[1 : len(seq)-1], nil
		}
		if lower.empty() || upper.empty() {
			return nil, fmt.Errorf("%w: an empty page between two runs of the list", ErrInconsistent)
		}
		if tries == len(bridgeOffsets) {
			return nil, fmt.Errorf("%w: %d re-reads did not close a gap left by tokens moving while they were read",
				ErrInconsistent, tries)
		}
		x, y := seq[gap], seq[gap+1]
		lo := y.start + bridgeOffsets[tries]
		w, err := rd.read(ctx, lo, lo+pageSize-1)
		if err != nil {
			return nil, err
		}
		if w.empty() || !linked(x, w) && !linked(w, y) {
			continue
		}
		seq = append(seq[:gap+1], append([]*run{w}, seq[gap+1:]...)...)
	}
}
