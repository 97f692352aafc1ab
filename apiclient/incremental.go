package apiclient

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
	"golang.org/x/sync/errgroup"
)

// IncrementalOptions configure an Incremental lister.
type IncrementalOptions struct {
	// ResyncInterval is how often the whole list is read again, to bound
	// the life of any error in the kept state; 10 minutes when 0.
	ResyncInterval time.Duration
	// RateLimitShare is the most of X-RateLimit-Remaining one scrape may
	// spend, from 0 to 1; 0.5 when 0.
	RateLimitShare float64
}

// Incremental lists an account's tokens by keeping them between scrapes
// and reading only what changed. It is safe for concurrent use; scrapes
// run one at a time.
//
// The list is read oldest first, so that new tokens come at its end. A
// scrape:
//
//  1. drops the kept tokens whose expiry has passed;
//  2. reads the end of the list downwards until it reaches the newest
//     token it already knows: ceil(new tokens / 100) + 1 requests;
//  3. checks the count: itemsTotal of the read that reached the end must be
//     the kept tokens active then plus the new ones. A shortfall is tokens
//     deleted since the last scrape;
//  4. finds each deleted token without reading everything: a page read at
//     a kept token's expected position tells, from the kept token it
//     finds there, how many kept tokens before it are gone, so the gone
//     ones are found by bisection, about log2(pages) requests each (up to
//     the client's concurrency at once), and a page that covers one shows
//     it missing between its neighbours;
//  5. checks the count again at the end of the list, reading only the
//     tokens created since the previous count, and repeats 4 if tokens
//     went meanwhile: each round is shorter than the one before, and
//     one with no deletion during it ends the scrape.
//  6. when it keeps fewer values than it may publish, reads the pages
//     where the kept records place the tokens next in line (refill).
//
// It reads the whole list again (as ListUploadTokens does) on the first
// scrape, every ResyncInterval, and whenever the counts cannot be
// explained or finding the deleted tokens would cost more than that. A
// first read too large for one scrape goes on over the next scrapes, with
// apivideo_up 0 until it is complete (SyncProgress); a later one goes on
// in the background of the scrapes it spans, which use the kept state.
type Incremental struct {
	c    *Client
	opts IncrementalOptions

	mu sync.Mutex
	// known is every token active at the last scrape, in list order
	// (createdAt, then hash: the order of tokens created in the same second
	// is not relied on). It is the Records of the last TokenList returned,
	// and is updated in place.
	known    []Record
	keeper   *keeper
	keep     int
	synced   bool
	syncedAt time.Time
	// resync is a reading of the whole list in progress, and reading what
	// it saw besides the kept tokens.
	resync  *listing
	reading *reading
	// lastFresh is how many new tokens the last scrape found; endAt is
	// when the end of the list was last read, and newRate how many tokens
	// a second the last scrape found created since the scrape before: how
	// many new tokens to expect there.
	lastFresh int
	endAt     time.Time
	newRate   float64
	// readingScrapes is how many scrapes the current or last reading of
	// the whole list took.
	readingScrapes int
	progress       atomic.Uint64
}

// NewIncremental returns an incremental lister that reads through c.
func (c *Client) NewIncremental(opts IncrementalOptions) *Incremental {
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = 10 * time.Minute
	}
	if opts.RateLimitShare <= 0 || opts.RateLimitShare > 1 {
		opts.RateLimitShare = 0.5
	}
	return &Incremental{c: c, opts: opts}
}

// RateLimit returns the client's RateLimit.
func (s *Incremental) RateLimit() (RateLimit, bool) { return s.c.RateLimit() }

// SyncProgress is how much of the first reading of the whole list is
// done, from 0 to 1.
func (s *Incremental) SyncProgress() float64 {
	return math.Float64frombits(s.progress.Load())
}

// errResync asks for a reading of the whole list.
var errResync = errors.New("the kept tokens no longer explain the list")

// ErrSyncing means the first reading of the whole list is still going on.
var ErrSyncing = errors.New("first reading of the account's tokens still in progress")

// ListUploadTokens returns every active token, as Client.ListUploadTokens
// does, from the kept state brought up to date.
func (s *Incremental) ListUploadTokens(ctx context.Context, keep int) (*TokenList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if keep != s.keep && s.synced {
		// The values kept were chosen for another cap.
		s.synced, s.resync = false, nil
	}
	s.keep = keep
	budget := s.budget()
	spent := 0
	now := s.c.now()
	if s.resync == nil && (!s.synced || now.Sub(s.syncedAt) >= s.opts.ResyncInterval) {
		s.startReading(keep)
	}
	for attempt := 0; ; attempt++ {
		if s.resync != nil {
			n, err := s.readAll(ctx, budget-spent)
			spent += n
			if err != nil {
				return nil, err
			}
		}
		if spent >= budget {
			return nil, fmt.Errorf("%w (%d requests)", ErrRequestBudget, budget)
		}
		l := &listing{c: s.c, keep: s.keeper, budget: budget - spent, discard: true}
		err := s.update(ctx, l)
		spent += l.requests
		if errors.Is(err, errResync) && attempt == 0 {
			// Read the whole list again now, if the scrape has the time
			// and the budget; the next scrape goes on with it otherwise.
			level.Info(s.c.logger).Log("msg", "reading the whole list again", "reason", err)
			s.synced = false
			s.startReading(keep)
			continue
		}
		if err != nil {
			return nil, err
		}
		spent += s.refill(ctx, budget-spent)
		now := s.c.now()
		return &TokenList{
			Records:   s.known,
			Values:    slices.DeleteFunc(s.keeper.values(), func(t Token) bool { return !t.ActiveAt(now) }),
			Requests:  spent,
			FetchedAt: now,
		}, nil
	}
}

// readAll goes on with the reading of the whole list in progress, within
// budget, and returns the requests it made. A
// reading that completes becomes the kept state. While the account has no
// kept state yet, a reading that pauses is ErrSyncing.
func (s *Incremental) readAll(ctx context.Context, budget int) (int, error) {
	l := s.resync
	s.readingScrapes++
	if budget <= 0 {
		return 0, fmt.Errorf("%w (no requests left)", ErrRequestBudget)
	}
	l.budget, l.spent, l.reserve = budget, 0, reserve(ctx)
	if s.synced {
		// A reading in the background leaves half the budget and half
		// the time to bringing the kept state up to date.
		l.budget = (l.budget + 1) / 2
		if deadline, ok := ctx.Deadline(); ok {
			l.reserve = time.Until(deadline) / 2
		}
	}
	err := l.full(ctx)
	switch {
	case err == nil:
		s.adopt(l)
		return l.spent, nil
	case isPause(err, ctx):
		if !s.synced {
			s.progress.Store(math.Float64bits(l.plan.progress()))
			return l.spent, fmt.Errorf("%w: %.0f%% read (%w)", ErrSyncing, 100*l.plan.progress(), err)
		}
		// The kept state serves while the reading goes on.
		return l.spent, nil
	default:
		s.resync = nil
		if !s.synced {
			return l.spent, err
		}
		level.Warn(s.c.logger).Log("msg", "reading the whole list again failed; going on from the kept tokens", "err", err)
		return l.spent, nil
	}
}

// budget is the most requests this scrape may make: no limit until a
// reply told the rate limit.
func (s *Incremental) budget() int {
	rl, ok := s.c.RateLimit()
	if !ok {
		return math.MaxInt32
	}
	return max(int(float64(rl.Remaining)*s.opts.RateLimitShare), 1)
}

// reserve is the time before the deadline at which a pausable reading
// stops starting requests: enough for the requests in flight to finish.
func reserve(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return min(time.Until(deadline)/4, 2*time.Second)
}

func isPause(err error, ctx context.Context) bool {
	return errors.Is(err, errPaused) || errors.Is(err, ErrRequestBudget) ||
		(ctx.Err() != nil && errors.Is(err, ctx.Err()))
}

// reading is what a reading of the whole list saw besides the kept
// tokens, which it marks (seen) in place: the tokens not kept yet.
type reading struct {
	extras []Record
}

// seenBit marks, in a kept record's Hash, a token the reading in progress
// saw. Hashes from pages have it clear (see pageDecoder.decode).
const seenBit = 1

// id is a record's hash without the seen mark.
func id(r Record) uint64 { return r.Hash &^ seenBit }

// startReading starts a reading of the whole list. Rather than a second
// copy of the kept records, it marks the kept tokens it sees, and keeps
// records only of the tokens not kept yet.
func (s *Incremental) startReading(keep int) {
	r := &reading{}
	s.reading, s.readingScrapes = r, 0
	for i := range s.known {
		s.known[i].Hash &^= seenBit
	}
	s.resync = &listing{c: s.c, keep: newKeeper(keep), sink: func(tokens []Token, itemsTotal int) {
		if r.extras == nil {
			// As many as the list holds beyond the kept ones, and some
			// more for the churn.
			room := itemsTotal + itemsTotal/32 + 4*MaxPageSize - len(s.known)
			r.extras = make([]Record, 0, max(room, 4*MaxPageSize))
		}
		for _, t := range tokens {
			if j := findKnown(s.known, t.Record); j >= 0 {
				s.known[j].Hash |= seenBit
				continue
			}
			r.extras = append(r.extras, t.Record)
		}
	}}
}

// adopt makes a complete reading the kept state: the kept tokens it saw
// and the tokens it saw that were not kept. A kept token it did not see
// was not active for the whole reading, and is dropped.
func (s *Incremental) adopt(l *listing) {
	byOrder := func(a, b Record) int { return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(id(a), id(b))) }
	same := func(a, b Record) bool { return id(a) == id(b) }
	extras := s.reading.extras
	slices.SortFunc(extras, byOrder)
	extras = slices.CompactFunc(extras, same)
	known := slices.DeleteFunc(s.known, func(k Record) bool { return k.Hash&seenBit == 0 })
	for i := range known {
		known[i].Hash &^= seenBit
	}
	if len(known) == 0 {
		known = extras
	} else if len(extras) > 0 {
		known = append(known, extras...)
		slices.SortFunc(known, byOrder)
		known = slices.CompactFunc(known, same)
	}
	now := s.c.now()
	s.known = slices.DeleteFunc(known, func(r Record) bool { return !r.ActiveAt(now) })
	s.keeper = l.keep
	s.synced, s.syncedAt, s.resync, s.reading = true, now, nil, nil
	s.endAt = now
	s.progress.Store(math.Float64bits(1))
	level.Debug(s.c.logger).Log("msg", "read the whole list", "tokens", len(s.known), "requests", l.requests)
}

// update brings the kept state up to date: new tokens from the end of the
// list, deleted ones by bisection, as Incremental describes.
func (s *Incremental) update(ctx context.Context, l *listing) error {
	// The update is made in place: removing a token that went is true
	// whether or not the update completes.
	known := s.known
	defer func() { s.known = known }()
	pages := len(known)/l.c.pageSize + 1
	added := 0
	// The creation rate is measured over all the tokens the scrape adds,
	// since the end was read at the scrape before: a round alone can be
	// short and hold a burst.
	since := s.endAt
	for round := 0; ; round++ {
		// Tokens deleted while the scrape looks for others are looked for
		// too, in the next round, each round shorter than the one before;
		// past a reading's cost, read instead.
		if round == maxRounds || l.requests > pages+pages/2 {
			return fmt.Errorf("%w: tokens kept going while they were looked for", errResync)
		}
		now := s.c.now()
		known = slices.DeleteFunc(known, func(r Record) bool { return !r.ActiveAt(now) })
		s.keeper.drop(func(r Record) bool { return !r.ActiveAt(now) })
		expectNew := s.lastFresh
		if !s.endAt.IsZero() && s.newRate > 0 {
			// A guess past the end costs a read more, as one short of it
			// does; one far past it costs a walk down to the end.
			expectNew = min(int(s.newRate*s.c.now().Sub(s.endAt).Seconds()), 2*s.lastFresh+l.c.pageSize)
		}
		fresh, end, err := s.readEnd(ctx, l, known, pages, expectNew)
		if errors.Is(err, errNoTotal) {
			// The list shrank under the reads of its end: count again.
			continue
		}
		if errors.Is(err, ErrInconsistentListing) {
			// The end of the list is too far from the kept tokens.
			return fmt.Errorf("%w: %w", errResync, err)
		}
		if err != nil {
			return err
		}
		// The new tokens were active when read: they join the kept ones
		// now, so that the next round reads only those created since, and
		// counts, and looks for deleted tokens among, them all.
		if cap(known)-len(known) < len(fresh) {
			// Room for a while, rather than a copy at every scrape.
			known = slices.Grow(known, len(fresh)+len(known)/16)
		}
		known = append(known, fresh...)
		added += len(fresh)
		if span := end.received.Sub(since); !since.IsZero() && span > 0 {
			s.newRate = float64(added) / span.Seconds()
		}
		s.endAt = end.received
		kmin, kmax := activeAt(known, end.sent, end.received)
		level.Debug(s.c.logger).Log("msg", "counted", "round", round, "known", kmin, "known_maybe", kmax, "new", len(fresh), "listed", end.itemsTotal, "requests", l.requests)
		switch low, high := kmin-end.itemsTotal, kmax-end.itemsTotal; {
		case high < 0:
			return fmt.Errorf("%w: api.video lists %d tokens, %d more than known", errResync, end.itemsTotal, -high)
		case high == 0:
			// Every kept token is accounted for.
			now := s.c.now()
			known = slices.DeleteFunc(known, func(r Record) bool { return !r.ActiveAt(now) })
			s.lastFresh = added
			return nil
		case low <= 0:
			// A token expired while the count was taken, and may or may
			// not have been counted: count again.
		default:
			// low tokens at least were deleted. Bisection costs about
			// log2(pages) requests each; a reading of the whole list,
			// pages.
			// A reading that takes several scrapes finds as many deleted
			// tokens when it ends: only bisection gets there.
			if low*bits(pages) > pages*max(s.readingScrapes, 1) {
				return fmt.Errorf("%w: %d deleted tokens would cost more to find than a reading", errResync, low)
			}
			gone, err := s.locate(ctx, l, known, low)
			if err != nil {
				return err
			}
			level.Debug(s.c.logger).Log("msg", "found deleted tokens", "want", low, "found", len(gone), "requests", l.requests)
			known = slices.DeleteFunc(known, func(r Record) bool { _, g := gone[id(r)]; return g })
			s.keeper.drop(func(r Record) bool { _, g := gone[id(r)]; return g })
		}
	}
}

// refill reads the values the keeper lacks. Kept tokens expire or are
// deleted, and those that take their place in the order of publication
// are old tokens, which the reads of the end of the list do not see. The
// kept records tell which tokens they are and, the list being in createdAt
// order, about where they lie: refill reads only the pages there, those of
// the tokens first in the order of publication first, within the scrape's
// budget and time, and returns the requests it made. Values are kept up
// to the first token not found, so that every token not kept ranks after
// every kept one; the next scrape looks for the rest.
func (s *Incremental) refill(ctx context.Context, budget int) int {
	k := s.keeper
	now := s.c.now()
	k.drop(func(r Record) bool { return !r.ActiveAt(now) })
	need := k.missing(len(s.known))
	if need <= 0 || budget <= 0 || len(s.known) == 0 {
		return 0
	}
	// The need tokens first in the order of publication among those not
	// kept, and the one after them.
	next := tokenHeap{}
	for _, r := range s.known {
		if !r.ActiveAt(now) || k.has(id(r)) {
			continue
		}
		if len(next) <= need {
			heap.Push(&next, Token{Record: r})
		} else if Before(r, next[0].Record) < 0 {
			next[0] = Token{Record: r}
			heap.Fix(&next, 0)
		}
	}
	slices.SortFunc(next, func(a, b Token) int { return Before(a.Record, b.Record) })
	horizon := rank{math.MaxUint64, math.MaxUint64}
	if len(next) > need {
		horizon, next = next[need].rank(), next[:need]
	}
	// Their positions in the list are about theirs in known: pages around
	// them, each read once, the page of the first in the order of
	// publication first.
	type place struct{ pos, order int }
	places := make([]place, len(next))
	want := make(map[uint64]int, len(next))
	for i, t := range next {
		places[i] = place{findKnown(s.known, t.Record), i}
		want[id(t.Record)] = i
	}
	slices.SortFunc(places, func(a, b place) int { return cmp.Compare(a.pos, b.pos) })
	type page struct{ number, size, first int }
	var pages []page
	const margin = 5 // for tokens deleted or expired since the count
	for i := 0; i < len(places); {
		first := places[i].order
		j := i
		for j+1 < len(places) && places[j+1].pos-places[i].pos < MaxPageSize-2*margin {
			j++
			first = min(first, places[j].order)
		}
		number, size := window(places[i].pos-margin, places[j].pos+margin)
		if len(pages) == 0 || pages[len(pages)-1].number != number || pages[len(pages)-1].size != size {
			pages = append(pages, page{number, size, first})
		}
		i = j + 1
	}
	slices.SortFunc(pages, func(a, b page) int { return cmp.Compare(a.first, b.first) })

	l := &listing{c: s.c, keep: newKeeper(0), budget: budget, reserve: reserve(ctx), discard: true}
	var (
		mu      sync.Mutex
		found   = make(map[int]Token, len(next))
		unknown = 0
	)
	// Every token older than the newest kept one should be kept, but
	// for those about to expire: api.video's clock may lag.
	newest := s.known[len(s.known)-1].Created
	settled := unixSeconds(now.Add(time.Minute))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.c.concurrency)
	for _, p := range pages {
		g.Go(func() error {
			_, tokens, err := l.read(gctx, p.number, p.size)
			mu.Lock()
			defer mu.Unlock()
			for _, t := range tokens {
				if i, ok := want[t.ID()]; ok && t.Expires == next[i].Expires {
					t.Value = strings.Clone(t.Value)
					found[i] = t
				} else if !ok && t.Created < newest && (t.NeverExpires() || t.Expires > settled) && findKnown(s.known, t.Record) < 0 {
					unknown++
				}
			}
			return err
		})
	}
	if err := g.Wait(); err != nil && !isPause(err, ctx) {
		level.Warn(s.c.logger).Log("msg", "reading the values of the tokens to publish failed", "err", err)
	}
	if unknown > 0 {
		// The list holds old tokens the kept state does not: read it
		// whole again from the next scrape on.
		level.Info(s.c.logger).Log("msg", "the list holds tokens not kept; reading it whole again", "tokens", unknown)
		s.syncedAt = time.Time{}
	}
	values := make([]Token, 0, len(found))
	for i, t := range next {
		f, ok := found[i]
		if !ok {
			horizon = t.rank()
			break
		}
		values = append(values, f)
	}
	k.refill(values, horizon)
	level.Debug(s.c.logger).Log("msg", "refilled the values to publish", "want", need, "found", len(values), "requests", l.requests)
	return l.requests
}

// maxRounds bounds the rounds of counting and finding deleted tokens in
// one scrape. On a busy account tokens are deleted while others are looked
// for: a round of about a second ends with none deleted
// meanwhile about half the time at a deletion every 2 s, so a few rounds
// are common, and a dozen rare.
const maxRounds = 24

// errNoTotal means no read of the end of the list gave its total: the list
// shrank under them.
var errNoTotal = fmt.Errorf("%w: no page gave the list's total", errResync)

func bits(n int) int {
	b := 1
	for ; n > 1; n >>= 1 {
		b++
	}
	return b
}

// readEnd reads the list from its end down to the newest kept token,
// returning the tokens newer than it and the read that reached the end.
func (s *Incremental) readEnd(ctx context.Context, l *listing, known []Record, pages, expectNew int) ([]Record, run, error) {
	var (
		fresh []Record
		seen  = map[uint64]bool{}
		end   *run
	)
	// The first page read should hold the newest kept token and as many
	// new ones as expected.
	g := gap{hint: len(known) + expectNew + 5}
	if len(known) > 0 {
		g.low = known[len(known)-1]
	}
	err := l.closeGap(ctx, g, pages, func(r run, tokens []Token) {
		if end == nil && r.atEnd && r.itemsTotal >= 0 {
			end = &r
		}
		for _, t := range tokens {
			if !seen[t.Hash] && isNewer(known, t.Record) {
				seen[t.Hash] = true
				fresh = append(fresh, t.Record)
			}
		}
	})
	if err != nil {
		return nil, run{}, err
	}
	if end == nil {
		return nil, run{}, errNoTotal
	}
	slices.SortStableFunc(fresh, func(a, b Record) int { return cmp.Compare(a.Created, b.Created) })
	return fresh, *end, nil
}

// isNewer reports whether r is not among known and comes after all of it.
func isNewer(known []Record, r Record) bool {
	if len(known) == 0 {
		return true
	}
	last := known[len(known)-1].Created
	if r.Created != last {
		return r.Created > last
	}
	for i := len(known) - 1; i >= 0 && known[i].Created == last; i-- {
		if id(known[i]) == id(r) {
			return false
		}
	}
	return true
}

// activeAt counts the records surely active at an instant between sent and
// received, and those that may be.
func activeAt(records []Record, sent, received time.Time) (surely, maybe int) {
	for _, r := range records {
		if r.ActiveAt(received) {
			surely++
		}
		if r.ActiveAt(sent) {
			maybe++
		}
	}
	return surely, maybe
}

// locate finds at least want kept tokens that are gone from the list.
// Tokens created in the same second may be listed in any order among
// themselves, so locate reasons on the first token of each second a page
// shows: the kept tokens of earlier seconds, less that token's position in
// the list, is how many of them are gone. A kept token of a second strictly
// between the page's first and last is gone if the page does not show it.
// Intervals of known holding gone tokens are so narrowed down until pages
// cover them.
func (s *Incremental) locate(ctx context.Context, l *listing, known []Record, want int) (map[uint64]struct{}, error) {
	gone := map[uint64]struct{}{}
	type interval struct{ lo, hi, goneLo, goneHi int }
	stack := []interval{{0, len(known), 0, want}}
	maxReads := 4 + want*(bits(len(known)/l.c.pageSize+1)+2)
	reads := 0
	// Counts are of deleted tokens: a kept token that expired is gone
	// too, but is no deletion.
	goneIn := func(lo, hi int) int {
		now := s.c.now()
		n := 0
		for _, r := range known[lo:hi] {
			if _, g := gone[id(r)]; g && r.ActiveAt(now) {
				n++
			}
		}
		return n
	}
	expiredBefore := func(j int, at time.Time) int {
		n := 0
		for _, r := range known[:j] {
			if !r.ActiveAt(at) {
				n++
			}
		}
		return n
	}
	type probe struct {
		v      interval
		r      run
		tokens []Token
	}
	shown := map[uint64]bool{}
	for len(stack) > 0 {
		// Up to --apivideo.concurrency intervals at once: the deleted
		// tokens are found in fewer rounds of requests, with fewer
		// deleted meanwhile.
		var batch []probe
		for len(stack) > 0 && len(batch) < l.c.concurrency {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if v.goneHi-v.goneLo-goneIn(v.lo, v.hi) <= 0 {
				continue
			}
			if reads++; reads > maxReads {
				return nil, fmt.Errorf("%w: %d reads did not find the deleted tokens", errResync, maxReads)
			}
			batch = append(batch, probe{v: v})
		}
		g, gctx := errgroup.WithContext(ctx)
		now := s.c.now()
		for i := range batch {
			v := batch[i].v
			// Where known[mid] should be: less the kept tokens before it
			// that are gone, deleted (about half those of the interval on
			// top of those before it) or expired.
			mid := (v.lo + v.hi) / 2
			pos := mid - (v.goneLo+v.goneHi)/2 - expiredBefore(mid, now)
			number, size := window(pos-50, pos+49)
			g.Go(func() error {
				if err := s.clearOfExpiries(gctx, l); err != nil {
					return err
				}
				r, tokens, err := l.read(gctx, number, size)
				batch[i].r, batch[i].tokens = r, tokens
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, p := range batch {
			v, r, tokens := p.v, p.r, p.tokens
			if len(tokens) == 0 {
				return nil, fmt.Errorf("%w: a page held no kept token", errResync)
			}
			clear(shown)
			for _, t := range tokens {
				shown[t.Hash] = true
			}
			// The seconds the page shows whole: those strictly between its
			// first and last, and the first or last too when the page starts
			// or ends the list.
			firstSecond, lastSecond := tokens[0].Created, tokens[len(tokens)-1].Created
			lo := secondStart(known, firstSecond+1)
			if r.start == 0 {
				lo = 0
			}
			hi := secondStart(known, lastSecond)
			if r.atEnd {
				hi = len(known)
			}
			for _, k := range known[lo:hi] {
				if !shown[id(k)] {
					gone[id(k)] = struct{}{}
				}
			}
			// Gone before lo, and before hi, from where those seconds start
			// in the page.
			first, firstGone, last, lastGone := -1, 0, -1, 0
			for i, t := range tokens {
				if (i == 0 && r.start > 0) || (i > 0 && t.Created == tokens[i-1].Created) || t.Created > known[len(known)-1].Created {
					continue
				}
				j := secondStart(known, t.Created)
				deleted := j - (r.start + i) - expiredBefore(j, r.received)
				if first < 0 {
					first, firstGone = j, deleted
				}
				last, lastGone = j, deleted
			}
			if first < 0 {
				return nil, fmt.Errorf("%w: a page showed no second of kept tokens whole", errResync)
			}
			if first >= v.hi || last <= v.lo {
				// The page missed the interval: look again, knowing more.
				if first >= v.hi {
					v.goneHi = min(v.goneHi, firstGone)
				} else {
					v.goneLo = max(v.goneLo, lastGone)
				}
				stack = append(stack, v)
				continue
			}
			if last < v.hi {
				stack = append(stack, interval{last, v.hi, lastGone, v.goneHi})
			}
			if first > v.lo {
				stack = append(stack, interval{v.lo, first, v.goneLo, firstGone})
			}
		}
	}
	return gone, nil
}

// clearOfExpiries waits, when the next request would straddle the turn of
// a second, until that second has begun: tokens expire at whole seconds,
// and a page read across the turn would leave it unknown whether the
// tokens expiring then were still listed, which bisection cannot afford on
// an account where dozens expire each second. It assumes api.video's clock
// agrees with the exporter's; an offset only costs further rounds.
func (s *Incremental) clearOfExpiries(ctx context.Context, l *listing) error {
	if !s.c.wallClock {
		return nil
	}
	l.mu.Lock()
	took := l.lastTook
	l.mu.Unlock()
	now := s.c.now()
	turn := now.Truncate(time.Second).Add(time.Second)
	if now.Add(took + took/2 + 20*time.Millisecond).Before(turn) {
		return nil
	}
	return sleep(ctx, turn.Sub(now)+20*time.Millisecond)
}

// secondStart is the index in known of the first token created at or
// after the second created.
func secondStart(known []Record, created uint32) int {
	i, _ := slices.BinarySearchFunc(known, created, func(k Record, c uint32) int { return cmp.Compare(k.Created, c) })
	return i
}

// findKnown returns the index of r in known, or -1.
func findKnown(known []Record, r Record) int {
	i, _ := slices.BinarySearchFunc(known, r.Created, func(k Record, c uint32) int { return cmp.Compare(k.Created, c) })
	for ; i < len(known) && known[i].Created == r.Created; i++ {
		if id(known[i]) == id(r) {
			return i
		}
	}
	return -1
}
