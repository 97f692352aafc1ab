package listing

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// reading reads the whole list as one chain of runs, over as many scrapes
// as it takes: a chain holds every token that stayed in the list while it
// was read, however long that was.
type reading struct {
	known known
	// top is the newest run read: the next one links to it.
	top *run
	// total is the itemsTotal of page 1, and still whether every page
	// read since gave the same: a still list must show that many
	// distinct tokens.
	total int
	still bool
	// current bounds the seconds the reading holds whole: a run that read
	// tokens of a second not yet over leaves room for more of that second,
	// created later with a tie that sorts them into the run's positions,
	// after it was read.
	current uint32
}

// advance reads on from where the reading stopped, up to the end of the
// list or until the scrape's share of requests or time is spent.
func (rg *reading) advance(ctx context.Context, rd *reader) error {
	if rg.top == nil {
		first, err := rd.page(ctx, 1, pageSize)
		if err != nil {
			return err
		}
		// Room for the list as page 1 saw it and what a long reading adds
		// to it, without append's growth by a quarter.
		rg.known.entries = make([]entry, 0, first.total+first.total/16+pageSize)
		rg.total, rg.still, rg.current = first.total, true, math.MaxUint32
		rg.absorb(first)
		rg.top = first
	}
	top, err := rd.walk(ctx, rg.top, atListEnd, toListEnd, 0, rg.absorb)
	rg.top = top
	return err
}

func (rg *reading) absorb(r *run) {
	rg.still = rg.still && r.total == rg.total
	if c := secondBefore(r.sent.Add(r.clock.lo)); !r.empty() && r.last() > c {
		rg.current = min(rg.current, c)
	}
	if rg.known.long == nil {
		rg.known.long = map[uint64]string{}
	}
	rg.known.entries = grow(rg.known.entries, len(r.tokens))
	for _, t := range r.tokens {
		rg.known.entries = append(rg.known.entries, newEntry(t, rg.known.long))
	}
}

// result returns the tokens read, each once, without those expired by now,
// and the newest second through which they hold every token of the list.
// A list that stood still while it was read, yet showed fewer distinct
// tokens than it counts, contradicts itself (ties of one second in another
// order on each request, pages repeated): that is ErrInconsistent.
func (rg *reading) result(now time.Time) (known, uint32, error) {
	k := rg.known
	slices.SortFunc(k.entries, compareEntries)
	k.entries = slices.CompactFunc(k.entries, func(a, b entry) bool { return a.ID() == b.ID() })
	if rg.still && len(k.entries) < rg.total {
		return known{}, 0, fmt.Errorf("%w: %d distinct tokens on pages that all say the list holds %d", ErrInconsistent, len(k.entries), rg.total)
	}
	k.remove(func(e *entry) bool { return expiredBy(e.Record, now.Add(rg.top.clock.lo)) })
	// A token created before the newest run was asked for sorts below
	// that run's newest token, and the chain covers everything below it
	// that stayed in the list while it was read; a token created during
	// the reading is covered only in the seconds no run read unfinished.
	return k, min(secondBefore(rg.top.sent.Add(rg.top.clock.lo)), rg.current), nil
}

// progress is the share of the list read, from 0 to 1.
func (rg *reading) progress() float64 {
	if rg.top == nil || rg.top.total <= 0 {
		return 0
	}
	return min(float64(rg.top.start+len(rg.top.tokens))/float64(rg.top.total), 0.99)
}
