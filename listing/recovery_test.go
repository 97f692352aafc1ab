package listing

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// stillSchedule is an account that does not change: no creation, deletion
// or expiry during the test.
func stillSchedule(tokens int) schedule {
	return schedule{
		initial: tokens, neverShare: 1, burstMax: 1,
		latencyMin: 10 * time.Millisecond, latencyMax: 20 * time.Millisecond,
		concurrency: 4, keep: 10, timeout: 10 * time.Second,
	}
}

// pagerFunc wraps an account's pages.
type pagerFunc func(ctx context.Context, number, size int) (*apiclient.Page, error)

func (f pagerFunc) Page(ctx context.Context, number, size int) (*apiclient.Page, error) {
	return f(ctx, number, size)
}

func listOnce(t *testing.T, l *Lister, acc *account, timeout time.Duration) (*TokenList, error) {
	t.Helper()
	ctx, cancel := context.WithDeadline(context.Background(), acc.clock().Add(timeout))
	defer cancel()
	return l.ListUploadTokens(ctx, 10)
}

func requireExact(t *testing.T, acc *account, list *TokenList) {
	t.Helper()
	want := map[uint64]bool{}
	for _, tok := range acc.listed {
		want[tok.Hash] = true
	}
	got := map[uint64]bool{}
	for r := range list.Records() {
		got[r.Hash] = true
	}
	require.Equal(t, want, got)
}

// An upstream that ignores sortBy: the first scrape fails and says why, the
// listing backs off without a request, then reads every page in any order
// and keeps each token once.
func TestUnsortedUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		acc := newAccount(stillSchedule(250), rng)
		shuffled := pagerFunc(func(ctx context.Context, number, size int) (*apiclient.Page, error) {
			p, err := acc.Page(ctx, number, size)
			if err == nil && len(p.Tokens) > 1 {
				p.Tokens[0], p.Tokens[len(p.Tokens)-1] = p.Tokens[len(p.Tokens)-1], p.Tokens[0]
			}
			return p, err
		})
		l := New(shuffled, Options{Mode: ModeAuto, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep})

		_, err := listOnce(t, l, acc, 10*time.Second)
		require.ErrorIs(t, err, ErrUpstream)
		assert.True(t, l.Status().Anomalies[AnomalyUnsorted])

		before := len(acc.requests)
		_, err = listOnce(t, l, acc, 10*time.Second)
		require.ErrorIs(t, err, ErrBackingOff)
		assert.Equal(t, before, len(acc.requests), "no request while backing off")

		require.NoError(t, acc.sleep(context.Background(), maxBackoff))
		list, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		requireExact(t, acc, list)
	})
}

// Ties of one second in another order on each request, on a still list:
// every listing gives the exact tokens or an error, never a wrong count.
func TestReshuffledTiesNeverGiveAWrongCount(t *testing.T) {
	for _, mode := range []Mode{ModeFull, ModeIncremental, ModeAuto} {
		t.Run(mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				exact, failed := 0, 0
				for seed := range uint64(30) {
					s := stillSchedule(250)
					s.initialBursts, s.burstMax, s.reshuffleTies = 250, 250, true
					acc := newAccount(s, rand.New(rand.NewPCG(seed, 3)))
					l := New(acc, Options{Mode: mode, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep})
					// Three scrapes: the incremental listing's later ones count
					// and audit what the first read.
					for range 3 {
						list, err := listOnce(t, l, acc, 10*time.Second)
						if err != nil {
							failed++
							continue
						}
						requireExact(t, acc, list)
						exact++
					}
				}
				t.Logf("%s: %d exact, %d refused", mode, exact, failed)
			})
		})
	}
}

// Upstreams that repeat pages: an error, never a listing.
func TestRepeatedPagesAreRefused(t *testing.T) {
	for _, mode := range []Mode{ModeFull, ModeIncremental, ModeAuto} {
		for name, answer := range map[string]func(p *apiclient.Page, first []apiclient.Token){
			"page 1 on every page": func(p *apiclient.Page, first []apiclient.Token) { p.Tokens = slices.Clone(first) },
			"one token everywhere": func(p *apiclient.Page, first []apiclient.Token) { p.Tokens = first[:1] },
		} {
			t.Run(mode.String()+"/"+name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					acc := newAccount(stillSchedule(250), rand.New(rand.NewPCG(4, 5)))
					first, err := acc.Page(context.Background(), 1, pageSize)
					require.NoError(t, err)
					repeating := pagerFunc(func(ctx context.Context, number, size int) (*apiclient.Page, error) {
						p, err := acc.Page(ctx, number, size)
						if err == nil {
							answer(p, first.Tokens[:min(size, len(first.Tokens))])
						}
						return p, err
					})
					l := New(repeating, Options{Mode: mode, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep})
					for range 3 {
						list, err := listOnce(t, l, acc, 10*time.Second)
						require.Error(t, err)
						assert.Nil(t, list)
					}
				})
			})
		}
	}
}

// Totals that lag the list by a few tokens: said once, and the window rule
// holds on a live account.
func TestLaggingTotals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for seed := range uint64(20) {
			rng := rand.New(rand.NewPCG(seed, 6))
			s := randomSchedule(rng)
			acc := newAccount(s, rng)
			lagging := pagerFunc(func(ctx context.Context, number, size int) (*apiclient.Page, error) {
				p, err := acc.Page(ctx, number, size)
				if err == nil {
					p.ItemsTotal = max(p.ItemsTotal+int(seed%7)-3, 0)
				}
				return p, err
			})
			for _, mode := range []Mode{ModeFull, ModeIncremental} {
				l := New(lagging, Options{Mode: mode, Concurrency: s.concurrency, Now: acc.clock, Sleep: acc.sleep})
				for range 6 {
					t0 := acc.clock()
					list, err := listOnce(t, l, acc, s.timeout)
					if err == nil {
						require.NoError(t, acc.checkWindow(list, t0, acc.clock(), 10), "seed %d, %s", seed, mode)
					}
					require.NoError(t, acc.sleep(context.Background(), 7*time.Second))
				}
			}
		}
	})
}

// A read that panics in one of the listing's goroutines: an error for the
// scrape, never the end of the process, and the next listing starts clean.
func TestPanicInAConcurrentRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc := newAccount(stillSchedule(2000), rand.New(rand.NewPCG(7, 8)))
		panics := 1
		faulty := pagerFunc(func(ctx context.Context, number, size int) (*apiclient.Page, error) {
			if number == 9 && panics > 0 {
				panics--
				var p *apiclient.Page
				_ = p.Tokens[0]
			}
			return acc.Page(ctx, number, size)
		})
		for _, mode := range []Mode{ModeFull, ModeIncremental} {
			panics = 1
			l := New(faulty, Options{Mode: mode, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep})
			_, err := listOnce(t, l, acc, 10*time.Second)
			var p *PanicError
			require.ErrorAs(t, err, &p, "%s", mode)
			assert.Contains(t, string(p.Stack), "recovery_test.go")
			list, err := listOnce(t, l, acc, 10*time.Second)
			require.NoError(t, err, "%s", mode)
			requireExact(t, acc, list)
		}
	})
}

// A full listing that cannot end in the scrape stops after page 1, saying
// why; auto switches to incremental at once.
func TestFullListingTooLargeForTheScrape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := stillSchedule(5000)
		s.latencyMin, s.latencyMax, s.concurrency = time.Second, time.Second, 1
		acc := newAccount(s, rand.New(rand.NewPCG(9, 10)))
		l := New(acc, Options{Mode: ModeFull, Concurrency: 1, Now: acc.clock, Sleep: acc.sleep})
		_, err := listOnce(t, l, acc, 10*time.Second)
		var tooLarge *TooLargeError
		require.ErrorAs(t, err, &tooLarge)
		assert.Len(t, acc.requests, 1)
		assert.Contains(t, err.Error(), "use --apivideo.listing=auto or incremental")

		auto := New(acc, Options{Mode: ModeAuto, Concurrency: 1, Now: acc.clock, Sleep: acc.sleep})
		_, err = listOnce(t, auto, acc, 10*time.Second)
		require.ErrorIs(t, err, ErrSyncing, "the first reading spans scrapes")
		assert.Equal(t, ModeIncremental, auto.Status().Mode)
		assert.Greater(t, auto.Status().SyncProgress, 0.0)
	})
}

// A token that the kept state cannot explain (an old token appearing in
// the middle of the list) makes the incremental listing read the whole
// list again, count it, and publish the exact list.
func TestIncrementalRereadsWhatItCannotExplain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc := newAccount(stillSchedule(600), rand.New(rand.NewPCG(11, 12)))
		l := New(acc, Options{Mode: ModeIncremental, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep})
		list, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		requireExact(t, acc, list)

		acc.mu.Lock()
		old := acc.listed[300]
		acc.createWith(old.born, 0, true)
		acc.mu.Unlock()
		require.NoError(t, acc.sleep(context.Background(), 10*time.Second))
		list, err = listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		requireExact(t, acc, list)
		rereads := l.Status().Rereads
		assert.Equal(t, 1, rereads[reasonMoreTokens]+rereads[reasonUnknownToken], "%v", rereads)
	})
}

// Reset drops the kept state: the next incremental listing reads the whole
// list again.
func TestResetDropsTheKeptTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc := newAccount(stillSchedule(1000), rand.New(rand.NewPCG(13, 14)))
		l := New(acc, Options{Mode: ModeIncremental, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep})
		_, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		before := len(acc.requests)
		_, err = listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		steady := len(acc.requests) - before

		l.Reset()
		before = len(acc.requests)
		list, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		requireExact(t, acc, list)
		assert.Greater(t, len(acc.requests)-before, 5*steady, "a reading of the whole list, not a count")
	})
}

func TestModesAndAnomaliesByName(t *testing.T) {
	for _, name := range ModeNames() {
		var m Mode
		require.NoError(t, m.UnmarshalText([]byte(name)))
		text, err := m.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, name, string(text))
	}
	var m Mode
	assert.Error(t, m.UnmarshalText([]byte("partial")))
	assert.Equal(t, "Mode(9)", Mode(9).String())
	assert.ElementsMatch(t, []Anomaly{AnomalyUnsorted, AnomalyTotalsLag}, Anomalies())
	assert.Len(t, Reasons(), 4)
}

func TestBackoffDoublesAndEnds(t *testing.T) {
	l := New(pagerFunc(nil), Options{})
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var waits []time.Duration
	for range 6 {
		l.updateBackoff(now, ErrUpstream)
		waits = append(waits, l.backoff)
	}
	assert.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, maxBackoff, maxBackoff}, waits)
	l.updateBackoff(now, nil)
	assert.Zero(t, l.backoff)
}

// A search cut short by a small share of the rate limit leaves hints, and
// the scrapes after it finish the search from them: the backlog of gone
// tokens shrinks to nothing, and the listing comes back exact.
func TestSearchResumesFromHints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := stillSchedule(3000)
		s.rateLimitLimit = 60
		acc := newAccount(s, rand.New(rand.NewPCG(15, 16)))
		l := New(acc, Options{Mode: ModeIncremental, Concurrency: 2, Now: acc.clock, Sleep: acc.sleep})
		scrape := func() error {
			_, err := listOnce(t, l, acc, 10*time.Second)
			require.NoError(t, acc.sleep(context.Background(), 10*time.Second))
			return err
		}
		for i := 0; scrape() != nil; i++ {
			require.Less(t, i, 100, "the first reading ends")
		}
		acc.mu.Lock()
		rng := rand.New(rand.NewPCG(17, 18))
		for range 40 {
			i := rng.IntN(len(acc.listed))
			acc.listed[i].gone = time.Now()
			acc.listed = slices.Delete(acc.listed, i, i+1)
		}
		acc.mu.Unlock()

		hinted := false
		for i := 0; ; i++ {
			err := scrape()
			hinted = hinted || len(l.inc.hints) > 0
			if err == nil {
				break
			}
			require.Less(t, i, 100, "the search ends: %v", err)
		}
		assert.True(t, hinted, "a search was cut short and left hints")
		list, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		requireExact(t, acc, list)
	})
}

// A token deleted far below while a search runs counts in every probe above
// it: the search must not take it for the one it looks for. Split in four,
// the probes above both show one gone more than the part's edges allow, and
// the part's lower edge is probed again.
func TestSearchRebasesOnADeletionBelowItsPart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc, l := syncedIncremental(t, 10_000, 21, time.Second)
		inc := l.inc
		require.Equal(t, 10_000, inc.known.len())
		gone := func(i int) apiclient.Record {
			acc.mu.Lock()
			defer acc.mu.Unlock()
			tok := acc.listed[i]
			tok.gone = time.Now()
			acc.listed = slices.Delete(acc.listed, i, i+1)
			return tok.Record
		}
		sought := gone(8500)
		var requests atomic.Int32
		var below apiclient.Record
		rd := l.reader(time.Now())
		rd.pager = pagerFunc(func(ctx context.Context, number, size int) (*apiclient.Page, error) {
			// The first request after the first three probes.
			if requests.Add(1) == 4 {
				below = gone(1000)
			}
			return acc.Page(ctx, number, size)
		})
		// A deadline short enough that halving would not have the time,
		// on the widest clock margin.
		rd.clock = assumedClock
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		found, rebased, err := inc.search(ctx, rd, 1)
		require.NoError(t, err)
		assert.Equal(t, 1, rebased, "parts whose edges were probed again")
		assert.GreaterOrEqual(t, found, 1)
		assert.False(t, inc.known.has(sought), "the token searched for is dropped")
		assert.NotZero(t, below.Hash, "a token deleted during the search")
	})
}
