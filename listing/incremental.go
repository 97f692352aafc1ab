package listing

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// state is where the incremental listing stands; see the package doc for
// the diagram.
type state int

const (
	// stateEmpty: nothing kept; the next step starts reading the whole list.
	stateEmpty state = iota
	// stateReading: reading the whole list, over as many scrapes as it takes.
	stateReading
	// stateReconciling: the kept tokens may include some gone since they
	// were read, and miss the newest: count, find the gone ones, repeat.
	stateReconciling
	// stateSynced: a count found every kept token in the list at one
	// instant of this scrape; an audit of a few pages and the scrape is done.
	stateSynced
)

var stateNames = [...]string{stateEmpty: "empty", stateReading: "reading", stateReconciling: "reconciling", stateSynced: "synced"}

func (s state) String() string { return stateNames[s] }

const (
	// anchorMargin is how many positions below the newest complete second
	// the read of the end of the list starts, so that a few deletions
	// below it still leave an older token in its window.
	anchorMargin = 10
	// leafTokens is the most kept tokens a search checks with one window
	// instead of splitting them further: a page less the absences it may
	// have to absorb.
	leafTokens = 80
	// maxRounds bounds the count-and-search rounds of a scrape; a list
	// that loses tokens faster than they are found is read whole instead.
	maxRounds = 8
	// maxAnchorTries bounds the moves down of a window that must start
	// below a given second: enough to halve ten million positions to 0.
	maxAnchorTries = 24
	// maxNewPages is the most pages of new tokens the end of the list is
	// read for, beyond half the kept tokens: more is a list to read anew.
	maxNewPages = 10
	// auditTokens is how many kept tokens an audit checks when its first
	// second does not fit one window: a page less the absences it may
	// have to absorb.
	auditTokens = 80
)

// unexplained is a state of the list that the kept tokens cannot explain:
// the listing reads the whole list again, and says why.
type unexplained struct{ reason, detail string }

func (u *unexplained) Error() string {
	return fmt.Sprintf("the kept tokens do not explain the list (%s): %s", u.reason, u.detail)
}

// Reasons for reading the whole list again, as the metric labels them.
const (
	reasonMoreTokens    = "more_tokens_than_kept"
	reasonUnknownToken  = "unknown_old_token"
	reasonNotConverging = "deletions_outpace_search"
	reasonCheaper       = "cheaper_than_search"
)

// incremental keeps the list between scrapes and reads only what changed.
// Its methods are called one scrape at a time.
type incremental struct {
	state   state
	known   known
	reading *reading
	// complete is the newest createdAt second through which the kept
	// tokens hold every token of the list: later tokens sort after them.
	complete uint32
	// cursor is where the next audit starts, an index into known.
	cursor int
	// hints are the ranges a search cut short left unfinished.
	hints []span
	// backlog is how many kept tokens the last count found gone that no
	// search has dropped since: the end of the list lies that much lower.
	backlog int
	// audited is set once this scrape's audit is done.
	audited bool
	// onReread is told of each reading of the whole list after the first.
	onReread func(reason string, err error)
	sleep    func(context.Context, time.Duration) error
	// logger takes a debug line for each count and search.
	logger log.Logger
}

// list brings the kept tokens up to date within one scrape.
func (inc *incremental) list(ctx context.Context, rd *reader, keep int) (*TokenList, error) {
	if inc.state == stateSynced {
		inc.state = stateReconciling
	}
	inc.audited = false
	now := rd.now()
	inc.known.remove(func(e *entry) bool { return expiredBy(e.Record, now.Add(rd.clock.lo)) })
	started := inc.state == stateEmpty
	for {
		publishable, err := inc.step(ctx, rd, started)
		var u *unexplained
		switch {
		case errors.As(err, &u) && (u.reason == reasonCheaper || u.reason == reasonNotConverging):
			// The kept tokens still hold: a reading of the whole list
			// replaces them only if it ends within this scrape.
			inc.onReread(u.reason, err)
			if err := inc.rereadNow(ctx, rd); err != nil {
				return nil, err
			}
			return inc.publish(rd, keep), nil
		case errors.As(err, &u) && !started:
			inc.onReread(u.reason, err)
			inc.reset()
			started = true
			continue
		case err != nil:
			return nil, err
		case publishable:
			return inc.publish(rd, keep), nil
		}
	}
}

// rereadNow reads the whole list within this scrape and, when that ends,
// keeps what it read instead of the kept tokens: every token it holds was
// in the list during the scrape, and every token in the list all along is
// among them. A reading that does not end is dropped, and the kept tokens
// stay as they were.
func (inc *incremental) rereadNow(ctx context.Context, rd *reader) error {
	rg := &reading{}
	if err := rg.advance(ctx, rd); err != nil {
		return fmt.Errorf("%w: a reading of the whole list did not end within the scrape: %w", ErrBehind, err)
	}
	k, complete, err := rg.result(rd.now())
	if err != nil {
		return err
	}
	inc.known, inc.complete = k, complete
	inc.state = stateReconciling
	return nil
}

// step does the work of the current state and moves to the next one. It
// reports whether the kept tokens may be published: every one of them was
// in the list at some instant of this scrape, and every token in the list
// all along is among them.
func (inc *incremental) step(ctx context.Context, rd *reader, startedThisScrape bool) (bool, error) {
	switch inc.state {
	case stateEmpty:
		inc.reading = &reading{}
		inc.state = stateReading
		return false, nil
	case stateReading:
		if err := inc.reading.advance(ctx, rd); err != nil {
			if errors.Is(err, ErrInconsistent) {
				// The list moved under the reading in a way it cannot
				// follow from where it stopped: start it again.
				inc.state = stateEmpty
			}
			return false, fmt.Errorf("%w: %w", ErrSyncing, err)
		}
		k, complete, err := inc.reading.result(rd.now())
		inc.reading = nil
		if err != nil {
			inc.state = stateEmpty
			return false, err
		}
		inc.known, inc.complete = k, complete
		inc.state = stateReconciling
		// A reading done within this scrape holds every token that stayed
		// in the list during it, and each token it holds was there when
		// its page was read: it may be published as it is.
		return startedThisScrape, nil
	case stateReconciling:
		err := inc.reconcile(ctx, rd)
		var u *unexplained
		if errors.As(err, &u) && u.reason == reasonNotConverging &&
			!estimateFull(inc.known.len(), rd.slowest(), rd.concurrency).fits(ctx, rd.now(), rd.left()) {
			// A reading of the whole list would not end within this
			// scrape: keep what is kept and go on at the next one.
			return false, fmt.Errorf("%w: %s; a reading of the whole list does not fit this scrape's time and share of the rate limit", ErrBehind, u.detail)
		}
		if err != nil {
			return false, err
		}
		inc.state = stateSynced
		return false, nil
	case stateSynced:
		if inc.audited {
			// One audit a scrape: the count after it found the kept
			// tokens in the list.
			return true, nil
		}
		inc.audited = true
		// The count already proved the kept tokens: an audit that cannot
		// finish changes nothing, one that finds the kept tokens wrong
		// starts a reading.
		var u *unexplained
		dropped, err := inc.audit(ctx, rd)
		if errors.As(err, &u) {
			return false, err
		}
		if dropped > 0 {
			// The count found every kept token, the audit found some
			// gone: deleted since, or pages that contradict each other.
			// Count again before publishing.
			inc.state = stateReconciling
			return false, nil
		}
		return true, nil
	}
	return false, fmt.Errorf("unknown state %d", inc.state)
}

// seed starts from the tokens k of a full listing, which holds every
// token of the list through second complete: the next scrape counts and
// searches what changed since, as after a reading.
func (inc *incremental) seed(k known, complete uint32) {
	inc.reset()
	inc.known, inc.complete, inc.state = k, complete, stateReconciling
}

func (inc *incremental) reset() {
	*inc = incremental{onReread: inc.onReread, sleep: inc.sleep, logger: inc.logger}
}

// progress is how much of a reading of the whole list is done: 1 when none
// is going on.
func (inc *incremental) progress() float64 {
	switch inc.state {
	case stateEmpty:
		return 0
	case stateReading:
		return inc.reading.progress()
	}
	return 1
}

func (inc *incremental) publish(rd *reader, keep int) *TokenList {
	now := rd.now()
	return &TokenList{
		records:   inc.known.records(),
		count:     inc.known.len(),
		Values:    inc.known.firstValues(now.Unix(), keep),
		Requests:  rd.spent(),
		FetchedAt: now,
	}
}

// expiredBy reports whether r had certainly expired by t.
func expiredBy(r apiclient.Record, t time.Time) bool {
	return r.Expires != 0 && int64(r.Expires) <= t.Unix()
}

// reconcile counts the list against the kept tokens and finds the ones
// gone, until a count finds every kept token in the list.
func (inc *incremental) reconcile(ctx context.Context, rd *reader) error {
	for round := 0; round < maxRounds; round++ {
		// A kept token that expires while the counting read is under way
		// leaves the count ambiguous, and costs a second read: start the
		// read clear of the next expiry instead, which costs only time.
		if wait := inc.clearOfExpiries(rd.clock, rd.now(), rd.slowest()); wait > 0 {
			if err := inc.sleep(ctx, wait); err != nil {
				return err
			}
		}
		chain, err := inc.readEnd(ctx, rd)
		if err != nil {
			return err
		}
		if len(chain) > 1 {
			// New tokens spanned several reads: the count needs one read
			// that sees them all at one instant, which the next round makes
			// from above the newest complete second. Tokens of a second not
			// over yet (a burst under way) stay above it: wait until it is.
			if wait := rd.clock.untilComplete(chain[len(chain)-1].last(), rd.now()); wait > 0 {
				if err := inc.sleep(ctx, wait); err != nil {
					return err
				}
			}
			continue
		}
		gone, wait := inc.count(chain[0])
		level.Debug(inc.logger).Log("msg", "counted the list against the kept tokens", "round", round,
			"listed", chain[0].start+len(chain[0].tokens), "kept", inc.known.len(), "gone", gone, "wait", wait, "requests", rd.spent())
		switch {
		case wait > 0:
			// Tokens expiring while the page was read leave the count
			// ambiguous: count again once they have certainly expired.
			if err := inc.sleep(ctx, wait); err != nil {
				return err
			}
			continue
		case gone < 0:
			return &unexplained{reasonMoreTokens, fmt.Sprintf("api.video lists %d more tokens than kept", -gone)}
		case gone == 0:
			inc.backlog = 0
			return nil
		}
		inc.backlog = gone
		// The list as the count found it, which a reading would cost.
		listed := chain[0].start + len(chain[0].tokens)
		if full := estimateFull(listed, rd.slowest(), rd.concurrency); searchCost(gone, inc.known.len()) >= full.requests &&
			full.fits(ctx, rd.now(), rd.left()) {
			return &unexplained{reasonCheaper, fmt.Sprintf("finding %d gone tokens would cost more than reading all %d", gone, inc.known.len())}
		}
		found, rebased, err := inc.search(ctx, rd, gone)
		inc.backlog = max(gone-found, 0)
		level.Debug(inc.logger).Log("msg", "searched for gone tokens", "round", round, "gone", gone, "found", found, "rebased", rebased, "hints", len(inc.hints), "requests", rd.spent(), "err", err)
		if err != nil {
			return err
		}
	}
	return &unexplained{reasonNotConverging, fmt.Sprintf("tokens still missing after %d rounds of counting and searching", maxRounds)}
}

// searchCost is about how many requests a search for gone tokens among
// tokens takes: a probe per halving down to a leaf, and a check per leaf.
func searchCost(gone, tokens int) int {
	halvings := 0
	for n := tokens; n > leafTokens; n /= 2 {
		halvings++
	}
	return min(gone*(halvings+1), gone+tokens/leafTokens*2)
}

// readEnd reads the end of the list from below the newest complete second,
// adds the new tokens, and returns the chain of runs it read.
func (inc *incremental) readEnd(ctx context.Context, rd *reader) ([]*run, error) {
	base, err := inc.anchored(ctx, rd, inc.known.lower(inc.complete+1)-anchorMargin-inc.backlog, inc.complete+1)
	if err != nil {
		return nil, err
	}
	if n := inc.known.len(); base.total-n > max(n/2, maxNewPages*pageSize) {
		// A list that grew this much is read anew, over as many scrapes as
		// it takes and into room made for it at once, rather than page by
		// page into the kept tokens.
		return nil, &unexplained{reasonMoreTokens, fmt.Sprintf("api.video lists %d tokens, %d kept", base.total, n)}
	}
	chain, err := rd.climb(ctx, base, atListEnd, toListEnd)
	if err != nil {
		return nil, err
	}
	for _, r := range chain {
		for _, t := range r.tokens {
			if t.Created <= inc.complete && !inc.known.has(t.Record) {
				return nil, &unexplained{reasonUnknownToken, "a token older than the newest complete second was not kept"}
			}
		}
		inc.known.add(r.tokens)
	}
	// Every token created before the first read and still listed is now
	// kept: it sorts after the window's older token, which the chain covers.
	if c := secondBefore(base.sent.Add(base.clock.lo)); c > inc.complete {
		inc.complete = c
	}
	return chain, nil
}

// defaultLatency stands for a request's time before any request of the
// scrape has been timed.
const defaultLatency = 150 * time.Millisecond

// clearOfExpiries returns how long to wait so that a read sent now and
// taking about latency is clear of every kept token's expiry, on
// api.video's clock as clock bounds it; 0 when it already is. Tokens
// expire on whole seconds, so at most the rest of one second.
func (inc *incremental) clearOfExpiries(clock clockBounds, now time.Time, latency time.Duration) time.Duration {
	return clock.clearOf(now, latency, func(yield func(uint32) bool) {
		for i := range inc.known.entries {
			if !yield(inc.known.entries[i].Expires) {
				return
			}
		}
	})
}

// secondBefore is the last whole second that ended by t.
func secondBefore(t time.Time) uint32 {
	s := t.Unix() - 1
	if s < 0 {
		return 0
	}
	return uint32(s)
}

// anchored reads a window from position lo, moved down until it starts the
// list or holds a token created before second c.
func (inc *incremental) anchored(ctx context.Context, rd *reader, lo int, c uint32) (*run, error) {
	for try := 0; ; try++ {
		r, err := rd.readFrom(ctx, lo)
		if err != nil {
			return nil, err
		}
		if r.start == 0 || !r.empty() && r.first() < c {
			return rd.endingAnchor(ctx, r, c)
		}
		if try == maxAnchorTries {
			return nil, fmt.Errorf("%w: no window below the tokens created from %s", ErrInconsistent, time.Unix(int64(c), 0).UTC().Format(time.RFC3339))
		}
		// Down a step, twice as far at each try: a few deletions need one,
		// a list that shrank a lot is reached in a few more. A page past
		// the end that gave a total says where to look.
		lo -= step << try
		if r.pastEnd && r.total >= 0 {
			lo = min(lo, r.total-pageSize/2)
		}
	}
}

// endingAnchor returns r, or in its place a window that holds the position
// past r when r is a full page ending where its total says the list ends:
// only a short page shows that the list ends there, and a count needs the
// end in one read. The window replaces r when it is short and also holds a
// token created before second c.
func (rd *reader) endingAnchor(ctx context.Context, r *run, c uint32) (*run, error) {
	if r.atEnd || r.start+len(r.tokens) != r.total {
		return r, nil
	}
	below, err := rd.readBelow(ctx, r.total)
	if err != nil {
		return nil, err
	}
	if atListEnd(below) && (below.start == 0 || !below.empty() && below.first() < c) {
		return below, nil
	}
	return r, nil
}

// count compares a read that reached the end of the list with the kept
// tokens. It returns how many kept tokens the list lacked then, or a time
// to wait when tokens expiring during the read leave that ambiguous.
func (inc *incremental) count(r *run) (gone int, wait time.Duration) {
	listed := r.start + len(r.tokens)
	earliest, latest := r.sent.Add(r.clock.lo), r.received.Add(r.clock.hi)
	// Tokens that had certainly expired by the read are not counted, so
	// nothing would show them in the list then: they are dropped.
	inc.known.remove(func(e *entry) bool { return expiredBy(e.Record, earliest) })
	alive, uncertain := 0, 0
	var lastUncertain uint32
	for i := range inc.known.entries {
		rec := inc.known.entries[i].Record
		switch {
		case expiredBy(rec, earliest):
		case expiredBy(rec, latest):
			alive++
			uncertain++
			lastUncertain = max(lastUncertain, rec.Expires)
		default:
			alive++
		}
	}
	gone = alive - listed
	if gone == 0 || uncertain == 0 {
		return gone, 0
	}
	return gone, max(r.clock.certainlyPast(int64(lastUncertain)).Sub(r.received), time.Millisecond)
}

// search finds kept tokens gone from the list, about gone of them, and
// drops them. It bisects on createdAt seconds: a window read where the
// tokens of second c begin shows how many kept tokens before c are gone,
// and a range of seconds with some gone and few tokens is checked whole.
//
// A search cut short by the scrape's budget or time leaves the ranges it
// did not finish as hints: the next search checks them first, so that a
// large backlog of gone tokens shrinks from scrape to scrape instead of
// being searched from the top each time.
func (inc *incremental) search(ctx context.Context, rd *reader, gone int) (found, rebased int, err error) {
	s := inc.searcher(ctx, rd)
	hints := inc.hints
	inc.hints = nil
	for _, h := range hints {
		lo, hi := inc.known.lower(h.from), len(inc.known.entries)
		if h.to != 0 {
			hi = inc.known.lower(h.to)
		}
		if err = s.split(ctx, lo, hi, 0, gone); err != nil {
			break
		}
	}
	if err == nil && len(s.gone) < gone {
		err = s.split(ctx, 0, inc.known.len(), 0, gone)
	}
	if errors.Is(err, errPaused) {
		inc.hints = s.unfinishedSpans()
	}
	s.drop()
	return len(s.gone), s.rebased, err
}

func (inc *incremental) searcher(ctx context.Context, rd *reader) *searcher {
	return &searcher{inc: inc, rd: rd, gone: map[uint64]bool{}, expired: map[uint64]bool{}, expiring: inc.expiringBy(ctx, rd.clock, rd.now())}
}

// drop removes the kept tokens the search found gone or expired, and
// returns how many.
func (s *searcher) drop() int {
	return s.inc.known.remove(func(e *entry) bool { return s.gone[e.ID()] || s.expired[e.ID()] })
}

// span is a range of createdAt seconds, to exclusive (0: to the end).
type span struct{ from, to uint32 }

// unfinishedSpans returns the ranges a search did not finish, as seconds,
// which stay valid as tokens are added and dropped.
func (s *searcher) unfinishedSpans() []span {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.inc.known.entries
	spans := make([]span, 0, len(s.unfinished))
	for _, r := range s.unfinished {
		sp := span{from: e[r[0]].Created}
		if r[1] < len(e) {
			sp.to = e[r[1]].Created
		}
		spans = append(spans, sp)
	}
	return spans
}

// searcher is one search; its ranges are searched concurrently.
type searcher struct {
	inc *incremental
	rd  *reader

	mu   sync.Mutex
	gone map[uint64]bool
	// expired are the kept tokens a check did not see that may have
	// expired by then: dropped too, but not among the gone searched for.
	expired map[uint64]bool
	// unfinished are the ranges of kept tokens, lo and hi, that the search
	// could not finish for want of requests or time.
	unfinished [][2]int
	// probes are the windows the search read, which may hold a range to
	// check whole.
	probes []*run
	// rebased counts the parts whose edges' figures probes inside them
	// showed out of date.
	rebased int
	// expiring are the indexes, in order, of the kept tokens that may
	// expire while the search reads: each one before a probe's position
	// that had expired by then moved it down by one.
	expiring []int
}

// expiringBy returns the indexes of the kept tokens that expire by the end
// of the scrape, in order.
func (inc *incremental) expiringBy(ctx context.Context, clock clockBounds, now time.Time) []int {
	end := now.Add(time.Minute)
	if deadline, ok := ctx.Deadline(); ok {
		end = deadline
	}
	to := end.Add(clock.hi).Unix()
	var idx []int
	for i := range inc.known.entries {
		if x := int64(inc.known.entries[i].Expires); x != 0 && x <= to {
			idx = append(idx, i)
		}
	}
	return idx
}

// expiriesBefore yields the expiries of the kept tokens before index b
// that may expire during the search.
func (s *searcher) expiriesBefore(b int) iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		for _, i := range s.expiring {
			if i >= b || !yield(s.inc.known.entries[i].Expires) {
				return
			}
		}
	}
}

// expiredBefore is how many kept tokens before index b had expired by t on
// our clock: certainly, and possibly.
func (s *searcher) expiredBefore(b int, t time.Time) (certainly, possibly int) {
	for _, i := range s.expiring {
		if i >= b {
			break
		}
		rec := s.inc.known.entries[i].Record
		if expiredBy(rec, t.Add(s.rd.clock.lo)) {
			certainly++
		}
		if expiredBy(rec, t.Add(s.rd.clock.hi)) {
			possibly++
		}
	}
	return certainly, possibly
}

// split searches the kept tokens lo..hi-1, which begin and end on second
// boundaries, knowing that before lo about goneLo are gone and before hi
// about goneHi. It probes one boundary, or three at once when the scrape
// has the requests to spare (see ways), and searches the parts between
// them concurrently.
func (s *searcher) split(ctx context.Context, lo, hi, goneLo, goneHi int) error {
	if goneHi <= goneLo || lo >= hi {
		return nil
	}
	var bounds []int
	if hi-lo > leafTokens {
		bounds = s.inc.boundaries(lo, hi, s.ways(ctx, hi-lo, goneHi-goneLo))
	}
	if len(bounds) == 0 {
		return s.unfinishedIf(s.check(ctx, lo, hi, goneLo, goneHi), lo, hi)
	}
	found := make([]probed, len(bounds))
	err := concurrently(len(bounds), func(i int) (err error) {
		found[i], err = s.probe(ctx, bounds[i], goneLo, goneHi)
		return err
	})
	if err != nil {
		return s.unfinishedIf(err, lo, hi)
	}
	if goneLo, goneHi, err = s.rebase(ctx, lo, goneLo, goneHi, found); err != nil {
		return s.unfinishedIf(err, lo, hi)
	}
	// gone[i] is how many are gone before the i-th edge: at least
	// gone[i][0], at most gone[i][1].
	edges := append(append([]int{lo}, bounds...), hi)
	gone := make([][2]int, len(edges))
	gone[0], gone[len(edges)-1] = [2]int{goneLo, goneLo}, [2]int{goneHi, goneHi}
	for i, p := range found {
		gone[i+1] = [2]int{min(max(p.lo, goneLo), goneHi), min(max(p.hi, goneLo), goneHi)}
	}
	// Each part is searched for as many as it may hold.
	return concurrently(len(edges)-1, func(i int) error {
		return s.split(ctx, edges[i], edges[i+1], gone[i][0], gone[i+1][1])
	})
}

// concurrently runs f(0) to f(n-1) at once and returns all their errors,
// a panic in one among them.
func concurrently(n int, f func(i int) error) error {
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- recovering(func() error { return f(i) })() }()
	}
	var err error
	for range n {
		err = errors.Join(err, <-errs)
	}
	return err
}

// ways is how many parts a search splits n kept tokens into, about gone of
// them gone. Four parts take half the rounds of requests of halving, each
// round a request's time and, with tokens expiring, a wait of up to a
// second, for half as many requests more. So four only when halving would
// take more than half the time left before the deadline, and the share
// every scrape has or the scrape's budget has the requests for the whole
// search; else two, which keeps the cost near the bound when time allows.
func (s *searcher) ways(ctx context.Context, n, gone int) int {
	halvings, quarterings := 0, 0
	for m := n; m > leafTokens; m /= 2 {
		halvings++
	}
	for m := n; m > leafTokens; m /= 4 {
		quarterings++
	}
	need := 3*gone*quarterings + gone
	round := s.rd.slowest() + s.rd.clock.width()
	deadline, ok := ctx.Deadline()
	if !ok || 2*time.Duration(halvings)*round <= deadline.Sub(s.rd.now()) {
		return 2
	}
	if left := s.rd.sustainedLeft(); left == 0 || left >= need || s.rd.left() >= need {
		return 4
	}
	return 2
}

// boundaries returns up to ways-1 distinct indexes in (lo, hi), in order,
// where a new second begins, near the points that split lo..hi-1 into ways
// equal parts.
func (inc *incremental) boundaries(lo, hi, ways int) []int {
	var bounds []int
	for k := 1; k < ways; k++ {
		b := inc.boundaryNear(lo+(hi-lo)*k/ways, lo, hi)
		if b >= 0 && (len(bounds) == 0 || b > bounds[len(bounds)-1]) {
			bounds = append(bounds, b)
		}
	}
	return bounds
}

// unfinishedIf notes lo..hi as unfinished when err is the scrape running
// out of requests or time, and returns err.
func (s *searcher) unfinishedIf(err error, lo, hi int) error {
	if errors.Is(err, errPaused) {
		s.mu.Lock()
		s.unfinished = append(s.unfinished, [2]int{lo, hi})
		s.mu.Unlock()
	}
	return err
}

// boundaryNear returns the index in (lo, hi) nearest i where a new second
// begins, or -1 when lo..hi-1 is one second.
func (inc *incremental) boundaryNear(i, lo, hi int) int {
	e := inc.known.entries
	for d := 0; i-d > lo || i+d < hi; d++ {
		if j := i + d; j > lo && j < hi && e[j].Created != e[j-1].Created {
			return j
		}
		if j := i - d; j > lo && j < hi && e[j].Created != e[j-1].Created {
			return j
		}
	}
	return -1
}

// probed is what a probe found of the kept tokens before its index: at
// least lo gone and at most hi. exact says its window held the start of
// its second; otherwise lo and hi bound one side only, and count within
// what the part's edges allow.
type probed struct {
	lo, hi int
	exact  bool
}

// rebase returns the part's edges' figures, goneLo gone before lo and
// goneHi before its end, brought up to the probes found inside it. A probe
// that certainly found more than goneHi shows tokens deleted since the
// edges were probed: below lo, they count in every probe above them, and
// would send the search to the wrong part. lo is probed again, at once,
// and both edges move by what it gained; the end's figure is at least
// what the probes found.
func (s *searcher) rebase(ctx context.Context, lo, goneLo, goneHi int, found []probed) (int, int, error) {
	most := goneHi
	for _, p := range found {
		if p.exact {
			most = max(most, p.lo)
		}
	}
	if most == goneHi {
		return goneLo, goneHi, nil
	}
	s.mu.Lock()
	s.rebased++
	s.mu.Unlock()
	if lo > 0 {
		// lo can have gained no more than the probes found in excess.
		ceiling := goneLo + most - goneHi
		p, err := s.probe(ctx, lo, goneLo, ceiling)
		if err != nil {
			return 0, 0, err
		}
		if gained := min(p.lo, ceiling) - goneLo; p.exact && gained > 0 {
			goneLo, goneHi = goneLo+gained, goneHi+gained
		}
	}
	return goneLo, max(goneHi, most), nil
}

// probe reads where the tokens of the second that begins at index b lie
// and finds how many kept tokens before b are gone, about goneLo to
// goneHi. Kept tokens before b that expired since the count are not in the
// list either, but are not among the gone ones searched for; those that
// expired during the read, within the clock margin, leave the figure
// uncertain by as many.
func (s *searcher) probe(ctx context.Context, b, goneLo, goneHi int) (probed, error) {
	c := s.inc.known.entries[b].Created
	// Tokens expire on whole seconds: a read sent clear of those before b
	// counts them exactly, which costs at most the rest of a second.
	if wait := s.rd.clock.clearOf(s.rd.now(), s.rd.slowest(), s.expiriesBefore(b)); wait > 0 {
		if err := s.inc.sleep(ctx, wait); err != nil {
			return probed{}, err
		}
	}
	expired, _ := s.expiredBefore(b, s.rd.now())
	at := b - expired
	from, to := at-goneHi-2, at-goneLo+2
	if to-from+1 > pageSize {
		mid := (from + to) / 2
		from, to = mid-pageSize/2, mid+pageSize/2-1
	}
	r, err := s.rd.read(ctx, from, to)
	if err != nil {
		return probed{}, err
	}
	s.mu.Lock()
	s.probes = append(s.probes, r)
	s.mu.Unlock()
	// Second c begins in the window at j, or above or below it.
	j := slices.IndexFunc(r.tokens, func(t apiclient.Token) bool { return t.Created >= c })
	certainly, _ := s.expiredBefore(b, r.sent)
	_, possibly := s.expiredBefore(b, r.received)
	exact := j > 0 || j == 0 && r.start == 0
	gone := func(expired int) int {
		at := b - expired
		switch {
		case exact:
			return at - (r.start + j)
		case j < 0:
			return at - (r.start + len(r.tokens))
		default:
			return at - r.start
		}
	}
	return probed{lo: gone(possibly), hi: gone(certainly), exact: exact}, nil
}

// check reads the seconds of the kept tokens lo..hi-1 whole, from a token
// older than the first to one newer than the last, and marks the kept
// tokens it did not see as gone.
func (s *searcher) check(ctx context.Context, lo, hi, goneLo, goneHi int) error {
	chain := s.covering(lo, hi)
	if chain == nil {
		var err error
		// Kept tokens expired since the count moved the range down too.
		below, _ := s.expiredBefore(lo, s.rd.now())
		within, _ := s.expiredBefore(hi, s.rd.now())
		if chain, err = s.inc.cover(ctx, s.rd, lo, hi, goneLo+below, goneHi+within); err != nil {
			return err
		}
	}
	seen, err := s.inc.seen(chain, lo, hi)
	if err != nil {
		return err
	}
	// A token not seen that may have expired by the last read is expired,
	// if not deleted: either way it goes.
	last := chain[0].received
	for _, r := range chain {
		last = later(last, r.received)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.inc.known.entries[lo:hi] {
		switch {
		case seen[e.ID()]:
		case expiredBy(e.Record, last.Add(s.rd.clock.hi)):
			s.expired[e.ID()] = true
		default:
			s.gone[e.ID()] = true
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// covering returns a probe window that holds the seconds of the kept tokens
// lo..hi-1 whole, as a chain of one, or nil.
func (s *searcher) covering(lo, hi int) []*run {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.probes {
		if s.inc.holdsWhole(r, lo, hi) {
			return []*run{r}
		}
	}
	return nil
}

// wholeSecondsIn returns hi such that run r holds the seconds of the kept
// tokens lo..hi-1 whole, as many as it does; lo when it holds none.
func (inc *incremental) wholeSecondsIn(r *run, lo int) int {
	e := inc.known.entries
	best := lo
	for hi := lo; hi < len(e); {
		next := inc.known.lower(e[hi].Created + 1)
		if !inc.holdsWhole(r, lo, next) {
			break
		}
		best, hi = next, next
	}
	return best
}

// holdsWhole reports whether a run holds the seconds of the kept tokens
// lo..hi-1 whole: it starts the list or holds an older token, and ends the
// list or holds a newer one.
func (inc *incremental) holdsWhole(r *run, lo, hi int) bool {
	e := inc.known.entries
	if r.empty() {
		return false
	}
	below := r.start == 0 || r.first() < e[lo].Created
	above := hi == len(e) && atListEnd(r) || hi < len(e) && r.last() >= e[hi].Created
	return below && above
}

// cover reads the seconds of the kept tokens lo..hi-1 whole: a chain from a
// token older than the first to one newer than the last.
func (inc *incremental) cover(ctx context.Context, rd *reader, lo, hi, goneLo, goneHi int) ([]*run, error) {
	e := inc.known.entries
	base, err := inc.anchored(ctx, rd, lo-goneHi-2, e[lo].Created)
	if err != nil {
		return nil, err
	}
	newer := func(r *run) bool { return !r.empty() && hi < len(e) && r.last() >= e[hi].Created }
	return rd.climb(ctx, base, newer, hi-goneLo+1)
}

// seen returns the tokens a chain covering the kept tokens lo..hi-1 holds.
// A token in their seconds that is older than the newest complete second
// and not kept is unexplained.
func (inc *incremental) seen(chain []*run, lo, hi int) (map[uint64]bool, error) {
	e := inc.known.entries
	first := e[lo].Created
	seen := map[uint64]bool{}
	for _, r := range chain {
		for _, t := range r.tokens {
			seen[t.ID()] = true
			if t.Created >= first && t.Created <= inc.complete && (hi == len(e) || t.Created < e[hi].Created) && !inc.known.has(t.Record) {
				return nil, &unexplained{reasonUnknownToken, "a page showed a token older than the newest complete second that was not kept"}
			}
		}
	}
	return seen, nil
}

// audit checks the next kept tokens against the list, those of the whole
// seconds one window holds, drops those gone and returns how many: every
// kept token is checked in turn, whatever the count said.
func (inc *incremental) audit(ctx context.Context, rd *reader) (int, error) {
	n := inc.known.len()
	if n == 0 {
		return 0, nil
	}
	if inc.cursor >= n {
		inc.cursor = 0
	}
	lo := inc.known.lower(inc.known.entries[inc.cursor].Created)
	s := inc.searcher(ctx, rd)
	// One window from just below the cursor, and the whole seconds it
	// holds: a count just found the kept tokens at their positions, so
	// the window holds about as many of them as it has room for.
	w, err := rd.readFrom(ctx, lo-anchorMargin)
	if err != nil {
		return 0, err
	}
	hi := inc.wholeSecondsIn(w, lo)
	if hi > lo {
		s.probes = append(s.probes, w)
	} else {
		// Its first second did not fit: the seconds up to auditTokens
		// further, read as a search checks them.
		hi = inc.known.lower(inc.known.entries[min(lo+auditTokens, n-1)].Created + 1)
		if hi <= lo {
			hi = n
		}
	}
	if err := s.check(ctx, lo, hi, 0, 0); err != nil {
		return 0, err
	}
	inc.cursor = hi - s.drop()
	return len(s.gone), nil
}
