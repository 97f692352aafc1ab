package listing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// Pager fetches a page of the account's upload tokens, oldest first;
// *apiclient.Client is one.
type Pager interface {
	Page(ctx context.Context, number, size int) (*apiclient.Page, error)
}

// RateLimiter reports the rate-limit headers of the latest reply;
// *apiclient.Client is one. A Pager that is also a RateLimiter has each
// scrape spend at most its share of the rate limit.
type RateLimiter interface {
	RateLimit() (apiclient.RateLimit, bool)
}

// Mode is how the tokens are listed.
type Mode int

const (
	// ModeAuto lists in full while a full listing fits comfortably in a
	// scrape's time and share of the rate limit, incrementally otherwise.
	ModeAuto Mode = iota
	// ModeFull reads every page on each scrape.
	ModeFull
	// ModeIncremental keeps the list between scrapes and reads what changed.
	ModeIncremental
)

var modeNames = [...]string{ModeAuto: "auto", ModeFull: "full", ModeIncremental: "incremental"}

// ModeNames returns the names of the modes, the default first.
func ModeNames() []string { return modeNames[:] }

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// UnmarshalText sets m from one of ModeNames.
func (m *Mode) UnmarshalText(text []byte) error {
	for i, name := range modeNames {
		if string(text) == name {
			*m = Mode(i)
			return nil
		}
	}
	return fmt.Errorf("unknown listing mode %q: want one of %s", text, strings.Join(modeNames[:], ", "))
}

// MarshalText returns the mode's name.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Anomaly is a way api.video's replies depart from its documented
// contract.
type Anomaly string

const (
	// AnomalyUnsorted: a page was not in createdAt order, as if sortBy
	// were ignored.
	AnomalyUnsorted Anomaly = "unsorted"
	// AnomalyTotalsLag: a short page's itemsTotal disagreed with where the
	// page showed the list to end.
	AnomalyTotalsLag Anomaly = "totals_lag"
)

// Anomalies returns every Anomaly.
func Anomalies() []Anomaly { return []Anomaly{AnomalyUnsorted, AnomalyTotalsLag} }

// Errors a listing returns, for errors.Is.
var (
	// ErrInconsistent means the list moved faster than it could be read,
	// or its pages contradict each other.
	ErrInconsistent = errors.New("token list changed faster than it could be read, or its pages contradict each other")
	// ErrSyncing means the first reading of the whole list is still going on.
	ErrSyncing = errors.New("reading of the account's tokens still in progress")
	// ErrBehind means tokens went faster than an incremental listing
	// could find them in this scrape.
	ErrBehind = errors.New("incremental listing behind the deletions")
	// ErrUpstream means api.video's replies break the contract the
	// listing relies on.
	ErrUpstream = errors.New("api.video's replies break the listing's assumptions")
	// ErrBackingOff means a listing is not tried, after an upstream fault,
	// until its back-off ends.
	ErrBackingOff = errors.New("not listing until the back-off ends")
)

// TooLargeError is a full listing that would not fit in the scrape: it
// stopped after its first page.
type TooLargeError struct {
	Tokens      int
	Estimate    estimate
	Concurrency int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("a full listing of %d tokens needs about %d requests and %s at concurrency %d, more than this scrape can comfortably spend: use --apivideo.listing=auto or incremental",
		e.Tokens, e.Estimate.requests, e.Estimate.duration.Round(time.Millisecond), e.Concurrency)
}

// PanicError is a listing that panicked; the listing starts again from a
// clean state.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("listing panicked: %v", e.Value) }

// TokenList is the result of a listing, shaped for the collector:
//
//   - Records yields every active token once, 16 bytes each, in no
//     particular order: counts, expiries, ttls and creation times come
//     from them without any token string;
//   - Values holds the tokens with their values that the collector may
//     publish: the keep first in the order of publication
//     (ComparePublication), in no particular order.
//
// A TokenList is valid until the next call of the Lister that returned it,
// which may update its records in place: a collector must be done with a
// list before it asks for the next.
type TokenList struct {
	records iter.Seq[apiclient.Record]
	count   int
	Values  []apiclient.Token
	// Requests is the number of list requests the listing made.
	Requests int
	// FetchedAt is when the listing finished.
	FetchedAt time.Time
}

// NewTokenList returns a TokenList of records, for sources other than a
// Lister.
func NewTokenList(records []apiclient.Record, values []apiclient.Token, fetchedAt time.Time) *TokenList {
	return &TokenList{
		records: func(yield func(apiclient.Record) bool) {
			for _, r := range records {
				if !yield(r) {
					return
				}
			}
		},
		count:     len(records),
		Values:    values,
		FetchedAt: fetchedAt,
	}
}

// Records yields the records of the active tokens.
func (l *TokenList) Records() iter.Seq[apiclient.Record] { return l.records }

// Len is how many records Records yields.
func (l *TokenList) Len() int { return l.count }

// ComparePublication orders tokens for publication when per-token series
// are capped: every token that never expires, oldest first, comes before
// every expiring token, and expiring tokens come closest to expiry first.
// Ties go by ID, so that the order is total and the choice under a cap does
// not depend on the order in which a listing saw the tokens.
func ComparePublication(a, b apiclient.Record) int {
	ka, kb := publicationKey(a), publicationKey(b)
	return cmp.Or(cmp.Compare(ka, kb), cmp.Compare(a.ID(), b.ID()))
}

func publicationKey(r apiclient.Record) uint64 {
	if r.NeverExpires() {
		return uint64(r.Created)
	}
	return 1<<32 | uint64(r.Expires)
}

// Options configure a Lister.
type Options struct {
	Mode Mode
	// Concurrency is how many pages are fetched at once; 1 when 0.
	Concurrency int
	// RateLimitShare is the most of the rate limit the listing may spend,
	// from 0 to 1; 0.5 when 0.
	RateLimitShare float64
	Logger         log.Logger
	// Now and Sleep are the clock; the wall clock when nil.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Status is what a Lister reports of itself.
type Status struct {
	// Mode is the listing in use: ModeFull or ModeIncremental.
	Mode Mode
	// SyncProgress is how much of a reading of the whole list that spans
	// scrapes is done, from 0 to 1; 1 when none is going on.
	SyncProgress float64
	// Rereads counts the readings of the whole list that the kept tokens
	// could not explain, by reason.
	Rereads map[string]int
	// Anomalies are the departures from the documented contract seen.
	Anomalies map[Anomaly]bool
}

// Lister lists an account's upload tokens, every one active during a
// scrape once; see the package doc. It is safe for concurrent use; its
// listings run one at a time.
type Lister struct {
	pager Pager
	opts  Options

	mu          sync.Mutex
	inUse       Mode
	inc         *incremental
	lastScrape  time.Time
	backoff     time.Duration
	backoffTill time.Time
	// spare is the tokens of the last full listing, which the next one
	// fills again; spareComplete, when not zero, says that listing
	// succeeded and holds every token of the list through that second.
	spare         known
	spareComplete uint32
	// incCost is the moving average of the incremental listing's requests
	// a scrape, which auto weighs against a full listing's.
	incCost float64
	// clock estimates api.video's clock against ours from its replies.
	clock clockEstimate

	// statusMu guards what Status reports, so that it never waits for a
	// listing.
	statusMu  sync.Mutex
	status    Status
	rereads   map[string]int
	anomalies map[Anomaly]bool
	// clockWarned is set once warnClock has said its piece.
	clockWarned bool
}

// costWeight is the weight of the latest scrape in incCost.
const costWeight = 0.3

// backoff bounds for a listing that failed on an upstream fault.
const (
	minBackoff = time.Minute
	maxBackoff = 15 * time.Minute
)

// New returns a Lister that reads through pager.
func New(pager Pager, opts Options) *Lister {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.RateLimitShare <= 0 || opts.RateLimitShare > 1 {
		opts.RateLimitShare = 0.5
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = apiclient.Sleep
	}
	l := &Lister{pager: pager, opts: opts, rereads: map[string]int{}, anomalies: map[Anomaly]bool{}}
	l.inUse = ModeFull
	if opts.Mode == ModeIncremental {
		l.inUse = ModeIncremental
	}
	l.inc = l.newIncremental()
	l.status = Status{Mode: l.inUse, SyncProgress: l.progress()}
	return l
}

func (l *Lister) newIncremental() *incremental {
	return &incremental{
		sleep:  l.opts.Sleep,
		logger: l.opts.Logger,
		onReread: func(reason string, err error) {
			l.statusMu.Lock()
			l.rereads[reason]++
			l.statusMu.Unlock()
			lvl := level.Warn
			if reason == reasonCheaper {
				lvl = level.Debug
			}
			lvl(l.opts.Logger).Log("msg", "reading the whole list again", "reason", reason, "err", err)
		},
	}
}

// ListUploadTokens lists the account's active tokens, with the values of
// the keep first in the order of publication. A listing that panics
// returns a *PanicError and leaves the Lister in a clean state.
func (l *Lister) ListUploadTokens(ctx context.Context, keep int) (list *TokenList, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
		if _, ok := errors.AsType[*PanicError](err); ok {
			l.inc = l.newIncremental()
		}
	}()
	now := l.opts.Now()
	if now.Before(l.backoffTill) {
		return nil, fmt.Errorf("%w at %s", ErrBackingOff, l.backoffTill.UTC().Format(time.RFC3339))
	}
	rd := l.reader(now)
	switch {
	case l.anomaly(AnomalyUnsorted):
		list, err = unordered(ctx, rd, keep)
	case l.inUse == ModeFull:
		list, err = l.full(ctx, rd, keep, now)
	default:
		list, err = l.inc.list(ctx, rd, keep)
		l.incCost = (1-costWeight)*l.incCost + costWeight*float64(rd.spent())
		if err == nil && l.opts.Mode == ModeAuto && l.inc.state == stateSynced {
			n := l.inc.known.len()
			e := estimateFull(n, rd.slowest(), rd.concurrency)
			// Judged against the budget every scrape has, not this one's,
			// which a fresh minute of the rate limit inflates: a full
			// listing that fits only then would switch back at the next.
			sustained := l.sustained(now)
			if e.fits(ctx, l.opts.Now(), sustained) && (fitsEasily(ctx, n, rd, sustained) || float64(e.requests) < l.incCost) {
				l.switchTo(ModeFull, fmt.Errorf("a full listing of %d tokens fits, at about %d requests a scrape against %.0f", n, e.requests, l.incCost))
			}
		}
	}
	l.lastScrape = now
	l.updateBackoff(now, err)
	l.statusMu.Lock()
	l.status.Mode, l.status.SyncProgress = l.inUse, l.progress()
	l.statusMu.Unlock()
	return list, err
}

// full lists in full. In auto, a listing that would not fit the scrape
// switches to the incremental listing, which starts from the tokens of the
// last full listing when that one succeeded: it then counts and searches
// what changed since, instead of reading the whole list anew.
func (l *Lister) full(ctx context.Context, rd *reader, keep int, now time.Time) (*TokenList, error) {
	list, spare, err := full(ctx, rd, keep, l.spare)
	_, tooLarge := errors.AsType[*TooLargeError](err)
	switch {
	case err == nil:
		// Every token created before the first request and still listed
		// at the end was read.
		l.spare, l.spareComplete = spare, secondBefore(now.Add(rd.clock.lo))
	case !tooLarge:
		l.spare, l.spareComplete = spare, 0
	case l.opts.Mode == ModeAuto:
		// A listing too large stops before it touches the spare tokens.
		last, complete := l.spare, l.spareComplete
		l.switchTo(ModeIncremental, err)
		if complete > 0 {
			l.inc.seed(last, complete)
		}
		return l.inc.list(ctx, rd, keep)
	}
	return list, err
}

// progress is how much of a reading of the whole list that spans scrapes
// is done; l.mu is held.
func (l *Lister) progress() float64 {
	if l.inUse == ModeIncremental {
		return l.inc.progress()
	}
	return 1
}

// fitsEasily reports whether a full listing of tokens would take at most a
// quarter of the time and share of requests a scrape has, so that modes
// do not flap around the threshold.
func fitsEasily(ctx context.Context, tokens int, rd *reader, budget int) bool {
	e := estimateFull(tokens, rd.slowest(), rd.concurrency)
	if deadline, ok := ctx.Deadline(); ok && e.duration.Seconds() > comfortTime/2*deadline.Sub(rd.now()).Seconds() {
		return false
	}
	return budget == 0 || float64(e.requests) <= comfortRequests/2*float64(budget)
}

func (l *Lister) switchTo(m Mode, why error) {
	level.Info(l.opts.Logger).Log("msg", "switching listing mode", "from", l.inUse, "to", m, "why", why)
	l.inUse = m
	l.spare, l.spareComplete = known{}, 0
	if m == ModeFull {
		l.inc = l.newIncremental()
	}
	l.incCost = 0
}

// updateBackoff starts or lengthens a back-off after an upstream fault and
// ends it after a success.
func (l *Lister) updateBackoff(now time.Time, err error) {
	switch {
	case err == nil:
		l.backoff = 0
	case errors.Is(err, ErrUpstream):
		l.backoff = min(max(2*l.backoff, minBackoff), maxBackoff)
		l.backoffTill = now.Add(l.backoff)
	}
}

// reader returns a reader for one scrape, with its share of the rate limit.
func (l *Lister) reader(now time.Time) *reader {
	clock, outside := l.clock.bounds()
	if outside {
		l.warnClock()
	}
	rd := &reader{
		pager:       l.pager,
		now:         l.opts.Now,
		concurrency: l.opts.Concurrency,
		slots:       make(chan struct{}, l.opts.Concurrency),
		onIssue:     l.noteAnomaly,
		started:     now,
		clock:       clock,
		dates:       &l.clock,
	}
	if l.opts.Mode != ModeFull {
		rd.limits = func() (int, int) { return l.budget(now), l.sustained(now) }
	}
	return rd
}

// budget is the scrape's share of the requests api.video allows: the share
// of what is left of the current minute (X-RateLimit-Remaining), and at
// least the share of the limit over the time since the last scrape, so
// that scrapes that failed for want of requests do not starve the ones
// after them; never more than what is left.
func (l *Lister) budget(now time.Time) int {
	limit, fair, ok := l.fairShare(now)
	if !ok {
		return 0
	}
	share := l.opts.RateLimitShare
	return max(min(int(max(share*float64(limit.Remaining), fair)), limit.Remaining), 1)
}

// sustained is the budget a scrape can have at every scrape: the share of
// the limit for the time since the last scrape, whatever is left of the
// minute now; 0 for no bound.
func (l *Lister) sustained(now time.Time) int {
	_, fair, ok := l.fairShare(now)
	if !ok {
		return 0
	}
	return max(int(fair), 1)
}

// fairShare returns the latest rate limit and the share of it that the
// time since the last scrape earns.
func (l *Lister) fairShare(now time.Time) (apiclient.RateLimit, float64, bool) {
	rl, ok := l.pager.(RateLimiter)
	if !ok {
		return apiclient.RateLimit{}, 0, false
	}
	limit, known := rl.RateLimit()
	if !known || limit.Limit <= 0 {
		return apiclient.RateLimit{}, 0, false
	}
	interval := time.Minute
	if !l.lastScrape.IsZero() {
		interval = min(max(now.Sub(l.lastScrape), time.Second), time.Minute)
	}
	return limit, l.opts.RateLimitShare * float64(limit.Limit) * interval.Minutes(), true
}

// warnClock says once that api.video's replies put its clock further from
// ours than assumed, which keeps the listing to the widest margin.
func (l *Lister) warnClock() {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	if !l.clockWarned {
		l.clockWarned = true
		level.Warn(l.opts.Logger).Log("msg", "api.video's Date headers put its clock more than the assumed offset from ours: check this host's time synchronisation", "assumed", maxClockOffset)
	}
}

func (l *Lister) noteAnomaly(a Anomaly) {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	if !l.anomalies[a] {
		l.anomalies[a] = true
		level.Warn(l.opts.Logger).Log("msg", "api.video departs from its documented list contract", "anomaly", a)
	}
}

func (l *Lister) anomaly(a Anomaly) bool {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	return l.anomalies[a]
}

// Status reports the mode in use, the progress of a reading, the re-reads
// and the anomalies seen.
func (l *Lister) Status() Status {
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	s := l.status
	s.Rereads = make(map[string]int, len(l.rereads))
	for k, v := range l.rereads {
		s.Rereads[k] = v
	}
	s.Anomalies = make(map[Anomaly]bool, len(l.anomalies))
	for k, v := range l.anomalies {
		s.Anomalies[k] = v
	}
	return s
}

// RateLimit reports the pager's rate-limit headers, when it has them.
func (l *Lister) RateLimit() (apiclient.RateLimit, bool) {
	if rl, ok := l.pager.(RateLimiter); ok {
		return rl.RateLimit()
	}
	return apiclient.RateLimit{}, false
}

// Reset drops the kept state, so that the next listing starts clean.
func (l *Lister) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inc = l.newIncremental()
}

// Reasons returns the reasons Status.Rereads may give.
func Reasons() []string {
	return []string{reasonMoreTokens, reasonUnknownToken, reasonNotConverging, reasonCheaper}
}
