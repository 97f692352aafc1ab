package listing

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// Values that do not fit an entry, or could be mistaken for its padding,
// are kept aside and come back whole.
func TestKnownKeepsEveryValue(t *testing.T) {
	var k known
	tokens := []apiclient.Token{
		{Value: "to" + strings.Repeat("a", 22), Record: apiclient.Record{Hash: 1, Created: 10}},
		{Value: "to" + strings.Repeat("b", 40), Record: apiclient.Record{Hash: 2, Created: 11}},
		{Value: "", Record: apiclient.Record{Hash: 3, Created: 12}},
		{Value: "short", Record: apiclient.Record{Hash: 4, Created: 9}},
	}
	assert.Equal(t, 4, k.add(tokens))
	assert.Equal(t, 0, k.add(tokens), "each token once")
	for _, tok := range tokens {
		i := k.find(tok.Record)
		require.GreaterOrEqual(t, i, 0)
		assert.Equal(t, tok.Value, k.value(&k.entries[i]))
	}
	assert.Equal(t, -1, k.find(apiclient.Record{Hash: 5, Created: 10}))
	assert.Equal(t, []uint32{9, 10, 11, 12}, func() (out []uint32) {
		for r := range k.records() {
			out = append(out, r.Created)
		}
		return out
	}(), "sorted by createdAt")
	for range k.records() {
		break
	}
	assert.Equal(t, 1, k.remove(func(e *entry) bool { return e.ID() == 2 }))
	assert.Equal(t, 3, k.len())
}

func TestFirstValuesFollowThePublicationOrder(t *testing.T) {
	var k known
	now := int64(1000)
	k.add([]apiclient.Token{
		{Value: "expired", Record: apiclient.Record{Hash: 1, Created: 1, Expires: 999}},
		{Value: "late", Record: apiclient.Record{Hash: 2, Created: 2, Expires: 5000}},
		{Value: "soon", Record: apiclient.Record{Hash: 3, Created: 3, Expires: 1100}},
		{Value: "standing", Record: apiclient.Record{Hash: 4, Created: 4}},
	})
	values := k.firstValues(now, 2)
	var got []string
	for _, v := range values {
		got = append(got, v.Value)
	}
	assert.ElementsMatch(t, []string{"standing", "soon"}, got)
	assert.Nil(t, k.firstValues(now, 0))
}

func TestNewTokenList(t *testing.T) {
	records := []apiclient.Record{{Hash: 1}, {Hash: 2}}
	l := NewTokenList(records, nil, time.Unix(5, 0))
	assert.Equal(t, 2, l.Len())
	n := 0
	for range l.Records() {
		n++
		break
	}
	assert.Equal(t, 1, n)
}

func TestSecondBefore(t *testing.T) {
	assert.Equal(t, uint32(9), secondBefore(time.Unix(10, 500)))
	assert.Equal(t, uint32(0), secondBefore(time.Unix(0, 0)))
}

func TestStatusAndRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc := newAccount(stillSchedule(300), rand.New(rand.NewPCG(1, 1)))
		acc.s.rateLimitLimit = 500
		l := New(acc, Options{Mode: ModeIncremental, Concurrency: 2, Now: acc.clock, Sleep: acc.sleep})
		assert.Equal(t, Status{Mode: ModeIncremental, SyncProgress: 0, Rereads: map[string]int{}, Anomalies: map[Anomaly]bool{}}, l.Status())
		_, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		_, err = listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, 1.0, l.Status().SyncProgress)
		rl, ok := l.RateLimit()
		require.True(t, ok)
		assert.Equal(t, 500, rl.Limit)
		assert.Equal(t, "synced", l.inc.state.String())

		none := New(pagerFunc(nil), Options{})
		_, ok = none.RateLimit()
		assert.False(t, ok)
	})
}

// Auto goes back to full listings once the account has shrunk.
func TestAutoSwitchesBackToFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := stillSchedule(3000)
		s.latencyMin, s.latencyMax, s.concurrency = 300*time.Millisecond, 300*time.Millisecond, 1
		acc := newAccount(s, rand.New(rand.NewPCG(2, 2)))
		l := New(acc, Options{Mode: ModeAuto, Concurrency: 1, Now: acc.clock, Sleep: acc.sleep})
		for range 10 {
			if _, err := listOnce(t, l, acc, 10*time.Second); err == nil {
				break
			}
		}
		require.Equal(t, ModeIncremental, l.Status().Mode)
		acc.mu.Lock()
		for _, tok := range acc.listed[100:] {
			tok.gone = time.Now()
		}
		acc.listed = acc.listed[:100]
		acc.mu.Unlock()
		for range 2 {
			_, err := listOnce(t, l, acc, 10*time.Second)
			require.NoError(t, err, "a reading of the smaller list replaces the search")
		}
		assert.Equal(t, ModeFull, l.Status().Mode)
		list, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		requireExact(t, acc, list)
	})
}

// When a full listing stops fitting the scrape, auto's incremental listing
// starts from the tokens of the last full listing: the scrape of the
// switch is up, at the cost of a count and a search for what changed
// since, not of a reading of the whole list.
func TestAutoSwitchStartsFromTheLastFullListing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := stillSchedule(3000)
		s.concurrency = 1
		acc := newAccount(s, rand.New(rand.NewPCG(3, 4)))
		l := New(acc, Options{Mode: ModeAuto, Concurrency: 1, Now: acc.clock, Sleep: acc.sleep})
		_, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, ModeFull, l.Status().Mode)

		// Three tokens deleted anywhere, and replies too slow for a full
		// listing of 30 pages to fit a scrape.
		acc.mu.Lock()
		for _, i := range []int{2900, 1500, 5} {
			acc.listed[i].gone = time.Now()
			acc.listed = slices.Delete(acc.listed, i, i+1)
		}
		acc.s.latencyMin, acc.s.latencyMax = 300*time.Millisecond, 300*time.Millisecond
		acc.mu.Unlock()
		require.NoError(t, acc.sleep(context.Background(), 10*time.Second))

		before := len(acc.requests)
		list, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err, "the scrape of the switch is up")
		assert.Equal(t, ModeIncremental, l.Status().Mode)
		requireExact(t, acc, list)
		assert.Less(t, len(acc.requests)-before, 30, "a count and a search, not a reading of the 30 pages")
		assert.Empty(t, l.Status().Rereads)
	})
}

// Auto plans a full listing against the share of the rate limit that
// every scrape has, not against what is left of a fresh minute: at 10,000
// tokens scraped every 10 s, it lists in full once, then incrementally
// from that listing, about within the share, rather than spending the
// minute on full listings and failing for want of requests.
func TestAutoKeepsFullListingsWithinTheShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := liveSchedule(10_000)
		s.deleteRate, s.burstMax = 0.2, 1
		acc := newAccount(s, rand.New(rand.NewPCG(7, 8)))
		l := New(acc, Options{Mode: ModeAuto, Concurrency: s.concurrency, Now: acc.clock, Sleep: acc.sleep})
		const scrapes, interval = 12, 10 * time.Second
		up, after := 0, 0
		for i := range scrapes {
			before := len(acc.requests)
			if _, err := listOnce(t, l, acc, s.timeout); err == nil {
				up++
			}
			if i == 0 {
				assert.Equal(t, ModeFull, l.Status().Mode, "the first scrape has a whole minute's share")
			} else {
				assert.Equal(t, ModeIncremental, l.Status().Mode, "scrape %d", i)
				after += len(acc.requests) - before
			}
			require.NoError(t, acc.sleep(context.Background(), interval))
		}
		assert.GreaterOrEqual(t, up, scrapes-1, "scrapes up")
		// The incremental listing's own cost varies with what the account did;
		// full listings every scrape would be 100 each.
		share := float64(s.rateLimitLimit) / 2 * interval.Minutes()
		assert.LessOrEqual(t, float64(after)/(scrapes-1), 1.5*share, "mean requests a scrape after the first")
	})
}

// headersAfterFirstReply reports no rate limit until a page has been
// answered, as a client that has yet to see api.video's headers.
type headersAfterFirstReply struct {
	*account
	replied atomic.Bool
}

func (h *headersAfterFirstReply) Page(ctx context.Context, number, size int) (*apiclient.Page, error) {
	defer h.replied.Store(true)
	return h.account.Page(ctx, number, size)
}

func (h *headersAfterFirstReply) RateLimit() (apiclient.RateLimit, bool) {
	if !h.replied.Load() {
		return apiclient.RateLimit{}, false
	}
	return h.account.RateLimit()
}

// The first scrape learns its share of the rate limit from its first
// reply: a reading of 30,000 tokens spends at most the share, not all the
// requests that fit in the scrape's time.
func TestFirstScrapeLearnsItsShareFromTheFirstReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := stillSchedule(30_000)
		s.concurrency, s.rateLimitLimit = 8, 500
		acc := newAccount(s, rand.New(rand.NewPCG(9, 9)))
		pager := &headersAfterFirstReply{account: acc}
		for _, mode := range []Mode{ModeAuto, ModeIncremental} {
			before := len(acc.requests)
			l := New(pager, Options{Mode: mode, Concurrency: 8, Now: acc.clock, Sleep: acc.sleep})
			_, err := listOnce(t, l, acc, 10*time.Second)
			require.ErrorIs(t, err, ErrSyncing, "%s: a reading of 300 pages takes more than one scrape's share", mode)
			assert.LessOrEqual(t, len(acc.requests)-before, 250+s.concurrency, "%s: requests of the first scrape", mode)
			require.NoError(t, acc.sleep(context.Background(), time.Minute))
		}
	})
}

func TestPublicationHeapPopsTheLastToPublishFirst(t *testing.T) {
	h := &publicationHeap{}
	for _, r := range []apiclient.Record{{Hash: 1, Expires: 50}, {Hash: 2}, {Hash: 3, Expires: 10}} {
		heap.Push(h, r)
	}
	assert.Equal(t, uint64(1), heap.Pop(h).(apiclient.Record).Hash, "the latest expiry goes first")
	assert.Equal(t, uint64(3), heap.Pop(h).(apiclient.Record).Hash)
	assert.Equal(t, uint64(2), heap.Pop(h).(apiclient.Record).Hash, "a token that never expires is published first, so popped last")
}

func TestReadingProgress(t *testing.T) {
	var rg reading
	assert.Zero(t, rg.progress(), "nothing read")
	rg.top = &run{start: 0, tokens: make([]apiclient.Token, 100), total: 400}
	assert.Equal(t, 0.25, rg.progress())
	rg.top = &run{start: 380, tokens: make([]apiclient.Token, 20), total: 400}
	assert.Equal(t, 0.99, rg.progress(), "1 only once the reading is kept")
}

// Pages that break the documented shape are errors, never short lists.
func TestMalformedPagesAreErrors(t *testing.T) {
	tokens := func(n int) []apiclient.Token {
		out := make([]apiclient.Token, n)
		for i := range out {
			out[i] = apiclient.Token{Value: "to", Record: apiclient.Record{Hash: uint64(i + 1), Created: 10}}
		}
		return out
	}
	for name, page := range map[string]*apiclient.Page{
		"more tokens than the size":     {Tokens: tokens(101), ItemsTotal: 101},
		"another page size":             {Tokens: tokens(10), PageSize: 25, ItemsTotal: 10},
		"more tokens than is plausible": {Tokens: tokens(10), ItemsTotal: maxTokens + 1},
	} {
		t.Run(name, func(t *testing.T) {
			l := New(pagerFunc(func(context.Context, int, int) (*apiclient.Page, error) { return page, nil }), Options{Mode: ModeFull})
			list, err := l.ListUploadTokens(context.Background(), 10)
			require.ErrorIs(t, err, apiclient.ErrMalformedResponse)
			assert.Nil(t, list)
		})
	}
}

// A scrape whose context is already done makes no request.
func TestNoRequestAfterTheContextEnds(t *testing.T) {
	calls := 0
	l := New(pagerFunc(func(context.Context, int, int) (*apiclient.Page, error) { calls++; return &apiclient.Page{}, nil }), Options{Mode: ModeFull})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.ListUploadTokens(ctx, 10)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, calls)
}

func TestClearOfExpiries(t *testing.T) {
	at := time.Unix(1_900_000_000, 0)
	inc := &incremental{}
	inc.known.entries = []entry{{Record: apiclient.Record{Hash: 1, Created: 1_899_000_000, Expires: 1_900_000_001}}}
	for _, tc := range []struct {
		name    string
		now     time.Time
		latency time.Duration
		want    time.Duration
	}{
		{"expiry well after the read", at.Add(100 * time.Millisecond), 100 * time.Millisecond, 0},
		{"expiry within the read and its margins", at.Add(700 * time.Millisecond), 100 * time.Millisecond, 551 * time.Millisecond},
		{"expiry just passed, within the margin", at.Add(1100 * time.Millisecond), 100 * time.Millisecond, 151 * time.Millisecond},
		{"expiry past the margin", at.Add(1300 * time.Millisecond), 100 * time.Millisecond, 0},
		{"a read too slow to be clear of any second", at.Add(700 * time.Millisecond), 600 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, inc.clearOfExpiries(assumedClock, tc.now, tc.latency))
		})
	}
}

// Auto judges a switch back to the full listing by the budget every scrape
// has, not by one inflated by a fresh minute of the rate limit: it does
// not flap between the two at 10,000 tokens.
func TestAutoDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := liveSchedule(10_000)
		s.deleteRate = 0.2
		rng := rand.New(rand.NewPCG(5, 6))
		acc := newAccount(s, rng)
		l := New(acc, Options{Mode: ModeAuto, Concurrency: s.concurrency, Now: acc.clock, Sleep: acc.sleep})
		switches, last := 0, Mode(-1)
		for range 60 {
			_, _ = listOnce(t, l, acc, s.timeout)
			if m := l.Status().Mode; m != last {
				if last >= 0 {
					switches++
				}
				last = m
			}
			_ = acc.sleep(context.Background(), s.interval(rng))
		}
		assert.LessOrEqual(t, switches, 2, "mode switches in 60 scrapes")
	})
}

// A search splits its range in four while the share every scrape has
// leaves the requests for the whole of it, in two otherwise, at boundaries
// between seconds.
func TestSearchWays(t *testing.T) {
	inc := &incremental{}
	for i := range 1000 {
		inc.known.entries = append(inc.known.entries, entry{Record: apiclient.Record{Hash: uint64(i + 1), Created: uint32(1000 + i/3)}})
	}
	// Halving 1,000 kept tokens takes a few rounds of up to 1.5 s each at
	// a latency of 1 s: more than half of 3 s, less than half of a minute.
	for _, tc := range []struct {
		name              string
		timeout           time.Duration
		budget, sustained int
		want              int
	}{
		{"time for halving", time.Minute, 200, 100, 2},
		{"time for halving, no bound", time.Minute, 0, 0, 2},
		{"short of time, no bound", 3 * time.Second, 0, 0, 4},
		{"short of time, requests to spare", 3 * time.Second, 200, 100, 4},
		{"short of time, a fresh minute's budget", 3 * time.Second, 200, 20, 4},
		{"short of time and of requests", 3 * time.Second, 12, 10, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &searcher{inc: inc, rd: &reader{budget: tc.budget, sustained: tc.sustained, now: time.Now, latency: time.Second, clock: assumedClock}}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			assert.Equal(t, tc.want, s.ways(ctx, 1000, 3))
		})
	}

	bounds := inc.boundaries(0, 1000, 4)
	require.Len(t, bounds, 3)
	for i, b := range bounds {
		assert.NotEqual(t, inc.known.entries[b-1].Created, inc.known.entries[b].Created, "a second begins at %d", b)
		if i > 0 {
			assert.Greater(t, b, bounds[i-1])
		}
	}
	assert.InDelta(t, 500, bounds[1], 3)
}
